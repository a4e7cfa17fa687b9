//! The benchmark-only null sink (`--sink null`): the full request path answers 202 with no
//! broker at all, and the admin port reports ready. Needs Redis from the local stack for
//! the shared idempotency tier, like the other tests; the broker address given points at
//! a port nothing listens on, so a publish that reached Kafka could not succeed.

mod support;

use serde_json::json;
use support::Ingress;

#[tokio::test]
async fn the_null_sink_acknowledges_without_a_broker() {
    let ingress = Ingress::spawn(
        "no-such-topic",
        &["--sink=null", "--kafka-brokers=127.0.0.1:9"],
    );
    ingress.wait_ready().await;
    let body = json!({
        "tenant_id": "acme", "property_id": "lisbon-1", "room_type": "DBL",
        "check_in": "2027-01-10", "check_out": "2027-01-12", "rooms": 1, "guests": 2,
        "amount_minor": 25000, "currency": "EUR"
    });
    let first = ingress
        .post("/v1/bookings")
        .header("idempotency-key", "null-1")
        .json(&body)
        .await;
    assert_eq!(
        first.status.as_u16(),
        202,
        "{}",
        String::from_utf8_lossy(&first.body)
    );
    let accepted = first.json();
    assert_eq!(accepted["status"], "accepted");
    assert!(accepted["partition"].as_i64().unwrap() < 12);
    assert_eq!(accepted["offset"], 0);

    // The rest of the path still runs: a replay is answered from the idempotency record,
    // and a bad body is still refused.
    let replay = ingress
        .post("/v1/bookings")
        .header("idempotency-key", "null-1")
        .json(&body)
        .await;
    assert_eq!(replay.status.as_u16(), 202);
    assert_eq!(replay.header("idempotent-replayed"), "true");
    assert_eq!(replay.json()["booking_id"], accepted["booking_id"]);
    let bad = ingress
        .post("/v1/bookings")
        .json(&json!({"tenant_id": "acme"}))
        .await;
    assert_eq!(bad.status.as_u16(), 422);
    // Waiting for a decision is off: no consumer will ever decide.
    let waited = ingress
        .post("/v1/bookings")
        .header("prefer", "wait=5")
        .json(&body)
        .await;
    assert_eq!(waited.status.as_u16(), 202);
    ingress.stop().await.unwrap();
}

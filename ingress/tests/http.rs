//! The partner API end to end: the real server (`ingress::run` on port 0) publishing to
//! the real broker, each test on a topic of its own. Needs the local stack
//! (`infra/stack.sh up`); without a broker these tests fail, naming that command.

mod support;

use partitioner::partition_map::routing_key;
use partitioner::{Envelope, Event, PartitionMap};
use serde_json::{json, Value};
use support::{Ingress, SECRET_ACME};

const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

fn booking(tenant: &str, property: &str) -> Value {
    json!({
        "tenant_id": tenant, "property_id": property, "room_type": "DBL",
        "check_in": "2027-01-10", "check_out": "2027-01-12", "rooms": 1, "guests": 2,
        "amount_minor": 25000, "currency": "EUR", "guest_name": "Ada Lovelace"
    })
}

fn assert_problem(reply: &support::Reply, status: u16, kind: &str) -> Value {
    assert_eq!(
        reply.status.as_u16(),
        status,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    assert_eq!(reply.header("content-type"), "application/problem+json");
    assert!(
        !reply.header("x-request-id").is_empty(),
        "no request id echoed"
    );
    let json = reply.json();
    assert_eq!(json["status"], status);
    assert_eq!(json["type"], format!("/problems/{kind}"));
    json
}

#[tokio::test]
async fn accepted_booking_is_in_kafka_where_the_answer_says() {
    let ingress = Ingress::start().await;
    let reply = ingress
        .post("/v1/bookings")
        .header("idempotency-key", "order-1")
        .header("x-request-id", "partner-req-1")
        .header("traceparent", TRACEPARENT)
        .json(&booking("acme", "lisbon-1"))
        .await;
    assert_eq!(
        reply.status.as_u16(),
        202,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    assert_eq!(reply.header("x-request-id"), "partner-req-1");
    // A fresh process: the partner's bucket (the default burst of 2000) was full.
    assert_eq!(reply.header("ratelimit-limit"), "2000");
    assert_eq!(reply.header("ratelimit-remaining"), "1999");
    assert_eq!(reply.header("ratelimit-reset"), "1");
    let body = reply.json();
    assert_eq!(body["status"], "accepted");
    let booking_id = partitioner::booking_id("acme", "ota-1", "order-1");
    assert_eq!(body["booking_id"], booking_id.to_string());
    assert_eq!(body["event_id"], booking_id.to_string());
    let partition = body["partition"].as_i64().unwrap() as i32;
    let offset = body["offset"].as_i64().unwrap();
    let expected = PartitionMap::parse(support::PARTITIONS as u32, "").unwrap();
    assert_eq!(partition as u32, expected.partition("acme", "lisbon-1"));

    let record = support::read_record(&ingress.topic, partition, offset).await;
    assert_eq!(record.key, routing_key("acme", "lisbon-1").into_bytes());
    assert_eq!(record.header("event-type"), Some("create_booking"));
    assert_eq!(record.header("schema-version"), Some("1"));
    assert_eq!(record.header("content-type"), Some("application/json"));
    assert_eq!(record.header("request-id"), Some("partner-req-1"));
    assert_eq!(record.header("partner-id"), Some("ota-1"));
    assert_eq!(record.header("traceparent"), Some(TRACEPARENT));
    let envelope = Envelope::from_json(&record.payload).expect("payload is an envelope");
    assert_eq!(envelope.event_id, booking_id);
    assert_eq!(envelope.tenant_id, "acme");
    assert_eq!(envelope.request_id, "partner-req-1");
    assert!(
        matches!(envelope.event, Event::CreateBooking { booking_id: id, .. } if id == booking_id)
    );

    ingress.stop().await.expect("clean shutdown");
}

#[tokio::test]
async fn every_event_of_a_property_lands_on_one_partition() {
    let ingress = Ingress::start().await;
    let create = ingress
        .post("/v1/bookings")
        .json(&booking("acme", "porto-2"))
        .await;
    assert_eq!(create.status.as_u16(), 202);
    let partition = &create.json()["partition"];
    let id = create.json()["booking_id"].as_str().unwrap().to_owned();

    let mut modify = booking("acme", "porto-2");
    modify.as_object_mut().unwrap().remove("guest_name");
    let modify = ingress
        .post(&format!("/v1/bookings/{id}/modify"))
        .json(&modify)
        .await;
    let cancel = ingress
        .post(&format!("/v1/bookings/{id}/cancel"))
        .json(&json!({"tenant_id": "acme", "property_id": "porto-2", "reason": "guest asked"}))
        .await;
    let inventory = ingress
        .put("/v1/inventory")
        .json(
            &json!({"tenant_id": "acme", "property_id": "porto-2", "room_type": "DBL",
                      "from": "2027-01-01", "to": "2027-02-01", "units": 10}),
        )
        .await;
    for reply in [&modify, &cancel, &inventory] {
        assert_eq!(
            reply.status.as_u16(),
            202,
            "{}",
            String::from_utf8_lossy(&reply.body)
        );
        assert_eq!(&reply.json()["partition"], partition);
    }
    assert_eq!(modify.json()["booking_id"], id.as_str());
    assert_eq!(cancel.json()["booking_id"], id.as_str());
    assert!(inventory.json().get("booking_id").is_none());

    let record = support::read_record(
        &ingress.topic,
        partition.as_i64().unwrap() as i32,
        inventory.json()["offset"].as_i64().unwrap(),
    )
    .await;
    assert_eq!(record.header("event-type"), Some("set_allotment"));
    assert_eq!(record.header("traceparent"), None);

    ingress.stop().await.expect("clean shutdown");
}

#[tokio::test]
async fn a_retried_create_names_the_same_booking() {
    let ingress = Ingress::start().await;
    let body = booking("acme", "faro-3");
    let send = || {
        ingress
            .post("/v1/bookings")
            .header("idempotency-key", "retry-me")
            .json(&body)
    };
    let (first, second) = (send().await, send().await);
    assert_eq!(first.status.as_u16(), 202);
    assert_eq!(second.status.as_u16(), 202);
    assert_eq!(first.json()["booking_id"], second.json()["booking_id"]);
    assert_eq!(first.json()["event_id"], second.json()["event_id"]);
    ingress.stop().await.expect("clean shutdown");
}

#[tokio::test]
async fn bad_requests_get_problem_details() {
    let ingress = Ingress::start().await;
    let good = booking("acme", "lisbon-1");

    let reply = ingress
        .post("/v1/bookings")
        .without("idempotency-key")
        .json(&good)
        .await;
    assert_problem(&reply, 400, "missing-idempotency-key");

    let long_key = "k".repeat(256);
    let reply = ingress
        .post("/v1/bookings")
        .header("idempotency-key", &long_key)
        .json(&good)
        .await;
    assert_problem(&reply, 400, "bad-idempotency-key");

    let reply = ingress.post("/v1/bookings").body("{not json").await;
    assert_problem(&reply, 400, "malformed-json");
    let reply = ingress
        .post("/v1/bookings")
        .json(&json!({"tenant_id": "acme", "rooms": "two"}))
        .await;
    let problem = assert_problem(&reply, 400, "malformed-json");
    assert!(
        problem["detail"].as_str().unwrap().starts_with("rooms"),
        "{problem}"
    );

    let bad = json!({"tenant_id": "acme/evil", "property_id": "p1", "room_type": "DBL",
                     "check_in": "2027-13-01", "check_out": "2027-01-12", "rooms": 0, "guests": 2,
                     "amount_minor": -1, "currency": "EURO"});
    let reply = ingress.post("/v1/bookings").json(&bad).await;
    let problem = assert_problem(&reply, 422, "validation");
    let fields: Vec<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        ["tenant_id", "check_in", "rooms", "amount_minor", "currency"]
    );

    let reply = ingress
        .post("/v1/bookings")
        .header("content-type", "text/plain")
        .json(&good)
        .await;
    assert_problem(&reply, 415, "unsupported-media-type");
    let reply = ingress
        .post("/v1/bookings")
        .header("content-type", "application/json; charset=utf-8")
        .json(&good)
        .await;
    assert_eq!(reply.status.as_u16(), 202);

    let huge = format!(r#"{{"guest_name": "{}"}}"#, "x".repeat(70 * 1024));
    let reply = ingress.post("/v1/bookings").body(huge).await;
    assert_problem(&reply, 413, "payload-too-large");

    ingress.stop().await.expect("clean shutdown");
}

#[tokio::test]
async fn auth_and_routing_failures() {
    let ingress = Ingress::start().await;
    let good = booking("acme", "lisbon-1");

    let reply = ingress
        .post("/v1/bookings")
        .without("authorization")
        .json(&good)
        .await;
    assert_problem(&reply, 401, "unauthorized");
    assert_eq!(reply.header("www-authenticate"), "Bearer");
    let reply = ingress
        .post("/v1/bookings")
        .header("authorization", "Bearer wrong")
        .json(&good)
        .await;
    assert_problem(&reply, 401, "unauthorized");

    let acme_only = format!("Bearer {SECRET_ACME}");
    let reply = ingress
        .post("/v1/bookings")
        .header("authorization", &acme_only)
        .json(&booking("globex", "berlin-1"))
        .await;
    assert_problem(&reply, 403, "forbidden");
    let reply = ingress
        .post("/v1/bookings")
        .header("authorization", &acme_only)
        .json(&good)
        .await;
    assert_eq!(reply.status.as_u16(), 202);
    let allotment = json!({"tenant_id": "acme", "property_id": "p1", "room_type": "DBL",
                           "from": "2027-01-01", "to": "2027-01-05", "units": 3});
    let reply = ingress
        .put("/v1/inventory")
        .header("authorization", &acme_only)
        .json(&allotment)
        .await;
    assert_problem(&reply, 403, "forbidden");

    let reply = ingress.post("/v1/nothing-here").json(&good).await;
    assert_problem(&reply, 404, "not-found");
    let reply = ingress
        .post("/v1/bookings/not-a-uuid/cancel")
        .json(&good)
        .await;
    assert_problem(&reply, 404, "not-found");
    let reply = ingress.put("/v1/bookings").json(&good).await;
    assert_problem(&reply, 405, "method-not-allowed");
    assert_eq!(reply.header("allow"), "POST");

    ingress.stop().await.expect("clean shutdown");
}

#[tokio::test]
async fn admin_port_reports_health_and_metrics() {
    let ingress = Ingress::start().await;
    let reply = ingress
        .post("/v1/bookings")
        .json(&booking("acme", "lisbon-1"))
        .await;
    assert_eq!(reply.status.as_u16(), 202);

    let health = support::get(ingress.admin, "/healthz").await.unwrap();
    assert_eq!(health.status.as_u16(), 200);
    let metrics = support::get(ingress.admin, "/metrics").await.unwrap();
    assert_eq!(metrics.status.as_u16(), 200);
    let text = String::from_utf8_lossy(&metrics.body);
    assert!(
        text.contains(r#"ingress_requests_total{route="/v1/bookings",status="202"}"#),
        "{text}"
    );
    assert!(
        text.contains("ingress_publish_duration_seconds_bucket"),
        "{text}"
    );

    ingress.stop().await.expect("clean shutdown");
}

#[tokio::test]
async fn startup_fails_clearly_on_a_missing_topic() {
    // Reach the broker first, so that this test fails for the right reason.
    support::require_broker().await;
    let missing = format!("ingress-test-missing-{}", uuid::Uuid::new_v4());
    let error = Ingress::spawn(&missing, &[]).exit().await.unwrap_err();
    assert!(error.to_string().contains(&missing), "{error}");
    assert_eq!(error.exit_code(), 1);
}

#[tokio::test]
async fn startup_fails_as_a_configuration_error_on_bad_overrides() {
    let topic = support::create_topic(support::PARTITIONS).await;
    let error = Ingress::spawn(&topic, &["--hot-tenants=acme=0..99"])
        .exit()
        .await
        .unwrap_err();
    assert!(error.is_config(), "{error}");
    assert_eq!(error.exit_code(), 64);
}

#[tokio::test]
async fn unreadable_partners_file_is_a_configuration_error() {
    use clap::Parser;
    let config = ingress::Config::try_parse_from([
        "ingress",
        "--partners-file=/nonexistent/partners.json",
        "--kafka-brokers=127.0.0.1:1",
    ])
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let admin = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let error = ingress::run(config, listener, admin, std::future::pending())
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains("/nonexistent/partners.json"),
        "{error}"
    );
    assert_eq!(error.exit_code(), 64);
}

#[tokio::test]
async fn a_missed_delivery_budget_is_a_503_never_a_success() {
    // A zero budget expires before any broker can answer: the real path to the timeout.
    let topic = support::create_topic(support::PARTITIONS).await;
    let ingress = Ingress::spawn(&topic, &["--delivery-budget-ms=0"]);
    ingress.wait_ready().await;
    let reply = ingress
        .post("/v1/bookings")
        .header("idempotency-key", "late-1")
        .json(&booking("acme", "lisbon-1"))
        .await;
    let problem = assert_problem(&reply, 503, "delivery-timeout");
    assert_eq!(reply.header("retry-after"), "1");
    assert!(problem["detail"]
        .as_str()
        .unwrap()
        .contains("same Idempotency-Key"));

    // The record was not withdrawn: it lands anyway, carrying the id a retry would carry,
    // which is what lets consumers drop the retry as a duplicate.
    let partition = PartitionMap::parse(support::PARTITIONS as u32, "").unwrap();
    let partition = partition.partition("acme", "lisbon-1") as i32;
    let record = support::read_record(&topic, partition, 0).await;
    let envelope = Envelope::from_json(&record.payload).unwrap();
    assert_eq!(
        envelope.event_id,
        partitioner::event_id("acme", "ota-1", "late-1")
    );

    ingress.stop().await.expect("clean shutdown");
}

#[tokio::test]
async fn a_full_house_answers_503_at_once() {
    let topic = support::create_topic(support::PARTITIONS).await;
    // No in-flight slots at all: every request finds the semaphore empty.
    let ingress = Ingress::spawn(&topic, &["--max-in-flight=0"]);
    ingress.wait_ready().await;
    let reply = ingress
        .post("/v1/bookings")
        .json(&booking("acme", "lisbon-1"))
        .await;
    assert_problem(&reply, 503, "overloaded");
    assert_eq!(reply.header("retry-after"), "1");
    ingress.stop().await.expect("clean shutdown");
}

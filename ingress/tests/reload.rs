//! Key rotation on SIGHUP, against the real `ingress` binary: the partners file is
//! re-read and swapped in while connections stay open, and a broken file changes nothing.
//! Needs the local stack's broker (`infra/stack.sh up`), like the other API tests.

mod support;

use std::path::Path;

use http::Method;
use serde_json::json;
use support::process::{IngressProcess, KeepAlive};

const RELOADED_OK: &str = "ingress_partners_reloads_total{result=\"ok\"}";
const RELOAD_FAILED: &str = "ingress_partners_reloads_total{result=\"error\"}";

fn write_partners(path: &Path, secret: &str) {
    let json = json!({"partners": [
        {"partner_id": "ota-1", "key_sha256": ingress::auth::sha256_hex(secret.as_bytes()),
         "tenants": ["*"], "scopes": ["bookings:write"]},
    ]});
    std::fs::write(path, json.to_string()).unwrap();
}

/// Posts a booking with `secret` on the kept-alive connection; returns the status.
async fn create_with(connection: &mut KeepAlive, secret: &str) -> u16 {
    let body = json!({
        "tenant_id": "acme", "property_id": "lisbon-1", "room_type": "DBL",
        "check_in": "2027-01-10", "check_out": "2027-01-12", "rooms": 1, "guests": 2,
        "amount_minor": 25000, "currency": "EUR"
    });
    let headers = [
        ("authorization", format!("Bearer {secret}")),
        ("content-type", "application/json".to_owned()),
        ("idempotency-key", uuid::Uuid::new_v4().to_string()),
    ];
    let reply = connection
        .send(
            Method::POST,
            "/v1/bookings",
            &headers,
            body.to_string().as_bytes(),
        )
        .await;
    reply.status.as_u16()
}

#[tokio::test]
async fn sighup_rotates_keys_without_dropping_connections() {
    let topic = support::create_topic(support::PARTITIONS).await;
    let dir = tempfile::tempdir().unwrap();
    let partners = dir.path().join("partners.json");
    write_partners(&partners, "key-before-rotation");
    let mut ingress = IngressProcess::start(&partners, &support::brokers(), &topic, &[]).await;
    let mut connection = ingress.keep_alive().await;
    assert_eq!(
        create_with(&mut connection, "key-before-rotation").await,
        202
    );
    assert_eq!(
        create_with(&mut connection, "key-after-rotation").await,
        401
    );

    write_partners(&partners, "key-after-rotation");
    ingress.signal("HUP");
    ingress.wait_metric(RELOADED_OK, 1.0).await;
    assert!(ingress.is_running(), "SIGHUP stopped the process");
    // The same connection, opened before the reload, now authenticates with the new key.
    assert_eq!(
        create_with(&mut connection, "key-after-rotation").await,
        202
    );
    assert_eq!(
        create_with(&mut connection, "key-before-rotation").await,
        401
    );

    // A broken file is refused as a whole: the keys in force stay in force.
    std::fs::write(&partners, "{\"partners\": [").unwrap();
    ingress.signal("HUP");
    ingress.wait_metric(RELOAD_FAILED, 1.0).await;
    assert_eq!(ingress.metric(RELOADED_OK).await, Some(1.0));
    assert_eq!(
        create_with(&mut connection, "key-after-rotation").await,
        202
    );
    assert_eq!(
        create_with(&mut connection, "key-before-rotation").await,
        401
    );
    // New connections see the same table.
    let mut fresh = ingress.keep_alive().await;
    assert_eq!(create_with(&mut fresh, "key-after-rotation").await, 202);
    assert!(ingress.is_running());
}

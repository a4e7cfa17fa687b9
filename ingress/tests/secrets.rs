//! Secrets never reach the logs: the real `ingress` binary at debug level is sent valid,
//! unknown and malformed keys, a badly signed request and a key rotation, and its whole
//! log is searched for every secret involved. Needs the local stack's broker.

mod support;

use std::path::Path;

use http::Method;
use serde_json::json;
use support::process::IngressProcess;

const KEY: &str = "live-key-5b7e1c0d9a";
const ROTATED_KEY: &str = "rotated-key-0f3a6b8e2d";
const UNKNOWN_KEY: &str = "unknown-key-7c2e9f4a1b";
const SIGNING_SECRET: &str = "signing-secret-3d8f1a6c9e2b7d4f0a5c8e1b6d9f2a4c";

fn write_partners(path: &Path, key: &str) {
    let json = json!({"partners": [
        {"partner_id": "ota-1", "key_sha256": ingress::auth::sha256_hex(key.as_bytes()),
         "tenants": ["*"], "scopes": ["bookings:write"]},
        {"partner_id": "ota-signed", "key_sha256": ingress::auth::sha256_hex(b"signed-partner-key"),
         "tenants": ["*"], "scopes": ["bookings:write"], "signing_secret": SIGNING_SECRET},
    ]});
    std::fs::write(path, json.to_string()).unwrap();
}

#[tokio::test]
async fn no_secret_appears_in_the_logs() {
    let topic = support::create_topic(support::PARTITIONS).await;
    let dir = tempfile::tempdir().unwrap();
    let partners = dir.path().join("partners.json");
    write_partners(&partners, KEY);
    let ingress = IngressProcess::start(
        &partners,
        &support::brokers(),
        &topic,
        &["--log-filter=debug"],
    )
    .await;
    let body = json!({
        "tenant_id": "acme", "property_id": "lisbon-1", "room_type": "DBL",
        "check_in": "2027-01-10", "check_out": "2027-01-12", "rooms": 1, "guests": 2,
        "amount_minor": 25000, "currency": "EUR"
    })
    .to_string();
    let mut connection = ingress.keep_alive().await;
    let mut send = async |authorization: String, extra: &[(&str, &str)]| {
        let mut headers = vec![
            ("authorization", authorization),
            ("content-type", "application/json".to_owned()),
            ("idempotency-key", uuid::Uuid::new_v4().to_string()),
        ];
        headers.extend(extra.iter().map(|(k, v)| (*k, (*v).to_owned())));
        connection
            .send(Method::POST, "/v1/bookings", &headers, body.as_bytes())
            .await
            .status
            .as_u16()
    };
    assert_eq!(send(format!("Bearer {KEY}"), &[]).await, 202);
    assert_eq!(send(format!("Bearer {UNKNOWN_KEY}"), &[]).await, 401);
    assert_eq!(send(format!("Basic {UNKNOWN_KEY}"), &[]).await, 401);
    assert_eq!(send(format!("Bearer {KEY} {UNKNOWN_KEY}"), &[]).await, 401);
    let bad_signature = format!("v1={}", "0".repeat(64));
    assert_eq!(
        send(
            "Bearer signed-partner-key".to_owned(),
            &[
                ("x-signature-timestamp", "1"),
                ("x-signature", bad_signature.as_str())
            ]
        )
        .await,
        401
    );
    write_partners(&partners, ROTATED_KEY);
    ingress.signal("HUP");
    ingress
        .wait_metric("ingress_partners_reloads_total{result=\"ok\"}", 1.0)
        .await;
    assert_eq!(send(format!("Bearer {ROTATED_KEY}"), &[]).await, 202);

    let log = ingress.log_text();
    // The log must be there to be searched: debug lines and the reload were written.
    assert!(log.contains("DEBUG"), "no debug lines:\n{log}");
    assert!(log.contains("reload"), "no reload line:\n{log}");
    for secret in [
        KEY,
        ROTATED_KEY,
        UNKNOWN_KEY,
        SIGNING_SECRET,
        "signed-partner-key",
    ] {
        assert!(
            !log.contains(secret),
            "the log contains the secret {secret:?}"
        );
    }
}

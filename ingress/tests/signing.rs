//! HMAC request signing against the real `ingress` binary: a partner with a signing
//! secret gets 202 only for a fresh, correctly signed request, and a distinct 401
//! problem for a missing, invalid, expired or replayed signature. Needs the local stack
//! (`infra/stack.sh up`).

mod support;

use std::time::{SystemTime, UNIX_EPOCH};

use ingress::signing::{Scheme, Signed, SigningSecret};
use serde_json::{json, Value};
use support::process::IngressProcess;
use support::Reply;

const KEY: &str = "signing-partner-key";
const SECRET: &str = "a-signing-secret-of-at-least-32-bytes";

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn booking() -> Vec<u8> {
    json!({
        "tenant_id": "acme", "property_id": "lisbon-1", "room_type": "DBL",
        "check_in": "2027-01-10", "check_out": "2027-01-12", "rooms": 1, "guests": 2,
        "amount_minor": 25000, "currency": "EUR"
    })
    .to_string()
    .into_bytes()
}

/// `X-Signature` of a v2 signature over the request (`key` empty for none).
fn sign(timestamp: i64, method: &str, path: &str, key: &str, body: &[u8]) -> String {
    sign_as(Scheme::V2, timestamp, method, path, key, body)
}

fn sign_as(
    scheme: Scheme,
    timestamp: i64,
    method: &str,
    path: &str,
    key: &str,
    body: &[u8],
) -> String {
    let request = Signed {
        timestamp,
        method,
        path_and_query: path,
        idempotency_key: key,
        body,
    };
    SigningSecret::new(SECRET).sign(scheme, &request)
}

async fn start() -> (IngressProcess, tempfile::NamedTempFile) {
    let topic = support::create_topic(support::PARTITIONS).await;
    let partners = partners_file();
    let ingress = IngressProcess::start(partners.path(), &support::brokers(), &topic, &[]).await;
    (ingress, partners)
}

/// One partner, who must sign.
fn partners_file() -> tempfile::NamedTempFile {
    let partners = tempfile::NamedTempFile::new().unwrap();
    let json = json!({"partners": [
        {"partner_id": "signer", "key_sha256": ingress::auth::sha256_hex(KEY.as_bytes()),
         "tenants": ["*"], "scopes": ["bookings:write", "bookings:read"],
         "signing_secret": SECRET},
    ]});
    std::fs::write(partners.path(), json.to_string()).unwrap();
    partners
}

/// POST /v1/bookings with `body`, signed as `signature`/`timestamp` when given.
async fn create(
    ingress: &IngressProcess,
    key: &str,
    signature: Option<(&str, i64)>,
    body: &[u8],
) -> Reply {
    let mut call = ingress
        .post("/v1/bookings")
        .header("authorization", &format!("Bearer {KEY}"))
        .header("idempotency-key", key);
    if let Some((signature, timestamp)) = signature {
        call = call
            .header("x-signature", signature)
            .header("x-signature-timestamp", &timestamp.to_string());
    }
    call.body(body.to_vec()).await
}

fn assert_refused(reply: &Reply, kind: &str) {
    assert_eq!(
        reply.status.as_u16(),
        401,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    assert_eq!(reply.header("content-type"), "application/problem+json");
    let problem: Value = reply.json();
    assert_eq!(problem["type"], format!("/problems/{kind}"), "{problem}");
    assert_eq!(problem["status"], 401);
}

#[tokio::test]
async fn a_signing_partner_needs_a_fresh_valid_signature() {
    let (ingress, _partners) = start().await;
    let body = booking();
    let timestamp = now();
    let signature = sign(timestamp, "POST", "/v1/bookings", "order-1", &body);

    let unsigned = create(&ingress, "order-1", None, &body).await;
    assert_refused(&unsigned, "signature-missing");
    // Without a signature the key alone reveals nothing, not even a missing scope.
    let inventory = ingress
        .put("/v1/inventory")
        .header("authorization", &format!("Bearer {KEY}"))
        .json(&json!({}))
        .await;
    assert_refused(&inventory, "signature-missing");

    let tampered = create(&ingress, "order-1", Some((&signature, timestamp)), b"{}").await;
    assert_refused(&tampered, "signature-invalid");
    let garbled = create(&ingress, "order-1", Some(("v1=abc", timestamp)), &body).await;
    assert_refused(&garbled, "signature-invalid");

    let stale = now() - 301;
    let old = sign(stale, "POST", "/v1/bookings", "order-1", &body);
    assert_refused(
        &create(&ingress, "order-1", Some((&old, stale)), &body).await,
        "signature-expired",
    );
    let ahead = now() + 400;
    let early = sign(ahead, "POST", "/v1/bookings", "order-1", &body);
    assert_refused(
        &create(&ingress, "order-1", Some((&early, ahead)), &body).await,
        "signature-expired",
    );

    let accepted = create(&ingress, "order-1", Some((&signature, timestamp)), &body).await;
    assert_eq!(
        accepted.status.as_u16(),
        202,
        "{}",
        String::from_utf8_lossy(&accepted.body)
    );

    // The very same request again: refused before the idempotency record could answer.
    let replayed = create(&ingress, "order-1", Some((&signature, timestamp)), &body).await;
    assert_refused(&replayed, "signature-replayed");
    // Signed anew (another timestamp), the retry is an ordinary idempotent replay.
    let resigned_at = timestamp + 1;
    let resigned = sign(resigned_at, "POST", "/v1/bookings", "order-1", &body);
    let retry = create(&ingress, "order-1", Some((&resigned, resigned_at)), &body).await;
    assert_eq!(retry.status.as_u16(), 202);
    assert_eq!(retry.header("idempotent-replayed"), "true");

    let refused =
        |reason: &str| format!("ingress_signatures_refused_total{{reason=\"signature-{reason}\"}}");
    assert_eq!(ingress.metric(&refused("missing")).await, Some(2.0));
    assert_eq!(ingress.metric(&refused("invalid")).await, Some(2.0));
    assert_eq!(ingress.metric(&refused("expired")).await, Some(2.0));
    assert_eq!(ingress.metric(&refused("replayed")).await, Some(1.0));
}

#[tokio::test]
async fn a_signed_read_covers_the_query_string() {
    let (ingress, _partners) = start().await;
    let path = "/v1/availability?tenant_id=acme&property_id=lisbon-1&room_type=DBL\
                &from=2027-01-10&to=2027-01-12";
    let read = |signature: String, timestamp: i64| {
        ingress
            .get(path)
            .header("authorization", &format!("Bearer {KEY}"))
            .header("x-signature", &signature)
            .header("x-signature-timestamp", &timestamp.to_string())
            .send()
    };
    let timestamp = now();
    // Signed over the path alone, the query string is not covered: refused.
    let path_only = sign(timestamp, "GET", "/v1/availability", "", b"");
    assert_refused(&read(path_only, timestamp).await, "signature-invalid");
    let reply = read(sign(timestamp, "GET", path, "", b""), timestamp).await;
    assert_eq!(
        reply.status.as_u16(),
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
}

/// A captured signed request replayed to another replica is refused: the replicas share
/// the record of signatures seen (in Redis, beside the idempotency records), so a
/// signature is accepted once per deployment, not once per process. A v1 signature does
/// not cover the Idempotency-Key, so without that record the replay under a fresh key
/// would book again; a v2 signature does, so under a fresh key it is not even valid.
#[tokio::test]
async fn a_signature_replayed_to_another_replica_is_refused() {
    let topic = support::create_topic(support::PARTITIONS).await;
    let partners = partners_file();
    // Two replicas of one deployment: the same Redis prefix.
    let prefix = format!(
        "--idempotency-prefix=idem-test-{}",
        uuid::Uuid::new_v4().simple()
    );
    let brokers = support::brokers();
    let extra = [prefix.as_str()];
    let first = IngressProcess::start(partners.path(), &brokers, &topic, &extra).await;
    let second = IngressProcess::start(partners.path(), &brokers, &topic, &extra).await;
    let body = booking();
    let timestamp = now();

    let v1 = sign_as(Scheme::V1, timestamp, "POST", "/v1/bookings", "", &body);
    let accepted = create(&first, "captured-1", Some((&v1, timestamp)), &body).await;
    assert_eq!(
        accepted.status.as_u16(),
        202,
        "{}",
        String::from_utf8_lossy(&accepted.body)
    );
    let replayed = create(&second, "fresh-key-1", Some((&v1, timestamp)), &body).await;
    assert_refused(&replayed, "signature-replayed");

    let v2 = sign(timestamp, "POST", "/v1/bookings", "captured-2", &body);
    let accepted = create(&first, "captured-2", Some((&v2, timestamp)), &body).await;
    assert_eq!(accepted.status.as_u16(), 202);
    let rekeyed = create(&second, "fresh-key-2", Some((&v2, timestamp)), &body).await;
    assert_refused(&rekeyed, "signature-invalid");
    let replayed = create(&second, "captured-2", Some((&v2, timestamp)), &body).await;
    assert_refused(&replayed, "signature-replayed");
}

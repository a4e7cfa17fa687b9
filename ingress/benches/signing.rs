//! What checking a request signature costs: the canonical string (with the body's
//! SHA-256), the constant-time HMAC comparison and the replay-cache insert, per request.
//! Prints numbers; asserts nothing. Run with `cargo bench -p ingress --bench signing`.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use http::{HeaderMap, HeaderValue};
use ingress::signing::{self, Scheme, SeenSignatures, Signed, SignedRequest, SigningSecret};
use ingress::signing::{X_SIGNATURE, X_SIGNATURE_TIMESTAMP};

const REQUESTS: usize = 100_000;
const SECRET: &str = "a-signing-secret-of-at-least-32-bytes";

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let secrets = [SigningSecret::new(SECRET)];
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    for body_len in [400, 4_000] {
        // Distinct bodies, so every signature is new to the replay cache.
        let requests: Vec<(Vec<u8>, HeaderMap)> = (0..REQUESTS)
            .map(|i| {
                let mut body = format!("{i:012}").into_bytes();
                body.resize(body_len, b'x');
                let request = Signed {
                    timestamp: now,
                    method: "POST",
                    path_and_query: "/v1/bookings",
                    idempotency_key: "",
                    body: &body,
                };
                let signature = secrets[0].sign(Scheme::V2, &request);
                let mut headers = HeaderMap::new();
                headers.insert(&X_SIGNATURE, HeaderValue::from_str(&signature).unwrap());
                headers.insert(&X_SIGNATURE_TIMESTAMP, HeaderValue::from(now));
                (body, headers)
            })
            .collect();
        // The process's own tier only: the shared record in Redis adds one `SET NX` round
        // trip per signed request, which this bench leaves out.
        let seen = SeenSignatures::new(REQUESTS as u64 * 2, None, "bench");
        let started = Instant::now();
        runtime.block_on(async {
            for (body, headers) in &requests {
                let request = SignedRequest {
                    headers,
                    method: "POST",
                    path_and_query: "/v1/bookings",
                    body,
                };
                signing::verify(&secrets, &request, &seen).await.unwrap();
            }
        });
        let per_request = started.elapsed() / REQUESTS as u32;
        println!("verify signed request, {body_len} B body: {per_request:?} per request ({REQUESTS} requests, one thread)");
    }
}

//! One delivery attempt: the decision POSTed to the partner's endpoint, signed like the
//! requests partners send us (`partitioner::signing`, scheme v2), with the delivery id as
//! its `Idempotency-Key` so the partner can drop a delivery it already processed, and the
//! answer sorted into delivered, gone (410: stop), or retry (with the endpoint's
//! `Retry-After` if it sent one).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::header::{CONTENT_TYPE, RETRY_AFTER, USER_AGENT};
use http::{HeaderValue, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use partitioner::signing::{Scheme, Signed, X_SIGNATURE, X_SIGNATURE_TIMESTAMP};
use partitioner::webhook::Endpoint;
use uuid::Uuid;

use crate::metrics;

/// The attempt's number, 1 for the first: a partner may log it; it is not signed.
pub const DELIVERY_ATTEMPT: &str = "x-delivery-attempt";
const IDEMPOTENCY_KEY: &str = "idempotency-key";
/// The longest `Retry-After` honoured: an endpoint cannot park its deliveries for days.
const RETRY_AFTER_MAX: Duration = Duration::from_secs(3_600);
/// How much of an answer's body is read (and dropped) so the connection can be reused.
const BODY_READ_MAX: usize = 64 * 1024;

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Attempt {
    Delivered,
    /// 410 Gone: the partner wants no more of this; it is dead-lettered, not retried.
    Gone,
    Retry {
        /// The answer's status, or what went wrong before one came.
        failure: String,
        after: Option<Duration>,
    },
}

pub(crate) struct Sender {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    timeout: Duration,
}

impl Sender {
    pub(crate) fn new(timeout: Duration) -> Result<Sender, std::io::Error> {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(timeout));
        http.set_nodelay(true);
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_native_roots()?
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .build(https);
        Ok(Sender { client, timeout })
    }

    pub(crate) async fn attempt(
        &self,
        endpoint: &Endpoint,
        delivery_id: Uuid,
        body: &Bytes,
        attempt: u32,
    ) -> Attempt {
        let request = signed_request(endpoint, delivery_id, body.clone(), attempt, unix_now());
        let answer = tokio::time::timeout(self.timeout, async {
            let response = self.client.request(request).await?;
            let status = response.status();
            let retry_after = response.headers().get(RETRY_AFTER).and_then(retry_after);
            // Read what the endpoint said, within bounds, so the connection is reused.
            let body = http_body_util::Limited::new(response.into_body(), BODY_READ_MAX);
            let _ = body.collect().await;
            Ok::<_, hyper_util::client::legacy::Error>((status, retry_after))
        })
        .await;
        let outcome = match answer {
            Err(_) => Attempt::Retry {
                failure: "timeout".to_owned(),
                after: None,
            },
            Ok(Err(error)) => Attempt::Retry {
                failure: format!("connection: {error}"),
                after: None,
            },
            Ok(Ok((status, _))) if status.is_success() => Attempt::Delivered,
            Ok(Ok((StatusCode::GONE, _))) => Attempt::Gone,
            Ok(Ok((status, after))) => Attempt::Retry {
                failure: status.as_u16().to_string(),
                after,
            },
        };
        metrics::webhook_attempt(match &outcome {
            Attempt::Delivered => "delivered",
            Attempt::Gone => "gone",
            Attempt::Retry { failure, .. } if failure == "timeout" => "timeout",
            Attempt::Retry { failure, .. } if failure.starts_with("connection") => "connection",
            Attempt::Retry { failure, .. } if failure == "429" => "429",
            Attempt::Retry { failure, .. } if failure.starts_with('4') => "4xx",
            Attempt::Retry { failure, .. } if failure.starts_with('5') => "5xx",
            // 1xx and 3xx: redirects are not followed, the endpoint must be the final URL.
            Attempt::Retry { .. } => "other",
        });
        outcome
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// The POST of one attempt, signed at `timestamp`.
fn signed_request(
    endpoint: &Endpoint,
    delivery_id: Uuid,
    body: Bytes,
    attempt: u32,
    timestamp: i64,
) -> Request<Full<Bytes>> {
    let id = delivery_id.to_string();
    let signature = endpoint.secret.sign(
        Scheme::V2,
        &Signed {
            timestamp,
            method: "POST",
            path_and_query: endpoint.path_and_query(),
            idempotency_key: &id,
            body: &body,
        },
    );
    let mut request = Request::new(Full::new(body));
    *request.method_mut() = Method::POST;
    *request.uri_mut() = endpoint.uri.clone();
    let headers = request.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(
        USER_AGENT,
        HeaderValue::from_static("booking-pipeline-webhooks/1"),
    );
    headers.insert(
        IDEMPOTENCY_KEY,
        HeaderValue::from_str(&id).expect("a UUID is a header value"),
    );
    headers.insert(&X_SIGNATURE_TIMESTAMP, HeaderValue::from(timestamp));
    headers.insert(
        &X_SIGNATURE,
        HeaderValue::from_str(&signature).expect("hex is a header value"),
    );
    headers.insert(DELIVERY_ATTEMPT, HeaderValue::from(attempt));
    request
}

/// `Retry-After` as delta-seconds or an HTTP date, capped at [`RETRY_AFTER_MAX`].
fn retry_after(value: &HeaderValue) -> Option<Duration> {
    let text = value.to_str().ok()?.trim();
    let wait = match text.parse::<u64>() {
        Ok(seconds) => Duration::from_secs(seconds),
        Err(_) => httpdate::parse_http_date(text)
            .ok()?
            .duration_since(SystemTime::now())
            .unwrap_or_default(),
    };
    Some(wait.min(RETRY_AFTER_MAX))
}

#[cfg(test)]
mod tests {
    use partitioner::signing::canonical::{canonical_string, parse_signature};
    use partitioner::webhook::WebhookEntry;

    use super::*;

    #[test]
    fn a_delivery_is_signed_over_the_endpoints_path_and_its_delivery_id() {
        let endpoint = WebhookEntry {
            url: "https://hooks.example.com/in?p=1".into(),
            signing_secret: "k".repeat(32),
            concurrency: None,
            rate_per_second: None,
        }
        .check()
        .unwrap();
        let id = Uuid::from_u128(7);
        let request = signed_request(&endpoint, id, Bytes::from_static(b"{}"), 3, 1_700_000_000);
        let header = |name: &str| request.headers()[name].to_str().unwrap().to_owned();
        assert_eq!(header("idempotency-key"), id.to_string());
        assert_eq!(header("x-signature-timestamp"), "1700000000");
        assert_eq!(header("x-delivery-attempt"), "3");
        // The value Python's hmac and `openssl dgst -hmac` give for the same inputs (the
        // README's verification recipes).
        assert_eq!(
            header("x-signature"),
            "v2=e09cb2a843ca5d5cdd5cd2705aaded39efa06d7f2ee541ec2f95b9fe3961adaa"
        );
        let (scheme, mac) = parse_signature(header("x-signature").as_bytes()).unwrap();
        assert_eq!(scheme, Scheme::V2);
        let signed = Signed {
            timestamp: 1_700_000_000,
            method: "POST",
            path_and_query: "/in?p=1",
            idempotency_key: &id.to_string(),
            body: b"{}",
        };
        assert!(endpoint
            .secret
            .verifies(canonical_string(Scheme::V2, &signed).as_bytes(), &mac));
    }

    #[test]
    fn retry_after_is_seconds_or_a_date_and_capped() {
        let value = |text: &str| retry_after(&HeaderValue::from_str(text).unwrap());
        assert_eq!(value("7"), Some(Duration::from_secs(7)));
        assert_eq!(value("999999"), Some(RETRY_AFTER_MAX));
        assert_eq!(value("Thu, 01 Jan 1970 00:00:00 GMT"), Some(Duration::ZERO));
        let soon = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(90));
        let parsed = value(&soon).unwrap();
        assert!(parsed > Duration::from_secs(85) && parsed <= Duration::from_secs(90));
        assert_eq!(value("soon"), None);
    }
}

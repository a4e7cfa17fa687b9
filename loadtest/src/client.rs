//! A small HTTP/1.1 client for the partner API, with connection reuse and no TLS (load is
//! sent to loopback only).

use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use serde::Serialize;

#[derive(Clone)]
pub struct PartnerClient {
    http: Client<HttpConnector, Full<Bytes>>,
    base_url: String,
    bearer: String,
}

/// One answer from the ingress.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    /// The body as JSON; `Null` when it is not JSON (an OpenTravel answer).
    pub body: serde_json::Value,
    /// The body as sent.
    pub raw: Bytes,
    pub latency: Duration,
}

impl PartnerClient {
    pub fn new(base_url: &str, partner_key: &str) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let http = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        PartnerClient {
            http,
            base_url: base_url.trim_end_matches('/').to_owned(),
            bearer: format!("Bearer {partner_key}"),
        }
    }

    /// Sends a mutation with its `Idempotency-Key` and returns the answer; transport errors
    /// are errors, HTTP statuses are answers.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        idempotency_key: &str,
        body: &impl Serialize,
    ) -> Result<Answer, ClientError> {
        self.send_with(method, path, idempotency_key, body, &[])
            .await
    }

    /// [`send`](Self::send) with extra request headers, such as `Prefer`.
    pub async fn send_with(
        &self,
        method: Method,
        path: &str,
        idempotency_key: &str,
        body: &impl Serialize,
        headers: &[(&str, &str)],
    ) -> Result<Answer, ClientError> {
        let json = serde_json::to_vec(body).expect("request bodies always serialize");
        let mut all = vec![
            ("content-type", "application/json"),
            ("idempotency-key", idempotency_key),
        ];
        all.extend_from_slice(headers);
        self.request(method, path, &all, Bytes::from(json), true)
            .await
    }

    /// A read (`GET`) as this partner.
    pub async fn get(&self, path: &str) -> Result<Answer, ClientError> {
        self.request(Method::GET, path, &[], Bytes::new(), true)
            .await
    }

    /// POSTs an OpenTravel message to `/v1/ota` as `content_type`, with this partner's
    /// bearer key unless `bearer` is false (a SOAP message may carry its credentials
    /// itself), plus `headers`.
    pub async fn post_ota(
        &self,
        body: impl Into<Bytes>,
        content_type: &str,
        bearer: bool,
        headers: &[(&str, &str)],
    ) -> Result<Answer, ClientError> {
        let mut all = vec![("content-type", content_type)];
        all.extend_from_slice(headers);
        self.request(Method::POST, "/v1/ota", &all, body.into(), bearer)
            .await
    }

    async fn request(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Bytes,
        bearer: bool,
    ) -> Result<Answer, ClientError> {
        let mut builder = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base_url));
        if bearer {
            builder = builder.header("authorization", &self.bearer);
        }
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let request = builder
            .body(Full::new(body))
            .map_err(|e| ClientError(e.to_string()))?;
        let started = Instant::now();
        let response = self
            .http
            .request(request)
            .await
            .map_err(|e| ClientError(e.to_string()))?;
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response
            .into_body()
            .collect()
            .await
            .map_err(|e| ClientError(e.to_string()))?
            .to_bytes();
        let latency = started.elapsed();
        let body = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
        Ok(Answer {
            status,
            headers,
            body,
            raw: bytes,
            latency,
        })
    }
}

#[derive(Debug, thiserror::Error)]
#[error("http request failed: {0}")]
pub struct ClientError(String);

/// Load goes to this machine only: refuses a URL whose host is not a loopback address or
/// `localhost`.
pub fn require_loopback(url: &str) -> anyhow::Result<()> {
    let uri: http::Uri = url.parse()?;
    let host = uri.host().unwrap_or_default();
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let loopback = host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    anyhow::ensure!(
        loopback,
        "refusing to send load to {url}: only loopback targets (127.0.0.0/8, ::1, localhost)"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::require_loopback;

    #[test]
    fn only_loopback_targets_are_allowed() {
        for ok in [
            "http://127.0.0.1:8080",
            "http://127.9.9.9",
            "http://localhost:1",
            "http://[::1]:8080",
        ] {
            assert!(require_loopback(ok).is_ok(), "{ok}");
        }
        for refused in [
            "http://10.0.0.1:8080",
            "http://example.com",
            "http://[2001:db8::1]/",
        ] {
            assert!(require_loopback(refused).is_err(), "{refused}");
        }
    }
}

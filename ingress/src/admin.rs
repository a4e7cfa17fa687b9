//! The admin port: Prometheus metrics and the health probes.
//!
//! It listens apart from the partner API so scrapes and probes never compete with
//! partners for in-flight slots, and so it can stay closed to the internet. `/healthz`
//! answers 200 while the process serves at all; `/readyz` answers 200 only between a
//! successful startup (topic metadata fetched) and the start of shutdown, and only while
//! the broker answers ([`crate::broker_watch`]), which is what a load balancer should
//! route on.

use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::Full;

/// Whether the ingress should receive traffic.
#[derive(Debug, Default)]
pub struct Health {
    /// Started and not yet shutting down.
    ready: AtomicBool,
    /// The broker probe's verdict; reachable until a probe says otherwise, since startup
    /// itself needed the broker.
    broker_unreachable: AtomicBool,
}

impl Health {
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::SeqCst);
    }

    pub fn set_broker_reachable(&self, reachable: bool) {
        self.broker_unreachable.store(!reachable, Ordering::SeqCst);
    }

    pub fn is_ready(&self) -> bool {
        self.not_ready_because().is_none()
    }

    /// Why the ingress should not receive traffic, if it should not.
    pub fn not_ready_because(&self) -> Option<&'static str> {
        if !self.ready.load(Ordering::SeqCst) {
            Some("not ready: starting or stopping\n")
        } else if self.broker_unreachable.load(Ordering::SeqCst) {
            Some("not ready: broker unreachable\n")
        } else {
            None
        }
    }
}

const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

pub fn handle<B>(health: &Health, request: &Request<B>) -> Response<Full<Bytes>> {
    if request.method() != Method::GET && request.method() != Method::HEAD {
        let mut response = text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return response;
    }
    match request.uri().path() {
        "/healthz" => text(StatusCode::OK, "ok\n"),
        "/readyz" => match health.not_ready_because() {
            None => text(StatusCode::OK, "ready\n"),
            Some(why) => text(StatusCode::SERVICE_UNAVAILABLE, why),
        },
        "/metrics" => match crate::metrics::handle() {
            Some(handle) => {
                let mut response = text(StatusCode::OK, handle.render());
                response.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static(PROMETHEUS_TEXT),
                );
                response
            }
            None => text(
                StatusCode::SERVICE_UNAVAILABLE,
                "metrics recorder not installed\n",
            ),
        },
        _ => text(StatusCode::NOT_FOUND, "not found\n"),
    }
}

fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(health: &Health, path: &str) -> StatusCode {
        let request = Request::get(path).body(()).unwrap();
        handle(health, &request).status()
    }

    #[test]
    fn readiness_follows_the_flag() {
        let health = Health::default();
        assert_eq!(get(&health, "/healthz"), StatusCode::OK);
        assert_eq!(get(&health, "/readyz"), StatusCode::SERVICE_UNAVAILABLE);
        health.set_ready(true);
        assert_eq!(get(&health, "/readyz"), StatusCode::OK);
        health.set_broker_reachable(false);
        assert_eq!(get(&health, "/readyz"), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(get(&health, "/healthz"), StatusCode::OK);
        health.set_broker_reachable(true);
        assert_eq!(get(&health, "/readyz"), StatusCode::OK);
        health.set_ready(false);
        assert_eq!(get(&health, "/readyz"), StatusCode::SERVICE_UNAVAILABLE);
    }

    #[test]
    fn metrics_render_once_installed() {
        crate::metrics::install().unwrap();
        crate::metrics::request_done("/v1/bookings", 202, std::time::Duration::from_millis(3));
        let request = Request::get("/metrics").body(()).unwrap();
        let response = handle(&Health::default(), &request);
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()[header::CONTENT_TYPE], PROMETHEUS_TEXT);
        let rendered = crate::metrics::handle().unwrap().render();
        assert!(
            rendered.contains("ingress_requests_total{route=\"/v1/bookings\",status=\"202\"}"),
            "{rendered}"
        );
        assert!(
            rendered.contains("ingress_request_duration_seconds_bucket"),
            "{rendered}"
        );
    }

    #[test]
    fn other_paths_and_methods_are_refused() {
        assert_eq!(get(&Health::default(), "/"), StatusCode::NOT_FOUND);
        let request = Request::post("/healthz").body(()).unwrap();
        assert_eq!(
            handle(&Health::default(), &request).status(),
            StatusCode::METHOD_NOT_ALLOWED
        );
    }
}

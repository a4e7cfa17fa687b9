//! The admin server: `/metrics` for Prometheus, `/healthz` and `/readyz` for orchestrators.

use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::net::TcpListener;
use tracing::debug;

/// Serves until the task is dropped. `ready` is true while the consumer is in its group and
/// able to apply events.
pub async fn serve(
    listener: TcpListener,
    metrics: Option<PrometheusHandle>,
    ready: Arc<AtomicBool>,
) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let metrics = metrics.clone();
        let ready = ready.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                let response = route(&req, metrics.as_ref(), &ready);
                async move { Ok::<_, Infallible>(response) }
            });
            if let Err(e) = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                debug!(error = %e, "admin connection ended with an error");
            }
        });
    }
}

fn route(
    req: &Request<hyper::body::Incoming>,
    metrics: Option<&PrometheusHandle>,
    ready: &AtomicBool,
) -> Response<Full<Bytes>> {
    let (status, body) = match req.uri().path() {
        "/metrics" => match metrics {
            Some(handle) => (StatusCode::OK, handle.render()),
            None => (
                StatusCode::NOT_FOUND,
                "metrics are not installed\n".to_owned(),
            ),
        },
        "/healthz" => (StatusCode::OK, "ok\n".to_owned()),
        "/readyz" if ready.load(Ordering::Relaxed) => (StatusCode::OK, "ready\n".to_owned()),
        "/readyz" => (StatusCode::SERVICE_UNAVAILABLE, "not ready\n".to_owned()),
        _ => (StatusCode::NOT_FOUND, "not found\n".to_owned()),
    };
    Response::builder()
        .status(status)
        .header("content-type", "text/plain; version=0.0.4")
        .body(Full::new(Bytes::from(body)))
        .expect("static response parts are valid")
}

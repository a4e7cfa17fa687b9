//! The admin port both binaries serve: `/metrics` for Prometheus, `/healthz` and `/readyz`
//! for orchestrators, and the process's Prometheus recorder behind `/metrics`.
//!
//! It listens apart from partner traffic, so scrapes and probes never compete with partners
//! for connections and it can stay closed to the internet. `/healthz` answers 200 while
//! the process serves at all; `/readyz` answers 200 only while the process says it is
//! ready ([`Readiness`]), which is what a load balancer or an orchestrator acts on.
//!
//! The one part of this crate that does I/O, behind the `admin` feature, so the contract's
//! other users (benchmarks, fuzz targets) build without a server.

use std::convert::Infallible;
use std::future::Future;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use metrics_exporter_prometheus::{BuildError, Matcher, PrometheusBuilder, PrometheusHandle};
use tokio::net::TcpListener;
use tokio::task::JoinSet;

/// Whether the process should receive traffic (or, for a consumer, work).
pub trait Readiness: Send + Sync + 'static {
    /// Why not, when it should not: the body of the 503.
    fn not_ready_because(&self) -> Option<&'static str>;
}

/// Pause after a failed accept (typically out of file descriptors), so the loop does not
/// spin while the condition lasts.
pub const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);
/// How often histogram samples are folded into buckets when nobody scrapes, so they
/// cannot pile up in memory between scrapes.
const METRICS_UPKEEP: Duration = Duration::from_secs(5);
/// Probes and scrapes are small: a request head slower or bigger than this is refused.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
const MAX_HEADERS: usize = 32;
const MAX_BUF_BYTES: usize = 16 * 1024;

const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

static RECORDER: OnceLock<PrometheusHandle> = OnceLock::new();
/// Serialises [`install_recorder`], so two servers started at once in one test process do
/// not race to set the global recorder.
static INSTALLING: Mutex<()> = Mutex::new(());

/// Installs the Prometheus recorder as the process's global recorder, once, with
/// `buckets` for the named histograms, and runs `describe` (help texts); later calls
/// return the same handle. Fails if another recorder was installed first.
pub fn install_recorder(
    buckets: &[(&str, &[f64])],
    describe: fn(),
) -> Result<&'static PrometheusHandle, BuildError> {
    let _guard = INSTALLING
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(handle) = RECORDER.get() {
        return Ok(handle);
    }
    let mut builder = PrometheusBuilder::new();
    for (name, bounds) in buckets {
        builder = builder.set_buckets_for_metric(Matcher::Full((*name).into()), bounds)?;
    }
    let recorder = builder.build_recorder();
    let handle = recorder.handle();
    metrics::set_global_recorder(recorder)?;
    describe();
    Ok(RECORDER.get_or_init(|| handle))
}

/// The installed recorder's handle, if [`install_recorder`] succeeded.
pub fn recorder() -> Option<&'static PrometheusHandle> {
    RECORDER.get()
}

/// Serves the admin port until `stop` resolves. Probes and scrapes are short, so open
/// admin connections are dropped at the end rather than drained.
pub async fn serve(
    listener: TcpListener,
    readiness: Arc<dyn Readiness>,
    stop: impl Future<Output = ()>,
) {
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_headers(MAX_HEADERS)
        .max_buf_size(MAX_BUF_BYTES);
    let mut connections = JoinSet::new();
    let mut upkeep = tokio::time::interval(METRICS_UPKEEP);
    tokio::pin!(stop);
    loop {
        tokio::select! {
            () = &mut stop => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            _ = upkeep.tick() => {
                if let Some(handle) = recorder() {
                    handle.run_upkeep();
                }
            }
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => {
                    let readiness = readiness.clone();
                    let service = service_fn(move |request: Request<hyper::body::Incoming>| {
                        let response = respond(&*readiness, &request);
                        async move { Ok::<_, Infallible>(response) }
                    });
                    let connection = http.serve_connection(TokioIo::new(stream), service);
                    connections.spawn(async move {
                        if let Err(error) = connection.await {
                            tracing::debug!(%error, "admin connection ended with an error");
                        }
                    });
                }
                Err(error) => {
                    tracing::warn!(%error, "admin accept failed");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            },
        }
    }
    connections.shutdown().await;
}

/// The answer to one admin request.
pub fn respond<B>(readiness: &dyn Readiness, request: &Request<B>) -> Response<Full<Bytes>> {
    if request.method() != Method::GET && request.method() != Method::HEAD {
        let mut response = text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return response;
    }
    match request.uri().path() {
        "/healthz" => text(StatusCode::OK, "ok\n"),
        "/readyz" => match readiness.not_ready_because() {
            None => text(StatusCode::OK, "ready\n"),
            Some(why) => text(StatusCode::SERVICE_UNAVAILABLE, why),
        },
        "/metrics" => match recorder() {
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
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;

    struct Flag(AtomicBool);

    impl Readiness for Flag {
        fn not_ready_because(&self) -> Option<&'static str> {
            (!self.0.load(Ordering::SeqCst)).then_some("not ready\n")
        }
    }

    fn status(readiness: &dyn Readiness, request: Request<()>) -> StatusCode {
        respond(readiness, &request).status()
    }

    #[test]
    fn readiness_follows_the_process() {
        let flag = Flag(AtomicBool::new(false));
        let get = |path| Request::get(path).body(()).unwrap();
        assert_eq!(status(&flag, get("/healthz")), StatusCode::OK);
        assert_eq!(
            status(&flag, get("/readyz")),
            StatusCode::SERVICE_UNAVAILABLE
        );
        flag.0.store(true, Ordering::SeqCst);
        assert_eq!(status(&flag, get("/readyz")), StatusCode::OK);
        assert_eq!(status(&flag, get("/")), StatusCode::NOT_FOUND);
        let post = Request::post("/healthz").body(()).unwrap();
        assert_eq!(status(&flag, post), StatusCode::METHOD_NOT_ALLOWED);
    }

    #[test]
    fn metrics_render_with_their_buckets_once_installed() {
        let flag = Flag(AtomicBool::new(true));
        install_recorder(&[("admin_test_seconds", &[0.5, 1.0])], || {}).unwrap();
        metrics::histogram!("admin_test_seconds").record(0.7);
        let response = respond(&flag, &Request::get("/metrics").body(()).unwrap());
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()[header::CONTENT_TYPE], PROMETHEUS_TEXT);
        let rendered = recorder().unwrap().render();
        assert!(
            rendered.contains("admin_test_seconds_bucket{le=\"1\"} 1"),
            "{rendered}"
        );
    }
}

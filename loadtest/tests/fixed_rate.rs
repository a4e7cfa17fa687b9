//! The fixed-rate generator against a real hyper server on loopback (this test's own, so
//! it can be slow on purpose and count the connections it is given): the schedule is kept,
//! the connection set stays fixed, an overloaded server sheds arrivals instead of delaying
//! them, and latency runs from each create's due time.

use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use loadtest::endpoint::Endpoint;
use loadtest::fixed_rate::{self, FixedRateConfig};
use tokio::net::TcpListener;

/// A server answering `status` after `delay`, counting the connections it accepts and the
/// requests whose path and content type are the bridge's.
struct Server {
    addr: String,
    connections: Arc<AtomicUsize>,
    bridge_requests: Arc<AtomicUsize>,
}

async fn serve(status: StatusCode, delay: Duration) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let connections = Arc::new(AtomicUsize::new(0));
    let bridge_requests = Arc::new(AtomicUsize::new(0));
    let (accepted, bridge) = (connections.clone(), bridge_requests.clone());
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            accepted.fetch_add(1, Ordering::SeqCst);
            let bridge = bridge.clone();
            let service = service_fn(move |request: http::Request<hyper::body::Incoming>| {
                let bridge = bridge.clone();
                async move {
                    let to_bridge = request.uri().path() == "/topics/bench"
                        && request.headers()["content-type"]
                            == "application/vnd.kafka.json.v2+json";
                    let body = request.into_body().collect().await.unwrap().to_bytes();
                    let parsed: serde_json::Value = serde_json::from_slice(&body).unwrap();
                    if to_bridge && parsed["records"][0]["value"]["event"].is_object() {
                        bridge.fetch_add(1, Ordering::SeqCst);
                    }
                    tokio::time::sleep(delay).await;
                    let mut response = Response::new(Full::new(Bytes::from_static(b"{}")));
                    *response.status_mut() = status;
                    Ok::<_, Infallible>(response)
                }
            });
            tokio::spawn(http1::Builder::new().serve_connection(TokioIo::new(stream), service));
        }
    });
    Server {
        addr,
        connections,
        bridge_requests,
    }
}

fn config(server: &Server, endpoint: Endpoint, connections: usize, rate: f64) -> FixedRateConfig {
    FixedRateConfig {
        addr: server.addr.clone(),
        endpoint,
        connections,
        rate,
        duration: Duration::from_secs(1),
        run_id: "fixed-rate-test".into(),
        properties: 20,
        max_queued: 10,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_keeps_up_gets_the_whole_schedule_over_the_given_connections() {
    let server = serve(StatusCode::OK, Duration::ZERO).await;
    let endpoint = Endpoint::kafka_bridge("bench", 20);
    let result = fixed_rate::run(config(&server, endpoint, 4, 200.0))
        .await
        .unwrap();
    assert_eq!(result.scheduled, 200);
    assert_eq!(result.shed_by_generator, 0);
    assert_eq!(result.transport_errors, 0);
    assert_eq!(
        result.statuses.get(&200),
        Some(&200),
        "{:?}",
        result.statuses
    );
    assert_eq!(result.latency_ms.count, 200);
    assert!((result.acknowledged_rate - 200.0).abs() < 1e-9);
    // The schedule and the four warm-up creates, all the bridge's, on four connections.
    assert_eq!(server.bridge_requests.load(Ordering::SeqCst), 204);
    assert_eq!(server.connections.load(Ordering::SeqCst), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_overloaded_server_sheds_arrivals_and_its_latency_counts_from_their_due_time() {
    // Two connections answering every 50 ms carry at most 40 creates/s; 200/s arrive.
    let server = serve(StatusCode::OK, Duration::from_millis(50)).await;
    let endpoint = Endpoint::kafka_bridge("bench", 20);
    let result = fixed_rate::run(config(&server, endpoint, 2, 200.0))
        .await
        .unwrap();
    let answered: u64 = result.statuses.values().sum();
    assert_eq!(
        answered as usize + result.shed_by_generator,
        result.scheduled,
        "every arrival is either answered or shed: {result:?}"
    );
    assert!(result.shed_by_generator > 100, "{result:?}");
    assert_eq!(server.connections.load(Ordering::SeqCst), 2);
    // Queued behind others, the later creates wait well past the server's own 50 ms.
    assert!(result.latency_ms.p50 >= 50.0, "{:?}", result.latency_ms);
    assert!(result.latency_ms.max > 100.0, "{:?}", result.latency_ms);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_endpoint_s_own_acknowledgement_counts() {
    // The ingress acknowledges with 202: a 200 from it is not an acknowledgement.
    let server = serve(StatusCode::OK, Duration::ZERO).await;
    let result = fixed_rate::run(config(&server, Endpoint::ingress("key"), 2, 50.0))
        .await
        .unwrap();
    assert_eq!(result.statuses.get(&200), Some(&50));
    assert_eq!(result.latency_ms.count, 0);
    assert_eq!(result.acknowledged_rate, 0.0);
    assert_eq!(server.bridge_requests.load(Ordering::SeqCst), 0);
}

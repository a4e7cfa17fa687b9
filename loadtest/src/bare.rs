//! `loadtest bare-hyper`: the baseline the ingress is measured against — a minimal hyper 1
//! HTTP/1 server that reads each request's body and answers 202 with a small JSON body of
//! the ingress's shape, doing nothing else.
//!
//! It runs with the ingress's runtime (tokio's multi-threaded default, one worker per
//! core) and the same connection settings (`TCP_NODELAY`, keep-alive, header read timeout,
//! header and buffer limits), so the difference between the two is the ingress's own work.

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use http::{header, HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;

/// About the size of the ingress's 202 body.
const ACCEPTED: &[u8] = br#"{"booking_id":"6f1c2d4e-8a7b-5c3d-9e0f-1a2b3c4d5e6f","event_id":"6f1c2d4e-8a7b-5c3d-9e0f-1a2b3c4d5e6f","status":"accepted","partition":0,"offset":0}"#;

/// Serves until the process ends.
pub async fn serve(listener: TcpListener) -> std::io::Result<()> {
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(5))
        .max_headers(64)
        .max_buf_size(64 * 1024)
        .keep_alive(true);
    loop {
        let (stream, _peer) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        let connection = http.serve_connection(TokioIo::new(stream), service_fn(answer));
        tokio::spawn(async move {
            let _ = connection.await;
        });
    }
}

async fn answer(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    // The body is read whole, as the ingress must before it can validate it.
    let status = match request.into_body().collect().await {
        Ok(_) => StatusCode::ACCEPTED,
        Err(_) => StatusCode::BAD_REQUEST,
    };
    let mut response = Response::new(Full::new(Bytes::from_static(ACCEPTED)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(response)
}

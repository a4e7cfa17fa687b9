//! The OpenAPI 3.1 document of the partner API, `ingress/openapi.json`, compiled into the
//! binary and served at `GET /openapi.json`.
//!
//! The document is written by hand, as the contract partners code against. The tests
//! below keep it honest: every route in [`Route::TABLE`](crate::routes::Route::TABLE) and
//! every status each route can produce must be documented.

use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};
use http_body_util::Full;

pub const SPEC: &str = include_str!("../openapi.json");

pub fn response() -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(SPEC.as_bytes())));
    *response.status_mut() = StatusCode::OK;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

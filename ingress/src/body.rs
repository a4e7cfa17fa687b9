//! Reading a request body under the size limit, once: the signature check and the
//! mutation both need it, and whichever comes first reads it.

use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::body::{Body, Incoming};

use crate::problem::ApiError;

/// A request body: still on the wire, or already read because a signature covers it.
pub enum RequestBody {
    Unread(Incoming),
    Read(Bytes),
}

/// Reads the whole body, refusing more than `limit` bytes: up front when Content-Length
/// already says so, else as soon as the stream passes the limit.
pub async fn read_body(body: RequestBody, limit: usize) -> Result<Bytes, ApiError> {
    let body = match body {
        RequestBody::Read(bytes) => return Ok(bytes),
        RequestBody::Unread(body) => body,
    };
    let too_large = ApiError::PayloadTooLarge { limit };
    if body.size_hint().lower() > limit as u64 {
        return Err(too_large);
    }
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(error) if error.is::<http_body_util::LengthLimitError>() => Err(too_large),
        Err(error) => Err(ApiError::MalformedJson(format!(
            "could not read the body: {error}"
        ))),
    }
}

//! The request headers the ingress reads besides `Authorization`: content type,
//! `Idempotency-Key`, `X-Request-Id` and `traceparent`.
//!
//! Each is checked here once, with the same rules on every route, so handlers deal only
//! in values that are already known to be good.

use http::{header, HeaderMap, HeaderName};
use uuid::Uuid;

use crate::problem::ApiError;

pub static IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");
pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
pub static TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
/// Marks a response replayed from an idempotency record (IETF idempotency-key draft).
pub static IDEMPOTENT_REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");

/// Longest partner-supplied request id we carry; longer ones are replaced, not truncated,
/// since a truncated id would no longer match the partner's own logs.
pub const MAX_REQUEST_ID_LEN: usize = 128;

/// Requires `Content-Type: application/json`, with any parameters (`charset=utf-8`).
pub fn require_json(headers: &HeaderMap) -> Result<(), ApiError> {
    let value = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .ok_or(ApiError::UnsupportedMediaType)?;
    let essence = value.split(';').next().unwrap_or_default().trim();
    if essence.eq_ignore_ascii_case("application/json") {
        Ok(())
    } else {
        Err(ApiError::UnsupportedMediaType)
    }
}

/// Whether the body is XML: `text/xml` (SOAP 1.1's) or `application/xml`, with any
/// parameters.
pub fn is_xml(headers: &HeaderMap) -> bool {
    let essence = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|value| value.split(';').next())
        .unwrap_or_default()
        .trim();
    ["text/xml", "application/xml"]
        .iter()
        .any(|xml| essence.eq_ignore_ascii_case(xml))
}

/// The `Idempotency-Key` of a route where it may be absent, checked like
/// [`idempotency_key`] when present.
pub fn optional_idempotency_key(headers: &HeaderMap) -> Result<Option<&str>, ApiError> {
    if headers.contains_key(&IDEMPOTENCY_KEY) {
        idempotency_key(headers).map(Some)
    } else {
        Ok(None)
    }
}

/// The `Idempotency-Key`, which every mutation must carry: it derives the event id, so
/// without it a retry could not be recognised as one.
pub fn idempotency_key(headers: &HeaderMap) -> Result<&str, ApiError> {
    let value = headers
        .get(&IDEMPOTENCY_KEY)
        .ok_or(ApiError::MissingIdempotencyKey)?;
    let key = value
        .to_str()
        .map_err(|_| ApiError::BadIdempotencyKey("must be printable ASCII".into()))?;
    match partitioner::validate::idempotency_key_problem(key) {
        Some(problem) => Err(ApiError::BadIdempotencyKey(problem)),
        None => Ok(key),
    }
}

/// The partner's `X-Request-Id` when it is 1..=128 printable ASCII characters, else a
/// fresh UUIDv4. A bad id is replaced rather than refused: it exists to correlate logs and
/// must never be the reason a booking fails.
pub fn request_id(headers: &HeaderMap) -> String {
    headers
        .get(&X_REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|id| is_printable(id, MAX_REQUEST_ID_LEN))
        .map(str::to_owned)
        .unwrap_or_else(|| Uuid::new_v4().to_string())
}

/// A W3C `traceparent` worth carrying to Kafka: `version-traceid-parentid-flags` in
/// lowercase hex. Anything else is dropped, as the W3C spec asks of an invalid header.
pub fn traceparent(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(&TRACEPARENT)?.to_str().ok()?;
    let mut parts = value.split('-');
    let lens = [2, 32, 16, 2];
    let well_formed = lens.iter().all(|&len| {
        parts.next().is_some_and(|part| {
            part.len() == len && part.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        })
    });
    // Version 00 has exactly four fields; later versions may append more.
    let version_ok = match &value[..2.min(value.len())] {
        "ff" => false,
        "00" => parts.next().is_none(),
        _ => true,
    };
    (well_formed && version_ok && value.len() <= 512).then_some(value)
}

fn is_printable(value: &str, max_len: usize) -> bool {
    !value.is_empty() && value.len() <= max_len && value.bytes().all(|b| (0x20..=0x7e).contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(name: &HeaderName, value: &[u8]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(name.clone(), HeaderValue::from_bytes(value).unwrap());
        headers
    }

    #[test]
    fn media_type_allows_parameters_and_case() {
        for ok in [
            "application/json",
            "application/json; charset=utf-8",
            "Application/JSON",
        ] {
            assert!(
                require_json(&headers(&header::CONTENT_TYPE, ok.as_bytes())).is_ok(),
                "{ok}"
            );
        }
        for bad in [
            "text/plain",
            "application/jsonx",
            "application/problem+json",
            "",
        ] {
            let result = require_json(&headers(&header::CONTENT_TYPE, bad.as_bytes()));
            assert!(
                matches!(result, Err(ApiError::UnsupportedMediaType)),
                "{bad}"
            );
        }
        assert!(require_json(&HeaderMap::new()).is_err());
    }

    #[test]
    fn idempotency_key_is_required_and_checked() {
        assert!(matches!(
            idempotency_key(&HeaderMap::new()),
            Err(ApiError::MissingIdempotencyKey)
        ));
        assert_eq!(
            idempotency_key(&headers(&IDEMPOTENCY_KEY, b"order-42")).unwrap(),
            "order-42"
        );
        let long = "k".repeat(256);
        assert!(matches!(
            idempotency_key(&headers(&IDEMPOTENCY_KEY, long.as_bytes())),
            Err(ApiError::BadIdempotencyKey(_))
        ));
        assert!(matches!(
            idempotency_key(&headers(&IDEMPOTENCY_KEY, b"caf\xc3\xa9")),
            Err(ApiError::BadIdempotencyKey(_))
        ));
    }

    #[test]
    fn request_id_is_kept_when_sane_else_generated() {
        assert_eq!(request_id(&headers(&X_REQUEST_ID, b"abc-123")), "abc-123");
        let generated = request_id(&HeaderMap::new());
        assert_eq!(Uuid::parse_str(&generated).unwrap().get_version_num(), 4);
        let long = "r".repeat(129);
        for bad in [long.as_bytes(), b"tab\there", b"\xff\xfe"] {
            let id = request_id(&headers(&X_REQUEST_ID, bad));
            assert!(Uuid::parse_str(&id).is_ok(), "{bad:?} kept as {id}");
        }
        assert_eq!(
            request_id(&headers(&X_REQUEST_ID, "r".repeat(128).as_bytes())).len(),
            128
        );
    }

    #[test]
    fn traceparent_is_carried_only_when_well_formed() {
        let good = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        assert_eq!(
            traceparent(&headers(&TRACEPARENT, good.as_bytes())),
            Some(good)
        );
        for bad in [
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "garbage",
        ] {
            assert_eq!(
                traceparent(&headers(&TRACEPARENT, bad.as_bytes())),
                None,
                "{bad}"
            );
        }
        let future = "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-more";
        assert!(traceparent(&headers(&TRACEPARENT, future.as_bytes())).is_some());
        assert_eq!(traceparent(&HeaderMap::new()), None);
    }
}

//! Every way a request can fail, and its RFC 9457 `application/problem+json` answer.
//!
//! [`ApiError`] is the single error type of the request path and [`ApiError::status`] its
//! single mapping to an HTTP status, so a new failure mode cannot reach a partner without
//! someone deciding what it means to them. Problem bodies carry a stable `type` slug a
//! partner can branch on, and a validation failure lists every bad field at once.

use std::time::Duration;

use bytes::Bytes;
use http::{header, HeaderName, HeaderValue, Response, StatusCode};
use http_body_util::Full;
use partitioner::{FieldError, Invalid, RequestError};
use serde::Serialize;

use crate::signing::error::SignatureError;

/// How long a client should wait before retrying a 503. One second is long enough for a
/// queue to drain or a broker leader to move, and short next to a partner's own timeouts.
pub const RETRY_AFTER: Duration = Duration::from_secs(1);

pub const PROBLEM_JSON: &str = "application/problem+json";

/// The IETF ratelimit-headers draft's fields, sent with every 429.
pub static RATELIMIT_LIMIT: HeaderName = HeaderName::from_static("ratelimit-limit");
pub static RATELIMIT_REMAINING: HeaderName = HeaderName::from_static("ratelimit-remaining");
pub static RATELIMIT_RESET: HeaderName = HeaderName::from_static("ratelimit-reset");

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The body is not JSON, or a field has the wrong JSON type; the detail names the path.
    #[error("malformed JSON: {0}")]
    MalformedJson(String),
    #[error(transparent)]
    Invalid(#[from] Invalid),
    #[error("missing Idempotency-Key header")]
    MissingIdempotencyKey,
    #[error("bad Idempotency-Key header: {0}")]
    BadIdempotencyKey(String),
    #[error("missing or unknown API key")]
    Unauthorized,
    /// The partner must sign its requests and this one's signature does not pass.
    #[error(transparent)]
    Signature(#[from] SignatureError),
    #[error("forbidden: {0}")]
    Forbidden(String),
    #[error("no such resource")]
    NotFound,
    #[error("method not allowed")]
    MethodNotAllowed { allow: &'static str },
    #[error("request body larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("content type must be application/json")]
    UnsupportedMediaType,
    #[error("Idempotency-Key already used for a different request")]
    IdempotencyKeyReused,
    #[error("a request with this Idempotency-Key is still being processed")]
    IdempotencyKeyInFlight,
    /// The partner's token bucket is empty; `limit` is its burst, `retry_after` when the
    /// next request would pass.
    #[error("rate limit exceeded")]
    RateLimited { limit: u32, retry_after: Duration },
    /// The consumer decided against the booking (answered only to `Prefer: wait`);
    /// `reason` is a [`partitioner::RejectReason`] slug.
    #[error("the booking was rejected: {reason}")]
    BookingRejected { reason: &'static str },
    #[error("unknown booking, or not yet processed")]
    BookingNotFound,
    #[error("too many requests in flight")]
    Overloaded,
    #[error("broker unavailable: {0}")]
    BrokerUnavailable(String),
    #[error("broker did not confirm delivery within the budget")]
    DeliveryTimeout,
    /// Redis, which holds the projections the read endpoints serve, did not answer.
    #[error("projections unavailable: {0}")]
    ProjectionsUnavailable(String),
    /// A bug or an impossible state; the detail is logged, never sent.
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<RequestError> for ApiError {
    fn from(error: RequestError) -> Self {
        match error {
            RequestError::Malformed(detail) => ApiError::MalformedJson(detail),
            RequestError::Invalid(invalid) => ApiError::Invalid(invalid),
        }
    }
}

impl ApiError {
    /// The one mapping from failure to HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::MalformedJson(_) => StatusCode::BAD_REQUEST,
            ApiError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::MissingIdempotencyKey => StatusCode::BAD_REQUEST,
            ApiError::BadIdempotencyKey(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Signature(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::IdempotencyKeyReused => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::IdempotencyKeyInFlight => StatusCode::CONFLICT,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::BookingRejected { .. } => StatusCode::CONFLICT,
            ApiError::BookingNotFound => StatusCode::NOT_FOUND,
            ApiError::Overloaded => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::BrokerUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::DeliveryTimeout => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::ProjectionsUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable problem type slug, relative to `/problems/`.
    fn slug(&self) -> &'static str {
        match self {
            ApiError::MalformedJson(_) => "malformed-json",
            ApiError::Invalid(_) => "validation",
            ApiError::MissingIdempotencyKey => "missing-idempotency-key",
            ApiError::BadIdempotencyKey(_) => "bad-idempotency-key",
            ApiError::Unauthorized => "unauthorized",
            ApiError::Signature(error) => error.slug(),
            ApiError::Forbidden(_) => "forbidden",
            ApiError::NotFound => "not-found",
            ApiError::MethodNotAllowed { .. } => "method-not-allowed",
            ApiError::PayloadTooLarge { .. } => "payload-too-large",
            ApiError::UnsupportedMediaType => "unsupported-media-type",
            ApiError::IdempotencyKeyReused => "idempotency-key-reused",
            ApiError::IdempotencyKeyInFlight => "idempotency-key-in-flight",
            ApiError::RateLimited { .. } => "rate-limited",
            ApiError::BookingRejected { .. } => "booking-rejected",
            ApiError::BookingNotFound => "not-found",
            ApiError::Overloaded => "overloaded",
            ApiError::BrokerUnavailable(_) => "broker-unavailable",
            ApiError::DeliveryTimeout => "delivery-timeout",
            ApiError::ProjectionsUnavailable(_) => "projections-unavailable",
            ApiError::Internal(_) => "internal",
        }
    }

    /// What the partner is told. Internal and broker details stay in the logs: they name
    /// hosts and internals that are none of a partner's business.
    pub fn public_detail(&self) -> String {
        match self {
            // The title already says what kind of problem it is; the detail says where.
            ApiError::MalformedJson(detail) | ApiError::Forbidden(detail) => detail.clone(),
            ApiError::Invalid(invalid) => {
                format!("{} field(s) failed validation", invalid.errors.len())
            }
            ApiError::BrokerUnavailable(_) => "the event log is unavailable; retry later".into(),
            ApiError::DeliveryTimeout => {
                "the event log did not confirm in time; retry with the same Idempotency-Key".into()
            }
            ApiError::ProjectionsUnavailable(_) => {
                "booking status and availability are unavailable; retry later".into()
            }
            ApiError::Internal(_) => "internal error".into(),
            other => other.to_string(),
        }
    }

    fn field_errors(&self) -> &[FieldError] {
        match self {
            ApiError::Invalid(invalid) => &invalid.errors,
            _ => &[],
        }
    }

    /// Renders the problem+json response; `instance` is the request path and `request_id`
    /// lets a partner quote the failing request to support.
    pub fn to_response(&self, instance: &str, request_id: &str) -> Response<Full<Bytes>> {
        let status = self.status();
        let body = Problem {
            kind: format!("/problems/{}", self.slug()),
            title: status.canonical_reason().unwrap_or("Error"),
            status: status.as_u16(),
            detail: self.public_detail(),
            instance,
            request_id,
            errors: self.field_errors(),
            reason: match self {
                ApiError::BookingRejected { reason } => Some(reason),
                _ => None,
            },
        };
        let json = serde_json::to_vec(&body).expect("a problem always serializes");
        let mut response = Response::new(Full::new(Bytes::from(json)));
        *response.status_mut() = status;
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        match self {
            ApiError::Unauthorized => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            ApiError::MethodNotAllowed { allow } => {
                headers.insert(header::ALLOW, HeaderValue::from_static(allow));
            }
            ApiError::RateLimited { limit, retry_after } => {
                // Whole seconds, rounded up: retrying at the rounded-down second would
                // only be refused again.
                let wait = retry_after.as_millis().div_ceil(1000).max(1) as u64;
                headers.insert(header::RETRY_AFTER, HeaderValue::from(wait));
                headers.insert(&RATELIMIT_LIMIT, HeaderValue::from(*limit));
                headers.insert(&RATELIMIT_REMAINING, HeaderValue::from(0));
                headers.insert(&RATELIMIT_RESET, HeaderValue::from(wait));
            }
            _ => {}
        }
        // A rejection is final: retrying the same request would only be rejected again.
        let retryable = !matches!(self, ApiError::BookingRejected { .. });
        if retryable
            && (status == StatusCode::SERVICE_UNAVAILABLE || status == StatusCode::CONFLICT)
        {
            headers.insert(
                header::RETRY_AFTER,
                HeaderValue::from(RETRY_AFTER.as_secs()),
            );
        }
        response
    }
}

#[derive(Serialize)]
struct Problem<'a> {
    #[serde(rename = "type")]
    kind: String,
    title: &'static str,
    status: u16,
    detail: String,
    instance: &'a str,
    request_id: &'a str,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    errors: &'a [FieldError],
    /// Why a booking was rejected, as a slug a partner can branch on.
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'static str>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    async fn body_json(response: Response<Full<Bytes>>) -> serde_json::Value {
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[test]
    fn status_mapping_is_explicit() {
        let cases = [
            (ApiError::MalformedJson("x".into()), 400),
            (ApiError::Invalid(Invalid { errors: vec![] }), 422),
            (ApiError::MissingIdempotencyKey, 400),
            (ApiError::BadIdempotencyKey("x".into()), 400),
            (ApiError::Unauthorized, 401),
            (ApiError::Signature(SignatureError::Replayed), 401),
            (ApiError::Forbidden("x".into()), 403),
            (ApiError::NotFound, 404),
            (ApiError::MethodNotAllowed { allow: "POST" }, 405),
            (ApiError::PayloadTooLarge { limit: 1 }, 413),
            (ApiError::UnsupportedMediaType, 415),
            (ApiError::IdempotencyKeyReused, 422),
            (ApiError::IdempotencyKeyInFlight, 409),
            (
                ApiError::RateLimited {
                    limit: 1,
                    retry_after: Duration::ZERO,
                },
                429,
            ),
            (ApiError::BookingRejected { reason: "sold_out" }, 409),
            (ApiError::BookingNotFound, 404),
            (ApiError::ProjectionsUnavailable("x".into()), 503),
            (ApiError::Overloaded, 503),
            (ApiError::BrokerUnavailable("x".into()), 503),
            (ApiError::DeliveryTimeout, 503),
            (ApiError::Internal("x".into()), 500),
        ];
        for (error, status) in cases {
            assert_eq!(error.status().as_u16(), status, "{error:?}");
        }
    }

    #[tokio::test]
    async fn validation_problem_lists_every_field() {
        let invalid = Invalid {
            errors: vec![
                FieldError {
                    field: "rooms".into(),
                    detail: "is required".into(),
                },
                FieldError {
                    field: "currency".into(),
                    detail: "bad".into(),
                },
            ],
        };
        let response = ApiError::Invalid(invalid).to_response("/v1/bookings", "req-1");
        assert_eq!(response.headers()[header::CONTENT_TYPE], PROBLEM_JSON);
        let json = body_json(response).await;
        assert_eq!(json["status"], 422);
        assert_eq!(json["type"], "/problems/validation");
        assert_eq!(json["instance"], "/v1/bookings");
        assert_eq!(json["request_id"], "req-1");
        assert_eq!(json["errors"][0]["field"], "rooms");
        assert_eq!(json["errors"][1]["field"], "currency");
    }

    #[test]
    fn unavailable_answers_carry_retry_after() {
        for error in [
            ApiError::Overloaded,
            ApiError::DeliveryTimeout,
            ApiError::IdempotencyKeyInFlight,
            ApiError::ProjectionsUnavailable("x".into()),
        ] {
            let response = error.to_response("/v1/bookings", "r");
            assert_eq!(response.headers()[header::RETRY_AFTER], "1");
        }
    }

    #[tokio::test]
    async fn internal_details_are_not_leaked() {
        let error = ApiError::BrokerUnavailable("broker kafka-3.internal:9092 down".into());
        let json = body_json(error.to_response("/v1/bookings", "r")).await;
        assert!(!json["detail"].as_str().unwrap().contains("internal"));
        assert!(json.get("errors").is_none());
        let json = body_json(ApiError::Internal("secret".into()).to_response("/", "r")).await;
        assert_eq!(json["detail"], "internal error");
    }

    #[tokio::test]
    async fn a_rejection_names_its_reason_and_invites_no_retry() {
        let error = ApiError::BookingRejected { reason: "sold_out" };
        let response = error.to_response("/v1/bookings", "r");
        assert_eq!(response.status(), StatusCode::CONFLICT);
        assert!(response.headers().get(header::RETRY_AFTER).is_none());
        let json = body_json(response).await;
        assert_eq!(json["type"], "/problems/booking-rejected");
        assert_eq!(json["reason"], "sold_out");
    }

    #[test]
    fn auth_and_method_problems_carry_their_headers() {
        let response = ApiError::Unauthorized.to_response("/", "r");
        assert_eq!(response.headers()[header::WWW_AUTHENTICATE], "Bearer");
        let response = ApiError::MethodNotAllowed { allow: "POST" }.to_response("/", "r");
        assert_eq!(response.headers()[header::ALLOW], "POST");
    }

    #[test]
    fn rate_limited_answers_carry_the_ratelimit_fields() {
        let error = ApiError::RateLimited {
            limit: 20,
            retry_after: Duration::from_millis(1_200),
        };
        let response = error.to_response("/v1/bookings", "r");
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        let headers = response.headers();
        assert_eq!(headers[header::RETRY_AFTER], "2");
        assert_eq!(headers[&RATELIMIT_LIMIT], "20");
        assert_eq!(headers[&RATELIMIT_REMAINING], "0");
        assert_eq!(headers[&RATELIMIT_RESET], "2");
    }
}

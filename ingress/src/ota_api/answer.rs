//! What an OpenTravel request is answered: the consumer's decision, the record a
//! retransmission finds, or a refusal, as the `…RS` in the form the request came in.
//!
//! The HTTP status says whether the message was taken; the body says what became of it.
//! A message refused before it was taken (unreadable, unauthenticated, invalid, over a
//! limit) is a 4xx or 5xx with the status the JSON API gives the same failure and `Errors`
//! in the body. A message taken is a 200 whatever the consumer decided, `Success` or
//! `Errors` (no availability, unknown room type), as OpenTravel partners read a business
//! outcome from the body and treat other statuses as a failed delivery to retransmit.

use std::time::SystemTime;

use bytes::Bytes;
use chrono::{DateTime, SecondsFormat, Utc};
use http::{header, HeaderValue, Response, StatusCode};
use http_body_util::Full;
use partitioner::{Decision, Outcome, RejectReason};
use serde::{Deserialize, Serialize};

use super::translate::ReservationRef;
use crate::ota::codes::{
    self, OtaError, ADVISORY, AUTHENTICATION, AUTHORIZATION, BIZ_RULE, PROCESSING_EXCEPTION,
    PROTOCOL_VIOLATION,
};
use crate::ota::message::Header;
use crate::ota::reservation::Action;
use crate::ota::response::{self, Answer, Confirmation};
use crate::problem::ApiError;
use crate::reads::BookingStatus;

/// How the `…RS` goes back: the request's header once it was read, and its form.
#[derive(Clone, Debug, Default)]
pub struct Form {
    pub header: Option<Header>,
    /// The request came in a SOAP envelope.
    pub soap: bool,
}

impl Form {
    /// `answer` as the HTTP response with `status`.
    pub fn respond(&self, status: StatusCode, answer: &Answer) -> Response<Full<Bytes>> {
        let now = timestamp();
        let body = match (&self.header, answer) {
            (Some(header), answer) => response::write(header, answer, &now, self.soap),
            (None, Answer::Errors(errors)) => {
                let first = errors.first().cloned().unwrap_or_else(|| {
                    OtaError::new(PROCESSING_EXCEPTION, codes::SYSTEM_ERROR, "failed")
                });
                response::write_error(&first, &now, self.soap)
            }
            (None, _) => unreachable!("only refusals precede the header"),
        };
        let mut response = Response::new(Full::new(Bytes::from(body)));
        *response.status_mut() = status;
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, self.content_type());
        response
    }

    /// `error` as the `…RS` with the status, and the headers (`Retry-After`,
    /// `WWW-Authenticate`, `Allow`), the JSON API gives it.
    pub fn refuse(&self, error: &ApiError, path: &str, request_id: &str) -> Response<Full<Bytes>> {
        let problem = error.to_response(path, request_id);
        let mut response = self.respond(problem.status(), &Answer::Errors(vec![ota_error(error)]));
        for (name, value) in problem.headers() {
            if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
                response.headers_mut().insert(name.clone(), value.clone());
            }
        }
        response
    }

    fn content_type(&self) -> HeaderValue {
        // SOAP 1.1 is sent as text/xml; a bare message as application/xml.
        HeaderValue::from_static(if self.soap {
            "text/xml; charset=utf-8"
        } else {
            "application/xml; charset=utf-8"
        })
    }
}

/// The OpenTravel error a failure of the shared request path is.
pub fn ota_error(error: &ApiError) -> OtaError {
    let (kind, code) = match error {
        ApiError::Unauthorized | ApiError::Signature(_) => {
            (AUTHENTICATION, codes::AUTHORIZATION_ERROR)
        }
        ApiError::Forbidden(_) => (AUTHORIZATION, codes::AUTHORIZATION_ERROR),
        ApiError::BadIdempotencyKey(_) | ApiError::IdempotencyKeyReused => {
            (BIZ_RULE, codes::INVALID_VALUE)
        }
        ApiError::PayloadTooLarge { .. }
        | ApiError::UnsupportedMediaType
        | ApiError::NotFound
        | ApiError::MethodNotAllowed { .. } => (PROTOCOL_VIOLATION, codes::UNABLE_TO_PROCESS),
        ApiError::IdempotencyKeyInFlight | ApiError::RateLimited { .. } => {
            (PROCESSING_EXCEPTION, codes::UNABLE_TO_PROCESS)
        }
        _ => (PROCESSING_EXCEPTION, codes::SYSTEM_ERROR),
    };
    let detail = match error {
        ApiError::UnsupportedMediaType => {
            "content type must be text/xml (SOAP 1.1) or application/xml".to_owned()
        }
        ApiError::IdempotencyKeyReused => {
            "this reservation id (or Idempotency-Key) was used for a different message; \
             send a changed reservation as a modification"
                .to_owned()
        }
        ApiError::IdempotencyKeyInFlight => {
            "the same message is still being processed; retransmit it in a few seconds".to_owned()
        }
        other => other.public_detail(),
    };
    OtaError::new(kind, code, detail)
}

/// What became of a taken message, as stored in its idempotency record so that a
/// retransmission is answered the same.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// The consumer's decision; absent while none was seen (pending).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Outcome>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<RejectReason>,
}

impl Record {
    pub fn decided(decision: &Decision) -> Record {
        Record {
            outcome: Some(decision.outcome),
            reason: decision.reason,
        }
    }

    /// A record stored by an earlier answer; one that is not an OpenTravel record (the
    /// same key used on the JSON API for the same command) reads as pending.
    pub fn from_stored(body: &[u8]) -> Record {
        serde_json::from_slice(body).unwrap_or_default()
    }

    /// What a pending record now is, by the booking's status in the projections: a
    /// create is decided once its booking has a status at all (a later cancel means it
    /// was confirmed), a cancel once the booking is cancelled. A modification stays
    /// pending: the status does not tell whether this modification or another one made it.
    pub fn resolved(self, reservation: &ReservationRef, status: Option<&BookingStatus>) -> Record {
        if self.outcome.is_some() {
            return self;
        }
        let Some(status) = status else {
            return self;
        };
        let outcome = match (reservation.action, status.status.as_str()) {
            (Action::Create, "confirmed" | "cancelled") => Outcome::Confirmed,
            (Action::Create, "rejected") => Outcome::Rejected,
            (Action::Cancel, "cancelled") => Outcome::Cancelled,
            _ => return self,
        };
        let reason = status.reason.as_deref().and_then(RejectReason::from_slug);
        Record {
            outcome: Some(outcome),
            reason: reason.filter(|_| outcome == Outcome::Rejected),
        }
    }

    /// The answer this record gives; `waited` is the longest wait, said in the pending
    /// warning.
    pub fn answer(&self, reservation: Option<&ReservationRef>, waited_ms: u128) -> Answer {
        let confirmation = reservation.map(|r| Confirmation {
            channel_id: r.channel_id.clone(),
            hotel_id: r.booking_id.to_string(),
        });
        match self.outcome {
            Some(Outcome::Rejected) => Answer::Errors(vec![rejection(self.reason)]),
            Some(_) => Answer::Success {
                reservation: confirmation,
            },
            None => Answer::Pending {
                reservation: confirmation,
                warning: OtaError::new(
                    ADVISORY,
                    codes::UNABLE_TO_PROCESS,
                    format!(
                        "accepted and durable, not decided within {waited_ms} ms; the \
                         reservation is processed, read its outcome later or retransmit \
                         this message"
                    ),
                ),
            },
        }
    }
}

/// The OpenTravel error of a consumer's rejection.
fn rejection(reason: Option<RejectReason>) -> OtaError {
    let (code, detail) = match reason {
        Some(RejectReason::SoldOut) => (
            codes::NO_AVAILABILITY,
            "at least one night has fewer rooms left than the reservation asks for",
        ),
        Some(RejectReason::UnknownRoomType) => (
            codes::INVALID_ROOM_TYPE,
            "no inventory was ever set for this room type on at least one night",
        ),
        Some(RejectReason::BookingNotFound) => (
            codes::INVALID_CONFIRMATION_NUMBER,
            "no confirmed reservation has this id at this hotel",
        ),
        Some(RejectReason::PropertyMismatch) => (
            codes::INVALID_HOTEL_CODE,
            "the reservation belongs to another hotel",
        ),
        Some(RejectReason::InvalidTransition) => (
            codes::UNABLE_TO_PROCESS,
            "the reservation is cancelled or was rejected, and cannot be modified",
        ),
        Some(RejectReason::IdempotencyKeyReused) => (
            codes::UNABLE_TO_PROCESS,
            "this message's key was used before for a different message",
        ),
        None => (codes::UNABLE_TO_PROCESS, "the reservation was rejected"),
    };
    let slug = reason.map_or("unspecified", RejectReason::as_str);
    OtaError::new(BIZ_RULE, code, format!("{detail} ({slug})"))
}

/// Now, as OpenTravel's `TimeStamp` (ISO 8601, UTC, milliseconds).
fn timestamp() -> String {
    DateTime::<Utc>::from(SystemTime::now()).to_rfc3339_opts(SecondsFormat::Millis, true)
}

#[cfg(test)]
#[path = "answer/tests.rs"]
mod tests;

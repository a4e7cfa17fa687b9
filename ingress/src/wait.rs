//! `Prefer: wait=N` (RFC 7240): answering a booking mutation with its decision instead of 202.
//!
//! A partner that would rather not poll may ask to wait up to N seconds. The event is
//! published and acknowledged exactly as without the preference (and its idempotency
//! record is that 202 answer); then the request waits for the consumer's decision
//! ([`crate::decisions`]): 201 for a confirmed create, 200 for a modify or cancel that
//! took effect, 409 `/problems/booking-rejected` naming the reason for a rejection. Each
//! of these carries `Preference-Applied: wait=N`. When N runs out first, the answer is
//! the ordinary 202 without `Preference-Applied`, and the partner polls as usual.
//!
//! N above the ceiling (5 s, or less if the operator lowered `INGRESS_MAX_WAIT_MS`) or
//! not a number is clamped to the ceiling rather than refused: RFC 7240 asks a server to
//! ignore what it cannot honour, and a wait at the ceiling is the closest honour we can
//! do. `wait=0` asks for nothing. Inventory writes never wait: their outcome is never a
//! surprise to the partner setting it.

use std::time::Duration;

use bytes::Bytes;
use http::{header, HeaderMap, HeaderName, HeaderValue, Response, StatusCode};
use http_body_util::Full;
use partitioner::{Decision, Mutation, Outcome};
use serde::Serialize;
use uuid::Uuid;

use crate::problem::ApiError;
use crate::response::{json_response, Accepted};

/// The most any request may wait, whatever it asks: each waiting request holds an
/// in-flight slot, so this bounds how long overload can take to clear.
pub const CEILING: Duration = Duration::from_secs(5);

pub static PREFERENCE_APPLIED: HeaderName = HeaderName::from_static("preference-applied");

/// How long the request for `mutation` should wait for its decision, if at all: the
/// `wait` preference clamped to `max` (itself at most [`CEILING`]).
pub fn requested(headers: &HeaderMap, mutation: Mutation, max: Duration) -> Option<Duration> {
    let max = max.min(CEILING);
    if !mutation.concerns_a_booking() || max.is_zero() {
        return None;
    }
    let seconds = preferred_wait_seconds(headers)?;
    (seconds > 0).then(|| Duration::from_secs(seconds).min(max))
}

/// The value of the first `wait` preference among all `Prefer` headers; a value that is
/// not a whole number reads as "as long as you allow" (`u64::MAX`).
fn preferred_wait_seconds(headers: &HeaderMap) -> Option<u64> {
    headers
        .get_all(header::HeaderName::from_static("prefer"))
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        // A preference may carry parameters after `;`; `wait` has none we use.
        .filter_map(|preference| preference.split(';').next())
        .filter_map(|token| token.split_once('='))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("wait"))
        .map(|(_, value)| {
            let value = value.trim().trim_matches('"');
            value.parse::<u64>().unwrap_or(u64::MAX)
        })
}

/// The synchronous answer: a booking mutation's decision, with
/// `Preference-Applied: wait=N` where N is the wait granted, in whole seconds rounded up.
pub fn decided_response(
    decision: &Decision,
    accepted: &Accepted,
    waited_up_to: Duration,
    path: &str,
    request_id: &str,
) -> Response<Full<Bytes>> {
    let mut response = match decision.outcome {
        Outcome::Rejected => {
            let reason = decision.reason.map_or("unspecified", |r| r.as_str());
            ApiError::BookingRejected { reason }.to_response(path, request_id)
        }
        outcome => {
            let status = if outcome == Outcome::Confirmed {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            let body = Decided {
                booking_id: accepted.booking_id,
                event_id: accepted.event_id,
                status: outcome.as_str(),
                outcome: outcome.as_str(),
                partition: accepted.partition,
                offset: accepted.offset,
            };
            json_response(status, &body)
        }
    };
    let seconds = waited_up_to.as_millis().div_ceil(1000).max(1);
    let applied = HeaderValue::from_str(&format!("wait={seconds}")).expect("ascii digits");
    response
        .headers_mut()
        .insert(PREFERENCE_APPLIED.clone(), applied);
    response
}

/// The 201/200 body: the 202 body's fields, with the decision as the status.
#[derive(Debug, Serialize)]
struct Decided {
    #[serde(skip_serializing_if = "Option::is_none")]
    booking_id: Option<Uuid>,
    event_id: Uuid,
    status: &'static str,
    outcome: &'static str,
    /// Where the event (not the decision) is in the bookings topic, as in the 202 body.
    partition: i32,
    offset: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: Duration = Duration::from_secs(5);

    fn prefer(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append("prefer", HeaderValue::from_str(value).unwrap());
        }
        headers
    }

    fn create(values: &[&str], max: Duration) -> Option<Duration> {
        requested(&prefer(values), Mutation::CreateBooking, max)
    }

    #[test]
    fn wait_is_read_among_other_preferences() {
        assert_eq!(create(&["wait=3"], MAX), Some(Duration::from_secs(3)));
        assert_eq!(
            create(&["respond-async, WAIT = 2"], MAX),
            Some(Duration::from_secs(2))
        );
        assert_eq!(
            create(&["return=minimal", "wait=\"1\""], MAX),
            Some(Duration::from_secs(1))
        );
        assert_eq!(create(&[], MAX), None);
        assert_eq!(create(&["return=minimal"], MAX), None);
        assert_eq!(create(&["wait=0"], MAX), None);
    }

    #[test]
    fn too_long_or_unreadable_waits_are_clamped() {
        assert_eq!(create(&["wait=99"], MAX), Some(MAX));
        assert_eq!(create(&["wait=soon"], MAX), Some(MAX));
        assert_eq!(create(&["wait=-1"], MAX), Some(MAX));
        assert_eq!(
            create(&["wait=4"], Duration::from_millis(1500)),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(
            create(&["wait=5"], Duration::from_secs(60)),
            Some(CEILING),
            "the operator's limit cannot lift the ceiling"
        );
    }

    #[test]
    fn waiting_can_be_off_and_inventory_never_waits() {
        assert_eq!(create(&["wait=3"], Duration::ZERO), None);
        assert_eq!(
            requested(&prefer(&["wait=3"]), Mutation::SetInventory, MAX),
            None
        );
        let id = Uuid::nil();
        for mutation in [Mutation::ModifyBooking(id), Mutation::CancelBooking(id)] {
            assert!(requested(&prefer(&["wait=3"]), mutation, MAX).is_some());
        }
    }
}

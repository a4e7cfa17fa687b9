//! The versioned event envelope carried on the `bookings` topic.
//!
//! The ingress produces one [`Envelope`] per accepted request and the consumers apply them
//! in partition order. Events are facts already validated by the ingress, so their fields are
//! typed (dates are dates, counts are unsigned); a consumer still re-checks the schema version
//! and sends anything it cannot decode to the dead-letter topic instead of guessing.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The schema version this build writes and understands.
///
/// Bump it for any change a previous consumer could misread; consumers reject versions
/// they do not know rather than apply them half-understood.
pub const SCHEMA_VERSION: u16 = 1;

/// Kafka header names the ingress sets on events (every one, but for `reply-partition`),
/// so tooling can route and trace events without decoding the payload.
pub mod headers {
    pub const EVENT_TYPE: &str = "event-type";
    pub const SCHEMA_VERSION: &str = "schema-version";
    pub const CONTENT_TYPE: &str = "content-type";
    pub const REQUEST_ID: &str = "request-id";
    pub const PARTNER_ID: &str = "partner-id";
    pub const TRACEPARENT: &str = "traceparent";
    /// Set on an event whose sender waits for its decision: the partition of the replies
    /// topic the deciding consumer copies the decision to, which the waiting ingress reads.
    pub const REPLY_PARTITION: &str = "reply-partition";
}

/// One event on the `bookings` topic.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    pub schema_version: u16,
    /// Derived from (tenant, partner, idempotency key): a replayed request carries the same
    /// id, which is how consumers drop duplicates even when every cache forgot the key.
    pub event_id: Uuid,
    pub tenant_id: String,
    pub property_id: String,
    pub partner_id: String,
    pub request_id: String,
    /// Milliseconds since the Unix epoch at which the ingress accepted the request.
    pub received_at_ms: i64,
    /// The sender may act on every partner's bookings of the tenant (the
    /// `bookings:any-partner` scope, e.g. the hotel's own channel); otherwise a modify or
    /// cancel applies only to a booking `partner_id` created. Absent (false) in events of
    /// earlier builds, which carried no such authority.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub any_partner: bool,
    /// The partition map that placed the event ([`crate::PartitionMap`]'s text form): a
    /// consumer holds a partition that receives a property the accepted map put on another
    /// partition, whose state it does not have. Absent in events of earlier builds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placement: Option<String>,
    pub event: Event,
}

/// Who sent an event, and when; everything in an [`Envelope`] besides the command itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventMeta {
    pub event_id: Uuid,
    pub partner_id: String,
    pub request_id: String,
    pub received_at_ms: i64,
    /// See [`Envelope::any_partner`].
    pub any_partner: bool,
}

/// A validated command addressed to one property; see [`crate::request`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Command {
    pub tenant_id: String,
    pub property_id: String,
    pub event: Event,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    CreateBooking {
        booking_id: Uuid,
        stay: Stay,
        price: Money,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        guest_name: Option<String>,
        /// The partner's own id of the booking, when it gave one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        partner_reference: Option<String>,
    },
    /// Replaces the stay of an existing booking: all nights are re-checked and the change
    /// applies entirely or not at all.
    ModifyBooking {
        booking_id: Uuid,
        stay: Stay,
        price: Money,
    },
    CancelBooking {
        booking_id: Uuid,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// Sets the total sellable units of a room type for each night in `[from, to)`.
    /// It travels on the property's partition, so it is ordered with that property's
    /// bookings.
    SetAllotment {
        room_type: String,
        from: NaiveDate,
        to: NaiveDate,
        units: u32,
    },
}

impl Event {
    /// A short, bounded name for headers, logs and metric labels.
    pub fn kind(&self) -> &'static str {
        match self {
            Event::CreateBooking { .. } => "create_booking",
            Event::ModifyBooking { .. } => "modify_booking",
            Event::CancelBooking { .. } => "cancel_booking",
            Event::SetAllotment { .. } => "set_allotment",
        }
    }

    pub fn booking_id(&self) -> Option<Uuid> {
        match self {
            Event::CreateBooking { booking_id, .. }
            | Event::ModifyBooking { booking_id, .. }
            | Event::CancelBooking { booking_id, .. } => Some(*booking_id),
            Event::SetAllotment { .. } => None,
        }
    }
}

/// What a booking holds: `rooms` units of `room_type` for every night in
/// `[check_in, check_out)`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stay {
    pub room_type: String,
    pub check_in: NaiveDate,
    pub check_out: NaiveDate,
    pub rooms: u16,
    pub guests: u16,
}

impl Stay {
    /// Every night the stay occupies, check-out excluded.
    pub fn nights(&self) -> impl Iterator<Item = NaiveDate> + '_ {
        self.check_in
            .iter_days()
            .take_while(move |night| *night < self.check_out)
    }
}

/// An amount in the currency's minor unit (cents for EUR), never a float.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Money {
    pub amount_minor: i64,
    pub currency: String,
}

impl Envelope {
    pub fn new(command: Command, meta: EventMeta) -> Self {
        Envelope {
            schema_version: SCHEMA_VERSION,
            event_id: meta.event_id,
            tenant_id: command.tenant_id,
            property_id: command.property_id,
            partner_id: meta.partner_id,
            request_id: meta.request_id,
            received_at_ms: meta.received_at_ms,
            any_partner: meta.any_partner,
            placement: None,
            event: command.event,
        }
    }

    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("an envelope always serializes")
    }

    /// Decodes an event read from the topic, refusing schema versions this build does not
    /// know and anything the ingress's validation would have refused
    /// ([`Envelope::check`]).
    pub fn from_json(bytes: &[u8]) -> Result<Self, DecodeError> {
        let envelope = match serde_json::from_slice::<Envelope>(bytes) {
            Ok(envelope) => envelope,
            // A newer schema may change any field but its version, so an event this build
            // cannot read is recognised as a future one, not as malformed, by its version.
            Err(error) => {
                #[derive(Deserialize)]
                struct Versioned {
                    schema_version: u16,
                }
                return Err(match serde_json::from_slice::<Versioned>(bytes) {
                    Ok(v) if v.schema_version != SCHEMA_VERSION => version_error(v.schema_version),
                    _ => DecodeError::Malformed(error),
                });
            }
        };
        if envelope.schema_version != SCHEMA_VERSION {
            return Err(version_error(envelope.schema_version));
        }
        envelope.check().map_err(DecodeError::Invalid)?;
        Ok(envelope)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("malformed event: {0}")]
    Malformed(serde_json::Error),
    /// Of a schema version newer than this build's: a newer producer's, which a newer
    /// consumer will read.
    #[error("unknown schema version {0}")]
    UnknownVersion(u16),
    /// Of a version below any this build reads: no consumer will ever apply it.
    #[error("retired schema version {0}")]
    RetiredVersion(u16),
    #[error("invalid event: {}", describe(.0))]
    Invalid(crate::validate::Invalid),
}

/// Why an event of `version` (not this build's) is not read: newer ones wait for a newer
/// consumer, older ones never will be.
fn version_error(version: u16) -> DecodeError {
    if version > SCHEMA_VERSION {
        DecodeError::UnknownVersion(version)
    } else {
        DecodeError::RetiredVersion(version)
    }
}

fn describe(invalid: &crate::validate::Invalid) -> String {
    invalid
        .errors
        .iter()
        .map(|e| format!("{} {}", e.field, e.detail))
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn sample() -> Envelope {
        Envelope {
            schema_version: SCHEMA_VERSION,
            event_id: Uuid::nil(),
            tenant_id: "acme".into(),
            property_id: "lisbon-1".into(),
            partner_id: "ota-1".into(),
            request_id: "req-1".into(),
            received_at_ms: 1_700_000_000_000,
            any_partner: false,
            placement: Some("12:acme=0..4".into()),
            event: Event::CreateBooking {
                booking_id: Uuid::nil(),
                stay: Stay {
                    room_type: "DBL".into(),
                    check_in: date("2027-01-10"),
                    check_out: date("2027-01-13"),
                    rooms: 1,
                    guests: 2,
                },
                price: Money {
                    amount_minor: 45_000,
                    currency: "EUR".into(),
                },
                guest_name: None,
                partner_reference: None,
            },
        }
    }

    #[test]
    fn round_trips_through_json() {
        let envelope = sample();
        assert_eq!(Envelope::from_json(&envelope.to_json()).unwrap(), envelope);
    }

    #[test]
    fn wire_format_is_tagged_and_stable() {
        let json: serde_json::Value = serde_json::from_slice(&sample().to_json()).unwrap();
        assert_eq!(json["event"]["type"], "create_booking");
        assert_eq!(json["event"]["stay"]["check_in"], "2027-01-10");
        assert_eq!(json["schema_version"], 1);
        assert!(
            json.get("any_partner").is_none(),
            "written only when granted"
        );
    }

    #[test]
    fn rejects_unknown_schema_version() {
        let mut envelope = sample();
        envelope.schema_version = 99;
        assert!(matches!(
            Envelope::from_json(&envelope.to_json()),
            Err(DecodeError::UnknownVersion(99))
        ));
    }

    #[test]
    fn a_future_event_is_recognised_by_its_version_even_when_unreadable() {
        let future = br#"{"schema_version": 2, "event": {"type": "hold_room"}}"#;
        assert!(matches!(
            Envelope::from_json(future),
            Err(DecodeError::UnknownVersion(2))
        ));
        let current = br#"{"schema_version": 1, "event": {"type": "hold_room"}}"#;
        assert!(matches!(
            Envelope::from_json(current),
            Err(DecodeError::Malformed(_))
        ));
        // Only a newer version waits for a newer consumer; an older one never will be read.
        let retired = br#"{"schema_version": 0, "event": {"type": "hold_room"}}"#;
        assert!(matches!(
            Envelope::from_json(retired),
            Err(DecodeError::RetiredVersion(0))
        ));
    }

    #[test]
    fn rejects_what_the_ingress_would_refuse() {
        let mut envelope = sample();
        envelope.property_id = "lisbon/1".into();
        let error = Envelope::from_json(&envelope.to_json()).unwrap_err();
        assert!(error.to_string().contains("property_id"), "{error}");
    }

    #[test]
    fn rejects_garbage() {
        assert!(matches!(
            Envelope::from_json(b"{not json"),
            Err(DecodeError::Malformed(_))
        ));
    }

    #[test]
    fn nights_exclude_check_out() {
        let Event::CreateBooking { stay, .. } = sample().event else {
            unreachable!()
        };
        let nights: Vec<_> = stay.nights().collect();
        assert_eq!(
            nights,
            vec![date("2027-01-10"), date("2027-01-11"), date("2027-01-12")]
        );
    }
}

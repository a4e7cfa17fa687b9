//! What a consumer decided about an event, as published on `booking-decisions`.
//!
//! The decision is the outcome partners wait for: it feeds the booking status projection,
//! the ingress's synchronous `Prefer: wait` answer and any webhook outbox. It is part of the
//! contract, so it lives beside the event envelope.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    pub event_id: Uuid,
    /// Absent for inventory events, which concern no booking.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub booking_id: Option<Uuid>,
    pub tenant_id: String,
    pub property_id: String,
    pub event_type: String,
    pub outcome: Outcome,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<RejectReason>,
    /// Where the event was decided: the decision for one event is the same however often
    /// it is replayed. A booking's events share a partition (unless an operator accepted
    /// a partition map that moved its property), so the decisions that changed a booking
    /// (confirmed, modified, cancelled) are ordered by `offset`: one with a lower offset
    /// than such a decision already seen for the booking is a late copy (the outbox sends
    /// a decision again until delivered, after later ones may have landed) and says
    /// nothing new. A rejection answers its request and leaves the booking as it was.
    pub partition: i32,
    pub offset: i64,
    /// The offset of the record this decision answers, in the partition that record was
    /// read from (`partition`, unless the booking's property moved since): `offset`
    /// for an event decided when first read, a later offset for a copy the partner sent
    /// again (answered with the first copy's decision, or rejected when it carries another
    /// command under a reused key). A request waiting for its decision knows the offset
    /// of the record it published and takes only the decision naming it. Absent from
    /// decisions published by consumers before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record_offset: Option<i64>,
    /// The partner that sent the event: the decision is this partner's to receive.
    /// Absent from decisions published by consumers before it was named.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partner_id: Option<String>,
    /// The partner whose booking the event changed, when that is not the sender (a
    /// hotel's own channel acting with `bookings:any-partner`): it receives the decision
    /// too. Never set for an event that did not reach the booking, so a partner learns
    /// nothing of another's attempts on its bookings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_id: Option<String>,
}

impl Decision {
    /// The partners the decision is delivered to: the sender, then the booking's owner
    /// when that is another partner.
    pub fn recipients(&self) -> impl Iterator<Item = &str> {
        self.partner_id
            .iter()
            .chain(&self.owner_id)
            .map(String::as_str)
    }
}

/// The namespace of [`Decision::delivery_id`]s.
const DELIVERY_NAMESPACE: Uuid = Uuid::from_u128(0x6c1f_9a0e_4b7d_4f52_9d3e_2a8b_51c0_7e14);

impl Decision {
    /// The id a partner receives this decision under (a webhook delivery's
    /// `Idempotency-Key`): the same for every copy of the decision, whoever sends it how
    /// often, so the partner can drop one it already processed.
    pub fn delivery_id(&self) -> Uuid {
        let answered = self.record_offset.unwrap_or(self.offset);
        Uuid::new_v5(
            &DELIVERY_NAMESPACE,
            format!("{}:{}:{answered}", self.event_id, self.partition).as_bytes(),
        )
    }

    /// Whether this decision answers the record at `offset` of `partition`. A decision
    /// that does not name its record (from an older consumer) answers every copy.
    pub fn answers(&self, partition: i32, offset: i64) -> bool {
        self.partition == partition && self.record_offset.is_none_or(|own| own == offset)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// A create that got its rooms.
    Confirmed,
    /// A modify that got its new rooms.
    Modified,
    Cancelled,
    /// The event changed nothing; `reason` says why.
    Rejected,
    AllotmentSet,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Confirmed => "confirmed",
            Outcome::Modified => "modified",
            Outcome::Cancelled => "cancelled",
            Outcome::Rejected => "rejected",
            Outcome::AllotmentSet => "allotment_set",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectReason {
    /// At least one night has fewer free units than the booking asks for.
    SoldOut,
    /// No allotment was ever set for this room type on at least one night.
    UnknownRoomType,
    /// A modify or cancel for a booking this partition has never confirmed.
    BookingNotFound,
    /// A modify or cancel naming another tenant or property than the booking's own.
    PropertyMismatch,
    /// A modify of a booking that is cancelled or was rejected.
    InvalidTransition,
    /// The event's id (its sender's Idempotency-Key) was applied before for another
    /// command: the key was reused once every idempotency cache had forgotten it.
    IdempotencyKeyReused,
}

impl RejectReason {
    pub fn as_str(self) -> &'static str {
        match self {
            RejectReason::SoldOut => "sold_out",
            RejectReason::UnknownRoomType => "unknown_room_type",
            RejectReason::BookingNotFound => "booking_not_found",
            RejectReason::PropertyMismatch => "property_mismatch",
            RejectReason::InvalidTransition => "invalid_transition",
            RejectReason::IdempotencyKeyReused => "idempotency_key_reused",
        }
    }

    /// The reason whose [`RejectReason::as_str`] is `slug`.
    pub fn from_slug(slug: &str) -> Option<RejectReason> {
        serde_json::from_value(serde_json::Value::String(slug.to_owned())).ok()
    }
}

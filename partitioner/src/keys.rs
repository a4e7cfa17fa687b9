//! Names of the Redis projection keys, shared by the consumers that write them and the
//! ingress that serves them back.
//!
//! Ids cannot contain `:` (validated charset), so every key below is unambiguous.

use uuid::Uuid;

/// Hash of remaining units per night: field `YYYY-MM-DD`, value the remaining units as a
/// decimal integer, and beside it field [`night_position`], the source position that value
/// reflects. Values are absolute, so replaying an event rewrites the same value.
pub fn availability(tenant_id: &str, property_id: &str, room_type: &str) -> String {
    format!("avail:{tenant_id}:{property_id}:{room_type}")
}

/// The field of an availability hash holding where `night`'s value comes from,
/// `{offset}@{source}` ([`source`]): a write from the same source carrying an older offset
/// leaves the value alone.
pub fn night_position(night: &str) -> String {
    format!("{night}{NIGHT_POSITION_SUFFIX}")
}

pub const NIGHT_POSITION_SUFFIX: &str = "@position";

/// The stream a projection value was derived from, `{topic}:{partition}`: offsets compare
/// only within one source. A value from another source (another topic, or the partition a
/// property lived on before an accepted partition map moved it) is replaced, not compared.
pub fn source(topic: &str, partition: i32) -> String {
    format!("{topic}:{partition}")
}

/// Hash describing one booking's status: the fields of [`booking_field`].
pub fn booking_status(booking_id: Uuid) -> String {
    format!("booking:{booking_id}")
}

/// Field names of a booking's status hash ([`booking_status`]), written by the consumers
/// and read by the ingress.
pub mod booking_field {
    /// `confirmed`, `modified`, `cancelled` or `rejected`.
    pub const STATUS: &str = "status";
    /// Why the last change was refused; empty when none was.
    pub const REASON: &str = "reason";
    pub const TENANT_ID: &str = "tenant_id";
    /// The partner that created the booking, which alone may read or change it.
    pub const PARTNER_ID: &str = "partner_id";
    pub const PROPERTY_ID: &str = "property_id";
    pub const ROOM_TYPE: &str = "room_type";
    pub const CHECK_IN: &str = "check_in";
    pub const CHECK_OUT: &str = "check_out";
    pub const ROOMS: &str = "rooms";
    /// The source partition and offset of the last event applied to the booking.
    pub const PARTITION: &str = "partition";
    pub const OFFSET: &str = "offset";
    /// The stream `offset` counts in ([`super::source`]).
    pub const SOURCE: &str = "source";
}

/// The offset through which a partition's events are reflected in the projections. The
/// topic is the key's hash tag: every partition's checkpoint of a topic is in one Redis
/// Cluster slot, so they are read together in one command.
pub fn projection_checkpoint(topic: &str, partition: i32) -> String {
    format!("projection-checkpoint:{{{topic}}}:{partition}")
}

/// The decisions feed of `partner`: a Redis stream of the decisions it is to receive, in
/// order (`consumer feed` appends, `GET /v1/decisions` reads). The partner id is the
/// hash tag, so the feed's keys share a slot on a Redis Cluster.
pub fn feed(partner: &str) -> String {
    format!("feed:{{{partner}}}")
}

/// Beside [`feed`]: per partition of the decisions topic, the offset of the last decision
/// appended, so a decision read again is not appended twice.
pub fn feed_through(partner: &str) -> String {
    format!("feed:{{{partner}}}:through")
}

/// Beside [`feed`]: the entry id up to which the partner has acknowledged its feed.
pub fn feed_acknowledged(partner: &str) -> String {
    format!("feed:{{{partner}}}:acknowledged")
}

/// The field of a feed entry that holds the decision's JSON.
pub const FEED_DECISION_FIELD: &str = "decision";

/// The webhook outbox of `partner`: a Redis stream of the decisions not yet delivered to
/// its endpoint, oldest first (the delivery service appends each decision and deletes it
/// once delivered or dead-lettered). Its length is the partner's backlog and its first
/// entry's id the time the oldest undelivered decision was taken in.
pub fn webhook_outbox(partner: &str) -> String {
    format!("webhook:{{{partner}}}")
}

/// Beside [`webhook_outbox`]: per partition of the decisions topic, the offset of the last
/// decision taken in, so a decision read again is not delivered twice.
pub fn webhook_through(partner: &str) -> String {
    format!("webhook:{{{partner}}}:through")
}

/// Beside [`webhook_outbox`]: which delivery process sends the partner's outbox, for a
/// while it renews; one at a time, so deliveries keep their order.
pub fn webhook_lease(partner: &str) -> String {
    format!("webhook:{{{partner}}}:lease")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partners_feed_keys_share_its_slot() {
        assert_eq!(feed("ota-1"), "feed:{ota-1}");
        assert_eq!(feed_through("ota-1"), "feed:{ota-1}:through");
        assert_eq!(feed_acknowledged("ota-1"), "feed:{ota-1}:acknowledged");
        assert_eq!(webhook_outbox("ota-1"), "webhook:{ota-1}");
        assert_eq!(webhook_through("ota-1"), "webhook:{ota-1}:through");
        assert_eq!(webhook_lease("ota-1"), "webhook:{ota-1}:lease");
    }

    #[test]
    fn keys_are_stable() {
        assert_eq!(availability("acme", "p1", "DBL"), "avail:acme:p1:DBL");
        assert_eq!(
            booking_status(Uuid::nil()),
            "booking:00000000-0000-0000-0000-000000000000"
        );
        assert_eq!(
            projection_checkpoint("bookings", 3),
            "projection-checkpoint:{bookings}:3"
        );
        assert_eq!(night_position("2027-05-01"), "2027-05-01@position");
        assert_eq!(source("bookings", 3), "bookings:3");
    }
}

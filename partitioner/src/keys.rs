//! Names of the Redis projection keys, shared by the consumers that write them and the
//! ingress that serves them back.
//!
//! Ids cannot contain `:` (validated charset), so every key below is unambiguous.

use uuid::Uuid;

/// Hash of remaining units per night: field `YYYY-MM-DD`, value the remaining units as a
/// decimal integer. Values are absolute, so replaying an event rewrites the same value.
pub fn availability(tenant_id: &str, property_id: &str, room_type: &str) -> String {
    format!("avail:{tenant_id}:{property_id}:{room_type}")
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
}

/// The offset through which a partition's events are reflected in the projections.
pub fn projection_checkpoint(topic: &str, partition: i32) -> String {
    format!("projection-checkpoint:{topic}:{partition}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_stable() {
        assert_eq!(availability("acme", "p1", "DBL"), "avail:acme:p1:DBL");
        assert_eq!(
            booking_status(Uuid::nil()),
            "booking:00000000-0000-0000-0000-000000000000"
        );
        assert_eq!(
            projection_checkpoint("bookings", 3),
            "projection-checkpoint:bookings:3"
        );
    }
}

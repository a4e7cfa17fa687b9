//! Events read from the topic, validated again as strictly as the ingress validated the
//! requests they came from.
//!
//! The ingress is not the only possible producer of the `bookings` topic (a replay tool,
//! another service, an operator with a console producer), and every later step relies on
//! what validation guarantees: ids make unambiguous store and Redis keys, stays are
//! bounded, amounts cannot overflow. So a consumer runs each event's command back through
//! the very converters the ingress uses and accepts it only if the result is the command
//! itself: one set of rules, applied on both sides.

use crate::event::{Command, Envelope, Event, Money, Stay};
use crate::request::{AllotmentRequest, BookingRequest, CancelRequest};
use crate::validate::{id_problem, FieldError, Invalid};

impl Envelope {
    /// Whether the ingress would have produced this event: its command is exactly what
    /// validating the equivalent request gives, and its partner id is a valid id.
    pub fn check(&self) -> Result<(), Invalid> {
        if let Some(detail) = id_problem(&self.partner_id) {
            return Err(Invalid {
                errors: vec![FieldError {
                    field: "partner_id".into(),
                    detail,
                }],
            });
        }
        if let Some(placement) = &self.placement {
            if let Err(problem) = placement.parse::<crate::PartitionMap>() {
                return Err(Invalid {
                    errors: vec![FieldError {
                        field: "placement".into(),
                        detail: format!("is not a partition map: {problem}"),
                    }],
                });
            }
        }
        let command = Command {
            tenant_id: self.tenant_id.clone(),
            property_id: self.property_id.clone(),
            event: self.event.clone(),
        };
        let revalidated = as_request(&command)?;
        if revalidated != command {
            return Err(Invalid {
                errors: vec![FieldError {
                    field: "event".into(),
                    detail: "does not read back as the request it claims to be".into(),
                }],
            });
        }
        Ok(())
    }
}

/// `command` written as the request that makes it, and validated.
fn as_request(command: &Command) -> Result<Command, Invalid> {
    let tenant_id = Some(command.tenant_id.clone());
    let property_id = Some(command.property_id.clone());
    let booking = |stay: &Stay, price: &Money, guest_name: Option<String>| BookingRequest {
        partner_reference: None,
        tenant_id: tenant_id.clone(),
        property_id: property_id.clone(),
        room_type: Some(stay.room_type.clone()),
        check_in: Some(stay.check_in.to_string()),
        check_out: Some(stay.check_out.to_string()),
        rooms: Some(i64::from(stay.rooms)),
        guests: Some(i64::from(stay.guests)),
        amount_minor: Some(price.amount_minor),
        currency: Some(price.currency.clone()),
        guest_name,
    };
    match &command.event {
        Event::CreateBooking {
            booking_id,
            stay,
            price,
            guest_name,
            partner_reference,
        } => BookingRequest {
            partner_reference: partner_reference.clone(),
            ..booking(stay, price, guest_name.clone())
        }
        .into_create(*booking_id),
        Event::ModifyBooking {
            booking_id,
            stay,
            price,
        } => booking(stay, price, None).into_modify(*booking_id),
        Event::CancelBooking { booking_id, reason } => CancelRequest {
            tenant_id,
            property_id,
            reason: reason.clone(),
        }
        .into_cancel(*booking_id),
        Event::SetAllotment {
            room_type,
            from,
            to,
            units,
        } => AllotmentRequest {
            tenant_id,
            property_id,
            room_type: Some(room_type.clone()),
            from: Some(from.to_string()),
            to: Some(to.to_string()),
            units: Some(i64::from(*units)),
        }
        .into_allotment(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::EventMeta;
    use chrono::NaiveDate;
    use uuid::Uuid;

    fn allotment(property: &str, from: &str, to: &str, units: u32) -> Envelope {
        let date = |s: &str| s.parse::<NaiveDate>().unwrap();
        Envelope::new(
            Command {
                tenant_id: "acme".into(),
                property_id: property.into(),
                event: Event::SetAllotment {
                    room_type: "DBL".into(),
                    from: date(from),
                    to: date(to),
                    units,
                },
            },
            EventMeta {
                event_id: Uuid::nil(),
                partner_id: "ota-1".into(),
                request_id: "r".into(),
                received_at_ms: 0,
                any_partner: false,
            },
        )
    }

    #[test]
    fn what_the_ingress_produces_passes() {
        assert_eq!(
            allotment("p1", "2030-01-01", "2030-01-10", 5).check(),
            Ok(())
        );
    }

    #[test]
    fn what_the_ingress_would_refuse_fails_naming_the_field() {
        let cases = [
            (
                allotment("p/1", "2030-01-01", "2030-01-10", 5),
                "property_id",
            ),
            (allotment("p1", "2030-01-10", "2030-01-01", 5), "to"),
            (allotment("p1", "2030-01-01", "2032-01-01", 5), "to"),
            (
                allotment("p1", "2030-01-01", "2030-01-10", 100_001),
                "units",
            ),
        ];
        for (envelope, field) in cases {
            let invalid = envelope.check().unwrap_err();
            assert!(invalid.fields().any(|f| f == field), "{field}: {invalid:?}");
        }
        let mut partner = allotment("p1", "2030-01-01", "2030-01-10", 5);
        partner.partner_id = "ota:1".into();
        assert!(partner.check().is_err());
        let mut placement = allotment("p1", "2030-01-01", "2030-01-10", 5);
        placement.placement = Some("12:acme=0..20".into());
        let invalid = placement.check().unwrap_err();
        assert!(invalid.fields().any(|f| f == "placement"), "{invalid:?}");
        placement.placement = Some("12:acme=0..4".into());
        assert_eq!(placement.check(), Ok(()));
    }
}

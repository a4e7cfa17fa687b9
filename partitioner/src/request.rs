//! The request bodies partners send, and their conversion into validated commands.
//!
//! Every field is optional and loosely typed here on purpose: validation then reports
//! every missing or bad field in one answer, instead of the first one serde trips over.
//! Only a body that is not JSON at all, or a field of the wrong JSON type, fails earlier.

use std::fmt;

use serde::de::{Deserializer, Error, Unexpected, Visitor};
use serde::Deserialize;
use uuid::Uuid;

use crate::event::{Command, Event, Money, Stay};
use crate::validate::{Checker, Invalid};

/// Body of `POST /v1/bookings` (create) and `POST /v1/bookings/{id}/modify`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BookingRequest {
    pub tenant_id: Option<String>,
    pub property_id: Option<String>,
    pub room_type: Option<String>,
    pub check_in: Option<String>,
    pub check_out: Option<String>,
    #[serde(default, deserialize_with = "integer")]
    pub rooms: Option<i64>,
    #[serde(default, deserialize_with = "integer")]
    pub guests: Option<i64>,
    #[serde(default, deserialize_with = "integer")]
    pub amount_minor: Option<i64>,
    pub currency: Option<String>,
    pub guest_name: Option<String>,
    /// The partner's own id of the booking (an OpenTravel channel's reservation
    /// `UniqueID`), kept on it; set on create only.
    pub partner_reference: Option<String>,
}

/// Body of `POST /v1/bookings/{id}/cancel`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CancelRequest {
    pub tenant_id: Option<String>,
    pub property_id: Option<String>,
    pub reason: Option<String>,
}

/// Body of `PUT /v1/inventory`: the allotment of one room type for the nights in
/// `[from, to)`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AllotmentRequest {
    pub tenant_id: Option<String>,
    pub property_id: Option<String>,
    pub room_type: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    #[serde(default, deserialize_with = "integer")]
    pub units: Option<i64>,
}

/// An integer field. JSON has one number type, and JSON Schema (which the published spec
/// uses) counts `2.0` or `2e0` as the integer 2; serde alone would refuse them as floats.
/// A number with a fraction, one beyond `i64`, or any other type is still the wrong type,
/// and `null` stays "missing", as for every other field.
fn integer<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<i64>, D::Error> {
    Option::<Integer>::deserialize(deserializer).map(|value| value.map(|Integer(n)| n))
}

struct Integer(i64);

impl<'de> Deserialize<'de> for Integer {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Integer, D::Error> {
        deserializer.deserialize_any(IntegerVisitor).map(Integer)
    }
}

struct IntegerVisitor;

impl Visitor<'_> for IntegerVisitor {
    type Value = i64;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("an integer")
    }

    fn visit_i64<E: Error>(self, value: i64) -> Result<i64, E> {
        Ok(value)
    }

    fn visit_u64<E: Error>(self, value: u64) -> Result<i64, E> {
        i64::try_from(value).map_err(|_| E::invalid_value(Unexpected::Unsigned(value), &self))
    }

    fn visit_f64<E: Error>(self, value: f64) -> Result<i64, E> {
        // -2^63 and 2^63 are exact in f64, so the range is exactly i64's.
        const BOUND: f64 = 9_223_372_036_854_775_808.0;
        if value.fract() == 0.0 && (-BOUND..BOUND).contains(&value) {
            Ok(value as i64)
        } else {
            Err(E::invalid_type(Unexpected::Float(value), &self))
        }
    }
}

impl BookingRequest {
    pub fn into_create(self, booking_id: Uuid) -> Result<Command, Invalid> {
        let mut check = Checker::default();
        let (tenant_id, property_id) = check.target(&self.tenant_id, &self.property_id);
        let stay = check.stay(&self);
        let price = check.price(self.amount_minor, &self.currency);
        let guest_name = check.optional_text("guest_name", self.guest_name, 200);
        let partner_reference =
            check.optional_text("partner_reference", self.partner_reference, 100);
        check.finish()?;
        Ok(Command {
            tenant_id: tenant_id.unwrap(),
            property_id: property_id.unwrap(),
            event: Event::CreateBooking {
                booking_id,
                stay: stay.unwrap(),
                price: price.unwrap(),
                guest_name,
                partner_reference,
            },
        })
    }

    pub fn into_modify(self, booking_id: Uuid) -> Result<Command, Invalid> {
        let mut check = Checker::default();
        let (tenant_id, property_id) = check.target(&self.tenant_id, &self.property_id);
        let stay = check.stay(&self);
        let price = check.price(self.amount_minor, &self.currency);
        if self.guest_name.is_some() {
            check.reject("guest_name", "cannot be changed by a modify");
        }
        if self.partner_reference.is_some() {
            check.reject("partner_reference", "cannot be changed by a modify");
        }
        check.finish()?;
        Ok(Command {
            tenant_id: tenant_id.unwrap(),
            property_id: property_id.unwrap(),
            event: Event::ModifyBooking {
                booking_id,
                stay: stay.unwrap(),
                price: price.unwrap(),
            },
        })
    }
}

impl CancelRequest {
    pub fn into_cancel(self, booking_id: Uuid) -> Result<Command, Invalid> {
        let mut check = Checker::default();
        let (tenant_id, property_id) = check.target(&self.tenant_id, &self.property_id);
        let reason = check.optional_text("reason", self.reason, 500);
        check.finish()?;
        Ok(Command {
            tenant_id: tenant_id.unwrap(),
            property_id: property_id.unwrap(),
            event: Event::CancelBooking { booking_id, reason },
        })
    }
}

impl AllotmentRequest {
    pub fn into_allotment(self) -> Result<Command, Invalid> {
        let mut check = Checker::default();
        let (tenant_id, property_id) = check.target(&self.tenant_id, &self.property_id);
        let room_type = check.id("room_type", &self.room_type);
        let range = check.date_range(("from", &self.from), ("to", &self.to), 366);
        let units = check.int_in("units", self.units, 0, 100_000);
        check.finish()?;
        let (from, to) = range.unwrap();
        Ok(Command {
            tenant_id: tenant_id.unwrap(),
            property_id: property_id.unwrap(),
            event: Event::SetAllotment {
                room_type: room_type.unwrap(),
                from,
                to,
                units: units.unwrap() as u32,
            },
        })
    }
}

impl Checker {
    fn target(
        &mut self,
        tenant_id: &Option<String>,
        property_id: &Option<String>,
    ) -> (Option<String>, Option<String>) {
        (
            self.id("tenant_id", tenant_id),
            self.id("property_id", property_id),
        )
    }

    fn stay(&mut self, req: &BookingRequest) -> Option<Stay> {
        let room_type = self.id("room_type", &req.room_type);
        let dates = self.date_range(
            ("check_in", &req.check_in),
            ("check_out", &req.check_out),
            crate::validate::MAX_STAY_NIGHTS,
        );
        let rooms = self.int_in("rooms", req.rooms, 1, crate::validate::MAX_ROOMS);
        let guests = self.int_in(
            "guests",
            req.guests,
            1,
            crate::validate::MAX_ROOMS * crate::validate::MAX_GUESTS_PER_ROOM,
        );
        if let (Some(rooms), Some(guests)) = (rooms, guests) {
            if guests < rooms {
                self.reject("guests", "must be at least one per room");
            } else if guests > rooms * crate::validate::MAX_GUESTS_PER_ROOM {
                self.reject(
                    "guests",
                    format!("at most {} per room", crate::validate::MAX_GUESTS_PER_ROOM),
                );
            }
        }
        let (check_in, check_out) = dates?;
        Some(Stay {
            room_type: room_type?,
            check_in,
            check_out,
            rooms: rooms? as u16,
            guests: guests? as u16,
        })
    }

    fn price(&mut self, amount_minor: Option<i64>, currency: &Option<String>) -> Option<Money> {
        let amount_minor = self.int_in(
            "amount_minor",
            amount_minor,
            0,
            crate::validate::MAX_AMOUNT_MINOR,
        );
        let currency = self.currency("currency", currency);
        Some(Money {
            amount_minor: amount_minor?,
            currency: currency?,
        })
    }
}

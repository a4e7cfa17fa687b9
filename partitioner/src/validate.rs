//! Field validation that reports every bad field, not just the first.
//!
//! A partner fixing an integration wants the whole list in one answer. [`Checker`] collects
//! [`FieldError`]s while the request converters in [`crate::request`] read each field; the
//! ingress turns an [`Invalid`] into a 422 problem+json body naming each field.

use chrono::NaiveDate;
use serde::Serialize;

/// Longest stay a single booking may hold, in nights.
pub const MAX_STAY_NIGHTS: i64 = 30;
/// Most rooms a single booking may hold.
pub const MAX_ROOMS: i64 = 9;
/// Occupancy cap per room.
pub const MAX_GUESTS_PER_ROOM: i64 = 4;
/// Ten million in major units of a two-decimal currency: far above any real stay, far
/// below where sums of amounts could overflow an `i64`.
pub const MAX_AMOUNT_MINOR: i64 = 1_000_000_000;
/// Longest tenant, property, room type or partner id.
pub const MAX_ID_LEN: usize = 64;
/// Longest `Idempotency-Key`, as the IETF idempotency-key draft suggests.
pub const MAX_IDEMPOTENCY_KEY_LEN: usize = 255;

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// The JSON field name, as the partner sent it.
    pub field: String,
    pub detail: String,
}

/// A request that failed validation, with every reason.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{} invalid field(s)", .errors.len())]
pub struct Invalid {
    pub errors: Vec<FieldError>,
}

impl Invalid {
    pub fn fields(&self) -> impl Iterator<Item = &str> {
        self.errors.iter().map(|e| e.field.as_str())
    }
}

/// Collects field errors; each check returns the typed value when the field is good.
#[derive(Default)]
pub(crate) struct Checker {
    errors: Vec<FieldError>,
}

impl Checker {
    pub(crate) fn reject(&mut self, field: &str, detail: impl Into<String>) {
        self.errors.push(FieldError {
            field: field.to_owned(),
            detail: detail.into(),
        });
    }

    pub(crate) fn finish(self) -> Result<(), Invalid> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(Invalid {
                errors: self.errors,
            })
        }
    }

    fn required<'a, T>(&mut self, field: &str, value: &'a Option<T>) -> Option<&'a T> {
        if value.is_none() {
            self.reject(field, "is required");
        }
        value.as_ref()
    }

    /// Ids become Kafka keys and Redis key parts, so they are restricted to a charset with
    /// no separators (`/`, `:`) and nothing that needs escaping.
    pub(crate) fn id(&mut self, field: &str, value: &Option<String>) -> Option<String> {
        let value = self.required(field, value)?;
        match id_problem(value) {
            Some(problem) => {
                self.reject(field, problem);
                None
            }
            None => Some(value.clone()),
        }
    }

    pub(crate) fn int_in(
        &mut self,
        field: &str,
        value: Option<i64>,
        min: i64,
        max: i64,
    ) -> Option<i64> {
        let value = *self.required(field, &value)?;
        if !(min..=max).contains(&value) {
            self.reject(field, format!("must be between {min} and {max}"));
            return None;
        }
        Some(value)
    }

    pub(crate) fn date(&mut self, field: &str, value: &Option<String>) -> Option<NaiveDate> {
        let value = self.required(field, value)?;
        // The shape check makes the format strict: chrono alone accepts `2027-1-5`, and
        // skips spaces and takes a sign before each number, so even ten characters such as
        // `2027- 1-05` or `-207-01-10` would pass a length check (found by fuzzing).
        match NaiveDate::parse_from_str(value, "%Y-%m-%d") {
            Ok(date) if is_iso_date_shape(value) => Some(date),
            _ => {
                self.reject(field, "must be an ISO 8601 date (YYYY-MM-DD)");
                None
            }
        }
    }

    /// A half-open range of nights, `[start, end)`, at most `max_nights` long.
    pub(crate) fn date_range(
        &mut self,
        (start_field, start): (&str, &Option<String>),
        (end_field, end): (&str, &Option<String>),
        max_nights: i64,
    ) -> Option<(NaiveDate, NaiveDate)> {
        let start = self.date(start_field, start);
        let end = self.date(end_field, end)?;
        let start = start?;
        let nights = (end - start).num_days();
        if nights < 1 {
            self.reject(end_field, format!("must be after {start_field}"));
            return None;
        }
        if nights > max_nights {
            self.reject(
                end_field,
                format!("at most {max_nights} nights after {start_field}"),
            );
            return None;
        }
        Some((start, end))
    }

    pub(crate) fn currency(&mut self, field: &str, value: &Option<String>) -> Option<String> {
        let value = self.required(field, value)?;
        if iso_currency::Currency::from_code(value).is_none() {
            self.reject(field, "must be an ISO 4217 currency code such as EUR");
            return None;
        }
        Some(value.clone())
    }

    pub(crate) fn optional_text(
        &mut self,
        field: &str,
        value: Option<String>,
        max_chars: usize,
    ) -> Option<String> {
        let value = value?;
        if value.chars().count() > max_chars {
            self.reject(field, format!("at most {max_chars} characters"));
            return None;
        }
        if value.chars().any(char::is_control) {
            self.reject(field, "must not contain control characters");
            return None;
        }
        Some(value)
    }
}

/// `YYYY-MM-DD` exactly: four digits, a hyphen, two digits, a hyphen, two digits.
fn is_iso_date_shape(value: &str) -> bool {
    let bytes = value.as_bytes();
    bytes.len() == 10
        && bytes.iter().enumerate().all(|(i, b)| match i {
            4 | 7 => *b == b'-',
            _ => b.is_ascii_digit(),
        })
}

/// Why `value` is not a valid id, if it is not.
pub fn id_problem(value: &str) -> Option<String> {
    if value.is_empty() || value.len() > MAX_ID_LEN {
        return Some(format!("must be 1 to {MAX_ID_LEN} characters"));
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    if !value.chars().all(allowed) {
        return Some("may contain only letters, digits, '-', '_' and '.'".to_owned());
    }
    None
}

/// Why `key` is not a valid `Idempotency-Key`, if it is not: 1 to 255 printable ASCII
/// characters.
pub fn idempotency_key_problem(key: &str) -> Option<String> {
    if key.is_empty() || key.len() > MAX_IDEMPOTENCY_KEY_LEN {
        return Some(format!("must be 1 to {MAX_IDEMPOTENCY_KEY_LEN} characters"));
    }
    if !key.bytes().all(|b| (0x20..=0x7e).contains(&b)) {
        return Some("must be printable ASCII".to_owned());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Event;
    use crate::request::{AllotmentRequest, BookingRequest, CancelRequest};
    use proptest::prelude::*;
    use uuid::Uuid;

    fn good() -> BookingRequest {
        BookingRequest {
            tenant_id: Some("acme".into()),
            property_id: Some("lisbon-1".into()),
            room_type: Some("DBL".into()),
            check_in: Some("2027-01-10".into()),
            check_out: Some("2027-01-12".into()),
            rooms: Some(1),
            guests: Some(2),
            amount_minor: Some(25_000),
            currency: Some("EUR".into()),
            guest_name: Some("Ada Lovelace".into()),
            partner_reference: None,
        }
    }

    fn fields(result: Result<crate::event::Command, Invalid>) -> Vec<String> {
        result
            .unwrap_err()
            .fields()
            .map(str::to_owned)
            .collect::<Vec<_>>()
    }

    #[test]
    fn accepts_a_good_booking() {
        let command = good().into_create(Uuid::nil()).unwrap();
        assert_eq!(command.tenant_id, "acme");
        let Event::CreateBooking { stay, price, .. } = command.event else {
            panic!("not a create")
        };
        assert_eq!(stay.nights().count(), 2);
        assert_eq!(price.amount_minor, 25_000);
    }

    #[test]
    fn integers_written_as_integral_numbers_are_integers() {
        // JSON Schema, and so the published spec, counts 2.0 and 25e3 as integers.
        let body = r#"{"rooms": 1.0, "guests": 2e0, "amount_minor": 25e3}"#;
        let req: BookingRequest = serde_json::from_str(body).unwrap();
        assert_eq!(
            (req.rooms, req.guests, req.amount_minor),
            (Some(1), Some(2), Some(25_000))
        );
        let req: AllotmentRequest = serde_json::from_str(r#"{"units": 7.0}"#).unwrap();
        assert_eq!(req.units, Some(7));
        let req: AllotmentRequest = serde_json::from_str(r#"{"units": null}"#).unwrap();
        assert_eq!(req.units, None);
        // A fraction, a number beyond i64 and a string stay the wrong type.
        for bad in [
            "1.5",
            "1e19",
            "9223372036854775808",
            "-1e300",
            "\"2\"",
            "true",
        ] {
            let body = format!(r#"{{"units": {bad}}}"#);
            let error = serde_json::from_str::<AllotmentRequest>(&body).unwrap_err();
            assert!(error.to_string().contains("integer"), "{bad}: {error}");
        }
    }

    #[test]
    fn reports_every_missing_field() {
        let got = fields(BookingRequest::default().into_create(Uuid::nil()));
        for field in [
            "tenant_id",
            "property_id",
            "room_type",
            "check_in",
            "check_out",
            "rooms",
            "guests",
            "amount_minor",
            "currency",
        ] {
            assert!(
                got.iter().any(|f| f == field),
                "{field} missing from {got:?}"
            );
        }
    }

    #[test]
    fn reports_every_bad_field_at_once() {
        let req = BookingRequest {
            tenant_id: Some("acme/evil".into()),
            check_in: Some("2027-13-01".into()),
            rooms: Some(0),
            currency: Some("EURO".into()),
            amount_minor: Some(-1),
            ..good()
        };
        let got = fields(req.into_create(Uuid::nil()));
        assert_eq!(
            got,
            ["tenant_id", "check_in", "rooms", "amount_minor", "currency"]
        );
    }

    #[test]
    fn check_out_must_follow_check_in_within_the_cap() {
        let same_day = BookingRequest {
            check_out: Some("2027-01-10".into()),
            ..good()
        };
        assert_eq!(fields(same_day.into_create(Uuid::nil())), ["check_out"]);
        let too_long = BookingRequest {
            check_out: Some("2027-02-10".into()),
            ..good()
        };
        assert_eq!(fields(too_long.into_create(Uuid::nil())), ["check_out"]);
    }

    #[test]
    fn dates_are_strict_iso() {
        for bad in [
            "2027-1-10",
            "10/01/2027",
            "2027-02-30",
            "",
            "2027-01-10T00:00:00Z",
            // Ten characters that chrono alone reads as a date (found by fuzzing).
            "2027- 1-05",
            " 2027-1-05",
            "-207-01-10",
            "+207-01-10",
            "2027-+1-05",
        ] {
            let req = BookingRequest {
                check_in: Some(bad.into()),
                ..good()
            };
            assert_eq!(fields(req.into_create(Uuid::nil())), ["check_in"], "{bad}");
        }
    }

    #[test]
    fn occupancy_is_bounded_per_room() {
        let crowded = BookingRequest {
            rooms: Some(1),
            guests: Some(5),
            ..good()
        };
        assert_eq!(fields(crowded.into_create(Uuid::nil())), ["guests"]);
        let empty_room = BookingRequest {
            rooms: Some(3),
            guests: Some(2),
            ..good()
        };
        assert_eq!(fields(empty_room.into_create(Uuid::nil())), ["guests"]);
    }

    #[test]
    fn modify_may_not_rename_the_guest() {
        assert_eq!(fields(good().into_modify(Uuid::nil())), ["guest_name"]);
    }

    #[test]
    fn the_partners_reference_is_kept_on_create_only() {
        let with_reference = BookingRequest {
            partner_reference: Some("CH-100234".into()),
            ..good()
        };
        let command = with_reference.clone().into_create(Uuid::nil()).unwrap();
        let Event::CreateBooking {
            partner_reference, ..
        } = command.event
        else {
            panic!("a create")
        };
        assert_eq!(partner_reference.as_deref(), Some("CH-100234"));
        let modify = BookingRequest {
            guest_name: None,
            ..with_reference
        };
        assert_eq!(
            fields(modify.into_modify(Uuid::nil())),
            ["partner_reference"]
        );
        let too_long = BookingRequest {
            partner_reference: Some("x".repeat(101)),
            ..good()
        };
        assert_eq!(
            fields(too_long.into_create(Uuid::nil())),
            ["partner_reference"]
        );
    }

    #[test]
    fn cancel_needs_only_the_target() {
        let cancel = CancelRequest {
            tenant_id: Some("acme".into()),
            property_id: Some("p1".into()),
            reason: None,
        };
        assert!(cancel.into_cancel(Uuid::nil()).is_ok());
        assert_eq!(
            fields(CancelRequest::default().into_cancel(Uuid::nil())),
            ["tenant_id", "property_id"]
        );
    }

    #[test]
    fn allotment_checks_range_and_units() {
        let req = AllotmentRequest {
            tenant_id: Some("acme".into()),
            property_id: Some("p1".into()),
            room_type: Some("DBL".into()),
            from: Some("2027-01-01".into()),
            to: Some("2027-03-01".into()),
            units: Some(-3),
        };
        assert_eq!(fields(req.into_allotment()), ["units"]);
    }

    #[test]
    fn idempotency_keys_are_printable_ascii() {
        assert!(idempotency_key_problem("order-42/attempt 1").is_none());
        assert!(idempotency_key_problem("").is_some());
        assert!(idempotency_key_problem(&"k".repeat(256)).is_some());
        assert!(idempotency_key_problem("caf\u{e9}").is_some());
        assert!(idempotency_key_problem("tab\there").is_some());
    }

    proptest! {
        /// Whatever a partner sends, validation either yields an event whose invariants
        /// hold or names at least one field; it never panics.
        #[test]
        fn validation_is_total(
            rooms in proptest::option::of(-5i64..20),
            guests in proptest::option::of(-5i64..60),
            nights in -3i64..40,
            amount in proptest::option::of(any::<i64>()),
            tenant in proptest::option::of("[a-z/ ]{0,70}"),
        ) {
            let check_in = NaiveDate::from_ymd_opt(2027, 1, 1).unwrap();
            let check_out = check_in + chrono::Days::new(nights.unsigned_abs());
            let check_out = if nights < 0 { check_in } else { check_out };
            let req = BookingRequest {
                tenant_id: tenant,
                rooms,
                guests,
                amount_minor: amount,
                check_in: Some(check_in.to_string()),
                check_out: Some(check_out.to_string()),
                ..good()
            };
            match req.into_create(Uuid::nil()) {
                Ok(command) => {
                    let Event::CreateBooking { stay, price, .. } = command.event else {
                        panic!("not a create")
                    };
                    let n = stay.nights().count() as i64;
                    prop_assert!((1..=MAX_STAY_NIGHTS).contains(&n));
                    prop_assert!(stay.rooms >= 1 && i64::from(stay.rooms) <= MAX_ROOMS);
                    prop_assert!(stay.guests >= stay.rooms);
                    prop_assert!(i64::from(stay.guests) <= i64::from(stay.rooms) * MAX_GUESTS_PER_ROOM);
                    prop_assert!((0..=MAX_AMOUNT_MINOR).contains(&price.amount_minor));
                    prop_assert!(id_problem(&command.tenant_id).is_none());
                }
                Err(invalid) => prop_assert!(!invalid.errors.is_empty()),
            }
        }
    }
}

//! The ingress's request step (`partitioner::intake::prepare`, the very function
//! `ingress/src/mutate.rs` calls), from the body bytes a partner sends to the event the
//! ingress publishes: decode the JSON into the route's request type, validate it into a
//! command, derive the ids, choose the partition, wrap it into its envelope.
//!
//! The first input byte picks the route (create, modify, cancel, inventory); the rest is
//! the body. Property: nothing panics; a refusal names at least one field of that route's
//! body; and what validation accepts, no later step refuses or reads differently: its ids
//! pass the id rules and give a routing key that splits back into the same pair, dates are
//! the strict `YYYY-MM-DD` the partner sent, counts and amounts are within the documented
//! bounds, and the envelope the consumers decode is the one the ingress encoded.
#![no_main]

use chrono::NaiveDate;
use libfuzzer_sys::fuzz_target;
use partitioner::validate::{
    id_problem, MAX_AMOUNT_MINOR, MAX_GUESTS_PER_ROOM, MAX_ROOMS, MAX_STAY_NIGHTS,
};
use partitioner::{
    intake, AllotmentRequest, BookingRequest, Envelope, Event, Money, Mutation, PartitionMap,
    Prepared, RequestError, Sender, Stay,
};
use uuid::Uuid;

const BOOKING_FIELDS: &[&str] = &[
    "tenant_id",
    "property_id",
    "room_type",
    "check_in",
    "check_out",
    "rooms",
    "guests",
    "amount_minor",
    "currency",
    "guest_name",
];
const CANCEL_FIELDS: &[&str] = &["tenant_id", "property_id", "reason"];
const ALLOTMENT_FIELDS: &[&str] = &[
    "tenant_id",
    "property_id",
    "room_type",
    "from",
    "to",
    "units",
];

fuzz_target!(|data: &[u8]| {
    let Some((&route, body)) = data.split_first() else {
        return;
    };
    let booking_id = Uuid::from_u128(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef);
    let (mutation, fields) = match route % 4 {
        0 => (Mutation::CreateBooking, BOOKING_FIELDS),
        1 => (Mutation::ModifyBooking(booking_id), BOOKING_FIELDS),
        2 => (Mutation::CancelBooking(booking_id), CANCEL_FIELDS),
        _ => (Mutation::SetInventory, ALLOTMENT_FIELDS),
    };
    let sender = Sender {
        partner_id: "ota-1",
        any_partner: false,
        idempotency_key: "key-1",
        request_id: "req-1",
        received_at_ms: 1_700_000_000_000,
    };
    let map = PartitionMap::parse(12, "").expect("a plain map builds");
    let prepared = match intake::prepare(mutation, &sender, body, &map) {
        Ok(prepared) => prepared,
        // Not the route's JSON: a 400, and the end of this input.
        Err(RequestError::Malformed(_)) => return,
        Err(RequestError::Invalid(invalid)) => {
            assert!(!invalid.errors.is_empty(), "a refusal names no field");
            for field in invalid.fields() {
                assert!(
                    fields.contains(&field),
                    "refusal names unknown field {field:?}"
                );
            }
            return;
        }
    };
    // What was accepted, against what the partner sent (which therefore decodes).
    match &prepared.envelope.event {
        Event::CreateBooking {
            stay,
            price,
            guest_name,
            partner_reference,
            ..
        } => {
            let sent: BookingRequest = serde_json::from_slice(body).expect("it was accepted");
            check_stay(stay, &(sent.check_in, sent.check_out));
            check_price(price);
            check_text(guest_name.as_deref(), 200);
            check_text(partner_reference.as_deref(), 100);
        }
        Event::ModifyBooking { stay, price, .. } => {
            let sent: BookingRequest = serde_json::from_slice(body).expect("it was accepted");
            check_stay(stay, &(sent.check_in, sent.check_out));
            check_price(price);
        }
        Event::CancelBooking { reason, .. } => check_text(reason.as_deref(), 500),
        Event::SetAllotment {
            room_type,
            from,
            to,
            units,
        } => {
            let sent: AllotmentRequest = serde_json::from_slice(body).expect("it was accepted");
            assert_eq!(id_problem(room_type), None);
            check_dates(*from, *to, &(sent.from, sent.to), 366);
            assert!(*units <= 100_000);
        }
    }
    check(&prepared);
});

/// What holds for every accepted request's event.
fn check(prepared: &Prepared) {
    let envelope = &prepared.envelope;
    assert_eq!(id_problem(&envelope.tenant_id), None);
    assert_eq!(id_problem(&envelope.property_id), None);
    // The Kafka key and the Redis key parts: the pair must come back out unambiguously.
    assert_eq!(
        prepared.routing_key.split_once('/'),
        Some((envelope.tenant_id.as_str(), envelope.property_id.as_str()))
    );
    assert!((0..12).contains(&prepared.partition));
    // What the consumers will read is what the ingress validated.
    let decoded = Envelope::from_json(&envelope.to_json()).expect("a validated event decodes");
    assert_eq!(&decoded, envelope);
}

fn check_stay(stay: &Stay, sent: &(Option<String>, Option<String>)) {
    assert_eq!(id_problem(&stay.room_type), None);
    check_dates(stay.check_in, stay.check_out, sent, MAX_STAY_NIGHTS);
    let nights = stay.nights().count() as i64;
    assert_eq!(nights, (stay.check_out - stay.check_in).num_days());
    let (rooms, guests) = (i64::from(stay.rooms), i64::from(stay.guests));
    assert!((1..=MAX_ROOMS).contains(&rooms));
    assert!(guests >= rooms && guests <= rooms * MAX_GUESTS_PER_ROOM);
}

/// An accepted range is non-empty, within its cap, and each date reads back exactly as
/// the partner wrote it: the documented format is strict `YYYY-MM-DD`.
fn check_dates(
    start: NaiveDate,
    end: NaiveDate,
    (sent_start, sent_end): &(Option<String>, Option<String>),
    max_nights: i64,
) {
    let nights = (end - start).num_days();
    assert!((1..=max_nights).contains(&nights), "{nights} nights");
    assert_eq!(
        sent_start.as_deref(),
        Some(start.format("%Y-%m-%d").to_string().as_str())
    );
    assert_eq!(
        sent_end.as_deref(),
        Some(end.format("%Y-%m-%d").to_string().as_str())
    );
}

fn check_price(price: &Money) {
    assert!((0..=MAX_AMOUNT_MINOR).contains(&price.amount_minor));
    assert!(iso_currency::Currency::from_code(&price.currency).is_some());
}

fn check_text(text: Option<&str>, max_chars: usize) {
    if let Some(text) = text {
        assert!(text.chars().count() <= max_chars);
        assert!(!text.chars().any(char::is_control));
    }
}

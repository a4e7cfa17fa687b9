//! Request validation, from the body bytes a partner sends to the event the ingress
//! publishes, as `ingress/src/mutate.rs` runs it: decode the JSON into the route's request
//! type, validate it into a command, wrap it into an envelope.
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
use partitioner::partition_map::routing_key;
use partitioner::validate::{
    id_problem, MAX_AMOUNT_MINOR, MAX_GUESTS_PER_ROOM, MAX_ROOMS, MAX_STAY_NIGHTS,
};
use partitioner::{
    AllotmentRequest, BookingRequest, CancelRequest, Command, Envelope, Event, EventMeta, Invalid,
    Money, PartitionMap, Stay,
};
use serde::de::DeserializeOwned;
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
    match route % 4 {
        0 => {
            let Some(req) = decode::<BookingRequest>(body) else {
                return;
            };
            let dates = (req.check_in.clone(), req.check_out.clone());
            let outcome = req.into_create(booking_id);
            if let Ok(Command {
                event:
                    Event::CreateBooking {
                        stay,
                        price,
                        guest_name,
                        ..
                    },
                ..
            }) = &outcome
            {
                check_stay(stay, &dates);
                check_price(price);
                check_text(guest_name.as_deref(), 200);
            }
            check(outcome, BOOKING_FIELDS);
        }
        1 => {
            let Some(req) = decode::<BookingRequest>(body) else {
                return;
            };
            let dates = (req.check_in.clone(), req.check_out.clone());
            let outcome = req.into_modify(booking_id);
            if let Ok(Command {
                event: Event::ModifyBooking { stay, price, .. },
                ..
            }) = &outcome
            {
                check_stay(stay, &dates);
                check_price(price);
            }
            check(outcome, BOOKING_FIELDS);
        }
        2 => {
            let Some(req) = decode::<CancelRequest>(body) else {
                return;
            };
            let outcome = req.into_cancel(booking_id);
            if let Ok(Command {
                event: Event::CancelBooking { reason, .. },
                ..
            }) = &outcome
            {
                check_text(reason.as_deref(), 500);
            }
            check(outcome, CANCEL_FIELDS);
        }
        _ => {
            let Some(req) = decode::<AllotmentRequest>(body) else {
                return;
            };
            let dates = (req.from.clone(), req.to.clone());
            let outcome = req.into_allotment();
            if let Ok(Command {
                event:
                    Event::SetAllotment {
                        room_type,
                        from,
                        to,
                        units,
                    },
                ..
            }) = &outcome
            {
                assert_eq!(id_problem(room_type), None);
                check_dates(*from, *to, &dates, 366);
                assert!(*units <= 100_000);
            }
            check(outcome, ALLOTMENT_FIELDS);
        }
    }
});

/// The ingress decodes with `serde_path_to_error` over `serde_json`, which accepts and
/// refuses exactly what `serde_json` alone does; a refusal there is a 400 and ends here.
fn decode<T: DeserializeOwned>(body: &[u8]) -> Option<T> {
    serde_json::from_slice(body).ok()
}

/// What holds for every route's outcome.
fn check(outcome: Result<Command, Invalid>, fields: &[&str]) {
    let command = match outcome {
        Ok(command) => command,
        Err(invalid) => {
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
    assert_eq!(id_problem(&command.tenant_id), None);
    assert_eq!(id_problem(&command.property_id), None);
    // The Kafka key and the Redis key parts: the pair must come back out unambiguously.
    let key = routing_key(&command.tenant_id, &command.property_id);
    assert_eq!(
        key.split_once('/'),
        Some((command.tenant_id.as_str(), command.property_id.as_str()))
    );
    let map = PartitionMap::parse(12, "").expect("a plain map builds");
    assert!(map.partition(&command.tenant_id, &command.property_id) < 12);
    // What the consumers will read is what the ingress validated.
    let meta = EventMeta {
        event_id: Uuid::nil(),
        partner_id: "ota-1".to_owned(),
        request_id: "req-1".to_owned(),
        received_at_ms: 1_700_000_000_000,
        any_partner: false,
    };
    let envelope = Envelope::new(command, meta);
    let decoded = Envelope::from_json(&envelope.to_json()).expect("a validated event decodes");
    assert_eq!(decoded, envelope);
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

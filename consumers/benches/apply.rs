//! What the booking state machine costs per event, without the store: `apply` over an
//! in-memory ledger for a create of a three-night stay, a modify and a cancel.
//!
//! Run with `cargo bench -p consumers --bench apply`. The ledger answers from hash maps and
//! clones the booking it returns, standing in for the store's read of a decoded record; the
//! store's own reads and writes are measured by `loadtest bench-consumers`
//! (docs/PERFORMANCE.md). `apply` writes nothing, so every iteration sees the same state and
//! reaches the same decision, which each benchmark checks once before measuring.

use std::collections::HashMap;
use std::convert::Infallible;
use std::hint::black_box;
use std::time::Duration;

use chrono::NaiveDate;
use consumers::apply::{apply, Booking, Ledger, Night, NightId, Position};
use criterion::{criterion_group, criterion_main, Criterion};
use partitioner::{Envelope, Event, Money, Outcome, Stay, SCHEMA_VERSION};
use uuid::Uuid;

const TENANT: &str = "acme-hotels";
const PROPERTY: &str = "lisbon-baixa-01";
const ROOM_TYPE: &str = "DBL-SUPERIOR";

#[derive(Default)]
struct MemoryLedger {
    bookings: HashMap<Uuid, Booking>,
    nights: HashMap<NightId, Night>,
}

impl Ledger for MemoryLedger {
    type Error = Infallible;

    fn booking(&self, booking_id: Uuid) -> Result<Option<Booking>, Infallible> {
        Ok(self.bookings.get(&booking_id).cloned())
    }

    fn night(&self, id: &NightId) -> Result<Option<Night>, Infallible> {
        Ok(self.nights.get(id).copied())
    }
}

impl MemoryLedger {
    /// Applies `envelope` and keeps its effects, as the store would.
    fn commit(&mut self, envelope: &Envelope, offset: i64) -> Outcome {
        let Ok(effects) = apply(self, envelope, position(offset));
        self.nights.extend(effects.nights);
        if let Some(booking) = effects.booking {
            self.bookings.insert(booking.booking_id, booking);
        }
        effects.decision.outcome
    }
}

fn position(offset: i64) -> Position {
    Position {
        partition: 3,
        offset,
    }
}

fn date(day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2027, 3, day).expect("a March date")
}

fn envelope(seq: u128, event: Event) -> Envelope {
    Envelope {
        schema_version: SCHEMA_VERSION,
        event_id: Uuid::from_u128(seq),
        tenant_id: TENANT.to_owned(),
        property_id: PROPERTY.to_owned(),
        partner_id: "ota-booking-1".to_owned(),
        request_id: format!("req-01HZY8K3M2Q{seq}"),
        received_at_ms: 1_800_000_000_000,
        any_partner: false,
        placement: None,
        event,
    }
}

fn stay(check_in: u32, check_out: u32, rooms: u16) -> Stay {
    Stay {
        room_type: ROOM_TYPE.to_owned(),
        check_in: date(check_in),
        check_out: date(check_out),
        rooms,
        guests: rooms * 2,
    }
}

fn price(amount_minor: i64) -> Money {
    Money {
        amount_minor,
        currency: "EUR".to_owned(),
    }
}

const BOOKING: u128 = 100;
const OTHER_BOOKING: u128 = 101;

/// A property with 20 rooms a night for March, and one confirmed three-night booking.
fn ledger() -> MemoryLedger {
    let mut ledger = MemoryLedger::default();
    let allot = envelope(
        1,
        Event::SetAllotment {
            room_type: ROOM_TYPE.to_owned(),
            from: date(1),
            to: date(31),
            units: 20,
        },
    );
    assert_eq!(ledger.commit(&allot, 1), Outcome::AllotmentSet);
    let create = envelope(
        2,
        Event::CreateBooking {
            booking_id: Uuid::from_u128(BOOKING),
            stay: stay(10, 13, 1),
            price: price(45_000),
            guest_name: Some("Maria Fernanda Albuquerque".to_owned()),
            partner_reference: None,
        },
    );
    assert_eq!(ledger.commit(&create, 2), Outcome::Confirmed);
    ledger
}

fn state_machine(c: &mut Criterion) {
    let ledger = ledger();
    let cases = [
        (
            "create, 3 nights",
            envelope(
                3,
                Event::CreateBooking {
                    booking_id: Uuid::from_u128(OTHER_BOOKING),
                    stay: stay(10, 13, 1),
                    price: price(45_000),
                    guest_name: Some("João Pedro Santos".to_owned()),
                    partner_reference: None,
                },
            ),
            Outcome::Confirmed,
        ),
        (
            // Releases the three old nights and takes four, two of them the same.
            "modify, 3 to 4 nights",
            envelope(
                4,
                Event::ModifyBooking {
                    booking_id: Uuid::from_u128(BOOKING),
                    stay: stay(11, 15, 2),
                    price: price(98_000),
                },
            ),
            Outcome::Modified,
        ),
        (
            "cancel, 3 nights",
            envelope(
                5,
                Event::CancelBooking {
                    booking_id: Uuid::from_u128(BOOKING),
                    reason: Some("guest changed travel plans".to_owned()),
                },
            ),
            Outcome::Cancelled,
        ),
    ];

    let mut group = c.benchmark_group("apply");
    for (name, event, expected) in &cases {
        let Ok(effects) = apply(&ledger, event, position(10));
        assert_eq!(effects.decision.outcome, *expected, "{name}");
        group.bench_function(*name, |b| {
            b.iter(|| apply(black_box(&ledger), black_box(event), position(10)))
        });
    }
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
}

criterion_group! {
    name = benches;
    config = config();
    targets = state_machine
}
criterion_main!(benches);

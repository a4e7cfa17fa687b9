//! One behavioural suite every [`Store`] backend must pass.
//!
//! Each check takes a fresh store from `new_store` and exercises only the trait, so a new
//! backend is tested by calling [`run_all`] with its constructor.

use chrono::NaiveDate;
use partitioner::{Envelope, Event, Money, Outcome, Stay, SCHEMA_VERSION};
use uuid::Uuid;

use super::{PartitionStore, Store, StoreError};
use crate::apply::BookingStatus;

pub fn run_all<S: Store>(new_store: impl Fn() -> S) {
    batch_and_checkpoint_commit_together(&new_store());
    replays_at_or_below_the_checkpoint_are_skipped(&new_store());
    resent_events_are_applied_once(&new_store());
    state_survives_reopening(&new_store());
    a_partition_has_one_owner_at_a_time(&new_store());
}

fn envelope(seq: u128, event: Event) -> Envelope {
    Envelope {
        schema_version: SCHEMA_VERSION,
        event_id: Uuid::from_u128(seq),
        tenant_id: "acme".into(),
        property_id: "p1".into(),
        partner_id: "ota".into(),
        request_id: format!("req-{seq}"),
        received_at_ms: 0,
        event,
    }
}

fn day(d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2027, 5, d).unwrap()
}

fn allot(seq: u128, units: u32) -> Envelope {
    envelope(
        seq,
        Event::SetAllotment {
            room_type: "DBL".into(),
            from: day(1),
            to: day(5),
            units,
        },
    )
}

fn create(seq: u128) -> Envelope {
    envelope(
        seq,
        Event::CreateBooking {
            booking_id: Uuid::from_u128(seq),
            stay: Stay {
                room_type: "DBL".into(),
                check_in: day(2),
                check_out: day(4),
                rooms: 1,
                guests: 1,
            },
            price: Money {
                amount_minor: 100,
                currency: "EUR".into(),
            },
            guest_name: None,
        },
    )
}

fn sold_on_day_2<P: PartitionStore>(partition: &P) -> u32 {
    partition
        .nights()
        .unwrap()
        .into_iter()
        .find(|(id, _)| id.night == day(2))
        .map(|(_, night)| night.sold)
        .unwrap_or(0)
}

fn batch_and_checkpoint_commit_together<S: Store>(store: &S) {
    let mut p = store.open(0).unwrap();
    assert_eq!(p.checkpoint().unwrap(), None);
    let result = p
        .apply_batch(&[(10, allot(1, 1)), (11, create(2)), (12, create(3))], 13)
        .unwrap();
    let outcomes: Vec<_> = result.applied.iter().map(|e| e.decision.outcome).collect();
    assert_eq!(
        outcomes,
        [Outcome::AllotmentSet, Outcome::Confirmed, Outcome::Rejected]
    );
    // Offset 13 was undecodable: the checkpoint still moves past it.
    assert_eq!(p.checkpoint().unwrap(), Some(13));
    let booking = p.booking(Uuid::from_u128(2)).unwrap().unwrap();
    assert_eq!(booking.status, BookingStatus::Confirmed);
    assert_eq!(booking.history[0].offset, 11);
    assert_eq!(p.bookings().unwrap().len(), 2);
    assert_eq!(sold_on_day_2(&p), 1);
}

fn replays_at_or_below_the_checkpoint_are_skipped<S: Store>(store: &S) {
    let mut p = store.open(1).unwrap();
    p.apply_batch(&[(0, allot(1, 5)), (1, create(2))], 1)
        .unwrap();
    // A redelivery overlapping the checkpoint applies only what is new.
    let result = p.apply_batch(&[(1, create(2)), (2, create(3))], 2).unwrap();
    assert_eq!(result.replayed, 1);
    assert_eq!(result.applied.len(), 1);
    assert_eq!(sold_on_day_2(&p), 2);
    let again = p.apply_batch(&[(2, create(3))], 2).unwrap();
    assert_eq!(again.replayed, 1);
    assert_eq!(sold_on_day_2(&p), 2);
}

fn resent_events_are_applied_once<S: Store>(store: &S) {
    let mut p = store.open(2).unwrap();
    // The partner resent the same create: it reached Kafka twice, at offsets 1 and 2.
    let result = p
        .apply_batch(&[(0, allot(1, 5)), (1, create(2)), (2, create(2))], 2)
        .unwrap();
    assert_eq!(result.duplicates, 1);
    assert_eq!(sold_on_day_2(&p), 1);
    let booking = p.booking(Uuid::from_u128(2)).unwrap().unwrap();
    assert_eq!(booking.history.len(), 1);
}

fn state_survives_reopening<S: Store>(store: &S) {
    {
        let mut p = store.open(3).unwrap();
        p.apply_batch(&[(0, allot(1, 5)), (1, create(2))], 1)
            .unwrap();
    }
    let p = store.open(3).unwrap();
    assert_eq!(p.checkpoint().unwrap(), Some(1));
    assert!(p.booking(Uuid::from_u128(2)).unwrap().is_some());
}

fn a_partition_has_one_owner_at_a_time<S: Store>(store: &S) {
    let owner = store.open(4).unwrap();
    assert!(matches!(
        store.open(4),
        Err(StoreError::Locked { partition: 4 })
    ));
    drop(owner);
    assert!(store.open(4).is_ok(), "released on close");
}

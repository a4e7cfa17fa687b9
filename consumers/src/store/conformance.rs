//! One behavioural suite every [`Store`] backend must pass.
//!
//! Each check takes a fresh store from `new_store` and exercises only the trait, so a new
//! backend is tested by calling [`run_all`] with its constructor. The suite is public (it
//! has no test-only dependencies) so `consumers/tests/store_conformance.rs` runs every
//! backend through it in one place; it panics on the first broken expectation.

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
    modify_and_cancel_move_inventory_across_batches(&new_store());
    every_partition_with_state_is_listed(&new_store());
    the_first_placement_is_kept_until_one_is_accepted(&new_store());
    adopters_racing_on_a_fresh_store_all_learn_one_placement(&new_store());
}

/// An event of tenant `acme`, property `p1`, whose id is `seq`.
pub(crate) fn envelope(seq: u128, event: Event) -> Envelope {
    Envelope {
        schema_version: SCHEMA_VERSION,
        event_id: Uuid::from_u128(seq),
        tenant_id: "acme".into(),
        property_id: "p1".into(),
        partner_id: "ota".into(),
        request_id: format!("req-{seq}"),
        received_at_ms: 0,
        any_partner: false,
        placement: None,
        event,
    }
}

pub(crate) fn day(d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2027, 5, d).unwrap()
}

pub(crate) fn allot(seq: u128, units: u32) -> Envelope {
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

pub(crate) fn create(seq: u128) -> Envelope {
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
            partner_reference: None,
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
        .write_batch(&[(10, allot(1, 1)), (11, create(2)), (12, create(3))], 13)
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
    p.write_batch(&[(0, allot(1, 5)), (1, create(2))], 1)
        .unwrap();
    // A redelivery overlapping the checkpoint applies only what is new.
    let result = p.write_batch(&[(1, create(2)), (2, create(3))], 2).unwrap();
    assert_eq!(result.replayed, 1);
    assert_eq!(result.applied.len(), 1);
    assert_eq!(sold_on_day_2(&p), 2);
    let again = p.write_batch(&[(2, create(3))], 2).unwrap();
    assert_eq!(again.replayed, 1);
    assert_eq!(sold_on_day_2(&p), 2);
}

fn resent_events_are_applied_once<S: Store>(store: &S) {
    let mut p = store.open(2).unwrap();
    // The partner resent the same create: it reached Kafka twice, at offsets 1 and 2.
    let result = p
        .write_batch(&[(0, allot(1, 5)), (1, create(2)), (2, create(2))], 2)
        .unwrap();
    assert_eq!(result.duplicates, 1);
    assert_eq!(sold_on_day_2(&p), 1);
    let booking = p.booking(Uuid::from_u128(2)).unwrap().unwrap();
    assert_eq!(booking.history.len(), 1);
    // Where each event was applied and what it carried, for the decisions of skipped
    // events: a resend of the same command, or another command under a reused key.
    let create_id = create(2).event_id;
    let applied = p.applied_event(create_id).unwrap().unwrap();
    assert_eq!(applied.offset, 1);
    assert_eq!(applied.fingerprint, Some(create(2).fingerprint()));
    assert_eq!(p.applied_event(Uuid::from_u128(u128::MAX)).unwrap(), None);
}

fn state_survives_reopening<S: Store>(store: &S) {
    {
        let mut p = store.open(3).unwrap();
        p.write_batch(&[(0, allot(1, 5)), (1, create(2))], 1)
            .unwrap();
    }
    let p = store.open(3).unwrap();
    assert_eq!(p.checkpoint().unwrap(), Some(1));
    assert!(p.booking(Uuid::from_u128(2)).unwrap().is_some());
}

fn a_partition_has_one_owner_at_a_time<S: Store>(store: &S) {
    let mut owner = store.open(4).unwrap();
    owner.write_batch(&[(0, allot(1, 5))], 0).unwrap();
    let mut current = match store.open(4) {
        // Exclusive ownership (the embedded store's file lock): the newcomer waits until
        // the owner lets go.
        Err(StoreError::Locked { partition: 4 }) => {
            drop(owner);
            let mut next = store.open(4).expect("released on close");
            next.write_batch(&[(1, create(2))], 1).unwrap();
            next
        }
        // Fencing (ScyllaDB's epochs): the newcomer takes over at once, and the previous
        // owner, now a zombie, can no longer write anything.
        Ok(mut next) => {
            let zombie = owner.write_batch(&[(1, create(2))], 1);
            assert!(
                matches!(zombie, Err(StoreError::Locked { partition: 4 })),
                "a fenced owner wrote: {zombie:?}"
            );
            assert_eq!(next.checkpoint().unwrap(), Some(0));
            assert!(next.booking(Uuid::from_u128(2)).unwrap().is_none());
            next.write_batch(&[(1, create(2))], 1).unwrap();
            let again = owner.write_batch(&[(2, create(3))], 2);
            assert!(matches!(again, Err(StoreError::Locked { .. })), "{again:?}");
            next
        }
        Err(other) => panic!("unexpected error opening a held partition: {other}"),
    };
    assert_eq!(current.checkpoint().unwrap(), Some(1));
    assert_eq!(sold_on_day_2(&current), 1);
    assert!(current.booking(Uuid::from_u128(3)).unwrap().is_none());
    current.write_batch(&[(2, create(3))], 2).unwrap();
    assert_eq!(sold_on_day_2(&current), 2);
}

fn modify_and_cancel_move_inventory_across_batches<S: Store>(store: &S) {
    let mut p = store.open(5).unwrap();
    p.write_batch(&[(0, allot(1, 1)), (1, create(2))], 1)
        .unwrap();
    // Each later batch reads the booking and the nights an earlier one stored.
    let modify = envelope(
        3,
        Event::ModifyBooking {
            booking_id: Uuid::from_u128(2),
            stay: Stay {
                room_type: "DBL".into(),
                check_in: day(3),
                check_out: day(5),
                rooms: 1,
                guests: 2,
            },
            price: Money {
                amount_minor: 150,
                currency: "EUR".into(),
            },
        },
    );
    let result = p.write_batch(&[(2, modify)], 2).unwrap();
    assert_eq!(result.applied[0].decision.outcome, Outcome::Modified);
    let sold = |p: &S::Partition| -> Vec<u32> {
        let mut nights = p.nights().unwrap();
        nights.sort_by_key(|(id, _)| id.night);
        nights.into_iter().map(|(_, night)| night.sold).collect()
    };
    assert_eq!(sold(&p), [0, 0, 1, 1]);
    // Day 2 was released by the modify, so a new booking of days 2-3 fits only on day 2:
    // day 3 is taken, and the create is refused without touching any night.
    let result = p.write_batch(&[(3, create(4))], 3).unwrap();
    assert_eq!(result.applied[0].decision.outcome, Outcome::Rejected);
    assert_eq!(sold(&p), [0, 0, 1, 1]);
    let cancel = envelope(
        5,
        Event::CancelBooking {
            booking_id: Uuid::from_u128(2),
            reason: None,
        },
    );
    let result = p.write_batch(&[(4, cancel.clone())], 4).unwrap();
    assert_eq!(result.applied[0].decision.outcome, Outcome::Cancelled);
    assert_eq!(sold(&p), [0, 0, 0, 0]);
    let booking = p.booking(Uuid::from_u128(2)).unwrap().unwrap();
    assert_eq!(booking.status, BookingStatus::Cancelled);
    let offsets: Vec<i64> = booking.history.iter().map(|h| h.offset).collect();
    assert_eq!(offsets, [1, 2, 4]);
    assert_eq!(p.bookings().unwrap().len(), 2);
}

fn every_partition_with_state_is_listed<S: Store>(store: &S) {
    assert_eq!(store.partitions().unwrap(), Vec::<i32>::new());
    for partition in [7, 2] {
        let mut p = store.open(partition).unwrap();
        p.write_batch(&[(0, allot(1, 5))], 0).unwrap();
    }
    assert_eq!(store.partitions().unwrap(), [2, 7]);
}

fn the_first_placement_is_kept_until_one_is_accepted<S: Store>(store: &S) {
    assert_eq!(store.accepted_placement().unwrap(), None);
    assert_eq!(store.adopt_placement("12").unwrap(), "12");
    // A later adopter (another process, another partition) learns the first one's map.
    assert_eq!(store.adopt_placement("24").unwrap(), "12");
    assert_eq!(store.accepted_placement().unwrap().as_deref(), Some("12"));
    store.accept_placement("24:acme=0..4").unwrap();
    assert_eq!(
        store.accepted_placement().unwrap().as_deref(),
        Some("24:acme=0..4")
    );
    assert_eq!(store.adopt_placement("12").unwrap(), "24:acme=0..4");
}

/// Every partition worker of a starting consumer adopts its placement at once, on threads of
/// its own: whichever adoption lands first, all of them must learn that one, and none may
/// fail or read a half-written placement.
pub(crate) fn adopters_racing_on_a_fresh_store_all_learn_one_placement<S: Store>(store: &S) {
    const ADOPTERS: u32 = 12;
    let offered: Vec<String> = (1..=ADOPTERS).map(|n| (n * 12).to_string()).collect();
    let start = std::sync::Barrier::new(ADOPTERS as usize);
    let learned: Vec<String> = std::thread::scope(|scope| {
        let adopters: Vec<_> = offered
            .iter()
            .map(|placement| {
                let start = &start;
                scope.spawn(move || {
                    start.wait();
                    store.adopt_placement(placement)
                })
            })
            .collect();
        adopters
            .into_iter()
            .map(|adopter| adopter.join().unwrap().expect("adoption failed"))
            .collect()
    });
    assert!(offered.contains(&learned[0]), "learned {learned:?}");
    assert!(
        learned.iter().all(|placement| *placement == learned[0]),
        "adopters learned different placements: {learned:?}"
    );
    assert_eq!(
        store.accepted_placement().unwrap(),
        Some(learned[0].clone())
    );
}

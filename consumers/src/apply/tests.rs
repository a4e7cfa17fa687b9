//! Unit and property tests of the booking state machine on an in-memory ledger.

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;

use super::*;
use partitioner::SCHEMA_VERSION;
use proptest::prelude::*;

#[derive(Default)]
struct MemoryLedger {
    bookings: HashMap<Uuid, Booking>,
    nights: BTreeMap<NightId, Night>,
    offset: i64,
    /// Every event applied, with the decision it got.
    decided: Vec<(Envelope, Decision)>,
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
    fn run(&mut self, event: Event) -> Decision {
        self.run_for("p1", event)
    }

    fn run_for(&mut self, property_id: &'static str, event: Event) -> Decision {
        self.run_as(Sender::Own(property_id), event)
    }

    fn run_as(&mut self, sender: Sender, event: Event) -> Decision {
        self.offset += 1;
        let mut envelope = envelope(event, self.offset);
        sender.sign(&mut envelope);
        let Ok(effects) = apply(
            self,
            &envelope,
            Position {
                partition: 0,
                offset: self.offset,
            },
        );
        for (id, night) in effects.nights {
            self.nights.insert(id, night);
        }
        if let Some(booking) = effects.booking {
            self.bookings.insert(booking.booking_id, booking);
        }
        self.decided.push((envelope, effects.decision.clone()));
        effects.decision
    }

    /// The decision of every event applied so far, read back from the current state.
    fn recalled(&self) -> Vec<Option<Decision>> {
        self.decided
            .iter()
            .map(|(envelope, decision)| {
                let booking = envelope
                    .event
                    .booking_id()
                    .and_then(|id| self.bookings.get(&id));
                let applied = AppliedEvent {
                    offset: decision.offset,
                    fingerprint: Some(envelope.fingerprint()),
                };
                recall(envelope, position(decision.offset), applied, booking)
            })
            .collect()
    }

    fn decisions(&self) -> Vec<Option<Decision>> {
        self.decided.iter().map(|(_, d)| Some(d.clone())).collect()
    }

    fn night(&self, day: u32) -> Night {
        self.nights[&night_id("DBL", day)]
    }
}

/// Who sends an event, as far as ownership goes.
#[derive(Clone, Copy, Debug)]
enum Sender {
    /// The partner that creates the bookings, for a property of its choice.
    Own(&'static str),
    /// Another partner of the same tenant.
    OtherPartner,
    /// The tenant's own channel, with the `bookings:any-partner` scope.
    Hotel,
    /// Another tenant's channel with that scope.
    OtherTenantsHotel,
}

impl Sender {
    fn sign(self, envelope: &mut Envelope) {
        match self {
            Sender::Own(property) => envelope.property_id = property.into(),
            Sender::OtherPartner => envelope.partner_id = "ota-2".into(),
            Sender::Hotel => {
                envelope.partner_id = "desk".into();
                envelope.any_partner = true;
            }
            Sender::OtherTenantsHotel => {
                envelope.partner_id = "desk".into();
                envelope.tenant_id = "globex".into();
                envelope.any_partner = true;
            }
        }
    }
}

fn position(offset: i64) -> Position {
    Position {
        partition: 0,
        offset,
    }
}

fn date(day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2027, 3, day).unwrap()
}

fn night_id(room_type: &str, day: u32) -> NightId {
    NightId {
        tenant_id: "acme".into(),
        property_id: "p1".into(),
        room_type: room_type.into(),
        night: date(day),
    }
}

fn envelope(event: Event, seq: i64) -> Envelope {
    Envelope {
        schema_version: SCHEMA_VERSION,
        event_id: Uuid::from_u128(seq as u128),
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

fn stay(from: u32, to: u32, rooms: u16) -> Stay {
    Stay {
        room_type: "DBL".into(),
        check_in: date(from),
        check_out: date(to),
        rooms,
        guests: rooms,
    }
}

fn price() -> Money {
    Money {
        amount_minor: 100,
        currency: "EUR".into(),
    }
}

fn allot(units: u32) -> Event {
    Event::SetAllotment {
        room_type: "DBL".into(),
        from: date(1),
        to: date(11),
        units,
    }
}

fn create(id: u128, from: u32, to: u32, rooms: u16) -> Event {
    Event::CreateBooking {
        booking_id: Uuid::from_u128(id),
        stay: stay(from, to, rooms),
        price: price(),
        guest_name: None,
        partner_reference: None,
    }
}

fn modify(id: u128, from: u32, to: u32, rooms: u16) -> Event {
    Event::ModifyBooking {
        booking_id: Uuid::from_u128(id),
        stay: stay(from, to, rooms),
        price: price(),
    }
}

fn cancel(id: u128) -> Event {
    Event::CancelBooking {
        booking_id: Uuid::from_u128(id),
        reason: None,
    }
}

#[test]
fn create_confirms_and_takes_every_night() {
    let mut ledger = MemoryLedger::default();
    ledger.run(allot(2));
    let decision = ledger.run(create(1, 2, 4, 1));
    assert_eq!(decision.outcome, Outcome::Confirmed);
    assert_eq!(ledger.night(2).sold, 1);
    assert_eq!(ledger.night(3).sold, 1);
    assert_eq!(ledger.night(4).sold, 0, "check-out night is free");
}

#[test]
fn last_room_goes_to_the_first_event_in_partition_order() {
    let mut ledger = MemoryLedger::default();
    ledger.run(allot(1));
    assert_eq!(ledger.run(create(1, 2, 3, 1)).outcome, Outcome::Confirmed);
    let loser = ledger.run(create(2, 2, 3, 1));
    assert_eq!(loser.outcome, Outcome::Rejected);
    assert_eq!(loser.reason, Some(RejectReason::SoldOut));
    assert_eq!(
        ledger.bookings[&Uuid::from_u128(2)].status,
        BookingStatus::Rejected
    );
    assert_eq!(ledger.night(2).sold, 1);
}

#[test]
fn unknown_room_type_is_rejected_without_side_effects() {
    let mut ledger = MemoryLedger::default();
    ledger.run(allot(5));
    // Night 12 has no allotment: the whole stay is refused, night 10 untouched.
    let decision = ledger.run(create(1, 10, 13, 1));
    assert_eq!(decision.reason, Some(RejectReason::UnknownRoomType));
    assert_eq!(ledger.night(10).sold, 0);
}

#[test]
fn cancel_releases_inventory_and_is_idempotent() {
    let mut ledger = MemoryLedger::default();
    ledger.run(allot(1));
    ledger.run(create(1, 2, 4, 1));
    assert_eq!(ledger.run(cancel(1)).outcome, Outcome::Cancelled);
    assert_eq!(ledger.night(2).remaining(), 1);
    assert_eq!(ledger.run(cancel(1)).outcome, Outcome::Cancelled);
    assert_eq!(
        ledger.night(2).remaining(),
        1,
        "a second cancel frees nothing"
    );
    assert_eq!(ledger.run(create(2, 2, 4, 1)).outcome, Outcome::Confirmed);
}

#[test]
fn modify_moves_nights_all_or_nothing() {
    let mut ledger = MemoryLedger::default();
    ledger.run(allot(1));
    ledger.run(create(1, 2, 4, 1));
    ledger.run(create(2, 6, 7, 1));
    // Overlapping its own nights is fine: they are released first.
    assert_eq!(ledger.run(modify(1, 3, 5, 1)).outcome, Outcome::Modified);
    assert_eq!(ledger.night(2).sold, 0);
    assert_eq!(ledger.night(4).sold, 1);
    // Night 6 belongs to booking 2: the whole modify is refused, nothing moves.
    let refused = ledger.run(modify(1, 5, 7, 1));
    assert_eq!(refused.reason, Some(RejectReason::SoldOut));
    assert_eq!(ledger.night(3).sold, 1);
    assert_eq!(ledger.night(5).sold, 0);
    assert_eq!(ledger.bookings[&Uuid::from_u128(1)].stay, stay(3, 5, 1));
}

#[test]
fn late_or_foreign_events_are_rejected_with_a_reason() {
    let mut ledger = MemoryLedger::default();
    ledger.run(allot(1));
    assert_eq!(
        ledger.run(cancel(9)).reason,
        Some(RejectReason::BookingNotFound)
    );
    ledger.run(create(1, 2, 3, 1));
    ledger.run(cancel(1));
    assert_eq!(
        ledger.run(modify(1, 2, 3, 1)).reason,
        Some(RejectReason::InvalidTransition)
    );
}

#[test]
fn only_the_creator_or_the_tenants_own_channel_may_act_on_a_booking() {
    let mut ledger = MemoryLedger::default();
    ledger.run(allot(2));
    ledger.run(create(1, 2, 3, 1));
    for sender in [Sender::OtherPartner, Sender::OtherTenantsHotel] {
        for event in [cancel(1), modify(1, 2, 4, 1)] {
            let decision = ledger.run_as(sender, event);
            assert_eq!(
                decision.reason,
                Some(RejectReason::BookingNotFound),
                "{sender:?}: reported like an unknown booking"
            );
        }
    }
    assert_eq!(
        ledger.bookings[&Uuid::from_u128(1)].status,
        BookingStatus::Confirmed
    );
    assert_eq!(
        ledger.bookings[&Uuid::from_u128(1)].history.len(),
        1,
        "untouched"
    );
    assert_eq!(ledger.night(2).sold, 1);
    assert_eq!(
        ledger.run_as(Sender::Hotel, cancel(1)).outcome,
        Outcome::Cancelled
    );
    assert_eq!(ledger.night(2).sold, 0);
}

#[test]
fn a_decision_names_its_sender_and_an_owner_it_reached() {
    let mut ledger = MemoryLedger::default();
    ledger.run(allot(2));
    let created = ledger.run(create(1, 2, 3, 1));
    assert_eq!(created.recipients().collect::<Vec<_>>(), ["ota"]);
    // Another partner's attempt is its own news only: the owner is not told of it.
    let refused = ledger.run_as(Sender::OtherPartner, cancel(1));
    assert_eq!(refused.reason, Some(RejectReason::BookingNotFound));
    assert_eq!(refused.recipients().collect::<Vec<_>>(), ["ota-2"]);
    // The hotel's own channel cancelling the booking: both hear of it.
    let cancelled = ledger.run_as(Sender::Hotel, cancel(1));
    assert_eq!(cancelled.outcome, Outcome::Cancelled);
    assert_eq!(cancelled.recipients().collect::<Vec<_>>(), ["desk", "ota"]);
    assert_eq!(
        ledger.run(allot(3)).recipients().collect::<Vec<_>>(),
        ["ota"]
    );
}

#[test]
fn history_records_every_event_of_a_booking() {
    let mut ledger = MemoryLedger::default();
    ledger.run(allot(3));
    ledger.run(create(1, 2, 3, 1));
    ledger.run(modify(1, 2, 4, 2));
    ledger.run(cancel(1));
    let history = &ledger.bookings[&Uuid::from_u128(1)].history;
    let kinds: Vec<_> = history.iter().map(|h| h.event_type.as_str()).collect();
    assert_eq!(
        kinds,
        ["create_booking", "modify_booking", "cancel_booking"]
    );
    assert_eq!(history[1].offset, 3);
    assert_eq!(history[0].request_id, "req-2");
}

#[test]
fn a_decision_is_recalled_from_the_state_the_event_left() {
    let mut ledger = MemoryLedger::default();
    ledger.run(allot(1));
    ledger.run(cancel(7)); // before its booking exists: not found
    ledger.run(create(7, 2, 3, 1));
    ledger.run(create(8, 2, 3, 1)); // sold out
    ledger.run_for("p2", modify(7, 2, 3, 1)); // another property's booking
    ledger.run(modify(7, 10, 12, 1)); // night 11 has no allotment
    ledger.run(cancel(7));
    let outcomes: Vec<_> = ledger
        .recalled()
        .into_iter()
        .map(|d| d.map(|d| (d.outcome, d.reason)))
        .collect();
    assert_eq!(
        outcomes,
        [
            (Outcome::AllotmentSet, None),
            (Outcome::Rejected, Some(RejectReason::BookingNotFound)),
            (Outcome::Confirmed, None),
            (Outcome::Rejected, Some(RejectReason::SoldOut)),
            (Outcome::Rejected, Some(RejectReason::PropertyMismatch)),
            (Outcome::Rejected, Some(RejectReason::UnknownRoomType)),
            (Outcome::Cancelled, None),
        ]
        .map(Some)
    );
    assert_eq!(ledger.recalled(), ledger.decisions());
}

#[test]
fn an_id_applied_for_another_command_is_rejected_never_recalled() {
    let mut ledger = MemoryLedger::default();
    ledger.run(allot(2));
    ledger.run(create(1, 2, 3, 1));
    let (first, decision) = ledger.decided[1].clone();
    let booking = ledger.bookings.get(&Uuid::from_u128(1));
    let applied = AppliedEvent {
        offset: decision.offset,
        fingerprint: Some(first.fingerprint()),
    };
    // The same id again: the same command is answered with the first decision, naming
    // the copy it answers, ...
    let resent = recall(&first, position(40), applied, booking).unwrap();
    let answering_the_copy = Decision {
        record_offset: Some(40),
        ..decision.clone()
    };
    assert_eq!(resent, answering_the_copy);
    // ... another one (other nights, or a cancel under a create's key) is rejected at its
    // own offset.
    for event in [create(1, 5, 7, 2), cancel(1)] {
        let reused = Envelope {
            event,
            ..first.clone()
        };
        let answer = recall(&reused, position(41), applied, booking).unwrap();
        assert_eq!(answer.outcome, Outcome::Rejected);
        assert_eq!(answer.reason, Some(RejectReason::IdempotencyKeyReused));
        assert_eq!(answer.offset, 41);
        assert_eq!(answer.record_offset, Some(41));
    }
    // Events stored before fingerprints were kept are taken to be the same command.
    let unknown = AppliedEvent {
        fingerprint: None,
        ..applied
    };
    let reused = Envelope {
        event: cancel(1),
        ..first.clone()
    };
    assert_eq!(
        recall(&reused, position(42), unknown, booking)
            .unwrap()
            .outcome,
        Outcome::Confirmed
    );
}

fn arbitrary_event() -> impl Strategy<Value = Event> {
    let id = 1u128..8;
    let nights = (1u32..10, 1u32..4);
    prop_oneof![
        (0u32..4).prop_map(allot),
        (id.clone(), nights.clone(), 1u16..3).prop_map(|(id, (from, len), rooms)| create(
            id,
            from,
            from + len,
            rooms
        )),
        (id.clone(), nights, 1u16..3).prop_map(|(id, (from, len), rooms)| modify(
            id,
            from,
            from + len,
            rooms
        )),
        id.prop_map(cancel),
    ]
}

fn arbitrary_sender() -> impl Strategy<Value = Sender> {
    prop_oneof![
        6 => Just(Sender::Own("p1")),
        1 => Just(Sender::Own("p2")),
        1 => Just(Sender::OtherPartner),
        1 => Just(Sender::Hotel),
        1 => Just(Sender::OtherTenantsHotel),
    ]
}

proptest! {
    /// Whatever partners send, in whatever order, every night's sold count equals the rooms
    /// of the confirmed bookings on it, and a booking never takes a room beyond the allotment.
    #[test]
    fn inventory_is_conserved_and_never_oversold(events in prop::collection::vec(arbitrary_event(), 1..60)) {
        let mut ledger = MemoryLedger::default();
        for event in events {
            let takes_rooms = matches!(event, Event::CreateBooking { .. } | Event::ModifyBooking { .. });
            let decision = ledger.run(event);
            if takes_rooms && decision.outcome != Outcome::Rejected {
                let booking = &ledger.bookings[&decision.booking_id.unwrap()];
                for night in booking.stay.nights() {
                    let id = NightId { night, ..night_id("DBL", 1) };
                    let value = ledger.nights[&id];
                    prop_assert!(value.sold <= value.allotment, "oversold {id:?}: {value:?}");
                }
            }
            let mut expected: BTreeMap<NightId, u32> = BTreeMap::new();
            for booking in ledger.bookings.values().filter(|b| b.status == BookingStatus::Confirmed) {
                for night in booking.stay.nights() {
                    *expected.entry(NightId { night, ..night_id("DBL", 1) }).or_default() += u32::from(booking.stay.rooms);
                }
            }
            for (id, value) in &ledger.nights {
                prop_assert_eq!(value.sold, expected.get(id).copied().unwrap_or(0), "night {:?}", id);
            }
        }
    }

    /// Whatever partners sent, whoever sent it and for whichever property, the decision of every applied
    /// event can be read back from the final state, exactly as it was made: what lets a
    /// consumer publish it again after a crash lost it.
    #[test]
    fn every_decision_is_recalled_exactly_from_the_final_state(
        events in prop::collection::vec((arbitrary_event(), arbitrary_sender()), 1..60)
    ) {
        let mut ledger = MemoryLedger::default();
        for (event, sender) in events {
            ledger.run_as(sender, event);
        }
        prop_assert_eq!(ledger.recalled(), ledger.decisions());
    }
}

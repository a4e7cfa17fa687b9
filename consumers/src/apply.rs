//! The booking state machine: one event in, its decision and effects out.
//!
//! `apply` is pure: it reads the current state through a [`Ledger`] and returns what should
//! change, without writing anything. The store runs it inside the write transaction of a
//! batch and persists the [`Effects`] atomically with the partition checkpoint, so the same
//! function decides in production, in tests and in property checks. Because one consumer is
//! the single writer of a partition and every event of a property is on one partition,
//! races between partners for the last room resolve here, in offset order, with no locks.

use chrono::NaiveDate;
use partitioner::{Decision, Envelope, Event, Money, Outcome, RejectReason, Stay};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

mod recall;
pub use recall::{recall, AppliedEvent};

/// One night of one room type of one property.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NightId {
    pub tenant_id: String,
    pub property_id: String,
    pub room_type: String,
    pub night: NaiveDate,
}

/// Sellable units of a night and how many are taken. `sold` never exceeds `allotment`
/// through a booking; lowering the allotment below `sold` leaves `remaining` at zero rather
/// than cancelling guests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Night {
    pub allotment: u32,
    pub sold: u32,
}

impl Night {
    pub fn remaining(self) -> u32 {
        self.allotment.saturating_sub(self.sold)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BookingStatus {
    Confirmed,
    Rejected,
    Cancelled,
}

impl BookingStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            BookingStatus::Confirmed => "confirmed",
            BookingStatus::Rejected => "rejected",
            BookingStatus::Cancelled => "cancelled",
        }
    }
}

/// A booking as the store keeps it, with every event that touched it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Booking {
    pub booking_id: Uuid,
    pub tenant_id: String,
    pub property_id: String,
    pub partner_id: String,
    pub status: BookingStatus,
    pub reason: Option<RejectReason>,
    pub stay: Stay,
    pub price: Money,
    pub guest_name: Option<String>,
    /// The partner's own id of the booking (an OpenTravel channel's reservation id);
    /// absent in bookings stored before it was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partner_reference: Option<String>,
    pub history: Vec<HistoryEntry>,
}

/// The audit trail: which event did what to the booking, and where it came from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    pub event_id: Uuid,
    pub event_type: String,
    pub partner_id: String,
    pub request_id: String,
    pub partition: i32,
    pub offset: i64,
    pub outcome: Outcome,
    pub reason: Option<RejectReason>,
}

/// Read access to the current state, as of the events applied so far.
pub trait Ledger {
    type Error;
    fn booking(&self, booking_id: Uuid) -> Result<Option<Booking>, Self::Error>;
    fn night(&self, id: &NightId) -> Result<Option<Night>, Self::Error>;
}

/// What applying one event changes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Effects {
    pub decision: Decision,
    /// The booking's new state, when the event concerns a booking.
    pub booking: Option<Booking>,
    /// New values of every night the event changed.
    pub nights: Vec<(NightId, Night)>,
}

/// Where the event being applied was read from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Position {
    pub partition: i32,
    pub offset: i64,
}

pub fn apply<L: Ledger>(
    ledger: &L,
    envelope: &Envelope,
    at: Position,
) -> Result<Effects, L::Error> {
    let mut step = Step {
        envelope,
        at,
        nights: Vec::new(),
    };
    let (booking, outcome) = match &envelope.event {
        Event::CreateBooking {
            booking_id,
            stay,
            price,
            guest_name,
            partner_reference,
        } => {
            let existing = ledger.booking(*booking_id)?;
            let (booking, outcome) = match existing {
                // Booking ids derive from event ids and replays are dropped before apply,
                // so this is a forged or corrupted event: refuse to touch the booking.
                Some(booking) => (booking, Err(RejectReason::InvalidTransition)),
                None => {
                    let outcome = step.take(ledger, stay, None)?.map(|()| Outcome::Confirmed);
                    let booking = Booking {
                        booking_id: *booking_id,
                        tenant_id: envelope.tenant_id.clone(),
                        property_id: envelope.property_id.clone(),
                        partner_id: envelope.partner_id.clone(),
                        status: if outcome.is_ok() {
                            BookingStatus::Confirmed
                        } else {
                            BookingStatus::Rejected
                        },
                        reason: outcome.err(),
                        stay: stay.clone(),
                        price: price.clone(),
                        guest_name: guest_name.clone(),
                        partner_reference: partner_reference.clone(),
                        history: Vec::new(),
                    };
                    (booking, outcome)
                }
            };
            (Some(booking), outcome)
        }
        Event::ModifyBooking {
            booking_id,
            stay,
            price,
        } => match step.owned_booking(ledger, *booking_id)? {
            Err(reason) => (None, Err(reason)),
            Ok(mut booking) => {
                let outcome = if booking.status != BookingStatus::Confirmed {
                    Err(RejectReason::InvalidTransition)
                } else {
                    step.take(ledger, stay, Some(&booking.stay))?
                        .map(|()| Outcome::Modified)
                };
                if outcome.is_ok() {
                    booking.stay = stay.clone();
                    booking.price = price.clone();
                }
                (Some(booking), outcome)
            }
        },
        Event::CancelBooking { booking_id, .. } => {
            match step.owned_booking(ledger, *booking_id)? {
                Err(reason) => (None, Err(reason)),
                Ok(mut booking) => {
                    // Cancelling twice, or cancelling a rejected booking, is a success that
                    // changes nothing: partners retry cancels and must not see an error.
                    if booking.status == BookingStatus::Confirmed {
                        step.release(ledger, &booking.stay)?;
                    }
                    if booking.status != BookingStatus::Rejected {
                        booking.status = BookingStatus::Cancelled;
                    }
                    (Some(booking), Ok(Outcome::Cancelled))
                }
            }
        }
        Event::SetAllotment {
            room_type,
            from,
            to,
            units,
        } => {
            for night in from.iter_days().take_while(|n| n < to) {
                let id = step.night_id(room_type, night);
                let current = ledger.night(&id)?.unwrap_or_default();
                step.nights.push((
                    id,
                    Night {
                        allotment: *units,
                        sold: current.sold,
                    },
                ));
            }
            (None, Ok(Outcome::AllotmentSet))
        }
    };
    Ok(step.finish(booking, outcome))
}

/// The state of one `apply` call.
struct Step<'a> {
    envelope: &'a Envelope,
    at: Position,
    nights: Vec<(NightId, Night)>,
}

impl Step<'_> {
    fn night_id(&self, room_type: &str, night: NaiveDate) -> NightId {
        NightId {
            tenant_id: self.envelope.tenant_id.clone(),
            property_id: self.envelope.property_id.clone(),
            room_type: room_type.to_owned(),
            night,
        }
    }

    /// The booking a modify or cancel names, if it exists, is the sender's to act on and
    /// belongs to the event's property. A booking the sender may not act on is reported
    /// exactly like a missing one, so its id is not confirmed to outsiders.
    fn owned_booking<L: Ledger>(
        &self,
        ledger: &L,
        booking_id: Uuid,
    ) -> Result<Result<Booking, RejectReason>, L::Error> {
        Ok(match ledger.booking(booking_id)? {
            Some(b) if !may_act_on(&b, self.envelope) => Err(RejectReason::BookingNotFound),
            None => Err(RejectReason::BookingNotFound),
            Some(b)
                if b.tenant_id != self.envelope.tenant_id
                    || b.property_id != self.envelope.property_id =>
            {
                Err(RejectReason::PropertyMismatch)
            }
            Some(b) => Ok(b),
        })
    }

    /// Takes the rooms of `stay`, after releasing those of `previous` (a modify), all or
    /// nothing: on rejection no night is changed.
    fn take<L: Ledger>(
        &mut self,
        ledger: &L,
        stay: &Stay,
        previous: Option<&Stay>,
    ) -> Result<Result<(), RejectReason>, L::Error> {
        let mut changed: Vec<(NightId, Night)> = Vec::new();
        if let Some(previous) = previous {
            for night in previous.nights() {
                let id = self.night_id(&previous.room_type, night);
                let mut value = ledger.night(&id)?.unwrap_or_default();
                value.sold = value.sold.saturating_sub(u32::from(previous.rooms));
                changed.push((id, value));
            }
        }
        for night in stay.nights() {
            let id = self.night_id(&stay.room_type, night);
            let current = match changed.iter().find(|(c, _)| *c == id) {
                Some((_, value)) => Some(*value),
                None => ledger.night(&id)?,
            };
            // A night that never had an allotment is not for sale; an allotment of zero is
            // a closed night, reported as sold out.
            let Some(mut value) = current else {
                return Ok(Err(RejectReason::UnknownRoomType));
            };
            if value.remaining() < u32::from(stay.rooms) {
                return Ok(Err(RejectReason::SoldOut));
            }
            value.sold += u32::from(stay.rooms);
            match changed.iter_mut().find(|(c, _)| *c == id) {
                Some((_, slot)) => *slot = value,
                None => changed.push((id, value)),
            }
        }
        self.nights.extend(changed);
        Ok(Ok(()))
    }

    fn release<L: Ledger>(&mut self, ledger: &L, stay: &Stay) -> Result<(), L::Error> {
        for night in stay.nights() {
            let id = self.night_id(&stay.room_type, night);
            let mut value = ledger.night(&id)?.unwrap_or_default();
            value.sold = value.sold.saturating_sub(u32::from(stay.rooms));
            self.nights.push((id, value));
        }
        Ok(())
    }

    fn finish(self, booking: Option<Booking>, outcome: Result<Outcome, RejectReason>) -> Effects {
        let envelope = self.envelope;
        let (outcome, reason) = match outcome {
            Ok(outcome) => (outcome, None),
            Err(reason) => (Outcome::Rejected, Some(reason)),
        };
        let booking = booking.map(|mut booking| {
            booking.history.push(HistoryEntry {
                event_id: envelope.event_id,
                event_type: envelope.event.kind().to_owned(),
                partner_id: envelope.partner_id.clone(),
                request_id: envelope.request_id.clone(),
                partition: self.at.partition,
                offset: self.at.offset,
                outcome,
                reason,
            });
            booking
        });
        let owner = booking.as_ref().map(|b| b.partner_id.as_str());
        Effects {
            decision: decision(envelope, outcome, reason, self.at, self.at.offset, owner),
            booking,
            nights: self.nights,
        }
    }
}

/// Whether the sender of `envelope` may modify or cancel `booking`: the partner that created
/// it may, and a sender with the tenant-wide `bookings:any-partner` scope may act on every
/// booking of its tenant.
fn may_act_on(booking: &Booking, envelope: &Envelope) -> bool {
    if envelope.any_partner {
        booking.tenant_id == envelope.tenant_id
    } else {
        booking.partner_id == envelope.partner_id
    }
}

/// The decision on `envelope`, taken at position `at`, answering its copy at
/// `record_offset` of the same partition; `owner` is the partner whose booking the event
/// reached, if it reached one.
fn decision(
    envelope: &Envelope,
    outcome: Outcome,
    reason: Option<RejectReason>,
    at: Position,
    record_offset: i64,
    owner: Option<&str>,
) -> Decision {
    Decision {
        event_id: envelope.event_id,
        booking_id: envelope.event.booking_id(),
        tenant_id: envelope.tenant_id.clone(),
        property_id: envelope.property_id.clone(),
        event_type: envelope.event.kind().to_owned(),
        outcome,
        reason,
        partition: at.partition,
        offset: at.offset,
        record_offset: Some(record_offset),
        partner_id: Some(envelope.partner_id.clone()),
        owner_id: owner
            .filter(|owner| *owner != envelope.partner_id)
            .map(str::to_owned),
    }
}

#[cfg(test)]
mod tests;

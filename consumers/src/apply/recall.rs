//! The decision an already-applied event got, read back from the state it left.
//!
//! A decision is published after the store commit that made it. A crash in between, or a
//! partner resending an event, brings the event back to a store that skips it: its decision
//! must then be published again, and be the same one. The store keeps no decision log; it
//! does not need one, because every decision is implied by what the event left:
//!
//! - an event that concerns a booking and got as far as the booking is in its history,
//!   with the outcome, reason and position it was decided with;
//! - a modify or cancel whose booking did not exist (or did not exist yet) or belonged to
//!   another property touched no booking, and its reason follows from that booking now;
//! - an allotment is always set.

use partitioner::{Decision, Envelope, Event, Outcome, RejectReason};

use super::{decision, Booking, Position};

/// The decision `envelope` got when it was applied at `applied_at`, given the current
/// state of the booking it names (if any). `None` when the state contradicts the event
/// having been applied (a create whose booking does not record it).
pub fn recall(
    envelope: &Envelope,
    applied_at: Position,
    booking: Option<&Booking>,
) -> Option<Decision> {
    let decided = |outcome, reason, at| decision(envelope, outcome, reason, at);
    if let Some(entry) = booking
        .into_iter()
        .flat_map(|b| b.history.iter())
        .find(|entry| entry.event_id == envelope.event_id)
    {
        let at = Position {
            partition: entry.partition,
            offset: entry.offset,
        };
        return Some(decided(entry.outcome, entry.reason, at));
    }
    let reason = match &envelope.event {
        Event::SetAllotment { .. } => {
            return Some(decided(Outcome::AllotmentSet, None, applied_at))
        }
        // Every applied create leaves an entry in its booking's history.
        Event::CreateBooking { .. } => return None,
        Event::ModifyBooking { .. } | Event::CancelBooking { .. } => match booking {
            Some(b) if existed_before(b, applied_at) && !same_property(b, envelope) => {
                RejectReason::PropertyMismatch
            }
            // Absent then: a booking of the event's own property, existing at the
            // event's turn, would have recorded it.
            _ => RejectReason::BookingNotFound,
        },
    };
    Some(decided(Outcome::Rejected, Some(reason), applied_at))
}

fn same_property(booking: &Booking, envelope: &Envelope) -> bool {
    booking.tenant_id == envelope.tenant_id && booking.property_id == envelope.property_id
}

/// Whether the booking was created before position `at` of the same partition: its first
/// history entry is its create.
fn existed_before(booking: &Booking, at: Position) -> bool {
    booking
        .history
        .first()
        .is_some_and(|created| created.partition != at.partition || created.offset < at.offset)
}

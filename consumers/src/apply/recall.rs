//! The decision an already-applied event got, read back from the state it left.
//!
//! A decision is published after the store commit that made it. A crash in between, or a
//! partner resending an event, brings the event back to a store that skips it: its decision
//! must then be published again, and be the same one. The store keeps no decision log; it
//! does not need one, because every decision is implied by what the event left:
//!
//! - an event that concerns a booking and got as far as the booking is in its history,
//!   with the outcome, reason and position it was decided with;
//! - a modify or cancel whose booking did not exist (or did not exist yet), was not its
//!   sender's to act on, or belonged to another property touched no booking, and its
//!   reason follows from that booking now;
//! - an allotment is always set.
//!
//! An id comes back with another command only when its sender reused an Idempotency-Key
//! that every cache had forgotten (event ids derive from the key). That event was never
//! applied; it is rejected as `idempotency_key_reused`, at its own offset, and never told
//! the first command's decision. A store sees the ids applied on its own scope only: the
//! embedded store one partition, the CQL store the whole topic.

use partitioner::{Decision, Envelope, Event, Fingerprint, Outcome, RejectReason};

use super::{decision, may_act_on, Booking, Position};

/// What the store keeps of an applied event id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AppliedEvent {
    pub offset: i64,
    /// The command applied under the id; `None` for events stored by builds that did
    /// not keep it, which are taken to be the same command.
    pub fingerprint: Option<Fingerprint>,
}

/// The decision for `envelope`, read at `copy_at`, whose id the store has applied before
/// (`applied`), given the current state of the booking it names (if any): the decision
/// the applied event got, or a rejection when `envelope` carries another command. `None`
/// when the state contradicts the event having been applied (a create whose booking does
/// not record it).
pub fn recall(
    envelope: &Envelope,
    copy_at: Position,
    applied: AppliedEvent,
    booking: Option<&Booking>,
) -> Option<Decision> {
    let decided =
        |outcome, reason, at| decision(envelope, outcome, reason, at, copy_at.offset, None);
    if applied
        .fingerprint
        .is_some_and(|first| first != envelope.fingerprint())
    {
        let reason = Some(RejectReason::IdempotencyKeyReused);
        return Some(decided(Outcome::Rejected, reason, copy_at));
    }
    let applied_at = Position {
        partition: copy_at.partition,
        offset: applied.offset,
    };
    if let Some(entry) = booking
        .into_iter()
        .flat_map(|b| b.history.iter())
        .find(|entry| entry.event_id == envelope.event_id)
    {
        let at = Position {
            partition: entry.partition,
            offset: entry.offset,
        };
        // The event reached the booking: its owner is told, as when it was first decided.
        let owner = booking.map(|b| b.partner_id.as_str());
        return Some(decision(
            envelope,
            entry.outcome,
            entry.reason,
            at,
            copy_at.offset,
            owner,
        ));
    }
    let reason = match &envelope.event {
        Event::SetAllotment { .. } => {
            return Some(decided(Outcome::AllotmentSet, None, applied_at))
        }
        // Every applied create leaves an entry in its booking's history.
        Event::CreateBooking { .. } => return None,
        Event::ModifyBooking { .. } | Event::CancelBooking { .. } => match booking {
            Some(b)
                if existed_before(b, applied_at)
                    && may_act_on(b, envelope)
                    && !same_property(b, envelope) =>
            {
                RejectReason::PropertyMismatch
            }
            // Absent then, or not the sender's: a booking of the event's own property
            // that the sender may act on, existing at the event's turn, would have
            // recorded it.
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

//! The rule every store writes a batch by, written once: an event at or below the
//! partition's checkpoint was stored before (a redelivery after a restart, or a rewind) and
//! is a replay; an event whose id was applied before, in an earlier batch or earlier in
//! this one, is a partner's resend and a duplicate; every other event is applied, in
//! offset order. Skipping both is what makes redelivery harmless.

use std::collections::HashSet;

use uuid::Uuid;

use super::BatchResult;
use crate::apply::Effects;

/// Whether the event at `offset` is past `checkpoint`, so not stored yet.
pub fn is_new(checkpoint: Option<i64>, offset: i64) -> bool {
    checkpoint.is_none_or(|c| offset > c)
}

/// One batch's walk under the rule, counting what it skips.
#[derive(Debug)]
pub struct SkipRule {
    checkpoint: Option<i64>,
    /// Ids applied by this batch so far: a store that writes the batch at its end cannot
    /// find them in its own tables yet.
    seen: HashSet<Uuid>,
    replayed: usize,
    duplicates: usize,
}

impl SkipRule {
    pub fn new(checkpoint: Option<i64>) -> Self {
        SkipRule {
            checkpoint,
            seen: HashSet::new(),
            replayed: 0,
            duplicates: 0,
        }
    }

    /// The whole batch, through offset `through`, is stored already: nothing is written,
    /// not even the checkpoint, and every one of its `events` counts as a replay.
    pub fn stored_through(&self, through: i64, events: usize) -> Option<BatchResult> {
        self.checkpoint
            .is_some_and(|c| c >= through)
            .then(|| BatchResult {
                replayed: events,
                ..BatchResult::default()
            })
    }

    /// Whether the event at `offset` is a replay (counted if so).
    pub fn replayed(&mut self, offset: i64) -> bool {
        let replayed = !is_new(self.checkpoint, offset);
        self.replayed += usize::from(replayed);
        replayed
    }

    /// Whether the event `event_id` is a duplicate (counted if so): `applied_before` says
    /// whether the store has it from an earlier batch.
    pub fn duplicate(&mut self, event_id: Uuid, applied_before: bool) -> bool {
        let duplicate = applied_before || self.seen.contains(&event_id);
        self.duplicates += usize::from(duplicate);
        duplicate
    }

    /// Records that `event_id` was applied.
    pub fn applied(&mut self, event_id: Uuid) {
        self.seen.insert(event_id);
    }

    /// The batch's result, with the `applied` events' effects in offset order.
    pub fn finish(self, applied: Vec<Effects>) -> BatchResult {
        BatchResult {
            applied,
            replayed: self.replayed,
            duplicates: self.duplicates,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replays_are_at_or_below_the_checkpoint() {
        assert!(is_new(None, 0));
        assert!(is_new(Some(4), 5));
        assert!(!is_new(Some(4), 4));
        let mut rule = SkipRule::new(Some(4));
        assert!(rule.replayed(3));
        assert!(rule.replayed(4));
        assert!(!rule.replayed(5));
        assert_eq!(rule.finish(Vec::new()).replayed, 2);
    }

    #[test]
    fn a_batch_inside_the_checkpoint_writes_nothing() {
        let rule = SkipRule::new(Some(9));
        let result = rule.stored_through(9, 3).expect("stored already");
        assert_eq!((result.replayed, result.applied.len()), (3, 0));
        assert!(rule.stored_through(10, 3).is_none());
        assert!(SkipRule::new(None).stored_through(0, 1).is_none());
    }

    #[test]
    fn an_id_is_applied_once_whether_seen_before_or_in_the_same_batch() {
        let (first, second) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let mut rule = SkipRule::new(None);
        assert!(!rule.duplicate(first, false));
        rule.applied(first);
        assert!(rule.duplicate(first, false), "earlier in the batch");
        assert!(rule.duplicate(second, true), "in an earlier batch");
        assert_eq!(rule.finish(Vec::new()).duplicates, 2);
    }
}

//! What a worker decides from offsets alone: where a batch read from Kafka stands against
//! the partition's store checkpoint, what to do when Kafka is ahead of the store, and
//! whether a store write's answer was lost. No I/O, so it is tested without a broker.

use partitioner::Envelope;

use crate::store::skip;

/// The first offset the store has not stored: the one after its checkpoint.
fn first_missing(checkpoint: Option<i64>) -> i64 {
    checkpoint.map_or(0, |c| c + 1)
}

/// Where a batch starting at offset `first` stands against the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Standing {
    /// The batch starts at or before the first missing event: write it (what the store
    /// already has is skipped as replays).
    InOrder,
    /// Kafka's position is past the store: events `first_missing..first` would be
    /// skipped. The store, not Kafka, says what is applied, so the worker goes back.
    Ahead { first_missing: i64 },
}

pub fn standing(checkpoint: Option<i64>, first: i64) -> Standing {
    let first_missing = first_missing(checkpoint);
    if first > first_missing {
        Standing::Ahead { first_missing }
    } else {
        Standing::InOrder
    }
}

/// How a partition whose Kafka position is ahead of its store catches up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CatchUp {
    /// Seek back to the first missing event.
    Rewind,
    /// Retention deleted events `first_missing..low` before they were stored: hold.
    Gap { low: i64 },
}

/// `low` is the partition's low watermark, `None` when Kafka did not answer: seeking is
/// still right if the events are there, and harmless if not (the next batch comes back).
pub fn catch_up(first_missing: i64, low: Option<i64>) -> CatchUp {
    match low {
        Some(low) if low > first_missing => CatchUp::Gap { low },
        _ => CatchUp::Rewind,
    }
}

/// Whether a write that skipped `replayed` of `events` as already stored skipped more
/// than the `previous` checkpoint this worker knew accounts for: an earlier attempt
/// committed them but its answer was lost (a CQL transaction that timed out after it
/// committed, retried and found done), so their effects never reached the projections.
pub fn effects_lost(previous: Option<i64>, events: &[(i64, Envelope)], replayed: usize) -> bool {
    let expected = events
        .iter()
        .filter(|(offset, _)| !skip::is_new(previous, *offset))
        .count();
    replayed > expected
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::conformance::allot;

    #[test]
    fn a_batch_past_the_first_missing_event_is_ahead() {
        assert_eq!(standing(None, 0), Standing::InOrder);
        assert_eq!(standing(None, 5), Standing::Ahead { first_missing: 0 });
        assert_eq!(standing(Some(4), 5), Standing::InOrder);
        // Replays of what is stored are written (and skipped by the store), never sought.
        assert_eq!(standing(Some(4), 2), Standing::InOrder);
        assert_eq!(standing(Some(4), 6), Standing::Ahead { first_missing: 5 });
    }

    #[test]
    fn only_events_kafka_no_longer_has_make_a_gap() {
        assert_eq!(catch_up(5, Some(5)), CatchUp::Rewind);
        assert_eq!(catch_up(5, Some(0)), CatchUp::Rewind);
        assert_eq!(catch_up(5, None), CatchUp::Rewind);
        assert_eq!(catch_up(5, Some(9)), CatchUp::Gap { low: 9 });
    }

    #[test]
    fn more_replays_than_the_checkpoint_explains_means_lost_effects() {
        let events: Vec<(i64, Envelope)> = (3..=6)
            .map(|offset| (offset, allot(offset as u128, 1)))
            .collect();
        // Offsets 3 and 4 are at or below the checkpoint: two replays are expected.
        assert!(!effects_lost(Some(4), &events, 2));
        assert!(effects_lost(Some(4), &events, 3));
        assert!(!effects_lost(None, &events, 0));
        assert!(effects_lost(None, &events, 1));
    }
}

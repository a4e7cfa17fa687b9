//! The write policy of a partition's state, on the embedded store in a temporary
//! directory behind a wrapper that refuses chosen writes: the faults a real store cannot
//! be made to produce on demand. No broker, no Redis.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use rdkafka::message::OwnedMessage;
use rdkafka::Timestamp;
use uuid::Uuid;

use super::*;
use crate::apply::{AppliedEvent, Booking, Night, NightId};
use crate::store::conformance::{allot, create};
use crate::store::embedded::{EmbeddedPartition, EmbeddedStore};

const PARTITION: i32 = 3;

/// What the wrapped store refuses: every write holding one of `refused` (as a record it
/// cannot store), and the next `busy` writes of any kind (as a busy volume).
#[derive(Default)]
struct Faults {
    refused: HashSet<Uuid>,
    busy: usize,
    /// Write attempts that reached the wrapper.
    attempts: usize,
}

#[derive(Clone)]
struct FaultyStore {
    inner: EmbeddedStore,
    faults: Arc<Mutex<Faults>>,
}

struct FaultyPartition {
    inner: EmbeddedPartition,
    faults: Arc<Mutex<Faults>>,
}

impl Store for FaultyStore {
    type Partition = FaultyPartition;

    fn open(&self, partition: i32) -> Result<FaultyPartition, StoreError> {
        Ok(FaultyPartition {
            inner: self.inner.open(partition)?,
            faults: self.faults.clone(),
        })
    }

    fn peek_checkpoint(&self, partition: i32) -> Result<Option<i64>, StoreError> {
        self.inner.peek_checkpoint(partition)
    }

    fn partitions(&self) -> Result<Vec<i32>, StoreError> {
        self.inner.partitions()
    }

    fn accepted_placement(&self) -> Result<Option<String>, StoreError> {
        self.inner.accepted_placement()
    }

    fn adopt_placement(&self, placement: &str) -> Result<String, StoreError> {
        self.inner.adopt_placement(placement)
    }

    fn accept_placement(&self, placement: &str) -> Result<(), StoreError> {
        self.inner.accept_placement(placement)
    }
}

impl PartitionStore for FaultyPartition {
    fn checkpoint(&self) -> Result<Option<i64>, StoreError> {
        self.inner.checkpoint()
    }

    fn write_batch(
        &mut self,
        events: &[(i64, Envelope)],
        through: i64,
    ) -> Result<BatchResult, StoreError> {
        {
            let mut faults = self.faults.lock().unwrap();
            faults.attempts += 1;
            if faults.busy > 0 {
                faults.busy -= 1;
                return Err(StoreError::Io("injected: volume busy".into()));
            }
            if events
                .iter()
                .any(|(_, e)| faults.refused.contains(&e.event_id))
            {
                return Err(StoreError::Corrupt("injected: unstorable".into()));
            }
        }
        self.inner.write_batch(events, through)
    }

    fn booking(&self, id: Uuid) -> Result<Option<Booking>, StoreError> {
        self.inner.booking(id)
    }

    fn applied_event(&self, event_id: Uuid) -> Result<Option<AppliedEvent>, StoreError> {
        self.inner.applied_event(event_id)
    }

    fn bookings(&self) -> Result<Vec<Booking>, StoreError> {
        self.inner.bookings()
    }

    fn nights(&self) -> Result<Vec<(NightId, Night)>, StoreError> {
        self.inner.nights()
    }
}

/// An open state of partition [`PARTITION`], trying an unstorable event `tries` times.
fn open(tries: u32) -> (PartitionState<FaultyStore>, FaultyStore, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = FaultyStore {
        inner: EmbeddedStore::new(dir.path()).unwrap(),
        faults: Default::default(),
    };
    let partition = store.open(PARTITION).unwrap();
    let mut state = PartitionState::new(PARTITION, tries);
    let checkpoint = partition.checkpoint().unwrap();
    state.opened(partition, checkpoint);
    (state, store, dir)
}

/// `events` as read from the partition, from `first` on.
fn batch(first: i64, events: &[Envelope]) -> PartitionBatch {
    let messages = events
        .iter()
        .zip(first..)
        .map(|(envelope, offset)| {
            OwnedMessage::new(
                Some(envelope.to_json()),
                None,
                "bookings".into(),
                Timestamp::NotAvailable,
                PARTITION,
                offset,
                None,
            )
        })
        .collect();
    PartitionBatch::decode(PARTITION, messages)
}

fn applied_offsets(stored: &Stored) -> Vec<i64> {
    stored.applied.iter().map(|e| e.decision.offset).collect()
}

#[tokio::test]
async fn a_busy_store_is_tried_again_until_it_takes_the_batch() {
    let (mut state, store, _dir) = open(3);
    store.faults.lock().unwrap().busy = 2;
    let stored = state
        .store_batch(&batch(0, &[allot(1, 2), create(2)]))
        .await
        .unwrap();
    assert_eq!(applied_offsets(&stored), [0, 1]);
    assert_eq!(store.faults.lock().unwrap().attempts, 3);
    assert!(stored.poisoned.is_empty());
}

#[tokio::test]
async fn a_store_busy_past_the_retries_fails_the_batch() {
    let (mut state, store, _dir) = open(3);
    store.faults.lock().unwrap().busy = usize::MAX;
    let failed = state.store_batch(&batch(0, &[allot(1, 2)])).await;
    assert!(matches!(failed, Err(StoreError::Io(_))));
    assert_eq!(
        store.faults.lock().unwrap().attempts,
        STORE_RETRIES + 1,
        "one try and its retries"
    );
    assert_eq!(state.read(|s| s.checkpoint()).await.unwrap(), None);
}

#[tokio::test]
async fn an_event_refused_every_time_is_dead_lettered_and_the_rest_is_stored() {
    let (mut state, store, _dir) = open(3);
    let poison = create(3);
    store.faults.lock().unwrap().refused.insert(poison.event_id);
    let batch = batch(10, &[allot(1, 5), create(2), poison, create(4)]);
    let stored = state.store_batch(&batch).await.unwrap();
    assert_eq!(applied_offsets(&stored), [10, 11, 13]);
    let dead: Vec<(i64, &str)> = stored
        .poisoned
        .iter()
        .map(|d| (d.source_offset, d.reason.as_str()))
        .collect();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].0, 12);
    assert!(
        dead[0].1.starts_with("not storable after 3 tries"),
        "{}",
        dead[0].1
    );
    // The whole batch once, then each event alone: the refused one three times.
    assert_eq!(store.faults.lock().unwrap().attempts, 1 + 1 + 1 + 3 + 1 + 2);
    assert_eq!(state.read(|s| s.checkpoint()).await.unwrap(), Some(13));
}

#[tokio::test]
async fn a_resent_event_is_answered_with_its_first_decision() {
    let (mut state, _store, _dir) = open(3);
    let first = state
        .store_batch(&batch(0, &[allot(1, 5), create(2)]))
        .await
        .unwrap();
    let resend = batch(2, &[create(2)]);
    let stored = state.store_batch(&resend).await.unwrap();
    assert!(stored.applied.is_empty());
    let recalled = state.recall_skipped(&resend, &stored).await.unwrap();
    let decided = &first.applied[1].decision;
    assert_eq!(recalled.len(), 1);
    assert_eq!(
        (
            recalled[0].outcome,
            recalled[0].offset,
            recalled[0].record_offset
        ),
        (decided.outcome, 1, Some(2))
    );
}

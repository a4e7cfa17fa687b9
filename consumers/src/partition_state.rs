//! One partition's state as its worker holds it: the open store and its checkpoint, and
//! the writing of batches to it. Transient failures are retried with backoff, and an event
//! that fails the same way every time is found and dead-lettered so the partition keeps
//! flowing. Store calls are synchronous (redb commits with fsync), so every one runs on
//! the blocking pool, and the runtime's threads keep serving the other partitions and the
//! consume loop meanwhile.
//!
//! An I/O error may pass (a full disk being cleaned up, a slow volume): the write is
//! retried a few times with backoff, then the worker gives up and the process stops rather
//! than commit offsets past unstored effects. A write that fails deterministically (a
//! record the store cannot read or write) is narrowed down to one event by applying the
//! batch's events one at a time; the event that keeps failing, after
//! `CONSUMER_POISON_TRIES` tries on its own, is sent to the dead-letter topic and the
//! checkpoint moves past it.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use backon::{BlockingRetryable, ExponentialBuilder};
use partitioner::{Decision, Envelope, RejectReason};
use tracing::{debug, error, warn};

use uuid::Uuid;

use crate::apply::{recall, Effects, Position};
use crate::batch::PartitionBatch;
use crate::metrics;
use crate::outbox::DeadLetter;
use crate::store::{BatchResult, PartitionStore, Recovery, Store, StoreError};

/// Retries of a store write that failed with an I/O error before the consumer stops.
pub const STORE_RETRIES: usize = 5;
/// First pause between two tries of an event that failed deterministically; it doubles.
const POISON_BACKOFF: Duration = Duration::from_millis(50);

/// A partition's store, open or not yet, with its checkpoint.
pub struct PartitionState<S: Store> {
    partition: i32,
    /// How many times an event that fails to store deterministically is tried on its own
    /// before it is dead-lettered.
    poison_tries: u32,
    store: Option<S::Partition>,
    /// The last offset whose effects are stored, as far as this worker knows.
    pub checkpoint: Option<i64>,
}

/// What one batch stored.
pub struct Stored {
    pub applied: Vec<Effects>,
    /// Events that failed to store every time they were tried, with why.
    pub poisoned: Vec<DeadLetter>,
    /// Events the store skipped as at or below its checkpoint.
    pub replayed: usize,
}

impl<S: Store> PartitionState<S> {
    /// The state of `partition`, not open yet.
    pub fn new(partition: i32, poison_tries: u32) -> Self {
        PartitionState {
            partition,
            poison_tries,
            store: None,
            checkpoint: None,
        }
    }

    /// Holds the store, opened, and its checkpoint.
    pub fn opened(&mut self, store: S::Partition, checkpoint: Option<i64>) {
        self.store = Some(store);
        self.checkpoint = checkpoint;
    }

    /// Closes the store, letting another owner open it.
    pub fn release(&mut self) {
        drop(self.store.take());
    }

    /// Commits a batch's events and its checkpoint (`batch.through`) to the store.
    pub async fn store_batch(&mut self, batch: &PartitionBatch) -> Result<Stored, StoreError> {
        match self.commit(batch.events.clone(), batch.through).await {
            Ok(result) => Ok(Stored {
                applied: result.applied,
                poisoned: Vec::new(),
                replayed: result.replayed,
            }),
            Err(e) if e.recovery() == Recovery::Isolate => {
                warn!(error = %e, partition = self.partition, "batch cannot be stored; applying its events one at a time");
                self.isolate(batch).await
            }
            Err(e) => Err(e),
        }
    }

    /// Writes the batch's events one transaction each, dead-lettering those that fail
    /// deterministically on every try.
    async fn isolate(&mut self, batch: &PartitionBatch) -> Result<Stored, StoreError> {
        let partition = self.partition;
        let tries = self.poison_tries.max(1);
        let mut stored = Stored {
            applied: Vec::new(),
            poisoned: Vec::new(),
            replayed: 0,
        };
        for (offset, envelope) in batch.events.iter() {
            let single = Arc::new(vec![(*offset, envelope.clone())]);
            let mut tried = 0;
            loop {
                tried += 1;
                match self.commit(single.clone(), *offset).await {
                    Ok(result) => {
                        stored.applied.extend(result.applied);
                        stored.replayed += result.replayed;
                        break;
                    }
                    Err(e) if e.recovery() == Recovery::Isolate && tried < tries => {
                        debug!(error = %e, partition, offset, tried, "event failed to store; trying again");
                        tokio::time::sleep(POISON_BACKOFF * 2u32.pow(tried - 1)).await;
                    }
                    Err(e) if e.recovery() == Recovery::Isolate => {
                        let reason = format!("not storable after {tried} tries: {e}");
                        error!(partition, offset, event_id = %envelope.event_id, %reason, "event sent to the dead-letter topic");
                        stored.poisoned.extend(batch.dead_letter(*offset, reason));
                        // Moves the checkpoint past the event, with nothing applied.
                        self.commit(Arc::new(Vec::new()), *offset).await?;
                        break;
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        // Undecodable messages after the last event are covered by the checkpoint too.
        self.commit(Arc::new(Vec::new()), batch.through).await?;
        Ok(stored)
    }

    /// The decisions of the batch's events that the store skipped because it had applied
    /// them before: redelivered after a crash that may have come before their decisions
    /// went out, or resent by a partner who is still waiting for one. They are read back
    /// from the state the events left (see [`crate::apply::recall`]) and published again.
    pub async fn recall_skipped(
        &mut self,
        batch: &PartitionBatch,
        stored: &Stored,
    ) -> Result<Vec<Decision>, StoreError> {
        let decided: HashSet<(Uuid, i64)> = stored
            .applied
            .iter()
            .map(|e| (e.decision.event_id, e.decision.offset))
            .collect();
        let skipped: Vec<(i64, Envelope)> = batch
            .events
            .iter()
            .filter(|(offset, envelope)| !decided.contains(&(envelope.event_id, *offset)))
            .cloned()
            .collect();
        if skipped.is_empty() {
            return Ok(Vec::new());
        }
        let partition = self.partition;
        self.with_store(move |store| {
            let mut recalled = Vec::new();
            for (offset, envelope) in &skipped {
                // Dead-lettered events were never applied and have no decision.
                let Some(applied) = store.applied_event(envelope.event_id)? else {
                    continue;
                };
                let booking = match envelope.event.booking_id() {
                    Some(id) => store.booking(id)?,
                    None => None,
                };
                let copy_at = Position { partition, offset: *offset };
                match recall(envelope, copy_at, applied, booking.as_ref()) {
                    Some(decision) => {
                        if decision.reason == Some(RejectReason::IdempotencyKeyReused) {
                            warn!(partition, offset, event_id = %envelope.event_id, partner = %envelope.partner_id, "an applied event id came back with another command: idempotency key reused");
                        }
                        recalled.push(decision);
                    }
                    None => warn!(partition, offset, event_id = %envelope.event_id, "applied event left no trace of its decision"),
                }
            }
            Ok(recalled)
        })
        .await
    }

    /// One store transaction on the blocking pool, retried with backoff on I/O errors.
    async fn commit(
        &mut self,
        events: Arc<Vec<(i64, Envelope)>>,
        through: i64,
    ) -> Result<BatchResult, StoreError> {
        let partition = self.partition;
        let result = self
            .with_store(move |store| {
                let retry = ExponentialBuilder::default()
                    .with_min_delay(Duration::from_millis(100))
                    .with_max_times(STORE_RETRIES);
                (|| store.write_batch(&events, through))
                    .retry(retry)
                    .sleep(std::thread::sleep)
                    .when(|e| e.recovery() == Recovery::Retry)
                    .notify(|e, after| {
                        metrics::store_retried();
                        warn!(error = %e, partition, ?after, "store write failed; retrying");
                    })
                    .call()
            })
            .await?;
        metrics::events_skipped(result.replayed, result.duplicates);
        debug!(
            partition,
            applied = result.applied.len(),
            replayed = result.replayed,
            duplicates = result.duplicates,
            through,
            "batch committed to the store"
        );
        Ok(result)
    }

    /// Runs a read of the partition's state on the blocking pool.
    pub async fn read<T: Send + 'static>(
        &mut self,
        read: fn(&S::Partition) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.with_store(move |store| read(store)).await
    }

    /// Runs `f` on the partition's state on the blocking pool.
    pub async fn with_store<T: Send + 'static>(
        &mut self,
        f: impl FnOnce(&mut S::Partition) -> T + Send + 'static,
    ) -> T {
        let mut store = self
            .store
            .take()
            .expect("the state is open between batches");
        let (store, out) = tokio::task::spawn_blocking(move || {
            let out = f(&mut store);
            (store, out)
        })
        .await
        .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
        self.store = Some(store);
        out
    }
}

#[cfg(test)]
mod tests;

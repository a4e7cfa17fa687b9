//! Writing a batch to the partition's store: transient failures are retried with backoff,
//! and an event that fails the same way every time is found and dead-lettered so the
//! partition keeps flowing.
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

use crate::apply::{recall, Position};
use crate::batch::PartitionBatch;
use crate::metrics;
use crate::store::{BatchResult, PartitionStore, Recovery, Store, StoreError};
use crate::worker::{Stored, Worker};

/// Retries of a store write that failed with an I/O error before the consumer stops.
const STORE_RETRIES: usize = 5;
/// First pause between two tries of an event that failed deterministically; it doubles.
const POISON_BACKOFF: Duration = Duration::from_millis(50);

impl<S: Store> Worker<S> {
    /// Commits a batch's events and its checkpoint (`batch.through`) to the store.
    pub(crate) async fn store_batch(
        &mut self,
        batch: &PartitionBatch,
    ) -> Result<Stored, StoreError> {
        match self.apply(batch.events.clone(), batch.through).await {
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

    /// Applies the batch's events one transaction each, dead-lettering those that fail
    /// deterministically on every try.
    async fn isolate(&mut self, batch: &PartitionBatch) -> Result<Stored, StoreError> {
        let partition = self.partition;
        let tries = self.shared.poison_tries.max(1);
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
                match self.apply(single.clone(), *offset).await {
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
                        self.apply(Arc::new(Vec::new()), *offset).await?;
                        break;
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        // Undecodable messages after the last event are covered by the checkpoint too.
        self.apply(Arc::new(Vec::new()), batch.through).await?;
        Ok(stored)
    }

    /// The decisions of the batch's events that the store skipped because it had applied
    /// them before: redelivered after a crash that may have come before their decisions
    /// went out, or resent by a partner who is still waiting for one. They are read back
    /// from the state the events left (see [`crate::apply::recall`]) and published again.
    pub(crate) async fn recall_skipped(
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
    async fn apply(
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
                (|| store.apply_batch(&events, through))
                    .retry(retry)
                    .sleep(std::thread::sleep)
                    .when(|e| e.recovery() == Recovery::Retry)
                    .notify(|e, after| {
                        ::metrics::counter!(metrics::STORE_RETRIES).increment(1);
                        warn!(error = %e, partition, ?after, "store write failed; retrying");
                    })
                    .call()
            })
            .await?;
        if result.replayed > 0 {
            ::metrics::counter!(metrics::EVENTS_SKIPPED, "reason" => "replayed")
                .increment(result.replayed as u64);
        }
        if result.duplicates > 0 {
            ::metrics::counter!(metrics::EVENTS_SKIPPED, "reason" => "resent")
                .increment(result.duplicates as u64);
        }
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
}

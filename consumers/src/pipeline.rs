//! The consume loop: read a batch, apply it per partition, project, publish, commit.
//!
//! Order matters and is the whole correctness argument: (1) each partition's events and its
//! checkpoint are committed to the store in one transaction; (2) projections and decisions
//! are written from the effects of that commit; (3) only then are Kafka offsets committed.
//! A crash anywhere replays events from the last Kafka commit, and the store skips those at
//! or below its checkpoint, so nothing is lost and nothing is applied twice.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use backon::{BlockingRetryable, ExponentialBuilder};
use futures::StreamExt;
use partitioner::Envelope;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::error::KafkaResult;
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::{Offset, TopicPartitionList};
use tracing::{debug, info, warn};

use crate::apply::Effects;
use crate::context::{OwnedPartitions, OwnershipContext};
use crate::metrics;
use crate::outbox::{DeadLetter, Outbox};
use crate::projection::{Projections, Snapshot};
use crate::store::{PartitionStore, Store, StoreError};

/// How long to wait for a previous owner to release a partition's state before giving up.
const OPEN_PATIENCE: Duration = Duration::from_secs(30);
/// Retries of a failed store write before the consumer stops.
const STORE_RETRIES: usize = 5;

/// One partition's share of a batch.
#[derive(Default)]
struct PartitionBatch {
    events: Vec<(i64, Envelope)>,
    dead: Vec<DeadLetter>,
    /// The last offset in the batch, decodable or not.
    through: i64,
}

pub struct Pipeline<'a, S: Store> {
    pub consumer: &'a StreamConsumer<OwnershipContext<S::Partition>>,
    pub store: &'a S,
    pub owned: OwnedPartitions<S::Partition>,
    pub projections: &'a mut Projections,
    pub outbox: &'a Outbox,
    pub topic: &'a str,
}

impl<S: Store> Pipeline<'_, S> {
    /// Applies one batch from the stream. A store error is returned: the process stops
    /// rather than commit offsets for effects that are not stored.
    pub async fn process(
        &mut self,
        batch: Vec<KafkaResult<BorrowedMessage<'_>>>,
    ) -> Result<(), StoreError> {
        let batches = self.split(batch);
        let mut decisions = Vec::new();
        let mut dead = Vec::new();
        let mut commits = TopicPartitionList::new();
        for (partition, batch) in batches {
            let started = Instant::now();
            let effects = self.apply(partition, &batch).await?;
            ::metrics::histogram!(metrics::STORE_COMMIT_DURATION)
                .record(started.elapsed().as_secs_f64());
            ::metrics::histogram!(metrics::BATCH_SIZE).record(batch.events.len() as f64);
            record_latency(&batch.events);
            let snapshot = if self.projections.needs_snapshot(partition) {
                Some(self.snapshot(partition)?)
            } else {
                None
            };
            self.projections
                .write(partition, batch.through, &effects, snapshot)
                .await;
            decisions.extend(effects.into_iter().map(|e| e.decision));
            dead.extend(batch.dead);
            commits
                .add_partition_offset(self.topic, partition, Offset::Offset(batch.through + 1))
                .expect("a fresh offset is valid");
        }
        for decision in &decisions {
            ::metrics::counter!(metrics::EVENTS_APPLIED, "outcome" => decision.outcome.as_str())
                .increment(1);
        }
        ::metrics::counter!(metrics::DEAD_LETTERS).increment(dead.len() as u64);
        let publishing = Instant::now();
        self.outbox.publish(&decisions, &dead).await;
        debug!(decisions = decisions.len(), elapsed = ?publishing.elapsed(), "outbox published");
        if commits.count() > 0 {
            // Async is enough: the store checkpoint, not Kafka, decides what is applied.
            if let Err(e) = self.consumer.commit(&commits, CommitMode::Async) {
                ::metrics::counter!(metrics::KAFKA_ERRORS, "kind" => "commit").increment(1);
                warn!(error = %e, "offset commit failed; the next commit covers it");
            }
        }
        Ok(())
    }

    /// Groups a batch by partition and decodes it; what cannot be decoded becomes a dead
    /// letter and never blocks the partition.
    fn split(&self, batch: Vec<KafkaResult<BorrowedMessage<'_>>>) -> BTreeMap<i32, PartitionBatch> {
        let mut batches: BTreeMap<i32, PartitionBatch> = BTreeMap::new();
        for message in batch {
            let message = match message {
                Ok(message) => message,
                Err(e) => {
                    ::metrics::counter!(metrics::KAFKA_ERRORS, "kind" => "fetch").increment(1);
                    warn!(error = %e, "kafka error while consuming");
                    continue;
                }
            };
            let entry = batches.entry(message.partition()).or_default();
            entry.through = message.offset();
            let decoded = match message.payload() {
                Some(payload) => Envelope::from_json(payload).map_err(|e| e.to_string()),
                None => Err("empty payload".to_owned()),
            };
            match decoded {
                Ok(envelope) => entry.events.push((message.offset(), envelope)),
                Err(reason) => {
                    warn!(partition = message.partition(), offset = message.offset(), %reason, "undecodable event sent to the dead-letter topic");
                    entry.dead.push(DeadLetter {
                        key: message.key().map(<[u8]>::to_vec),
                        payload: message.payload().map(<[u8]>::to_vec),
                        reason,
                        source_partition: message.partition(),
                        source_offset: message.offset(),
                    });
                }
            }
        }
        batches
    }

    async fn apply(
        &mut self,
        partition: i32,
        batch: &PartitionBatch,
    ) -> Result<Vec<Effects>, StoreError> {
        self.ensure_open(partition).await?;
        let mut owned = self.owned.lock().expect("ownership lock poisoned");
        let store = owned
            .get_mut(&partition)
            .expect("opened just above and only revoked while polling");
        // redb is synchronous; block_in_place keeps the runtime's other tasks (the admin
        // server) running while this thread commits. An I/O error may pass (a full disk
        // being cleaned up, a slow volume): retry a few times with backoff, then give up
        // and let the process stop rather than commit offsets past unstored effects.
        let retry = ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(100))
            .with_max_times(STORE_RETRIES);
        let result = tokio::task::block_in_place(|| {
            (|| store.apply_batch(&batch.events, batch.through))
                .retry(retry)
                .sleep(std::thread::sleep)
                .when(|e| matches!(e, StoreError::Io(_)))
                .notify(|e, after| {
                    ::metrics::counter!(metrics::STORE_RETRIES).increment(1);
                    warn!(error = %e, partition, ?after, "store write failed; retrying");
                })
                .call()
        })?;
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
            through = batch.through,
            "batch committed to the store"
        );
        Ok(result.applied)
    }

    /// Between batches: finds owned partitions whose projections differ from the store
    /// and rebuilds them, so projections recover even where no new events arrive.
    pub async fn refresh_projections(&mut self) -> Result<(), StoreError> {
        let checkpoints = {
            let owned = self.owned.lock().expect("ownership lock poisoned");
            let mut checkpoints = Vec::with_capacity(owned.len());
            for (partition, store) in owned.iter() {
                checkpoints.push((*partition, store.checkpoint()?));
            }
            checkpoints
        };
        self.projections.check(&checkpoints).await;
        let owned: Vec<i32> = checkpoints.iter().map(|(p, _)| *p).collect();
        for partition in self.projections.stale_among(&owned) {
            if !self.projections.needs_snapshot(partition) {
                break;
            }
            let snapshot = self.snapshot(partition)?;
            let through = snapshot.checkpoint.unwrap_or(-1);
            self.projections
                .write(partition, through, &[], Some(snapshot))
                .await;
        }
        Ok(())
    }

    /// Reads what a projection rebuild of `partition` needs from its store.
    fn snapshot(&self, partition: i32) -> Result<Snapshot, StoreError> {
        let owned = self.owned.lock().expect("ownership lock poisoned");
        let store = owned
            .get(&partition)
            .expect("opened before its first batch");
        tokio::task::block_in_place(|| Snapshot::read(store))
    }

    /// Opens a partition's state on its first batch after assignment, waiting for a
    /// previous owner (another process, mid-rebalance) to let go of it.
    async fn ensure_open(&mut self, partition: i32) -> Result<(), StoreError> {
        if self
            .owned
            .lock()
            .expect("ownership lock poisoned")
            .contains_key(&partition)
        {
            return Ok(());
        }
        let deadline = Instant::now() + OPEN_PATIENCE;
        loop {
            match self.store.open(partition) {
                Ok(opened) => {
                    let checkpoint = opened.checkpoint()?;
                    info!(partition, ?checkpoint, "took ownership of partition");
                    {
                        let mut owned = self.owned.lock().expect("ownership lock poisoned");
                        owned.insert(partition, opened);
                        ::metrics::gauge!(metrics::OWNED_PARTITIONS).set(owned.len() as f64);
                    }
                    self.projections.check(&[(partition, checkpoint)]).await;
                    return Ok(());
                }
                Err(StoreError::Locked { .. }) if Instant::now() < deadline => {
                    debug!(
                        partition,
                        "partition state still held by its previous owner"
                    );
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// Records acceptance-to-store latency, from the ingress's timestamp in each event.
fn record_latency(events: &[(i64, Envelope)]) {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    for (_, envelope) in events {
        let ms = (now_ms - envelope.received_at_ms).max(0);
        ::metrics::histogram!(metrics::END_TO_END_DURATION).record(ms as f64 / 1000.0);
    }
}

/// The partitions owned by this process, shared with the rebalance callback.
pub fn new_owned<P>() -> OwnedPartitions<P> {
    Arc::new(Mutex::new(HashMap::new()))
}

/// Stream messages in batches of what is ready, at most `max` at a time.
pub fn batches<'c, C>(
    consumer: &'c StreamConsumer<C>,
    max: usize,
) -> impl futures::Stream<Item = Vec<KafkaResult<BorrowedMessage<'c>>>> + 'c
where
    C: rdkafka::consumer::ConsumerContext + 'static,
{
    consumer.stream().ready_chunks(max)
}

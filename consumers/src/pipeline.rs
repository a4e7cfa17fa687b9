//! The consume loop: read a batch, apply it per partition, project, publish, commit.
//!
//! Order matters and is the whole correctness argument: (1) each partition's events and its
//! checkpoint are committed to the store in one transaction; (2) projections and decisions
//! are written from the effects of that commit; (3) only then are Kafka offsets committed.
//! A crash anywhere replays events from the last Kafka commit, and the store skips those at
//! or below its checkpoint, so nothing is lost and nothing is applied twice.

use std::collections::{BTreeMap, BTreeSet, HashMap};
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
/// How long a rewind to the store checkpoint may take.
const SEEK_TIMEOUT: Duration = Duration::from_secs(5);

/// One partition's share of a batch.
#[derive(Default)]
struct PartitionBatch {
    events: Vec<(i64, Envelope)>,
    dead: Vec<DeadLetter>,
    /// The first and last offsets in the batch, decodable or not.
    first: Option<i64>,
    through: i64,
}

pub struct Pipeline<'a, S: Store> {
    /// Per partition, the next offset to consume as of the last store commit: the only
    /// offsets this process ever commits to Kafka.
    pub stored: BTreeMap<i32, i64>,
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
        let assigned = self.assigned();
        for (partition, batch) in batches {
            // A revoke handled in the same poll can leave messages of a partition that
            // is no longer ours in the batch: its new owner will read them again.
            if !assigned.contains(&partition) {
                debug!(partition, "dropping messages of a revoked partition");
                continue;
            }
            let started = Instant::now();
            let Some(effects) = self.apply(partition, &batch).await? else {
                continue;
            };
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
            self.stored.insert(partition, batch.through + 1);
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
            entry.first.get_or_insert(message.offset());
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

    /// Applies a partition's batch to its store; `None` when the batch was not applied
    /// because it starts past the store's checkpoint and the partition was rewound.
    async fn apply(
        &mut self,
        partition: i32,
        batch: &PartitionBatch,
    ) -> Result<Option<Vec<Effects>>, StoreError> {
        self.ensure_open(partition).await?;
        let mut owned = self.owned.lock().expect("ownership lock poisoned");
        let store = owned
            .get_mut(&partition)
            .expect("opened just above and only revoked while polling");
        // The store, not Kafka, says what is applied. Should the group's committed offset
        // ever run ahead of the store (an offset committed by anything but this loop),
        // rewind to the event after the checkpoint instead of skipping events.
        if let (Some(checkpoint), Some(first)) = (store.checkpoint()?, batch.first) {
            if first > checkpoint + 1 {
                warn!(
                    partition,
                    checkpoint, first, "kafka position is past the store checkpoint; rewinding"
                );
                let rewind = Offset::Offset(checkpoint + 1);
                if let Err(e) = self
                    .consumer
                    .seek(self.topic, partition, rewind, SEEK_TIMEOUT)
                {
                    warn!(error = %e, partition, "rewind failed; stopping rather than skip events");
                    return Err(StoreError::Io(format!(
                        "cannot rewind partition {partition}: {e}"
                    )));
                }
                return Ok(None);
            }
        }
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
        Ok(Some(result.applied))
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

    /// Partitions of the bookings topic currently assigned to this process.
    fn assigned(&self) -> BTreeSet<i32> {
        self.consumer
            .assignment()
            .map(|tpl| {
                tpl.elements_for_topic(self.topic)
                    .iter()
                    .map(|e| e.partition())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// At shutdown: commits, synchronously, the offsets of every store commit of the
    /// partitions still owned, so the next owner starts exactly where the store stopped.
    pub fn commit_stored(&self) {
        let owned = self.owned.lock().expect("ownership lock poisoned");
        let mut commits = TopicPartitionList::new();
        for (partition, next) in &self.stored {
            if owned.contains_key(partition) {
                commits
                    .add_partition_offset(self.topic, *partition, Offset::Offset(*next))
                    .expect("a fresh offset is valid");
            }
        }
        if commits.count() > 0 {
            if let Err(e) = self.consumer.commit(&commits, CommitMode::Sync) {
                warn!(error = %e, "final offset commit failed; the store checkpoint covers it");
            }
        }
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

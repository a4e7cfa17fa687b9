//! One partition's worker: stores the partition's messages in offset order while the
//! workers of other partitions run beside it.
//!
//! Per batch, in this order: (1) the events and the partition checkpoint are committed to
//! the store in one transaction; (2) projections and decisions are written from the effects
//! of that commit; (3) the worker records the next offset, which the consume loop commits
//! to Kafka. A crash anywhere replays events from the last Kafka commit, and the store
//! skips those at or below its checkpoint, so nothing is lost and nothing is applied twice.
//! A worker waits only on its own partition's store, Redis pipeline and deliveries.

mod progress;

use std::sync::Arc;
use std::time::{Duration, Instant};

use backon::{BlockingRetryable, ExponentialBuilder};
use futures::future::BoxFuture;
use futures::stream::FuturesOrdered;
use futures::{FutureExt, StreamExt};
use partitioner::Envelope;
use rdkafka::message::OwnedMessage;
use rdkafka::Offset;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use self::progress::{CatchUp, Standing};
use crate::assignment::WorkerHandle;
use crate::batch::PartitionBatch;
use crate::flow::Flow;
use crate::metrics;
use crate::partition_state::{PartitionState, STORE_RETRIES};
use crate::placement::{self, Hold, Moved};
use crate::projection::Snapshot;
use crate::shared::Shared;
use crate::store::{skip, PartitionStore, Recovery, Store, StoreError};

/// Why a worker stopped the process rather than go on: going on would skip events.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// A store error that retries could not cure.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Kafka would not move the partition back to the first event the store lacks.
    #[error("cannot rewind partition {partition} to offset {offset}: {source}")]
    Seek {
        partition: i32,
        offset: i64,
        source: rdkafka::error::KafkaError,
    },
    /// The worker's task panicked: a bug, reported as one.
    #[error("a partition worker panicked: {0}")]
    Panicked(String),
}

/// How often a worker waiting for a previous owner to release the partition's state says so.
const STILL_HELD_WARNING: Duration = Duration::from_secs(30);
/// How long a rewind to the store checkpoint may take.
const SEEK_TIMEOUT: Duration = Duration::from_secs(5);
/// How often the partition's projections are compared with the store, so they recover
/// from a Redis outage or data loss even without new events.
const PROJECTION_REFRESH: Duration = Duration::from_secs(2);
/// Batches whose decisions may still be in delivery while the next batch is applied.
const DELIVERIES_IN_FLIGHT: usize = 4;

pub struct Worker<S: Store> {
    shared: Arc<Shared<S>>,
    partition: i32,
    id: u64,
    messages: mpsc::UnboundedReceiver<OwnedMessage>,
    flow: Arc<Flow>,
    revoked: CancellationToken,
    /// The previous worker of this partition in this process, until it has let go.
    predecessor: Option<oneshot::Receiver<()>>,
    /// The partition's store once open, and its checkpoint.
    state: PartitionState<S>,
    /// Why nothing more of the partition is applied, when so: events it needs are gone
    /// from Kafka ([`Worker::hold_gap`]), one is of an unknown schema version
    /// ([`Worker::hold_unknown_version`]), one is for a property whose state is on
    /// another partition ([`Worker::hold_moved`]), or the topic has no accepted partition
    /// map to tell ([`Worker::hold_unaccepted`]).
    held: Option<&'static str>,
    /// Per stored batch still in delivery, in offset order: resolves to the next offset
    /// once its decisions and dead letters are delivered, or to `None` if they were given
    /// up (after `abandon`), when no later offset may be committed either.
    delivering: FuturesOrdered<BoxFuture<'static, Option<i64>>>,
    /// Cancelled when the worker ends: deliveries still failing stop being retried.
    abandon: CancellationToken,
    /// Never sent on: dropped right after the store (or with the worker, after the store:
    /// fields drop in order), it tells a successor that the partition's state is free.
    released: Option<oneshot::Sender<()>>,
}

impl<S: Store> Worker<S> {
    /// The worker of `partition` (its `id` tells it from its successors), not started,
    /// and the handle through which the consume loop feeds it, pauses it and revokes it.
    /// `predecessor` resolves once the partition's previous worker in this process has
    /// released its state.
    pub fn new(
        shared: Arc<Shared<S>>,
        partition: i32,
        id: u64,
        predecessor: Option<oneshot::Receiver<()>>,
    ) -> (Worker<S>, WorkerHandle) {
        let (sender, messages) = mpsc::unbounded_channel();
        let (released, on_release) = oneshot::channel();
        let flow = Arc::new(Flow::new(&shared.topic, partition, shared.max_batch));
        let revoked = CancellationToken::new();
        let handle = WorkerHandle {
            id,
            messages: sender,
            flow: flow.clone(),
            revoked: revoked.clone(),
            released: on_release,
        };
        let worker = Worker {
            state: PartitionState::new(partition, shared.poison_tries),
            shared,
            partition,
            id,
            messages,
            flow,
            revoked,
            predecessor,
            held: None,
            delivering: FuturesOrdered::new(),
            abandon: CancellationToken::new(),
            released: Some(released),
        };
        (worker, handle)
    }

    /// Runs until the partition is revoked, the process stops, or something that would
    /// make it skip events: a store error retries cannot cure, or a failed rewind
    /// (returned, and the process stops).
    pub async fn run(mut self) -> Result<(), WorkerError> {
        if let Some(predecessor) = self.predecessor.take() {
            // Err only means the predecessor is gone, which is what is waited for.
            let _ = predecessor.await;
        }
        if !self.open().await? {
            return Ok(());
        }
        let shared = self.shared.clone();
        let mut refresh = tokio::time::interval(PROJECTION_REFRESH);
        refresh.reset();
        let mut messages = Vec::with_capacity(shared.max_batch);
        loop {
            tokio::select! {
                biased;
                () = self.revoked.cancelled() => break,
                () = shared.stopping.cancelled() => break,
                // Deliveries are retried until the worker ends, so none is given up here.
                Some(Some(next)) = self.delivering.next() => {
                    shared.assignment.stored(self.partition, self.id, next);
                }
                n = self.messages.recv_many(&mut messages, shared.max_batch),
                    if self.delivering.len() < DELIVERIES_IN_FLIGHT && self.held.is_none() => {
                    if n == 0 {
                        break;
                    }
                    self.flow.taken(n, &*shared.consumer);
                    let mut batch = PartitionBatch::decode(self.partition, std::mem::take(&mut messages));
                    let hold = placement_hold(&shared, self.partition, self.state.checkpoint, &batch).await?;
                    if let Some(hold) = &hold {
                        batch.end_before(hold.offset());
                    }
                    let unknown_version = batch.unknown_version;
                    if batch.through >= batch.first {
                        match self.process(batch).await {
                            Err(WorkerError::Store(StoreError::Locked { .. })) => {
                                self.lost();
                                break;
                            }
                            other => other?,
                        }
                    }
                    if let Some((offset, version)) = unknown_version {
                        self.hold_unknown_version(offset, version);
                    }
                    match hold {
                        Some(Hold::Moved(moved)) => self.hold_moved(moved),
                        Some(Hold::Unaccepted { offset, placement }) => {
                            self.hold_unaccepted(offset, &placement)
                        }
                        None => {}
                    }
                }
                _ = refresh.tick() => self.refresh_projections().await?,
            }
        }
        if let Some(reason) = self.held {
            metrics::partition_held(reason, false);
        }
        // Release the state first: a successor may be waiting for it.
        let partition = self.partition;
        self.state.release();
        drop(self.released.take());
        shared.projections.release(partition);
        info!(partition, "released partition");
        // What is in delivery is stored: wait for it, so the final commit covers it, up to
        // the first batch whose decisions could not be delivered.
        self.abandon.cancel();
        while let Some(Some(next)) = self.delivering.next().await {
            shared.assignment.stored(partition, self.id, next);
        }
        Ok(())
    }

    /// Opens the partition's state, waiting for a previous owner (another process,
    /// mid-rebalance, or paused while it still holds the state) to let go of it; false if
    /// the partition was revoked or the process stopped meanwhile.
    ///
    /// The wait has no deadline: the group gave this process the partition, and the only
    /// other process that can hold its state is a previous owner that has not yet noticed
    /// it lost it. Writing beside it is what the lock forbids; giving up would only restart
    /// this process into the same wait. The wait is visible as
    /// `consumer_partitions_awaiting_release`, and as a stalled partition if it lasts.
    async fn open(&mut self) -> Result<bool, StoreError> {
        let partition = self.partition;
        let mut waiting_since: Option<Instant> = None;
        let mut warned = Instant::now();
        let opened = loop {
            let shared = self.shared.clone();
            let opened = tokio::task::spawn_blocking(move || {
                let store = shared.store.open(partition)?;
                let checkpoint = store.checkpoint()?;
                Ok::<_, StoreError>((store, checkpoint))
            })
            .await
            .expect("opening a partition's state panicked");
            match opened {
                Err(StoreError::Locked { .. }) => {
                    if waiting_since.is_none() {
                        info!(
                            partition,
                            "partition state still held by its previous owner; waiting"
                        );
                        metrics::awaiting_release(true);
                        waiting_since = Some(Instant::now());
                    } else if warned.elapsed() >= STILL_HELD_WARNING {
                        warn!(partition, waited = ?waiting_since.map(|t| t.elapsed()), "partition state still held by another process");
                        warned = Instant::now();
                    }
                    tokio::select! {
                        () = self.revoked.cancelled() => break None,
                        () = self.shared.stopping.cancelled() => break None,
                        () = tokio::time::sleep(Duration::from_millis(200)) => {}
                    }
                }
                other => break Some(other),
            }
        };
        if waiting_since.is_some() {
            metrics::awaiting_release(false);
        }
        let Some(opened) = opened else {
            return Ok(false);
        };
        let (store, checkpoint) = opened?;
        info!(partition, ?checkpoint, "took ownership of partition");
        self.state.opened(store, checkpoint);
        self.shared
            .projections
            .check(&[(partition, checkpoint)])
            .await;
        Ok(true)
    }

    async fn process(&mut self, mut batch: PartitionBatch) -> Result<(), WorkerError> {
        let partition = self.partition;
        // The store, not Kafka, says what is applied. Should the group's committed offset
        // ever run ahead of the store (an offset committed by anything but this process, or
        // a store volume that lost or never had this partition's state), go back to the
        // event after the checkpoint instead of skipping events.
        if let Standing::Ahead { first_missing } =
            progress::standing(self.state.checkpoint, batch.first)
        {
            return self.rewind_or_hold(first_missing, batch.first).await;
        }
        let started = Instant::now();
        let stored = self.state.store_batch(&batch).await?;
        let recalled = if stored.applied.len() < batch.events.len() {
            self.state.recall_skipped(&batch, &stored).await?
        } else {
            Vec::new()
        };
        let previous = self.state.checkpoint;
        let through = previous.map_or(batch.through, |c| c.max(batch.through));
        self.state.checkpoint = Some(through);
        // Effects an earlier attempt committed without an answer never reached the
        // projections: they must be rebuilt from the store.
        if progress::effects_lost(previous, &batch.events, stored.replayed) {
            self.shared.projections.missed_effects(partition);
        }
        metrics::batch_stored(started.elapsed(), batch.events.len());
        record_latency(&batch.events);

        let projections = self.shared.projections.clone();
        let snapshot = if projections.needs_snapshot(partition) {
            Some(self.state.read(Snapshot::read).await?)
        } else {
            None
        };
        projections
            .write(partition, previous, through, &stored.applied, snapshot)
            .await;
        // Redis lost what this batch built on: rebuild now rather than leave a checkpoint
        // over missing projections until the next check.
        self.restore_stale_projections().await?;

        let mut decisions: Vec<_> = stored.applied.into_iter().map(|e| e.decision).collect();
        for decision in &decisions {
            metrics::event_applied(decision.outcome.as_str());
        }
        metrics::decisions_republished(recalled.len());
        decisions.extend(recalled);
        metrics::dead_letters("undecodable", batch.dead.len());
        metrics::dead_letters("unstorable", stored.poisoned.len());
        let mut dead = std::mem::take(&mut batch.dead);
        dead.extend(stored.poisoned);
        let delivered = self
            .shared
            .outbox
            .publish(
                &decisions,
                |offset| batch.reply_partition(offset),
                &dead,
                self.abandon.clone(),
            )
            .await;
        let next = batch.through + 1;
        self.delivering
            .push_back(delivered.map(move |ok| ok.then_some(next)).boxed());
        Ok(())
    }

    /// Seeks back to `expected`, the first offset the store has not applied, when Kafka
    /// still has it; holds the partition when retention deleted it first.
    async fn rewind_or_hold(&mut self, expected: i64, first: i64) -> Result<(), WorkerError> {
        let partition = self.partition;
        let shared = self.shared.clone();
        let watermarks = tokio::task::spawn_blocking(move || {
            use rdkafka::consumer::Consumer;
            shared
                .consumer
                .fetch_watermarks(&shared.topic, partition, SEEK_TIMEOUT)
        })
        .await
        .expect("reading watermarks panicked");
        match progress::catch_up(expected, watermarks.ok().map(|(low, _)| low)) {
            CatchUp::Gap { low } => {
                self.hold_gap(expected, low);
                Ok(())
            }
            CatchUp::Rewind => self.rewind(expected, first).await,
        }
    }

    async fn rewind(&mut self, expected: i64, first: i64) -> Result<(), WorkerError> {
        let partition = self.partition;
        warn!(
            partition,
            checkpoint = ?self.state.checkpoint, first, "kafka position is past the store checkpoint; rewinding"
        );
        let shared = self.shared.clone();
        let sought = tokio::task::spawn_blocking(move || {
            use rdkafka::consumer::Consumer;
            shared.consumer.seek(
                &shared.topic,
                partition,
                Offset::Offset(expected),
                SEEK_TIMEOUT,
            )
        })
        .await
        .expect("seeking panicked");
        sought.map_err(|source| {
            warn!(error = %source, partition, "rewind failed; stopping rather than skip events");
            WorkerError::Seek {
                partition,
                offset: expected,
                source,
            }
        })
    }

    /// Another process took this partition's state over (a newer ownership epoch) while
    /// the group still had it here: a successor mid-rebalance that this process has not
    /// heard of yet, or a maintenance command. Its write was refused, so nothing of it was
    /// stored. The partition is released, not the process: its other partitions go on,
    /// and the group's next assignment of this one, or
    /// [`RETAKE_AFTER`](crate::assignment::RETAKE_AFTER) with the group
    /// still giving it here, starts a new worker (gauge `consumer_partitions_held`,
    /// reason `fenced`, meanwhile).
    fn lost(&mut self) {
        let partition = self.partition;
        warn!(
            partition,
            "a newer owner took the partition's state over; releasing it until the group assigns it again"
        );
        if self.shared.assignment.lost(partition, self.id) {
            use rdkafka::consumer::Consumer;
            let mut list = rdkafka::TopicPartitionList::new();
            list.add_partition(&self.shared.topic, partition);
            if let Err(e) = self.shared.consumer.resume(&list) {
                warn!(error = %e, partition, "could not resume the lost partition's fetch");
            }
        }
    }

    /// Events `expected..low` were deleted from Kafka (retention, or a topic recreated)
    /// before this partition's store applied them. Applying what follows would decide
    /// bookings on state that misses them, so the partition stops here, loudly, while the
    /// process goes on serving its other partitions; the partition's lag grows and its
    /// stall alert fires. Only an operator can decide: restore the partition's state from
    /// a snapshot that covers the gap, or accept the loss with `consumer accept-gap`.
    fn hold_gap(&mut self, expected: i64, low: i64) {
        let partition = self.partition;
        error!(
            partition,
            checkpoint = ?self.state.checkpoint,
            first_available = low,
            "events {expected}..{} of partition {partition} were deleted from Kafka before they were applied; \
             holding the partition. Restore its state from a snapshot that covers them, or accept the loss with \
             `consumer accept-gap --partition {partition}` (consumers stopped) and restart",
            low - 1
        );
        self.hold("events_deleted");
    }

    /// The event at `offset` is of a schema version this build does not know (a newer
    /// ingress, mid rolling upgrade). Guessing at it could decide wrongly, and applying
    /// the property's later events without it would break their order, so the partition
    /// waits here for a consumer that knows the version: finishing the consumers' upgrade
    /// moves the partition to one.
    fn hold_unknown_version(&mut self, offset: i64, version: u16) {
        let partition = self.partition;
        error!(
            partition,
            offset,
            version,
            known = partitioner::SCHEMA_VERSION,
            "the event at offset {offset} of partition {partition} has schema version {version}, which this \
             build does not know; holding the partition until a consumer that knows it takes over: upgrade \
             the consumers (before the ingresses)"
        );
        self.hold("unknown_schema_version");
    }

    /// The event at `moved.offset` is for a property that the accepted partition map keeps
    /// on another partition, with its nights and bookings: deciding it here would start
    /// from nothing and could sell rooms already sold. The partition waits here until an
    /// operator has moved or written off that state and accepted the new map.
    fn hold_moved(&mut self, moved: Moved) {
        let partition = self.partition;
        error!(
            partition,
            offset = moved.offset,
            tenant = %moved.tenant_id,
            property = %moved.property_id,
            placement = %moved.placement,
            home = moved.home,
            "the event at offset {} of partition {partition} is for property {}/{}, which the partition map \
             {} moved here from partition {}, where its state is; holding the partition. Stop the consumers \
             and run `consumer accept-placement --placement '{}'` once that state is dealt with \
             (docs/OPERATIONS.md, \"Changing the partition map\")",
            moved.offset, moved.tenant_id, moved.property_id, moved.placement, moved.home, moved.placement
        );
        self.hold("property_moved");
    }

    /// The partition has state, the topic no accepted partition map, and the event at
    /// `offset` carries `placement`: whether that map built this state (an upgrade from a
    /// build that stamped none) or moved properties here, only an operator can tell.
    fn hold_unaccepted(&mut self, offset: i64, placement: &str) {
        let partition = self.partition;
        error!(
            partition,
            offset,
            placement,
            "partition {partition} has state but the topic has no accepted partition map, and the event at \
             offset {offset} was placed by {placement}; holding the partition. If that is the map this state \
             was built under, stop the consumers and run `consumer accept-placement --placement '{placement}'` \
             (docs/OPERATIONS.md, \"Changing the partition map\")"
        );
        self.hold("placement_unknown");
    }

    fn hold(&mut self, reason: &'static str) {
        if self.held.is_none() {
            metrics::partition_held(reason, true);
            self.held = Some(reason);
        }
    }

    /// Between batches: rebuilds the partition's projections if they differ from the
    /// store, so they recover even where no new events arrive.
    async fn refresh_projections(&mut self) -> Result<(), StoreError> {
        let projections = self.shared.projections.clone();
        projections
            .check(&[(self.partition, self.state.checkpoint)])
            .await;
        self.restore_stale_projections().await
    }

    /// Rebuilds the partition's projections from the store if they are stale (Redis lost
    /// writes, or an attempt committed effects whose answer was lost).
    async fn restore_stale_projections(&mut self) -> Result<(), StoreError> {
        let projections = self.shared.projections.clone();
        if projections.needs_snapshot(self.partition) {
            let snapshot = self.state.read(Snapshot::read).await?;
            projections.restore(self.partition, snapshot).await;
        }
        Ok(())
    }
}

/// Where `batch` must stop for the partition map (see [`crate::placement`]): the first
/// event of a property the accepted map keeps elsewhere, or, on a partition with state
/// while the topic has no accepted map, the first event that carries one. Reading the map
/// the first time is store I/O, retried like a store write.
async fn placement_hold<S: Store>(
    shared: &Arc<Shared<S>>,
    partition: i32,
    checkpoint: Option<i64>,
    batch: &PartitionBatch,
) -> Result<Option<Hold>, StoreError> {
    // A batch past the checkpoint is rewound and read again first (see `Worker::process`);
    // a batch with no stamped event after the checkpoint has nothing to check.
    let stamped =
        |(offset, e): &(i64, Envelope)| skip::is_new(checkpoint, *offset) && e.placement.is_some();
    let in_order = progress::standing(checkpoint, batch.first) == Standing::InOrder;
    if !in_order || !batch.events.iter().any(stamped) {
        return Ok(None);
    }
    if let Some(map) = shared.placement.cached() {
        let moved = placement::first_moved(&map, partition, checkpoint, &batch.events);
        return Ok(moved.map(Hold::Moved));
    }
    let shared = shared.clone();
    let events = batch.events.clone();
    tokio::task::spawn_blocking(move || {
        let retry = ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(100))
            .with_max_times(STORE_RETRIES);
        (|| {
            shared
                .placement
                .check(&shared.store, partition, checkpoint, &events)
        })
        .retry(retry)
        .sleep(std::thread::sleep)
        .when(|e| e.recovery() == Recovery::Retry)
        .notify(|e, after| warn!(error = %e, partition, ?after, "reading the accepted partition map failed; retrying"))
        .call()
    })
    .await
    .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
}

/// Records acceptance-to-store latency, from the ingress's timestamp in each event.
fn record_latency(events: &[(i64, Envelope)]) {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    for (_, envelope) in events {
        let ms = (now_ms - envelope.received_at_ms).max(0);
        metrics::accepted_to_stored(Duration::from_millis(ms as u64));
    }
}

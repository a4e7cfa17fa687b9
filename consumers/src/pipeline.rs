//! The consume loop: polls Kafka, hands each message to its partition's worker, and
//! commits the offsets the workers have stored.
//!
//! Partitions are applied in parallel, each in offset order by its own [`Worker`] task, so
//! one partition's store commit, Redis pipeline or decision deliveries never hold up
//! another. Only this loop polls the consumer (which also runs the rebalance callback and
//! the statistics); it never waits for a worker: a worker that falls behind pauses its
//! own partition ([`crate::flow`]). Kafka offsets are committed from what the workers
//! recorded after their store commits, every [`COMMIT_INTERVAL`] and at shutdown.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::error::KafkaResult;
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;
use tracing::{debug, error, warn};

use crate::assignment::Route;
use crate::flow::Flow;
use crate::metrics;
pub use crate::shared::{KafkaConsumer, Shared};
use crate::store::Store;
use crate::worker::{Worker, WorkerError};

/// How often stored offsets are committed to Kafka. The store checkpoint, not Kafka,
/// decides what is applied: a crash replays at most this much, and the replay is skipped.
pub const COMMIT_INTERVAL: Duration = Duration::from_millis(200);

pub struct Pipeline<S: Store> {
    shared: Arc<Shared<S>>,
    workers: JoinSet<Result<(), WorkerError>>,
}

impl<S: Store> Pipeline<S> {
    pub fn new(shared: Arc<Shared<S>>) -> Self {
        Pipeline {
            shared,
            workers: JoinSet::new(),
        }
    }

    /// Consumes until `shutdown` resolves or a worker fails, then stops every worker
    /// (each finishes the batch in hand) and commits what they stored.
    pub async fn run(
        &mut self,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> Result<(), WorkerError> {
        let consumer = self.shared.consumer.clone();
        let mut messages = consumer.stream();
        let mut commits = tokio::time::interval(COMMIT_INTERVAL);
        tokio::pin!(shutdown);
        let result = loop {
            tokio::select! {
                biased;
                () = &mut shutdown => break Ok(()),
                Some(ended) = self.workers.join_next() => {
                    if let Err(e) = worker_result(ended) {
                        break Err(e);
                    }
                }
                message = messages.next() => match message {
                    Some(message) => self.dispatch(message),
                    None => break Ok(()),
                },
                _ = commits.tick() => self.commit(CommitMode::Async),
            }
        };
        drop(messages);
        self.shared.stopping.cancel();
        while let Some(ended) = self.workers.join_next().await {
            if let Err(e) = worker_result(ended) {
                error!(error = %e, "partition worker failed while stopping");
            }
        }
        // Every store commit's offsets were committed asynchronously on the interval;
        // committing the stored positions synchronously makes sure the last ones reached
        // the broker, so the next owner starts exactly where the store stopped.
        let mut last = TopicPartitionList::new();
        for (partition, next) in self.shared.assignment.all_stored() {
            last.add_partition_offset(&self.shared.topic, partition, Offset::Offset(next))
                .expect("a fresh offset is valid");
        }
        if last.count() > 0 {
            if let Err(e) = consumer.commit(&last, CommitMode::Sync) {
                warn!(error = %e, "final offset commit failed; the store checkpoint covers it");
            }
        }
        self.shared.assignment.clear();
        result
    }

    /// Hands one message to its partition's worker, starting the worker on the first
    /// message after the partition is assigned.
    fn dispatch(&mut self, message: KafkaResult<BorrowedMessage<'_>>) {
        let message = match message {
            Ok(message) => message,
            Err(e) => {
                metrics::kafka_error("fetch");
                warn!(error = %e, "kafka error while consuming");
                return;
            }
        };
        let partition = message.partition();
        let (sender, flow) = match self.shared.assignment.route(partition) {
            Route::Worker(sender, flow) => (sender, flow),
            Route::Start { id, predecessor } => self.start(partition, id, predecessor),
            Route::Drop => {
                // A revoke handled in the same poll: the new owner reads it again.
                debug!(partition, "dropping a message of a revoked partition");
                return;
            }
        };
        // A closed channel means the worker ended; its result arrives through `workers`.
        if sender.send(message.detach()).is_ok() {
            flow.queued(&*self.shared.consumer);
        }
    }

    fn start(
        &mut self,
        partition: i32,
        id: u64,
        predecessor: Option<oneshot::Receiver<()>>,
    ) -> (
        mpsc::UnboundedSender<rdkafka::message::OwnedMessage>,
        Arc<Flow>,
    ) {
        let (worker, handle) = Worker::new(self.shared.clone(), partition, id, predecessor);
        let (sender, flow) = (handle.messages.clone(), handle.flow.clone());
        self.workers.spawn(worker.run());
        self.shared.assignment.started(partition, handle);
        (sender, flow)
    }

    /// Commits the offsets stored since the last commit. Async is enough: the store
    /// checkpoint, not Kafka, decides what is applied.
    fn commit(&self, mode: CommitMode) {
        let fresh = self.shared.assignment.to_commit();
        if fresh.is_empty() {
            return;
        }
        let mut list = TopicPartitionList::new();
        for &(partition, next) in &fresh {
            list.add_partition_offset(&self.shared.topic, partition, Offset::Offset(next))
                .expect("a fresh offset is valid");
        }
        if let Err(e) = self.shared.consumer.commit(&list, mode) {
            metrics::kafka_error("commit");
            warn!(error = %e, "offset commit failed; committing again on the next tick");
            self.shared.assignment.commit_failed(&fresh);
        }
    }
}

fn worker_result(
    ended: Result<Result<(), WorkerError>, tokio::task::JoinError>,
) -> Result<(), WorkerError> {
    ended.unwrap_or_else(|e| Err(WorkerError::Panicked(e.to_string())))
}

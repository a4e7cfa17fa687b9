//! Reading `booking-decisions` in a group of one's own, for the processes that project
//! decisions elsewhere (the partners' feeds, the webhook outbox): each batch is handed to
//! a handler that is retried with backoff until it succeeds, and only then are the
//! batch's offsets stored (and committed in the background). So a decision is never
//! passed over, and one read again after a crash or a rebalance is handed over again:
//! handlers must be idempotent per record (partition, offset).

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::ClientConfig;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use crate::config::{Config, StartAt};
use crate::{admin, metrics, Error};

/// Decisions taken from the topic before their handler is called.
const BATCH: usize = 500;
/// How long a batch waits to fill once it has a first decision.
const BATCH_WINDOW: Duration = Duration::from_millis(20);
const RETRY_FIRST: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(5);

/// A batch's records by partition, each partition's in the order read: what a handler
/// may do side by side, and what it must do in turn.
pub(crate) fn by_partition<'b, 'm>(
    batch: &'b [BorrowedMessage<'m>],
) -> BTreeMap<i32, Vec<&'b BorrowedMessage<'m>>> {
    let mut partitions: BTreeMap<i32, Vec<&BorrowedMessage<'m>>> = BTreeMap::new();
    for message in batch {
        partitions
            .entry(message.partition())
            .or_default()
            .push(message);
    }
    partitions
}

pub(crate) struct DecisionReader {
    consumer: StreamConsumer,
    ready: Arc<admin::InGroup>,
    admin: JoinHandle<()>,
    /// Names the process in logs and in `consumer_kafka_errors_total{kind}`.
    role: &'static str,
}

impl DecisionReader {
    /// Joins `group` on the decisions topic (starting at `start` if the group has no
    /// committed offsets) and serves the admin port on `admin_listener`.
    pub(crate) fn join(
        config: &Config,
        group: &str,
        start: StartAt,
        role: &'static str,
        admin_listener: TcpListener,
    ) -> Result<DecisionReader, Error> {
        let consumer: StreamConsumer = ClientConfig::new()
            .set("bootstrap.servers", &config.kafka_brokers)
            .set("group.id", group)
            // Offsets are stored by hand once a batch is handled, and committed from there
            // in the background.
            .set("enable.auto.offset.store", "false")
            .set("enable.auto.commit", "true")
            .set("auto.commit.interval.ms", "1000")
            .set("auto.offset.reset", start.as_str())
            .set("partition.assignment.strategy", "cooperative-sticky")
            .create()?;
        consumer.subscribe(&[&config.decisions_topic])?;
        let ready = Arc::new(admin::InGroup::new(true));
        let admin = tokio::spawn(partitioner::admin::serve(
            admin_listener,
            ready.clone(),
            std::future::pending(),
        ));
        info!(
            topic = config.decisions_topic,
            group, role, "reading decisions"
        );
        Ok(DecisionReader {
            consumer,
            ready,
            admin,
            role,
        })
    }

    /// Hands every batch to `handle` until `shutdown` resolves, then leaves the group.
    pub(crate) async fn run<E: std::fmt::Display>(
        self,
        shutdown: impl Future<Output = ()>,
        mut handle: impl for<'b> FnMut(&'b [BorrowedMessage<'_>]) -> BoxFuture<'b, Result<(), E>>,
    ) {
        tokio::pin!(shutdown);
        'batches: loop {
            let batch = tokio::select! {
                () = &mut shutdown => break,
                batch = self.next_batch() => batch,
            };
            let mut backoff = RETRY_FIRST;
            while let Err(error) = handle(&batch).await {
                warn!(%error, role = self.role, retry_in = ?backoff, "handling decisions failed; retrying the batch");
                tokio::select! {
                    () = &mut shutdown => break 'batches,
                    () = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(RETRY_MAX);
            }
            for message in &batch {
                // Refused for a partition revoked meanwhile: its next owner reads the
                // decision again, and the handler's guard keeps it from acting twice.
                if let Err(error) = self.consumer.store_offset_from_message(message) {
                    debug!(%error, partition = message.partition(), "offset not stored");
                }
            }
        }
        self.stop();
    }

    fn stop(self) {
        info!(role = self.role, "committing and leaving the group");
        self.ready.set(false);
        if let Err(error) = self.consumer.commit_consumer_state(CommitMode::Sync) {
            debug!(%error, "final commit of the offsets failed");
        }
        self.consumer.unsubscribe();
        self.admin.abort();
    }

    /// The next decisions: waits for one, then takes what arrives within
    /// [`BATCH_WINDOW`], up to [`BATCH`].
    async fn next_batch(&self) -> Vec<BorrowedMessage<'_>> {
        let mut batch = Vec::new();
        loop {
            match self.consumer.recv().await {
                Ok(message) => {
                    batch.push(message);
                    break;
                }
                Err(error) => {
                    metrics::kafka_error(self.role);
                    warn!(%error, role = self.role, "reading the decisions topic failed");
                    tokio::time::sleep(RETRY_FIRST).await;
                }
            }
        }
        let window = tokio::time::sleep(BATCH_WINDOW);
        tokio::pin!(window);
        while batch.len() < BATCH {
            tokio::select! {
                () = &mut window => break,
                received = self.consumer.recv() => match received {
                    Ok(message) => batch.push(message),
                    Err(_) => break,
                },
            }
        }
        batch
    }
}

//! The consumer side of the booking pipeline.
//!
//! A consumer process joins the `bookings` consumer group, owns the partitions it is
//! assigned and, for each, applies events in offset order with the pure state machine in
//! [`apply`], commits the effects and the partition checkpoint to the [`store`] in one
//! transaction, refreshes the Redis [`projection`]s, publishes decisions and dead letters
//! through the [`outbox`], and only then commits Kafka offsets ([`pipeline`]).
#![forbid(unsafe_code)]

pub mod admin;
pub mod apply;
pub mod assignment;
mod batch;
pub mod config;
pub mod context;
mod decision_reader;
pub mod feed;
pub mod flow;
pub mod lag;
pub mod maintenance;
pub mod metrics;
pub mod outbox;
mod partition_state;
pub mod pipeline;
pub mod placement;
pub mod projection;
pub mod replay;
pub mod shared;
pub mod stalled;
pub mod store;
pub mod topics;
pub mod webhook;
mod worker;

use std::future::Future;
use std::sync::Arc;

use rdkafka::consumer::Consumer;
use rdkafka::ClientConfig;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::info;

pub use config::Config;
use context::OwnershipContext;
use outbox::{Outbox, OutboxTopics};
use pipeline::{KafkaConsumer, Pipeline, Shared};
use projection::Projections;
use store::{Store, StoreError};
pub use worker::WorkerError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error(transparent)]
    Worker(#[from] WorkerError),
    #[error("consumer group {0} has {1} members running; stop the consumers first")]
    GroupActive(String, usize),
    /// A setting or file the process cannot start with, in words for the operator.
    #[error("{0}")]
    Setup(String),
    #[error("{0:?} is not a partition map: {1}")]
    Placement(String, partitioner::partition_map::PartitionMapError),
}

/// Consumes until `shutdown` resolves, then finishes the batches in hand, commits, releases
/// its partitions and leaves the group.
pub async fn run<S: Store>(
    config: Config,
    store: S,
    admin_listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> Result<(), Error> {
    let topic = config.bookings_topic.clone();
    let assignment = Arc::new(assignment::Assignment::default());
    let context = OwnershipContext {
        assignment: assignment.clone(),
        topic: topic.clone(),
    };
    let consumer: KafkaConsumer = ClientConfig::new()
        .set("bootstrap.servers", &config.kafka_brokers)
        .set("group.id", &config.group_id)
        // Offsets are committed by hand, after the store commit, and only those: nothing
        // may commit the position of a message that was polled but not stored.
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("enable.partition.eof", "false")
        .set("session.timeout.ms", config.session_timeout_ms.to_string())
        .set("fetch.wait.max.ms", config.fetch_wait_max_ms.to_string())
        .set(
            "heartbeat.interval.ms",
            (config.session_timeout_ms / 3).max(1).to_string(),
        )
        .set(
            "statistics.interval.ms",
            config.stats_interval_ms.to_string(),
        )
        .create_with_context(context)?;
    consumer.subscribe(&[&topic])?;
    let consumer = Arc::new(consumer);
    let shared = Arc::new(Shared {
        consumer: consumer.clone(),
        store,
        projections: Projections::new(&config.redis_url, &topic)?,
        outbox: Outbox::new(
            &config.kafka_brokers,
            OutboxTopics {
                source: &topic,
                decisions: &config.decisions_topic,
                replies: &config.replies_topic,
                dlq: &config.dlq_topic,
            },
            std::time::Duration::from_millis(config.decisions_linger_ms),
        )?,
        assignment,
        topic: topic.clone(),
        max_batch: config.max_batch.max(1),
        poison_tries: config.poison_tries,
        placement: Default::default(),
        stopping: CancellationToken::new(),
    });
    let ready = Arc::new(admin::InGroup::new(true));
    let admin = tokio::spawn(partitioner::admin::serve(
        admin_listener,
        ready.clone(),
        std::future::pending(),
    ));
    info!(topic, group = config.group_id, "consuming");

    let stalled = tokio::spawn(stalled::watch(
        consumer.clone(),
        topic.clone(),
        std::time::Duration::from_secs(config.stall_after_secs),
        shared.stopping.clone(),
    ));
    let result = Pipeline::new(shared.clone()).run(shutdown).await;
    stalled.abort();

    info!("shutting down: leaving the group");
    ready.set(false);
    consumer.unsubscribe();
    shared.outbox.flush();
    admin.abort();
    result.map_err(Error::from)
}

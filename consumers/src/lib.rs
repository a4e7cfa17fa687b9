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
pub mod config;
pub mod context;
pub mod lag;
pub mod maintenance;
pub mod metrics;
pub mod outbox;
pub mod pipeline;
pub mod projection;
pub mod replay;
pub mod store;
pub mod topics;

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use futures::StreamExt;
use metrics_exporter_prometheus::PrometheusHandle;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::ClientConfig;
use tokio::net::TcpListener;
use tracing::info;

pub use config::Config;
use context::OwnershipContext;
use outbox::Outbox;
use pipeline::Pipeline;
use projection::Projections;
use store::{Store, StoreError};

/// How often owned partitions' projections are compared with the store, so they recover
/// from a Redis outage or data loss even without new events.
const PROJECTION_REFRESH: std::time::Duration = std::time::Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("store: {0}")]
    Store(#[from] StoreError),
}

/// Consumes until `shutdown` resolves, then finishes the batch in hand, commits, releases
/// its partitions and leaves the group.
pub async fn run<S: Store>(
    config: Config,
    store: S,
    admin_listener: TcpListener,
    metrics: Option<PrometheusHandle>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), Error> {
    let topic = config.bookings_topic.clone();
    let owned = pipeline::new_owned();
    let context = OwnershipContext {
        owned: owned.clone(),
        topic: topic.clone(),
    };
    let consumer: StreamConsumer<OwnershipContext<S::Partition>> = ClientConfig::new()
        .set("bootstrap.servers", &config.kafka_brokers)
        .set("group.id", &config.group_id)
        // Offsets are committed by hand, after the store commit, and only those: nothing
        // may commit the position of a message that was polled but not stored.
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("enable.partition.eof", "false")
        .set(
            "statistics.interval.ms",
            config.stats_interval_ms.to_string(),
        )
        .create_with_context(context)?;
    consumer.subscribe(&[&topic])?;
    let mut projections = Projections::new(&config.redis_url, &topic)?;
    let outbox = Outbox::new(
        &config.kafka_brokers,
        &topic,
        &config.decisions_topic,
        &config.dlq_topic,
    )?;
    let ready = Arc::new(AtomicBool::new(true));
    let admin = tokio::spawn(admin::serve(admin_listener, metrics, ready.clone()));
    info!(topic, group = config.group_id, "consuming");

    let mut pipeline = Pipeline {
        stored: Default::default(),
        consumer: &consumer,
        store: &store,
        owned: owned.clone(),
        projections: &mut projections,
        outbox: &outbox,
        topic: &topic,
    };
    let mut batches = pipeline::batches(&consumer, config.max_batch);
    let mut refresh = tokio::time::interval(PROJECTION_REFRESH);
    tokio::pin!(shutdown);
    let result = loop {
        let batch = tokio::select! {
            biased;
            () = &mut shutdown => break Ok(()),
            batch = batches.next() => batch,
            _ = refresh.tick() => {
                if let Err(e) = pipeline.refresh_projections().await {
                    break Err(e);
                }
                continue;
            }
        };
        let Some(batch) = batch else { break Ok(()) };
        if let Err(e) = pipeline.process(batch).await {
            break Err(e);
        }
    };
    drop(batches);

    info!("shutting down: committing offsets and leaving the group");
    ready.store(false, Ordering::Relaxed);
    // Every batch's offsets were committed asynchronously; committing the stored
    // positions synchronously makes sure the last ones reached the broker.
    pipeline.commit_stored();
    consumer.unsubscribe();
    outbox.flush();
    owned.lock().expect("ownership lock poisoned").clear();
    admin.abort();
    result.map_err(Error::from)
}

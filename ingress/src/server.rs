//! Startup, the accept loops and graceful shutdown.
//!
//! [`run`] is the whole server: `main` and the integration tests call the same function,
//! the tests with port-0 listeners. Startup loads the partners, opens the producer and
//! learns the topic's partition count before the API listens at all (connections are
//! refused, not held: [`crate::api_socket`]); the admin port
//! answers from the first moment, so a probe can watch startup; once started, readiness
//! also follows the broker ([`crate::broker_watch`]). Shutdown stops accepting,
//! turns `/readyz` red, lets in-flight requests finish within the grace period, then
//! flushes the producer. A reload request (SIGHUP, in `main`) re-reads the partners file
//! while everything keeps running.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{Stream, StreamExt};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::Request;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use partitioner::partition_map::Overrides;
use partitioner::PartitionMap;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio::task::{JoinHandle, JoinSet};

use crate::admin::Health;
use crate::api_socket::ApiSocket;
use crate::auth::LivePartners;
use crate::broker_watch::watch_broker;
use crate::config::{Config, SinkKind};
use crate::decisions::{Replies, RepliesSource, ReplyPartitions, Waiters};
use crate::dedup::Dedup;
use crate::gate::Gate;
use crate::handler::{self, AppState};
use crate::mutate::Mutations;
use crate::null_sink::{NullSink, NULL_SINK_PARTITIONS};
use crate::publish::{EventSink, KafkaSettings, KafkaSink, TopicError};
use crate::ratelimit::RateLimits;
use crate::reads::Reads;
use crate::redis_link::RedisLink;
use crate::signing::SeenSignatures;
use crate::Error;

/// Headers a partner request may carry; hyper answers 431 beyond it.
const MAX_HEADERS: usize = 64;
/// Bounds a connection's read buffer, and with it the size of a request head.
const MAX_BUF_BYTES: usize = 64 * 1024;
/// The longest a shutdown waits for completed idempotency records to reach Redis: each
/// write is bounded by the Redis timeout, and the queue holds a few batches at most.
const RECORDS_FLUSH: Duration = Duration::from_secs(2);

/// Runs the ingress until `shutdown` resolves, then drains and flushes.
pub async fn run(
    config: Config,
    listener: impl Into<ApiSocket>,
    admin_listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> Result<(), Error> {
    run_with_reload(
        config,
        listener,
        admin_listener,
        shutdown,
        futures::stream::pending(),
    )
    .await
}

/// [`run`], re-reading the partners file each time `reload` yields.
pub async fn run_with_reload(
    config: Config,
    api: impl Into<ApiSocket>,
    admin_listener: TcpListener,
    shutdown: impl Future<Output = ()>,
    reload: impl Stream<Item = ()> + Send + 'static,
) -> Result<(), Error> {
    if let Err(error) = crate::metrics::install() {
        tracing::warn!(%error, "metrics recorder not installed; /metrics will answer 503");
    }
    let http = http_builder(&config);
    let health = Arc::new(Health::default());
    let admin = AdminServer::start(admin_listener, health.clone());

    tokio::pin!(shutdown);
    // A stop request during startup (a metadata fetch can take seconds) is obeyed at once.
    let started = tokio::select! {
        started = startup(&config) => Some(started),
        () = &mut shutdown => None,
    };
    let state = match started {
        Some(Ok(state)) => Arc::new(state),
        Some(Err(error)) => {
            admin.stop().await;
            return Err(error);
        }
        None => {
            tracing::info!("stopped during startup");
            admin.stop().await;
            return Ok(());
        }
    };
    // Only when waiting is on. A replies topic that cannot be read yet never stops the
    // API: the reader keeps trying on its own while waits are answered 202.
    let replies = if state.mutations.max_wait.is_zero() {
        None
    } else {
        let source = RepliesSource {
            brokers: &config.kafka_brokers,
            topic: &config.replies_topic,
            group: &config.replies_group,
        };
        let waiters = state.mutations.waiters.clone();
        match Replies::start(source, waiters, state.mutations.reply_partitions.clone()).await {
            Ok(replies) => Some(replies),
            Err(error) => {
                tracing::warn!(%error, "replies reader not started; requests asking Prefer: wait are answered 202");
                None
            }
        }
    };
    // Only now, so nobody's request waits through startup (see `ApiSocket`).
    let listener = match api.into().listen() {
        Ok(listener) => listener,
        Err(error) => {
            if let Some(replies) = replies {
                replies.stop();
            }
            admin.stop().await;
            return Err(Error::Startup(format!("listening for the API: {error}")));
        }
    };
    health.set_ready(true);
    tracing::info!(
        listen = %listener.local_addr().map_or_else(|e| e.to_string(), |a| a.to_string()),
        partitions = state.mutations.partitions.partitions(),
        partners = state.gate.partners.current().len(),
        "ingress ready"
    );
    let reloader = tokio::spawn(reload_partners(state.clone(), reload));
    let broker_watch = tokio::spawn(watch_broker(
        state.mutations.sink.clone(),
        health.clone(),
        config.broker_probe_interval(),
    ));

    let graceful = GracefulShutdown::new();
    let connections = serve_api(listener, &http, &state, &graceful, shutdown).await;
    health.set_ready(false);
    reloader.abort();
    broker_watch.abort();
    drain(&config, graceful, connections, state.mutations.sink.clone()).await;
    if tokio::time::timeout(RECORDS_FLUSH, state.mutations.dedup.flush())
        .await
        .is_err()
    {
        tracing::warn!(
            ?RECORDS_FLUSH,
            "idempotency records not all written to redis; their markers expire"
        );
    }
    // After the drain, so requests still waiting for a decision can get it.
    if let Some(replies) = replies {
        replies.stop();
    }
    admin.stop().await;
    tracing::info!("ingress stopped");
    Ok(())
}

/// Accepts partner connections until `shutdown` resolves, then closes the listener and
/// hands back the connections still open.
async fn serve_api(
    listener: TcpListener,
    http: &http1::Builder,
    state: &Arc<AppState>,
    graceful: &GracefulShutdown,
    shutdown: impl Future<Output = ()>,
) -> JoinSet<()> {
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => return connections,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => {
                    // Responses are small and latency-bound: never hold them for Nagle.
                    let _ = stream.set_nodelay(true);
                    let state = state.clone();
                    let service = service_fn(move |request: Request<Incoming>| {
                        let state = state.clone();
                        async move { Ok::<_, Infallible>(handler::handle(state, request).await) }
                    });
                    let connection = http.serve_connection(TokioIo::new(stream), service);
                    let connection = graceful.watch(connection);
                    connections.spawn(async move {
                        if let Err(error) = connection.await {
                            tracing::debug!(%error, "connection ended with an error");
                        }
                    });
                }
                Err(error) => {
                    tracing::warn!(%error, "accept failed");
                    // Out of file descriptors, typically: pause as the admin port does.
                    tokio::time::sleep(partitioner::admin::ACCEPT_BACKOFF).await;
                }
            },
        }
    }
}

/// Reloads the partners file on every item of `reload`, until the stream ends or the task is
/// aborted at shutdown. A failed reload is logged and counted by [`LivePartners::reload`].
async fn reload_partners(state: Arc<AppState>, reload: impl Stream<Item = ()> + Send + 'static) {
    let mut reload = std::pin::pin!(reload);
    while reload.next().await.is_some() {
        let state = state.clone();
        // Reading the file blocks; keep it off the async workers.
        if let Err(error) = tokio::task::spawn_blocking(move || state.gate.partners.reload()).await
        {
            tracing::error!(%error, "partners reload task failed");
        }
    }
}

/// Lets in-flight requests finish within the grace period, drops what is left, then
/// flushes the producer for whatever time the grace period has left (at least a second).
async fn drain(
    config: &Config,
    graceful: GracefulShutdown,
    mut connections: JoinSet<()>,
    sink: Arc<dyn EventSink>,
) {
    let grace = config.shutdown_grace();
    let deadline = Instant::now() + grace;
    tracing::info!(
        connections = graceful.count(),
        "shutting down: draining connections"
    );
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(?grace, "grace period over; dropping open connections");
    }
    connections.shutdown().await;

    // Every acknowledged event was already delivered; what is left are records whose
    // requests timed out. Flushing gives them their best chance to land.
    let flush_for = deadline
        .saturating_duration_since(Instant::now())
        .max(Duration::from_secs(1));
    match tokio::task::spawn_blocking(move || sink.flush(flush_for)).await {
        Ok(Ok(())) => tracing::info!("producer flushed"),
        Ok(Err(error)) => tracing::warn!(%error, "producer flush incomplete"),
        Err(error) => tracing::warn!(%error, "producer flush task failed"),
    }
}

/// Everything that must succeed before the API may accept a request.
async fn startup(config: &Config) -> Result<AppState, Error> {
    // Configuration is checked before the broker is contacted, so a typo is reported as
    // such even while the broker is down.
    let partners = LivePartners::load(&config.partners_file)?;
    let overrides: Overrides = config.hot_tenants.parse().map_err(TopicError::Overrides)?;
    // Only the URL is checked here: startup never waits for Redis, whose absence the
    // request path degrades around (see `redis_link`).
    let redis = RedisLink::new(&config.redis_url, config.redis_timeout())
        .map(Arc::new)
        .map_err(Error::RedisUrl)?;
    let (sink, partitions) = match config.sink {
        SinkKind::Kafka => kafka_sink(config, overrides).await?,
        SinkKind::Null => {
            tracing::warn!(
                "INGRESS_SINK=null: benchmark mode, every event is acknowledged and discarded"
            );
            let partitions = PartitionMap::new(NULL_SINK_PARTITIONS, overrides)
                .map_err(TopicError::Overrides)?;
            let sink: Arc<dyn EventSink> = Arc::new(NullSink::default());
            (sink, partitions)
        }
    };
    let dedup = Dedup::new(
        &config.idempotency_prefix,
        Some(redis.clone()),
        config.idempotency_local_entries,
        config.idempotency_ttl(),
        config.idempotency_lock(),
    );
    let seen_signatures = SeenSignatures::new(
        config.signature_replay_entries,
        Some(redis.clone()),
        &config.idempotency_prefix,
    );
    Ok(AppState {
        gate: Gate {
            partners,
            in_flight: Semaphore::new(config.max_in_flight),
            rate_limits: {
                let local = RateLimits::new(config.rate_limit_per_sec, config.rate_limit_burst);
                if config.rate_limit_shared {
                    local.shared(redis.clone(), &config.idempotency_prefix)
                } else {
                    local
                }
            },
            seen_signatures,
            max_body_bytes: config.max_body_bytes,
        },
        mutations: Mutations {
            dedup,
            sink,
            partitions,
            max_body_bytes: config.max_body_bytes,
            waiters: Arc::new(Waiters::default()),
            reply_partitions: Arc::new(ReplyPartitions::default()),
            // The null sink stores nothing, so no decision will ever come: waiting is off.
            max_wait: match config.sink {
                SinkKind::Kafka => config.max_wait(),
                SinkKind::Null => Duration::ZERO,
            },
        },
        reads: Reads { redis },
    })
}

/// The producer and the partition map of its topic, whose partition count the broker
/// tells.
async fn kafka_sink(
    config: &Config,
    overrides: Overrides,
) -> Result<(Arc<dyn EventSink>, PartitionMap), Error> {
    let settings = KafkaSettings {
        brokers: config.kafka_brokers.clone(),
        topic: config.bookings_topic.clone(),
        linger_ms: config.kafka_linger_ms,
        message_timeout_ms: config.kafka_message_timeout_ms,
        delivery_budget: config.delivery_budget(),
    };
    let sink = Arc::new(KafkaSink::new(&settings).map_err(Error::Producer)?);
    let timeout = config.metadata_timeout();
    let metadata_sink = sink.clone();
    // Metadata fetches block in librdkafka; keep them off the async workers.
    let partitions =
        tokio::task::spawn_blocking(move || metadata_sink.partition_map(timeout, overrides))
            .await
            .map_err(|e| Error::Startup(e.to_string()))??;
    Ok((sink, partitions))
}

fn http_builder(config: &Config) -> Arc<http1::Builder> {
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(config.header_read_timeout())
        .max_headers(MAX_HEADERS)
        .max_buf_size(MAX_BUF_BYTES)
        .keep_alive(true);
    Arc::new(builder)
}

/// The admin port ([`partitioner::admin`]), served from the first moment of [`run`] to
/// its last.
struct AdminServer {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl AdminServer {
    fn start(listener: TcpListener, health: Arc<Health>) -> Self {
        let (stop, mut stopped) = watch::channel(false);
        let stopped = async move {
            let _ = stopped.changed().await;
        };
        let task = tokio::spawn(partitioner::admin::serve(listener, health, stopped));
        AdminServer { stop, task }
    }

    async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

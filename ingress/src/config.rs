//! The ingress configuration: one typed struct, read from flags or `INGRESS_*` variables.
//!
//! This is the only place the process environment is read. Every field has a flag, an
//! environment variable and, except for the partners file, a default that suits a laptop
//! running the local stack. The partners file has no default on purpose: a forgotten
//! setting must stop the process, not quietly load the demo secrets.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};

#[derive(Clone, Debug, Parser)]
#[command(
    name = "ingress",
    version,
    about = "HTTP front door of the booking pipeline"
)]
pub struct Config {
    /// Address of the partner-facing API.
    #[arg(long, env = "INGRESS_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// Address of the admin port: /metrics, /healthz, /readyz.
    #[arg(long, env = "INGRESS_ADMIN_LISTEN", default_value = "127.0.0.1:9080")]
    pub admin_listen: SocketAddr,

    /// Kafka bootstrap servers, comma separated.
    #[arg(long, env = "INGRESS_KAFKA_BROKERS", default_value = "127.0.0.1:9092")]
    pub kafka_brokers: String,

    /// Where accepted events go: `kafka` (the only production setting) or `null`, a
    /// benchmark-only mode that acknowledges every event at once and stores nothing, to
    /// measure the ingress's own cost without a broker. Never run `null` for partners: its
    /// 202s are lies.
    #[arg(long, env = "INGRESS_SINK", value_enum, default_value_t = SinkKind::Kafka)]
    pub sink: SinkKind,

    /// Topic every booking and inventory event is published to.
    #[arg(long, env = "INGRESS_BOOKINGS_TOPIC", default_value = "bookings")]
    pub bookings_topic: String,

    /// Hot-tenant overrides pinning a tenant to its own partition range, in the syntax of
    /// `partitioner::PartitionMap`; empty means every tenant shares all partitions.
    #[arg(long, env = "INGRESS_HOT_TENANTS", default_value = "")]
    pub hot_tenants: String,

    /// JSON file listing partners, their key hashes, tenants and scopes (see
    /// infra/dev-partners.json for the format). Required: there is no safe default.
    /// Re-read on SIGHUP; a file that does not load keeps the partners in force.
    #[arg(long, env = "INGRESS_PARTNERS_FILE")]
    pub partners_file: PathBuf,

    /// How long a request waits for the broker's delivery report before answering 503.
    /// 50 ms leaves headroom under the 60 ms p99 publish target for parsing, validation
    /// and the network; a later report still lands the event, which is safe because its id
    /// is deterministic and consumers drop duplicates.
    #[arg(long, env = "INGRESS_DELIVERY_BUDGET_MS", default_value_t = 50)]
    pub delivery_budget_ms: u64,

    /// librdkafka `linger.ms`: how long the producer waits to batch records. Small, because
    /// every record has a partner waiting on it.
    #[arg(long, env = "INGRESS_KAFKA_LINGER_MS", default_value_t = 1)]
    pub kafka_linger_ms: u32,

    /// librdkafka `message.timeout.ms`: how long the producer keeps retrying a record.
    /// Deliberately far above the delivery budget: giving up on a record early would not
    /// make it safer, only make the producer's retries (and ordering) less useful.
    #[arg(
        long,
        env = "INGRESS_KAFKA_MESSAGE_TIMEOUT_MS",
        default_value_t = 30_000
    )]
    pub kafka_message_timeout_ms: u32,

    /// How long startup waits for the topic's metadata before giving up.
    #[arg(long, env = "INGRESS_METADATA_TIMEOUT_MS", default_value_t = 10_000)]
    pub metadata_timeout_ms: u64,

    /// How often the broker is asked for the topic's metadata to decide readiness; two
    /// unanswered probes in a row (each may take this long) make /readyz answer 503
    /// until one is answered again.
    #[arg(long, env = "INGRESS_BROKER_PROBE_INTERVAL_MS", default_value_t = 1_000,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub broker_probe_interval_ms: u64,

    /// Topic the consumers copy a decision to when its request waits for it (`Prefer:
    /// wait=N`), in the partition the request named. Each ingress reads only the
    /// partitions its group gives it, so it needs at least as many partitions as there are
    /// ingresses; an ingress given none answers waiting requests 202 at once.
    #[arg(long, env = "INGRESS_REPLIES_TOPIC", default_value = "booking-replies")]
    pub replies_topic: String,

    /// Consumer group the ingresses share to divide the replies topic's partitions: one
    /// per deployment reading the same topic.
    #[arg(long, env = "INGRESS_REPLIES_GROUP", default_value = "ingress-replies")]
    pub replies_group: String,

    /// Longest a request asking `Prefer: wait=N` is held for its decision; a longer N is
    /// clamped to it. At most 5000 ms, the API's documented ceiling, because every waiting
    /// request holds an in-flight slot. 0 turns waiting off: the replies topic is not
    /// read and every mutation answers 202 at once.
    #[arg(long, env = "INGRESS_MAX_WAIT_MS", default_value_t = 5_000,
          value_parser = clap::value_parser!(u64).range(0..=5_000))]
    pub max_wait_ms: u64,

    /// Largest accepted request body; larger ones get 413.
    #[arg(long, env = "INGRESS_MAX_BODY_BYTES", default_value_t = 64 * 1024)]
    pub max_body_bytes: usize,

    /// Requests handled at once; beyond this the ingress answers 503 with Retry-After
    /// instead of queueing.
    #[arg(long, env = "INGRESS_MAX_IN_FLIGHT", default_value_t = 4096)]
    pub max_in_flight: usize,

    /// How long a client may take to send the request headers before the connection is
    /// closed, so idle or slow clients cannot pin connections.
    #[arg(long, env = "INGRESS_HEADER_READ_TIMEOUT_MS", default_value_t = 5_000)]
    pub header_read_timeout_ms: u64,

    /// On SIGTERM, how long in-flight requests may take to finish before connections are
    /// dropped and the producer flushed.
    #[arg(long, env = "INGRESS_SHUTDOWN_GRACE_SECS", default_value_t = 10)]
    pub shutdown_grace_secs: u64,

    /// Redis holding the shared idempotency records and the consumers' projections: one
    /// URL for a single node, or two or more comma-separated seed URLs of a Redis Cluster.
    /// Startup does not wait for it: without Redis the ingress keeps accepting mutations
    /// (deduplicated by this process alone) and answers reads with 503.
    #[arg(
        long,
        env = "INGRESS_REDIS_URL",
        default_value = "redis://127.0.0.1:6379/"
    )]
    pub redis_url: String,

    /// Longest wait for one Redis command. Short, because the idempotency check sits on
    /// the request path inside the delivery budget; on expiry the local tier decides.
    #[arg(long, env = "INGRESS_REDIS_TIMEOUT_MS", default_value_t = 25)]
    pub redis_timeout_ms: u64,

    /// First part of every idempotency record's Redis key, `{prefix}:{partner}:{key}`,
    /// so that deployments (or test runs) sharing one Redis cannot see each other's keys.
    #[arg(long, env = "INGRESS_IDEMPOTENCY_PREFIX", default_value = "idem")]
    pub idempotency_prefix: String,

    /// How long a completed request's answer is kept for replay under its
    /// Idempotency-Key, in this process and in Redis. 24 h covers any sane retry policy.
    #[arg(long, env = "INGRESS_IDEMPOTENCY_TTL_SECS", default_value_t = 86_400)]
    pub idempotency_ttl_secs: u64,

    /// How long an in-flight marker outlives a request that never finished (a crashed
    /// replica), after which the key can be claimed again. Well above the delivery budget.
    #[arg(long, env = "INGRESS_IDEMPOTENCY_LOCK_MS", default_value_t = 10_000)]
    pub idempotency_lock_ms: u64,

    /// Most idempotency records kept in this process (the local tier); the oldest and
    /// least used go first. About 1 KB each.
    #[arg(
        long,
        env = "INGRESS_IDEMPOTENCY_LOCAL_ENTRIES",
        default_value_t = 100_000
    )]
    pub idempotency_local_entries: u64,

    /// Sustained requests per second each partner may send (token-bucket refill rate).
    #[arg(long, env = "INGRESS_RATE_LIMIT_PER_SEC", default_value_t = 1_000,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub rate_limit_per_sec: u32,

    /// Requests a partner may send at once above the sustained rate (bucket size).
    #[arg(long, env = "INGRESS_RATE_LIMIT_BURST", default_value_t = 2_000,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub rate_limit_burst: u32,

    /// Keep each partner's bucket in Redis, so the limit holds across every ingress
    /// replica instead of per replica; costs one Redis round trip per request. While
    /// Redis does not answer, each replica's own bucket decides.
    #[arg(long, env = "INGRESS_RATE_LIMIT_SHARED", default_value_t = false)]
    pub rate_limit_shared: bool,

    /// Most request signatures remembered to refuse their replay (partners that sign
    /// only). Each is kept for ten minutes, the life of a signature's ±300 s window; size
    /// it above the signed requests one process takes in ten minutes (about 150 bytes
    /// each), since a full cache forgets its oldest entries first.
    #[arg(
        long,
        env = "INGRESS_SIGNATURE_REPLAY_ENTRIES",
        default_value_t = 1_000_000
    )]
    pub signature_replay_entries: u64,

    /// Log line format.
    #[arg(long, env = "INGRESS_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Which log lines to keep, in `tracing_subscriber::EnvFilter` syntax. Read from the
    /// conventional RUST_LOG rather than an INGRESS_ name, as every Rust tool does.
    #[arg(long, env = "RUST_LOG", default_value = "info")]
    pub log_filter: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SinkKind {
    // Publish to the bookings topic and answer on the broker's acknowledgement.
    Kafka,
    // Benchmark only: acknowledge at once, store nothing (see `ingress::null_sink`).
    Null,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

impl Config {
    pub fn delivery_budget(&self) -> Duration {
        Duration::from_millis(self.delivery_budget_ms)
    }

    pub fn metadata_timeout(&self) -> Duration {
        Duration::from_millis(self.metadata_timeout_ms)
    }

    pub fn broker_probe_interval(&self) -> Duration {
        Duration::from_millis(self.broker_probe_interval_ms)
    }

    pub fn header_read_timeout(&self) -> Duration {
        Duration::from_millis(self.header_read_timeout_ms)
    }

    pub fn redis_timeout(&self) -> Duration {
        Duration::from_millis(self.redis_timeout_ms)
    }

    pub fn idempotency_ttl(&self) -> Duration {
        Duration::from_secs(self.idempotency_ttl_secs)
    }

    pub fn idempotency_lock(&self) -> Duration {
        Duration::from_millis(self.idempotency_lock_ms)
    }

    pub fn max_wait(&self) -> Duration {
        Duration::from_millis(self.max_wait_ms)
    }

    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_secs(self.shutdown_grace_secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_need_only_the_partners_file() {
        let config = Config::try_parse_from(["ingress", "--partners-file", "p.json"]).unwrap();
        assert_eq!(config.listen, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(config.admin_listen, "127.0.0.1:9080".parse().unwrap());
        assert_eq!(config.bookings_topic, "bookings");
        assert_eq!(config.sink, SinkKind::Kafka);
        assert_eq!(config.delivery_budget(), Duration::from_millis(50));
        assert_eq!(config.max_body_bytes, 65_536);
        assert_eq!(config.log_format, LogFormat::Text);
        assert_eq!(config.redis_url, "redis://127.0.0.1:6379/");
        assert_eq!(config.idempotency_ttl(), Duration::from_secs(86_400));
        assert!(config.rate_limit_burst >= config.rate_limit_per_sec);
    }

    #[test]
    fn partners_file_is_required() {
        // Read from the flag only: the test must not depend on the caller's environment.
        let err = Config::try_parse_from(["ingress"]);
        if std::env::var_os("INGRESS_PARTNERS_FILE").is_none() {
            assert!(err.is_err());
        }
    }

    #[test]
    fn clap_definition_is_consistent() {
        use clap::CommandFactory;
        Config::command().debug_assert();
    }
}

//! The consumer's configuration: flags, each with an environment variable and a default.
//!
//! Nothing else in the crate reads the environment.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "consumer",
    version,
    about = "Applies booking events in partition order"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub config: Config,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Consume and apply events until SIGTERM (the default).
    Run,
    /// Create the pipeline's topics if missing and check the partition count of existing ones.
    EnsureTopics(TopicsArgs),
    /// Rewrite every Redis projection from the store (consumers of the store stopped).
    Rebuild,
    /// Report every Redis projection that disagrees with the store; exit 1 if any does.
    Reconcile,
    /// Append each decision to its partners' feeds in Redis (`GET /v1/decisions`), until
    /// SIGTERM: a group of its own on the decisions topic.
    Feed,
    /// POST each decision to its partners' webhook endpoints (the partners file's
    /// `webhook`), signed, retried, dead-lettered when it cannot be delivered; until
    /// SIGTERM: a group of its own on the decisions topic.
    Deliver,
    /// Put selected undeliverable decisions back into their partners' webhook outboxes,
    /// after the cause was fixed (the endpoint is back, its host allowed).
    ReplayWebhooks(ReplayWebhooksArgs),
    /// Print the group's lag per partition (log end minus committed offset), the signal
    /// the autoscaler scales consumers on.
    Lag(LagArgs),
    /// Re-publish selected dead letters to the partitions they came from (idempotent: the
    /// store drops an event it already applied).
    ReplayDlq(ReplayArgs),
    /// Accept that events of a held partition were deleted from Kafka before they were
    /// applied: it resumes at the first event Kafka still has (consumers of the store
    /// stopped).
    AcceptGap(AcceptGapArgs),
    /// Accept a new partition map (partition count and hot-tenant overrides) for the
    /// topic's state, releasing the partitions held because it moved a property there:
    /// only once the moved properties' state is dealt with (consumers of the store
    /// stopped).
    AcceptPlacement(AcceptPlacementArgs),
}

#[derive(Clone, Debug, Args)]
pub struct AcceptPlacementArgs {
    /// The map's placement, as the held partition's log line names it: the partition
    /// count, then `:` and the overrides if any (`24` or `24:acme=0..4,globex=4..6`).
    #[arg(long)]
    pub placement: String,
}

#[derive(Clone, Debug, Args)]
pub struct AcceptGapArgs {
    /// A partition of the bookings topic whose gap is accepted; repeat for several.
    #[arg(long = "partition", required = true)]
    pub partitions: Vec<i32>,
}

#[derive(Clone, Debug, Args)]
pub struct LagArgs {
    /// One line per call, `total=N | lag of partition 0, 1, …`, for watching it change.
    #[arg(long)]
    pub one_line: bool,
}

#[derive(Clone, Debug, Args)]
pub struct ReplayArgs {
    /// Only letters whose dlq-reason contains this text.
    #[arg(long)]
    pub reason_contains: Option<String>,
    /// Only letters from this partition of the bookings topic.
    #[arg(long)]
    pub source_partition: Option<i32>,
    /// Only the letter of this offset (with --source-partition: exactly one event).
    #[arg(long)]
    pub source_offset: Option<i64>,
    /// At most this many letters.
    #[arg(long)]
    pub limit: Option<usize>,
    /// List what would be replayed; publish nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// Where a consumer group without committed offsets starts reading.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum StartAt {
    Earliest,
    Latest,
}

impl StartAt {
    /// librdkafka's `auto.offset.reset` value.
    pub fn as_str(self) -> &'static str {
        match self {
            StartAt::Earliest => "earliest",
            StartAt::Latest => "latest",
        }
    }
}

#[derive(Clone, Debug, Args)]
pub struct ReplayWebhooksArgs {
    /// Only the letters of this partner.
    #[arg(long)]
    pub partner: Option<String>,
    /// Only letters whose dlq-reason contains this text (gone, refused, expired,
    /// backlog-full, host-not-allowed).
    #[arg(long)]
    pub reason_contains: Option<String>,
    /// List what would be replayed; change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Clone, Debug, Args)]
pub struct Config {
    /// Kafka bootstrap servers.
    #[arg(long, env = "CONSUMER_KAFKA_BROKERS", default_value = "127.0.0.1:9092")]
    pub kafka_brokers: String,
    /// Consumer group; every process of one group shares the partitions.
    #[arg(long, env = "CONSUMER_GROUP_ID", default_value = "booking-consumers")]
    pub group_id: String,
    #[arg(long, env = "CONSUMER_BOOKINGS_TOPIC", default_value = "bookings")]
    pub bookings_topic: String,
    #[arg(
        long,
        env = "CONSUMER_DECISIONS_TOPIC",
        default_value = "booking-decisions"
    )]
    pub decisions_topic: String,
    /// `consumer feed`: its consumer group on the decisions topic.
    #[arg(long, env = "CONSUMER_FEED_GROUP", default_value = "decision-feed")]
    pub feed_group: String,
    /// `consumer feed`: about how many entries each partner's feed keeps; a partner that
    /// leaves more unacknowledged loses the oldest (its next read reports the gap).
    #[arg(long, env = "CONSUMER_FEED_MAX_LEN", default_value_t = 100_000)]
    pub feed_max_len: u64,
    /// `consumer deliver`: the partners file the ingress reads; each partner's `webhook`
    /// is where its decisions are POSTed.
    #[arg(long, env = "CONSUMER_PARTNERS_FILE")]
    pub partners_file: Option<PathBuf>,
    /// `consumer deliver`: its consumer group on the decisions topic.
    #[arg(
        long,
        env = "CONSUMER_WEBHOOK_GROUP",
        default_value = "webhook-delivery"
    )]
    pub webhook_group: String,
    /// `consumer deliver`: where a new group (no committed offsets) starts on the
    /// decisions topic: `latest`, so a first deployment does not send partners every
    /// decision the topic still keeps; `earliest` sends them all.
    #[arg(long, env = "CONSUMER_WEBHOOK_START", value_enum, default_value_t = StartAt::Latest)]
    pub webhook_start: StartAt,
    /// `consumer deliver`: where decisions that cannot be delivered go, with the reason
    /// in their headers (`consumer replay-webhooks` puts them back).
    #[arg(
        long,
        env = "CONSUMER_WEBHOOK_DLQ_TOPIC",
        default_value = "booking-decisions-webhook-dlq"
    )]
    pub webhook_dlq_topic: String,
    /// `consumer deliver`: endpoint hosts that may be contacted besides loopback, comma
    /// separated; `*.example.com` allows its subdomains. A partner whose endpoint is
    /// elsewhere gets its decisions dead-lettered (host-not-allowed) instead.
    #[arg(
        long,
        env = "CONSUMER_WEBHOOK_ALLOWED_HOSTS",
        value_delimiter = ',',
        default_value = ""
    )]
    pub webhook_allowed_hosts: Vec<String>,
    /// `consumer deliver`: how long a decision is retried, from when it was taken in,
    /// before it is dead-lettered (expired).
    #[arg(
        long,
        env = "CONSUMER_WEBHOOK_RETRY_FOR_SECS",
        default_value_t = 86_400
    )]
    pub webhook_retry_for_secs: u64,
    /// `consumer deliver`: the first retry's delay; each next one doubles, with jitter.
    #[arg(
        long,
        env = "CONSUMER_WEBHOOK_BACKOFF_FIRST_MS",
        default_value_t = 1_000
    )]
    pub webhook_backoff_first_ms: u64,
    /// `consumer deliver`: the longest delay between two attempts (a `Retry-After` may
    /// ask for longer).
    #[arg(long, env = "CONSUMER_WEBHOOK_BACKOFF_MAX_SECS", default_value_t = 600)]
    pub webhook_backoff_max_secs: u64,
    /// `consumer deliver`: how long one attempt may take, connecting included.
    #[arg(long, env = "CONSUMER_WEBHOOK_TIMEOUT_MS", default_value_t = 10_000)]
    pub webhook_timeout_ms: u64,
    /// `consumer deliver`: the most undelivered decisions a partner's outbox holds; past
    /// it, new ones are dead-lettered (backlog-full) rather than fill Redis.
    #[arg(
        long,
        env = "CONSUMER_WEBHOOK_BACKLOG_MAX",
        default_value_t = 1_000_000
    )]
    pub webhook_backlog_max: u64,
    /// Topic a decision is copied to when its sender waits for it, in the partition the
    /// event's `reply-partition` header names: the one the waiting ingress reads.
    #[arg(
        long,
        env = "CONSUMER_REPLIES_TOPIC",
        default_value = "booking-replies"
    )]
    pub replies_topic: String,
    #[arg(long, env = "CONSUMER_DLQ_TOPIC", default_value = "bookings-dlq")]
    pub dlq_topic: String,
    /// Where the consumer keeps its state: `embedded` (redb files under
    /// CONSUMER_STORE_DIR) or `scylla` (a ScyllaDB keyspace, whose schema is
    /// infra/scylla/schema.cql). `rebuild` and `reconcile` read the same store.
    #[arg(long, env = "CONSUMER_STORE", value_enum, default_value_t = StoreKind::Embedded)]
    pub store: StoreKind,
    /// ScyllaDB contact points, `host:port`, comma-separated (CONSUMER_STORE=scylla).
    #[arg(long, env = "CONSUMER_SCYLLA_URI", default_value = "127.0.0.1:9042")]
    pub scylla_uri: String,
    /// ScyllaDB keyspace holding the consumer's tables (CONSUMER_STORE=scylla).
    #[arg(
        long,
        env = "CONSUMER_SCYLLA_KEYSPACE",
        default_value = "booking_store"
    )]
    pub scylla_keyspace: String,
    /// Directory of the embedded store: one file per partition.
    #[arg(long, env = "CONSUMER_STORE_DIR", default_value = "data/store")]
    pub store_dir: PathBuf,
    /// Redis for the projections the ingress serves: one URL for a single node, or two or
    /// more comma-separated seed URLs of a Redis Cluster.
    #[arg(
        long,
        env = "CONSUMER_REDIS_URL",
        default_value = "redis://127.0.0.1:6379/"
    )]
    pub redis_url: String,
    /// Address of the admin server (`/metrics`, `/healthz`, `/readyz`).
    #[arg(long, env = "CONSUMER_ADMIN_ADDR", default_value = "127.0.0.1:9081")]
    pub admin_addr: SocketAddr,
    /// Most messages taken from Kafka per batch (across partitions).
    #[arg(long, env = "CONSUMER_MAX_BATCH", default_value_t = 500)]
    pub max_batch: usize,
    /// Tries, each on its own, of an event that fails to store the same way every time
    /// (not an I/O error) before it goes to the dead-letter topic and its partition moves on.
    #[arg(long, env = "CONSUMER_POISON_TRIES", default_value_t = 3)]
    pub poison_tries: u32,
    /// How long the decisions producer gathers records into one request (librdkafka
    /// `linger.ms`): fewer, larger requests cost the broker less; a decision is that much later.
    #[arg(long, env = "CONSUMER_DECISIONS_LINGER_MS", default_value_t = 10)]
    pub decisions_linger_ms: u64,
    /// Report a partition as stalled when events wait on it and the group's committed offset
    /// has not moved for this long (whoever owns it, if anyone); 0 turns the check off.
    #[arg(long, env = "CONSUMER_STALL_AFTER_SECS", default_value_t = 30)]
    pub stall_after_secs: u64,
    /// How long the broker waits for a silent member (a killed process) before moving its
    /// partitions to the others; heartbeats go every third of it. Shorter than
    /// librdkafka's 45 s, so a crashed consumer's partitions wait at most this long.
    #[arg(long, env = "CONSUMER_SESSION_TIMEOUT_MS", default_value_t = 10_000)]
    pub session_timeout_ms: u64,
    /// librdkafka `fetch.wait.max.ms`: the longest a fetch may wait at the broker for data.
    /// Kafka answers a fetch as soon as data arrives, so this bounds only idle fetches;
    /// librdkafka's default. Lower it only for a broker that holds fetches open while data
    /// is there (it delays every event's projection by up to this much).
    #[arg(long, env = "CONSUMER_FETCH_WAIT_MAX_MS", default_value_t = 500,
          value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub fetch_wait_max_ms: u64,
    /// How often librdkafka reports statistics, which carry the per-partition lag.
    #[arg(long, env = "CONSUMER_STATS_INTERVAL_MS", default_value_t = 5000)]
    pub stats_interval_ms: u64,
    /// Log filter, in `tracing_subscriber::EnvFilter` syntax.
    #[arg(long, env = "RUST_LOG", default_value = "info,librdkafka=warn")]
    pub log_filter: String,
}

impl Config {
    /// The configuration from `args` as on the command line (the program's name first),
    /// then the environment, then the defaults: for tools and tests that run a consumer in
    /// their own process.
    pub fn try_parse_from<I, T>(args: I) -> Result<Config, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        #[derive(Parser)]
        struct Only {
            #[command(flatten)]
            config: Config,
        }
        Only::try_parse_from(args).map(|only| only.config)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum StoreKind {
    Embedded,
    Scylla,
}

#[derive(Clone, Debug, Args)]
pub struct TopicsArgs {
    /// Partitions of the bookings topic; fixed for the topic's life, since it decides
    /// where each property's events go.
    #[arg(long, env = "TOPICS_BOOKINGS_PARTITIONS", default_value_t = 12)]
    pub bookings_partitions: i32,
    /// Partitions of the decisions and dead-letter topics.
    #[arg(long, env = "TOPICS_AUX_PARTITIONS", default_value_t = 3)]
    pub aux_partitions: i32,
    /// Replication factor: 1 on a single local broker, 3 in production.
    #[arg(long, env = "TOPICS_REPLICATION", default_value_t = 1)]
    pub replication: i32,
    /// Replicas that must have a write before acks=all acknowledges it; defaults to the
    /// replication factor minus one (at least 1).
    #[arg(long, env = "TOPICS_MIN_INSYNC_REPLICAS")]
    pub min_insync_replicas: Option<i32>,
    /// How long the bookings log is kept (retention.ms), in hours.
    #[arg(long, env = "TOPICS_BOOKINGS_RETENTION_HOURS", default_value_t = 168)]
    pub bookings_retention_hours: u64,
    /// How long decisions are kept, in hours.
    #[arg(long, env = "TOPICS_DECISIONS_RETENTION_HOURS", default_value_t = 168)]
    pub decisions_retention_hours: u64,
    /// Partitions of the replies topic: at least the most ingresses that run at once,
    /// since each reads its own.
    #[arg(long, env = "TOPICS_REPLIES_PARTITIONS", default_value_t = 12)]
    pub replies_partitions: i32,
    /// How long replies are kept, in hours: each matters for a few seconds.
    #[arg(long, env = "TOPICS_REPLIES_RETENTION_HOURS", default_value_t = 1)]
    pub replies_retention_hours: u64,
    /// How long dead letters are kept, in hours: long enough to fix the cause and replay.
    #[arg(long, env = "TOPICS_DLQ_RETENTION_HOURS", default_value_t = 720)]
    pub dlq_retention_hours: u64,
    /// Only check the topics; create nothing. Exits non-zero if one is missing or differs.
    #[arg(long)]
    pub check_only: bool,
}

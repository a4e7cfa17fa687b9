//! The settings of `loadtest bench-pipeline`.

use std::path::PathBuf;

#[derive(Clone, Debug, clap::Args)]
pub struct BenchPipelineArgs {
    /// The ingress binary (default: beside this one).
    #[arg(long)]
    pub ingress_bin: Option<PathBuf>,
    /// The consumer binary (default: beside this one).
    #[arg(long)]
    pub consumer_bin: Option<PathBuf>,
    #[arg(long, env = "LOADTEST_KAFKA_BROKERS", default_value = "127.0.0.1:9092")]
    pub brokers: String,
    #[arg(
        long,
        env = "LOADTEST_REDIS_URL",
        default_value = "redis://127.0.0.1:6379/"
    )]
    pub redis_url: String,
    #[arg(long, default_value = "infra/dev-partners.json")]
    pub partners_file: PathBuf,
    #[arg(
        long,
        env = "LOADTEST_PARTNER_KEY",
        default_value = "demo-ota-1-secret"
    )]
    pub partner_key: String,
    /// Loopback port of the server under test (each stage's in turn).
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    #[arg(long, default_value_t = 9080)]
    pub admin_port: u16,
    #[arg(long, default_value_t = 9081)]
    pub consumer_admin_port: u16,
    /// The consumer's store directory for stage 4.
    #[arg(long)]
    pub store_dir: PathBuf,
    /// Where the started servers log.
    #[arg(long, default_value = "target/bench-logs")]
    pub logs: PathBuf,
    /// Connections of the closed-loop generator and of wrk in stages 1 and 5.
    #[arg(long, default_value_t = 32)]
    pub connections: usize,
    /// Connections in stage 2: enough in flight to fill the producer's batches.
    #[arg(long, default_value_t = 128)]
    pub broker_connections: usize,
    /// Measured seconds of each saturation run (after the warm-up).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=600))]
    pub secs: u64,
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u64).range(0..=60))]
    pub warmup_secs: u64,
    /// Events of the raw producer baseline in stage 2.
    #[arg(long, default_value_t = 30_000)]
    pub raw_events: usize,
    /// Events of the consumer stage.
    #[arg(long, default_value_t = 10_000)]
    pub consumer_events: usize,
    /// Length of the open-loop run of stage 4.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..=600))]
    pub e2e_secs: u64,
    /// Watch one acknowledged create in this many until its projection shows.
    #[arg(long, default_value_t = 10)]
    pub sample_every: usize,
    /// Length of the memory soak of stage 5.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub soak_secs: u64,
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..=60))]
    pub rss_every_secs: u64,
    /// The ingress's local idempotency cache capacity (INGRESS_IDEMPOTENCY_LOCAL_ENTRIES).
    #[arg(long, default_value_t = 100_000)]
    pub dedup_entries: u64,
    /// `infra/kafka.sh`, to run Kafka's producer perf test as a second raw baseline in
    /// stage 2 (skipped, and said so, without it).
    #[arg(long)]
    pub kafka_sh: Option<PathBuf>,
    /// An unpacked Strimzi Kafka Bridge distribution (its `libs/` of jars), the
    /// HTTP-to-Kafka peer of stage 3. Maven Central does not serve the bridge itself, so a
    /// user brings the release archive; without it stage 3 says so and is skipped.
    #[arg(long, env = "KAFKA_BRIDGE_HOME")]
    pub kafka_bridge_home: Option<PathBuf>,
    /// The bridge's JVM heap.
    #[arg(long, default_value_t = 1024)]
    pub kafka_bridge_heap_mb: u32,
    /// Connections of every generator in stage 3, the same for the bridge and the
    /// ingress (the bridge opens one Kafka producer per connection).
    #[arg(long, default_value_t = 128)]
    pub peer_connections: usize,
    /// Warm-up of the bridge in stage 3 before it is measured: long enough for the JVM's
    /// compilers on two busy cores (under wrk with 128 connections, back-to-back 15 s runs
    /// of a fresh bridge gave 1,680, 2,246, 3,488 and 3,091 requests/s). The ingress gets
    /// `--warmup-secs`, as everywhere.
    #[arg(long, default_value_t = 45, value_parser = clap::value_parser!(u64).range(0..=600))]
    pub bridge_warmup_secs: u64,
    /// The fixed open-loop rates of stage 3 (requests/s), each run against both servers,
    /// besides half of each one's saturation.
    #[arg(long, value_delimiter = ',', default_values_t = [1000.0, 2000.0, 5000.0])]
    pub peer_rates: Vec<f64>,
    /// Length of each fixed-rate run of stage 3.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=600))]
    pub peer_rate_secs: u64,
    /// The broker's PID, to report its CPU use beside ours.
    #[arg(long)]
    pub broker_pid: Option<u32>,
    /// Redis's PID, likewise (the ingress's idempotency tier talks to it per request).
    #[arg(long)]
    pub redis_pid: Option<u32>,
    /// Where to write the results as JSON.
    #[arg(long, default_value = "target/bench-pipeline.json")]
    pub out: PathBuf,
    /// Where to write the run's charts (SVG); beside the JSON if not given.
    #[arg(long)]
    pub charts_dir: Option<PathBuf>,
}

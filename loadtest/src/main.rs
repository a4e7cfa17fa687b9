//! The `loadtest` binary: `demo` pushes a demo load through a running pipeline, `verify`
//! checks the store against what the demo saw acknowledged.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use consumers::config::StoreKind;
use consumers::store::embedded::EmbeddedStore;
use consumers::store::scylla::ScyllaStore;
use loadtest::demo::{self, DemoConfig};
use loadtest::record::RunRecord;

#[derive(Debug, Parser)]
#[command(
    name = "loadtest",
    version,
    about = "Load and verification for the booking pipeline"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Log filter, in `tracing_subscriber::EnvFilter` syntax.
    #[arg(long, global = true, env = "RUST_LOG", default_value = "warn")]
    log_filter: String,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Push a demo load through the running ingress and print what happened.
    Demo(DemoArgs),
    /// Check the store against a run's acknowledged events (stop the consumers first).
    Verify(VerifyArgs),
    /// Consumer drain rate against the raw batched write rate of the store, same events.
    BenchConsumers(BenchArgs),
    /// Synthetic events straight to the bookings topic (builds consumer lag).
    Produce(ProduceArgs),
    /// A constant arrival rate against the ingress (open loop), with HDR percentiles.
    OpenLoop(OpenLoopArgs),
    /// Every stage beside its baseline in one run, printed as a table of ratios.
    BenchPipeline(Box<loadtest::bench_pipeline::BenchPipelineArgs>),
    /// The baseline of the ingress: a bare hyper server answering every request 202.
    BareHyper(BareHyperArgs),
    /// Draw a chart (SVG) from files a script collected during a run.
    #[command(subcommand)]
    Chart(loadtest::charts::cli::ChartCommand),
}

#[derive(Debug, clap::Args)]
struct BareHyperArgs {
    /// Loopback address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: std::net::SocketAddr,
}

#[derive(Debug, clap::Args)]
struct OpenLoopArgs {
    #[command(flatten)]
    partner: PartnerArgs,
    /// Requests per second.
    #[arg(long, default_value_t = 200.0)]
    rate: f64,
    /// Length of the run, in seconds (at most 3600).
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    duration_secs: u64,
    #[arg(long, default_value_t = 100)]
    properties: usize,
    /// Rooms on sale per property and night.
    #[arg(long, default_value_t = 50)]
    units: u32,
    /// Popularity skew: 1 is uniform, larger concentrates traffic on a few properties.
    #[arg(long, default_value_t = 2.0)]
    skew: f64,
    #[arg(long, default_value_t = 0.10)]
    modify_share: f64,
    #[arg(long, default_value_t = 0.05)]
    cancel_share: f64,
    #[arg(long, default_value_t = 0.05)]
    replay_share: f64,
    #[arg(long, default_value_t = 0.01)]
    invalid_share: f64,
    /// Requests in flight at most; a due request beyond it is shed and counted.
    #[arg(long, default_value_t = 1024)]
    max_in_flight: usize,
    #[arg(long, env = "LOADTEST_SEED")]
    seed: Option<u64>,
    /// Where to write the measured numbers as JSON.
    #[arg(long, default_value = "target/open-loop-result.json")]
    out: PathBuf,
    /// Where to save the run's acknowledged events for `verify`.
    #[arg(long, default_value = "target/open-loop-run.json")]
    record: PathBuf,
}

#[derive(Debug, clap::Args)]
struct ProduceArgs {
    #[arg(long, env = "LOADTEST_KAFKA_BROKERS", default_value = "127.0.0.1:9092")]
    brokers: String,
    #[arg(long, env = "LOADTEST_BOOKINGS_TOPIC", default_value = "bookings")]
    topic: String,
    /// The topic's partition count (events go where the ingress would put them).
    #[arg(long, default_value_t = 12)]
    partitions: u32,
    #[arg(long, default_value_t = 50_000)]
    events: usize,
    #[arg(long, default_value_t = 200)]
    properties: usize,
    /// Tenant of the events; their projections live under it in Redis.
    #[arg(long, default_value = "loadtest")]
    tenant: String,
    /// Mark every event as waited for, naming these many replies partitions in turn (as
    /// an ingress does for `Prefer: wait`), so the consumer copies each decision there.
    #[arg(long, default_value_t = 0)]
    reply_partitions: u32,
}

/// Where the load goes and as whom.
#[derive(Debug, clap::Args)]
struct PartnerArgs {
    #[arg(
        long,
        env = "LOADTEST_INGRESS_URL",
        default_value = "http://127.0.0.1:8080"
    )]
    ingress_url: String,
    /// The partner's API key (the local demo partner by default).
    #[arg(
        long,
        env = "LOADTEST_PARTNER_KEY",
        default_value = "demo-ota-1-secret"
    )]
    partner_key: String,
    /// The partner id behind the key, to derive the ids of refused creates.
    #[arg(long, env = "LOADTEST_PARTNER_ID", default_value = "ota-1")]
    partner_id: String,
}

#[derive(Debug, clap::Args)]
struct BenchArgs {
    #[arg(long, env = "LOADTEST_KAFKA_BROKERS", default_value = "127.0.0.1:9092")]
    brokers: String,
    #[arg(
        long,
        env = "LOADTEST_REDIS_URL",
        default_value = "redis://127.0.0.1:6379/"
    )]
    redis_url: String,
    #[arg(long, default_value_t = 50_000)]
    events: usize,
    #[arg(long, default_value_t = 200)]
    properties: usize,
    #[arg(long, default_value_t = 12)]
    partitions: i32,
    /// Events per store batch, and the consumer's batch cap.
    #[arg(long, default_value_t = 500)]
    batch: usize,
}

#[derive(Debug, clap::Args)]
struct DemoArgs {
    #[command(flatten)]
    partner: PartnerArgs,
    #[arg(
        long,
        env = "LOADTEST_REDIS_URL",
        default_value = "redis://127.0.0.1:6379/"
    )]
    redis_url: String,
    #[arg(long, env = "LOADTEST_BOOKINGS_TOPIC", default_value = "bookings")]
    bookings_topic: String,
    /// Creates to send (besides the contention burst).
    #[arg(long, default_value_t = 3000)]
    bookings: usize,
    #[arg(long, default_value_t = 20)]
    properties: usize,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Creates racing for the contended night.
    #[arg(long, default_value_t = 200)]
    contention_requests: usize,
    /// Rooms on sale on the contended night.
    #[arg(long, default_value_t = 5)]
    contention_rooms: u32,
    /// Seed of the traffic mix; the run id derives from it, so vary it between runs.
    #[arg(long, env = "LOADTEST_SEED")]
    seed: Option<u64>,
    /// How long to wait for the consumers to process the run.
    #[arg(long, default_value_t = 120)]
    wait_secs: u64,
    /// Where to save the run's acknowledged events for `verify`.
    #[arg(long, default_value = "target/demo-run.json")]
    record: PathBuf,
}

#[derive(Debug, clap::Args)]
struct VerifyArgs {
    /// The store the consumers wrote: `embedded` (its directory) or `scylla` (a CQL
    /// keyspace), read with the consumers' own settings.
    #[arg(long, env = "CONSUMER_STORE", value_enum, default_value_t = StoreKind::Embedded)]
    store: StoreKind,
    /// The consumers' store directory (embedded store).
    #[arg(long, env = "CONSUMER_STORE_DIR", required_if_eq("store", "embedded"))]
    store_dir: Option<PathBuf>,
    /// CQL contact points, `host:port`, comma-separated (scylla store).
    #[arg(long, env = "CONSUMER_SCYLLA_URI", default_value = "127.0.0.1:9042")]
    scylla_uri: String,
    #[arg(
        long,
        env = "CONSUMER_SCYLLA_KEYSPACE",
        default_value = "booking_store"
    )]
    scylla_keyspace: String,
    #[arg(long, default_value = "target/demo-run.json")]
    record: PathBuf,
    /// Also write the verdict as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match tracing_subscriber::EnvFilter::try_new(&cli.log_filter) {
        Ok(filter) => tracing_subscriber::fmt().with_env_filter(filter).init(),
        Err(e) => {
            eprintln!("error: invalid log filter {:?}: {e}", cli.log_filter);
            return ExitCode::from(64);
        }
    }
    let result = match cli.command {
        Command::Demo(args) => run_demo(args).await,
        // The CQL store's driver blocks on a runtime of its own.
        Command::Verify(args) => tokio::task::spawn_blocking(move || run_verify(args))
            .await
            .unwrap_or_else(|e| Err(e.into())),
        Command::BenchConsumers(args) => run_bench(args).await,
        Command::Produce(args) => run_produce(args).await,
        Command::OpenLoop(args) => run_open_loop(args).await,
        Command::BenchPipeline(args) => run_bench_pipeline(*args).await,
        Command::BareHyper(args) => run_bare_hyper(args).await,
        Command::Chart(command) => loadtest::charts::cli::run(command).map(|()| true),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run_demo(args: DemoArgs) -> anyhow::Result<bool> {
    loadtest::client::require_loopback(&args.partner.ingress_url)?;
    let seed = args.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
    });
    let config = DemoConfig {
        ingress_url: args.partner.ingress_url,
        partner_key: args.partner.partner_key,
        partner_id: args.partner.partner_id,
        redis_url: args.redis_url,
        bookings_topic: args.bookings_topic,
        bookings: args.bookings,
        properties: args.properties,
        concurrency: args.concurrency,
        contention_requests: args.contention_requests,
        contention_rooms: args.contention_rooms,
        seed,
        wait: Duration::from_secs(args.wait_secs),
    };
    println!(
        "demo: {} creates over {} properties, {} racing for {} last rooms, {} in flight, seed {seed}",
        config.bookings,
        config.properties,
        config.contention_requests,
        config.contention_rooms,
        config.concurrency
    );
    let report = demo::run(config).await?;
    report.record.save(&args.record)?;
    println!(
        "run {} (tenant {})",
        report.record.run_id, report.record.tenant_id
    );
    print!("{}", demo::summary(&report));
    println!("  acknowledged events saved to {}", args.record.display());
    Ok(report.settled_in.is_some() && report.failed == 0)
}

fn run_verify(args: VerifyArgs) -> anyhow::Result<bool> {
    let record = RunRecord::load(&args.record)?;
    let verdict = match args.store {
        StoreKind::Embedded => {
            let dir = args.store_dir.as_deref().expect("clap requires it");
            loadtest::verify::verify(&EmbeddedStore::new(dir)?, &record)?
        }
        StoreKind::Scylla => {
            let store = ScyllaStore::connect(&args.scylla_uri, &args.scylla_keyspace)?;
            loadtest::verify::verify(&store, &record)?
        }
    };
    println!("{verdict}");
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_vec_pretty(&verdict)?)?;
    }
    Ok(verdict.passed())
}

async fn run_bench(args: BenchArgs) -> anyhow::Result<bool> {
    let config = loadtest::bench::BenchConfig {
        brokers: args.brokers,
        redis_url: args.redis_url,
        events: args.events,
        properties: args.properties,
        partitions: args.partitions,
        batch: args.batch,
    };
    let result = loadtest::bench::consumers(config).await?;
    print!("{}", loadtest::bench::table(&result));
    Ok(true)
}

async fn run_produce(args: ProduceArgs) -> anyhow::Result<bool> {
    let map = partitioner::PartitionMap::parse(args.partitions, "")?;
    let events = loadtest::produce::synthetic_events(&args.tenant, args.events, args.properties);
    let produced = loadtest::produce::produce_waited(
        &args.brokers,
        &args.topic,
        &map,
        &events,
        args.reply_partitions,
    )
    .await?;
    println!(
        "produced {} events to {} in {:.2} s ({:.0} events/s) over {} partitions",
        produced.events,
        args.topic,
        produced.elapsed.as_secs_f64(),
        produced.rate(),
        produced.tops.len()
    );
    Ok(true)
}

async fn run_open_loop(args: OpenLoopArgs) -> anyhow::Result<bool> {
    loadtest::client::require_loopback(&args.partner.ingress_url)?;
    let config = loadtest::open_loop::OpenLoopConfig {
        ingress_url: args.partner.ingress_url,
        partner_key: args.partner.partner_key,
        partner_id: args.partner.partner_id,
        rate: args.rate,
        duration: Duration::from_secs(args.duration_secs),
        properties: args.properties,
        units: args.units,
        skew: args.skew,
        modify_share: args.modify_share,
        cancel_share: args.cancel_share,
        replay_share: args.replay_share,
        invalid_share: args.invalid_share,
        max_in_flight: args.max_in_flight,
        seed: args.seed.unwrap_or_else(rand::random),
    };
    let result = loadtest::open_loop::run(config).await?;
    print!("{}", loadtest::open_loop::summary(&result));
    if let Some(dir) = args.out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&args.out, serde_json::to_vec_pretty(&result)?)?;
    result.record.save(&args.record)?;
    let charts = loadtest::charts::open_loop::draw(&result, &args.out)?;
    println!(
        "  numbers in {}, acknowledged events in {} (check them with `loadtest verify`)",
        args.out.display(),
        args.record.display()
    );
    println!("  charts in {}", charts.join(", "));
    Ok(result.transport_errors == 0)
}

async fn run_bench_pipeline(
    args: loadtest::bench_pipeline::BenchPipelineArgs,
) -> anyhow::Result<bool> {
    let out = args.out.clone();
    let charts_dir = args
        .charts_dir
        .clone()
        .unwrap_or_else(|| out.parent().map_or_else(PathBuf::new, ToOwned::to_owned));
    let report = loadtest::bench_pipeline::run(args).await?;
    if let Some(peer) = &report.peer_table {
        println!();
        print!("{peer}");
    }
    println!();
    print!("{}", loadtest::ratios::table(&report.rows));
    println!();
    for note in &report.notes {
        println!("  {note}");
    }
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&out, serde_json::to_vec_pretty(&report.json)?)?;
    println!("  results in {}", out.display());
    for (name, svg) in &report.charts {
        let path = charts_dir.join(name);
        loadtest::charts::write(&path, svg)?;
        println!("  chart {}", path.display());
    }
    Ok(true)
}

async fn run_bare_hyper(args: BareHyperArgs) -> anyhow::Result<bool> {
    anyhow::ensure!(
        args.listen.ip().is_loopback(),
        "the baseline listens on loopback only"
    );
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    loadtest::bare::serve(listener).await?;
    Ok(true)
}

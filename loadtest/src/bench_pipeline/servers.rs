//! Starting the servers a stage measures, and watching them.

use std::path::Path;
use std::time::Duration;

use tokio::time::Instant;

use super::BenchPipelineArgs;
use crate::child::{self, Child};
use crate::closed_loop::{self, ClosedLoopConfig, ClosedLoopResult};

/// Longer than any stage, so no record expires while it is measured.
const BENCH_IDEMPOTENCY_TTL_SECS: u64 = 900;

/// Starts an ingress with the sink `sink` on `topic`, partner limits lifted, and waits
/// until it is ready.
pub(super) async fn start_ingress(
    args: &BenchPipelineArgs,
    bin: &Path,
    sink: &str,
    topic: &str,
    prefix: &str,
) -> anyhow::Result<Child> {
    let admin = format!("127.0.0.1:{}", args.admin_port);
    let env = [
        ("INGRESS_SINK", sink.to_owned()),
        ("INGRESS_LISTEN", format!("127.0.0.1:{}", args.port)),
        ("INGRESS_ADMIN_LISTEN", admin.clone()),
        (
            "INGRESS_PARTNERS_FILE",
            args.partners_file.display().to_string(),
        ),
        ("INGRESS_KAFKA_BROKERS", args.brokers.clone()),
        ("INGRESS_BOOKINGS_TOPIC", topic.to_owned()),
        ("INGRESS_REDIS_URL", args.redis_url.clone()),
        ("INGRESS_IDEMPOTENCY_PREFIX", format!("bench-{prefix}")),
        // Nothing replays a benchmark's keys after its run. At the default day the
        // records of one run (over a million: its soak alone sends 992,132 requests)
        // stayed in the local stack's Redis, which then held gigabytes and, restarted,
        // answered the next runs slowly while it loaded them back. The TTL's length
        // costs nothing per request.
        (
            "INGRESS_IDEMPOTENCY_TTL_SECS",
            BENCH_IDEMPOTENCY_TTL_SECS.to_string(),
        ),
        (
            "INGRESS_IDEMPOTENCY_LOCAL_ENTRIES",
            args.dedup_entries.to_string(),
        ),
        ("INGRESS_RATE_LIMIT_PER_SEC", "1000000".into()),
        ("INGRESS_RATE_LIMIT_BURST", "1000000".into()),
        ("INGRESS_KAFKA_LINGER_MS", LINGER_MS.to_string()),
        ("RUST_LOG", "warn".into()),
    ];
    let mut ingress = Child::spawn(&format!("ingress-{sink}"), bin, &[], &env, &args.logs)?;
    ingress
        .wait_until(Duration::from_secs(60), || child::ready(&admin))
        .await?;
    Ok(ingress)
}

/// Starts the Strimzi Kafka Bridge of the distribution at `home` on the port the ingress
/// would use, producing as the ingress does (`acks=all`, idempotence, its `linger.ms`),
/// with only the producer API enabled, and waits until it listens. Returns the process
/// and the bridge's version, read from its jar's name.
///
/// Two settings differ from the distribution's, both in the bridge's favour: its
/// per-request INFO line (`http.openapi.operation.send`) is off, as its own file already
/// has it for the health probes, and the JVM's common pool gets one thread per core: on
/// two cores the JVM sizes that pool at one, and then every `CompletableFuture.runAsync`
/// the bridge makes per request starts a thread of its own (measured: 2,561 against
/// 1,145 requests/s at 128 connections).
pub(super) async fn start_kafka_bridge(
    args: &BenchPipelineArgs,
    home: &Path,
) -> anyhow::Result<(Child, String)> {
    let version = std::fs::read_dir(home.join("libs"))
        .map_err(|e| anyhow::anyhow!("{}: not a Kafka Bridge distribution ({e})", home.display()))?
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .find_map(|name| {
            // `io.strimzi.kafka-bridge-0.33.1.jar` in the release archive.
            let version = name
                .trim_start_matches("io.strimzi.")
                .strip_prefix("kafka-bridge-")?
                .strip_suffix(".jar")?;
            Some(version.to_owned())
        })
        .ok_or_else(|| anyhow::anyhow!("{}/libs holds no kafka-bridge jar", home.display()))?;
    std::fs::create_dir_all(&args.logs)?;
    let config = args.logs.join("kafka-bridge.properties");
    std::fs::write(
        &config,
        format!(
            "bridge.id=bench-bridge\n\
             kafka.bootstrap.servers={brokers}\n\
             kafka.producer.acks=all\n\
             kafka.producer.enable.idempotence=true\n\
             kafka.producer.linger.ms={linger}\n\
             http.host=127.0.0.1\n\
             http.port={port}\n\
             http.consumer.enabled=false\n\
             http.producer.enabled=true\n",
            brokers = args.brokers,
            linger = LINGER_MS,
            port = args.port,
        ),
    )?;
    let logging = args.logs.join("kafka-bridge-log4j2.properties");
    let shipped = std::fs::read_to_string(home.join("config/log4j2.properties"))?;
    std::fs::write(
        &logging,
        format!(
            "{shipped}\nlogger.send.name = http.openapi.operation.send\n\
             logger.send.level = WARN\n"
        ),
    )?;
    let heap = format!("{}m", args.kafka_bridge_heap_mb);
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let jvm = [
        format!("-Xms{heap}"),
        format!("-Xmx{heap}"),
        format!("-Djava.util.concurrent.ForkJoinPool.common.parallelism={cores}"),
        format!("-Dlog4j2.configurationFile=file:{}", logging.display()),
        format!(
            "-Dvertx.cacheDirBase={}",
            args.logs.join("vertx-cache").display()
        ),
        "-classpath".into(),
        format!("{}/libs/*", home.display()),
        "io.strimzi.kafka.bridge.Application".into(),
        "--config-file".into(),
        config.display().to_string(),
    ];
    let jvm: Vec<&str> = jvm.iter().map(String::as_str).collect();
    let mut bridge = Child::spawn("kafka-bridge", Path::new("java"), &jvm, &[], &args.logs)?;
    let api = format!("127.0.0.1:{}", args.port);
    bridge
        .wait_until(Duration::from_secs(60), || child::listening(&api))
        .await?;
    Ok((bridge, version))
}

/// `linger.ms` of the ingresses and the bridge the bench starts: the ingress's default
/// (`INGRESS_KAFKA_LINGER_MS`), so both batch alike.
const LINGER_MS: u32 = 1;

/// Saturates a fresh null-sink ingress for the soak, sampling its RSS as it goes; returns
/// the load's result and the (seconds, KiB) samples, the first taken before any load.
pub(super) async fn soak(
    args: &BenchPipelineArgs,
    bin: &Path,
    run_id: &str,
    load: &ClosedLoopConfig,
) -> anyhow::Result<(ClosedLoopResult, Vec<(f64, u64)>)> {
    let ingress = start_ingress(args, bin, "null", "bookings", &format!("{run_id}-soak")).await?;
    let pid = ingress.pid();
    let started = Instant::now();
    let mut samples = vec![(0.0, child::rss_kib(pid).unwrap_or(0))];
    let load = tokio::spawn(closed_loop::run(load.clone()));
    let mut every = tokio::time::interval(Duration::from_secs(args.rss_every_secs));
    every.tick().await;
    while !load.is_finished() {
        every.tick().await;
        if let Some(kib) = child::rss_kib(pid) {
            samples.push((started.elapsed().as_secs_f64(), kib));
        }
    }
    let result = load.await??;
    if let Some(kib) = child::rss_kib(pid) {
        samples.push((started.elapsed().as_secs_f64(), kib));
    }
    ingress.stop().await?;
    Ok((result, samples))
}

/// CPU seconds each watched process used during one piece of work.
#[derive(Clone, Debug, serde::Serialize)]
pub struct CpuUse {
    pub secs: f64,
    pub used: Vec<(String, f64)>,
}

impl CpuUse {
    /// CPU seconds the process called `name` used.
    pub fn of(&self, name: &str) -> f64 {
        self.used
            .iter()
            .find(|(n, _)| n == name)
            .map_or(0.0, |(_, used)| *used)
    }
}

impl std::fmt::Display for CpuUse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shares: Vec<String> = self
            .used
            .iter()
            .map(|(name, used)| format!("{name} {:.0}%", used / self.secs * 100.0))
            .collect();
        write!(f, "CPU, % of one core: {}", shares.join(", "))
    }
}

/// Runs `work`, measuring the CPU the named processes, the broker, Redis and this process
/// (the generator) use meanwhile.
pub(super) async fn with_cpu<T>(
    pids: &[(&str, u32)],
    args: &BenchPipelineArgs,
    work: impl std::future::Future<Output = T>,
) -> (T, CpuUse) {
    let mut watched: Vec<(String, u32)> = pids.iter().map(|(n, p)| (n.to_string(), *p)).collect();
    watched.push(("generator".into(), std::process::id()));
    watched.extend(args.broker_pid.map(|pid| ("broker".to_owned(), pid)));
    watched.extend(args.redis_pid.map(|pid| ("redis".to_owned(), pid)));
    let before: Vec<Option<f64>> = watched.iter().map(|(_, p)| child::cpu_secs(*p)).collect();
    let started = Instant::now();
    let value = work.await;
    let secs = started.elapsed().as_secs_f64().max(1e-3);
    let used = watched
        .into_iter()
        .zip(before)
        .filter_map(|((name, pid), before)| Some((name, child::cpu_secs(pid)? - before?)))
        .collect();
    (value, CpuUse { secs, used })
}

/// Waits (at most 120 s) until the consumer group has applied the whole bookings topic,
/// so stage 4 does not measure an old backlog.
pub(super) async fn caught_up(consumer_bin: &Path, brokers: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut line = String::new();
    while Instant::now() < deadline {
        let output = tokio::process::Command::new(consumer_bin)
            .args(["lag", "--one-line"])
            .env("CONSUMER_KAFKA_BROKERS", brokers)
            .env("RUST_LOG", "error")
            .output()
            .await?;
        line = String::from_utf8_lossy(&output.stdout).trim().to_owned();
        if line.starts_with("total=0 |") {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    anyhow::bail!("the consumer did not catch up within 120 s: {line}")
}

pub(super) fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

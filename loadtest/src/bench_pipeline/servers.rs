//! Starting the servers a stage measures, and watching them.

use std::path::Path;
use std::time::Duration;

use tokio::time::Instant;

use super::BenchPipelineArgs;
use crate::child::{self, Child};
use crate::closed_loop::{self, ClosedLoopConfig, ClosedLoopResult};

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
        (
            "INGRESS_IDEMPOTENCY_LOCAL_ENTRIES",
            args.dedup_entries.to_string(),
        ),
        ("INGRESS_RATE_LIMIT_PER_SEC", "1000000".into()),
        ("INGRESS_RATE_LIMIT_BURST", "1000000".into()),
        ("RUST_LOG", "warn".into()),
    ];
    let mut ingress = Child::spawn(&format!("ingress-{sink}"), bin, &[], &env, &args.logs)?;
    ingress
        .wait_until(Duration::from_secs(60), || child::ready(&admin))
        .await?;
    Ok(ingress)
}

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

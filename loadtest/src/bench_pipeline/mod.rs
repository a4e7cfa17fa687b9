//! `loadtest bench-pipeline`: every stage beside its baseline, measured in one run on one
//! machine, so the ratios hold however busy the machine is.
//!
//! 1. the ingress with the null sink (`INGRESS_SINK=null`) against a bare hyper handler
//!    ([`crate::bare`]), both driven by the same closed-loop generator
//!    ([`crate::closed_loop`]) and by wrk ([`crate::wrk`]);
//! 2. the ingress publishing to the broker against the raw idempotent producer
//!    ([`crate::produce`]) and Kafka's own producer perf test, on one fresh topic;
//! 3. the ingress against the HTTP-to-Kafka bridge a user could deploy instead (the
//!    Strimzi Kafka Bridge) on the same Kafka: saturation, CPU per acknowledged request
//!    and latency at fixed rates ([`crate::fixed_rate`]), with 2's producers as the ceiling;
//! 4. the consumers against raw batched store writes ([`crate::bench`]);
//! 5. request-to-acknowledgement and accept-to-projection latency at half the whole
//!    pipeline's saturation on this machine, consumer included ([`crate::e2e`]);
//! 6. the ingress's resident memory over a soak of all-distinct Idempotency-Keys.
//!
//! It starts each server itself ([`crate::child`]) on the ports it is given, one at a
//! time, so a stage never shares the machine with another stage's server; the broker and
//! Redis must be running. Every partner limit is lifted for the ingresses it starts
//! (saturation is the point), and each gets an idempotency prefix of its own.

use std::path::Path;
use std::time::Duration;

use serde_json::json;

mod args;
mod kafka_perf;
mod peer;
pub(crate) mod peer_charts;
mod servers;
mod stages;

pub use args::BenchPipelineArgs;
use servers::{load_average, with_cpu};

use crate::closed_loop::{self, ClosedLoopConfig};
use crate::endpoint::Endpoint;
use crate::ratios::Row;
use crate::wrk;

pub struct Report {
    /// Stage 3's side-by-side table of the ingress and the bridge, when it ran.
    pub peer_table: Option<String>,
    pub rows: Vec<Row>,
    /// What bounded each stage: CPU shares and the like, printed under the table.
    pub notes: Vec<String>,
    pub json: serde_json::Value,
    /// Charts of the run as (file name, SVG).
    pub charts: Vec<(String, String)>,
}

const PROPERTIES: usize = 200;

/// One run's settings and what it has measured so far.
struct Bench {
    args: BenchPipelineArgs,
    /// This binary, which also serves the bare hyper baseline.
    here: std::path::PathBuf,
    ingress_bin: std::path::PathBuf,
    consumer_bin: std::path::PathBuf,
    /// Where every server under test listens.
    api: String,
    /// Keeps this run's topics, keys and bookings apart from earlier runs'.
    run_id: String,
    /// Stage 2's producers, the ceiling stage 3 is set under: events/s of the raw
    /// rdkafka producer and of Kafka's perf test (when it ran).
    ceilings: Vec<(&'static str, f64)>,
    peer_table: Option<String>,
    rows: Vec<Row>,
    notes: Vec<String>,
    json: serde_json::Map<String, serde_json::Value>,
    charts: Vec<(String, String)>,
}

pub async fn run(args: BenchPipelineArgs) -> anyhow::Result<Report> {
    let here = std::env::current_exe()?;
    let dir = here.parent().unwrap_or(Path::new(".")).to_owned();
    let mut bench = Bench {
        ingress_bin: args.ingress_bin.clone().unwrap_or(dir.join("ingress")),
        consumer_bin: args.consumer_bin.clone().unwrap_or(dir.join("consumer")),
        api: format!("127.0.0.1:{}", args.port),
        run_id: format!("{:08x}", rand::random::<u32>()),
        here,
        args,
        ceilings: Vec::new(),
        peer_table: None,
        rows: Vec::new(),
        notes: vec![format!("load average at start: {}", load_average())],
        json: serde_json::Map::new(),
        charts: Vec::new(),
    };
    bench.ingress_against_bare_hyper().await?;
    bench.ingress_against_raw_producer().await?;
    bench.ingress_against_kafka_bridge().await?;
    bench.consumers_against_raw_store().await?;
    bench.end_to_end_latency().await?;
    bench.memory_over_soak().await?;

    bench
        .notes
        .push(format!("load average at end: {}", load_average()));
    bench.json.insert("rows".into(), json!(bench.rows));
    bench.json.insert("notes".into(), json!(bench.notes));
    Ok(Report {
        peer_table: bench.peer_table,
        rows: bench.rows,
        notes: bench.notes,
        json: serde_json::Value::Object(bench.json),
        charts: bench.charts,
    })
}

/// A server saturated by our closed-loop generator, then by wrk.
pub(super) struct Saturated {
    ours: closed_loop::ClosedLoopResult,
    /// The server's CPU time per acknowledged answer in our generator's measured
    /// window, in microseconds.
    cpu_us: f64,
    wrk: Result<wrk::WrkResult, String>,
}

impl Bench {
    /// A closed loop of `connections` sending the ingress's creates to the server under
    /// test.
    fn saturate(&self, connections: usize, warmup: u64, secs: u64, tag: &str) -> ClosedLoopConfig {
        ClosedLoopConfig {
            addr: self.api.clone(),
            endpoint: Endpoint::ingress(&self.args.partner_key),
            connections,
            warmup: Duration::from_secs(warmup),
            duration: Duration::from_secs(secs),
            run_id: format!("{}-{tag}", self.run_id),
            properties: PROPERTIES,
        }
    }

    /// Stage 1's load: the ingress's creates over the configured connections.
    fn stage_one_load(&self, tag: &str) -> ClosedLoopConfig {
        let args = &self.args;
        self.saturate(args.connections, args.warmup_secs, args.secs, tag)
    }

    /// Saturates the running server `name` (process `pid`) with both generators, as
    /// stage `stage` and with `load`'s endpoint and connections, recording the CPU each
    /// run took.
    async fn saturate_with_both(
        &mut self,
        stage: u8,
        name: &str,
        pid: u32,
        load: ClosedLoopConfig,
    ) -> anyhow::Result<Saturated> {
        let args = &self.args;
        let pids = [(name, pid)];
        let (connections, endpoint) = (load.connections, load.endpoint.clone());
        let wrk_run_id = format!("{}-wrk", load.run_id);
        // The server's CPU is read over the measured window only: a JVM compiling its hot
        // code or a bridge opening a producer per connection during the warm-up is not
        // what a request costs once running.
        let warmup = load.warmup;
        let run = tokio::spawn(closed_loop::run(load));
        tokio::time::sleep(warmup).await;
        let (ours, cpu) = with_cpu(&pids, args, run).await;
        let ours = ours??;
        let cpu_us = cpu.of(name) * 1e6 / ours.ok.max(1) as f64;
        self.notes
            .push(format!("{stage} {name}, our generator: {cpu}"));
        let (wrk, cpu) = with_cpu(
            &pids,
            args,
            wrk::run(
                &format!("http://{}", self.api),
                connections,
                Duration::from_secs(args.secs),
                &endpoint,
                &wrk_run_id,
            ),
        )
        .await;
        self.notes.push(format!("{stage} {name}, wrk: {cpu}"));
        Ok(Saturated { ours, cpu_us, wrk })
    }
}

//! `loadtest bench-pipeline`: every stage beside its baseline, measured in one run on one
//! machine, so the ratios hold however busy the machine is.
//!
//! 1. the ingress with the null sink (`INGRESS_SINK=null`) against a bare hyper handler
//!    ([`crate::bare`]), both driven by the same closed-loop generator
//!    ([`crate::closed_loop`]) and by wrk ([`crate::wrk`]);
//! 2. the ingress publishing to the broker against the raw idempotent producer
//!    ([`crate::produce`]) and Kafka's own producer perf test, on one fresh topic;
//! 3. the consumers against raw batched store writes ([`crate::bench`]);
//! 4. request-to-acknowledgement and accept-to-projection latency at half the rate found
//!    in 2 ([`crate::e2e`]);
//! 5. the ingress's resident memory over a soak of all-distinct Idempotency-Keys.
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
mod servers;
mod stages;

pub use args::BenchPipelineArgs;
use servers::{load_average, with_cpu};

use crate::closed_loop::{self, ClosedLoopConfig};
use crate::ratios::Row;
use crate::wrk;

pub struct Report {
    pub rows: Vec<Row>,
    /// What bounded each stage: CPU shares and the like, printed under the table.
    pub notes: Vec<String>,
    pub json: serde_json::Value,
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
    rows: Vec<Row>,
    notes: Vec<String>,
    json: serde_json::Map<String, serde_json::Value>,
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
        rows: Vec::new(),
        notes: vec![format!("load average at start: {}", load_average())],
        json: serde_json::Map::new(),
    };
    bench.ingress_against_bare_hyper().await?;
    let published_rate = bench.ingress_against_raw_producer().await?;
    bench.consumers_against_raw_store().await?;
    bench.latency_at(published_rate / 2.0).await?;
    bench.memory_over_soak().await?;

    bench
        .notes
        .push(format!("load average at end: {}", load_average()));
    bench.json.insert("rows".into(), json!(bench.rows));
    bench.json.insert("notes".into(), json!(bench.notes));
    Ok(Report {
        rows: bench.rows,
        notes: bench.notes,
        json: serde_json::Value::Object(bench.json),
    })
}

/// A server saturated by our closed-loop generator, then by wrk.
struct Saturated {
    ours: closed_loop::ClosedLoopResult,
    /// The server's CPU time per answer to our generator, in microseconds.
    cpu_us: f64,
    wrk: Result<wrk::WrkResult, String>,
}

impl Bench {
    /// A closed loop of `connections` against the server under test.
    fn saturate(&self, connections: usize, warmup: u64, secs: u64, tag: &str) -> ClosedLoopConfig {
        ClosedLoopConfig {
            addr: self.api.clone(),
            partner_key: self.args.partner_key.clone(),
            connections,
            warmup: Duration::from_secs(warmup),
            duration: Duration::from_secs(secs),
            run_id: format!("{}-{tag}", self.run_id),
            properties: PROPERTIES,
        }
    }

    /// Saturates the running server `name` (process `pid`) with both generators,
    /// recording the CPU each run took.
    async fn saturate_with_both(
        &mut self,
        name: &str,
        pid: u32,
        tag: &str,
    ) -> anyhow::Result<Saturated> {
        let args = &self.args;
        let pids = [(name, pid)];
        let config = self.saturate(args.connections, args.warmup_secs, args.secs, tag);
        let (ours, cpu) = with_cpu(&pids, args, closed_loop::run(config)).await;
        let ours = ours?;
        let cpu_us = cpu.of(name) * 1e6 / ours.total_answers.max(1) as f64;
        self.notes.push(format!("1 {name}, our generator: {cpu}"));
        let (wrk, cpu) = with_cpu(
            &pids,
            args,
            wrk::run(
                &format!("http://{}", self.api),
                args.connections,
                Duration::from_secs(args.secs),
                &format!("{}-wrk{tag}", self.run_id),
                &args.partner_key,
            ),
        )
        .await;
        self.notes.push(format!("1 {name}, wrk: {cpu}"));
        Ok(Saturated { ours, cpu_us, wrk })
    }
}

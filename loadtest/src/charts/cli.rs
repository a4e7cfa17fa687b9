//! `loadtest chart`: charts drawn from files the shell scripts collect, for the runs whose
//! parts no single process sees (a fault scenario's load, lag and fault; a scaling demo's
//! lag and consumer starts). `open-loop` and `bench-pipeline` draw their own.

use std::path::PathBuf;

use anyhow::Context;
use serde::Deserialize;

use super::lag_samples::{self, LagSample};
use super::partition_lag::{self, Mark};
use super::timeline::{self, Span};
use crate::fixed_rate::FixedRateResult;
use crate::open_loop::Second;

#[derive(Debug, clap::Subcommand)]
pub enum ChartCommand {
    /// A load run second by second (answers by status, lag), with its fault shaded if any.
    Timeline(TimelineArgs),
    /// Lag per partition over time, with marked moments (consumers added).
    PartitionLag(PartitionLagArgs),
    /// `bench-pipeline`'s stage 3 charts again, from its JSON.
    Peer(PeerArgs),
}

#[derive(Debug, clap::Args)]
pub struct PeerArgs {
    /// `loadtest bench-pipeline`'s result JSON (a run in which stage 3 ran).
    #[arg(long)]
    bench: PathBuf,
    #[arg(long)]
    out_dir: PathBuf,
}

/// The part of `bench-pipeline`'s result the stage 3 charts need.
#[derive(Deserialize)]
struct BenchResult {
    kafka_bridge: PeerResult,
}

#[derive(Deserialize)]
struct PeerResult {
    connections: usize,
    bridge: PeerSide,
    ingress: PeerSide,
}

#[derive(Deserialize)]
struct PeerSide {
    at_rates: Vec<FixedRateResult>,
}

#[derive(Debug, clap::Args)]
pub struct TimelineArgs {
    /// `loadtest open-loop`'s result JSON.
    #[arg(long)]
    result: PathBuf,
    /// Lag samples taken during the run (`<unix seconds> <consumer lag --one-line>` lines).
    #[arg(long)]
    lag: Option<PathBuf>,
    /// When the fault began and ended, in seconds since the Unix epoch.
    #[arg(long, requires = "fault_to")]
    fault_from: Option<f64>,
    #[arg(long, requires = "fault_from")]
    fault_to: Option<f64>,
    /// What the fault was, written on its span.
    #[arg(long, default_value = "fault")]
    fault_label: String,
    #[arg(long)]
    title: String,
    #[arg(long)]
    out: PathBuf,
}

#[derive(Debug, clap::Args)]
pub struct PartitionLagArgs {
    /// Lag samples (`<unix seconds> <consumer lag --one-line>` lines).
    #[arg(long)]
    lag: PathBuf,
    /// `UNIX_SECONDS=LABEL`: a moment to mark, e.g. when consumers were added.
    #[arg(long = "mark", value_parser = parse_mark)]
    marks: Vec<(f64, String)>,
    #[arg(long)]
    title: String,
    #[arg(long)]
    out: PathBuf,
}

fn parse_mark(text: &str) -> Result<(f64, String), String> {
    let (at, label) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?} is not UNIX_SECONDS=LABEL"))?;
    let at = at.parse().map_err(|e| format!("{at:?}: {e}"))?;
    Ok((at, label.to_owned()))
}

/// The part of `open-loop`'s result the timeline needs.
#[derive(Deserialize)]
struct OpenLoopTimeline {
    started_unix_secs: f64,
    timeline: Vec<Second>,
}

pub fn run(command: ChartCommand) -> anyhow::Result<()> {
    match command {
        ChartCommand::Timeline(args) => timeline_chart(args),
        ChartCommand::PartitionLag(args) => {
            let samples = lag_samples::load(&args.lag)?;
            let marks: Vec<Mark> = args
                .marks
                .into_iter()
                .map(|(at_unix_secs, label)| Mark {
                    at_unix_secs,
                    label,
                })
                .collect();
            let svg = partition_lag::partition_lag(&args.title, &samples, &marks)?;
            super::write(&args.out, &svg)
        }
        ChartCommand::Peer(args) => {
            let text = std::fs::read(&args.bench)
                .with_context(|| format!("reading {}", args.bench.display()))?;
            let bench: BenchResult = serde_json::from_slice(&text)
                .with_context(|| format!("stage 3's results in {}", args.bench.display()))?;
            let peer = bench.kafka_bridge;
            let servers = [
                ("ingress", &peer.ingress.at_rates[..]),
                ("Kafka Bridge", &peer.bridge.at_rates[..]),
            ];
            for (name, svg) in crate::bench_pipeline::peer_charts::draw(&servers, peer.connections)?
            {
                let path = args.out_dir.join(name);
                super::write(&path, &svg)?;
                println!("{}", path.display());
            }
            Ok(())
        }
    }
}

fn timeline_chart(args: TimelineArgs) -> anyhow::Result<()> {
    let text = std::fs::read(&args.result)
        .with_context(|| format!("reading {}", args.result.display()))?;
    let run: OpenLoopTimeline =
        serde_json::from_slice(&text).with_context(|| format!("in {}", args.result.display()))?;
    let samples: Vec<LagSample> = match &args.lag {
        Some(path) => lag_samples::load(path)?,
        None => Vec::new(),
    };
    let since_start = |at: f64| at - run.started_unix_secs;
    // Samples from before the load began (the setup's) would stretch the axis leftwards.
    let lag: Vec<(f64, i64)> = samples
        .iter()
        .map(|s| (since_start(s.at_unix_secs), s.total))
        .filter(|(at, _)| *at >= 0.0)
        .collect();
    let spans: Vec<Span> = match (args.fault_from, args.fault_to) {
        (Some(from), Some(to)) => vec![Span {
            from: since_start(from),
            to: since_start(to),
            label: args.fault_label,
        }],
        _ => Vec::new(),
    };
    let svg = timeline::answers_and_lag(&args.title, &run.timeline, &lag, &spans)?;
    super::write(&args.out, &svg)
}

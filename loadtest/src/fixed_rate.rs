//! An open loop at a fixed arrival rate over a fixed set of connections, for latency at a
//! given load: create `i` is due at `start + i / rate` and goes out on the first free
//! connection; its latency runs from its due time to its answer, so time spent queued
//! behind a slow server counts (no coordinated omission). A create that finds
//! `max_queued` others already waiting is shed and counted, never sent late.
//!
//! The connection count is fixed, as in [`crate::closed_loop`] and wrk, because an
//! HTTP-to-Kafka bridge opens a Kafka producer per connection: a generator that opened
//! more under load would be measuring another server. Every connection sends one
//! unmeasured create before the schedule starts, so no producer or handshake is set up
//! inside the measured window.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, Barrier, Mutex};
use tokio::time::Instant;

use crate::closed_loop::{exchange, open, Tally};
use crate::endpoint::Endpoint;
use crate::latency::Percentiles;
use crate::progress::Progress;

#[derive(Clone, Debug)]
pub struct FixedRateConfig {
    /// `host:port` on loopback.
    pub addr: String,
    pub endpoint: Endpoint,
    pub connections: usize,
    pub rate: f64,
    pub duration: Duration,
    /// Distinguishes this run's Idempotency-Keys from every other run's.
    pub run_id: String,
    pub properties: usize,
    /// Creates due but not yet sent, at most; past this they are shed.
    pub max_queued: usize,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct FixedRateResult {
    pub rate: f64,
    pub connections: usize,
    pub secs: f64,
    pub scheduled: usize,
    pub shed_by_generator: usize,
    pub statuses: BTreeMap<u16, u64>,
    pub transport_errors: u64,
    /// Acknowledged creates per second of the schedule.
    pub acknowledged_rate: f64,
    /// Due time to acknowledgement, of acknowledged creates.
    pub latency_ms: Percentiles,
}

impl FixedRateResult {
    /// Whether the server acknowledged (nearly) everything offered: if not, its latency
    /// describes only the requests that got through.
    pub fn kept_up(&self) -> bool {
        self.acknowledged_rate >= self.rate * 0.99
    }
}

type Due = (usize, Instant);

pub async fn run(config: FixedRateConfig) -> anyhow::Result<FixedRateResult> {
    anyhow::ensure!(
        config.rate > 0.0 && config.connections > 0,
        "the rate and the connections must be positive"
    );
    let config = Arc::new(config);
    let (queue, due) = mpsc::channel::<Due>(config.max_queued.max(1));
    let due = Arc::new(Mutex::new(due));
    // Every connection and the scheduler: the schedule starts once all are warm.
    let warm = Arc::new(Barrier::new(config.connections + 1));
    let mut connections = tokio::task::JoinSet::new();
    for connection in 0..config.connections {
        let (config, due, warm) = (config.clone(), due.clone(), warm.clone());
        connections.spawn(async move { serve(&config, connection, &due, &warm).await });
    }
    warm.wait().await;

    let interval = Duration::from_secs_f64(1.0 / config.rate);
    let scheduled = (config.rate * config.duration.as_secs_f64()).floor() as usize;
    let mut shed = 0;
    let mut progress = Progress::new(
        format!(
            "{:.0} requests/s, {} connections",
            config.rate, config.connections
        ),
        scheduled as u64,
        "requests due",
    );
    let started = Instant::now();
    for i in 0..scheduled {
        let due_at = started + interval.mul_f64(i as f64);
        tokio::time::sleep_until(due_at).await;
        progress.set(i as u64 + 1, || format!("shed {shed}"));
        if queue.try_send((i, due_at)).is_err() {
            shed += 1;
        }
    }
    drop(queue);
    progress.finish();
    let mut total = Tally::default();
    while let Some(tally) = connections.join_next().await {
        total.merge(tally?);
    }
    let secs = config.duration.as_secs_f64();
    Ok(FixedRateResult {
        rate: config.rate,
        connections: config.connections,
        secs,
        scheduled,
        shed_by_generator: shed,
        statuses: total.statuses,
        transport_errors: total.errors,
        acknowledged_rate: total.ok as f64 / secs,
        latency_ms: Percentiles::of(&total.latency),
    })
}

/// One connection: a warm-up create, then every due create it takes off the queue until
/// the schedule ends; reconnects after a transport error.
async fn serve(
    config: &FixedRateConfig,
    connection: usize,
    due: &Mutex<mpsc::Receiver<Due>>,
    warm: &Barrier,
) -> Tally {
    let mut tally = Tally::default();
    let mut sender = open(&config.addr).await;
    if let Some(sender) = sender.as_mut() {
        let key = format!("{}-warm-{connection}", config.run_id);
        let request = config.endpoint.create(&config.addr, &key, connection);
        let _ = exchange(sender, request).await;
    }
    warm.wait().await;
    loop {
        // Held only while waiting for the next create, so the connections take turns.
        let next = due.lock().await.recv().await;
        let Some((i, due_at)) = next else {
            return tally;
        };
        if sender.is_none() {
            sender = open(&config.addr).await;
        }
        let Some(live) = sender.as_mut() else {
            tally.errors += 1;
            continue;
        };
        let key = format!("{}-{i}", config.run_id);
        let request = config
            .endpoint
            .create(&config.addr, &key, i % config.properties.max(1));
        match exchange(live, request).await {
            Ok(status) => {
                tally.answers += 1;
                *tally.statuses.entry(status.as_u16()).or_default() += 1;
                if config.endpoint.acknowledged(status) {
                    tally.ok += 1;
                    let micros = due_at.elapsed().as_micros().max(1) as u64;
                    let _ = tally.latency.record(micros);
                }
            }
            Err(_) => {
                tally.errors += 1;
                sender = None;
            }
        }
    }
}

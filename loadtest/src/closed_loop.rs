//! A closed-loop generator for saturating throughput: `connections` HTTP/1 connections,
//! each sending its next request as soon as the previous one is answered, for a fixed
//! time after a warm-up. Every request is a valid booking create ([`Endpoint::create`])
//! under a fresh Idempotency-Key, so a server that deduplicates does its full work each
//! time.
//!
//! Closed loop is right for "how much can it take" (throughput at saturation) and wrong
//! for latency under a given load, which is what [`crate::open_loop`] and
//! [`crate::e2e`] measure.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use hdrhistogram::Histogram;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use serde::Serialize;
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::endpoint::Endpoint;
use crate::progress::Progress;

#[derive(Clone, Debug)]
pub struct ClosedLoopConfig {
    /// `host:port` on loopback.
    pub addr: String,
    pub endpoint: Endpoint,
    pub connections: usize,
    pub warmup: Duration,
    pub duration: Duration,
    /// Distinguishes this run's Idempotency-Keys from every other run's.
    pub run_id: String,
    /// Spread the creates over this many properties (and so over partitions).
    pub properties: usize,
}

/// What the measured window (after the warm-up) saw.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ClosedLoopResult {
    pub connections: usize,
    pub secs: f64,
    /// Answers acknowledging the record ([`Endpoint::acknowledged`]) in the window.
    pub ok: u64,
    pub statuses: BTreeMap<u16, u64>,
    pub transport_errors: u64,
    /// Acknowledging answers per second.
    pub ok_rate: f64,
    /// Every answer (and warm-up included) over the whole run, for memory per request.
    pub total_answers: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

pub async fn run(config: ClosedLoopConfig) -> anyhow::Result<ClosedLoopResult> {
    let started = Instant::now();
    let window_start = started + config.warmup;
    let deadline = window_start + config.duration;
    let _progress = Progress::timed(
        format!("closed loop, {} connections", config.connections),
        config.warmup + config.duration,
    );
    let mut tasks = tokio::task::JoinSet::new();
    for connection in 0..config.connections {
        let config = config.clone();
        tasks.spawn(async move { drive(&config, connection, window_start, deadline).await });
    }
    let mut total = Tally::default();
    while let Some(tally) = tasks.join_next().await {
        total.merge(tally?);
    }
    let secs = config.duration.as_secs_f64();
    let ms = |q| total.latency.value_at_quantile(q) as f64 / 1000.0;
    Ok(ClosedLoopResult {
        connections: config.connections,
        secs,
        ok: total.ok,
        ok_rate: total.ok as f64 / secs,
        p50_ms: ms(0.5),
        p99_ms: ms(0.99),
        statuses: total.statuses,
        transport_errors: total.errors,
        total_answers: total.answers,
    })
}

/// What one connection saw; [`crate::fixed_rate`] counts the same way.
pub(crate) struct Tally {
    /// Acknowledging answers in the measured window.
    pub ok: u64,
    /// Answers in the whole run, warm-up included.
    pub answers: u64,
    pub errors: u64,
    pub statuses: BTreeMap<u16, u64>,
    /// Of acknowledged requests, in microseconds.
    pub latency: Histogram<u64>,
}

impl Default for Tally {
    fn default() -> Self {
        Tally {
            ok: 0,
            answers: 0,
            errors: 0,
            statuses: BTreeMap::new(),
            latency: Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid bounds"),
        }
    }
}

impl Tally {
    pub fn merge(&mut self, other: Tally) {
        self.ok += other.ok;
        self.answers += other.answers;
        self.errors += other.errors;
        for (status, count) in other.statuses {
            *self.statuses.entry(status).or_default() += count;
        }
        let _ = self.latency.add(&other.latency);
    }
}

/// One connection's loop; reconnects after a transport error until the deadline.
async fn drive(
    config: &ClosedLoopConfig,
    connection: usize,
    window_start: Instant,
    deadline: Instant,
) -> Tally {
    let mut tally = Tally::default();
    let mut sequence = 0usize;
    'connect: while Instant::now() < deadline {
        let Some(mut sender) = open(&config.addr).await else {
            tally.errors += 1;
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        while Instant::now() < deadline {
            sequence += 1;
            let property = (connection * 7919 + sequence) % config.properties.max(1);
            let key = format!("{}-{connection}-{sequence}", config.run_id);
            let request = config.endpoint.create(&config.addr, &key, property);
            let sent = Instant::now();
            let Ok(status) = exchange(&mut sender, request).await else {
                tally.errors += 1;
                continue 'connect;
            };
            let done = Instant::now();
            tally.answers += 1;
            if sent < window_start || done > deadline {
                continue;
            }
            *tally.statuses.entry(status.as_u16()).or_default() += 1;
            if config.endpoint.acknowledged(status) {
                tally.ok += 1;
                let _ = tally
                    .latency
                    .record((done - sent).as_micros().max(1) as u64);
            }
        }
    }
    tally
}

/// One HTTP/1 connection to `addr`, or None when it cannot be opened.
pub(crate) async fn open(addr: &str) -> Option<SendRequest<Full<Bytes>>> {
    let stream = TcpStream::connect(addr).await.ok()?;
    let _ = stream.set_nodelay(true);
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .ok()?;
    tokio::spawn(connection);
    Some(sender)
}

/// Sends `request` on `sender` and reads the whole answer; returns its status.
pub(crate) async fn exchange(
    sender: &mut SendRequest<Full<Bytes>>,
    request: Request<Full<Bytes>>,
) -> Result<StatusCode, hyper::Error> {
    let response = sender.send_request(request).await?;
    let status = response.status();
    response.into_body().collect().await?;
    Ok(status)
}

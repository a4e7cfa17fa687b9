//! A closed-loop generator for saturating throughput: `connections` HTTP/1 connections,
//! each sending its next request as soon as the previous one is answered, for a fixed
//! time after a warm-up. Every request is a valid booking create under a fresh
//! Idempotency-Key, so a server that deduplicates does its full work each time.
//!
//! Closed loop is right for "how much can it take" (throughput at saturation) and wrong
//! for latency under a given load, which is what [`crate::open_loop`] and
//! [`crate::e2e`] measure.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use hdrhistogram::Histogram;
use http::{Method, Request};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde::Serialize;
use tokio::net::TcpStream;
use tokio::time::Instant;

#[derive(Clone, Debug)]
pub struct ClosedLoopConfig {
    /// `host:port` on loopback.
    pub addr: String,
    pub partner_key: String,
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
    /// Answers with a 2xx status in the window.
    pub ok: u64,
    pub statuses: BTreeMap<u16, u64>,
    pub transport_errors: u64,
    /// 2xx answers per second.
    pub ok_rate: f64,
    /// Every answer (and warm-up included) over the whole run, for memory per request.
    pub total_answers: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

/// A valid create for property `property` of tenant `bench`, as the ingress expects it.
pub fn booking_body(property: usize) -> Bytes {
    let nights = 1 + property % 3;
    let day = 1 + property % 25;
    Bytes::from(format!(
        r#"{{"tenant_id":"bench","property_id":"p{property:04}","room_type":"DBL","check_in":"2031-03-{day:02}","check_out":"2031-03-{:02}","rooms":1,"guests":2,"amount_minor":{},"currency":"EUR","guest_name":"Load Test"}}"#,
        day + nights,
        11_000 * nights
    ))
}

pub async fn run(config: ClosedLoopConfig) -> anyhow::Result<ClosedLoopResult> {
    let started = Instant::now();
    let window_start = started + config.warmup;
    let deadline = window_start + config.duration;
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

struct Tally {
    ok: u64,
    answers: u64,
    errors: u64,
    statuses: BTreeMap<u16, u64>,
    latency: Histogram<u64>,
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
    fn merge(&mut self, other: Tally) {
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
    let bearer = format!("Bearer {}", config.partner_key);
    let mut sequence = 0usize;
    'connect: while Instant::now() < deadline {
        let Ok(stream) = TcpStream::connect(&config.addr).await else {
            tally.errors += 1;
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let _ = stream.set_nodelay(true);
        let Ok((mut sender, conn)) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await
        else {
            tally.errors += 1;
            continue;
        };
        tokio::spawn(conn);
        while Instant::now() < deadline {
            sequence += 1;
            let property = (connection * 7919 + sequence) % config.properties.max(1);
            let request = Request::builder()
                .method(Method::POST)
                .uri("/v1/bookings")
                .header("host", &config.addr)
                .header("authorization", &bearer)
                .header("content-type", "application/json")
                .header(
                    "idempotency-key",
                    format!("{}-{connection}-{sequence}", config.run_id),
                )
                .body(Full::new(booking_body(property)))
                .expect("a valid request");
            let sent = Instant::now();
            let answer = async {
                let response = sender.send_request(request).await?;
                let status = response.status();
                response.into_body().collect().await?;
                Ok::<_, hyper::Error>(status)
            };
            let Ok(status) = answer.await else {
                tally.errors += 1;
                continue 'connect;
            };
            let done = Instant::now();
            tally.answers += 1;
            if sent < window_start || done > deadline {
                continue;
            }
            *tally.statuses.entry(status.as_u16()).or_default() += 1;
            if status.is_success() {
                tally.ok += 1;
                let _ = tally
                    .latency
                    .record((done - sent).as_micros().max(1) as u64);
            }
        }
    }
    tally
}

#[cfg(test)]
mod tests {
    use super::booking_body;

    #[test]
    fn booking_bodies_are_valid_creates() {
        for property in [0, 1, 24, 199] {
            let body: serde_json::Value = serde_json::from_slice(&booking_body(property)).unwrap();
            let check_in: chrono::NaiveDate =
                serde_json::from_value(body["check_in"].clone()).unwrap();
            let check_out: chrono::NaiveDate =
                serde_json::from_value(body["check_out"].clone()).unwrap();
            assert!(check_out > check_in, "{body}");
            assert_eq!(body["tenant_id"], "bench");
        }
    }
}

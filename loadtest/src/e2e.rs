//! Accept-to-projection latency: creates at a constant arrival rate (open loop, as in
//! [`crate::open_loop`]), and for a share of the acknowledged ones, the time from the 202
//! until the consumer's booking projection (`booking:{id}` in Redis) exists.
//!
//! One poller checks every sampled booking still pending with a single pipelined round
//! trip every [`POLL_EVERY`], so watching costs Redis one command per sample and tick and
//! the numbers carry up to one tick of rounding. A sample not visible within
//! [`GIVE_UP_AFTER`] is counted as missing, not as a latency.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use hdrhistogram::Histogram;
use http::{Method, StatusCode};
use serde::Serialize;
use serde_json::json;
use tokio::sync::{mpsc, Mutex, Semaphore};
use tokio::time::Instant;
use uuid::Uuid;

use partitioner::redis_target::{query_each, RedisConnection};

use crate::client::PartnerClient;
use crate::endpoint::booking_body;
use crate::progress::Progress;

const POLL_EVERY: Duration = Duration::from_millis(5);
const GIVE_UP_AFTER: Duration = Duration::from_secs(15);

#[derive(Clone, Debug)]
pub struct E2eConfig {
    pub ingress_url: String,
    pub partner_key: String,
    pub redis_url: String,
    pub rate: f64,
    pub duration: Duration,
    /// One acknowledged create in `sample_every` is watched until its projection shows.
    pub sample_every: usize,
    pub properties: usize,
    pub max_in_flight: usize,
    pub run_id: String,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct E2eResult {
    pub rate: f64,
    pub secs: f64,
    pub sent: usize,
    pub shed_by_generator: usize,
    pub statuses: BTreeMap<u16, usize>,
    pub transport_errors: usize,
    /// Request (from its due time) to the 202, in milliseconds.
    pub ack_p50_ms: f64,
    pub ack_p99_ms: f64,
    /// 202 to the projection in Redis, in milliseconds.
    pub projection_p50_ms: f64,
    pub projection_p99_ms: f64,
    pub projection_max_ms: f64,
    pub samples: u64,
    pub samples_missing: usize,
}

pub async fn run(config: E2eConfig) -> anyhow::Result<E2eResult> {
    anyhow::ensure!(config.rate > 0.0, "the rate must be positive");
    let client = PartnerClient::new(&config.ingress_url, &config.partner_key);
    set_inventory(&client, &config).await?;

    let (samples_tx, samples_rx) = mpsc::unbounded_channel::<(Uuid, Instant)>();
    let redis = crate::redis_conn::connect(&config.redis_url).await?;
    let poller = tokio::spawn(watch_projections(redis, samples_rx));

    let histogram = || Histogram::<u64>::new_with_bounds(1, 120_000_000, 3).expect("valid bounds");
    let ack = Arc::new(Mutex::new((
        histogram(),
        BTreeMap::<u16, usize>::new(),
        0usize,
    )));
    let gate = Arc::new(Semaphore::new(config.max_in_flight));
    let interval = Duration::from_secs_f64(1.0 / config.rate);
    let scheduled = (config.rate * config.duration.as_secs_f64()).floor() as usize;
    let mut shed = 0;
    let mut tasks = tokio::task::JoinSet::new();
    let mut progress = Progress::new(
        format!("end to end, {:.0}/s", config.rate),
        scheduled as u64,
        "requests due",
    );
    let started = Instant::now();
    for i in 0..scheduled {
        let due = started + interval.mul_f64(i as f64);
        tokio::time::sleep_until(due).await;
        progress.set(i as u64 + 1, || format!("shed {shed}"));
        let Ok(permit) = gate.clone().try_acquire_owned() else {
            shed += 1;
            continue;
        };
        let body: serde_json::Value =
            serde_json::from_slice(&booking_body(i % config.properties.max(1)))?;
        let key = format!("{}-e2e-{i}", config.run_id);
        let (client, ack, samples) = (client.clone(), ack.clone(), samples_tx.clone());
        let sampled = i % config.sample_every.max(1) == 0;
        tasks.spawn(async move {
            let answer = client.send(Method::POST, "/v1/bookings", &key, &body).await;
            let acked_at = Instant::now();
            drop(permit);
            let mut ack = ack.lock().await;
            let Ok(answer) = answer else {
                ack.2 += 1;
                return;
            };
            *ack.1.entry(answer.status.as_u16()).or_default() += 1;
            if answer.status == StatusCode::ACCEPTED {
                let _ = ack.0.record((acked_at - due).as_micros().max(1) as u64);
                let booking = answer.body["booking_id"]
                    .as_str()
                    .and_then(|s| s.parse().ok());
                if let (true, Some(booking)) = (sampled, booking) {
                    let _ = samples.send((booking, acked_at));
                }
            }
        });
        while tasks.try_join_next().is_some() {}
    }
    while tasks.join_next().await.is_some() {}
    progress.finish();
    drop(samples_tx);
    let (projection, missing) = poller.await??;
    let (ack_latency, statuses, transport_errors) = Arc::try_unwrap(ack)
        .map_err(|_| anyhow::anyhow!("requests still in flight"))?
        .into_inner();
    let ms = |h: &Histogram<u64>, q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    Ok(E2eResult {
        rate: config.rate,
        secs: config.duration.as_secs_f64(),
        sent: scheduled - shed,
        shed_by_generator: shed,
        statuses,
        transport_errors,
        ack_p50_ms: ms(&ack_latency, 0.5),
        ack_p99_ms: ms(&ack_latency, 0.99),
        projection_p50_ms: ms(&projection, 0.5),
        projection_p99_ms: ms(&projection, 0.99),
        projection_max_ms: projection.max() as f64 / 1000.0,
        samples: projection.len(),
        samples_missing: missing,
    })
}

/// Rooms enough for the whole run on every night the creates use, so every create is
/// confirmed and none is turned away for want of inventory.
async fn set_inventory(client: &PartnerClient, config: &E2eConfig) -> anyhow::Result<()> {
    for property in 0..config.properties {
        let body = json!({
            "tenant_id": "bench", "property_id": format!("p{property:04}"), "room_type": "DBL",
            "from": "2031-03-01", "to": "2031-04-01", "units": 100_000,
        });
        let key = format!("{}-inventory-{property}", config.run_id);
        let mut tries = 0;
        loop {
            let answer = client
                .send(Method::PUT, "/v1/inventory", &key, &body)
                .await?;
            tries += 1;
            if answer.status.is_success() {
                break;
            }
            anyhow::ensure!(
                tries < 20 && answer.status == StatusCode::SERVICE_UNAVAILABLE,
                "setting inventory failed: {} {}",
                answer.status,
                answer.body
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
    Ok(())
}

/// Polls every pending sample until its projection exists or it is given up; returns the
/// accept-to-projection histogram (microseconds) and the count given up.
async fn watch_projections(
    redis: RedisConnection,
    mut samples: mpsc::UnboundedReceiver<(Uuid, Instant)>,
) -> anyhow::Result<(Histogram<u64>, usize)> {
    let mut seen = Histogram::<u64>::new_with_bounds(1, 120_000_000, 3)?;
    let mut pending: Vec<(Uuid, Instant)> = Vec::new();
    let mut missing = 0;
    let mut open = true;
    let mut tick = tokio::time::interval(POLL_EVERY);
    while open || !pending.is_empty() {
        tick.tick().await;
        loop {
            match samples.try_recv() {
                Ok(sample) => pending.push(sample),
                Err(mpsc::error::TryRecvError::Empty) => break,
                Err(mpsc::error::TryRecvError::Disconnected) => {
                    open = false;
                    break;
                }
            }
        }
        if pending.is_empty() {
            continue;
        }
        // Collected first: a borrowing iterator cannot be held across the await of a
        // spawned task.
        let probes: Vec<redis::Cmd> = pending
            .iter()
            .map(|(booking, _)| {
                let mut probe = redis::cmd("EXISTS");
                probe.arg(partitioner::keys::booking_status(*booking));
                probe
            })
            .collect();
        let exists: Vec<bool> = query_each(&redis, probes, crate::redis_conn::IN_FLIGHT).await?;
        let now = Instant::now();
        let mut still = Vec::with_capacity(pending.len());
        for ((booking, acked_at), visible) in pending.into_iter().zip(exists) {
            if visible {
                let _ = seen.record((now - acked_at).as_micros().max(1) as u64);
            } else if now - acked_at > GIVE_UP_AFTER {
                missing += 1;
            } else {
                still.push((booking, acked_at));
            }
        }
        pending = still;
    }
    Ok((seen, missing))
}

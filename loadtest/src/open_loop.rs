//! `loadtest open-loop`: a constant arrival rate against the ingress, free of coordinated
//! omission.
//!
//! Request `i` is due at `start + i / rate` whether or not earlier requests have been
//! answered, and its latency runs from that due time, so a stalled server shows as latency
//! rather than as fewer requests. Requests in flight are capped (`max_in_flight`); a due
//! request that finds the cap reached is not sent and is counted as shed by the generator,
//! so the generator never hides overload by slowing down and never grows without bound.
//! Nothing is retried: every answer is reported as it came. The run's acknowledged events
//! and refused creates are recorded for `loadtest verify`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{Days, NaiveDate};
use hdrhistogram::Histogram;
use http::{Method, StatusCode};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::sync::Semaphore;
use uuid::Uuid;

use crate::client::PartnerClient;
use crate::latency::Percentiles;
use crate::progress::Progress;
use crate::record::{AckedEvent, EventKind, RunRecord};

/// Nights on sale per property, from [`first_night`].
const SEASON_NIGHTS: u64 = 60;

fn first_night() -> NaiveDate {
    NaiveDate::from_ymd_opt(2031, 1, 1).expect("a valid date")
}

#[derive(Clone, Debug)]
pub struct OpenLoopConfig {
    pub ingress_url: String,
    pub partner_key: String,
    pub partner_id: String,
    /// Requests per second, all kinds together.
    pub rate: f64,
    pub duration: Duration,
    pub properties: usize,
    /// Rooms on sale per property and night.
    pub units: u32,
    /// Skew of property popularity: property rank = properties × u^skew for uniform u, so 1
    /// is uniform and larger values concentrate traffic on the first properties.
    pub skew: f64,
    /// Shares of the traffic (the rest are creates).
    pub modify_share: f64,
    pub cancel_share: f64,
    pub replay_share: f64,
    pub invalid_share: f64,
    pub max_in_flight: usize,
    pub seed: u64,
}

/// What a run measured, also written as JSON.
#[derive(Debug, Serialize)]
pub struct OpenLoopResult {
    pub rate: f64,
    pub duration_secs: f64,
    /// When the first request was due, in seconds since the Unix epoch: where the
    /// timeline's second 0 starts, to line it up with what other tools saw.
    pub started_unix_secs: f64,
    pub scheduled: usize,
    pub sent: usize,
    pub shed_by_generator: usize,
    pub transport_errors: usize,
    pub statuses: BTreeMap<u16, usize>,
    pub by_kind: BTreeMap<String, usize>,
    pub replays_same_booking: usize,
    pub replays_answered_2xx: usize,
    /// Latency of 2xx answers from their due time, in milliseconds.
    pub accepted_latency_ms: Percentiles,
    /// Latency of every answer from its due time, in milliseconds.
    pub all_latency_ms: Percentiles,
    /// Answers per second over the run.
    pub achieved_rate: f64,
    /// Per second of the run (by due time): what the requests due in it got, so an outage
    /// and the recovery from it can be read off.
    pub timeline: Vec<Second>,
    #[serde(skip)]
    pub record: RunRecord,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Second {
    pub ok: usize,
    /// Of `ok`, the answers that acknowledged a new event: every 2xx but the replays,
    /// which the idempotency tiers answer without the broker.
    pub acknowledged: usize,
    pub client_error: usize,
    pub server_error: usize,
    pub transport_error: usize,
    pub shed: usize,
}

/// One request to send and what it is about.
#[derive(Clone, Debug)]
struct Request {
    kind: EventKind,
    label: &'static str,
    method: Method,
    path: String,
    key: String,
    body: serde_json::Value,
    property_id: String,
    /// For a replay: the booking the first answer named.
    replay_of: Option<Uuid>,
}

/// A create the ingress acknowledged, available to modify, cancel or replay.
#[derive(Clone, Debug)]
struct AckedCreate {
    booking_id: Uuid,
    request: Request,
}

/// State shared by the in-flight requests.
struct Shared {
    acked_creates: Vec<AckedCreate>,
    record: RunRecord,
    statuses: BTreeMap<u16, usize>,
    transport_errors: usize,
    replays_same_booking: usize,
    replays_answered_2xx: usize,
    accepted: Histogram<u64>,
    all: Histogram<u64>,
    timeline: Vec<Second>,
}

impl Shared {
    /// The answers so far, for progress lines.
    fn so_far(&self, shed: usize) -> String {
        let (mut ok, mut client, mut server) = (0, 0, 0);
        for (status, n) in &self.statuses {
            match status {
                200..=299 => ok += n,
                400..=499 => client += n,
                _ => server += n,
            }
        }
        format!(
            "2xx {ok} · 4xx {client} · 5xx {server} · failed {} · shed {shed}",
            self.transport_errors
        )
    }

    fn second(&mut self, index: usize) -> &mut Second {
        if self.timeline.len() <= index {
            self.timeline.resize(index + 1, Second::default());
        }
        &mut self.timeline[index]
    }
}

pub async fn run(config: OpenLoopConfig) -> anyhow::Result<OpenLoopResult> {
    anyhow::ensure!(config.rate > 0.0, "the rate must be positive");
    let mut rng = SmallRng::seed_from_u64(config.seed);
    let run_id = format!("{:08x}", rng.random::<u32>());
    let tenant_id = format!("open-{run_id}");
    let client = PartnerClient::new(&config.ingress_url, &config.partner_key);
    let histogram = || Histogram::new_with_bounds(1, 120_000_000, 3).expect("valid bounds");
    let shared = Arc::new(Mutex::new(Shared {
        acked_creates: Vec::new(),
        record: RunRecord {
            run_id: run_id.clone(),
            tenant_id: tenant_id.clone(),
            ..RunRecord::default()
        },
        statuses: BTreeMap::new(),
        transport_errors: 0,
        replays_same_booking: 0,
        replays_answered_2xx: 0,
        accepted: histogram(),
        all: histogram(),
        timeline: Vec::new(),
    }));

    // Inventory first, outside the measured run.
    let properties: Vec<String> = (0..config.properties).map(|i| format!("p{i:04}")).collect();
    for (i, property) in properties.iter().enumerate() {
        let body = json!({
            "tenant_id": tenant_id, "property_id": property, "room_type": "DBL",
            "from": first_night(), "to": first_night() + Days::new(SEASON_NIGHTS),
            "units": config.units,
        });
        let key = format!("{run_id}-allot-{i}");
        // Setup is not measured: retry a shed request with the same key, as a partner would
        // (a fresh ingress's first publishes can miss the delivery budget).
        let mut tries = 0;
        let answer = loop {
            let answer = client
                .send(Method::PUT, "/v1/inventory", &key, &body)
                .await?;
            let shed = matches!(
                answer.status,
                StatusCode::SERVICE_UNAVAILABLE | StatusCode::TOO_MANY_REQUESTS
            );
            tries += 1;
            if !shed || tries == 20 {
                break answer;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        };
        anyhow::ensure!(
            answer.status.is_success(),
            "setting inventory failed: {} {}",
            answer.status,
            answer.body
        );
        record_ack(
            &mut shared.lock().expect("not poisoned").record,
            EventKind::Allotment,
            property,
            &answer.body,
        );
    }

    let gate = Arc::new(Semaphore::new(config.max_in_flight));
    let interval = Duration::from_secs_f64(1.0 / config.rate);
    let scheduled = (config.rate * config.duration.as_secs_f64()).floor() as usize;
    let mut by_kind: BTreeMap<String, usize> = BTreeMap::new();
    let mut shed = 0;
    let mut tasks = tokio::task::JoinSet::new();
    let mut progress = Progress::new(
        format!("open loop, {:.0}/s", config.rate),
        scheduled as u64,
        "requests due",
    );
    let started = tokio::time::Instant::now();
    let started_unix_secs = unix_secs_now();
    for i in 0..scheduled {
        progress.set(i as u64 + 1, || {
            shared.lock().expect("not poisoned").so_far(shed)
        });
        let due = started + interval.mul_f64(i as f64);
        tokio::time::sleep_until(due).await;
        let request = plan(
            &config,
            &mut rng,
            &run_id,
            &tenant_id,
            &properties,
            i,
            &shared,
        );
        *by_kind.entry(request.label.to_owned()).or_default() += 1;
        let second = (i as f64 / config.rate) as usize;
        let Ok(permit) = gate.clone().try_acquire_owned() else {
            shed += 1;
            shared.lock().expect("not poisoned").second(second).shed += 1;
            continue;
        };
        let (client, shared, partner_id) =
            (client.clone(), shared.clone(), config.partner_id.clone());
        let due = due.into_std();
        tasks.spawn(async move {
            let answer = client
                .send(
                    request.method.clone(),
                    &request.path,
                    &request.key,
                    &request.body,
                )
                .await;
            let latency = due.elapsed();
            drop(permit);
            let mut shared = shared.lock().expect("not poisoned");
            match answer {
                Ok(answer) => {
                    let at = shared.second(second);
                    match answer.status.as_u16() {
                        200..=299 => {
                            at.ok += 1;
                            at.acknowledged += usize::from(request.replay_of.is_none());
                        }
                        400..=499 => at.client_error += 1,
                        _ => at.server_error += 1,
                    }
                    shared.observe(&request, answer.status, &answer.body, latency, &partner_id);
                }
                Err(_) => {
                    shared.second(second).transport_error += 1;
                    shared.transport_errors += 1;
                }
            }
        });
        // Reap finished tasks as we go, so a long run holds only what is in flight.
        while tasks.try_join_next().is_some() {}
    }
    while tasks.join_next().await.is_some() {}
    progress.finish();
    let elapsed = started.elapsed();

    let shared = Arc::try_unwrap(shared)
        .map_err(|_| anyhow::anyhow!("requests still in flight"))?
        .into_inner()
        .expect("not poisoned");
    let answered: usize = shared.statuses.values().sum();
    Ok(OpenLoopResult {
        rate: config.rate,
        duration_secs: config.duration.as_secs_f64(),
        started_unix_secs,
        scheduled,
        sent: scheduled - shed,
        shed_by_generator: shed,
        transport_errors: shared.transport_errors,
        statuses: shared.statuses,
        by_kind,
        replays_same_booking: shared.replays_same_booking,
        replays_answered_2xx: shared.replays_answered_2xx,
        accepted_latency_ms: Percentiles::of(&shared.accepted),
        all_latency_ms: Percentiles::of(&shared.all),
        achieved_rate: answered as f64 / elapsed.as_secs_f64(),
        timeline: shared.timeline,
        record: shared.record,
    })
}

fn unix_secs_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |since| since.as_secs_f64())
}

/// Picks the next request: a modify, cancel or replay of an acknowledged create when one
/// exists and the dice say so, an invalid create, or a fresh create.
fn plan(
    config: &OpenLoopConfig,
    rng: &mut SmallRng,
    run_id: &str,
    tenant_id: &str,
    properties: &[String],
    i: usize,
    shared: &Mutex<Shared>,
) -> Request {
    let roll = rng.random::<f64>();
    let thresholds = [
        config.modify_share,
        config.modify_share + config.cancel_share,
        config.modify_share + config.cancel_share + config.replay_share,
        config.modify_share + config.cancel_share + config.replay_share + config.invalid_share,
    ];
    let earlier = {
        let shared = shared.lock().expect("not poisoned");
        (!shared.acked_creates.is_empty())
            .then(|| shared.acked_creates[rng.random_range(0..shared.acked_creates.len())].clone())
    };
    if let Some(earlier) = earlier.filter(|_| roll < thresholds[2]) {
        let booking = earlier.booking_id;
        let original = &earlier.request;
        if roll < thresholds[0] {
            let mut body = original.body.clone();
            let shift = Days::new(rng.random_range(1..=3));
            for field in ["check_in", "check_out"] {
                let date: NaiveDate =
                    serde_json::from_value(body[field].clone()).expect("a date we wrote");
                body[field] = json!(date + shift);
            }
            body.as_object_mut()
                .expect("an object")
                .remove("guest_name");
            return Request {
                kind: EventKind::Modify,
                label: "modify",
                method: Method::POST,
                path: format!("/v1/bookings/{booking}/modify"),
                key: format!("{run_id}-modify-{i}"),
                body,
                property_id: original.property_id.clone(),
                replay_of: None,
            };
        }
        if roll < thresholds[1] {
            return Request {
                kind: EventKind::Cancel,
                label: "cancel",
                method: Method::POST,
                path: format!("/v1/bookings/{booking}/cancel"),
                key: format!("{run_id}-cancel-{i}"),
                body: json!({
                    "tenant_id": tenant_id, "property_id": original.property_id,
                    "reason": "plans changed",
                }),
                property_id: original.property_id.clone(),
                replay_of: None,
            };
        }
        return Request {
            label: "replay",
            replay_of: Some(booking),
            ..original.clone()
        };
    }
    let rank = ((properties.len() as f64) * rng.random::<f64>().powf(config.skew)) as usize;
    let property = &properties[rank.min(properties.len() - 1)];
    let nights = rng.random_range(1..=4u64);
    let check_in = first_night() + Days::new(rng.random_range(0..SEASON_NIGHTS - nights));
    let invalid = roll >= thresholds[2] && roll < thresholds[3];
    // Invalid the way real integrations are: check-out before check-in.
    let check_out = if invalid {
        check_in - Days::new(1)
    } else {
        check_in + Days::new(nights)
    };
    Request {
        kind: EventKind::Create,
        label: if invalid { "invalid" } else { "create" },
        method: Method::POST,
        path: "/v1/bookings".to_owned(),
        key: format!("{run_id}-create-{i}"),
        body: json!({
            "tenant_id": tenant_id, "property_id": property, "room_type": "DBL",
            "check_in": check_in, "check_out": check_out, "rooms": 1, "guests": 2,
            "amount_minor": 11_000 * nights, "currency": "EUR", "guest_name": "Load Test",
        }),
        property_id: property.clone(),
        replay_of: None,
    }
}

impl Shared {
    fn observe(
        &mut self,
        request: &Request,
        status: StatusCode,
        body: &serde_json::Value,
        latency: Duration,
        partner_id: &str,
    ) {
        let us = latency.as_micros().max(1) as u64;
        let _ = self.all.record(us);
        *self.statuses.entry(status.as_u16()).or_default() += 1;
        if status.is_success() {
            let _ = self.accepted.record(us);
            let booking_id = body["booking_id"].as_str().and_then(|s| s.parse().ok());
            if let Some(original) = request.replay_of {
                // A replay names the original booking and is not a new event.
                self.replays_answered_2xx += 1;
                if booking_id == Some(original) {
                    self.replays_same_booking += 1;
                }
                return;
            }
            record_ack(&mut self.record, request.kind, &request.property_id, body);
            if let (EventKind::Create, Some(booking_id)) = (request.kind, booking_id) {
                self.acked_creates.push(AckedCreate {
                    booking_id,
                    request: request.clone(),
                });
            }
        } else if status.is_client_error()
            && status != StatusCode::CONFLICT
            && request.kind == EventKind::Create
            && request.replay_of.is_none()
        {
            // A refused create must leave no booking. (A 503 proves nothing either way:
            // the event may have reached the broker after the delivery budget ran out; nor
            // does a 409, the same key still in flight from an earlier attempt.)
            let tenant = request.body["tenant_id"].as_str().unwrap_or_default();
            self.record
                .refused_booking_ids
                .push(partitioner::booking_id(tenant, partner_id, &request.key));
        }
    }
}

fn record_ack(record: &mut RunRecord, kind: EventKind, property: &str, body: &serde_json::Value) {
    let id = |field: &str| body[field].as_str().and_then(|s| s.parse().ok());
    record.acked.push(AckedEvent {
        kind,
        event_id: id("event_id").unwrap_or_default(),
        booking_id: id("booking_id"),
        property_id: property.to_owned(),
        partition: body["partition"].as_i64().unwrap_or(-1) as i32,
        offset: body["offset"].as_i64().unwrap_or(-1),
    });
}

/// The run's numbers for people.
pub fn summary(result: &OpenLoopResult) -> String {
    let mut out = String::new();
    let mut line = |label: &str, value: String| out.push_str(&format!("  {label:<32} {value}\n"));
    line(
        "target",
        format!(
            "{:.0} requests/s for {:.0} s ({} scheduled)",
            result.rate, result.duration_secs, result.scheduled
        ),
    );
    line(
        "mix",
        result
            .by_kind
            .iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect::<Vec<_>>()
            .join(", "),
    );
    line(
        "sent / shed by generator",
        format!("{} / {}", result.sent, result.shed_by_generator),
    );
    line("achieved", format!("{:.0} answers/s", result.achieved_rate));
    line(
        "answers by status",
        result
            .statuses
            .iter()
            .map(|(s, n)| format!("{s} {n}"))
            .collect::<Vec<_>>()
            .join(", "),
    );
    line("transport errors", result.transport_errors.to_string());
    line(
        "replays naming the same booking",
        format!(
            "{}/{}",
            result.replays_same_booking, result.replays_answered_2xx
        ),
    );
    let p = |p: &Percentiles| {
        format!(
            "p50 {:.2}  p90 {:.2}  p99 {:.2}  p99.9 {:.2}  max {:.2} ms (n={})",
            p.p50, p.p90, p.p99, p.p999, p.max, p.count
        )
    };
    line("2xx latency from due time", p(&result.accepted_latency_ms));
    line("all answers from due time", p(&result.all_latency_ms));
    out
}

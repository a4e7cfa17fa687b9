//! The demo load: a small, realistic day of partner traffic, then a report of what happened.
//!
//! Sets allotments, pushes creates (skewed towards popular properties, some replayed, some
//! invalid), a contention burst of many partners racing for the last rooms of one night,
//! then modifies and cancels of accepted bookings. It waits until the consumers' decisions
//! for every acknowledged event show in the Redis projections and prints a summary. The
//! run's acknowledged events are saved for the store verifier.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{Days, NaiveDate};
use futures::stream::{self, StreamExt};
use hdrhistogram::Histogram;
use http::{Method, StatusCode};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde_json::json;
use uuid::Uuid;

use crate::client::{Answer, PartnerClient};
use crate::progress::Progress;
use crate::record::{AckedEvent, Contention, EventKind, RunRecord};

#[derive(Clone, Debug)]
pub struct DemoConfig {
    pub ingress_url: String,
    pub partner_key: String,
    /// The partner id behind `partner_key`, to derive the ids of refused requests.
    pub partner_id: String,
    pub redis_url: String,
    pub bookings_topic: String,
    pub bookings: usize,
    pub properties: usize,
    pub concurrency: usize,
    pub contention_requests: usize,
    pub contention_rooms: u32,
    pub seed: u64,
    pub wait: Duration,
}

/// Counters and latencies of a run, printed as its summary.
#[derive(Debug)]
pub struct DemoReport {
    pub record: RunRecord,
    pub sent: usize,
    pub retried_503: usize,
    pub refused_4xx: usize,
    pub failed: usize,
    pub replays: usize,
    pub replays_same_id: usize,
    pub latency_us: Histogram<u64>,
    pub statuses: HashMap<String, usize>,
    pub reasons: HashMap<String, usize>,
    pub contention_confirmed: usize,
    pub settled_in: Option<Duration>,
    pub unsettled: usize,
}

/// The first night on sale; far enough ahead to stay valid for years of demo runs.
fn season_start() -> NaiveDate {
    NaiveDate::from_ymd_opt(2030, 3, 1).expect("a valid date")
}

const SEASON_NIGHTS: u64 = 30;
const ROOM_TYPES: [(&str, u32); 2] = [("DBL", 30), ("SGL", 15)];
const CONTENDED_PROPERTY: &str = "last-rooms";

struct Run {
    client: PartnerClient,
    config: DemoConfig,
    report: DemoReport,
}

pub async fn run(config: DemoConfig) -> anyhow::Result<DemoReport> {
    let mut rng = SmallRng::seed_from_u64(config.seed);
    let run_id = format!("{:08x}", rng.random::<u32>());
    let tenant_id = format!("demo-{run_id}");
    let mut run = Run {
        client: PartnerClient::new(&config.ingress_url, &config.partner_key),
        report: DemoReport {
            record: RunRecord {
                run_id: run_id.clone(),
                tenant_id: tenant_id.clone(),
                ..RunRecord::default()
            },
            sent: 0,
            retried_503: 0,
            refused_4xx: 0,
            failed: 0,
            replays: 0,
            replays_same_id: 0,
            latency_us: Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid bounds"),
            statuses: HashMap::new(),
            reasons: HashMap::new(),
            contention_confirmed: 0,
            settled_in: None,
            unsettled: 0,
        },
        config,
    };

    // 1. Inventory for every property, and one contended night.
    let properties: Vec<String> = (0..run.config.properties)
        .map(|i| format!("hotel-{i:02}"))
        .collect();
    let season_end = season_start() + Days::new(SEASON_NIGHTS);
    let mut allotments = Vec::new();
    for property in &properties {
        for (room_type, units) in ROOM_TYPES {
            allotments.push(json!({
                "tenant_id": tenant_id, "property_id": property, "room_type": room_type,
                "from": season_start(), "to": season_end, "units": units,
            }));
        }
    }
    let contended_night = season_start() + Days::new(9);
    allotments.push(json!({
        "tenant_id": tenant_id, "property_id": CONTENDED_PROPERTY, "room_type": "DBL",
        "from": contended_night, "to": contended_night + Days::new(1),
        "units": run.config.contention_rooms,
    }));
    run.report.record.contention = Some(Contention {
        property_id: CONTENDED_PROPERTY.to_owned(),
        room_type: "DBL".to_owned(),
        night: contended_night,
        rooms: run.config.contention_rooms,
        requests: run.config.contention_requests,
    });
    let requests = allotments
        .into_iter()
        .enumerate()
        .map(|(i, body)| Planned {
            kind: EventKind::Allotment,
            method: Method::PUT,
            path: "/v1/inventory".to_owned(),
            key: format!("{run_id}-allot-{i}"),
            body,
            property_id: String::new(),
            booking_id: None,
        })
        .collect();
    run.send_all("inventory", requests).await;

    // 2. Creates: skewed towards the first properties (a few hotels get most traffic),
    // interleaved with the contention burst and a few invalid requests.
    let mut creates = Vec::new();
    for i in 0..run.config.bookings {
        // 1/(rank+1) weights: a Zipf-like skew over the properties.
        let weights: f64 = (1..=properties.len()).map(|r| 1.0 / r as f64).sum();
        let mut pick = rng.random::<f64>() * weights;
        let mut rank = 0;
        while rank + 1 < properties.len() && pick > 1.0 / (rank + 1) as f64 {
            pick -= 1.0 / (rank + 1) as f64;
            rank += 1;
        }
        let (room_type, _) = ROOM_TYPES[rng.random_range(0..ROOM_TYPES.len())];
        let nights = rng.random_range(1..=4u64);
        let check_in = season_start() + Days::new(rng.random_range(0..SEASON_NIGHTS - nights));
        let rooms = rng.random_range(1..=2u32);
        let mut body = json!({
            "tenant_id": tenant_id, "property_id": properties[rank], "room_type": room_type,
            "check_in": check_in, "check_out": check_in + Days::new(nights),
            "rooms": rooms, "guests": rooms * 2,
            "amount_minor": 12_000 * nights * u64::from(rooms), "currency": "EUR",
            "guest_name": format!("Guest {i}"),
        });
        // About 1% are broken the way real integrations break: check-out before check-in.
        if rng.random_ratio(1, 100) {
            body["check_out"] = json!(check_in - Days::new(1));
        }
        creates.push(create(&run_id, &format!("b{i}"), &properties[rank], body));
    }
    for i in 0..run.config.contention_requests {
        let body = json!({
            "tenant_id": tenant_id, "property_id": CONTENDED_PROPERTY, "room_type": "DBL",
            "check_in": contended_night, "check_out": contended_night + Days::new(1),
            "rooms": 1, "guests": 2, "amount_minor": 30_000, "currency": "EUR",
        });
        creates.push(create(
            &run_id,
            &format!("race{i}"),
            CONTENDED_PROPERTY,
            body,
        ));
    }
    shuffle(&mut creates, &mut rng);
    let accepted = run.send_all("creates", creates.clone()).await;

    // 3. Replays of a few accepted creates (same key, same body), then modifies and cancels.
    let mut follow_ups = Vec::new();
    for planned in &accepted {
        if planned.kind != EventKind::Create || planned.property_id == CONTENDED_PROPERTY {
            continue;
        }
        let roll = rng.random_range(0..100);
        if roll < 5 {
            follow_ups.push(Planned {
                kind: EventKind::Create,
                ..planned.clone()
            });
            run.report.replays += 1;
        } else if roll < 15 {
            let booking_id = planned.booking_id.expect("creates carry a booking id");
            let mut body = planned.body.clone();
            let check_in: NaiveDate = serde_json::from_value(body["check_in"].clone())?;
            let check_out: NaiveDate = serde_json::from_value(body["check_out"].clone())?;
            body["check_in"] = json!(check_in + Days::new(1));
            body["check_out"] = json!(check_out + Days::new(1));
            body.as_object_mut()
                .expect("an object")
                .remove("guest_name");
            follow_ups.push(Planned {
                kind: EventKind::Modify,
                method: Method::POST,
                path: format!("/v1/bookings/{booking_id}/modify"),
                key: format!("{}-modify", planned.key),
                body,
                ..planned.clone()
            });
        } else if roll < 25 {
            let booking_id = planned.booking_id.expect("creates carry a booking id");
            follow_ups.push(Planned {
                kind: EventKind::Cancel,
                method: Method::POST,
                path: format!("/v1/bookings/{booking_id}/cancel"),
                key: format!("{}-cancel", planned.key),
                body: json!({
                    "tenant_id": tenant_id, "property_id": planned.property_id,
                    "reason": "guest changed plans",
                }),
                ..planned.clone()
            });
        }
    }
    run.send_all("replays, modifies and cancels", follow_ups)
        .await;

    // 4. Wait for the consumers' decisions to reach the projections.
    crate::settle::wait_for_projections(&mut run.report, &run.config, CONTENDED_PROPERTY).await?;
    Ok(run.report)
}

/// A request the demo will send, and what it is about.
#[derive(Clone, Debug)]
struct Planned {
    kind: EventKind,
    method: Method,
    path: String,
    key: String,
    body: serde_json::Value,
    property_id: String,
    booking_id: Option<Uuid>,
}

fn create(run_id: &str, name: &str, property_id: &str, body: serde_json::Value) -> Planned {
    Planned {
        kind: EventKind::Create,
        method: Method::POST,
        path: "/v1/bookings".to_owned(),
        key: format!("{run_id}-{name}"),
        body,
        property_id: property_id.to_owned(),
        booking_id: None,
    }
}

fn shuffle<T>(items: &mut [T], rng: &mut SmallRng) {
    for i in (1..items.len()).rev() {
        items.swap(i, rng.random_range(0..=i));
    }
}

impl Run {
    /// Sends every request with bounded concurrency; returns those acknowledged, with
    /// their booking ids filled in.
    async fn send_all(&mut self, what: &str, planned: Vec<Planned>) -> Vec<Planned> {
        let client = self.client.clone();
        let mut progress = Progress::new(format!("demo: {what}"), planned.len() as u64, "requests");
        let mut answered = stream::iter(planned)
            .map(|p| {
                let client = client.clone();
                async move {
                    let answer = send_with_retry(&client, &p).await;
                    (p, answer)
                }
            })
            .buffer_unordered(self.config.concurrency);
        let mut answers: Vec<(Planned, Sent)> = Vec::new();
        while let Some(answer) = answered.next().await {
            answers.push(answer);
            progress.set(answers.len() as u64, String::new);
        }
        progress.finish();
        let mut accepted = Vec::new();
        for (mut planned, answer) in answers {
            self.report.sent += 1;
            let (answer, retries) = match answer {
                Ok(answer) => answer,
                Err(_) => {
                    self.report.failed += 1;
                    continue;
                }
            };
            self.report.retried_503 += retries;
            if answer.status == StatusCode::ACCEPTED {
                let _ = self
                    .report
                    .latency_us
                    .record(answer.latency.as_micros().max(1) as u64);
                let body = &answer.body;
                let booking_id = body["booking_id"].as_str().and_then(|s| s.parse().ok());
                if planned.kind == EventKind::Create && planned.booking_id.is_some() {
                    // A replay: the same key and body must name the same booking.
                    if booking_id == planned.booking_id {
                        self.report.replays_same_id += 1;
                    }
                }
                planned.booking_id = booking_id.or(planned.booking_id);
                self.report.record.acked.push(AckedEvent {
                    kind: planned.kind,
                    event_id: body["event_id"]
                        .as_str()
                        .and_then(|s| s.parse().ok())
                        .unwrap_or_default(),
                    booking_id: planned.booking_id,
                    property_id: planned.property_id.clone(),
                    partition: body["partition"].as_i64().unwrap_or(-1) as i32,
                    offset: body["offset"].as_i64().unwrap_or(-1),
                });
                accepted.push(planned);
            } else if answer.status.is_client_error() {
                self.report.refused_4xx += 1;
                // A refused first create must leave no booking; a refused replay names
                // a booking that rightly exists.
                if planned.kind == EventKind::Create && planned.booking_id.is_none() {
                    let tenant = planned.body["tenant_id"].as_str().unwrap_or_default();
                    self.report
                        .record
                        .refused_booking_ids
                        .push(partitioner::booking_id(
                            tenant,
                            &self.config.partner_id,
                            &planned.key,
                        ));
                }
            } else {
                self.report.failed += 1;
            }
        }
        accepted
    }
}

/// The final answer to a request and how many 503s preceded it, or a transport error.
type Sent = Result<(Answer, usize), String>;

/// Sends one request, retrying a 503, a 429 or a 409 (the same key still in flight: an
/// earlier attempt's claim, which clears when that attempt ends) with the same
/// Idempotency-Key as a partner would, a bounded number of times.
async fn send_with_retry(client: &PartnerClient, planned: &Planned) -> Sent {
    let mut retries = 0;
    // A partner's latency runs from the first attempt to the final answer, retries included.
    let started = std::time::Instant::now();
    loop {
        let mut answer = client
            .send(
                planned.method.clone(),
                &planned.path,
                &planned.key,
                &planned.body,
            )
            .await
            .map_err(|e| e.to_string())?;
        let retryable = matches!(
            answer.status,
            StatusCode::SERVICE_UNAVAILABLE | StatusCode::TOO_MANY_REQUESTS | StatusCode::CONFLICT
        );
        if !retryable || retries == 5 {
            answer.latency = started.elapsed();
            return Ok((answer, retries));
        }
        retries += 1;
        tokio::time::sleep(Duration::from_millis(50 * retries as u64)).await;
    }
}

/// Formats the run's summary for people.
pub fn summary(report: &DemoReport) -> String {
    let h = &report.latency_us;
    let ms = |us: u64| us as f64 / 1000.0;
    let acked = report.record.acked.len();
    let mut out = String::new();
    let mut line = |label: &str, value: String| {
        out.push_str(&format!("  {label:<34} {value}\n"));
    };
    line("requests sent", report.sent.to_string());
    line("acknowledged (202)", acked.to_string());
    line(
        "refused with 4xx (never published)",
        report.refused_4xx.to_string(),
    );
    line(
        "503/429/409 retried, same key",
        report.retried_503.to_string(),
    );
    line("failed after retries", report.failed.to_string());
    line(
        "replays answered with the same id",
        format!("{}/{}", report.replays_same_id, report.replays),
    );
    line(
        "request -> ack latency",
        format!(
            "p50 {:.2} ms  p99 {:.2} ms  max {:.2} ms",
            ms(h.value_at_quantile(0.5)),
            ms(h.value_at_quantile(0.99)),
            ms(h.max())
        ),
    );
    let mut statuses: Vec<_> = report.statuses.iter().collect();
    statuses.sort();
    line(
        "bookings by final status",
        statuses
            .iter()
            .map(|(s, n)| format!("{s} {n}"))
            .collect::<Vec<_>>()
            .join(", "),
    );
    let mut reasons: Vec<_> = report.reasons.iter().collect();
    reasons.sort();
    line(
        "rejections by reason",
        reasons
            .iter()
            .map(|(s, n)| format!("{s} {n}"))
            .collect::<Vec<_>>()
            .join(", "),
    );
    if let Some(c) = &report.record.contention {
        line(
            "contention for the last rooms",
            format!(
                "{} requests for {} rooms -> {} confirmed",
                c.requests, c.rooms, report.contention_confirmed
            ),
        );
    }
    line(
        "decisions visible in projections",
        match report.settled_in {
            Some(t) => format!("all, {:.1} s after the last ack", t.as_secs_f64()),
            None => format!("{} events still pending", report.unsettled),
        },
    );
    out
}

//! Stage 3: the ingress against the HTTP-to-Kafka bridge a user could deploy instead, the
//! Strimzi Kafka Bridge, on the same Kafka, the same fresh topic and the same records:
//! both saturated by both generators over the same connections, then both at the same
//! fixed open-loop rates; Kafka's own producers (stage 2) are the ceiling.
//!
//! The ingress does its full work here (auth, validation, both idempotency tiers,
//! publishing with `acks=all`); the bridge only publishes. Both answer after the broker's
//! acknowledgement.

use std::time::Duration;

use serde_json::json;

use super::peer_charts;
use super::servers::{start_ingress, start_kafka_bridge, with_cpu};
use super::{Bench, Saturated, PROPERTIES};
use crate::closed_loop::{self, ClosedLoopConfig};
use crate::endpoint::Endpoint;
use crate::fixed_rate::{self, FixedRateConfig, FixedRateResult};
use crate::ratios::{columns, thousands, Row, Target};

/// One server's side of the comparison.
struct Side {
    saturated: Saturated,
    at_rates: Vec<FixedRateResult>,
}

impl Bench {
    pub(super) async fn ingress_against_kafka_bridge(&mut self) -> anyhow::Result<()> {
        eprintln!("[bench] stage 3: the ingress against the Strimzi Kafka Bridge, same Kafka");
        let Some(home) = self.args.kafka_bridge_home.clone() else {
            self.rows.push(Row::unavailable(
                "3 ingress / Kafka Bridge",
                "no --kafka-bridge-home (KAFKA_BRIDGE_HOME): Maven Central does not serve \
                 the bridge; unpack its release archive and name the directory"
                    .into(),
            ));
            return Ok(());
        };
        let topic = format!("bench-{}-peer", self.run_id);
        consumers::topics::ensure_topics(&self.args.brokers, &[(&topic, 12)], 1).await?;
        let ingress_endpoint = Endpoint::ingress(&self.args.partner_key);
        let bridge_endpoint = Endpoint::kafka_bridge(&topic, PROPERTIES);

        // Both saturations first, so each server is then held at half of either.
        let ingress = self.start_peer_ingress(&topic, "peer").await?;
        let load = self.peer_load(&ingress_endpoint, self.args.warmup_secs, "peer");
        let ingress_saturated = self
            .saturate_with_both(3, "ingress", ingress.pid(), load)
            .await;
        ingress.stop().await?;
        let ingress_saturated = ingress_saturated?;

        let (bridge, version) = start_kafka_bridge(&self.args, &home).await?;
        let load = self.peer_load(&bridge_endpoint, self.args.bridge_warmup_secs, "bridge");
        let bridge_saturated = self
            .saturate_with_both(3, "Kafka Bridge", bridge.pid(), load)
            .await;
        let bridge_saturated = match bridge_saturated {
            Ok(saturated) => saturated,
            Err(e) => {
                bridge.stop().await?;
                return Err(e);
            }
        };
        let rates = self.peer_rates(
            bridge_saturated.ours.ok_rate,
            ingress_saturated.ours.ok_rate,
        );
        let bridge_rates = self
            .at_rates("Kafka Bridge", bridge.pid(), &bridge_endpoint, &rates)
            .await;
        bridge.stop().await?;
        let bridge = Side {
            saturated: bridge_saturated,
            at_rates: bridge_rates?,
        };

        // A fresh ingress, warmed up as in its saturation run.
        let ingress = self.start_peer_ingress(&topic, "peer-rates").await?;
        let warm = self.peer_load(&ingress_endpoint, 0, "peer-warm");
        let warmed = closed_loop::run(ClosedLoopConfig {
            duration: Duration::from_secs(self.args.warmup_secs.max(1)),
            ..warm
        })
        .await;
        let ingress_rates = match warmed {
            Ok(_) => {
                self.at_rates("ingress", ingress.pid(), &ingress_endpoint, &rates)
                    .await
            }
            Err(e) => Err(e),
        };
        ingress.stop().await?;
        let ingress = Side {
            saturated: ingress_saturated,
            at_rates: ingress_rates?,
        };

        self.peer_table = Some(self.side_by_side(&version, &bridge, &ingress));
        self.peer_rows(&bridge, &ingress);
        self.json.insert(
            "kafka_bridge".into(),
            json!({
                "version": version, "connections": self.args.peer_connections,
                "bridge": side_json(&bridge), "ingress": side_json(&ingress),
                "ceilings": self.ceilings,
            }),
        );
        self.charts.extend(peer_charts::draw(
            &[
                ("ingress", &ingress.at_rates),
                ("Kafka Bridge", &bridge.at_rates),
            ],
            self.args.peer_connections,
        )?);
        Ok(())
    }

    async fn start_peer_ingress(
        &self,
        topic: &str,
        tag: &str,
    ) -> anyhow::Result<crate::child::Child> {
        let prefix = format!("{}-{tag}", self.run_id);
        start_ingress(&self.args, &self.ingress_bin, "kafka", topic, &prefix).await
    }

    fn peer_load(&self, endpoint: &Endpoint, warmup: u64, tag: &str) -> ClosedLoopConfig {
        ClosedLoopConfig {
            endpoint: endpoint.clone(),
            ..self.saturate(self.args.peer_connections, warmup, self.args.secs, tag)
        }
    }

    /// The configured rates and half of each server's saturation, in increasing order.
    fn peer_rates(&self, bridge_saturation: f64, ingress_saturation: f64) -> Vec<f64> {
        let mut rates = self.args.peer_rates.clone();
        rates.extend([bridge_saturation / 2.0, ingress_saturation / 2.0]);
        rates.retain(|rate| *rate >= 1.0);
        rates.sort_by(f64::total_cmp);
        rates.dedup_by(|a, b| (*a - *b).abs() < 1.0);
        rates
    }

    /// The running server `name` at each of `rates` in turn.
    async fn at_rates(
        &mut self,
        name: &str,
        pid: u32,
        endpoint: &Endpoint,
        rates: &[f64],
    ) -> anyhow::Result<Vec<FixedRateResult>> {
        let mut results = Vec::new();
        for &rate in rates {
            let config = FixedRateConfig {
                addr: self.api.clone(),
                endpoint: endpoint.clone(),
                connections: self.args.peer_connections,
                rate,
                duration: Duration::from_secs(self.args.peer_rate_secs),
                run_id: format!("{}-rate{rate:.0}", self.run_id),
                properties: PROPERTIES,
                // A second of arrivals: beyond that the server is saturated anyway.
                max_queued: rate.max(1000.0) as usize,
            };
            let (result, cpu) = with_cpu(&[(name, pid)], &self.args, fixed_rate::run(config)).await;
            let result = result?;
            self.notes.push(format!(
                "3 {name} at {} req/s: answers {:?}, shed {}, transport errors {}: {cpu}",
                thousands(rate),
                result.statuses,
                result.shed_by_generator,
                result.transport_errors
            ));
            results.push(result);
        }
        Ok(results)
    }

    /// The peer table: each figure for the bridge and the ingress, and how many times
    /// better the ingress does.
    fn side_by_side(&self, version: &str, bridge: &Side, ingress: &Side) -> String {
        let conns = self.args.peer_connections;
        let mut lines = vec![vec![
            format!("stage 3, {conns} connections"),
            format!("Strimzi Kafka Bridge {version}"),
            "ingress".to_owned(),
            "ingress better by".to_owned(),
        ]];
        let times = |better: f64, worse: f64| format!("{:.2}x", better / worse.max(1e-9));
        let (b, i) = (&bridge.saturated, &ingress.saturated);
        lines.push(vec![
            "acknowledged req/s at saturation, our generator".into(),
            thousands(b.ours.ok_rate),
            thousands(i.ours.ok_rate),
            times(i.ours.ok_rate, b.ours.ok_rate),
        ]);
        if let (Ok(bw), Ok(iw)) = (&b.wrk, &i.wrk) {
            lines.push(vec![
                "acknowledged req/s at saturation, wrk".into(),
                thousands(bw.ok_rate),
                thousands(iw.ok_rate),
                times(iw.ok_rate, bw.ok_rate),
            ]);
        }
        lines.push(vec![
            "server CPU per acknowledged request".into(),
            format!("{:.1} µs", b.cpu_us),
            format!("{:.1} µs", i.cpu_us),
            times(b.cpu_us, i.cpu_us),
        ]);
        for (b, i) in bridge.at_rates.iter().zip(&ingress.at_rates) {
            let cell = |r: &FixedRateResult| {
                let l = &r.latency_ms;
                let mut text = format!("{:.2} / {:.2} / {:.2}", l.p50, l.p99, l.p999);
                // A server that could not keep up is said to, beside its latency.
                if !r.kept_up() {
                    text.push_str(&format!(" ({} acked/s)", thousands(r.acknowledged_rate)));
                }
                text
            };
            lines.push(vec![
                format!("ack p50 / p99 / p99.9 ms at {} req/s", thousands(b.rate)),
                cell(b),
                cell(i),
                times(b.latency_ms.p99, i.latency_ms.p99),
            ]);
        }
        for (name, rate) in &self.ceilings {
            lines.push(vec![format!(
                "ceiling, {name} (stage 2): {} ev/s",
                thousands(*rate)
            )]);
        }
        columns(&lines)
    }

    /// The peer's rows in the ratio table, held to the performance goals.
    fn peer_rows(&mut self, bridge: &Side, ingress: &Side) {
        let (b, i) = (&bridge.saturated, &ingress.saturated);
        self.rows.push(Row::ratio(
            &format!(
                "3 ingress / Kafka Bridge ({} conns)",
                self.args.peer_connections
            ),
            i.ours.ok_rate,
            b.ours.ok_rate,
            "req/s",
            2.0,
        ));
        self.rows.push(match (&i.wrk, &b.wrk) {
            (Ok(iw), Ok(bw)) => Row::ratio(
                "3 same, driven by wrk",
                iw.ok_rate,
                bw.ok_rate,
                "req/s",
                2.0,
            ),
            (Err(why), _) | (_, Err(why)) => Row::unavailable("3 same, driven by wrk", why.clone()),
        });
        self.rows.push(
            Row::cost(
                "3 server CPU per acknowledged request, ingress vs bridge",
                i.cpu_us,
                b.cpu_us,
            )
            .held_to(Target::RatioAtLeast(3.0)),
        );
        let half = i.ours.ok_rate / 2.0;
        let nearest = ingress
            .at_rates
            .iter()
            .min_by(|x, y| (x.rate - half).abs().total_cmp(&(y.rate - half).abs()));
        if let Some(at_half) = nearest {
            let l = &at_half.latency_ms;
            self.rows.push(Row::latency(
                &format!(
                    "3 ingress request -> ack p99 at {} req/s (half saturation)",
                    thousands(at_half.rate)
                ),
                l.p99,
                format!("{:.2} ms (p50 {:.2})", l.p99, l.p50),
                10.0,
            ));
        }
    }
}

fn side_json(side: &Side) -> serde_json::Value {
    json!({
        "saturated": side.saturated.ours, "cpu_us_per_acknowledged": side.saturated.cpu_us,
        "wrk": side.saturated.wrk.as_ref().ok(), "at_rates": side.at_rates,
    })
}

//! The five stages of `bench-pipeline`, each beside its baseline.

use std::time::{Duration, Instant};

use serde_json::json;

use super::servers::{caught_up, soak, start_ingress, with_cpu};
use super::{Bench, PROPERTIES};
use crate::child::{self, Child};
use crate::closed_loop;
use crate::ratios::{thousands, Row};
use crate::{bench, e2e, produce};

impl Bench {
    /// Stage 1: the ingress's own cost: the null sink against a bare hyper handler.
    pub(super) async fn ingress_against_bare_hyper(&mut self) -> anyhow::Result<()> {
        eprintln!(
            "[bench] stage 1: the ingress (null sink) against bare hyper, our generator and wrk"
        );
        let listen = self.api.clone();
        let mut bare = Child::spawn(
            "bare-hyper",
            &self.here,
            &["bare-hyper", "--listen", &listen],
            &[],
            &self.args.logs,
        )?;
        bare.wait_until(Duration::from_secs(10), || child::listening(&listen))
            .await?;
        let bare_run = self
            .saturate_with_both(1, "bare hyper", bare.pid(), self.stage_one_load("bare"))
            .await;
        bare.stop().await?;
        let bare_run = bare_run?;

        let args = &self.args;
        let null = start_ingress(
            args,
            &self.ingress_bin,
            "null",
            "bookings",
            &format!("{}-null", self.run_id),
        )
        .await?;
        let null_run = self
            .saturate_with_both(
                1,
                "ingress (null sink)",
                null.pid(),
                self.stage_one_load("null"),
            )
            .await;
        null.stop().await?;
        let null_run = null_run?;

        self.rows.push(Row::ratio(
            &format!(
                "1 ingress null sink / bare hyper ({} conns)",
                self.args.connections
            ),
            null_run.ours.ok_rate,
            bare_run.ours.ok_rate,
            "req/s",
            0.70,
        ));
        self.rows.push(match (&null_run.wrk, &bare_run.wrk) {
            (Ok(null), Ok(bare)) => Row::ratio(
                "1 same, driven by wrk",
                null.ok_rate,
                bare.ok_rate,
                "req/s",
                0.70,
            ),
            (Err(why), _) | (_, Err(why)) => Row::unavailable("1 same, driven by wrk", why.clone()),
        });
        // Throughput on a shared machine follows the CPU the server gets; CPU per request
        // does not, so it says what a core of its own would give.
        self.rows.push(Row::cost(
            "1 server CPU per request, ingress vs bare",
            null_run.cpu_us,
            bare_run.cpu_us,
        ));
        let json = &mut self.json;
        json.insert(
            "cpu_us_per_request".into(),
            json!({"bare_hyper": bare_run.cpu_us, "ingress_null_sink": null_run.cpu_us}),
        );
        json.insert("bare_hyper".into(), json!(bare_run.ours));
        json.insert("ingress_null_sink".into(), json!(null_run.ours));
        json.insert("wrk_bare_hyper".into(), json!(bare_run.wrk.as_ref().ok()));
        json.insert(
            "wrk_ingress_null_sink".into(),
            json!(null_run.wrk.as_ref().ok()),
        );
        Ok(())
    }

    /// Stage 2: the ingress publishing against the raw producer, on one fresh topic;
    /// returns the ingress's acknowledged rate.
    pub(super) async fn ingress_against_raw_producer(&mut self) -> anyhow::Result<f64> {
        eprintln!("[bench] stage 2: the ingress publishing against the raw producer");
        let args = &self.args;
        let topic = format!("bench-{}-ingress", self.run_id);
        consumers::topics::ensure_topics(&args.brokers, &[(&topic, 12)], 1).await?;
        let map = partitioner::PartitionMap::parse(12, "")?;
        let events = produce::synthetic_events("bench-raw", args.raw_events, PROPERTIES);
        let broker_pids: Vec<(&str, u32)> = Vec::new();
        let (raw, cpu) = with_cpu(
            &broker_pids,
            args,
            produce::produce(&args.brokers, &topic, &map, &events),
        )
        .await;
        let raw = raw?;
        self.ceilings.push(("raw rdkafka producer", raw.rate()));
        self.notes.push(format!(
            "2 raw producer ({} events, 2000 in flight): {cpu}",
            raw.events
        ));
        let kafka = start_ingress(
            args,
            &self.ingress_bin,
            "kafka",
            &topic,
            &format!("{}-kafka", self.run_id),
        )
        .await?;
        let pids = [("ingress", kafka.pid())];
        let config = self.saturate(
            args.broker_connections,
            args.warmup_secs,
            args.secs,
            "kafka",
        );
        let (published, cpu) = with_cpu(&pids, args, closed_loop::run(config)).await;
        kafka.stop().await?;
        let published = published?;
        self.notes.push(format!(
            "2 ingress to the broker, {} conns: {cpu}; answers {:?}",
            args.broker_connections, published.statuses
        ));
        self.rows.push(Row::ratio(
            "2 ingress to broker / raw producer",
            published.ok_rate,
            raw.rate(),
            "ev/s",
            0.80,
        ));
        match &args.kafka_sh {
            Some(kafka_sh) => {
                // The same records' mean size, as the Java client sends fixed-size ones.
                let size =
                    events.iter().map(|e| e.to_json().len()).sum::<usize>() / events.len().max(1);
                let java = super::kafka_perf::producer_perf_test(
                    kafka_sh,
                    &args.brokers,
                    &topic,
                    args.raw_events,
                    size,
                )
                .await?;
                self.notes.push(format!(
                    "2 kafka-producer-perf-test: {} records of {size} B",
                    args.raw_events
                ));
                self.rows.push(Row::ratio(
                    "2 ingress to broker / Kafka producer perf test",
                    published.ok_rate,
                    java,
                    "ev/s",
                    0.80,
                ));
                self.json.insert("kafka_perf_test_rate".into(), json!(java));
                self.ceilings.push(("kafka-producer-perf-test", java));
            }
            None => self
                .notes
                .push("2 kafka-producer-perf-test: skipped (no --kafka-sh)".into()),
        }
        self.json
            .insert("raw_producer_rate".into(), json!(raw.rate()));
        self.json
            .insert("ingress_to_broker".into(), json!(published));
        Ok(published.ok_rate)
    }

    /// Stage 4: the consumers against the raw store.
    pub(super) async fn consumers_against_raw_store(&mut self) -> anyhow::Result<()> {
        eprintln!("[bench] stage 4: the consumers against the raw store");
        let args = &self.args;
        let measured = bench::consumers(bench::BenchConfig {
            brokers: args.brokers.clone(),
            redis_url: args.redis_url.clone(),
            events: args.consumer_events,
            properties: PROPERTIES,
            partitions: 12,
            batch: 500,
        })
        .await?;
        self.rows.push(Row::ratio(
            "4 consumer drain / raw store writes",
            measured.consumer_rate,
            measured.store_rate,
            "ev/s",
            0.80,
        ));
        self.notes.push(format!(
            "4 consumer ({} events): raw consumer fetch from the broker {} ev/s, group join and first batch {:.2} s",
            measured.events,
            thousands(measured.fetch_rate),
            measured.join.as_secs_f64()
        ));
        self.json.insert(
            "consumers".into(),
            json!({
                "events": measured.events, "store_rate": measured.store_rate,
                "produce_rate": measured.produce_rate, "fetch_rate": measured.fetch_rate,
                "consumer_rate": measured.consumer_rate, "join_secs": measured.join.as_secs_f64(),
            }),
        );
        Ok(())
    }

    /// Stage 5: request-to-acknowledgement and accept-to-projection latency, open loop,
    /// the consumer running, at half the whole pipeline's saturation on this machine:
    /// the ingress saturated with the consumer beside it, bounded by the pace at which
    /// the consumer applied what was accepted (the load's start to its catching up).
    /// Stage 2's rate has no consumer sharing the cores, so half of it can be past what
    /// the pipeline sustains here, and its latencies would then be queueing.
    pub(super) async fn end_to_end_latency(&mut self) -> anyhow::Result<()> {
        eprintln!("[bench] stage 5: request to acknowledgement and to projection, open loop");
        let args = &self.args;
        let consumer_admin = format!("127.0.0.1:{}", args.consumer_admin_port);
        let mut consumer = Child::spawn(
            "consumer",
            &self.consumer_bin,
            &[],
            &[
                ("CONSUMER_STORE_DIR", args.store_dir.display().to_string()),
                ("CONSUMER_ADMIN_ADDR", consumer_admin.clone()),
                ("CONSUMER_KAFKA_BROKERS", args.brokers.clone()),
                ("CONSUMER_REDIS_URL", args.redis_url.clone()),
                ("RUST_LOG", "warn".into()),
            ],
            &args.logs,
        )?;
        consumer
            .wait_until(Duration::from_secs(60), || child::ready(&consumer_admin))
            .await?;
        let kafka = start_ingress(
            args,
            &self.ingress_bin,
            "kafka",
            "bookings",
            &format!("{}-e2e", self.run_id),
        )
        .await?;
        caught_up(&self.consumer_bin, &args.brokers).await?;
        let pids = [("ingress", kafka.pid()), ("consumer", consumer.pid())];

        let config = self.saturate(
            args.broker_connections,
            args.warmup_secs,
            args.secs,
            "e2e-saturation",
        );
        let started = Instant::now();
        let (saturated, cpu) = with_cpu(&pids, args, closed_loop::run(config)).await;
        let saturated = saturated?;
        caught_up(&self.consumer_bin, &args.brokers).await?;
        let applied_pace = saturated.total_answers as f64 / started.elapsed().as_secs_f64();
        let saturation = saturated.ok_rate.min(applied_pace);
        let rate = (saturation / 2.0).max(50.0);
        self.notes.push(format!(
            "5 pipeline saturation: ingress {} req/s acknowledged with the consumer beside it, consumer applied {} ev/s from the load's start to catching up; half of the lower: {} req/s: {cpu}",
            thousands(saturated.ok_rate), thousands(applied_pace), thousands(rate)
        ));
        let (latency, cpu) = with_cpu(
            &pids,
            args,
            e2e::run(e2e::E2eConfig {
                ingress_url: format!("http://{}", self.api),
                partner_key: args.partner_key.clone(),
                redis_url: args.redis_url.clone(),
                rate,
                duration: Duration::from_secs(args.e2e_secs),
                sample_every: args.sample_every,
                properties: PROPERTIES,
                max_in_flight: 1024,
                run_id: format!("{}-e2e", self.run_id),
            }),
        )
        .await;
        kafka.stop().await?;
        consumer.stop().await?;
        let latency = latency?;
        self.notes.push(format!(
            "5 open loop at {} req/s for {} s: answers {:?}, shed by generator {}, {} samples ({} never visible): {cpu}",
            thousands(rate), args.e2e_secs, latency.statuses, latency.shed_by_generator, latency.samples, latency.samples_missing
        ));
        self.rows.push(Row::latency(
            &format!(
                "5 request -> ack p99 at {} req/s (half pipeline saturation)",
                thousands(rate)
            ),
            latency.ack_p99_ms,
            format!(
                "{:.2} ms (p50 {:.2})",
                latency.ack_p99_ms, latency.ack_p50_ms
            ),
            10.0,
        ));
        self.rows.push(Row::latency(
            "5 accept -> projection p99",
            latency.projection_p99_ms,
            format!(
                "{:.1} ms (p50 {:.1})",
                latency.projection_p99_ms, latency.projection_p50_ms
            ),
            100.0,
        ));
        self.json.insert("end_to_end".into(), json!(latency));
        Ok(())
    }

    /// Stage 6: memory over a soak: a fresh null-sink ingress, every key new.
    pub(super) async fn memory_over_soak(&mut self) -> anyhow::Result<()> {
        eprintln!("[bench] stage 6: ingress memory over the soak");
        let args = &self.args;
        let config = self.saturate(args.connections, 0, args.soak_secs, "soak");
        let (soak, samples) = soak(args, &self.ingress_bin, &self.run_id, &config).await?;
        let mib = |kib: u64| kib as f64 / 1024.0;
        let start = samples.first().map_or(0, |s| s.1);
        let end = samples.last().map_or(0, |s| s.1);
        let peak = samples.iter().map(|s| s.1).max().unwrap_or(0);
        let per_100k = (mib(end) - mib(start)) / soak.total_answers.max(1) as f64 * 100_000.0;
        self.rows.push(Row::info(
            &format!(
                "6 ingress RSS over {} s, {} requests",
                args.soak_secs,
                thousands(soak.total_answers as f64)
            ),
            format!(
                "{:.1} / {:.1} / {:.1} MB, {per_100k:.1} MB per 100k",
                mib(start),
                mib(peak),
                mib(end)
            ),
            format!(
                "start/peak/end; dedup cache {} entries",
                thousands(args.dedup_entries as f64)
            ),
        ));
        self.json.insert(
            "soak".into(),
            json!({
                "secs": args.soak_secs, "requests": soak.total_answers, "ok_rate": soak.ok_rate,
                "dedup_entries": args.dedup_entries, "rss_kib": samples,
                "mb_per_100k_requests": per_100k,
            }),
        );
        Ok(())
    }
}

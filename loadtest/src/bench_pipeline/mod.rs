//! `loadtest bench-pipeline`: every stage beside its baseline, measured in one run on one
//! machine, so the ratios hold however busy the machine is.
//!
//! 1. the ingress with the null sink (`INGRESS_SINK=null`) against a bare hyper handler
//!    ([`crate::bare`]), both driven by the same closed-loop generator
//!    ([`crate::closed_loop`]) and by wrk ([`crate::wrk`]);
//! 2. the ingress publishing to the broker against the raw idempotent producer
//!    ([`crate::produce`]), on one fresh topic;
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
mod servers;

pub use args::BenchPipelineArgs;
use servers::{caught_up, load_average, soak, start_ingress, with_cpu};

use crate::child::{self, Child};
use crate::closed_loop::{self, ClosedLoopConfig};
use crate::ratios::{thousands, Row};
use crate::{bench, e2e, produce, wrk};

pub struct Report {
    pub rows: Vec<Row>,
    /// What bounded each stage: CPU shares and the like, printed under the table.
    pub notes: Vec<String>,
    pub json: serde_json::Value,
}

const PROPERTIES: usize = 200;

pub async fn run(args: BenchPipelineArgs) -> anyhow::Result<Report> {
    let here = std::env::current_exe()?;
    let dir = here.parent().unwrap_or(Path::new(".")).to_owned();
    let ingress_bin = args.ingress_bin.clone().unwrap_or(dir.join("ingress"));
    let consumer_bin = args.consumer_bin.clone().unwrap_or(dir.join("consumer"));
    let api = format!("127.0.0.1:{}", args.port);
    let run_id = format!("{:08x}", rand::random::<u32>());
    let mut rows = Vec::new();
    let mut notes = vec![format!("load average at start: {}", load_average())];
    let mut json = serde_json::Map::new();
    let saturate = |connections, warmup, secs, tag: &str| ClosedLoopConfig {
        addr: api.clone(),
        partner_key: args.partner_key.clone(),
        connections,
        warmup: Duration::from_secs(warmup),
        duration: Duration::from_secs(secs),
        run_id: format!("{run_id}-{tag}"),
        properties: PROPERTIES,
    };
    let secs = args.secs;

    eprintln!("[bench] stage 1: the ingress (null sink) against bare hyper, our generator and wrk");
    // 1. The ingress's own cost: null sink against a bare hyper handler.
    let mut bare = Child::spawn(
        "bare-hyper",
        &here,
        &["bare-hyper", "--listen", &api],
        &[],
        &args.logs,
    )?;
    bare.wait_until(Duration::from_secs(10), || child::listening(&api))
        .await?;
    let pids = [("bare hyper", bare.pid())];
    let (bare_ours, cpu) = with_cpu(
        &pids,
        &args,
        closed_loop::run(saturate(args.connections, args.warmup_secs, secs, "bare")),
    )
    .await;
    let bare_ours = bare_ours?;
    let bare_cpu_us = cpu.of("bare hyper") * 1e6 / bare_ours.total_answers.max(1) as f64;
    notes.push(format!("1 bare hyper, our generator: {cpu}"));
    let (bare_wrk, cpu) = with_cpu(
        &pids,
        &args,
        wrk::run(
            &format!("http://{api}"),
            args.connections,
            Duration::from_secs(secs),
            &format!("{run_id}-wrkbare"),
            &args.partner_key,
        ),
    )
    .await;
    notes.push(format!("1 bare hyper, wrk: {cpu}"));
    bare.stop().await?;

    let null = start_ingress(
        &args,
        &ingress_bin,
        "null",
        "bookings",
        &format!("{run_id}-null"),
    )
    .await?;
    let pids = [("ingress", null.pid())];
    let (null_ours, cpu) = with_cpu(
        &pids,
        &args,
        closed_loop::run(saturate(args.connections, args.warmup_secs, secs, "null")),
    )
    .await;
    let null_ours = null_ours?;
    let null_cpu_us = cpu.of("ingress") * 1e6 / null_ours.total_answers.max(1) as f64;
    notes.push(format!("1 ingress (null sink), our generator: {cpu}"));
    let (null_wrk, cpu) = with_cpu(
        &pids,
        &args,
        wrk::run(
            &format!("http://{api}"),
            args.connections,
            Duration::from_secs(secs),
            &format!("{run_id}-wrknull"),
            &args.partner_key,
        ),
    )
    .await;
    notes.push(format!("1 ingress (null sink), wrk: {cpu}"));
    null.stop().await?;
    rows.push(Row::ratio(
        &format!(
            "1 ingress null sink / bare hyper ({} conns)",
            args.connections
        ),
        null_ours.ok_rate,
        bare_ours.ok_rate,
        "req/s",
        0.70,
    ));
    rows.push(match (&null_wrk, &bare_wrk) {
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
    rows.push(Row::cost(
        "1 server CPU per request, ingress vs bare",
        null_cpu_us,
        bare_cpu_us,
    ));
    json.insert(
        "cpu_us_per_request".into(),
        json!({"bare_hyper": bare_cpu_us, "ingress_null_sink": null_cpu_us}),
    );
    json.insert("bare_hyper".into(), json!(bare_ours));
    json.insert("ingress_null_sink".into(), json!(null_ours));
    json.insert("wrk_bare_hyper".into(), json!(bare_wrk.as_ref().ok()));
    json.insert(
        "wrk_ingress_null_sink".into(),
        json!(null_wrk.as_ref().ok()),
    );

    eprintln!("[bench] stage 2: the ingress publishing against the raw producer");
    // 2. The ingress publishing against the raw producer, on one fresh topic.
    let topic = format!("bench-{run_id}-ingress");
    consumers::topics::ensure_topics(&args.brokers, &[(&topic, 12)], 1).await?;
    let map = partitioner::PartitionMap::parse(12, "")?;
    let events = produce::synthetic_events("bench-raw", args.raw_events, PROPERTIES);
    let broker_pids: Vec<(&str, u32)> = Vec::new();
    let (raw, cpu) = with_cpu(
        &broker_pids,
        &args,
        produce::produce(&args.brokers, &topic, &map, &events),
    )
    .await;
    let raw = raw?;
    notes.push(format!(
        "2 raw producer ({} events, 2000 in flight): {cpu}",
        raw.events
    ));
    let kafka = start_ingress(
        &args,
        &ingress_bin,
        "kafka",
        &topic,
        &format!("{run_id}-kafka"),
    )
    .await?;
    let pids = [("ingress", kafka.pid())];
    let (published, cpu) = with_cpu(
        &pids,
        &args,
        closed_loop::run(saturate(
            args.broker_connections,
            args.warmup_secs,
            secs,
            "kafka",
        )),
    )
    .await;
    let published = published?;
    notes.push(format!(
        "2 ingress to the broker, {} conns: {cpu}; answers {:?}",
        args.broker_connections, published.statuses
    ));
    kafka.stop().await?;
    rows.push(Row::ratio(
        "2 ingress to broker / raw producer",
        published.ok_rate,
        raw.rate(),
        "ev/s",
        0.80,
    ));
    json.insert("raw_producer_rate".into(), json!(raw.rate()));
    json.insert("ingress_to_broker".into(), json!(published));

    eprintln!("[bench] stage 3: the consumers against the raw store");
    // 3. The consumers against the raw store.
    let consumer_bench = bench::consumers(bench::BenchConfig {
        brokers: args.brokers.clone(),
        redis_url: args.redis_url.clone(),
        events: args.consumer_events,
        properties: PROPERTIES,
        partitions: 12,
        batch: 500,
    })
    .await?;
    rows.push(Row::ratio(
        "3 consumer drain / raw store writes",
        consumer_bench.consumer_rate,
        consumer_bench.store_rate,
        "ev/s",
        0.80,
    ));
    notes.push(format!(
        "3 consumer ({} events): raw consumer fetch from the broker {} ev/s, group join and first batch {:.2} s",
        consumer_bench.events,
        thousands(consumer_bench.fetch_rate),
        consumer_bench.join.as_secs_f64()
    ));
    json.insert("consumers".into(), json!({
        "events": consumer_bench.events, "store_rate": consumer_bench.store_rate,
        "produce_rate": consumer_bench.produce_rate, "fetch_rate": consumer_bench.fetch_rate,
        "consumer_rate": consumer_bench.consumer_rate, "join_secs": consumer_bench.join.as_secs_f64(),
    }));

    eprintln!("[bench] stage 4: request to acknowledgement and to projection, open loop");
    // 4. Latency at half the ingress's saturating rate, the consumer running.
    let rate = (published.ok_rate / 2.0).max(50.0);
    let consumer_admin = format!("127.0.0.1:{}", args.consumer_admin_port);
    let mut consumer = Child::spawn(
        "consumer",
        &consumer_bin,
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
        &args,
        &ingress_bin,
        "kafka",
        "bookings",
        &format!("{run_id}-e2e"),
    )
    .await?;
    caught_up(&consumer_bin, &args.brokers).await?;
    let pids = [("ingress", kafka.pid()), ("consumer", consumer.pid())];
    let (latency, cpu) = with_cpu(
        &pids,
        &args,
        e2e::run(e2e::E2eConfig {
            ingress_url: format!("http://{api}"),
            partner_key: args.partner_key.clone(),
            redis_url: args.redis_url.clone(),
            rate,
            duration: Duration::from_secs(args.e2e_secs),
            sample_every: args.sample_every,
            properties: PROPERTIES,
            max_in_flight: 1024,
            run_id: format!("{run_id}-e2e"),
        }),
    )
    .await;
    let latency = latency?;
    notes.push(format!(
        "4 open loop at {} req/s for {} s: answers {:?}, shed by generator {}, {} samples ({} never visible): {cpu}",
        thousands(rate), args.e2e_secs, latency.statuses, latency.shed_by_generator, latency.samples, latency.samples_missing
    ));
    kafka.stop().await?;
    consumer.stop().await?;
    rows.push(Row::latency(
        &format!("4 request -> ack p99 at {} req/s", thousands(rate)),
        latency.ack_p99_ms,
        format!(
            "{:.2} ms (p50 {:.2})",
            latency.ack_p99_ms, latency.ack_p50_ms
        ),
        10.0,
    ));
    rows.push(Row::latency(
        "4 accept -> projection p99",
        latency.projection_p99_ms,
        format!(
            "{:.1} ms (p50 {:.1})",
            latency.projection_p99_ms, latency.projection_p50_ms
        ),
        250.0,
    ));
    json.insert("end_to_end".into(), json!(latency));

    eprintln!("[bench] stage 5: ingress memory over the soak");
    // 5. Memory over a soak, a fresh null-sink ingress, every key new.
    let (soak, samples) = soak(
        &args,
        &ingress_bin,
        &run_id,
        &saturate(args.connections, 0, args.soak_secs, "soak"),
    )
    .await?;
    let mib = |kib: u64| kib as f64 / 1024.0;
    let start = samples.first().map_or(0, |s| s.1);
    let end = samples.last().map_or(0, |s| s.1);
    let peak = samples.iter().map(|s| s.1).max().unwrap_or(0);
    let per_100k = (mib(end) - mib(start)) / soak.total_answers.max(1) as f64 * 100_000.0;
    rows.push(Row::info(
        &format!(
            "5 ingress RSS over {} s, {} requests",
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
    json.insert(
        "soak".into(),
        json!({
            "secs": args.soak_secs, "requests": soak.total_answers, "ok_rate": soak.ok_rate,
            "dedup_entries": args.dedup_entries, "rss_kib": samples,
            "mb_per_100k_requests": per_100k,
        }),
    );

    notes.push(format!("load average at end: {}", load_average()));
    json.insert("rows".into(), json!(rows));
    json.insert("notes".into(), json!(notes));
    Ok(Report {
        rows,
        notes,
        json: serde_json::Value::Object(json),
    })
}

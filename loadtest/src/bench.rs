//! `loadtest bench consumers`: the consumer pipeline's drain rate beside the raw batched
//! write rate of the embedded store, on the same events, in the same run.
//!
//! The baseline applies the events straight to a fresh store, partition by partition in
//! batches, with no Kafka and no Redis: the most the store can take. The pipeline run
//! produces the same events to a fresh topic on the broker, then starts a consumer and
//! times it from its first stored batch until every partition's projections reflect the
//! last event. The ratio says how much of the store's rate the pipeline keeps.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::Context;
use consumers::store::embedded::EmbeddedStore;
use consumers::store::{PartitionStore, Store};
use partitioner::{Envelope, PartitionMap};
use rdkafka::ClientConfig;
use redis::AsyncCommands;
use uuid::Uuid;

use crate::produce;

#[derive(Clone, Debug)]
pub struct BenchConfig {
    pub brokers: String,
    pub redis_url: String,
    pub events: usize,
    pub properties: usize,
    pub partitions: i32,
    pub batch: usize,
}

#[derive(Debug)]
pub struct BenchResult {
    pub events: usize,
    pub store_rate: f64,
    pub produce_rate: f64,
    pub fetch_rate: f64,
    pub join: Duration,
    pub consumer_rate: f64,
}

const TENANT: &str = "bench";

pub async fn consumers(config: BenchConfig) -> anyhow::Result<BenchResult> {
    let map = PartitionMap::parse(config.partitions as u32, "")?;
    let events = produce::synthetic_events(TENANT, config.events, config.properties);
    let mut by_partition: BTreeMap<i32, Vec<&Envelope>> = BTreeMap::new();
    for event in &events {
        let partition = map.partition(&event.tenant_id, &event.property_id) as i32;
        by_partition.entry(partition).or_default().push(event);
    }

    // Baseline: the store alone.
    let dir = tempfile::tempdir()?;
    let store = EmbeddedStore::new(dir.path())?;
    let started = Instant::now();
    for (partition, events) in &by_partition {
        let mut state = store.open(*partition)?;
        for (chunk_no, chunk) in events.chunks(config.batch).enumerate() {
            let first = (chunk_no * config.batch) as i64;
            let batch: Vec<(i64, Envelope)> = chunk
                .iter()
                .enumerate()
                .map(|(i, e)| (first + i as i64, (*e).clone()))
                .collect();
            let through = batch.last().map_or(first, |(o, _)| *o);
            state.write_batch(&batch, through)?;
        }
    }
    let store_rate = events.len() as f64 / started.elapsed().as_secs_f64();

    // The pipeline: produce everything, then drain it with a consumer.
    let prefix = format!("bench-{}", Uuid::new_v4().simple());
    let topic = format!("{prefix}-bookings");
    consumers::topics::ensure_topics(
        &config.brokers,
        &[
            (&topic, config.partitions),
            (&format!("{prefix}-decisions"), 3),
            (&format!("{prefix}-dlq"), 1),
        ],
        1,
    )
    .await?;
    let produced = produce::produce(&config.brokers, &topic, &map, &events).await?;
    let produce_rate = produced.rate();
    let tops = produced.tops;
    let fetch_rate = fetch_rate(&config.brokers, &topic, &tops).await?;

    let store_dir = tempfile::tempdir()?;
    let consumer_config = consumers::Config::try_parse_from([
        "consumer",
        "--kafka-brokers",
        &config.brokers,
        "--group-id",
        &format!("{prefix}-group"),
        "--bookings-topic",
        &topic,
        "--decisions-topic",
        &format!("{prefix}-decisions"),
        "--dlq-topic",
        &format!("{prefix}-dlq"),
        "--store-dir",
        store_dir
            .path()
            .to_str()
            .context("the store directory is not UTF-8")?,
        "--redis-url",
        &config.redis_url,
        "--admin-addr",
        "127.0.0.1:0",
        "--max-batch",
        &config.batch.to_string(),
    ])?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let admin = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let started = Instant::now();
    let consumer = tokio::spawn(consumers::run(
        consumer_config,
        EmbeddedStore::new(store_dir.path())?,
        admin,
        async {
            let _ = stopped.await;
        },
    ));
    let mut redis = crate::redis_conn::connect(&config.redis_url).await?;
    let mut first_batch = None;
    loop {
        let mut done = 0;
        let mut any = false;
        for (partition, top) in &tops {
            let key = partitioner::keys::projection_checkpoint(&topic, *partition);
            let through: Option<i64> = redis.get(key).await?;
            any |= through.is_some();
            done += usize::from(through.is_some_and(|t| t >= *top));
        }
        if any && first_batch.is_none() {
            first_batch = Some(started.elapsed());
        }
        if done == tops.len() {
            break;
        }
        anyhow::ensure!(!consumer.is_finished(), "the consumer stopped");
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(600),
            "not drained in 10 minutes"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let drained = started.elapsed();
    let _ = stop.send(());
    consumer.await??;
    let join = first_batch.unwrap_or(drained);
    let consumer_rate = events.len() as f64 / (drained - join).as_secs_f64().max(1e-3);
    Ok(BenchResult {
        events: events.len(),
        store_rate,
        produce_rate,
        fetch_rate,
        join,
        consumer_rate,
    })
}

/// The broker's ceiling for any consumer: every message of the topic read by a plain
/// consumer (partitions assigned, no group, nothing done with the messages).
async fn fetch_rate(brokers: &str, topic: &str, tops: &BTreeMap<i32, i64>) -> anyhow::Result<f64> {
    use futures::StreamExt;
    use rdkafka::consumer::{Consumer, StreamConsumer};
    use rdkafka::Message;
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", format!("{topic}-fetch"))
        .set("enable.auto.commit", "false")
        .create()?;
    let mut assignment = rdkafka::TopicPartitionList::new();
    for partition in tops.keys() {
        assignment.add_partition_offset(topic, *partition, rdkafka::Offset::Beginning)?;
    }
    consumer.assign(&assignment)?;
    let total: i64 = tops.values().map(|top| top + 1).sum();
    let mut stream = consumer.stream();
    // Timed from the first message, like the drain, so connecting is not counted.
    let mut started = None;
    let mut read = 0;
    while read < total {
        let next = tokio::time::timeout(Duration::from_secs(30), stream.next()).await;
        let message = next?.ok_or_else(|| anyhow::anyhow!("consumer stream ended"))??;
        started.get_or_insert_with(Instant::now);
        read += i64::from(message.offset() <= tops[&message.partition()]);
    }
    let elapsed = started.map_or(0.0, |s| s.elapsed().as_secs_f64());
    Ok(total as f64 / elapsed.max(1e-3))
}

pub fn table(result: &BenchResult) -> String {
    format!(
        "events                              {}\n\
         raw store batched writes            {:>10.0} events/s\n\
         raw producer to the broker          {:>10.0} events/s\n\
         raw consumer fetch from the broker  {:>10.0} events/s\n\
         consumer drain (after group join)   {:>10.0} events/s\n\
         consumer / raw store                {:>10.2}\n\
         group join and first batch          {:>10.2} s\n",
        result.events,
        result.store_rate,
        result.produce_rate,
        result.fetch_rate,
        result.consumer_rate,
        result.consumer_rate / result.store_rate,
        result.join.as_secs_f64()
    )
}

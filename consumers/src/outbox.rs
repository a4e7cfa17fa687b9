//! Publishing what the consumers produce: decisions and dead letters.
//!
//! Decisions go to `booking-decisions`, keyed by booking id so every decision of a booking
//! is ordered; dead letters go to `bookings-dlq` with the original key and payload and
//! headers that say why and where from, so they can be inspected and replayed. A decision
//! whose request waits for it is also copied to the partition of `booking-replies` the
//! request named, which only the ingress holding that request reads. The copy is sent once
//! and never holds up the batch: should it be lost, the request answers 202 when its wait
//! runs out, and the decision on `booking-decisions` is what counts.

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use futures::future::{join_all, BoxFuture};
use futures::FutureExt;
use partitioner::Decision;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};
use rdkafka::ClientConfig;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use crate::metrics;

/// Headers of a dead letter, which `consumer replay-dlq` reads back.
pub mod dlq_header {
    /// Why the event could not be applied.
    pub const REASON: &str = "dlq-reason";
    /// Where the event was read from.
    pub const SOURCE_TOPIC: &str = "dlq-source-topic";
    pub const SOURCE_PARTITION: &str = "dlq-source-partition";
    pub const SOURCE_OFFSET: &str = "dlq-source-offset";
    /// Set on a replayed event: the dead letter it came from, as `partition/offset`.
    pub const REPLAYED_FROM: &str = "dlq-replayed-from";
}

/// Longest wait for room in a full producer queue before a record counts as not published.
const ENQUEUE_PATIENCE: Duration = Duration::from_secs(5);

/// An event that could not be decoded, with where it came from.
#[derive(Clone, Debug)]
pub struct DeadLetter {
    pub key: Option<Vec<u8>>,
    pub payload: Option<Vec<u8>>,
    pub reason: String,
    pub source_partition: i32,
    pub source_offset: i64,
}

/// Where the outbox publishes, besides the topic its events come from.
pub struct OutboxTopics<'a> {
    pub source: &'a str,
    pub decisions: &'a str,
    pub replies: &'a str,
    pub dlq: &'a str,
}

pub struct Outbox {
    producer: FutureProducer,
    decisions_topic: String,
    replies_topic: String,
    dlq_topic: String,
    source_topic: String,
}

impl Outbox {
    /// `linger` is how long the producer gathers records into one request: every request
    /// costs the broker more than its records do, so a few milliseconds buy throughput.
    pub fn new(
        brokers: &str,
        topics: OutboxTopics<'_>,
        linger: Duration,
    ) -> Result<Self, rdkafka::error::KafkaError> {
        let producer = ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", linger.as_millis().to_string())
            .set("message.timeout.ms", "30000")
            .create()?;
        Ok(Outbox {
            producer,
            decisions_topic: topics.decisions.to_owned(),
            replies_topic: topics.replies.to_owned(),
            dlq_topic: topics.dlq.to_owned(),
            source_topic: topics.source.to_owned(),
        })
    }

    /// Hands a batch's decisions and dead letters to the producer, in order, and returns
    /// the wait for their delivery, so the caller can go on with its next batch meanwhile
    /// and commit offsets only once it resolves to true.
    ///
    /// A record that fails to deliver (the broker down longer than the producer's timeout)
    /// is sent again, with backoff, until it is delivered or `abandon` is cancelled (the
    /// partition revoked, the process stopping): then the wait resolves to false, and the
    /// batch's offset must not be committed. The events are read again by whoever owns the
    /// partition next, and their decisions published from the store.
    ///
    /// `reply_partition` says, for the offset of the record a decision answers, which
    /// replies partition its waiting sender named, if any.
    pub async fn publish(
        &self,
        decisions: &[Decision],
        reply_partition: impl Fn(i64) -> Option<i32>,
        dead: &[DeadLetter],
        abandon: CancellationToken,
    ) -> BoxFuture<'static, bool> {
        let mut records = Vec::with_capacity(decisions.len() + dead.len());
        for decision in decisions {
            let key = decision.booking_id.unwrap_or(decision.event_id).to_string();
            let payload = serde_json::to_vec(decision).expect("a decision always serializes");
            if let Some(partition) = decision.record_offset.and_then(&reply_partition) {
                self.reply(partition, &key, &payload);
            }
            records.push(Outgoing {
                topic: self.decisions_topic.clone(),
                key: Some(key.into_bytes()),
                payload: Some(payload),
                headers: None,
            });
        }
        for letter in dead {
            let partition = letter.source_partition.to_string();
            let offset = letter.source_offset.to_string();
            let headers = OwnedHeaders::new()
                .insert(header(dlq_header::REASON, &letter.reason))
                .insert(header(dlq_header::SOURCE_TOPIC, &self.source_topic))
                .insert(header(dlq_header::SOURCE_PARTITION, &partition))
                .insert(header(dlq_header::SOURCE_OFFSET, &offset));
            records.push(Outgoing {
                topic: self.dlq_topic.clone(),
                key: letter.key.clone(),
                payload: letter.payload.clone(),
                headers: Some(headers),
            });
        }
        let mut deliveries = Vec::with_capacity(records.len());
        for record in &records {
            deliveries.push(enqueue(&self.producer, record).await);
        }
        let producer = self.producer.clone();
        deliver(producer, records, deliveries, abandon).boxed()
    }

    /// Sends the copy of a decision to the replies partition its waiting sender named,
    /// once, counting the outcome; the batch does not wait for it.
    fn reply(&self, partition: i32, key: &str, payload: &[u8]) {
        let record: FutureRecord<'_, str, [u8]> = FutureRecord::to(&self.replies_topic)
            .partition(partition)
            .key(key)
            .payload(payload);
        match self.producer.send_result(record) {
            Ok(delivery) => {
                tokio::spawn(async move {
                    match delivery.await {
                        Ok(Ok(_)) => metrics::reply("sent"),
                        Ok(Err((error, _))) => {
                            metrics::reply("failed");
                            debug!(%error, partition, "a decision's reply was not delivered; its request answers 202");
                        }
                        Err(_) => metrics::reply("failed"),
                    }
                });
            }
            Err((error, _)) => {
                metrics::reply("failed");
                debug!(%error, partition, "a decision's reply was not handed to the producer; its request answers 202");
            }
        }
    }

    pub fn flush(&self) {
        use rdkafka::producer::Producer;
        if let Err(e) = self.producer.flush(Duration::from_secs(5)) {
            warn!(error = %e, "outbox flush incomplete at shutdown");
        }
    }
}

/// A record for the decisions or dead-letter topic, kept until delivered so it can be sent
/// again.
struct Outgoing {
    topic: String,
    key: Option<Vec<u8>>,
    payload: Option<Vec<u8>>,
    headers: Option<OwnedHeaders>,
}

/// Waits for `deliveries` of `records`; sends the failed ones again, with backoff, until
/// every record is delivered (true) or `abandon` is cancelled (false).
async fn deliver(
    producer: FutureProducer,
    mut records: Vec<Outgoing>,
    mut deliveries: Vec<Option<DeliveryFuture>>,
    abandon: CancellationToken,
) -> bool {
    let mut backoff = ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(200))
        .with_max_delay(Duration::from_secs(5))
        .without_max_times()
        .build();
    loop {
        let results = join_all(deliveries.into_iter().map(|delivery| async move {
            match delivery {
                Some(delivery) => match delivery.await {
                    Ok(Ok(_)) => Ok(()),
                    Ok(Err((e, _))) => Err(e.to_string()),
                    Err(_) => Err("the producer went away".to_owned()),
                },
                None => Err("not accepted by the producer".to_owned()),
            }
        }))
        .await;
        let mut failed = Vec::new();
        for (record, result) in records.into_iter().zip(results) {
            if let Err(e) = result {
                metrics::publish_error();
                warn!(error = %e, topic = %record.topic, "could not publish a decision or dead letter; sending it again");
                failed.push(record);
            }
        }
        if failed.is_empty() {
            return true;
        }
        let pause = backoff.next().unwrap_or(Duration::from_secs(5));
        tokio::select! {
            () = abandon.cancelled() => {
                warn!(undelivered = failed.len(), "gave up publishing decisions or dead letters; their events will be read again");
                return false;
            }
            () = tokio::time::sleep(pause) => {}
        }
        let mut again = Vec::with_capacity(failed.len());
        for record in &failed {
            again.push(enqueue(&producer, record).await);
        }
        records = failed;
        deliveries = again;
    }
}

/// Hands one record to the producer. A full queue is backpressure: wait for deliveries to
/// make room, for at most `ENQUEUE_PATIENCE`, never in a hot loop.
async fn enqueue(producer: &FutureProducer, record: &Outgoing) -> Option<DeliveryFuture> {
    let deadline = tokio::time::Instant::now() + ENQUEUE_PATIENCE;
    loop {
        let mut future: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(&record.topic);
        if let Some(key) = &record.key {
            future = future.key(key.as_slice());
        }
        if let Some(payload) = &record.payload {
            future = future.payload(payload.as_slice());
        }
        if let Some(headers) = &record.headers {
            future = future.headers(headers.clone());
        }
        match producer.send_result(future) {
            Ok(delivery) => return Some(delivery),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _))
                if tokio::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Err((e, _)) => {
                warn!(error = %e, "could not hand a decision or dead letter to the producer");
                return None;
            }
        }
    }
}

fn header<'a>(key: &'a str, value: &'a str) -> Header<'a, &'a str> {
    Header {
        key,
        value: Some(value),
    }
}

//! Publishing what the consumers produce: decisions and dead letters.
//!
//! Decisions go to `booking-decisions`, keyed by booking id so every decision of a booking
//! is ordered; dead letters go to `bookings-dlq` with the original key and payload and
//! headers that say why and where from, so they can be inspected and replayed.

use std::time::Duration;

use futures::future::{join_all, BoxFuture};
use futures::FutureExt;
use partitioner::Decision;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};
use rdkafka::ClientConfig;
use tracing::warn;

use crate::{metrics, replay};

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

pub struct Outbox {
    producer: FutureProducer,
    decisions_topic: String,
    dlq_topic: String,
    source_topic: String,
}

impl Outbox {
    /// `linger` is how long the producer gathers records into one request: every request
    /// costs the broker more than its records do, so a few milliseconds buy throughput.
    pub fn new(
        brokers: &str,
        source_topic: &str,
        decisions_topic: &str,
        dlq_topic: &str,
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
            decisions_topic: decisions_topic.to_owned(),
            dlq_topic: dlq_topic.to_owned(),
            source_topic: source_topic.to_owned(),
        })
    }

    /// Hands a batch's decisions and dead letters to the producer, in order, and returns
    /// the wait for their delivery (failures are counted and logged there), so the caller
    /// can go on with its next batch meanwhile and commit offsets only once it resolves.
    pub async fn publish(
        &self,
        decisions: &[Decision],
        dead: &[DeadLetter],
    ) -> BoxFuture<'static, ()> {
        let decision_payloads: Vec<(String, Vec<u8>)> = decisions
            .iter()
            .map(|d| {
                let key = d.booking_id.unwrap_or(d.event_id).to_string();
                (
                    key,
                    serde_json::to_vec(d).expect("a decision always serializes"),
                )
            })
            .collect();
        let mut deliveries = Vec::with_capacity(decisions.len() + dead.len());
        for (key, payload) in &decision_payloads {
            let record: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(&self.decisions_topic)
                .key(key.as_bytes())
                .payload(payload.as_slice());
            deliveries.extend(self.enqueue(record).await);
        }
        for letter in dead {
            let partition = letter.source_partition.to_string();
            let offset = letter.source_offset.to_string();
            let headers = OwnedHeaders::new()
                .insert(header(replay::REASON, &letter.reason))
                .insert(header(replay::SOURCE_TOPIC, &self.source_topic))
                .insert(header(replay::SOURCE_PARTITION, &partition))
                .insert(header(replay::SOURCE_OFFSET, &offset));
            let mut record: FutureRecord<'_, [u8], [u8]> =
                FutureRecord::to(&self.dlq_topic).headers(headers);
            if let Some(key) = &letter.key {
                record = record.key(key.as_slice());
            }
            if let Some(payload) = &letter.payload {
                record = record.payload(payload.as_slice());
            }
            deliveries.extend(self.enqueue(record).await);
        }
        async move {
            for result in join_all(deliveries).await {
                let failed = match result {
                    Ok(Ok(_)) => None,
                    Ok(Err((e, _))) => Some(e.to_string()),
                    Err(_) => Some("the producer went away".to_owned()),
                };
                if let Some(e) = failed {
                    ::metrics::counter!(metrics::PUBLISH_ERRORS).increment(1);
                    warn!(error = %e, "could not publish a decision or dead letter");
                }
            }
        }
        .boxed()
    }

    /// Hands one record to the producer. A full queue is backpressure: wait for deliveries
    /// to make room, for at most `ENQUEUE_PATIENCE`, never in a hot loop.
    async fn enqueue(&self, mut record: FutureRecord<'_, [u8], [u8]>) -> Option<DeliveryFuture> {
        let deadline = tokio::time::Instant::now() + ENQUEUE_PATIENCE;
        loop {
            match self.producer.send_result(record) {
                Ok(delivery) => return Some(delivery),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back))
                    if tokio::time::Instant::now() < deadline =>
                {
                    record = back;
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                Err((e, _)) => {
                    ::metrics::counter!(metrics::PUBLISH_ERRORS).increment(1);
                    warn!(error = %e, "could not publish a decision or dead letter");
                    return None;
                }
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

fn header<'a>(key: &'a str, value: &'a str) -> Header<'a, &'a str> {
    Header {
        key,
        value: Some(value),
    }
}

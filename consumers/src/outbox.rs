//! Publishing what the consumers produce: decisions and dead letters.
//!
//! Decisions go to `booking-decisions`, keyed by booking id so every decision of a booking
//! is ordered; dead letters go to `bookings-dlq` with the original key and payload and
//! headers that say why and where from, so they can be inspected and replayed.

use std::time::Duration;

use futures::future::join_all;
use partitioner::Decision;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientConfig;
use tracing::warn;

use crate::{metrics, replay};

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
    pub fn new(
        brokers: &str,
        source_topic: &str,
        decisions_topic: &str,
        dlq_topic: &str,
    ) -> Result<Self, rdkafka::error::KafkaError> {
        let producer = ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", "2")
            .set("message.timeout.ms", "30000")
            .create()?;
        Ok(Outbox {
            producer,
            decisions_topic: decisions_topic.to_owned(),
            dlq_topic: dlq_topic.to_owned(),
            source_topic: source_topic.to_owned(),
        })
    }

    /// Publishes a batch's decisions and dead letters and waits for their delivery, so
    /// the Kafka offsets committed after this call never run ahead of them.
    pub async fn publish(&self, decisions: &[Decision], dead: &[DeadLetter]) {
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
            deliveries.push(self.producer.send(record, Duration::from_secs(5)));
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
            deliveries.push(self.producer.send(record, Duration::from_secs(5)));
        }
        for result in join_all(deliveries).await {
            if let Err((e, _)) = result {
                ::metrics::counter!(metrics::PUBLISH_ERRORS).increment(1);
                warn!(error = %e, "could not publish a decision or dead letter");
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

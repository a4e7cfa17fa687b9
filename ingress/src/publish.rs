//! Publishing events to Kafka with an idempotent producer, answering only on the broker's
//! delivery report.
//!
//! A 202 means the event is in the log: the producer runs with `enable.idempotence` and
//! `acks=all`, and a request waits for its record's delivery report. The wait is bounded
//! by the per-request delivery budget rather than by `message.timeout.ms`, which stays
//! long so the producer keeps retrying a record in order even after its partner gave up.
//!
//! [`EventSink`] is the seam between the request path and the log: [`KafkaSink`] is the
//! real one; a benchmark can plug an in-process sink without touching the handlers.

use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use partitioner::event::headers;
use partitioner::partition_map::{Overrides, PartitionMapError};
use partitioner::PartitionMap;
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};

use crate::metrics;
use crate::problem::ApiError;

/// One event ready for the log: the partition is already chosen by the partition map.
#[derive(Clone, Debug)]
pub struct OutboundEvent {
    pub partition: i32,
    pub key: String,
    pub payload: Vec<u8>,
    pub event_type: &'static str,
    pub request_id: String,
    pub partner_id: String,
    pub traceparent: Option<String>,
    /// The replies partition the decision should be copied to: set when the request waits
    /// for it (`Prefer: wait`).
    pub reply_partition: Option<i32>,
}

/// Where the broker put an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Delivered {
    pub partition: i32,
    pub offset: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The producer's local queue is full: the broker is not keeping up. This is
    /// backpressure, answered at once, never retried in a loop here.
    #[error("producer queue full")]
    QueueFull,
    /// No delivery report within the budget. The record may still be delivered later.
    #[error("no delivery report within {0:?}")]
    Timeout(Duration),
    #[error("kafka: {0}")]
    Kafka(#[from] KafkaError),
    /// The producer dropped the record's report channel, which happens only on shutdown.
    #[error("producer shut down before reporting delivery")]
    Canceled,
}

impl PublishError {
    /// The bounded label of `ingress_publish_errors_total`.
    pub fn class(&self) -> &'static str {
        match self {
            PublishError::QueueFull => "queue_full",
            PublishError::Timeout(_) => "timeout",
            PublishError::Kafka(_) => "kafka",
            PublishError::Canceled => "canceled",
        }
    }
}

impl From<PublishError> for ApiError {
    fn from(error: PublishError) -> ApiError {
        match error {
            PublishError::QueueFull => ApiError::Overloaded,
            PublishError::Timeout(_) => ApiError::DeliveryTimeout,
            PublishError::Kafka(e) => ApiError::BrokerUnavailable(e.to_string()),
            PublishError::Canceled => ApiError::BrokerUnavailable("producer shut down".into()),
        }
    }
}

/// Where accepted events go.
pub trait EventSink: Send + Sync + 'static {
    /// Hands the event over and resolves once it is durably stored, or fails.
    fn publish(&self, event: OutboundEvent) -> BoxFuture<'static, Result<Delivered, PublishError>>;

    /// Blocks until every handed-over event is stored or `timeout` passes.
    fn flush(&self, timeout: Duration) -> Result<(), PublishError>;

    /// Blocks until the log answers a request about the topic, or fails within
    /// `timeout`: whether publishing can succeed at all right now (readiness).
    fn probe(&self, timeout: Duration) -> Result<(), TopicError>;
}

/// Producer settings beyond the broker list; see [`crate::Config`] for their meaning.
#[derive(Clone, Debug)]
pub struct KafkaSettings {
    pub brokers: String,
    pub topic: String,
    pub linger_ms: u32,
    pub message_timeout_ms: u32,
    pub delivery_budget: Duration,
}

pub struct KafkaSink {
    producer: FutureProducer,
    topic: String,
    delivery_budget: Duration,
}

impl KafkaSink {
    pub fn new(settings: &KafkaSettings) -> Result<KafkaSink, KafkaError> {
        let producer: FutureProducer = ClientConfig::new()
            .set("bootstrap.servers", &settings.brokers)
            .set("client.id", "ingress")
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", settings.linger_ms.to_string())
            .set(
                "message.timeout.ms",
                settings.message_timeout_ms.to_string(),
            )
            // The topic is provisioned by infra; a typo in its name must fail startup, not
            // create a stray topic with the broker's default layout.
            .set("allow.auto.create.topics", "false")
            // Records always carry an explicit partition; should one ever not, place it as
            // Kafka's Java client would, like the partition map does.
            .set("partitioner", "murmur2_random")
            .create()?;
        Ok(KafkaSink {
            producer,
            topic: settings.topic.clone(),
            delivery_budget: settings.delivery_budget,
        })
    }

    /// The topic's partition count, from broker metadata. Blocking: call it off the
    /// async workers.
    pub fn partition_count(&self, timeout: Duration) -> Result<u32, TopicError> {
        let metadata = self
            .producer
            .client()
            .fetch_metadata(Some(&self.topic), timeout)
            .map_err(TopicError::Metadata)?;
        let topic = metadata.topics().iter().find(|t| t.name() == self.topic);
        let missing = || TopicError::Missing(self.topic.clone());
        let topic = topic.ok_or_else(missing)?;
        match topic.error().map(RDKafkaErrorCode::from) {
            None if !topic.partitions().is_empty() => Ok(topic.partitions().len() as u32),
            None | Some(RDKafkaErrorCode::UnknownTopicOrPartition) => Err(missing()),
            // Anything else (a leader election, say) is the broker's state, not ours:
            // report it as it is rather than as a missing topic.
            Some(code) => Err(TopicError::Unusable(self.topic.clone(), code)),
        }
    }

    /// Builds the partition map for this sink's topic.
    pub fn partition_map(
        &self,
        timeout: Duration,
        overrides: Overrides,
    ) -> Result<PartitionMap, TopicError> {
        let count = self.partition_count(timeout)?;
        PartitionMap::new(count, overrides).map_err(TopicError::Overrides)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TopicError {
    #[error("cannot fetch topic metadata: {0}")]
    Metadata(KafkaError),
    #[error("topic {0:?} does not exist on the broker")]
    Missing(String),
    #[error("topic {0:?} is not usable: {1}")]
    Unusable(String, RDKafkaErrorCode),
    #[error("hot-tenant overrides: {0}")]
    Overrides(PartitionMapError),
}

impl EventSink for KafkaSink {
    fn publish(&self, event: OutboundEvent) -> BoxFuture<'static, Result<Delivered, PublishError>> {
        let started = Instant::now();
        let mut kafka_headers = OwnedHeaders::new_with_capacity(6)
            .insert(header(headers::EVENT_TYPE, event.event_type))
            .insert(header(
                headers::SCHEMA_VERSION,
                &partitioner::SCHEMA_VERSION.to_string(),
            ))
            .insert(header(headers::CONTENT_TYPE, "application/json"))
            .insert(header(headers::REQUEST_ID, &event.request_id))
            .insert(header(headers::PARTNER_ID, &event.partner_id));
        if let Some(traceparent) = &event.traceparent {
            kafka_headers = kafka_headers.insert(header(headers::TRACEPARENT, traceparent));
        }
        if let Some(partition) = event.reply_partition {
            let partition = partition.to_string();
            kafka_headers = kafka_headers.insert(header(headers::REPLY_PARTITION, &partition));
        }
        let record = FutureRecord::to(&self.topic)
            .partition(event.partition)
            .key(&event.key)
            .payload(&event.payload)
            .headers(kafka_headers);
        let sent = self
            .producer
            .send_result(record)
            .map_err(|(error, _record)| match error.rdkafka_error_code() {
                Some(RDKafkaErrorCode::QueueFull) => PublishError::QueueFull,
                _ => PublishError::Kafka(error),
            });
        let budget = self.delivery_budget;
        Box::pin(async move {
            let result = match sent {
                Err(error) => Err(error),
                // On timeout the record stays queued and may land after we answered 503.
                // That is safe: the partner retries with the same Idempotency-Key, the
                // retry carries the same deterministic event id, and consumers drop the
                // duplicate. Cancelling the record instead is impossible once librdkafka
                // holds it, and shortening message.timeout.ms would only trade a late
                // success for a certain failure.
                Ok(delivery) => match tokio::time::timeout(budget, delivery).await {
                    Err(_elapsed) => Err(PublishError::Timeout(budget)),
                    Ok(Err(_canceled)) => Err(PublishError::Canceled),
                    Ok(Ok(Err((error, _message)))) => Err(PublishError::Kafka(error)),
                    Ok(Ok(Ok(delivery))) => Ok(Delivered {
                        partition: delivery.partition,
                        offset: delivery.offset,
                    }),
                },
            };
            match &result {
                Ok(_) => metrics::publish_done(started.elapsed()),
                Err(error) => metrics::publish_error(error.class()),
            }
            result
        })
    }

    fn flush(&self, timeout: Duration) -> Result<(), PublishError> {
        self.producer.flush(timeout).map_err(PublishError::Kafka)
    }

    /// A metadata request for the topic through the producer's own client, so it sees
    /// the brokers as the producer does. librdkafka always asks a broker for it (no
    /// cache), so an answer means a broker is reachable and knows the topic.
    fn probe(&self, timeout: Duration) -> Result<(), TopicError> {
        self.partition_count(timeout).map(|_| ())
    }
}

fn header<'a>(key: &'a str, value: &'a str) -> Header<'a, &'a str> {
    Header {
        key,
        value: Some(value),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_errors_map_to_retryable_statuses() {
        let cases = [
            (PublishError::QueueFull, "queue_full"),
            (PublishError::Timeout(Duration::from_millis(50)), "timeout"),
            (PublishError::Kafka(KafkaError::Canceled), "kafka"),
            (PublishError::Canceled, "canceled"),
        ];
        for (error, class) in cases {
            assert_eq!(error.class(), class);
            assert_eq!(ApiError::from(error).status().as_u16(), 503);
        }
        assert!(matches!(
            ApiError::from(PublishError::QueueFull),
            ApiError::Overloaded
        ));
        assert!(matches!(
            ApiError::from(PublishError::Timeout(Duration::ZERO)),
            ApiError::DeliveryTimeout
        ));
    }
}

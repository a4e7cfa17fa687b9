//! Creating the pipeline's topics, on any Kafka-protocol broker.
//!
//! Uses the Kafka admin API (CreateTopics, Metadata) rather than a broker's own tooling, so
//! the same command works on Apache Kafka, Redpanda and the local broker.

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::ClientConfig;
use tracing::info;

use crate::config::{Config, TopicsArgs};

#[derive(Debug, thiserror::Error)]
pub enum TopicsError {
    #[error("kafka admin request failed: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error("could not create topic {topic}: {code}")]
    Create {
        topic: String,
        code: RDKafkaErrorCode,
    },
    #[error("topic {topic} has {actual} partitions, expected {expected}")]
    PartitionMismatch {
        topic: String,
        actual: usize,
        expected: i32,
    },
}

/// Creates the bookings, decisions and dead-letter topics if missing, then checks that each
/// has the expected partition count.
pub async fn ensure(config: &Config, args: &TopicsArgs) -> Result<(), TopicsError> {
    let wanted = [
        (config.bookings_topic.as_str(), args.bookings_partitions),
        (config.decisions_topic.as_str(), args.aux_partitions),
        (config.dlq_topic.as_str(), args.aux_partitions),
    ];
    ensure_topics(&config.kafka_brokers, &wanted, args.replication).await
}

pub async fn ensure_topics(
    brokers: &str,
    wanted: &[(&str, i32)],
    replication: i32,
) -> Result<(), TopicsError> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()?;
    let new_topics: Vec<NewTopic<'_>> = wanted
        .iter()
        .map(|(name, partitions)| {
            NewTopic::new(name, *partitions, TopicReplication::Fixed(replication))
        })
        .collect();
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    for result in admin.create_topics(&new_topics, &options).await? {
        match result {
            Ok(topic) => info!(topic, "created topic"),
            Err((topic, RDKafkaErrorCode::TopicAlreadyExists)) => {
                info!(topic, "topic exists")
            }
            Err((topic, code)) => return Err(TopicsError::Create { topic, code }),
        }
    }
    for (name, expected) in wanted {
        let actual = partition_count(&admin, name)?;
        if actual != *expected as usize {
            return Err(TopicsError::PartitionMismatch {
                topic: (*name).to_owned(),
                actual,
                expected: *expected,
            });
        }
    }
    Ok(())
}

fn partition_count(
    admin: &AdminClient<DefaultClientContext>,
    topic: &str,
) -> Result<usize, TopicsError> {
    let metadata = admin
        .inner()
        .fetch_metadata(Some(topic), Duration::from_secs(10))?;
    Ok(metadata
        .topics()
        .iter()
        .find(|t| t.name() == topic)
        .map_or(0, |t| t.partitions().len()))
}

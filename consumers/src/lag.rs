//! `consumer lag`: the consumer group's lag per partition as the broker sees it — the end
//! of each partition's log minus the group's committed offset. This is the signal KEDA's
//! Kafka scaler scales on, read the same way (OffsetFetch + ListOffsets), so it works
//! with no consumer running and on any Kafka-protocol broker.

use std::fmt;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

use crate::config::Config;

const TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum LagError {
    #[error("kafka request failed: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error("topic {0} does not exist")]
    NoTopic(String),
}

/// One partition's position.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionLag {
    pub partition: i32,
    /// The group's committed offset (the next event it will read), if it committed one.
    pub committed: Option<i64>,
    /// The log's first and next offsets.
    pub low: i64,
    pub end: i64,
}

impl PartitionLag {
    /// Events the group has yet to apply. With no commit the whole retained log counts,
    /// as the group starts from the earliest offset.
    pub fn lag(&self) -> i64 {
        (self.end - self.committed.unwrap_or(self.low).max(self.low)).max(0)
    }
}

#[derive(Clone, Debug)]
pub struct GroupLag {
    pub group: String,
    pub topic: String,
    pub partitions: Vec<PartitionLag>,
}

impl GroupLag {
    pub fn total(&self) -> i64 {
        self.partitions.iter().map(PartitionLag::lag).sum()
    }

    /// `total=N | l0 l1 …`: one line per sample, for watching lag change over time.
    pub fn one_line(&self) -> String {
        let per_partition: Vec<String> = self
            .partitions
            .iter()
            .map(|p| p.lag().to_string())
            .collect();
        format!("total={} | {}", self.total(), per_partition.join(" "))
    }
}

impl fmt::Display for GroupLag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "group {} on topic {}", self.group, self.topic)?;
        writeln!(
            f,
            "{:>9} {:>12} {:>12} {:>10}",
            "partition", "committed", "end", "lag"
        )?;
        for p in &self.partitions {
            let committed = p.committed.map_or("none".to_owned(), |c| c.to_string());
            writeln!(
                f,
                "{:>9} {:>12} {:>12} {:>10}",
                p.partition,
                committed,
                p.end,
                p.lag()
            )?;
        }
        write!(
            f,
            "{:>9} {:>12} {:>12} {:>10}",
            "total",
            "",
            "",
            self.total()
        )
    }
}

/// Reads the committed offsets of `config.group_id` and the log ends of
/// `config.bookings_topic`, without joining the group.
pub fn read(config: &Config) -> Result<GroupLag, LagError> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &config.kafka_brokers)
        .set("group.id", &config.group_id)
        .set("enable.auto.commit", "false")
        .set("allow.auto.create.topics", "false")
        .create()?;
    let topic = config.bookings_topic.as_str();
    let partitions = partitions_of(&consumer, topic)?;
    if partitions.is_empty() {
        return Err(LagError::NoTopic(topic.to_owned()));
    }
    let mut wanted = TopicPartitionList::new();
    for partition in &partitions {
        wanted.add_partition(topic, *partition);
    }
    let committed = consumer.committed_offsets(wanted, TIMEOUT)?;
    let mut lags = Vec::with_capacity(partitions.len());
    for partition in partitions {
        let (low, end) = consumer.fetch_watermarks(topic, partition, TIMEOUT)?;
        let committed =
            committed
                .find_partition(topic, partition)
                .and_then(|element| match element.offset() {
                    Offset::Offset(offset) => Some(offset),
                    _ => None,
                });
        lags.push(PartitionLag {
            partition,
            committed,
            low,
            end,
        });
    }
    lags.sort_by_key(|p| p.partition);
    Ok(GroupLag {
        group: config.group_id.clone(),
        topic: topic.to_owned(),
        partitions: lags,
    })
}

/// The partition ids of `topic` from the broker's metadata; empty if it does not exist.
pub fn partitions_of<C: rdkafka::consumer::ConsumerContext>(
    consumer: &BaseConsumer<C>,
    topic: &str,
) -> rdkafka::error::KafkaResult<Vec<i32>> {
    let metadata = consumer.fetch_metadata(Some(topic), TIMEOUT)?;
    Ok(metadata
        .topics()
        .iter()
        .find(|t| t.name() == topic)
        .map(|t| t.partitions().iter().map(|p| p.id()).collect())
        .unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::PartitionLag;

    fn at(committed: Option<i64>, low: i64, end: i64) -> PartitionLag {
        PartitionLag {
            partition: 0,
            committed,
            low,
            end,
        }
    }

    #[test]
    fn lag_counts_from_the_commit_or_the_log_start() {
        assert_eq!(at(Some(40), 0, 100).lag(), 60);
        assert_eq!(at(Some(100), 0, 100).lag(), 0);
        assert_eq!(at(None, 0, 100).lag(), 100);
        // Retention removed events below the commit's reach: count only what is left.
        assert_eq!(at(Some(10), 50, 100).lag(), 50);
        assert_eq!(at(None, 50, 100).lag(), 50);
    }
}

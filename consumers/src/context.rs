//! The consumer's librdkafka context: partition ownership on rebalance, lag from statistics.

use std::sync::Arc;

use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::KafkaResult;
use rdkafka::{Offset, Statistics, TopicPartitionList};
use tracing::{info, warn};

use crate::assignment::Assignment;
use crate::metrics;

pub struct OwnershipContext {
    pub assignment: Arc<Assignment>,
    pub topic: String,
}

impl ClientContext for OwnershipContext {
    /// librdkafka computes each partition's lag (high watermark minus committed offset) in
    /// its statistics; exporting it per partition gives the autoscaler its signal.
    fn stats(&self, statistics: Statistics) {
        let Some(topic) = statistics.topics.get(&self.topic) else {
            return;
        };
        for (partition, stats) in &topic.partitions {
            // Partition -1 is librdkafka's internal unassigned queue; -1 lag means unknown.
            if *partition >= 0 && stats.consumer_lag >= 0 {
                metrics::lag(*partition, stats.consumer_lag);
            }
        }
    }
}

impl ConsumerContext for OwnershipContext {
    /// A revoked partition's worker is told to stop: it finishes the batch it is applying,
    /// commits nothing more to Kafka and closes the partition's state, which releases it
    /// for the new owner (who waits for it). Messages of the partition still queued for
    /// the worker are dropped; the new owner reads them again.
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Revoke(partitions) => {
                let revoked = self.partitions(partitions);
                let paused = self.assignment.revoke(&revoked);
                info!(?revoked, "partitions revoked");
                if !paused.is_empty() {
                    let mut list = TopicPartitionList::new();
                    for partition in paused {
                        list.add_partition(&self.topic, partition);
                    }
                    if let Err(e) = consumer.resume(&list) {
                        warn!(error = %e, "could not resume revoked partitions");
                    }
                }
            }
            Rebalance::Assign(partitions) => {
                let assigned = self.partitions(partitions);
                self.assignment.assign(&assigned);
                info!(?assigned, "partitions assigned");
            }
            Rebalance::Error(e) => warn!(error = %e, "rebalance error"),
        }
    }

    /// The outcome of an asynchronous commit, which `commit` itself cannot report: a
    /// failed one is committed again on the next tick, so a partition that receives no
    /// new events does not keep an old committed offset (and its lag) for good.
    fn commit_callback(&self, result: KafkaResult<()>, offsets: &TopicPartitionList) {
        if let Err(e) = result {
            metrics::kafka_error("commit");
            warn!(error = %e, "offset commit failed; committing again on the next tick");
            self.assignment.commit_failed(&self.offsets(offsets));
        }
    }
}

impl OwnershipContext {
    /// The offsets of our topic in `list`, as (partition, next offset).
    fn offsets(&self, list: &TopicPartitionList) -> Vec<(i32, i64)> {
        list.elements_for_topic(&self.topic)
            .iter()
            .filter_map(|e| match e.offset() {
                Offset::Offset(next) => Some((e.partition(), next)),
                _ => None,
            })
            .collect()
    }

    fn partitions(&self, list: &TopicPartitionList) -> Vec<i32> {
        list.elements_for_topic(&self.topic)
            .iter()
            .map(|e| e.partition())
            .collect()
    }
}

//! The consumer's librdkafka context: partition ownership on rebalance, lag from statistics.

use std::sync::Arc;

use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance};
use rdkafka::{Statistics, TopicPartitionList};
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
                ::metrics::gauge!(metrics::LAG, "partition" => partition.to_string())
                    .set(stats.consumer_lag as f64);
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
}

impl OwnershipContext {
    fn partitions(&self, list: &TopicPartitionList) -> Vec<i32> {
        list.elements_for_topic(&self.topic)
            .iter()
            .map(|e| e.partition())
            .collect()
    }
}

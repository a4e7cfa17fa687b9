//! The consumer's librdkafka context: partition ownership on rebalance, lag from statistics.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, ConsumerContext, Rebalance};
use rdkafka::Statistics;
use tracing::{info, warn};

use crate::metrics;

/// Open partition stores by partition number.
pub type OwnedPartitions<P> = Arc<Mutex<HashMap<i32, P>>>;

pub struct OwnershipContext<P> {
    pub owned: OwnedPartitions<P>,
    pub topic: String,
}

impl<P: Send + 'static> ClientContext for OwnershipContext<P> {
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

impl<P: Send + 'static> ConsumerContext for OwnershipContext<P> {
    /// Closing a revoked partition's store releases its file lock, so the new owner can
    /// open it. This runs inside the consumer's poll, never while a batch is being applied.
    fn pre_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Revoke(partitions) => {
                let mut owned = self.owned.lock().expect("ownership lock poisoned");
                for element in partitions.elements() {
                    if owned.remove(&element.partition()).is_some() {
                        info!(partition = element.partition(), "released partition");
                    }
                }
                ::metrics::gauge!(metrics::OWNED_PARTITIONS).set(owned.len() as f64);
            }
            Rebalance::Assign(partitions) => {
                let assigned: Vec<i32> = partitions
                    .elements()
                    .iter()
                    .map(|e| e.partition())
                    .collect();
                info!(?assigned, "partitions assigned");
            }
            Rebalance::Error(e) => warn!(error = %e, "rebalance error"),
        }
    }
}

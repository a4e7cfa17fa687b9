//! The ingresses' consumer group on the replies topic: Kafka's group protocol decides
//! which ingress reads which reply partition, and moves them as ingresses come and go.
//!
//! The member never reads a record itself: each partition it is given is paused at once
//! and handed to the reader ([`super::reader`]), which positions itself explicitly before
//! the partition is named, and keeps following a partition taken away from it until every
//! request that named it has had its answer. The group only says who names what.
//! `cooperative-sticky` moves only the partitions that must move when a member joins or
//! leaves, so the other ingresses' waits are undisturbed.

use std::sync::Arc;

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::{ClientContext, TopicPartitionList};

use super::replies::ReplyPartitions;

/// What the group changed for this process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Change {
    /// The partition is this process's to read and name.
    Follow(i32),
    /// The partition went to another process: name it no more.
    Unfollow(i32),
}

pub(super) struct MemberContext {
    on_change: Box<dyn Fn(Change) + Send + Sync>,
    named: Arc<ReplyPartitions>,
}

impl ClientContext for MemberContext {}

impl ConsumerContext for MemberContext {
    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(added) => {
                if let Err(error) = consumer.pause(added) {
                    tracing::warn!(%error, "could not pause the replies group's partitions; their records are read twice");
                }
                for partition in partitions(added) {
                    (self.on_change)(Change::Follow(partition));
                }
                let assigned = consumer.assignment().map_or(0, |list| list.count());
                if assigned == 0 {
                    tracing::warn!(
                        "no reply partition assigned to this ingress: are there more ingresses than \
                         the replies topic has partitions? Requests here that ask Prefer: wait are \
                         answered 202 at once"
                    );
                }
            }
            Rebalance::Revoke(taken) => {
                for partition in partitions(taken) {
                    // At once, in the callback: from here on another process may read it.
                    self.named.withdraw(partition);
                    (self.on_change)(Change::Unfollow(partition));
                }
            }
            Rebalance::Error(error) => {
                tracing::warn!(%error, "replies group rebalance failed; librdkafka retries")
            }
        }
    }
}

fn partitions(list: &TopicPartitionList) -> Vec<i32> {
    list.elements().iter().map(|e| e.partition()).collect()
}

/// A member of `group` subscribed to `topic`, reporting each change of its assignment to
/// `on_change` (called on the polling task, so it must not block).
pub(super) fn join(
    brokers: &str,
    topic: &str,
    group: &str,
    named: Arc<ReplyPartitions>,
    on_change: impl Fn(Change) + Send + Sync + 'static,
) -> Result<StreamConsumer<MemberContext>, KafkaError> {
    let member: StreamConsumer<MemberContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("client.id", "ingress-replies-member")
        .set("group.id", group)
        .set("partition.assignment.strategy", "cooperative-sticky")
        // Positions are the reader's business; the member has none to keep.
        .set("enable.auto.commit", "false")
        .set("allow.auto.create.topics", "false")
        .create_with_context(MemberContext {
            on_change: Box::new(on_change),
            named,
        })?;
    member.subscribe(&[topic])?;
    Ok(member)
}

/// Polls the member so it stays in the group and its rebalances run, until aborted.
pub(super) async fn stay(member: StreamConsumer<MemberContext>) {
    loop {
        match member.recv().await {
            // Paused partitions deliver nothing; a record fetched before the pause took
            // effect is the reader's to read, not ours.
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "replies group member error"),
        }
    }
}

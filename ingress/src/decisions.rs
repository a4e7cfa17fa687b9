//! The consumers' decisions, read back so a request can wait for its own (`Prefer: wait`).
//!
//! Each decision a request waits for comes back to the ingress holding that request, and
//! to no other: the request names one of its ingress's reply partitions in the event's
//! `reply-partition` header, and the consumer that decides the event sends a copy of the
//! decision to that partition of the replies topic (`booking-replies`) beside the one on
//! `booking-decisions`. The ingresses share the replies topic's partitions through a
//! consumer group of their own ([`membership`]); each reads only its own ([`reader`]), so
//! with N ingresses each reads 1/N of the waited-for decisions and none of the rest,
//! instead of every decision each.
//!
//! Nothing depends on a reply arriving. A request whose reply is lost (its ingress lost
//! the partition in a rebalance and its grace ran out, the replies topic is missing, the
//! consumer is older than the header) is answered 202 when its wait runs out, and the
//! decision is on `booking-decisions` and in the booking's status as always. The reader
//! never affects readiness: while it cannot reach the broker, waits run out and plain
//! requests do not notice.

mod membership;
mod reader;
mod replies;
mod waiters;

use std::sync::Arc;
use std::time::Duration;

use rdkafka::error::KafkaError;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

pub use replies::ReplyPartitions;
pub use waiters::{Waiter, Waiters};

/// Longest the ingress waits at startup for its first reply partition before it takes
/// requests anyway (waits there answer 202 until one is given).
const FIRST_PARTITION_PATIENCE: Duration = Duration::from_secs(10);

/// Where the replies are read from.
pub struct RepliesSource<'a> {
    pub brokers: &'a str,
    pub topic: &'a str,
    /// The consumer group all ingresses of a deployment share.
    pub group: &'a str,
}

/// The running reader of this process's reply partitions.
pub struct Replies {
    tasks: [JoinHandle<()>; 2],
}

impl Replies {
    /// Joins the replies group and starts reading what it assigns, keeping `named` up to
    /// date and feeding `waiters`. Waits (at most [`FIRST_PARTITION_PATIENCE`]) until a
    /// first partition can be named, so in the usual case requests can wait from the
    /// first one on.
    pub async fn start(
        source: RepliesSource<'_>,
        waiters: Arc<Waiters>,
        named: Arc<ReplyPartitions>,
    ) -> Result<Replies, KafkaError> {
        let (steps, step_queue) = mpsc::unbounded_channel();
        let reader = reader::Reader::new(
            source.brokers,
            source.topic,
            named.clone(),
            waiters,
            steps.clone(),
        )?;
        let topic_exists = reader.topic_exists().await;
        // The reader outlives the member, so a send fails only at shutdown.
        let on_change = move |change| drop(steps.send(reader::Step::Group(change)));
        let member = membership::join(
            source.brokers,
            source.topic,
            source.group,
            named.clone(),
            on_change,
        )?;
        let replies = Replies {
            tasks: [
                tokio::spawn(reader.run(step_queue)),
                tokio::spawn(membership::stay(member)),
            ],
        };
        if !topic_exists {
            tracing::warn!(
                topic = source.topic,
                "replies topic missing; requests asking Prefer: wait are answered 202 until it exists"
            );
            return Ok(replies);
        }
        // Past the patience, startup goes on and waiting requests answer 202 meanwhile.
        let _ = tokio::time::timeout(FIRST_PARTITION_PATIENCE, named.any_named()).await;
        match named.named() {
            named if named.is_empty() => tracing::warn!(
                topic = source.topic,
                group = source.group,
                "no reply partition yet; requests asking Prefer: wait are answered 202 until one is assigned"
            ),
            named => tracing::info!(topic = source.topic, partitions = ?named, "reading reply partitions"),
        }
        Ok(replies)
    }

    /// Leaves the group (its partitions go to the other ingresses) and stops reading.
    pub fn stop(self) {
        for task in self.tasks {
            task.abort();
        }
    }
}

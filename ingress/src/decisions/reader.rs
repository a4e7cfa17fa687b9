//! Reads the reply partitions the group gave this process and hands each decision to
//! the request waiting for it.
//!
//! Outside any group and without commits: a process only ever cares about decisions for
//! requests it holds right now. A partition given to it is read from its high watermark,
//! fetched before the partition is named to any request, so every decision a request
//! causes lies past the position. A partition taken away is read on for [`GRACE`], the
//! longest any request that named it can still be waiting, and then let go.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use partitioner::Decision;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::mpsc;
use uuid::Uuid;

use super::membership::Change;
use super::replies::ReplyPartitions;
use super::waiters::Waiters;

/// Longest wait for a partition's high watermark per attempt.
const POSITION_TIMEOUT: Duration = Duration::from_secs(5);
/// Pause before positioning again after a failed attempt.
const POSITION_RETRY: Duration = Duration::from_secs(1);
/// How long a partition taken away is still read: the longest wait, and a margin for the
/// decision's own trip.
pub(super) const GRACE: Duration = Duration::from_secs(6);

/// What the reader is told: the group's changes, and its own timers' results.
#[derive(Debug)]
pub(super) enum Step {
    Group(Change),
    /// The high watermark of a partition, fetched for the request to follow it numbered
    /// `epoch`, or why it could not be.
    Positioned {
        partition: i32,
        epoch: u64,
        high: Result<i64, String>,
    },
    /// The grace of a partition taken away under `epoch` is over.
    GraceOver {
        partition: i32,
        epoch: u64,
    },
}

/// One reply partition as the reader sees it.
#[derive(Default)]
struct Followed {
    /// The group gives it to this process.
    wanted: bool,
    /// The reader is assigned it.
    reading: bool,
    /// Counts the group's changes to it, so a late timer of an earlier change is ignored.
    epoch: u64,
}

pub(super) struct Reader {
    consumer: Arc<StreamConsumer>,
    topic: String,
    named: Arc<ReplyPartitions>,
    waiters: Arc<Waiters>,
    steps: mpsc::UnboundedSender<Step>,
    partitions: HashMap<i32, Followed>,
}

impl Reader {
    pub(super) fn new(
        brokers: &str,
        topic: &str,
        named: Arc<ReplyPartitions>,
        waiters: Arc<Waiters>,
        steps: mpsc::UnboundedSender<Step>,
    ) -> Result<Reader, KafkaError> {
        let consumer: StreamConsumer = ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .set("client.id", "ingress-replies-reader")
            // Never joined or committed: the id only has to be unique to this process.
            .set(
                "group.id",
                format!("ingress-replies-reader-{}", Uuid::new_v4()),
            )
            .set("enable.auto.commit", "false")
            .set("allow.auto.create.topics", "false")
            .create()?;
        Ok(Reader {
            consumer: Arc::new(consumer),
            topic: topic.to_owned(),
            named,
            waiters,
            steps,
            partitions: HashMap::new(),
        })
    }

    /// Whether the broker knows the replies topic (false also when it cannot be asked).
    pub(super) async fn topic_exists(&self) -> bool {
        let (consumer, topic) = (self.consumer.clone(), self.topic.clone());
        tokio::task::spawn_blocking(move || {
            consumer
                .fetch_metadata(Some(&topic), POSITION_TIMEOUT)
                .is_ok_and(|metadata| {
                    metadata.topics().iter().any(|t| {
                        t.name() == topic && t.error().is_none() && !t.partitions().is_empty()
                    })
                })
        })
        .await
        .unwrap_or(false)
    }

    /// Follows what `steps` says and delivers decisions, until aborted.
    pub(super) async fn run(mut self, mut steps: mpsc::UnboundedReceiver<Step>) {
        let consumer = self.consumer.clone();
        loop {
            tokio::select! {
                step = steps.recv() => match step {
                    Some(step) => self.take(step),
                    None => return,
                },
                message = consumer.recv() => match message {
                    Ok(message) => {
                        crate::metrics::decision_read();
                        let Some(payload) = message.payload() else { continue };
                        match serde_json::from_slice::<Decision>(payload) {
                            Ok(decision) => {
                                self.waiters.deliver(decision);
                            }
                            Err(error) => tracing::warn!(
                                %error,
                                partition = message.partition(),
                                offset = message.offset(),
                                "undecodable decision skipped"
                            ),
                        }
                    }
                    // librdkafka retries on its own; the error is only worth a line in the log.
                    Err(error) => tracing::warn!(%error, "replies reader error"),
                },
            }
        }
    }

    fn take(&mut self, step: Step) {
        match step {
            Step::Group(Change::Follow(partition)) => {
                let followed = self.partitions.entry(partition).or_default();
                followed.wanted = true;
                followed.epoch += 1;
                let (reading, epoch) = (followed.reading, followed.epoch);
                if reading {
                    // Given back within its grace: the position is still good.
                    self.named.name(partition);
                } else {
                    self.position(partition, epoch, Duration::ZERO);
                }
            }
            Step::Group(Change::Unfollow(partition)) => {
                let followed = self.partitions.entry(partition).or_default();
                followed.wanted = false;
                followed.epoch += 1;
                self.named.withdraw(partition);
                if followed.reading {
                    let (steps, epoch) = (self.steps.clone(), followed.epoch);
                    tokio::spawn(async move {
                        tokio::time::sleep(GRACE).await;
                        let _ = steps.send(Step::GraceOver { partition, epoch });
                    });
                }
            }
            Step::Positioned {
                partition,
                epoch,
                high,
            } => {
                let Some(followed) = self.partitions.get_mut(&partition) else {
                    return;
                };
                if followed.epoch != epoch || !followed.wanted || followed.reading {
                    return;
                }
                let assigned = high.and_then(|high| {
                    let mut list = TopicPartitionList::new();
                    list.add_partition_offset(&self.topic, partition, Offset::Offset(high))
                        .and_then(|()| self.consumer.incremental_assign(&list))
                        .map_err(|e| e.to_string())
                });
                match assigned {
                    Ok(()) => {
                        followed.reading = true;
                        self.named.name(partition);
                        self.count_read();
                        tracing::info!(partition, topic = self.topic, "reading reply partition");
                    }
                    Err(error) => {
                        tracing::warn!(%error, partition, "reply partition not positioned; retrying");
                        self.position(partition, epoch, POSITION_RETRY);
                    }
                }
            }
            Step::GraceOver { partition, epoch } => {
                let Some(followed) = self.partitions.get_mut(&partition) else {
                    return;
                };
                if followed.epoch != epoch || followed.wanted || !followed.reading {
                    return;
                }
                let mut list = TopicPartitionList::new();
                list.add_partition(&self.topic, partition);
                match self.consumer.incremental_unassign(&list) {
                    Ok(()) => {
                        followed.reading = false;
                        self.count_read();
                        tracing::info!(partition, topic = self.topic, "let go of reply partition");
                    }
                    Err(error) => {
                        tracing::warn!(%error, partition, "could not let go of a reply partition; it is read on")
                    }
                }
            }
        }
    }

    fn count_read(&self) {
        let read = self.partitions.values().filter(|p| p.reading).count();
        crate::metrics::reply_partitions_read(read);
    }

    /// Fetches `partition`'s high watermark after `delay`, off the async workers (the call
    /// blocks in librdkafka), and reports it as a [`Step::Positioned`].
    fn position(&self, partition: i32, epoch: u64, delay: Duration) {
        let (consumer, topic, steps) = (
            self.consumer.clone(),
            self.topic.clone(),
            self.steps.clone(),
        );
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let high = tokio::task::spawn_blocking(move || {
                consumer
                    .fetch_watermarks(&topic, partition, POSITION_TIMEOUT)
                    .map(|(_low, high)| high)
                    .map_err(|e| e.to_string())
            })
            .await
            .unwrap_or_else(|e| Err(e.to_string()));
            let _ = steps.send(Step::Positioned {
                partition,
                epoch,
                high,
            });
        });
    }
}

//! The intake: each decision read from the topic goes into the outbox of each recipient
//! that has a webhook (once per record, guarded by offset), or straight to the
//! dead-letter topic when that partner's outbox is full or its host is not allowed.
//! Partitions are taken in side by side, each in order, as in the feed.

use futures::future::try_join_all;
use partitioner::redis_target::RedisConnection;
use partitioner::Decision;
use rdkafka::message::{BorrowedMessage, Message};
use tracing::warn;

use super::dead_letter::{DeadLetters, Reason, Undeliverable};
use super::endpoints::{Endpoints, Route};
use super::outbox::{self, TakenIn};
use crate::decision_reader::by_partition;
use crate::metrics;

#[derive(Debug, thiserror::Error)]
pub(crate) enum IntakeError {
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("dead-letter topic: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
}

pub(crate) struct Intake {
    pub redis: RedisConnection,
    pub endpoints: Endpoints,
    pub dead_letters: DeadLetters,
    pub backlog_max: u64,
}

impl Intake {
    pub(crate) async fn take(&self, batch: &[BorrowedMessage<'_>]) -> Result<(), IntakeError> {
        try_join_all(
            by_partition(batch)
                .into_values()
                .map(|messages| async move {
                    for message in messages {
                        self.take_one(message).await?;
                    }
                    Ok::<(), IntakeError>(())
                }),
        )
        .await?;
        Ok(())
    }

    async fn take_one(&self, message: &BorrowedMessage<'_>) -> Result<(), IntakeError> {
        let payload = message.payload().unwrap_or_default();
        let decision: Decision = match serde_json::from_slice(payload) {
            Ok(decision) => decision,
            Err(error) => {
                metrics::webhook_taken_in("undecodable");
                warn!(%error, partition = message.partition(), offset = message.offset(), "a record of the decisions topic is not a decision; no partner gets it");
                return Ok(());
            }
        };
        for partner in decision.recipients() {
            let refused = match self.endpoints.route(partner) {
                None => continue,
                Some(Route::Refused { host }) => (
                    Reason::HostNotAllowed,
                    format!("host {host} is not allowed"),
                ),
                Some(Route::Deliver(_)) => {
                    let taken = outbox::take_in(
                        &self.redis,
                        partner,
                        message.partition(),
                        message.offset(),
                        self.backlog_max,
                        payload,
                    )
                    .await
                    .inspect_err(|_| metrics::webhook_redis_error())?;
                    match taken {
                        TakenIn::Appended => {
                            metrics::webhook_taken_in("appended");
                            continue;
                        }
                        TakenIn::Duplicate => {
                            metrics::webhook_taken_in("duplicate");
                            continue;
                        }
                        TakenIn::Full => (
                            Reason::BacklogFull,
                            format!("{} undelivered already", self.backlog_max),
                        ),
                    }
                }
            };
            let (reason, why) = refused;
            metrics::webhook_taken_in(reason.as_str());
            self.dead_letters
                .publish(&Undeliverable {
                    partner,
                    key: message.key().unwrap_or_default(),
                    decision: payload,
                    delivery_id: decision.delivery_id().to_string(),
                    reason,
                    attempts: 0,
                    last_failure: &why,
                })
                .await?;
            metrics::webhook_settled(reason.as_str(), None);
        }
        Ok(())
    }
}

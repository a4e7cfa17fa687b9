//! Decisions that cannot be delivered, on the webhook dead-letter topic: the decision's
//! JSON as it was, keyed like it, with why and to whom in headers. `consumer
//! replay-webhooks` puts selected ones back into their partners' outboxes once the cause
//! is fixed; the partner recognises a decision it already has by its delivery id.

use std::time::Duration;

use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientConfig;

use crate::config::{Config, ReplayWebhooksArgs};
use crate::outbox::dlq_header::REASON;
use crate::projection;
use crate::replay::{read_all, Letter, ReplayError, ReplaySummary};
use partitioner::redis_target::RedisTarget;

use super::outbox;

/// Headers of a webhook dead letter besides `dlq-reason`.
pub mod header {
    /// The partner the decision was for.
    pub const PARTNER: &str = "webhook-partner";
    /// The delivery id the partner would have received it under.
    pub const DELIVERY_ID: &str = "webhook-delivery-id";
    /// Attempts made, and the last one's failure.
    pub const ATTEMPTS: &str = "webhook-attempts";
    pub const LAST_FAILURE: &str = "webhook-last-failure";
}

/// Why a decision was not delivered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Reason {
    /// The endpoint answered 410.
    Gone,
    /// Still failing at the end of the retry period.
    Expired,
    /// Refused with a 4xx (not 408 or 429) attempt after attempt.
    Refused,
    /// The partner's outbox held as many as it may.
    BacklogFull,
    /// The endpoint's host is not one the service may contact.
    HostNotAllowed,
}

impl Reason {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Reason::Gone => "gone",
            Reason::Expired => "expired",
            Reason::Refused => "refused",
            Reason::BacklogFull => "backlog-full",
            Reason::HostNotAllowed => "host-not-allowed",
        }
    }
}

/// One decision to dead-letter.
pub(crate) struct Undeliverable<'a> {
    pub partner: &'a str,
    pub key: &'a [u8],
    pub decision: &'a [u8],
    pub delivery_id: String,
    pub reason: Reason,
    pub attempts: u32,
    pub last_failure: &'a str,
}

#[derive(Clone)]
pub(crate) struct DeadLetters {
    producer: FutureProducer,
    topic: String,
}

impl DeadLetters {
    pub(crate) fn new(config: &Config) -> Result<DeadLetters, rdkafka::error::KafkaError> {
        let producer = ClientConfig::new()
            .set("bootstrap.servers", &config.kafka_brokers)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("message.timeout.ms", "30000")
            .create()?;
        Ok(DeadLetters {
            producer,
            topic: config.webhook_dlq_topic.clone(),
        })
    }

    /// Publishes `letter` and waits for the broker's acknowledgement.
    pub(crate) async fn publish(
        &self,
        letter: &Undeliverable<'_>,
    ) -> Result<(), rdkafka::error::KafkaError> {
        let attempts = letter.attempts.to_string();
        let pairs: [(&str, &[u8]); 5] = [
            (REASON, letter.reason.as_str().as_bytes()),
            (header::PARTNER, letter.partner.as_bytes()),
            (header::DELIVERY_ID, letter.delivery_id.as_bytes()),
            (header::ATTEMPTS, attempts.as_bytes()),
            (header::LAST_FAILURE, letter.last_failure.as_bytes()),
        ];
        let headers = pairs
            .iter()
            .fold(OwnedHeaders::new(), |headers, (key, value)| {
                headers.insert(Header {
                    key,
                    value: Some(*value),
                })
            });
        let record = FutureRecord::to(&self.topic)
            .key(letter.key)
            .payload(letter.decision)
            .headers(headers);
        self.producer
            .send(record, Duration::from_secs(30))
            .await
            .map(|_| ())
            .map_err(|(error, _)| error)
    }
}

/// Reads every webhook dead letter present now and, unless `args.dry_run`, puts each
/// selected one back into its partner's outbox, printing each.
pub async fn replay(
    config: &Config,
    args: &ReplayWebhooksArgs,
) -> Result<ReplaySummary, ReplayError> {
    let letters = read_all(config, &config.webhook_dlq_topic)?;
    let target: RedisTarget = config
        .redis_url
        .parse()
        .map_err(|e| ReplayError::Redis(format!("{e}")))?;
    let redis = target
        .lazy(projection::LIMITS)
        .map_err(|e| ReplayError::Redis(e.to_string()))?;
    let mut summary = ReplaySummary {
        read: letters.len(),
        ..ReplaySummary::default()
    };
    for letter in &letters {
        let partner = partner_of(letter);
        let selected = args
            .reason_contains
            .as_deref()
            .is_none_or(|wanted| letter.reason.contains(wanted))
            && args
                .partner
                .as_deref()
                .is_none_or(|wanted| partner == Some(wanted));
        if !selected {
            continue;
        }
        summary.selected += 1;
        let (Some(partner), Some(decision)) = (partner, &letter.payload) else {
            println!("skip   {} (no partner or no decision)", shown(letter));
            summary.unroutable += 1;
            continue;
        };
        if args.dry_run {
            println!("would  {} to {partner}", shown(letter));
            continue;
        }
        outbox::put_back(&redis, partner, decision)
            .await
            .map_err(|e| ReplayError::Redis(e.to_string()))?;
        println!("replay {} to {partner}", shown(letter));
        summary.replayed += 1;
    }
    Ok(summary)
}

fn partner_of(letter: &Letter) -> Option<&str> {
    letter
        .headers
        .iter()
        .find(|(key, _)| key == header::PARTNER)
        .and_then(|(_, value)| std::str::from_utf8(value).ok())
}

fn shown(letter: &Letter) -> String {
    format!(
        "dlq {}/{} ({})",
        letter.dlq_partition, letter.dlq_offset, letter.reason
    )
}

//! `consumer replay-dlq`: re-publishes selected dead letters to the partition they came
//! from, after the cause was fixed (e.g. a consumer that now reads a newer schema).
//!
//! Replaying is idempotent by construction: a dead letter keeps the original payload and
//! so the original event id, and the store drops an event id it already applied. Replaying
//! a letter twice, or one that was applied some other way, changes nothing. A replay runs
//! over the dead letters present when it starts, so letters that fail again (and land in
//! the dead-letter topic anew) are not picked up by the same run.

use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, Instant};

use futures::future::join_all;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{BorrowedMessage, Header, Headers, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};

use crate::config::{Config, ReplayArgs};
use crate::outbox::dlq_header::{
    REASON, REPLAYED_FROM, SOURCE_OFFSET, SOURCE_PARTITION, SOURCE_TOPIC,
};

const TIMEOUT: Duration = Duration::from_secs(10);
/// Longest wait for the next dead letter before the read is declared stuck.
const READ_STALL: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error("redis: {0}")]
    Redis(String),
    #[error("topic {0} does not exist")]
    NoTopic(String),
    #[error("no dead letter arrived for {0:?} with {1} partitions left to read")]
    Stalled(Duration, usize),
    #[error("{failed} of {attempted} replays were not delivered; rerun to retry them")]
    Undelivered { failed: usize, attempted: usize },
}

/// One dead letter as read from the dead-letter topic.
#[derive(Clone, Debug)]
pub struct Letter {
    pub dlq_partition: i32,
    pub dlq_offset: i64,
    pub reason: String,
    pub source_topic: Option<String>,
    pub source_partition: Option<i32>,
    pub source_offset: Option<i64>,
    pub key: Option<Vec<u8>>,
    pub payload: Option<Vec<u8>>,
    /// The letter's headers other than the `dlq-*` ones.
    pub headers: Vec<(String, Vec<u8>)>,
}

impl Letter {
    fn from_message(message: &BorrowedMessage<'_>) -> Letter {
        let mut letter = Letter {
            dlq_partition: message.partition(),
            dlq_offset: message.offset(),
            reason: String::new(),
            source_topic: None,
            source_partition: None,
            source_offset: None,
            key: message.key().map(<[u8]>::to_vec),
            payload: message.payload().map(<[u8]>::to_vec),
            headers: Vec::new(),
        };
        for header in message.headers().into_iter().flat_map(|h| h.iter()) {
            let value = header.value.unwrap_or_default();
            let text = String::from_utf8_lossy(value).into_owned();
            match header.key {
                REASON => letter.reason = text,
                SOURCE_TOPIC => letter.source_topic = Some(text),
                SOURCE_PARTITION => letter.source_partition = text.parse().ok(),
                SOURCE_OFFSET => letter.source_offset = text.parse().ok(),
                key if key.starts_with("dlq-") => {}
                key => letter.headers.push((key.to_owned(), value.to_vec())),
            }
        }
        letter
    }

    /// Whether the selection picks this letter.
    pub fn selected_by(&self, args: &ReplayArgs) -> bool {
        args.reason_contains
            .as_deref()
            .is_none_or(|wanted| self.reason.contains(wanted))
            && args
                .source_partition
                .is_none_or(|wanted| self.source_partition == Some(wanted))
            && args
                .source_offset
                .is_none_or(|wanted| self.source_offset == Some(wanted))
    }
}

impl fmt::Display for Letter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let source = match (self.source_partition, self.source_offset) {
            (Some(p), Some(o)) => format!("{p}/{o}"),
            _ => "?".to_owned(),
        };
        write!(
            f,
            "dlq {}/{} from {} {}: {}",
            self.dlq_partition,
            self.dlq_offset,
            self.source_topic.as_deref().unwrap_or("?"),
            source,
            self.reason
        )
    }
}

/// What a replay did.
#[derive(Debug, Default)]
pub struct ReplaySummary {
    pub read: usize,
    pub selected: usize,
    pub replayed: usize,
    /// Selected letters without a source partition header: never guessed, left alone.
    pub unroutable: usize,
}

/// Reads every dead letter present now, prints each selected one and, unless
/// `args.dry_run`, re-publishes it to its source topic and partition.
pub async fn replay(config: &Config, args: &ReplayArgs) -> Result<ReplaySummary, ReplayError> {
    let letters = read_all(config, &config.dlq_topic)?;
    let mut summary = ReplaySummary {
        read: letters.len(),
        ..ReplaySummary::default()
    };
    let selected: Vec<&Letter> = letters
        .iter()
        .filter(|letter| letter.selected_by(args))
        .take(args.limit.unwrap_or(usize::MAX))
        .collect();
    summary.selected = selected.len();
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &config.kafka_brokers)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .create()?;
    let mut sends = Vec::new();
    for letter in &selected {
        let Some(partition) = letter.source_partition else {
            println!("skip   {letter} (no source partition)");
            summary.unroutable += 1;
            continue;
        };
        if args.dry_run {
            println!("would  {letter}");
            continue;
        }
        println!("replay {letter}");
        let topic = letter
            .source_topic
            .clone()
            .unwrap_or_else(|| config.bookings_topic.clone());
        sends.push(send(&producer, letter, topic, partition));
    }
    let attempted = sends.len();
    let failed = join_all(sends)
        .await
        .into_iter()
        .filter(Result::is_err)
        .count();
    summary.replayed = attempted - failed;
    if failed > 0 {
        return Err(ReplayError::Undelivered { failed, attempted });
    }
    Ok(summary)
}

async fn send(
    producer: &FutureProducer,
    letter: &Letter,
    topic: String,
    partition: i32,
) -> Result<(), rdkafka::error::KafkaError> {
    let replayed_from = format!("{}/{}", letter.dlq_partition, letter.dlq_offset);
    let headers = letter
        .headers
        .iter()
        .fold(OwnedHeaders::new(), |headers, (key, value)| {
            headers.insert(Header {
                key: key.as_str(),
                value: Some(value.as_slice()),
            })
        })
        .insert(Header {
            key: REPLAYED_FROM,
            value: Some(replayed_from.as_bytes()),
        });
    // The source partition, not the key's hash: the event goes back behind the same
    // property's other events, whatever partition map the ingress runs today.
    let mut record: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(&topic)
        .partition(partition)
        .headers(headers);
    if let Some(key) = &letter.key {
        record = record.key(key.as_slice());
    }
    if let Some(payload) = &letter.payload {
        record = record.payload(payload.as_slice());
    }
    match producer.send(record, Duration::from_secs(30)).await {
        Ok(_) => Ok(()),
        Err((e, _)) => {
            eprintln!("not delivered: {letter}: {e}");
            Err(e)
        }
    }
}

/// Reads each partition of the dead-letter topic from its start to the end it had when
/// the read began. Commits nothing: the replay keeps no cursor of its own.
pub(crate) fn read_all(config: &Config, topic: &str) -> Result<Vec<Letter>, ReplayError> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &config.kafka_brokers)
        .set("group.id", format!("{}-dlq-replay", config.group_id))
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false")
        .set("allow.auto.create.topics", "false")
        .create()?;
    let partitions = crate::lag::partitions_of(&consumer, topic)?;
    if partitions.is_empty() {
        return Err(ReplayError::NoTopic(topic.to_owned()));
    }
    let mut remaining: BTreeMap<i32, i64> = BTreeMap::new();
    let mut assignment = TopicPartitionList::new();
    for partition in partitions {
        let (low, end) = consumer.fetch_watermarks(topic, partition, TIMEOUT)?;
        if end > low {
            remaining.insert(partition, end);
            assignment.add_partition_offset(topic, partition, Offset::Offset(low))?;
        }
    }
    let mut letters = Vec::new();
    if remaining.is_empty() {
        return Ok(letters);
    }
    consumer.assign(&assignment)?;
    let mut last_read = Instant::now();
    while !remaining.is_empty() {
        let Some(message) = consumer.poll(Duration::from_millis(200)) else {
            if last_read.elapsed() > READ_STALL {
                return Err(ReplayError::Stalled(READ_STALL, remaining.len()));
            }
            continue;
        };
        let message = message?;
        last_read = Instant::now();
        let Some(end) = remaining.get(&message.partition()).copied() else {
            continue;
        };
        if message.offset() < end {
            letters.push(Letter::from_message(&message));
        }
        if message.offset() + 1 >= end {
            remaining.remove(&message.partition());
        }
    }
    Ok(letters)
}

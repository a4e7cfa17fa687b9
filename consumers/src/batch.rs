//! One partition's batch of messages, decoded: events to apply, and dead letters for what
//! cannot be decoded or fails validation (which never blocks the partition). An event of a
//! schema version newer than this build's ends the batch: it and what follows wait for a
//! consumer that knows it.

use std::sync::Arc;

use partitioner::event::headers;
use partitioner::{DecodeError, Envelope};
use rdkafka::message::{Headers, Message, OwnedMessage};
use tracing::warn;

use crate::outbox::DeadLetter;

pub struct PartitionBatch {
    /// Shared, because the store applies them on the blocking pool.
    pub events: Arc<Vec<(i64, Envelope)>>,
    pub dead: Vec<DeadLetter>,
    /// The first and last offsets in the batch, decodable or not; `through` is
    /// `first - 1` when the batch starts with an event of an unknown version.
    pub first: i64,
    pub through: i64,
    /// The first event of a schema version this build does not know, as (offset,
    /// version): the batch ends before it.
    pub unknown_version: Option<(i64, u16)>,
    /// The events whose senders wait for their decision, as (offset, partition of the
    /// replies topic named in the `reply-partition` header), in offset order.
    pub replies: Vec<(i64, i32)>,
    /// The messages as read, in offset order, for dead-lettering an event that cannot be
    /// stored with its original key and payload.
    messages: Vec<OwnedMessage>,
}

impl PartitionBatch {
    /// Decodes a non-empty run of one partition's messages, in offset order.
    pub fn decode(partition: i32, mut messages: Vec<OwnedMessage>) -> PartitionBatch {
        let first = messages.first().map_or(-1, Message::offset);
        let mut through = messages.last().map_or(-1, Message::offset);
        let mut events = Vec::with_capacity(messages.len());
        let mut dead = Vec::new();
        let mut unknown_version = None;
        let mut replies = Vec::new();
        for (index, message) in messages.iter().enumerate() {
            let decoded = match message.payload() {
                Some(payload) => Envelope::from_json(payload),
                None => {
                    let reason = "empty payload".to_owned();
                    warn!(partition, offset = message.offset(), %reason, "undecodable event sent to the dead-letter topic");
                    dead.push(dead_letter(message, reason));
                    continue;
                }
            };
            match decoded {
                Ok(envelope) => {
                    if let Some(partition) = reply_partition(message) {
                        replies.push((message.offset(), partition));
                    }
                    events.push((message.offset(), envelope));
                }
                Err(DecodeError::UnknownVersion(version)) => {
                    unknown_version = Some((message.offset(), version));
                    through = message.offset() - 1;
                    messages.truncate(index);
                    break;
                }
                Err(error) => {
                    let reason = error.to_string();
                    warn!(partition, offset = message.offset(), %reason, "undecodable event sent to the dead-letter topic");
                    dead.push(dead_letter(message, reason));
                }
            }
        }
        PartitionBatch {
            events: Arc::new(events),
            dead,
            first,
            through,
            unknown_version,
            replies,
            messages,
        }
    }

    /// The replies partition the decision answering the record at `offset` goes to, if
    /// its sender waits for it.
    pub fn reply_partition(&self, offset: i64) -> Option<i32> {
        let at = self
            .replies
            .binary_search_by_key(&offset, |(at, _)| *at)
            .ok()?;
        Some(self.replies[at].1)
    }

    /// Ends the batch before `offset`: it and what follows are left unapplied, to be read
    /// again by whoever applies the partition next.
    pub fn end_before(&mut self, offset: i64) {
        Arc::make_mut(&mut self.events).retain(|(at, _)| *at < offset);
        self.dead.retain(|letter| letter.source_offset < offset);
        self.messages.retain(|message| message.offset() < offset);
        self.replies.retain(|(at, _)| *at < offset);
        self.through = self.through.min(offset - 1);
        if self.unknown_version.is_some_and(|(at, _)| at >= offset) {
            self.unknown_version = None;
        }
    }

    /// The dead letter for the message at `offset`, which could not be stored.
    pub fn dead_letter(&self, offset: i64, reason: String) -> Option<DeadLetter> {
        let index = self
            .messages
            .binary_search_by_key(&offset, Message::offset)
            .ok()?;
        Some(dead_letter(&self.messages[index], reason))
    }
}

/// The `reply-partition` header, when present and a partition number; anything else is
/// ignored (the decision still reaches `booking-decisions`, and the waiting request
/// answers 202 when its wait runs out).
fn reply_partition(message: &OwnedMessage) -> Option<i32> {
    let value = message
        .headers()?
        .iter()
        .find(|header| header.key == headers::REPLY_PARTITION)?
        .value?;
    std::str::from_utf8(value)
        .ok()?
        .parse()
        .ok()
        .filter(|p: &i32| *p >= 0)
}

fn dead_letter(message: &OwnedMessage, reason: String) -> DeadLetter {
    DeadLetter {
        key: message.key().map(<[u8]>::to_vec),
        payload: message.payload().map(<[u8]>::to_vec),
        reason,
        source_partition: message.partition(),
        source_offset: message.offset(),
    }
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDate;
    use partitioner::{Command, Event, EventMeta};
    use rdkafka::Timestamp;
    use uuid::Uuid;

    use super::*;

    fn allotment(property: &str) -> Envelope {
        let night = NaiveDate::from_ymd_opt(2030, 1, 1).unwrap();
        Envelope::new(
            Command {
                tenant_id: "acme".into(),
                property_id: property.into(),
                event: Event::SetAllotment {
                    room_type: "DBL".into(),
                    from: night,
                    to: night.succ_opt().unwrap(),
                    units: 1,
                },
            },
            EventMeta {
                event_id: Uuid::new_v4(),
                partner_id: "ota-1".into(),
                request_id: "r".into(),
                received_at_ms: 0,
                any_partner: false,
            },
        )
    }

    fn message(offset: i64, payload: Vec<u8>) -> OwnedMessage {
        OwnedMessage::new(
            Some(payload),
            None,
            "bookings".into(),
            Timestamp::NotAvailable,
            3,
            offset,
            None,
        )
    }

    fn waited_for(offset: i64, reply_partition: &str) -> OwnedMessage {
        let headers = rdkafka::message::OwnedHeaders::new().insert(rdkafka::message::Header {
            key: headers::REPLY_PARTITION,
            value: Some(reply_partition),
        });
        OwnedMessage::new(
            Some(allotment("p1").to_json()),
            None,
            "bookings".into(),
            Timestamp::NotAvailable,
            3,
            offset,
            Some(headers),
        )
    }

    #[test]
    fn the_reply_partition_a_waiting_sender_named_is_kept_by_offset() {
        let mut batch = PartitionBatch::decode(
            3,
            vec![
                waited_for(10, "7"),
                message(11, allotment("p1").to_json()),
                waited_for(12, "not a number"),
                waited_for(13, "-1"),
                waited_for(14, "0"),
            ],
        );
        assert_eq!(batch.replies, [(10, 7), (14, 0)]);
        assert_eq!(batch.reply_partition(10), Some(7));
        assert_eq!(batch.reply_partition(11), None);
        assert_eq!(batch.reply_partition(14), Some(0));
        batch.end_before(12);
        assert_eq!(batch.reply_partition(14), None);
    }

    fn of_version(version: u16) -> Vec<u8> {
        let mut envelope = allotment("p1");
        envelope.schema_version = version;
        envelope.to_json()
    }

    fn future() -> Vec<u8> {
        of_version(99)
    }

    #[test]
    fn bad_events_become_dead_letters_and_the_rest_is_applied() {
        let mut invalid = allotment("p1");
        invalid.property_id = "p/1".into();
        let batch = PartitionBatch::decode(
            3,
            vec![
                message(10, allotment("p1").to_json()),
                message(11, b"{".to_vec()),
                message(12, invalid.to_json()),
                message(13, of_version(0)),
                message(14, allotment("p2").to_json()),
            ],
        );
        let applied: Vec<i64> = batch.events.iter().map(|(offset, _)| *offset).collect();
        assert_eq!(applied, [10, 14]);
        let dead: Vec<i64> = batch.dead.iter().map(|d| d.source_offset).collect();
        assert_eq!(dead, [11, 12, 13]);
        assert!(
            batch.dead[1].reason.contains("property_id"),
            "{}",
            batch.dead[1].reason
        );
        assert!(batch.dead[2].reason.contains("retired schema version 0"));
        assert_eq!(
            (batch.first, batch.through, batch.unknown_version),
            (10, 14, None)
        );
    }

    #[test]
    fn an_unknown_version_ends_the_batch_before_it() {
        let batch = PartitionBatch::decode(
            3,
            vec![
                message(10, allotment("p1").to_json()),
                message(11, future()),
                message(12, allotment("p1").to_json()),
            ],
        );
        let applied: Vec<i64> = batch.events.iter().map(|(offset, _)| *offset).collect();
        assert_eq!(applied, [10]);
        assert!(batch.dead.is_empty());
        assert_eq!((batch.first, batch.through), (10, 10));
        assert_eq!(batch.unknown_version, Some((11, 99)));

        let first = PartitionBatch::decode(3, vec![message(11, future())]);
        assert!(first.events.is_empty());
        assert_eq!((first.first, first.through), (11, 10));
    }

    #[test]
    fn a_batch_ended_early_keeps_nothing_from_there_on() {
        let mut batch = PartitionBatch::decode(
            3,
            vec![
                message(10, allotment("p1").to_json()),
                message(11, b"{".to_vec()),
                message(12, allotment("p1").to_json()),
                message(13, b"{".to_vec()),
                message(14, future()),
            ],
        );
        batch.end_before(12);
        let applied: Vec<i64> = batch.events.iter().map(|(offset, _)| *offset).collect();
        assert_eq!(applied, [10]);
        let dead: Vec<i64> = batch.dead.iter().map(|d| d.source_offset).collect();
        assert_eq!(dead, [11]);
        assert_eq!(
            (batch.first, batch.through, batch.unknown_version),
            (10, 11, None)
        );
        assert!(batch.dead_letter(12, "x".into()).is_none());
    }
}

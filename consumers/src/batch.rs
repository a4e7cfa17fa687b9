//! One partition's batch of messages, decoded: events to apply, and dead letters for what
//! cannot be decoded (which never blocks the partition).

use std::sync::Arc;

use partitioner::Envelope;
use rdkafka::message::{Message, OwnedMessage};
use tracing::warn;

use crate::outbox::DeadLetter;

pub struct PartitionBatch {
    /// Shared, because the store applies them on the blocking pool.
    pub events: Arc<Vec<(i64, Envelope)>>,
    pub dead: Vec<DeadLetter>,
    /// The first and last offsets in the batch, decodable or not.
    pub first: i64,
    pub through: i64,
    /// The messages as read, in offset order, for dead-lettering an event that cannot be
    /// stored with its original key and payload.
    messages: Vec<OwnedMessage>,
}

impl PartitionBatch {
    /// Decodes a non-empty run of one partition's messages, in offset order.
    pub fn decode(partition: i32, messages: Vec<OwnedMessage>) -> PartitionBatch {
        let first = messages.first().map_or(-1, Message::offset);
        let through = messages.last().map_or(-1, Message::offset);
        let mut events = Vec::with_capacity(messages.len());
        let mut dead = Vec::new();
        for message in &messages {
            let decoded = match message.payload() {
                Some(payload) => Envelope::from_json(payload).map_err(|e| e.to_string()),
                None => Err("empty payload".to_owned()),
            };
            match decoded {
                Ok(envelope) => events.push((message.offset(), envelope)),
                Err(reason) => {
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
            messages,
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

fn dead_letter(message: &OwnedMessage, reason: String) -> DeadLetter {
    DeadLetter {
        key: message.key().map(<[u8]>::to_vec),
        payload: message.payload().map(<[u8]>::to_vec),
        reason,
        source_partition: message.partition(),
        source_offset: message.offset(),
    }
}

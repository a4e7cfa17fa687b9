//! Durable state of the consumers: bookings, nights and the partition checkpoint.
//!
//! The state is split by Kafka partition, because a partition is the unit of ownership: the
//! consumer assigned a partition is its single writer. A batch of a partition's events is
//! applied and committed together with the partition's checkpoint (the last offset applied),
//! so after a crash the store and its checkpoint always agree and a replay from Kafka skips
//! what is already in. Backends implement [`Store`]; the embedded one is the default.

pub mod conformance;
pub mod embedded;
pub mod scylla;
pub mod skip;

use partitioner::Envelope;
use uuid::Uuid;

use crate::apply::{AppliedEvent, Booking, Effects, Night, NightId};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Another process holds this partition's state: it still owns the partition, or has
    /// not released it yet.
    #[error("partition {partition} is held by another process")]
    Locked { partition: i32 },
    #[error("store i/o failed: {0}")]
    Io(String),
    #[error("stored record is corrupt: {0}")]
    Corrupt(String),
}

/// What a failed store write calls for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recovery {
    /// The store may take the same write later (an I/O error, a slow volume, a node
    /// restarting): retry with backoff.
    Retry,
    /// Another owner holds the partition: stop writing it.
    Stop,
    /// The write fails the same way every time: some event of the batch cannot be stored
    /// and, once found, goes to the dead-letter topic instead of blocking its partition.
    Isolate,
}

impl StoreError {
    pub fn recovery(&self) -> Recovery {
        match self {
            StoreError::Io(_) => Recovery::Retry,
            StoreError::Locked { .. } => Recovery::Stop,
            StoreError::Corrupt(_) => Recovery::Isolate,
        }
    }
}

/// Opens the state of one partition, taking exclusive ownership of it.
pub trait Store: Send + Sync + 'static {
    type Partition: PartitionStore;
    fn open(&self, partition: i32) -> Result<Self::Partition, StoreError>;

    /// The partition's checkpoint, read without taking the partition over (no new owner
    /// epoch on the CQL store, no file created on the embedded one): for a command that
    /// decides whether to act at all.
    fn peek_checkpoint(&self, partition: i32) -> Result<Option<i64>, StoreError>;

    /// Every partition that has state, in order: for maintenance and verification.
    fn partitions(&self) -> Result<Vec<i32>, StoreError>;

    /// The partition map the topic's state was built under (a placement, see
    /// [`partitioner::PartitionMap`]), topic-wide: `None` before the first event that
    /// carries one.
    fn accepted_placement(&self) -> Result<Option<String>, StoreError>;

    /// Accepts `placement` unless a map is accepted already, and returns the accepted one:
    /// the first of concurrent callers wins, and every caller sees what it won with.
    fn adopt_placement(&self, placement: &str) -> Result<String, StoreError>;

    /// Replaces the accepted map, whatever it was: `consumer accept-placement`, once an
    /// operator has dealt with the state of the properties the new map moves.
    fn accept_placement(&self, placement: &str) -> Result<(), StoreError>;
}

/// The state of one partition, owned by one consumer at a time.
pub trait PartitionStore: Send + 'static {
    /// The last offset whose effects are stored, if any.
    fn checkpoint(&self) -> Result<Option<i64>, StoreError>;

    /// Runs `events` through the state machine ([`crate::apply`]) in order and stores
    /// their effects with the checkpoint moved to `through` (the batch's last offset,
    /// which may belong to an event that could not be decoded) in one atomic write. Events
    /// are skipped by [`skip::SkipRule`]: that is what makes redelivery harmless.
    fn write_batch(
        &mut self,
        events: &[(i64, Envelope)],
        through: i64,
    ) -> Result<BatchResult, StoreError>;

    fn booking(&self, booking_id: Uuid) -> Result<Option<Booking>, StoreError>;

    /// Where the event with this id was applied and the fingerprint of its command, if it
    /// ever was (events dead-lettered or never seen were not).
    fn applied_event(&self, event_id: Uuid) -> Result<Option<AppliedEvent>, StoreError>;

    /// Every booking of the partition, for verification and projection rebuilds.
    fn bookings(&self) -> Result<Vec<Booking>, StoreError>;

    /// Every night of the partition, for verification and projection rebuilds.
    fn nights(&self) -> Result<Vec<(NightId, Night)>, StoreError>;
}

/// What a batch did.
#[derive(Debug, Default)]
pub struct BatchResult {
    /// One entry per event applied, in offset order.
    pub applied: Vec<Effects>,
    /// Events at or below the checkpoint: redelivered after a restart.
    pub replayed: usize,
    /// Events whose id was applied before at another offset: the partner resent a request.
    pub duplicates: usize,
}

//! What every worker of the process shares, built once by [`crate::run`]: the Kafka
//! consumer, the store, the projections, the outbox and the partition bookkeeping.

use std::sync::Arc;

use rdkafka::consumer::StreamConsumer;
use tokio_util::sync::CancellationToken;

use crate::assignment::Assignment;
use crate::context::OwnershipContext;
use crate::outbox::Outbox;
use crate::placement::AcceptedPlacement;
use crate::projection::Projections;
use crate::store::Store;

pub type KafkaConsumer = StreamConsumer<OwnershipContext>;

/// What every worker of the process shares.
pub struct Shared<S: Store> {
    pub consumer: Arc<KafkaConsumer>,
    pub store: S,
    pub projections: Projections,
    pub outbox: Outbox,
    pub assignment: Arc<Assignment>,
    pub topic: String,
    pub max_batch: usize,
    /// How many times an event that fails to store deterministically is tried on its own
    /// before it is dead-lettered.
    pub poison_tries: u32,
    /// The partition map the topic's state was built under, read once.
    pub placement: AcceptedPlacement,
    /// Cancelled at shutdown: workers finish the batch in hand and stop.
    pub stopping: CancellationToken,
}

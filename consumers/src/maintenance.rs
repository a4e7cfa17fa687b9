//! Offline maintenance: `rebuild` rewrites every Redis projection from the store,
//! `reconcile` reports every projection that disagrees with it, `accept-gap` lets a held
//! partition resume past events Kafka deleted before they were applied, and
//! `accept-placement` lets partitions held for a property moved by a new partition map
//! resume under that map.
//!
//! Both take each partition of the store over, as a new owner would: run them with the
//! consumers stopped. The embedded store's files are locked by their owners, so a running
//! consumer's partition is reported, not skipped silently; a ScyllaDB partition is fenced,
//! and the consumer that owned it releases it at its next write.

use std::time::Duration;

use partitioner::PartitionMap;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::ClientConfig;
use tracing::info;

use crate::config::Config;
use crate::projection::{Projections, Snapshot};
use crate::store::{PartitionStore, Store};
use crate::Error;

/// Rebuilds the projections of every partition in the store; returns how many.
pub async fn rebuild<S: Store>(config: &Config, store: &S) -> Result<usize, Error> {
    let projections = Projections::new(&config.redis_url, &config.bookings_topic)?;
    let partitions = store.partitions()?;
    for partition in &partitions {
        let snapshot = Snapshot::read(&store.open(*partition)?)?;
        projections.rebuild(*partition, &snapshot).await?;
        info!(
            partition,
            nights = snapshot.nights.len(),
            bookings = snapshot.bookings.len(),
            "projections rebuilt"
        );
    }
    Ok(partitions.len())
}

/// Compares every partition's projections with the store; returns each mismatch.
pub async fn reconcile<S: Store>(config: &Config, store: &S) -> Result<Vec<String>, Error> {
    let projections = Projections::new(&config.redis_url, &config.bookings_topic)?;
    let mut mismatches = Vec::new();
    for partition in store.partitions()? {
        let snapshot = Snapshot::read(&store.open(partition)?)?;
        mismatches.extend(projections.reconcile(partition, &snapshot).await?);
    }
    Ok(mismatches)
}

/// Fails when the consumer group has members: a running consumer owns the state a command
/// is about to change.
fn refuse_while_the_group_runs(
    kafka: &BaseConsumer,
    config: &Config,
    timeout: Duration,
) -> Result<(), Error> {
    let groups = kafka.fetch_group_list(Some(&config.group_id), timeout)?;
    match groups.groups().iter().find(|g| !g.members().is_empty()) {
        Some(group) => Err(Error::GroupActive(
            group.name().to_owned(),
            group.members().len(),
        )),
        None => Ok(()),
    }
}

/// Makes `placement` the partition map the topic's state is taken to be built under, and
/// returns the one it replaces and the new one, as the store now holds it (canonical). Partitions held because the old map kept a property
/// elsewhere resume at the next start, applying that property's events from what the
/// partition holds: the operator's decision, taken once the moved properties' state was
/// moved or written off. Refused while the group runs: its members read the map once.
pub fn accept_placement<S: Store>(
    config: &Config,
    store: &S,
    placement: &str,
) -> Result<(Option<String>, String), Error> {
    let map = placement
        .parse::<PartitionMap>()
        .map_err(|problem| Error::Placement(placement.to_owned(), problem))?;
    let kafka: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &config.kafka_brokers)
        .set("group.id", &config.group_id)
        .set("enable.auto.commit", "false")
        .create()?;
    refuse_while_the_group_runs(&kafka, config, Duration::from_secs(10))?;
    let previous = store.accepted_placement()?;
    store.accept_placement(map.placement())?;
    // Read back: a concurrent writer (none should run) or a lost write shows here.
    let now = store.accepted_placement()?;
    if now.as_deref() != Some(map.placement()) {
        return Err(Error::Store(crate::store::StoreError::Io(format!(
            "wrote partition map {} but the store holds {now:?}",
            map.placement()
        ))));
    }
    info!(
        ?previous,
        accepted = map.placement(),
        "partition map accepted"
    );
    Ok((previous, map.placement().to_owned()))
}

/// What `accept-gap` found for one partition.
#[derive(Debug, PartialEq, Eq)]
pub enum Gap {
    /// The store's next offset is still in Kafka: nothing to accept.
    None { next: i64, first_available: i64 },
    /// Offsets `next..first_available` are lost; the checkpoint now stands before
    /// `first_available`.
    Accepted { next: i64, first_available: i64 },
}

/// Moves `partition`'s checkpoint to just before the first event Kafka still has, when the
/// events the store needs next were deleted: the decision to lose them is the operator's,
/// taken after no snapshot could restore them. Their bookings and allotments are missing
/// from the state from then on.
pub fn accept_gap<S: Store>(config: &Config, store: &S, partition: i32) -> Result<Gap, Error> {
    let kafka: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &config.kafka_brokers)
        .set("group.id", &config.group_id)
        .set("enable.auto.commit", "false")
        .create()?;
    let timeout = Duration::from_secs(10);
    // A running consumer would be fenced (CQL store) or hold the partition: refuse.
    refuse_while_the_group_runs(&kafka, config, timeout)?;
    let (first_available, _) =
        kafka.fetch_watermarks(&config.bookings_topic, partition, timeout)?;
    let no_gap = |next| Gap::None {
        next,
        first_available,
    };
    // Decide before taking the partition over, so finding no gap changes nothing.
    let next = store.peek_checkpoint(partition)?.map_or(0, |c| c + 1);
    if first_available <= next {
        return Ok(no_gap(next));
    }
    let mut state = store.open(partition)?;
    // Taking it over may have completed a batch committed by its last owner: decide again.
    let next = state.checkpoint()?.map_or(0, |c| c + 1);
    if first_available <= next {
        return Ok(no_gap(next));
    }
    // An empty batch moves the checkpoint, exactly as past an event that was never stored.
    state.write_batch(&[], first_available - 1)?;
    info!(
        partition,
        lost_from = next,
        lost_to = first_available - 1,
        "gap accepted"
    );
    Ok(Gap::Accepted {
        next,
        first_available,
    })
}

//! Offline projection maintenance: `rebuild` rewrites every Redis projection from the
//! store, `reconcile` reports every projection that disagrees with it.
//!
//! Both take each partition of the store over, as a new owner would: run them with the
//! consumers stopped. The embedded store's files are locked by their owners, so a running
//! consumer's partition is reported, not skipped silently; a ScyllaDB partition is fenced,
//! and the consumer that owned it stops at its next write.

use tracing::info;

use crate::config::Config;
use crate::projection::{Projections, Snapshot};
use crate::store::Store;
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

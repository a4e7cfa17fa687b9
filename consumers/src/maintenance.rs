//! Offline projection maintenance: `rebuild` rewrites every Redis projection from the
//! store, `reconcile` reports every projection that disagrees with it.
//!
//! Both read the embedded store's partition files, which their owners lock: run them with
//! the consumers of this store directory stopped (a locked partition is reported, not
//! skipped silently).

use tracing::info;

use crate::config::Config;
use crate::projection::{Projections, Snapshot};
use crate::store::embedded::EmbeddedStore;
use crate::store::Store;
use crate::Error;

/// Rebuilds the projections of every partition in the store; returns how many.
pub async fn rebuild(config: &Config) -> Result<usize, Error> {
    let store = EmbeddedStore::new(&config.store_dir)?;
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
pub async fn reconcile(config: &Config) -> Result<Vec<String>, Error> {
    let store = EmbeddedStore::new(&config.store_dir)?;
    let projections = Projections::new(&config.redis_url, &config.bookings_topic)?;
    let mut mismatches = Vec::new();
    for partition in store.partitions()? {
        let snapshot = Snapshot::read(&store.open(partition)?)?;
        mismatches.extend(projections.reconcile(partition, &snapshot).await?);
    }
    Ok(mismatches)
}

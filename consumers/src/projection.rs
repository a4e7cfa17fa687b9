//! Redis projections: remaining units per night and booking status, served by the ingress.
//!
//! Redis holds derived data only. Every write carries absolute values (never increments)
//! and the source offset each value reflects, and is made only if newer ([`writes`]), so
//! replaying an event rewrites the same value, nothing moves backwards, and a lost Redis
//! loses nothing the store does not have. Every command touches one key, so the same code
//! runs on a single node and on a Redis Cluster; a reader may therefore see some keys of a
//! batch before others (each value is one the store held at some offset, never an older
//! one than the reader saw before), and the partition's checkpoint moves only once all of
//! its batch's keys are written.
//!
//! When Redis is unreachable the consumer keeps committing to the store and marks the
//! affected partitions stale; once Redis answers again, each stale partition is rebuilt
//! from the store, which is the truth. A partition is also rebuilt when its new owner finds
//! that the projections lag behind the store (the previous owner stopped between the two).

mod writes;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use partitioner::keys;
use partitioner::redis_target::{Limits, RedisConnection, RedisTarget};
use redis::AsyncCommands;
use tokio::sync::OnceCell;
use tracing::{debug, error, info, warn};

use self::writes::{Freshness, NightWrite};
use crate::apply::{Booking, Effects, Night, NightId};
use crate::metrics;
use crate::store::{PartitionStore, StoreError};

/// How long connecting to Redis and one answer may take.
pub(crate) const LIMITS: Limits = Limits {
    connect: Duration::from_secs(2),
    response: Duration::from_secs(2),
    retries: 3,
    // Far above what an answer takes, even during a failover; reached only by a client
    // that stopped answering, which is then replaced.
    deadline: Duration::from_secs(5),
};
/// While Redis is down, how long batches skip it before the next attempt, so an outage
/// does not add a connection timeout to every batch.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// Everything a partition's projections derive from, read from its store in one go.
pub struct Snapshot {
    pub nights: Vec<(NightId, Night)>,
    pub bookings: Vec<Booking>,
    pub checkpoint: Option<i64>,
}

impl Snapshot {
    pub fn read<P: PartitionStore>(store: &P) -> Result<Snapshot, StoreError> {
        Ok(Snapshot {
            nights: store.nights()?,
            bookings: store.bookings()?,
            checkpoint: store.checkpoint()?,
        })
    }
}

/// The consumer's Redis projections. Cheap to clone: every partition worker holds one and
/// they share the connection (multiplexed, so one worker's pipeline never waits for
/// another's), the stale set and the outage state.
#[derive(Clone)]
pub struct Projections {
    inner: Arc<Inner>,
}

struct Inner {
    target: RedisTarget,
    /// Connected lazily, so a consumer starts and commits to the store while Redis is down.
    redis: OnceCell<RedisConnection>,
    topic: String,
    /// Partitions whose projections missed writes and must be rebuilt from the store.
    stale: Mutex<BTreeSet<i32>>,
    /// Set while Redis is failing: when to try it again. Also makes an outage log once.
    down_until: Mutex<Option<Instant>>,
}

impl Projections {
    /// `url` is a single node's URL or a cluster's seed URLs ([`RedisTarget`]).
    pub fn new(url: &str, topic: &str) -> Result<Self, redis::RedisError> {
        Ok(Projections {
            inner: Arc::new(Inner {
                target: url.parse()?,
                redis: OnceCell::new(),
                topic: topic.to_owned(),
                stale: Mutex::new(BTreeSet::new()),
                down_until: Mutex::new(None),
            }),
        })
    }

    async fn connection(&self) -> Result<RedisConnection, redis::RedisError> {
        // The connection reconnects by itself once it has connected the first time; a
        // failed first connection leaves the cell empty, so the next call tries again.
        let connection = self
            .inner
            .redis
            .get_or_try_init(|| self.inner.target.connect(LIMITS))
            .await?;
        Ok(connection.clone())
    }

    fn stale(&self) -> std::sync::MutexGuard<'_, BTreeSet<i32>> {
        self.inner.stale.lock().expect("stale set lock poisoned")
    }

    fn down_until(&self) -> std::sync::MutexGuard<'_, Option<Instant>> {
        self.inner.down_until.lock().expect("outage lock poisoned")
    }

    fn mark_stale(&self, partition: i32) -> bool {
        let mut stale = self.stale();
        let inserted = stale.insert(partition);
        metrics::projections_stale(stale.len());
        inserted
    }

    fn clear_stale(&self, partition: i32) -> bool {
        let mut stale = self.stale();
        let removed = stale.remove(&partition);
        metrics::projections_stale(stale.len());
        removed
    }

    /// Forgets a partition this process no longer owns: its next owner compares its
    /// projections with the store when it takes it.
    pub fn release(&self, partition: i32) {
        self.clear_stale(partition);
    }

    /// The store committed effects of `partition` that never reached Redis (a commit
    /// whose answer was lost, found already applied by its retry): the partition's
    /// projections are rebuilt from the store by the next write.
    pub fn missed_effects(&self, partition: i32) {
        if self.mark_stale(partition) {
            warn!(
                partition,
                "the store had committed a batch whose answer was lost; rebuilding its projections"
            );
        }
    }

    /// Whether the next write of `partition` is a rebuild, which needs a [`Snapshot`].
    pub fn needs_snapshot(&self, partition: i32) -> bool {
        self.stale().contains(&partition) && !self.resting()
    }

    /// True while Redis is down and the retry pause has not passed.
    fn resting(&self) -> bool {
        self.down_until()
            .is_some_and(|until| Instant::now() < until)
    }

    /// Marks stale every partition whose projection checkpoint differs from its store
    /// checkpoint: the previous owner stopped between store and Redis, or Redis lost its
    /// data. Called when a partition is taken and periodically, so a partition without
    /// traffic still recovers.
    pub async fn check(&self, checkpoints: &[(i32, Option<i64>)]) {
        if checkpoints.is_empty() || self.resting() {
            return;
        }
        let keys: Vec<String> = checkpoints
            .iter()
            .map(|(p, _)| keys::projection_checkpoint(&self.inner.topic, *p))
            .collect();
        let projected: Result<Vec<Option<i64>>, _> = match self.connection().await {
            Ok(mut redis) => redis::cmd("MGET").arg(&keys).query_async(&mut redis).await,
            Err(e) => Err(e),
        };
        match projected {
            Ok(projected) => {
                for ((partition, store), projected) in checkpoints.iter().zip(projected) {
                    if projected != *store && self.mark_stale(*partition) {
                        info!(
                            partition,
                            ?projected,
                            ?store,
                            "projections differ from the store; rebuilding"
                        );
                    }
                }
            }
            Err(e) => self.failed(checkpoints[0].0, &e),
        }
    }

    /// Rebuilds a stale partition's projections from `snapshot` of its store, up to the
    /// snapshot's checkpoint; logged and counted like [`Projections::write`].
    pub async fn restore(&self, partition: i32, snapshot: Snapshot) {
        let through = snapshot.checkpoint.unwrap_or(-1);
        self.write(partition, snapshot.checkpoint, through, &[], Some(snapshot))
            .await;
    }

    /// Writes the effects of one partition's batch and its checkpoint or, when the
    /// partition is stale and `snapshot` is given, rebuilds it. A failure is logged and
    /// counted, not returned: the store holds the truth and consumers must keep committing
    /// while Redis is away.
    pub async fn write(
        &self,
        partition: i32,
        previous: Option<i64>,
        through: i64,
        effects: &[Effects],
        snapshot: Option<Snapshot>,
    ) {
        if self.resting() {
            self.mark_stale(partition);
            return;
        }
        let result = match snapshot {
            Some(snapshot) => self.rebuild(partition, &snapshot).await.map(|()| true),
            // A stale partition is only rewritten whole; a partial write would hide that.
            None if self.stale().contains(&partition) => return,
            None => {
                self.write_effects(partition, previous, through, effects)
                    .await
            }
        };
        match result {
            Ok(consistent) => {
                if self.down_until().take().is_some() {
                    info!("redis is back: projections are written again");
                }
                if !consistent {
                    if self.mark_stale(partition) {
                        info!(
                            partition,
                            ?previous,
                            "redis did not hold the projections this write builds on; rebuilding"
                        );
                    }
                } else if self.clear_stale(partition) {
                    info!(partition, "projections rebuilt from the store");
                }
            }
            Err(e) => self.failed(partition, &e),
        }
    }

    fn failed(&self, partition: i32, e: &redis::RedisError) {
        metrics::projection_error();
        self.mark_stale(partition);
        let mut down_until = self.down_until();
        if down_until.is_none() {
            error!(error = %e, partition, "redis unavailable: projections are stale until it returns; the store keeps committing");
        } else {
            debug!(error = %e, partition, "redis still unavailable");
        }
        *down_until = Some(Instant::now() + RETRY_AFTER);
    }

    /// Writes a batch's effects, then moves the projection checkpoint from `previous` to
    /// `through`; false if Redis held another checkpoint than `previous` (it lost data, or
    /// restarted empty, since the last write), which makes the partition stale.
    async fn write_effects(
        &self,
        partition: i32,
        previous: Option<i64>,
        through: i64,
        effects: &[Effects],
    ) -> Result<bool, redis::RedisError> {
        // Only the last value of each night and booking in the batch matters.
        let mut nights: BTreeMap<&NightId, (Night, i64)> = BTreeMap::new();
        let mut bookings: BTreeMap<uuid::Uuid, &Booking> = BTreeMap::new();
        for effect in effects {
            for (id, night) in &effect.nights {
                nights.insert(id, (*night, effect.decision.offset));
            }
            if let Some(booking) = &effect.booking {
                bookings.insert(booking.booking_id, booking);
            }
        }
        let nights: Vec<NightWrite> = nights
            .into_iter()
            .map(|(id, (night, offset))| NightWrite { id, night, offset })
            .collect();
        let bookings: Vec<&Booking> = bookings.into_values().collect();
        let redis = self.connection().await?;
        let source = (self.inner.topic.as_str(), partition);
        writes::write(&redis, source, &nights, &bookings, Freshness::Newer).await?;
        let held = writes::checkpoint(&redis, source, Some(through), Freshness::Newer).await?;
        Ok(held == previous)
    }

    /// Rewrites every projection of a partition from a store snapshot, whatever Redis
    /// holds, then its checkpoint: until that is written, the partition reads as behind.
    pub async fn rebuild(
        &self,
        partition: i32,
        snapshot: &Snapshot,
    ) -> Result<(), redis::RedisError> {
        // Every value reflects the store as of its checkpoint.
        let offset = snapshot.checkpoint.unwrap_or(-1);
        let nights: Vec<NightWrite> = snapshot
            .nights
            .iter()
            .map(|(id, night)| NightWrite {
                id,
                night: *night,
                offset,
            })
            .collect();
        let bookings: Vec<&Booking> = snapshot.bookings.iter().collect();
        let redis = self.connection().await?;
        let source = (self.inner.topic.as_str(), partition);
        writes::write(&redis, source, &nights, &bookings, Freshness::Force).await?;
        writes::checkpoint(&redis, source, snapshot.checkpoint, Freshness::Force).await?;
        Ok(())
    }

    /// Compares a partition's projections with the store; returns one line per mismatch.
    pub async fn reconcile(
        &self,
        partition: i32,
        snapshot: &Snapshot,
    ) -> Result<Vec<String>, redis::RedisError> {
        let redis = &mut self.connection().await?;
        let mut mismatches = Vec::new();
        let key = keys::projection_checkpoint(&self.inner.topic, partition);
        let projected: Option<i64> = redis.get(&key).await?;
        if projected != snapshot.checkpoint {
            mismatches.push(format!(
                "{key}: projected {projected:?}, store {:?}",
                snapshot.checkpoint
            ));
        }
        for (id, night) in &snapshot.nights {
            let key = keys::availability(&id.tenant_id, &id.property_id, &id.room_type);
            let projected: Option<u32> = redis.hget(&key, id.night.to_string()).await?;
            if projected != Some(night.remaining()) {
                mismatches.push(format!(
                    "{key} {}: projected {projected:?}, store {}",
                    id.night,
                    night.remaining()
                ));
            }
        }
        for booking in &snapshot.bookings {
            let key = keys::booking_status(booking.booking_id);
            let status: Option<String> = redis.hget(&key, keys::booking_field::STATUS).await?;
            if status.as_deref() != Some(booking.status.as_str()) {
                mismatches.push(format!(
                    "{key}: projected {status:?}, store {}",
                    booking.status.as_str()
                ));
            }
        }
        Ok(mismatches)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Projections whose Redis never answers: the bookkeeping below needs none.
    fn projections() -> Projections {
        Projections::new("redis://127.0.0.1:1/", "bookings").unwrap()
    }

    fn redis_down() -> redis::RedisError {
        redis::RedisError::from((redis::ErrorKind::Io, "connection refused"))
    }

    #[test]
    fn missed_effects_make_the_next_write_a_rebuild_until_released() {
        let projections = projections();
        assert!(!projections.needs_snapshot(3));
        projections.missed_effects(3);
        assert!(projections.needs_snapshot(3));
        assert!(!projections.needs_snapshot(4));
        projections.release(3);
        assert!(!projections.needs_snapshot(3));
    }

    #[tokio::test]
    async fn while_redis_rests_batches_mark_their_partition_stale_and_wait() {
        let projections = projections();
        projections.failed(3, &redis_down());
        // Resting: no rebuild is attempted, and a batch of another partition only marks it.
        assert!(!projections.needs_snapshot(3));
        projections.write(4, Some(1), 2, &[], None).await;
        assert!(!projections.needs_snapshot(4));
        // Once the pause is over both are rebuilt, not patched.
        *projections.down_until() = Some(Instant::now() - Duration::from_millis(1));
        assert!(projections.needs_snapshot(3));
        assert!(projections.needs_snapshot(4));
    }

    #[tokio::test]
    async fn a_stale_partition_is_never_patched_by_a_batch() {
        let projections = projections();
        projections.missed_effects(5);
        // Without a snapshot the write is skipped (no Redis is contacted: the test's one is
        // unreachable, which would count an error and start a pause).
        projections.write(5, Some(1), 2, &[], None).await;
        assert!(!projections.resting());
        assert!(projections.needs_snapshot(5));
    }
}

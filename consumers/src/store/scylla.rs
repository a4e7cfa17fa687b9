//! The ScyllaDB backend: the state of every partition in one keyspace, fenced by epochs.
//!
//! Ownership: [`Store::open`] takes a partition over with a lightweight transaction on its
//! row in `partitions` (insert epoch 1 `IF NOT EXISTS`, else `SET epoch = e + 1 IF epoch =
//! e`). Unlike the embedded store's file lock, opening never waits for the previous owner:
//! it fences it, and [`StoreError::Locked`] here means "another owner has a newer epoch".
//!
//! Atomicity: effects live in other ScyllaDB partitions than the checkpoint row, so no
//! conditional batch can hold both. A batch is therefore (1) applied in memory over the rows
//! it touches, (2) staged in `staged_effects` under a fresh batch id, (3) committed by the
//! one transaction `SET checkpoint = through, checkpoint_batch = id IF epoch = ours`, and
//! only then (4) materialized into `bookings`, `nights` and `applied_events` with `USING
//! TIMESTAMP` = source offset + 1. Step 3 is the commit point: only a committed batch's id
//! is ever named by the ownership row, so a fenced owner's staged rows are never read, and
//! every open rolls the last committed batch forward from its staged rows before reading. Because cells are ordered by
//! source offset, a late write of an older committed batch loses to every newer one, and a
//! repeated write is identical: no acknowledged booking is lost, none is applied twice.
//!
//! Bridging: the store traits are synchronous (the embedded store is redb and the pipeline
//! calls `write_batch` under `block_in_place`), while the driver is async. The backend keeps
//! its own small runtime and blocks on it (see [`db::Bridge`]), which keeps the trait as it
//! is for every caller.

mod batch;
mod cql;
mod db;

#[cfg(test)]
mod tests;

use std::collections::HashSet;
use std::sync::Arc;

use partitioner::{Envelope, Event};
use uuid::Uuid;

use self::batch::{Overlay, Source, Staged, Writes};
pub use self::cql::{schema, Statements, SCHEMA, SCHEMA_KEYSPACE};
use self::db::{concurrently, Bridge, Db, PartitionRow};
use super::skip::{self, SkipRule};
use super::{BatchResult, PartitionStore, Store, StoreError};
use crate::apply::{apply, AppliedEvent, Booking, Night, NightId, Position};

/// How a previous owner's claim is retried when another process bumps the epoch at the
/// same moment.
const CLAIM_ATTEMPTS: usize = 5;

/// One keyspace holding the state of every partition of the topic.
#[derive(Clone)]
pub struct ScyllaStore {
    inner: Arc<Inner>,
}

struct Inner {
    // Declared before the bridge: the session must close before its runtime goes.
    db: Db,
    bridge: Bridge,
    keyspace: String,
}

impl ScyllaStore {
    /// Connects to a keyspace whose schema is already installed (`infra/scylla/schema.cql`).
    pub fn connect(uri: &str, keyspace: &str) -> Result<Self, StoreError> {
        Self::start(uri, keyspace, None)
    }

    /// Installs the schema into `keyspace` with `replication_factor` replicas per data
    /// centre (idempotent), then connects. Tests and single-node setups use this.
    pub fn install(uri: &str, keyspace: &str, replication_factor: u32) -> Result<Self, StoreError> {
        Self::start(uri, keyspace, Some(replication_factor))
    }

    fn start(uri: &str, keyspace: &str, install: Option<u32>) -> Result<Self, StoreError> {
        let bridge = Bridge::new()?;
        let db = bridge.block_on(Db::connect(uri, keyspace, install))?;
        Ok(ScyllaStore {
            inner: Arc::new(Inner {
                db,
                bridge,
                keyspace: keyspace.to_owned(),
            }),
        })
    }

    pub fn keyspace(&self) -> &str {
        &self.inner.keyspace
    }

    /// The release of the server answering (ScyllaDB, or Apache Cassandra standing in).
    pub fn release_version(&self) -> Result<String, StoreError> {
        self.inner.bridge.block_on(self.inner.db.release_version())
    }

    /// Drops the keyspace: for tests that made their own.
    pub fn drop_keyspace(&self) -> Result<(), StoreError> {
        let statement = format!("DROP KEYSPACE IF EXISTS {}", self.inner.keyspace);
        self.inner.bridge.block_on(async {
            self.inner
                .db
                .session
                .query_unpaged(statement, &[])
                .await
                .map_err(db::io)
                .map(drop)
        })
    }
}

impl Store for ScyllaStore {
    type Partition = ScyllaPartition;

    fn open(&self, partition: i32) -> Result<ScyllaPartition, StoreError> {
        let inner = Arc::clone(&self.inner);
        let (epoch, row) = inner.bridge.block_on(async {
            let epoch = claim(&inner.db, partition).await?;
            let row = roll_forward(&inner.db, partition, epoch).await?;
            Ok::<_, StoreError>((epoch, row))
        })?;
        tracing::info!(partition, epoch, checkpoint = ?row.checkpoint, "took partition over");
        Ok(ScyllaPartition {
            inner,
            partition,
            epoch,
            checkpoint: row.checkpoint,
            stale: false,
        })
    }

    fn peek_checkpoint(&self, partition: i32) -> Result<Option<i64>, StoreError> {
        let row = self
            .inner
            .bridge
            .block_on(self.inner.db.read_partition(partition))?;
        Ok(row.checkpoint)
    }

    fn partitions(&self) -> Result<Vec<i32>, StoreError> {
        self.inner.bridge.block_on(self.inner.db.list_partitions())
    }

    fn accepted_placement(&self) -> Result<Option<String>, StoreError> {
        self.inner.bridge.block_on(self.inner.db.read_placement())
    }

    fn adopt_placement(&self, placement: &str) -> Result<String, StoreError> {
        let db = &self.inner.db;
        self.inner.bridge.block_on(async {
            db.adopt_placement(placement).await?;
            // Ours or the first writer's: a SERIAL read sees whichever won.
            db.read_placement()
                .await?
                .ok_or_else(|| StoreError::Corrupt("placement row without a partition map".into()))
        })
    }

    fn accept_placement(&self, placement: &str) -> Result<(), StoreError> {
        let db = &self.inner.db;
        self.inner.bridge.block_on(async {
            // Both writes are conditional: the row is only ever written with Paxos.
            if !db.replace_placement(placement).await? {
                db.adopt_placement(placement).await?;
            }
            Ok(())
        })
    }
}

/// Bumps the partition's epoch with a lightweight transaction and returns ours.
async fn claim(db: &Db, partition: i32) -> Result<i64, StoreError> {
    let first = db.claim_new(partition).await?;
    if first.applied {
        return Ok(1);
    }
    let mut seen = first.epoch;
    for _ in 0..CLAIM_ATTEMPTS {
        let current = match seen {
            Some(epoch) => epoch,
            None => db.read_partition(partition).await?.epoch.unwrap_or(0),
        };
        let bump = db.bump_epoch(partition, current).await?;
        if bump.applied {
            return Ok(current + 1);
        }
        seen = bump.epoch;
    }
    Err(StoreError::Locked { partition })
}

/// Reads the ownership row at SERIAL consistency, checks the epoch is still ours, and
/// materializes the last committed batch again (a no-op when its writer finished it).
async fn roll_forward(db: &Db, partition: i32, epoch: i64) -> Result<PartitionRow, StoreError> {
    let row = db.read_partition(partition).await?;
    if row.epoch != Some(epoch) {
        return Err(fenced(partition, epoch, row.epoch));
    }
    if let Some(batch_id) = row.checkpoint_batch {
        let staged = db.read_staged(partition, batch_id).await?;
        let writes = Writes::fold(staged.iter().map(|(offset, s)| (*offset, s)));
        db.materialize(partition, &writes).await?;
    }
    Ok(row)
}

fn fenced(partition: i32, ours: i64, current: Option<i64>) -> StoreError {
    tracing::warn!(partition, epoch = ours, current = ?current, "another owner has a newer epoch");
    StoreError::Locked { partition }
}

/// The state of one partition, owned while its epoch is the row's.
pub struct ScyllaPartition {
    inner: Arc<Inner>,
    partition: i32,
    epoch: i64,
    checkpoint: Option<i64>,
    /// A commit's outcome or its materialization is unknown: resolve before the next batch.
    stale: bool,
}

impl ScyllaPartition {
    pub fn epoch(&self) -> i64 {
        self.epoch
    }

    fn db(&self) -> &Db {
        &self.inner.db
    }

    /// Prefetches what the batch reads, concurrently: the applied marks of its events, the
    /// bookings it names and the nights of every stay and allotment range in it (and, after
    /// the bookings arrive, the nights of their current stays).
    async fn prefetch(&self, events: &[&Envelope]) -> Result<Prefetched, StoreError> {
        let db = self.db();
        let applied: Vec<_> = events
            .iter()
            .map(
                |e| async move { Ok::<_, StoreError>((e.event_id, db.applied(e.event_id).await?)) },
            )
            .collect();
        let ids: HashSet<Uuid> = events.iter().filter_map(|e| e.event.booking_id()).collect();
        let bookings: Vec<_> = ids
            .into_iter()
            .map(|id| async move { Ok::<_, StoreError>((id, db.booking(id).await?)) })
            .collect();
        let (applied, bookings) =
            futures::future::try_join(concurrently(applied), concurrently(bookings)).await?;
        let applied = applied
            .into_iter()
            .filter_map(|(id, seen)| seen.then_some(id))
            .collect();
        let mut night_ids: HashSet<NightId> = HashSet::new();
        for envelope in events {
            night_ids.extend(event_nights(envelope));
        }
        for booking in bookings.iter().filter_map(|(_, b)| b.as_ref()) {
            night_ids.extend(booking.stay.nights().map(|night| NightId {
                tenant_id: booking.tenant_id.clone(),
                property_id: booking.property_id.clone(),
                room_type: booking.stay.room_type.clone(),
                night,
            }));
        }
        let nights: Vec<_> = night_ids
            .into_iter()
            .map(|id| async move {
                let night = db.night(&id).await?;
                Ok::<_, StoreError>((id, night))
            })
            .collect();
        let nights = concurrently(nights).await?;
        Ok(Prefetched {
            applied,
            bookings,
            nights,
        })
    }

    /// Stages the batch, commits it under our epoch and materializes it.
    async fn commit(
        &self,
        through: i64,
        staged: &[(i64, Staged)],
    ) -> Result<Committed, StoreError> {
        let db = self.db();
        let batch_id = Uuid::new_v4();
        db.stage(self.partition, batch_id, staged).await?;
        match db
            .commit(self.partition, self.epoch, through, batch_id)
            .await
        {
            Ok(lwt) if !lwt.applied => return Err(fenced(self.partition, self.epoch, lwt.epoch)),
            Ok(_) => {}
            Err(error) => {
                // A timed-out transaction may still have applied: a SERIAL read settles it.
                tracing::warn!(partition = self.partition, error = %error, "checkpoint commit outcome unknown");
                let row = db.read_partition(self.partition).await?;
                if row.epoch != Some(self.epoch) {
                    return Err(fenced(self.partition, self.epoch, row.epoch));
                }
                if row.checkpoint_batch != Some(batch_id) {
                    return Err(error);
                }
            }
        }
        let writes = Writes::fold(staged.iter().map(|(offset, s)| (*offset, s)));
        Ok(match db.materialize(self.partition, &writes).await {
            Ok(()) => Committed::Materialized,
            Err(error) => {
                tracing::warn!(partition = self.partition, error = %error, "materializing a committed batch failed; rolling forward before the next");
                Committed::Pending
            }
        })
    }
}

struct Prefetched {
    applied: HashSet<Uuid>,
    bookings: Vec<(Uuid, Option<Booking>)>,
    nights: Vec<(NightId, Option<Night>)>,
}

enum Committed {
    Materialized,
    /// Committed, but some rows may not be written yet: the staged batch has them.
    Pending,
}

/// The nights an event names directly: its stay, or its allotment range.
fn event_nights(envelope: &Envelope) -> Vec<NightId> {
    let id = |room_type: &str, night| NightId {
        tenant_id: envelope.tenant_id.clone(),
        property_id: envelope.property_id.clone(),
        room_type: room_type.to_owned(),
        night,
    };
    match &envelope.event {
        Event::CreateBooking { stay, .. } | Event::ModifyBooking { stay, .. } => {
            stay.nights().map(|n| id(&stay.room_type, n)).collect()
        }
        Event::SetAllotment {
            room_type,
            from,
            to,
            ..
        } => from
            .iter_days()
            .take_while(|n| n < to)
            .map(|n| id(room_type, n))
            .collect(),
        Event::CancelBooking { .. } => Vec::new(),
    }
}

/// Reads on a miss of the prefetched values, blocking on the store's runtime.
struct Reader<'a> {
    inner: &'a Inner,
}

impl Source for Reader<'_> {
    fn booking(&self, booking_id: Uuid) -> Result<Option<Booking>, StoreError> {
        self.inner
            .bridge
            .block_on(self.inner.db.booking(booking_id))
    }

    fn night(&self, id: &NightId) -> Result<Option<Night>, StoreError> {
        self.inner.bridge.block_on(self.inner.db.night(id))
    }
}

impl PartitionStore for ScyllaPartition {
    fn checkpoint(&self) -> Result<Option<i64>, StoreError> {
        let row = self
            .inner
            .bridge
            .block_on(self.db().read_partition(self.partition))?;
        Ok(row.checkpoint)
    }

    fn write_batch(
        &mut self,
        events: &[(i64, Envelope)],
        through: i64,
    ) -> Result<BatchResult, StoreError> {
        let inner = Arc::clone(&self.inner);
        if self.stale {
            let row = inner
                .bridge
                .block_on(roll_forward(&inner.db, self.partition, self.epoch))?;
            self.checkpoint = row.checkpoint;
            self.stale = false;
        }
        let mut rule = SkipRule::new(self.checkpoint);
        if let Some(replayed) = rule.stored_through(through, events.len()) {
            return Ok(replayed);
        }
        let fresh: Vec<&Envelope> = events
            .iter()
            .filter(|(offset, _)| skip::is_new(self.checkpoint, *offset))
            .map(|(_, envelope)| envelope)
            .collect();
        let prefetched = inner.bridge.block_on(self.prefetch(&fresh))?;
        let reader = Reader { inner: &inner };
        let mut overlay = Overlay::new(&reader);
        overlay.prefetched(prefetched.bookings, prefetched.nights);
        let mut staged = Vec::new();
        let mut applied = Vec::new();
        for (offset, envelope) in events {
            let id = envelope.event_id;
            if rule.replayed(*offset) || rule.duplicate(id, prefetched.applied.contains(&id)) {
                continue;
            }
            let at = Position {
                partition: self.partition,
                offset: *offset,
            };
            let effects = apply(&overlay, envelope, at)?;
            overlay.record(&effects);
            staged.push((*offset, Staged::new(envelope, &effects)));
            rule.applied(id);
            applied.push(effects);
        }
        match inner.bridge.block_on(self.commit(through, &staged)) {
            Ok(committed) => {
                self.checkpoint = Some(through);
                self.stale = matches!(committed, Committed::Pending);
                Ok(rule.finish(applied))
            }
            Err(error) => {
                self.stale = true;
                Err(error)
            }
        }
    }

    fn booking(&self, booking_id: Uuid) -> Result<Option<Booking>, StoreError> {
        self.inner.bridge.block_on(self.db().booking(booking_id))
    }

    fn applied_event(&self, event_id: Uuid) -> Result<Option<AppliedEvent>, StoreError> {
        self.inner
            .bridge
            .block_on(self.db().applied_event(event_id))
    }

    fn bookings(&self) -> Result<Vec<Booking>, StoreError> {
        self.inner
            .bridge
            .block_on(self.db().list_bookings(self.partition))
    }

    fn nights(&self) -> Result<Vec<(NightId, Night)>, StoreError> {
        self.inner
            .bridge
            .block_on(self.db().list_nights(self.partition))
    }
}

//! The embedded backend: one redb file per Kafka partition.
//!
//! redb was chosen over fjall and RocksDB bindings because it is pure Rust (no C++ build on
//! two cores), gives serializable ACID transactions with a single writer (exactly the
//! ownership model of a partition), fsyncs on commit by default, and takes an exclusive
//! OS lock on its file, so two processes can never write one partition's state at once.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::NaiveDate;
use partitioner::{Envelope, Fingerprint};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use uuid::Uuid;

use super::skip::SkipRule;
use super::{BatchResult, PartitionStore, Store, StoreError};
use crate::apply::{apply, AppliedEvent, Booking, Ledger, Night, NightId, Position};

/// Booking id (as u128) -> JSON of [`Booking`].
const BOOKINGS: TableDefinition<u128, &[u8]> = TableDefinition::new("bookings");
/// `tenant/property/room_type/YYYY-MM-DD` -> (allotment, sold). Ids cannot contain `/`,
/// so the key is unambiguous, and it sorts by date within a room type.
const NIGHTS: TableDefinition<&str, (u32, u32)> = TableDefinition::new("nights");
/// Event id -> offset at which it was applied, to drop resent requests.
const APPLIED: TableDefinition<u128, i64> = TableDefinition::new("applied_events");
/// Event id -> fingerprint of the command applied under it, to tell a resend from a
/// reused key. A table of its own, so files written before it existed open unchanged
/// (their events have no fingerprint).
const FINGERPRINTS: TableDefinition<u128, &[u8]> = TableDefinition::new("applied_fingerprints");
/// `checkpoint` -> last applied offset; `epoch` -> ownership generation.
const META: TableDefinition<&str, i64> = TableDefinition::new("meta");
const CHECKPOINT: &str = "checkpoint";
const EPOCH: &str = "epoch";
/// See [`EmbeddedStore::placement_path`].
const PLACEMENT_FILE: &str = "placement";

/// A directory holding one file per partition.
#[derive(Clone, Debug)]
pub struct EmbeddedStore {
    dir: PathBuf,
}

impl EmbeddedStore {
    pub fn new(dir: impl Into<PathBuf>) -> Result<Self, StoreError> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir).map_err(|e| StoreError::Io(e.to_string()))?;
        Ok(EmbeddedStore { dir })
    }

    pub fn path(&self, partition: i32) -> PathBuf {
        self.dir.join(format!("partition-{partition:04}.redb"))
    }

    /// The accepted placement, a one-line text file beside the partitions' files: it is
    /// topic-wide, so no partition's database can hold it.
    fn placement_path(&self) -> PathBuf {
        self.dir.join(PLACEMENT_FILE)
    }
}

impl Store for EmbeddedStore {
    type Partition = EmbeddedPartition;

    fn open(&self, partition: i32) -> Result<EmbeddedPartition, StoreError> {
        EmbeddedPartition::open(&self.path(partition), partition)
    }

    /// Opening takes the file's lock, so a running owner makes this `Locked`; a partition
    /// without a file has no checkpoint, and none is created.
    fn peek_checkpoint(&self, partition: i32) -> Result<Option<i64>, StoreError> {
        if !self.path(partition).exists() {
            return Ok(None);
        }
        self.open(partition)?.checkpoint()
    }

    /// Partitions that have a file in this directory.
    fn partitions(&self) -> Result<Vec<i32>, StoreError> {
        let mut partitions = Vec::new();
        for entry in std::fs::read_dir(&self.dir).map_err(|e| StoreError::Io(e.to_string()))? {
            let name = entry
                .map_err(|e| StoreError::Io(e.to_string()))?
                .file_name();
            let name = name.to_string_lossy();
            if let Some(n) = name
                .strip_prefix("partition-")
                .and_then(|rest| rest.strip_suffix(".redb"))
                .and_then(|n| n.parse().ok())
            {
                partitions.push(n);
            }
        }
        partitions.sort_unstable();
        Ok(partitions)
    }

    fn accepted_placement(&self) -> Result<Option<String>, StoreError> {
        match std::fs::read_to_string(self.placement_path()) {
            Ok(text) => Ok(Some(text.trim().to_owned())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StoreError::Io(e.to_string())),
        }
    }

    fn adopt_placement(&self, placement: &str) -> Result<String, StoreError> {
        let path = self.placement_path();
        write_new(&path, |staged| {
            std::fs::write(staged, format!("{placement}\n"))
                .map_err(|e| StoreError::Io(e.to_string()))
        })?;
        self.accepted_placement()?.ok_or_else(|| {
            StoreError::Io(format!("{} vanished after it was written", path.display()))
        })
    }

    fn accept_placement(&self, placement: &str) -> Result<(), StoreError> {
        let path = self.placement_path();
        let staged = staged_name(&path);
        let result = (|| {
            std::fs::write(&staged, format!("{placement}\n"))
                .and_then(|()| std::fs::File::open(&staged)?.sync_all())
                .and_then(|()| std::fs::rename(&staged, &path))
                .map_err(|e| StoreError::Io(e.to_string()))?;
            sync_dir(&path)
        })();
        let _ = std::fs::remove_file(&staged);
        result
    }
}

pub struct EmbeddedPartition {
    db: Database,
    partition: i32,
    /// The ownership generation this handle took. The file lock already keeps a second
    /// process out; the epoch makes every commit also check that no later owner has
    /// written since, which holds even where a lock could be lost (a network filesystem).
    epoch: i64,
}

impl EmbeddedPartition {
    fn open(path: &Path, partition: i32) -> Result<Self, StoreError> {
        if !path.exists() {
            create_file(path)?;
        }
        let db = Database::create(path).map_err(|e| match e {
            redb::DatabaseError::DatabaseAlreadyOpen => StoreError::Locked { partition },
            other => StoreError::Io(other.to_string()),
        })?;
        // Create every table up front so readers never meet a missing one, and take the
        // next ownership epoch.
        let txn = db.begin_write().map_err(io)?;
        txn.open_table(BOOKINGS).map_err(io)?;
        txn.open_table(NIGHTS).map_err(io)?;
        txn.open_table(APPLIED).map_err(io)?;
        txn.open_table(FINGERPRINTS).map_err(io)?;
        let epoch = {
            let mut meta = txn.open_table(META).map_err(io)?;
            let epoch = meta.get(EPOCH).map_err(io)?.map_or(0, |v| v.value()) + 1;
            meta.insert(EPOCH, epoch).map_err(io)?;
            epoch
        };
        txn.commit().map_err(io)?;
        Ok(EmbeddedPartition {
            db,
            partition,
            epoch,
        })
    }
}

/// Creates an empty database file at `path` all at once or not at all (see [`write_new`]).
fn create_file(path: &Path) -> Result<(), StoreError> {
    write_new(path, |staged| {
        drop(Database::create(staged).map_err(|e| StoreError::Io(e.to_string()))?);
        Ok(())
    })
}

/// Creates the file at `path` with what `write` puts in it, all at once or not at all.
/// Written in place, a creation cut short (a full disk, a crash) would leave a file no
/// later read could use. So it is written under a name of this call's own, synced, and
/// linked to `path` only if `path` still does not exist: a concurrent creator that got
/// there first wins, and its file is never replaced.
fn write_new(
    path: &Path,
    write: impl FnOnce(&Path) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let staged = staged_name(path);
    let result = (|| {
        write(&staged)?;
        std::fs::File::open(&staged)
            .and_then(|f| f.sync_all())
            .map_err(|e| StoreError::Io(e.to_string()))?;
        match std::fs::hard_link(&staged, path) {
            Ok(()) => sync_dir(path),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
            Err(e) => Err(StoreError::Io(e.to_string())),
        }
    })();
    let _ = std::fs::remove_file(&staged);
    result
}

/// A name beside `path` that only this call writes: the process id keeps other processes
/// out, the counter other threads of this one (every partition worker adopts the placement
/// at once on a fresh store, and a shared staged file would be truncated under a link
/// another worker just made).
fn staged_name(path: &Path) -> PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let call = NEXT.fetch_add(1, Ordering::Relaxed);
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".new-{}-{call}", std::process::id()));
    PathBuf::from(name)
}

/// Makes a new directory entry durable.
fn sync_dir(path: &Path) -> Result<(), StoreError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| StoreError::Io(e.to_string()))
}

impl PartitionStore for EmbeddedPartition {
    fn checkpoint(&self) -> Result<Option<i64>, StoreError> {
        let txn = self.db.begin_read().map_err(io)?;
        let meta = txn.open_table(META).map_err(io)?;
        Ok(meta.get(CHECKPOINT).map_err(io)?.map(|v| v.value()))
    }

    fn write_batch(
        &mut self,
        events: &[(i64, Envelope)],
        through: i64,
    ) -> Result<BatchResult, StoreError> {
        let txn = self.db.begin_write().map_err(io)?;
        let mut applied_effects = Vec::new();
        let rule = {
            let mut meta = txn.open_table(META).map_err(io)?;
            if meta.get(EPOCH).map_err(io)?.map(|v| v.value()) != Some(self.epoch) {
                return Err(StoreError::Locked {
                    partition: self.partition,
                });
            }
            let mut rule = SkipRule::new(meta.get(CHECKPOINT).map_err(io)?.map(|v| v.value()));
            if let Some(replayed) = rule.stored_through(through, events.len()) {
                return Ok(replayed);
            }
            let mut tables = Tables {
                bookings: txn.open_table(BOOKINGS).map_err(io)?,
                nights: txn.open_table(NIGHTS).map_err(io)?,
            };
            let mut applied = txn.open_table(APPLIED).map_err(io)?;
            let mut fingerprints = txn.open_table(FINGERPRINTS).map_err(io)?;
            for (offset, envelope) in events {
                let id = envelope.event_id;
                if rule.replayed(*offset)
                    || rule.duplicate(id, applied.get(id.as_u128()).map_err(io)?.is_some())
                {
                    continue;
                }
                let at = Position {
                    partition: self.partition,
                    offset: *offset,
                };
                let effects = apply(&tables, envelope, at)?;
                tables.write(&effects)?;
                applied.insert(id.as_u128(), *offset).map_err(io)?;
                fingerprints
                    .insert(id.as_u128(), envelope.fingerprint().as_bytes().as_slice())
                    .map_err(io)?;
                rule.applied(id);
                applied_effects.push(effects);
            }
            meta.insert(CHECKPOINT, through).map_err(io)?;
            rule
        };
        txn.commit().map_err(io)?;
        Ok(rule.finish(applied_effects))
    }

    fn booking(&self, booking_id: Uuid) -> Result<Option<Booking>, StoreError> {
        let txn = self.db.begin_read().map_err(io)?;
        let table = txn.open_table(BOOKINGS).map_err(io)?;
        let value = table.get(booking_id.as_u128()).map_err(io)?;
        value.map(|v| decode_booking(v.value())).transpose()
    }

    fn applied_event(&self, event_id: Uuid) -> Result<Option<AppliedEvent>, StoreError> {
        let txn = self.db.begin_read().map_err(io)?;
        let applied = txn.open_table(APPLIED).map_err(io)?;
        let Some(offset) = applied.get(event_id.as_u128()).map_err(io)? else {
            return Ok(None);
        };
        let fingerprints = txn.open_table(FINGERPRINTS).map_err(io)?;
        let fingerprint = match fingerprints.get(event_id.as_u128()).map_err(io)? {
            Some(bytes) => Some(Fingerprint::from_slice(bytes.value()).ok_or_else(|| {
                StoreError::Corrupt(format!("fingerprint of event {event_id} is not 32 bytes"))
            })?),
            None => None,
        };
        Ok(Some(AppliedEvent {
            offset: offset.value(),
            fingerprint,
        }))
    }

    fn bookings(&self) -> Result<Vec<Booking>, StoreError> {
        let txn = self.db.begin_read().map_err(io)?;
        let table = txn.open_table(BOOKINGS).map_err(io)?;
        let mut bookings = Vec::new();
        for entry in table.iter().map_err(io)? {
            let (_, value) = entry.map_err(io)?;
            bookings.push(decode_booking(value.value())?);
        }
        Ok(bookings)
    }

    fn nights(&self) -> Result<Vec<(NightId, Night)>, StoreError> {
        let txn = self.db.begin_read().map_err(io)?;
        let table = txn.open_table(NIGHTS).map_err(io)?;
        let mut nights = Vec::new();
        for entry in table.iter().map_err(io)? {
            let (key, value) = entry.map_err(io)?;
            let (allotment, sold) = value.value();
            nights.push((parse_night_key(key.value())?, Night { allotment, sold }));
        }
        Ok(nights)
    }
}

/// The tables of one write transaction, readable by `apply` while the batch runs.
struct Tables<'txn> {
    bookings: redb::Table<'txn, u128, &'static [u8]>,
    nights: redb::Table<'txn, &'static str, (u32, u32)>,
}

impl Tables<'_> {
    fn write(&mut self, effects: &crate::apply::Effects) -> Result<(), StoreError> {
        for (id, night) in &effects.nights {
            self.nights
                .insert(night_key(id).as_str(), (night.allotment, night.sold))
                .map_err(io)?;
        }
        if let Some(booking) = &effects.booking {
            let json = serde_json::to_vec(booking).expect("a booking always serializes");
            self.bookings
                .insert(booking.booking_id.as_u128(), json.as_slice())
                .map_err(io)?;
        }
        Ok(())
    }
}

impl Ledger for Tables<'_> {
    type Error = StoreError;

    fn booking(&self, booking_id: Uuid) -> Result<Option<Booking>, StoreError> {
        let value = self.bookings.get(booking_id.as_u128()).map_err(io)?;
        value.map(|v| decode_booking(v.value())).transpose()
    }

    fn night(&self, id: &NightId) -> Result<Option<Night>, StoreError> {
        let value = self.nights.get(night_key(id).as_str()).map_err(io)?;
        Ok(value.map(|v| {
            let (allotment, sold) = v.value();
            Night { allotment, sold }
        }))
    }
}

fn night_key(id: &NightId) -> String {
    format!(
        "{}/{}/{}/{}",
        id.tenant_id, id.property_id, id.room_type, id.night
    )
}

fn parse_night_key(key: &str) -> Result<NightId, StoreError> {
    let corrupt = || StoreError::Corrupt(format!("night key {key:?}"));
    let mut parts = key.split('/');
    let (Some(tenant), Some(property), Some(room_type), Some(night), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return Err(corrupt());
    };
    Ok(NightId {
        tenant_id: tenant.to_owned(),
        property_id: property.to_owned(),
        room_type: room_type.to_owned(),
        night: night.parse::<NaiveDate>().map_err(|_| corrupt())?,
    })
}

fn decode_booking(bytes: &[u8]) -> Result<Booking, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn io(e: impl std::fmt::Display) -> StoreError {
    StoreError::Io(e.to_string())
}

#[cfg(test)]
mod tests;

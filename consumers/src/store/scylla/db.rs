//! The async half of the ScyllaDB backend: the session, its prepared statements, and one
//! method per round trip. [`Bridge`] runs them from the synchronous store trait.

use std::future::Future;

use ::scylla::client::session::Session;
use ::scylla::client::session_builder::SessionBuilder;
use ::scylla::errors::{DbError, ExecutionError, RequestAttemptError};
use ::scylla::response::query_result::QueryResult;
use ::scylla::statement::prepared::PreparedStatement;
use ::scylla::statement::Consistency;
use ::scylla::value::{CqlValue, Row};
use chrono::NaiveDate;
use futures::{StreamExt, TryStreamExt};
use partitioner::Fingerprint;
use tokio::runtime::{Handle, Runtime, RuntimeFlavor};
use uuid::Uuid;

use super::batch::{Staged, Writes};
use super::cql::{self, Statements};
use crate::apply::{AppliedEvent, Booking, Night, NightId};
use crate::store::StoreError;

/// Reads and writes in flight at once within one batch.
const CONCURRENCY: usize = 64;

/// A tokio runtime owned by the store, so the driver's connection tasks keep running
/// whatever thread calls the synchronous trait, even a current-thread runtime's only one.
pub struct Bridge {
    runtime: Option<Runtime>,
}

impl Bridge {
    pub fn new() -> Result<Self, StoreError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("scylla-store")
            .enable_all()
            .build()
            .map_err(io)?;
        Ok(Bridge {
            runtime: Some(runtime),
        })
    }

    /// Runs `fut` on the store's runtime and waits for it. On a multi-thread runtime's
    /// worker, `block_in_place` hands the worker's other tasks to another thread first (it
    /// is a no-op outside a runtime); a current-thread runtime cannot give its thread away,
    /// so the wait happens on a scoped thread instead.
    pub fn block_on<F>(&self, fut: F) -> F::Output
    where
        F: Future + Send,
        F::Output: Send,
    {
        let handle = self
            .runtime
            .as_ref()
            .expect("runtime lives until drop")
            .handle();
        match Handle::try_current().map(|h| h.runtime_flavor()) {
            Ok(RuntimeFlavor::CurrentThread) => std::thread::scope(|s| {
                s.spawn(|| handle.block_on(fut))
                    .join()
                    .expect("store thread panicked")
            }),
            _ => tokio::task::block_in_place(|| handle.block_on(fut)),
        }
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        // Dropping a runtime blocks, which panics inside async code: let it wind down
        // in the background instead.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// The ownership row of a partition.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PartitionRow {
    pub epoch: Option<i64>,
    pub checkpoint: Option<i64>,
    pub checkpoint_batch: Option<Uuid>,
}

/// What a lightweight transaction answered: whether it applied, and the epoch it saw.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lwt {
    pub applied: bool,
    pub epoch: Option<i64>,
}

macro_rules! prepared {
    ($($name:ident),* $(,)?) => {
        /// Every statement, prepared once per store. The driver routes a prepared
        /// statement to a replica of its partition key: its default load balancing policy
        /// is token-aware (and rack/DC-aware), so no coordinator hop is added.
        pub struct Prepared { $(pub $name: PreparedStatement,)* }

        impl Prepared {
            async fn new(session: &Session, st: &Statements) -> Result<Self, StoreError> {
                Ok(Prepared { $($name: session.prepare(st.$name.as_str()).await.map_err(io)?,)* })
            }
        }
    };
}

prepared!(
    claim_new,
    bump_epoch,
    read_partition,
    commit,
    stage,
    read_staged,
    write_booking,
    write_night,
    write_applied,
    read_booking,
    read_night,
    read_applied,
    list_bookings,
    list_nights,
    list_partitions,
    read_placement,
    adopt_placement,
    replace_placement,
);

pub struct Db {
    pub session: Session,
    pub prepared: Prepared,
}

impl Db {
    /// Connects to `uri` (`host:port`, comma-separated for several contact points),
    /// installs the schema first when `install` names a replication factor, and prepares
    /// every statement.
    pub async fn connect(
        uri: &str,
        keyspace: &str,
        install: Option<u32>,
    ) -> Result<Self, StoreError> {
        let session = SessionBuilder::new()
            .known_nodes(uri.split(',').map(str::trim))
            .build()
            .await
            .map_err(io)?;
        if let Some(replication_factor) = install {
            let tablets = has_tablets(&session).await?;
            for statement in cql::schema(keyspace, replication_factor) {
                let statement = if tablets {
                    statement
                } else {
                    cql::without_tablets(&statement)
                };
                session.query_unpaged(statement, &[]).await.map_err(io)?;
            }
            session.await_schema_agreement().await.map_err(io)?;
        }
        let mut prepared = Prepared::new(&session, &Statements::new(keyspace)).await?;
        // A SERIAL read completes any transaction in flight on the row, so it sees the
        // latest epoch and checkpoint.
        prepared
            .read_partition
            .set_consistency(Consistency::LocalSerial);
        prepared
            .read_placement
            .set_consistency(Consistency::LocalSerial);
        // Timestamped writes and plain reads give the same result when retried.
        for statement in [
            &mut prepared.stage,
            &mut prepared.write_booking,
            &mut prepared.write_night,
            &mut prepared.write_applied,
            &mut prepared.read_staged,
            &mut prepared.read_booking,
            &mut prepared.read_night,
            &mut prepared.read_applied,
        ] {
            statement.set_is_idempotent(true);
        }
        Ok(Db { session, prepared })
    }

    pub async fn claim_new(&self, partition: i32) -> Result<Lwt, StoreError> {
        let result = self.exec(&self.prepared.claim_new, (partition,)).await?;
        lwt(result)
    }

    pub async fn bump_epoch(&self, partition: i32, seen: i64) -> Result<Lwt, StoreError> {
        let values = (seen + 1, partition, seen);
        lwt(self.exec(&self.prepared.bump_epoch, values).await?)
    }

    pub async fn commit(
        &self,
        partition: i32,
        epoch: i64,
        through: i64,
        batch_id: Uuid,
    ) -> Result<Lwt, StoreError> {
        let values = (through, batch_id, partition, epoch);
        lwt(self.exec(&self.prepared.commit, values).await?)
    }

    pub async fn read_partition(&self, partition: i32) -> Result<PartitionRow, StoreError> {
        let result = self
            .exec(&self.prepared.read_partition, (partition,))
            .await?;
        let row = result
            .into_rows_result()
            .map_err(io)?
            .maybe_first_row::<(Option<i64>, Option<i64>, Option<Uuid>)>()
            .map_err(io)?;
        Ok(row.map_or_else(
            PartitionRow::default,
            |(epoch, checkpoint, checkpoint_batch)| PartitionRow {
                epoch,
                checkpoint,
                checkpoint_batch,
            },
        ))
    }

    pub async fn stage(
        &self,
        partition: i32,
        batch_id: Uuid,
        staged: &[(i64, Staged)],
    ) -> Result<(), StoreError> {
        let writes: Vec<_> = staged
            .iter()
            .map(|(offset, staged)| {
                let values = (partition, batch_id, *offset, staged.encode());
                self.exec(&self.prepared.stage, values)
            })
            .collect();
        concurrently(writes).await.map(drop)
    }

    pub async fn read_staged(
        &self,
        partition: i32,
        batch_id: Uuid,
    ) -> Result<Vec<(i64, Staged)>, StoreError> {
        let values = (partition, batch_id);
        let rows: Vec<(i64, Vec<u8>)> = self
            .session
            .execute_iter(self.prepared.read_staged.clone(), values)
            .await
            .map_err(io)?
            .rows_stream::<(i64, Vec<u8>)>()
            .map_err(io)?
            .try_collect()
            .await
            .map_err(io)?;
        rows.into_iter()
            .map(|(offset, bytes)| Ok((offset, Staged::decode(&bytes)?)))
            .collect()
    }

    /// Writes every row of a committed batch, each at the timestamp of its source offset.
    pub async fn materialize(&self, partition: i32, writes: &Writes) -> Result<(), StoreError> {
        let bookings: Vec<_> = writes
            .bookings
            .iter()
            .map(|(id, (offset, booking))| {
                let json = serde_json::to_vec(booking).expect("a booking always serializes");
                let ts = cql::write_timestamp(*offset);
                self.exec(&self.prepared.write_booking, (*id, partition, json, ts))
            })
            .collect();
        let nights: Vec<_> = writes
            .nights
            .iter()
            .map(|(id, (offset, night))| async move {
                let values = (
                    id.tenant_id.as_str(),
                    id.property_id.as_str(),
                    id.room_type.as_str(),
                    id.night,
                    partition,
                    to_int(night.allotment)?,
                    to_int(night.sold)?,
                    cql::write_timestamp(*offset),
                );
                self.exec(&self.prepared.write_night, values).await
            })
            .collect();
        let applied: Vec<_> = writes
            .applied
            .iter()
            .map(|(event_id, (offset, fingerprint))| {
                let fingerprint = fingerprint.map(|f| f.as_bytes().to_vec());
                let values = (
                    *event_id,
                    partition,
                    *offset,
                    fingerprint,
                    cql::write_timestamp(*offset),
                );
                self.exec(&self.prepared.write_applied, values)
            })
            .collect();
        futures::future::try_join3(
            concurrently(bookings),
            concurrently(nights),
            concurrently(applied),
        )
        .await?;
        Ok(())
    }

    pub async fn booking(&self, booking_id: Uuid) -> Result<Option<Booking>, StoreError> {
        let result = self
            .exec(&self.prepared.read_booking, (booking_id,))
            .await?;
        let row = result
            .into_rows_result()
            .map_err(io)?
            .maybe_first_row::<(Vec<u8>,)>()
            .map_err(io)?;
        row.map(|(json,)| decode_booking(&json)).transpose()
    }

    pub async fn night(&self, id: &NightId) -> Result<Option<Night>, StoreError> {
        let values = (
            id.tenant_id.as_str(),
            id.property_id.as_str(),
            id.room_type.as_str(),
            id.night,
        );
        let result = self.exec(&self.prepared.read_night, values).await?;
        let row = result
            .into_rows_result()
            .map_err(io)?
            .maybe_first_row::<(Option<i32>, Option<i32>)>()
            .map_err(io)?;
        row.map(|(allotment, sold)| {
            Ok(Night {
                allotment: from_int(allotment.unwrap_or(0))?,
                sold: from_int(sold.unwrap_or(0))?,
            })
        })
        .transpose()
    }

    pub async fn applied(&self, event_id: Uuid) -> Result<bool, StoreError> {
        Ok(self.applied_event(event_id).await?.is_some())
    }

    pub async fn applied_event(&self, event_id: Uuid) -> Result<Option<AppliedEvent>, StoreError> {
        let result = self.exec(&self.prepared.read_applied, (event_id,)).await?;
        let row = result
            .into_rows_result()
            .map_err(io)?
            .maybe_first_row::<(Option<i64>, Option<Vec<u8>>)>()
            .map_err(io)?;
        let Some((Some(offset), fingerprint)) = row else {
            return Ok(None);
        };
        let fingerprint = fingerprint
            .map(|bytes| {
                Fingerprint::from_slice(&bytes).ok_or_else(|| {
                    StoreError::Corrupt(format!("fingerprint of event {event_id} is not 32 bytes"))
                })
            })
            .transpose()?;
        Ok(Some(AppliedEvent {
            offset,
            fingerprint,
        }))
    }

    pub async fn read_placement(&self) -> Result<Option<String>, StoreError> {
        let result = self
            .exec(&self.prepared.read_placement, (cql::PLACEMENT_SCOPE,))
            .await?;
        let row = result
            .into_rows_result()
            .map_err(io)?
            .maybe_first_row::<(Option<String>,)>()
            .map_err(io)?;
        Ok(row.and_then(|(placement,)| placement))
    }

    /// Writes `placement` if the row does not exist; whether it did.
    pub async fn adopt_placement(&self, placement: &str) -> Result<bool, StoreError> {
        let values = (cql::PLACEMENT_SCOPE, placement);
        let result = self.exec(&self.prepared.adopt_placement, values).await?;
        Ok(lwt(result)?.applied)
    }

    /// Overwrites the row if it exists; whether it did.
    pub async fn replace_placement(&self, placement: &str) -> Result<bool, StoreError> {
        let values = (placement, cql::PLACEMENT_SCOPE);
        let result = self.exec(&self.prepared.replace_placement, values).await?;
        Ok(lwt(result)?.applied)
    }

    /// The server's release, e.g. `5.0.9` for Apache Cassandra, `2025.1.0` for ScyllaDB.
    pub async fn release_version(&self) -> Result<String, StoreError> {
        let result = self
            .session
            .query_unpaged("SELECT release_version FROM system.local", &[])
            .await
            .map_err(io)?;
        let (version,) = result
            .into_rows_result()
            .map_err(io)?
            .first_row::<(String,)>()
            .map_err(io)?;
        Ok(version)
    }

    pub async fn list_partitions(&self) -> Result<Vec<i32>, StoreError> {
        let rows: Vec<(i32,)> = self
            .session
            .execute_iter(self.prepared.list_partitions.clone(), ())
            .await
            .map_err(io)?
            .rows_stream::<(i32,)>()
            .map_err(io)?
            .try_collect()
            .await
            .map_err(io)?;
        let mut partitions: Vec<i32> = rows.into_iter().map(|(p,)| p).collect();
        partitions.sort_unstable();
        Ok(partitions)
    }

    pub async fn list_bookings(&self, partition: i32) -> Result<Vec<Booking>, StoreError> {
        let rows: Vec<(Vec<u8>,)> = self
            .session
            .execute_iter(self.prepared.list_bookings.clone(), (partition,))
            .await
            .map_err(io)?
            .rows_stream::<(Vec<u8>,)>()
            .map_err(io)?
            .try_collect()
            .await
            .map_err(io)?;
        rows.iter().map(|(json,)| decode_booking(json)).collect()
    }

    pub async fn list_nights(&self, partition: i32) -> Result<Vec<(NightId, Night)>, StoreError> {
        type NightRow = (String, String, String, NaiveDate, Option<i32>, Option<i32>);
        let rows: Vec<NightRow> = self
            .session
            .execute_iter(self.prepared.list_nights.clone(), (partition,))
            .await
            .map_err(io)?
            .rows_stream::<NightRow>()
            .map_err(io)?
            .try_collect()
            .await
            .map_err(io)?;
        let mut nights = rows
            .into_iter()
            .map(
                |(tenant_id, property_id, room_type, night, allotment, sold)| {
                    let id = NightId {
                        tenant_id,
                        property_id,
                        room_type,
                        night,
                    };
                    let night = Night {
                        allotment: from_int(allotment.unwrap_or(0))?,
                        sold: from_int(sold.unwrap_or(0))?,
                    };
                    Ok((id, night))
                },
            )
            .collect::<Result<Vec<_>, StoreError>>()?;
        nights.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(nights)
    }

    async fn exec(
        &self,
        statement: &PreparedStatement,
        values: impl ::scylla::serialize::row::SerializeRow,
    ) -> Result<QueryResult, StoreError> {
        self.session
            .execute_unpaged(statement, values)
            .await
            .map_err(io)
    }
}

/// Whether the server has ScyllaDB's tablets, told the way the driver tells it: only then
/// does `system_schema.scylla_keyspaces` have `initial_tablets`, and Apache Cassandra has
/// no such table at all. Both of those answer Invalid.
async fn has_tablets(session: &Session) -> Result<bool, StoreError> {
    let probe = "SELECT initial_tablets FROM system_schema.scylla_keyspaces LIMIT 1";
    match session.query_unpaged(probe, &[]).await {
        Ok(_) => Ok(true),
        Err(ExecutionError::LastAttemptError(RequestAttemptError::DbError(
            DbError::Invalid,
            _,
        ))) => Ok(false),
        Err(error) => Err(io(error)),
    }
}

/// Runs `futures` with at most [`CONCURRENCY`] in flight, failing on the first error.
pub async fn concurrently<T, F>(futures: Vec<F>) -> Result<Vec<T>, StoreError>
where
    F: Future<Output = Result<T, StoreError>>,
{
    futures::stream::iter(futures)
        .buffer_unordered(CONCURRENCY)
        .try_collect()
        .await
}

/// Reads `[applied]` and the `epoch` column (when the server returned it) from the answer
/// of a conditional write. ScyllaDB returns the row's previous values whether or not the
/// write applied, Cassandra only when it did not, so columns are looked up by name.
fn lwt(result: QueryResult) -> Result<Lwt, StoreError> {
    let rows = result.into_rows_result().map_err(io)?;
    let specs = rows.column_specs();
    let applied_at = specs
        .get_by_name("[applied]")
        .map(|(i, _)| i)
        .ok_or_else(|| StoreError::Corrupt("conditional write without [applied]".into()))?;
    let epoch_at = specs.get_by_name("epoch").map(|(i, _)| i);
    let row: Row = rows.single_row::<Row>().map_err(io)?;
    let column = |i: usize| row.columns.get(i).and_then(Option::as_ref);
    let applied = column(applied_at)
        .and_then(CqlValue::as_boolean)
        .ok_or_else(|| StoreError::Corrupt("[applied] is not a boolean".into()))?;
    let epoch = epoch_at.and_then(column).and_then(CqlValue::as_bigint);
    Ok(Lwt { applied, epoch })
}

fn to_int(value: u32) -> Result<i32, StoreError> {
    i32::try_from(value).map_err(|_| StoreError::Corrupt(format!("{value} does not fit a cql int")))
}

fn from_int(value: i32) -> Result<u32, StoreError> {
    u32::try_from(value).map_err(|_| StoreError::Corrupt(format!("negative count {value}")))
}

fn decode_booking(bytes: &[u8]) -> Result<Booking, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt(e.to_string()))
}

pub fn io(e: impl std::fmt::Display) -> StoreError {
    StoreError::Io(e.to_string())
}

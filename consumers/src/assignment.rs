//! The partitions this process owns and the worker applying each of them.
//!
//! Shared by the consume loop, which routes every polled message to its partition's
//! worker, the rebalance callback, which retires the workers of revoked partitions, and the
//! workers themselves, which record the offsets their store commits cover. The offsets
//! recorded here are the only ones ever committed to Kafka, and only while the worker that
//! stored them still owns its partition.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rdkafka::message::OwnedMessage;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::flow::Flow;
use crate::metrics;

/// How long a lost partition stays released while the group still assigns it here. A
/// successor the group chose revokes it from this process within a rebalance, far sooner;
/// past this, whatever fenced it was not the group (a maintenance command run beside the
/// consumers), and this process, still the group's choice, takes the partition back.
pub const RETAKE_AFTER: Duration = Duration::from_secs(30);

/// The consume loop's side of one partition worker.
pub struct WorkerHandle {
    /// Tells one worker from its successors on the same partition.
    pub id: u64,
    pub messages: mpsc::UnboundedSender<OwnedMessage>,
    pub flow: Arc<Flow>,
    /// Cancelled when the partition is revoked: the worker finishes the batch in hand,
    /// records nothing more and releases the partition's state.
    pub revoked: CancellationToken,
    /// Resolves once the worker has ended and released the partition's state.
    pub released: oneshot::Receiver<()>,
}

#[derive(Default)]
pub struct Assignment {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    assigned: BTreeSet<i32>,
    workers: HashMap<i32, WorkerHandle>,
    /// Workers of revoked partitions, possibly still finishing a batch: a successor on the
    /// same partition waits for the release before it opens the partition's state.
    retiring: HashMap<i32, oneshot::Receiver<()>>,
    /// Partitions whose state another process took over (a newer epoch) while the group
    /// still had them here, and when: their messages are dropped until the group assigns
    /// them again or [`RETAKE_AFTER`] passes with the group still giving them here.
    lost: BTreeMap<i32, Instant>,
    /// Per partition, the next offset to consume as of the last store commit.
    stored: BTreeMap<i32, i64>,
    /// What was last committed to Kafka, so unchanged partitions are not committed again.
    committed: BTreeMap<i32, i64>,
    next_id: u64,
}

impl State {
    fn count_lost(&self) {
        metrics::fenced_partitions(self.lost.len());
    }
}

/// Where a polled message goes.
pub enum Route {
    /// To the running worker of its partition.
    Worker(mpsc::UnboundedSender<OwnedMessage>, Arc<Flow>),
    /// To a worker that must be started first; `predecessor` is the release of the
    /// partition's previous worker, if it may still hold the state.
    Start {
        id: u64,
        predecessor: Option<oneshot::Receiver<()>>,
    },
    /// Nowhere: the partition is not ours (revoked in the poll that returned the message).
    Drop,
}

impl Assignment {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().expect("assignment lock poisoned")
    }

    pub fn assign(&self, partitions: &[i32]) {
        let mut state = self.state();
        state.assigned.extend(partitions.iter().copied());
        for partition in partitions {
            state.lost.remove(partition);
        }
        state.count_lost();
        metrics::owned_partitions(state.assigned.len());
    }

    /// Retires the workers of revoked partitions and forgets their offsets; returns the
    /// partitions whose fetching was paused, to be resumed so a later assignment of them
    /// starts fetching.
    pub fn revoke(&self, partitions: &[i32]) -> Vec<i32> {
        let mut state = self.state();
        let mut paused = Vec::new();
        for partition in partitions {
            state.assigned.remove(partition);
            state.lost.remove(partition);
            state.count_lost();
            state.stored.remove(partition);
            state.committed.remove(partition);
            if let Some(worker) = state.workers.remove(partition) {
                worker.revoked.cancel();
                if worker.flow.release() {
                    paused.push(*partition);
                }
                state.retiring.insert(*partition, worker.released);
            }
        }
        metrics::owned_partitions(state.assigned.len());
        paused
    }

    pub fn route(&self, partition: i32) -> Route {
        let mut state = self.state();
        if !state.assigned.contains(&partition) {
            return Route::Drop;
        }
        if let Some(since) = state.lost.get(&partition) {
            if since.elapsed() < RETAKE_AFTER {
                return Route::Drop;
            }
            state.lost.remove(&partition);
            state.count_lost();
        }
        if let Some(worker) = state.workers.get(&partition) {
            return Route::Worker(worker.messages.clone(), worker.flow.clone());
        }
        state.next_id += 1;
        Route::Start {
            id: state.next_id,
            predecessor: state.retiring.remove(&partition),
        }
    }

    pub fn started(&self, partition: i32, worker: WorkerHandle) {
        self.state().workers.insert(partition, worker);
    }

    /// Records a store commit of `partition` through `next - 1`, unless worker `id` no
    /// longer owns the partition: a revoked worker's offsets are never committed.
    pub fn stored(&self, partition: i32, id: u64, next: i64) {
        let mut state = self.state();
        if state.workers.get(&partition).is_some_and(|w| w.id == id) {
            state.stored.insert(partition, next);
        }
    }

    /// Worker `id` found its partition taken over by another process (fenced by a newer
    /// epoch): nothing more of it is committed or applied here until the group assigns it
    /// again, or [`RETAKE_AFTER`] passes. Its messages meanwhile are dropped; a new
    /// worker rewinds to its store checkpoint. Returns whether the worker's flow control
    /// had paused the partition's fetch, to be resumed: the retake needs messages.
    pub fn lost(&self, partition: i32, id: u64) -> bool {
        let mut state = self.state();
        let Some(worker) = state.workers.remove(&partition) else {
            return false;
        };
        if worker.id != id {
            // A successor's: not this worker's to give up.
            state.workers.insert(partition, worker);
            return false;
        }
        state.stored.remove(&partition);
        state.committed.remove(&partition);
        state.lost.insert(partition, Instant::now());
        state.count_lost();
        worker.flow.release()
    }

    /// Offsets stored since the last call, marked as committed.
    pub fn to_commit(&self) -> Vec<(i32, i64)> {
        let mut state = self.state();
        let fresh: Vec<(i32, i64)> = state
            .stored
            .iter()
            .filter(|(p, next)| state.committed.get(p) != Some(next))
            .map(|(p, next)| (*p, *next))
            .collect();
        state.committed.extend(fresh.iter().copied());
        fresh
    }

    /// A commit of `offsets` failed (refused at once, or reported failed later by the
    /// broker): they are committed again by the next call of [`to_commit`](Self::to_commit),
    /// even if no new batch is stored. Offsets already superseded are left alone.
    pub fn commit_failed(&self, offsets: &[(i32, i64)]) {
        let mut state = self.state();
        for (partition, next) in offsets {
            if state.committed.get(partition) == Some(next) {
                state.committed.remove(partition);
            }
        }
    }

    /// Every stored offset of the partitions still owned, for the final commit.
    pub fn all_stored(&self) -> Vec<(i32, i64)> {
        self.state()
            .stored
            .iter()
            .map(|(p, next)| (*p, *next))
            .collect()
    }

    /// Stops every worker (shutdown) and forgets them.
    pub fn clear(&self) {
        let mut state = self.state();
        state.workers.clear();
        state.retiring.clear();
        state.assigned.clear();
        metrics::owned_partitions(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Assigns `partition` with a running worker of id 1.
    fn owning(partition: i32) -> Assignment {
        let assignment = Assignment::default();
        assignment.assign(&[partition]);
        let Route::Start { id, .. } = assignment.route(partition) else {
            panic!("a fresh partition starts a worker");
        };
        let (messages, _) = mpsc::unbounded_channel();
        let (_, released) = oneshot::channel();
        assignment.started(
            partition,
            WorkerHandle {
                id,
                messages,
                flow: Arc::new(Flow::new("bookings", partition, 10)),
                revoked: CancellationToken::new(),
                released,
            },
        );
        assignment
    }

    #[test]
    fn an_offset_is_committed_once_while_nothing_new_is_stored() {
        let assignment = owning(3);
        assignment.stored(3, 1, 10);
        assert_eq!(assignment.to_commit(), [(3, 10)]);
        assert_eq!(assignment.to_commit(), []);
    }

    #[test]
    fn a_failed_commit_is_committed_again_without_a_new_batch() {
        let assignment = owning(3);
        assignment.stored(3, 1, 10);
        let tried = assignment.to_commit();
        assignment.commit_failed(&tried);
        assert_eq!(assignment.to_commit(), [(3, 10)]);
    }

    #[test]
    fn a_failure_reported_after_a_newer_offset_was_stored_changes_nothing() {
        let assignment = owning(3);
        assignment.stored(3, 1, 10);
        let first = assignment.to_commit();
        assignment.stored(3, 1, 20);
        assert_eq!(assignment.to_commit(), [(3, 20)]);
        assignment.commit_failed(&first);
        assert_eq!(assignment.to_commit(), []);
    }

    #[test]
    fn a_lost_partition_is_neither_routed_nor_committed_until_assigned_again() {
        let assignment = owning(3);
        assignment.stored(3, 1, 10);
        assignment.lost(3, 1);
        assert!(matches!(assignment.route(3), Route::Drop));
        assignment.stored(3, 1, 20);
        assert_eq!(assignment.to_commit(), []);
        assignment.assign(&[3]);
        assert!(matches!(assignment.route(3), Route::Start { .. }));
    }

    #[test]
    fn a_lost_partition_still_assigned_here_is_taken_back_after_a_while() {
        let assignment = owning(3);
        assignment.lost(3, 1);
        assert!(matches!(assignment.route(3), Route::Drop));
        assignment
            .state()
            .lost
            .insert(3, Instant::now() - RETAKE_AFTER);
        assert!(matches!(assignment.route(3), Route::Start { .. }));
    }

    #[test]
    fn a_successors_worker_is_not_given_up_by_its_predecessor() {
        let assignment = owning(3);
        assignment.lost(3, 99);
        assert!(matches!(assignment.route(3), Route::Worker(..)));
        assignment.stored(3, 1, 20);
        assert_eq!(assignment.to_commit(), [(3, 20)]);
    }

    #[test]
    fn a_revoked_workers_offsets_are_never_committed() {
        let assignment = owning(3);
        assignment.revoke(&[3]);
        assignment.stored(3, 1, 10);
        assert_eq!(assignment.to_commit(), []);
    }
}

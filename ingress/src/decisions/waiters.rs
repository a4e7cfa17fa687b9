//! Requests waiting for their decision, by event id.
//!
//! A request registers its waiter before it publishes, so even a decision that arrives
//! before the delivery report is not missed. The request takes only the decision naming
//! the record it published ([`Decision::answers`]): an event id is shared by every copy
//! sent under one Idempotency-Key, and a late decision on an earlier copy (the outbox
//! sends until delivered) may be for another command.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use partitioner::Decision;
use tokio::sync::mpsc;
use uuid::Uuid;

/// How many decisions for one event id a waiter holds before it reads them: a request
/// sees its own decision and, rarely, late copies of decisions on other copies of its
/// event (see [`Decision::answers`]); more than this are dropped.
const DECISIONS_PER_WAITER: usize = 8;

/// Requests waiting for their decision, by event id.
#[derive(Default)]
pub struct Waiters {
    entries: Mutex<HashMap<Uuid, Entry>>,
    next_token: AtomicU64,
}

struct Entry {
    token: u64,
    reply: mpsc::Sender<Decision>,
}

/// One registered wait. Dropping it (timeout, or the client hung up and hyper dropped the
/// request) removes its entry, so abandoned waits cannot pile up.
pub struct Waiter {
    waiters: Arc<Waiters>,
    event_id: Uuid,
    token: u64,
    decisions: mpsc::Receiver<Decision>,
}

impl Waiters {
    /// Registers interest in `event_id`'s decisions. A second registration for the same id
    /// replaces the first, whose wait then ends without a decision.
    pub fn register(self: &Arc<Self>, event_id: Uuid) -> Waiter {
        let token = self.next_token.fetch_add(1, Ordering::Relaxed) + 1;
        let (reply, decisions) = mpsc::channel(DECISIONS_PER_WAITER);
        self.entries
            .lock()
            .expect("waiters lock")
            .insert(event_id, Entry { token, reply });
        Waiter {
            waiters: self.clone(),
            event_id,
            token,
            decisions,
        }
    }

    /// Hands `decision` to the request waiting on its event id; false if none is. The
    /// request decides whether the decision answers its own copy of the event.
    pub fn deliver(&self, decision: Decision) -> bool {
        let entries = self.entries.lock().expect("waiters lock");
        match entries.get(&decision.event_id) {
            Some(entry) => entry.reply.try_send(decision).is_ok(),
            None => false,
        }
    }

    /// How many requests are waiting.
    pub fn len(&self) -> usize {
        self.entries.lock().expect("waiters lock").len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Waiter {
    /// The decision answering the record published at `offset` of `partition`, or `None`
    /// once `limit` passes. Decisions on other copies of the event are skipped: they may
    /// belong to another command sent under the same key.
    pub async fn decision(
        mut self,
        limit: Duration,
        partition: i32,
        offset: i64,
    ) -> Option<Decision> {
        let own = async {
            while let Some(decision) = self.decisions.recv().await {
                if decision.answers(partition, offset) {
                    return Some(decision);
                }
                tracing::debug!(
                    event_id = %decision.event_id,
                    decided_offset = decision.offset,
                    "a decision on another copy of a waited-for event skipped"
                );
            }
            // Replaced by a later registration for the same id.
            None
        };
        tokio::time::timeout(limit, own).await.ok().flatten()
    }
}

impl Drop for Waiter {
    fn drop(&mut self) {
        let mut entries = self.waiters.entries.lock().expect("waiters lock");
        // Only our own entry: a later registration for the same id must survive us.
        if entries.get(&self.event_id).map(|e| e.token) == Some(self.token) {
            entries.remove(&self.event_id);
        }
    }
}

#[cfg(test)]
mod tests {
    use partitioner::Outcome;

    use super::*;

    fn decision(event_id: Uuid) -> Decision {
        Decision {
            event_id,
            booking_id: Some(event_id),
            tenant_id: "acme".into(),
            property_id: "p".into(),
            event_type: "create_booking".into(),
            outcome: Outcome::Confirmed,
            reason: None,
            partition: 0,
            offset: 7,
            record_offset: Some(7),
            partner_id: None,
            owner_id: None,
        }
    }

    #[tokio::test]
    async fn a_decision_reaches_its_waiter_and_only_it() {
        let waiters = Arc::new(Waiters::default());
        let id = Uuid::new_v4();
        let waiter = waiters.register(id);
        assert!(!waiters.deliver(decision(Uuid::new_v4())));
        assert!(waiters.deliver(decision(id)));
        let got = waiter.decision(Duration::from_secs(5), 0, 7).await.unwrap();
        assert_eq!(got.event_id, id);
        assert!(waiters.is_empty());
    }

    #[tokio::test]
    async fn a_waiter_takes_only_the_decision_on_its_own_record() {
        let waiters = Arc::new(Waiters::default());
        let id = Uuid::new_v4();
        let waiter = waiters.register(id);
        let earlier_copy = decision(id);
        let own = Decision {
            outcome: Outcome::Rejected,
            reason: Some(partitioner::RejectReason::IdempotencyKeyReused),
            offset: 9,
            record_offset: Some(9),
            ..decision(id)
        };
        assert!(waiters.deliver(earlier_copy));
        assert!(waiters.deliver(own.clone()));
        let got = waiter.decision(Duration::from_secs(5), 0, 9).await;
        assert_eq!(got, Some(own));
    }

    #[tokio::test]
    async fn a_decision_from_a_consumer_that_names_no_record_answers_any_copy() {
        let waiters = Arc::new(Waiters::default());
        let id = Uuid::new_v4();
        let waiter = waiters.register(id);
        let unnamed = Decision {
            record_offset: None,
            ..decision(id)
        };
        assert!(waiters.deliver(unnamed));
        assert!(waiter
            .decision(Duration::from_secs(5), 0, 12)
            .await
            .is_some());
    }

    #[tokio::test]
    async fn an_abandoned_wait_leaves_nothing_behind() {
        let waiters = Arc::new(Waiters::default());
        let timed_out = waiters.register(Uuid::new_v4());
        assert_eq!(waiters.len(), 1);
        assert!(timed_out.decision(Duration::ZERO, 0, 7).await.is_none());
        assert!(waiters.is_empty());

        let hung_up = waiters.register(Uuid::new_v4());
        drop(hung_up);
        assert!(waiters.is_empty());
    }

    #[tokio::test]
    async fn a_replaced_wait_does_not_remove_its_successor() {
        let waiters = Arc::new(Waiters::default());
        let id = Uuid::new_v4();
        let first = waiters.register(id);
        let second = waiters.register(id);
        assert!(first.decision(Duration::from_secs(5), 0, 7).await.is_none());
        assert_eq!(waiters.len(), 1);
        assert!(waiters.deliver(decision(id)));
        assert!(second
            .decision(Duration::from_secs(5), 0, 7)
            .await
            .is_some());
    }
}

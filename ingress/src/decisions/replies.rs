//! The reply partitions this process reads: the ones a waiting request may name.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::RwLock;

use tokio::sync::Notify;

/// Partitions of the replies topic that this process is reading from a position taken
/// before it named them, so a decision published to one of them is certain to reach it.
#[derive(Default)]
pub struct ReplyPartitions {
    named: RwLock<Vec<i32>>,
    next: AtomicUsize,
    /// Woken whenever a partition is named.
    named_one: Notify,
}

impl ReplyPartitions {
    /// A partition for the next waiting request, taking turns among those this process
    /// reads; `None` while it reads none (not yet assigned one, or more ingresses than the
    /// replies topic has partitions).
    pub fn pick(&self) -> Option<i32> {
        let named = self.named.read().expect("reply partitions lock");
        if named.is_empty() {
            return None;
        }
        let turn = self.next.fetch_add(1, Ordering::Relaxed);
        Some(named[turn % named.len()])
    }

    /// Returns once at least one partition may be named.
    pub async fn any_named(&self) {
        loop {
            // Created before the check, so a partition named in between still wakes it.
            let named_one = self.named_one.notified();
            if !self.named.read().expect("reply partitions lock").is_empty() {
                return;
            }
            named_one.await;
        }
    }

    /// The partitions requests may name now, in order.
    pub fn named(&self) -> Vec<i32> {
        self.named.read().expect("reply partitions lock").clone()
    }

    /// `partition` may be named from now on.
    pub(super) fn name(&self, partition: i32) {
        let mut named = self.named.write().expect("reply partitions lock");
        if let Err(at) = named.binary_search(&partition) {
            named.insert(at, partition);
        }
        crate::metrics::reply_partitions(named.len());
        self.named_one.notify_waiters();
    }

    /// `partition` is no longer named by new requests (those that named it are still
    /// answered: the reader follows it a while longer).
    pub(super) fn withdraw(&self, partition: i32) {
        let mut named = self.named.write().expect("reply partitions lock");
        if let Ok(at) = named.binary_search(&partition) {
            named.remove(at);
        }
        crate::metrics::reply_partitions(named.len());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_take_turns_among_the_named_partitions() {
        let partitions = ReplyPartitions::default();
        assert_eq!(partitions.pick(), None);
        partitions.name(7);
        partitions.name(2);
        partitions.name(7);
        assert_eq!(partitions.named(), vec![2, 7]);
        let picks: Vec<_> = (0..4).filter_map(|_| partitions.pick()).collect();
        assert_eq!(picks, vec![2, 7, 2, 7]);
        partitions.withdraw(2);
        assert_eq!(partitions.pick(), Some(7));
        partitions.withdraw(7);
        assert_eq!(partitions.pick(), None);
    }

    #[tokio::test]
    async fn startup_learns_of_the_first_partition_as_it_is_named() {
        let partitions = std::sync::Arc::new(ReplyPartitions::default());
        let waiting = tokio::spawn({
            let partitions = partitions.clone();
            async move { partitions.any_named().await }
        });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());
        partitions.name(4);
        tokio::time::timeout(std::time::Duration::from_secs(5), waiting)
            .await
            .expect("woken when a partition is named")
            .unwrap();
        // Already named: returns at once.
        partitions.any_named().await;
    }
}

//! The signatures seen recently, so each one is accepted once.
//!
//! A signature stays acceptable while its timestamp is within [`super::WINDOW`] of our
//! clock: from `t - WINDOW` to `t + WINDOW`. Remembering each for twice the window from
//! first use therefore covers its whole acceptable life, whenever within it it arrives.
//! The cache is bounded; it evicts least recently used entries (never refusing a new
//! one, as a frequency-based admission policy might), so only a flood beyond its size
//! within ten minutes could push out an entry early. The record is per process: a
//! replay sent to another replica is not caught here, but a replayed mutation is still
//! deduplicated by its Idempotency-Key.

use moka::future::Cache;
use moka::policy::EvictionPolicy;

pub struct SeenSignatures {
    seen: Cache<[u8; 32], ()>,
}

impl SeenSignatures {
    pub fn new(max_entries: u64) -> SeenSignatures {
        let seen = Cache::builder()
            .max_capacity(max_entries)
            .time_to_live(2 * super::WINDOW)
            .eviction_policy(EvictionPolicy::lru())
            .build();
        SeenSignatures { seen }
    }

    /// Records `mac`; true if it was not already recorded. Atomic: of two concurrent
    /// requests with one signature, exactly one gets true.
    pub async fn first_use(&self, mac: [u8; 32]) -> bool {
        self.seen.entry(mac).or_insert(()).await.is_fresh()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_signature_is_fresh_once() {
        let seen = SeenSignatures::new(100);
        assert!(seen.first_use([1; 32]).await);
        assert!(!seen.first_use([1; 32]).await);
        assert!(seen.first_use([2; 32]).await);
    }
}

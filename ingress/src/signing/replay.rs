//! The signatures seen recently, so each one is accepted once in the whole region.
//!
//! A signature stays acceptable while its timestamp is within [`super::WINDOW`] of our
//! clock: from `t - WINDOW` to `t + WINDOW`. Remembering each for twice the window from
//! first use therefore covers its whole acceptable life, whenever within it it arrives.
//!
//! Two tiers, like the idempotency records: a bounded cache in this process (least
//! recently used entries evicted, never a new one refused) answers a replay to this
//! replica without a network hop, and a `SET NX` in Redis, shared by every replica, makes
//! a replay to another replica a replay too (a captured request sent elsewhere, even under
//! a fresh Idempotency-Key, would otherwise be booked again). While Redis is away the
//! local tier alone decides, counted in `ingress_dedup_fallback_total`.

use std::sync::Arc;
use std::time::Duration;

use moka::future::Cache;
use moka::policy::EvictionPolicy;

use crate::metrics;
use crate::redis_link::RedisLink;

/// How long a signature is remembered: its whole acceptable life.
const REMEMBERED: Duration = Duration::from_secs(2 * super::WINDOW.as_secs());

pub struct SeenSignatures {
    seen: Cache<[u8; 32], ()>,
    shared: Option<(Arc<RedisLink>, String)>,
}

impl SeenSignatures {
    /// Keys in Redis are `{prefix}-signatures:{hex MAC}`, beside the idempotency records
    /// of the same prefix and never among them.
    pub fn new(max_entries: u64, redis: Option<Arc<RedisLink>>, prefix: &str) -> SeenSignatures {
        let seen = Cache::builder()
            .max_capacity(max_entries)
            .time_to_live(REMEMBERED)
            .eviction_policy(EvictionPolicy::lru())
            .build();
        SeenSignatures {
            seen,
            shared: redis.map(|link| (link, format!("{prefix}-signatures"))),
        }
    }

    /// Records `mac`; true if no replica had recorded it. Atomic in each tier: of two
    /// concurrent requests with one signature, exactly one gets true.
    pub async fn first_use(&self, mac: [u8; 32]) -> bool {
        if !self.seen.entry(mac).or_insert(()).await.is_fresh() {
            return false;
        }
        let Some((link, prefix)) = &self.shared else {
            return true;
        };
        let key = format!("{prefix}:{}", hex::encode(mac));
        let mut cmd = redis::cmd("SET");
        cmd.arg(&key)
            .arg(1)
            .arg("NX")
            .arg("PX")
            .arg(REMEMBERED.as_millis() as u64);
        match link.query::<Option<String>>(&key, &cmd).await {
            Ok(set) => set.is_some(),
            Err(error) => {
                metrics::dedup_fallback();
                tracing::debug!(%error, "signature replay check decided by the local tier alone");
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_signature_is_fresh_once() {
        let seen = SeenSignatures::new(100, None, "idem");
        assert!(seen.first_use([1; 32]).await);
        assert!(!seen.first_use([1; 32]).await);
        assert!(seen.first_use([2; 32]).await);
    }
}

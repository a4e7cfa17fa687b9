//! The in-process tier: a bounded moka cache of entries, claimed atomically per key.
//!
//! A claim looks the key up and, finding nothing live, puts its own marker. The two steps
//! run under a lock taken per stripe of keys, so two requests racing for one key in this
//! process cannot both win. moka's own atomic step (`and_compute_with`) gives the same,
//! but it registers and removes a waiter in a second concurrent map around every claim,
//! and each of those hashes the key again: 29% of the instructions of a fresh key's claim
//! and completion (PERFORMANCE, "The idempotency tiers, cut again"). The lock is held for
//! one look-up and one insert, never across an await.

use std::hash::{BuildHasher, RandomState};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use moka::sync::Cache;

use super::{Record, StoredFingerprint, StoredResponse};

/// Stripes of the claim lock: enough that two claims rarely meet on one, at 2 KB.
const STRIPES: usize = 256;

/// A local entry, stamped so that an in-flight marker left by a vanished request expires
/// after the lock time rather than the (much longer) record TTL.
///
/// The claiming request completes its entry in place, through the cell its ticket shares
/// with it, rather than by a second write to the cache: a cache write costs a request more
/// than all of its validation.
#[derive(Clone, Debug)]
struct Entry {
    fingerprint: StoredFingerprint,
    /// The in-flight marker's token; unused once the answer is set.
    token: String,
    /// The stored answer, once the request that claimed the key completed it.
    answer: Arc<OnceLock<StoredResponse>>,
    at: Instant,
}

impl Entry {
    /// An entry for `record`, completed already when the record is.
    fn of(record: Record) -> Entry {
        let (fingerprint, token, answer) = match record {
            Record::InFlight { fingerprint, token } => (fingerprint, token, OnceLock::new()),
            Record::Completed {
                fingerprint,
                response,
            } => (fingerprint, String::new(), OnceLock::from(response)),
        };
        Entry {
            fingerprint,
            token,
            answer: Arc::new(answer),
            at: Instant::now(),
        }
    }

    /// Whether the entry still says something: a completed answer until the cache's TTL
    /// drops it, an in-flight marker for the lock time.
    fn live(&self, lock: Duration) -> bool {
        self.answer.get().is_some() || self.at.elapsed() < lock
    }

    fn record(self) -> Record {
        match self.answer.get() {
            Some(response) => Record::Completed {
                fingerprint: self.fingerprint,
                response: response.clone(),
            },
            None => Record::InFlight {
                fingerprint: self.fingerprint,
                token: self.token,
            },
        }
    }
}

/// The local tier; cheap to clone (the cache and the locks are shared inside).
#[derive(Clone)]
pub(super) struct LocalTier {
    cache: Cache<String, Entry>,
    stripes: Arc<[Mutex<()>]>,
    stripe_of: RandomState,
    lock: Duration,
}

impl LocalTier {
    /// At most `capacity` entries, each kept for `ttl`; an in-flight marker counts for
    /// `lock` only.
    pub(super) fn new(capacity: u64, ttl: Duration, lock: Duration) -> LocalTier {
        LocalTier {
            cache: Cache::builder()
                .max_capacity(capacity)
                .time_to_live(ttl)
                .build(),
            stripes: (0..STRIPES).map(|_| Mutex::new(())).collect(),
            stripe_of: RandomState::new(),
            lock,
        }
    }

    /// Puts `marker` under `key` unless a live entry is there. Ok carries the cell that
    /// completes the new entry in place; Err, what the live entry says.
    pub(super) fn claim(
        &self,
        key: &str,
        marker: Record,
    ) -> Result<Arc<OnceLock<StoredResponse>>, Record> {
        let stripe = self.stripe_of.hash_one(key) as usize % STRIPES;
        // A poisoned stripe only means a claim panicked between look-up and insert; the
        // cache itself is consistent, so the lock is still good to serialise on.
        let _serial = self.stripes[stripe]
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(live) = self.cache.get(key).filter(|entry| entry.live(self.lock)) {
            return Err(live.record());
        }
        let entry = Entry::of(marker);
        let answer = entry.answer.clone();
        self.cache.insert(key.to_owned(), entry);
        Ok(answer)
    }

    /// Learns `record` as the key's entry.
    pub(super) fn remember(&self, key: &str, record: Record) {
        self.cache.insert(key.to_owned(), Entry::of(record));
    }

    pub(super) fn forget(&self, key: &str) {
        self.cache.invalidate(key);
    }
}

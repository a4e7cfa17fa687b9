//! `Idempotency-Key` handling in two tiers, after the IETF httpapi idempotency-key draft.
//!
//! A mutation first claims its key: a moka cache in this process (bounded by entries and
//! TTL) answers the common retry without a network hop, and Redis (`SET NX PX` of an
//! in-flight marker, later overwritten by the stored response) makes the claim hold across
//! every ingress replica. A key is scoped to its partner (`idem:{partner}:{key}` with the
//! default prefix) and its
//! record carries a fingerprint of the validated command ([`fingerprint`]), so:
//!
//! - same key, same request, completed: the stored response is replayed;
//! - same key, another request: 422, whatever the state;
//! - same key, same request, still in flight: 409 with Retry-After.
//!
//! Only 2xx answers are stored. A failed publish releases the claim so a retry can
//! succeed, and validation failures never claim at all. When Redis is down the local tier
//! alone decides; a duplicate that slips through between replicas is still harmless,
//! because its event carries the same deterministic id and consumers drop it.

mod fingerprint;
mod local;
mod redis;
mod write_behind;

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;

use crate::metrics;
use crate::problem::ApiError;
use crate::redis_link::RedisLink;
use local::LocalTier;
use write_behind::WriteBehind;

pub use fingerprint::{legacy_fingerprint, RequestFingerprint, StoredFingerprint};

/// A stored 2xx answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredResponse {
    pub status: u16,
    pub body: Bytes,
}

/// What the tiers know about a key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Record {
    /// A request holds the key; `token` tells its own marker from a later claimant's.
    InFlight {
        fingerprint: StoredFingerprint,
        token: String,
    },
    Completed {
        fingerprint: StoredFingerprint,
        response: StoredResponse,
    },
}

impl Record {
    fn fingerprint(&self) -> &StoredFingerprint {
        match self {
            Record::InFlight { fingerprint, .. } | Record::Completed { fingerprint, .. } => {
                fingerprint
            }
        }
    }
}

/// The answer to a claim.
pub enum Claim {
    /// The key is ours: go on, then [`Dedup::complete`] or [`Dedup::release`].
    Fresh(Ticket),
    /// The same request was answered before: send this again.
    Replay(StoredResponse),
}

/// Proof of a claim, needed to complete or release it. A ticket dropped unused (hyper
/// drops a request's future when its client hangs up mid-publish) releases its claim in
/// the background, so the partner's retry is not told "in flight" for the lock time.
pub struct Ticket {
    key: String,
    fingerprint: StoredFingerprint,
    token: String,
    /// The local entry's answer cell, set on completion.
    answer: Arc<OnceLock<StoredResponse>>,
    /// The tiers to release from on drop; taken once the ticket is completed or released.
    armed: Option<Tiers>,
}

/// Handles on both tiers, cheap to clone (the local tier and the link are shared inside).
struct Tiers {
    local: LocalTier,
    redis: Option<Arc<RedisLink>>,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let Some(Tiers { local, redis }) = self.armed.take() else {
            return;
        };
        // No runtime means the process is going away; the marker then simply expires.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let (key, marker) = (self.key.clone(), self.marker());
            runtime.spawn(async move { release(&local, redis.as_deref(), &key, &marker).await });
        }
    }
}

impl Ticket {
    fn marker(&self) -> Record {
        Record::InFlight {
            fingerprint: self.fingerprint.clone(),
            token: self.token.clone(),
        }
    }
}

pub struct Dedup {
    prefix: String,
    local: LocalTier,
    redis: Option<Arc<RedisLink>>,
    /// Writes completed records to Redis behind the answers.
    behind: Option<WriteBehind>,
    lock: Duration,
}

impl Dedup {
    /// Keys are `{prefix}:{partner}:{key}`; `capacity` and `ttl` bound the local tier;
    /// `ttl` is also the Redis record's life; `lock` is how long an in-flight marker
    /// survives a request that never finished. With Redis, starts the task that writes
    /// completed records, so it must be called on the runtime.
    pub fn new(
        prefix: &str,
        redis: Option<Arc<RedisLink>>,
        capacity: u64,
        ttl: Duration,
        lock: Duration,
    ) -> Dedup {
        Dedup {
            prefix: prefix.to_owned(),
            local: LocalTier::new(capacity, ttl, lock),
            behind: redis
                .as_ref()
                .map(|link| WriteBehind::start(link.clone(), ttl)),
            redis,
            lock,
        }
    }

    /// Claims `key` of `partner` for a request with `fingerprint`.
    pub async fn claim(
        &self,
        partner: &str,
        key: &str,
        fingerprint: RequestFingerprint,
    ) -> Result<Claim, ApiError> {
        let key = format!("{}:{partner}:{key}", self.prefix);
        let token = uuid::Uuid::new_v4().simple().to_string();
        let mine = Record::InFlight {
            fingerprint: fingerprint.stored(),
            token: token.clone(),
        };
        // The local claim is atomic per key, so two requests racing in this process cannot
        // both win, with or without Redis.
        let answer = match self.local.claim(&key, mine.clone()) {
            Ok(answer) => answer,
            Err(record) => {
                metrics::dedup_hit("local");
                return verdict(record, &fingerprint).map(Claim::Replay);
            }
        };
        let mut ticket = Ticket {
            key,
            fingerprint: fingerprint.stored(),
            token,
            answer,
            armed: Some(Tiers {
                local: self.local.clone(),
                redis: self.redis.clone(),
            }),
        };
        let Some(link) = &self.redis else {
            return Ok(Claim::Fresh(ticket));
        };
        match redis::claim(link, &ticket.key, &mine, self.lock).await {
            Ok(None) => Ok(Claim::Fresh(ticket)),
            Ok(Some(record)) => {
                // Someone else's claim: there is nothing of ours to release.
                ticket.armed = None;
                metrics::dedup_hit("redis");
                let verdict = verdict(record.clone(), &fingerprint);
                // The local marker was ours only while Redis had nothing: learn what it has.
                match record {
                    Record::Completed { .. } if verdict.is_ok() => {
                        self.local.remember(&ticket.key, record);
                    }
                    _ => self.local.forget(&ticket.key),
                }
                verdict.map(Claim::Replay)
            }
            Err(error) => {
                metrics::dedup_fallback();
                tracing::debug!(%error, "idempotency claim decided by the local tier alone");
                Ok(Claim::Fresh(ticket))
            }
        }
    }

    /// Stores a 2xx answer under the ticket's key; other answers release it. This
    /// process replays it from now on; Redis gets it behind the answer ([`write_behind`]),
    /// its marker holding the key meanwhile.
    pub async fn complete(&self, mut ticket: Ticket, response: StoredResponse) {
        if !(200..300).contains(&response.status) {
            return self.release(ticket).await;
        }
        ticket.armed = None;
        // The entry this ticket claimed answers replays from now on. Should it have been
        // replaced meanwhile (its marker outlived the lock time and another request
        // claimed the key), that request's own marker stays, as it should.
        let _ = ticket.answer.set(response.clone());
        let record = Record::Completed {
            fingerprint: ticket.fingerprint.clone(),
            response,
        };
        if let Some(behind) = &self.behind {
            behind.store(std::mem::take(&mut ticket.key), record).await;
        }
    }

    /// Waits until every completed record so far reached Redis or failed to: for a
    /// shutdown, so that replicas replay what this process answered.
    pub async fn flush(&self) {
        if let Some(behind) = &self.behind {
            behind.flush().await;
        }
    }

    /// Gives the key up so a retry can run: the request failed in a way worth retrying.
    pub async fn release(&self, mut ticket: Ticket) {
        ticket.armed = None;
        release(
            &self.local,
            self.redis.as_deref(),
            &ticket.key,
            &ticket.marker(),
        )
        .await;
    }
}

async fn release(local: &LocalTier, redis: Option<&RedisLink>, key: &str, marker: &Record) {
    local.forget(key);
    if let Some(link) = redis {
        if let Err(error) = redis::release(link, key, marker).await {
            // The marker then expires after the lock time on its own.
            metrics::dedup_fallback();
            tracing::debug!(%error, "idempotency marker left to expire");
        }
    }
}

/// What an existing record means for a request with `fingerprint`.
fn verdict(record: Record, fingerprint: &RequestFingerprint) -> Result<StoredResponse, ApiError> {
    if !fingerprint.matches(record.fingerprint()) {
        return Err(ApiError::IdempotencyKeyReused);
    }
    match record {
        Record::Completed { response, .. } => Ok(response),
        Record::InFlight { .. } => Err(ApiError::IdempotencyKeyInFlight),
    }
}

#[cfg(test)]
mod tests;

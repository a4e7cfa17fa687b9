//! A partner's lane: the one place its outbox is sent from (the process holding its
//! lease). It reads the outbox in order and keeps up to the endpoint's `concurrency`
//! deliveries in flight, never two of one booking at once and never one before an
//! earlier one of its booking, so each booking's decisions arrive in the order they were
//! made while other bookings' go past a slow one. Each delivery is retried on its own
//! (backoff with jitter, `Retry-After`, the partner's breaker and rate) until it is
//! delivered, gone, refused or expired, and its entry deleted only then: a delivery cut short by
//! a crash is sent again by the next holder, under the same delivery id.

use std::collections::{HashMap, HashSet, VecDeque};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use backon::{BackoffBuilder, ExponentialBuilder};
use bytes::Bytes;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use partitioner::redis_target::RedisConnection;
use partitioner::webhook::Endpoint;
use partitioner::Decision;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};
use uuid::Uuid;

use super::breaker::Breaker;
use super::dead_letter::{DeadLetters, Reason, Undeliverable};
use super::outbox::{self, Entry};
use super::send::{Attempt, Sender};
use crate::metrics;

/// Entries read ahead of those in flight.
const READ_AHEAD: usize = 256;
/// How often an idle lane looks for new entries.
const POLL: Duration = Duration::from_millis(100);
/// How often the lane reports its backlog.
const REPORT_EVERY: Duration = Duration::from_secs(5);
/// Backoff of the lane's own Redis and Kafka operations, which must eventually succeed.
const SETTLE_RETRY_FIRST: Duration = Duration::from_millis(100);
const SETTLE_RETRY_MAX: Duration = Duration::from_secs(5);

/// Attempts of a delivery the endpoint refuses with a 4xx (other than 408 and 429) before
/// it is dead-lettered as `refused`: a payload the partner cannot take would otherwise
/// hold its booking, and a concurrency slot, for the whole retry period.
const REFUSED_ATTEMPTS: u32 = 5;

/// A 4xx status other than 408 Request Timeout and 429 Too Many Requests (410 is apart).
fn is_refusal(failure: &str) -> bool {
    failure.len() == 3 && failure.starts_with('4') && failure != "408" && failure != "429"
}

/// How long and how often a delivery is retried.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RetryPolicy {
    pub first: Duration,
    pub max: Duration,
    /// From intake: past it, a failing delivery is dead-lettered.
    pub retry_for: Duration,
}

pub(crate) struct Lane {
    partner: String,
    endpoint: Endpoint,
    redis: RedisConnection,
    sender: Arc<Sender>,
    dead_letters: DeadLetters,
    policy: RetryPolicy,
    limiter: Option<DefaultDirectRateLimiter>,
}

/// An entry waiting its turn, with what orders it.
struct Queued {
    entry: Entry,
    decision: Option<Decision>,
    /// The booking (or, for inventory, the event) whose deliveries are ordered.
    order_key: String,
}

impl Queued {
    fn new(entry: Entry) -> Queued {
        let decision: Option<Decision> = serde_json::from_slice(&entry.decision).ok();
        let order_key = match &decision {
            Some(d) => d.booking_id.unwrap_or(d.event_id).to_string(),
            None => entry.id.clone(),
        };
        Queued {
            entry,
            decision,
            order_key,
        }
    }
}

impl Lane {
    pub(crate) fn new(
        partner: &str,
        endpoint: Endpoint,
        redis: RedisConnection,
        sender: Arc<Sender>,
        dead_letters: DeadLetters,
        policy: RetryPolicy,
    ) -> Lane {
        let limiter = endpoint
            .rate_per_second
            .map(|rate: NonZeroU32| RateLimiter::direct(Quota::per_second(rate)));
        Lane {
            partner: partner.to_owned(),
            endpoint,
            redis,
            sender,
            dead_letters,
            policy,
            limiter,
        }
    }

    pub(crate) fn partner(&self) -> &str {
        &self.partner
    }

    /// Sends the outbox until `stop` is cancelled, or until a delivery task panics (the
    /// lane ends, and its holder starts it again from the outbox's head). Deliveries in
    /// flight are then dropped and stay in the outbox. Every wait watches `stop`, so the
    /// lane is gone promptly once its lease may be lost.
    pub(crate) async fn run(self: Arc<Self>, stop: CancellationToken) {
        // A breaker of this run's own: a probe dropped with a previous run would otherwise
        // hold every delivery back.
        let breaker = Arc::new(Breaker::new(
            &self.partner,
            self.policy.first,
            self.policy.max,
        ));
        let concurrency = self.endpoint.concurrency.get();
        let mut queued: VecDeque<Queued> = VecDeque::new();
        let mut last_read: Option<String> = None;
        let mut in_flight: JoinSet<()> = JoinSet::new();
        let mut busy: HashMap<tokio::task::Id, String> = HashMap::new();
        let mut next_report = tokio::time::Instant::now();
        info!(partner = self.partner, endpoint = %self.endpoint.uri, concurrency, "delivering");
        loop {
            if queued.len() < READ_AHEAD {
                let wanted = READ_AHEAD - queued.len();
                let read = tokio::select! {
                    () = stop.cancelled() => break,
                    read = outbox::read_after(&self.redis, &self.partner, last_read.as_deref(), wanted) => read,
                };
                match read {
                    Ok(entries) => {
                        if let Some(last) = entries.last() {
                            last_read = Some(last.id.clone());
                        }
                        queued.extend(entries.into_iter().map(Queued::new));
                    }
                    Err(error) => {
                        metrics::webhook_redis_error();
                        warn!(%error, partner = self.partner, "reading the webhook outbox failed");
                    }
                }
            }
            // In outbox order, start every entry whose booking has nothing in flight and
            // nothing earlier still waiting.
            let mut blocked: HashSet<String> = busy.values().cloned().collect();
            let mut index = 0;
            while index < queued.len() && in_flight.len() < concurrency {
                if blocked.contains(&queued[index].order_key) {
                    index += 1;
                    continue;
                }
                let next = queued.remove(index).expect("index is in range");
                blocked.insert(next.order_key.clone());
                let settle = self
                    .clone()
                    .settle(breaker.clone(), next.entry, next.decision);
                let handle = in_flight.spawn(settle);
                busy.insert(handle.id(), next.order_key);
            }
            if tokio::time::Instant::now() >= next_report {
                tokio::select! {
                    () = stop.cancelled() => break,
                    () = self.report() => {}
                }
                next_report = tokio::time::Instant::now() + REPORT_EVERY;
            }
            tokio::select! {
                () = stop.cancelled() => break,
                Some(done) = in_flight.join_next_with_id(), if !in_flight.is_empty() => {
                    match done {
                        Ok((id, ())) => {
                            busy.remove(&id);
                        }
                        // Its entry is behind what was read, and its booking's next ones
                        // must not overtake it: start over from the outbox's head.
                        Err(failed) => {
                            error!(error = %failed, partner = self.partner, "a delivery task failed; restarting the lane");
                            break;
                        }
                    }
                }
                () = tokio::time::sleep(POLL) => {}
            }
        }
        in_flight.shutdown().await;
        metrics::webhook_backlog(&self.partner, 0, Duration::ZERO);
        metrics::webhook_circuit(&self.partner, false);
        info!(partner = self.partner, "no longer delivering");
    }

    async fn report(&self) {
        match outbox::backlog(&self.redis, &self.partner).await {
            Ok((undelivered, oldest)) => {
                let age = oldest.map_or(Duration::ZERO, |ms| {
                    Duration::from_millis(unix_ms().saturating_sub(ms))
                });
                metrics::webhook_backlog(&self.partner, undelivered, age);
            }
            Err(error) => {
                metrics::webhook_redis_error();
                debug!(%error, partner = self.partner, "reading the backlog failed");
            }
        }
    }

    /// Delivers one entry or dead-letters it, then deletes it from the outbox.
    async fn settle(
        self: Arc<Self>,
        breaker: Arc<Breaker>,
        entry: Entry,
        decision: Option<Decision>,
    ) {
        let delivery_id = decision.as_ref().map_or_else(
            || Uuid::new_v5(&Uuid::NAMESPACE_OID, entry.id.as_bytes()),
            Decision::delivery_id,
        );
        let body = Bytes::from(entry.decision.clone());
        let mut backoff = ExponentialBuilder::default()
            .with_min_delay(self.policy.first)
            .with_max_delay(self.policy.max)
            .with_jitter()
            .without_max_times()
            .build();
        let mut attempts = 0;
        let (reason, last_failure) = loop {
            breaker.admit().await;
            if let Some(limiter) = &self.limiter {
                limiter.until_ready().await;
            }
            attempts += 1;
            match self
                .sender
                .attempt(&self.endpoint, delivery_id, &body, attempts)
                .await
            {
                Attempt::Delivered => {
                    breaker.succeeded();
                    break (None, String::new());
                }
                Attempt::Gone => {
                    breaker.succeeded();
                    break (Some(Reason::Gone), "410".to_owned());
                }
                Attempt::Retry { failure, .. }
                    if is_refusal(&failure) && attempts >= REFUSED_ATTEMPTS =>
                {
                    // The endpoint answers, and keeps refusing this one decision: the
                    // others may go on. Not a failure of the endpoint for the breaker.
                    breaker.succeeded();
                    break (Some(Reason::Refused), failure);
                }
                Attempt::Retry { failure, after } => {
                    breaker.failed(after);
                    let wait = backoff
                        .next()
                        .unwrap_or(self.policy.max)
                        .max(after.unwrap_or_default());
                    let retry_ends = entry.taken_in_ms() + self.policy.retry_for.as_millis() as u64;
                    if unix_ms() + wait.as_millis() as u64 > retry_ends {
                        break (Some(Reason::Expired), failure);
                    }
                    debug!(partner = self.partner, %delivery_id, attempts, failure, retry_in = ?wait, "delivery failed");
                    tokio::time::sleep(wait).await;
                }
            }
        };
        match reason {
            None => metrics::webhook_settled(
                "delivered",
                Some(Duration::from_millis(
                    unix_ms().saturating_sub(entry.taken_in_ms()),
                )),
            ),
            Some(reason) => {
                warn!(partner = self.partner, %delivery_id, attempts, reason = reason.as_str(), last_failure, "decision not delivered; dead-lettered");
                let key = decision
                    .as_ref()
                    .map(|d| d.booking_id.unwrap_or(d.event_id).to_string())
                    .unwrap_or_default();
                let letter = Undeliverable {
                    partner: &self.partner,
                    key: key.as_bytes(),
                    decision: &entry.decision,
                    delivery_id: delivery_id.to_string(),
                    reason,
                    attempts,
                    last_failure: &last_failure,
                };
                until_done("dead-lettering a decision", || {
                    self.dead_letters.publish(&letter)
                })
                .await;
                metrics::webhook_settled(reason.as_str(), None);
            }
        }
        until_done("deleting a settled outbox entry", || async {
            let removed = outbox::remove(&self.redis, &self.partner, &entry.id).await;
            if removed.is_err() {
                metrics::webhook_redis_error();
            }
            removed
        })
        .await;
    }
}

/// Runs `operation` until it succeeds, with backoff: what must happen for a settled
/// delivery to leave the outbox (a crash meanwhile only sends it again).
pub(crate) async fn until_done<F, Fut, E>(what: &str, mut operation: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    let mut wait = SETTLE_RETRY_FIRST;
    while let Err(error) = operation().await {
        warn!(%error, retry_in = ?wait, "{what} failed");
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(SETTLE_RETRY_MAX);
    }
}

pub(crate) fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::is_refusal;

    #[test]
    fn only_4xx_answers_a_retry_cannot_mend_are_refusals() {
        for status in ["400", "401", "403", "404", "413", "422"] {
            assert!(is_refusal(status), "{status}");
        }
        for failure in [
            "408",
            "429",
            "500",
            "503",
            "timeout",
            "connection: refused",
            "4",
        ] {
            assert!(!is_refusal(failure), "{failure}");
        }
    }
}

//! The ingress's one connection to Redis, shared by the idempotency tier and the read
//! endpoints, with short timeouts and outage reporting.
//!
//! Redis is an optimisation for mutations (shared idempotency records) and the source of
//! the read endpoints, never a condition for accepting a booking. So the connection is
//! made lazily, startup never waits for it, and every command is bounded by a short
//! timeout: a Redis that hangs must cost a request milliseconds, not the delivery budget.
//! An outage is logged once when it starts (error) and once when it ends (info), however
//! many requests notice it in between. While it lasts, only one command per
//! [`PROBE_INTERVAL`] actually tries Redis; the others fail at once, so a Redis that
//! blackholes packets costs one request a timeout, not every request.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use partitioner::redis_target::{Limits, RedisConnection, RedisTarget};
use redis::{FromRedisValue, RedisError};

/// During an outage, how often a command is let through to see whether Redis is back.
pub const PROBE_INTERVAL: Duration = Duration::from_millis(200);

/// Why a Redis command produced no answer.
#[derive(Debug, thiserror::Error)]
pub enum RedisDown {
    #[error("redis: {0}")]
    Redis(#[from] RedisError),
    #[error("redis did not answer within {0:?}")]
    Timeout(Duration),
    /// Not tried: Redis failed moments ago and the next probe is not due yet.
    #[error("redis is down; next probe pending")]
    Down,
}

pub struct RedisLink {
    connection: RedisConnection,
    timeout: Duration,
    /// Whether the last command failed; flips once per outage, so the log says when an
    /// outage started and ended rather than repeating itself per request.
    down: AtomicBool,
    /// When the next command may try Redis during an outage, in milliseconds since `epoch`.
    probe_at_ms: AtomicU64,
    epoch: Instant,
    probe_interval: Duration,
}

impl RedisLink {
    /// Prepares the connection, to a node or a cluster ([`RedisTarget`]), without
    /// contacting Redis. Fails only on a malformed URL, which is a configuration error.
    pub fn new(url: &str, timeout: Duration) -> Result<RedisLink, RedisError> {
        // One quick reconnect attempt per command at most: a request must not sit in the
        // client's exponential backoff while Redis is away.
        let limits = Limits {
            connect: timeout,
            response: timeout,
            retries: 1,
        };
        let connection = url.parse::<RedisTarget>()?.lazy(limits)?;
        Ok(RedisLink {
            connection,
            timeout,
            down: AtomicBool::new(false),
            probe_at_ms: AtomicU64::new(0),
            epoch: Instant::now(),
            probe_interval: PROBE_INTERVAL,
        })
    }

    /// Runs one command.
    pub async fn query<T: FromRedisValue>(&self, cmd: &redis::Cmd) -> Result<T, RedisDown> {
        let mut connection = self.connection.clone();
        self.bounded(async move { cmd.query_async(&mut connection).await })
            .await
    }

    /// Runs a Lua script (loaded on first use, by its SHA afterwards).
    pub async fn script<T: FromRedisValue>(
        &self,
        invocation: &redis::ScriptInvocation<'_>,
    ) -> Result<T, RedisDown> {
        let mut connection = self.connection.clone();
        self.bounded(async move { invocation.invoke_async(&mut connection).await })
            .await
    }

    /// Whether the last command failed.
    pub fn is_down(&self) -> bool {
        self.down.load(Ordering::Relaxed)
    }

    async fn bounded<T>(
        &self,
        command: impl Future<Output = Result<T, RedisError>>,
    ) -> Result<T, RedisDown> {
        let now_ms = self.epoch.elapsed().as_millis() as u64;
        if self.is_down() {
            // One caller per interval wins the probe; the rest fail fast.
            let due = self.probe_at_ms.load(Ordering::Relaxed);
            let next = now_ms + self.probe_interval.as_millis() as u64;
            if now_ms < due
                || self
                    .probe_at_ms
                    .compare_exchange(due, next, Ordering::Relaxed, Ordering::Relaxed)
                    .is_err()
            {
                return Err(RedisDown::Down);
            }
        }
        let result = match tokio::time::timeout(self.timeout, command).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => Err(RedisDown::Redis(error)),
            Err(_) => Err(RedisDown::Timeout(self.timeout)),
        };
        match &result {
            Ok(_) => {
                if self.down.swap(false, Ordering::Relaxed) {
                    tracing::info!(
                        "redis is reachable again: shared idempotency and reads restored"
                    );
                }
            }
            Err(error) => {
                let next = self.epoch.elapsed() + self.probe_interval;
                self.probe_at_ms
                    .store(next.as_millis() as u64, Ordering::Relaxed);
                if !self.down.swap(true, Ordering::Relaxed) {
                    tracing::error!(
                        %error,
                        "redis unavailable: idempotency falls back to this process's cache \
                         and reads answer 503 until it returns"
                    );
                }
            }
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_outage_is_probed_not_hammered() {
        // Port 1 on loopback refuses connections: a Redis that is down.
        let mut link = RedisLink::new("redis://127.0.0.1:1/", Duration::from_millis(500)).unwrap();
        // An interval no test run outlasts, so the assertion below cannot depend on speed.
        link.probe_interval = Duration::from_secs(3_600);
        let ping = redis::cmd("PING");
        let first = link.query::<String>(&ping).await.unwrap_err();
        assert!(!matches!(first, RedisDown::Down), "{first}");
        assert!(link.is_down());
        // Straight after a failure the next probe is not due: no attempt is made.
        let second = link.query::<String>(&ping).await.unwrap_err();
        assert!(matches!(second, RedisDown::Down), "{second}");
    }
}

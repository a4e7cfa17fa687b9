//! The ingress's one connection to Redis, shared by the idempotency tier and the read
//! endpoints, with short timeouts and outage reporting.
//!
//! Redis is an optimisation for mutations (shared idempotency records) and the source of
//! the read endpoints, never a condition for accepting a booking. So the connection is
//! made lazily, startup never waits for it, and every command is bounded by a short
//! timeout: a Redis that hangs must cost a request milliseconds, not the delivery budget.
//! An outage is logged once when it starts (error) and once when it ends (info), however
//! many requests notice it in between. While it lasts, only one command per
//! [`PROBE_INTERVAL`] actually tries the failing part of Redis (the node, or on a cluster
//! the key's hash slot, see [`outages`]); the others fail at once, so a Redis that
//! blackholes packets costs one request a timeout, not every request.

mod outages;

use std::future::Future;
use std::time::{Duration, Instant};

use partitioner::redis_target::{Limits, RedisConnection, RedisTarget};
use redis::{FromRedisValue, RedisError};

use outages::{Outages, Part};

/// During an outage, how often a command is let through to see whether Redis is back.
pub const PROBE_INTERVAL: Duration = Duration::from_millis(200);

/// Why a Redis command produced no answer.
#[derive(Debug, thiserror::Error)]
pub enum RedisDown {
    #[error("redis: {0}")]
    Redis(#[from] RedisError),
    /// Not tried: this part of Redis failed moments ago and its next probe is not due yet.
    #[error("redis is down; next probe pending")]
    Down,
}

pub struct RedisLink {
    connection: RedisConnection,
    cluster: bool,
    outages: Outages,
}

impl RedisLink {
    /// Prepares the connection, to a node or a cluster ([`RedisTarget`]), without
    /// contacting Redis. Fails only on a malformed URL, which is a configuration error.
    pub fn new(url: &str, timeout: Duration) -> Result<RedisLink, RedisError> {
        Self::with_probe_interval(url, timeout, PROBE_INTERVAL)
    }

    fn with_probe_interval(
        url: &str,
        timeout: Duration,
        probe_interval: Duration,
    ) -> Result<RedisLink, RedisError> {
        // One quick reconnect attempt per command at most: a request must not sit in the
        // client's exponential backoff while Redis is away. The deadline bounds the whole
        // command, the reconnect included.
        let limits = Limits {
            connect: timeout,
            response: timeout,
            retries: 1,
            deadline: timeout,
        };
        let target = url.parse::<RedisTarget>()?;
        Ok(RedisLink {
            connection: target.lazy(limits)?,
            cluster: target.is_cluster(),
            outages: Outages::new(probe_interval),
        })
    }

    /// Runs one command on `key` (on a cluster, the key whose slot answers it).
    pub async fn query<T: FromRedisValue>(
        &self,
        key: &str,
        cmd: &redis::Cmd,
    ) -> Result<T, RedisDown> {
        let mut connection = self.connection.clone();
        self.bounded(key, async move { cmd.query_async(&mut connection).await })
            .await
    }

    /// Runs a Lua script on `key`, the script's one key (loaded on first use, by its SHA
    /// afterwards).
    pub async fn script<T: FromRedisValue>(
        &self,
        key: &str,
        invocation: &redis::ScriptInvocation<'_>,
    ) -> Result<T, RedisDown> {
        let mut connection = self.connection.clone();
        self.bounded(key, async move {
            invocation.invoke_async(&mut connection).await
        })
        .await
    }

    /// Whether some part of Redis failed on its last command.
    pub fn is_down(&self) -> bool {
        self.outages.any()
    }

    async fn bounded<T>(
        &self,
        key: &str,
        command: impl Future<Output = Result<T, RedisError>>,
    ) -> Result<T, RedisDown> {
        let part = Part::of(key, self.cluster);
        if !self.outages.admit(part, Instant::now()) {
            return Err(RedisDown::Down);
        }
        let result = command.await.map_err(RedisDown::Redis);
        match &result {
            Ok(_) => {
                if self.outages.succeeded(part, Instant::now()) {
                    tracing::info!(
                        "redis is reachable again: shared idempotency and reads restored"
                    );
                }
            }
            Err(error) => {
                if self.outages.failed(part, Instant::now()) {
                    tracing::error!(
                        %error,
                        cluster = self.cluster,
                        "redis unavailable: idempotency falls back to this process's cache \
                         and reads answer 503 until it returns (on a cluster, for the keys \
                         of the hash slots that fail)"
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
        // An interval no test run outlasts, so the assertion below cannot depend on speed.
        let link = RedisLink::with_probe_interval(
            "redis://127.0.0.1:1/",
            Duration::from_millis(500),
            Duration::from_secs(3_600),
        )
        .unwrap();
        let mut get = redis::cmd("GET");
        get.arg("k");
        let first = link.query::<Option<String>>("k", &get).await.unwrap_err();
        assert!(!matches!(first, RedisDown::Down), "{first}");
        assert!(link.is_down());
        // Straight after a failure the next probe is not due: no attempt is made, for
        // this key or any other of the single node.
        let second = link
            .query::<Option<String>>("other", &get)
            .await
            .unwrap_err();
        assert!(matches!(second, RedisDown::Down), "{second}");
    }
}

//! The load tools' Redis connection: a single node or a cluster, from the same URL setting
//! the pipeline's binaries take ([`partitioner::redis_target`]).

use std::time::Duration;

use partitioner::redis_target::{Limits, RedisConnection, RedisTarget};

/// Reads in flight at once when many keys are checked.
pub const IN_FLIGHT: usize = 500;

/// Connects now to `url` (one node's URL, or a cluster's comma-separated seeds).
pub async fn connect(url: &str) -> anyhow::Result<RedisConnection> {
    let limits = Limits {
        connect: Duration::from_secs(5),
        response: Duration::from_secs(5),
        retries: 3,
        deadline: Duration::from_secs(30),
    };
    Ok(url.parse::<RedisTarget>()?.connect(limits).await?)
}

//! One rate limit per partner however many ingress replicas run: the partner's bucket is
//! kept in Redis as one GCRA timestamp (the theoretical arrival time of the next request,
//! in the server's clock), checked and advanced by one script in one round trip. The key
//! is the partner's alone, so on a Redis Cluster it lives in one slot.
//!
//! Same quota and same answers as the local bucket (governor is GCRA too): `per_second`
//! tokens a second into a bucket of `burst`.

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use redis::Script;

use super::Allowance;
use crate::redis_link::{RedisDown, RedisLink};

/// ARGV = emission interval (µs per token), burst. Returns {allowed, remaining, reset µs,
/// retry-after µs}, all integers.
static GCRA: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"local emission, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
          local time = redis.call('TIME')
          local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
          local tat = math.max(tonumber(redis.call('GET', KEYS[1]) or now), now)
          local tolerance = emission * burst
          local next_tat = tat + emission
          if next_tat - now > tolerance then
            return {0, 0, tat - now, next_tat - now - tolerance}
          end
          redis.call('SET', KEYS[1], next_tat, 'PX', math.ceil((next_tat - now) / 1000) + 1)
          local remaining = math.floor((tolerance - (next_tat - now)) / emission)
          return {1, remaining, next_tat - now, 0}",
    )
});

/// What the shared bucket said.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Allowed(Allowance),
    Refused { retry_after: Duration },
}

pub struct SharedLimit {
    redis: Arc<RedisLink>,
    prefix: String,
    emission_micros: u64,
    burst: u32,
}

impl SharedLimit {
    pub fn new(redis: Arc<RedisLink>, prefix: &str, per_second: u32, burst: u32) -> Self {
        SharedLimit {
            redis,
            prefix: prefix.to_owned(),
            // At least a microsecond: the script divides by it.
            emission_micros: (1_000_000 / u64::from(per_second.max(1))).max(1),
            burst: burst.max(1),
        }
    }

    /// Takes one token from `partner`'s shared bucket; an error when Redis did not answer
    /// (the caller's local bucket decides then).
    pub async fn check(&self, partner: &str) -> Result<Verdict, RedisDown> {
        let key = format!("{}:ratelimit:{partner}", self.prefix);
        let mut invocation = GCRA.key(&key);
        invocation.arg(self.emission_micros).arg(self.burst);
        let (allowed, remaining, reset_micros, retry_micros): (i64, i64, i64, i64) =
            self.redis.script(&key, &invocation).await?;
        Ok(if allowed == 1 {
            Verdict::Allowed(Allowance {
                limit: self.burst,
                remaining: u32::try_from(remaining.max(0)).unwrap_or(u32::MAX),
                reset_secs: (reset_micros.max(0) as u64).div_ceil(1_000_000),
            })
        } else {
            Verdict::Refused {
                retry_after: Duration::from_micros(retry_micros.max(0) as u64),
            }
        })
    }
}

//! Per-partner token buckets (governor's GCRA, keyed by partner id).
//!
//! Each partner gets its own bucket, so one partner's flood never eats another's budget.
//! The key set is the partners file, so the limiter's memory is bounded by it. Refusals
//! are 429 with `Retry-After` and the IETF ratelimit-headers draft's `RateLimit-Limit`,
//! `RateLimit-Remaining` and `RateLimit-Reset`, rendered in [`crate::problem`]. Every
//! other answer to a request that took a token carries the same three fields
//! ([`Allowance`]), so a partner can pace itself before it is ever refused.
//!
//! By default the limit is per process: behind a load balancer with N replicas a partner's
//! effective ceiling is N times the setting. With `INGRESS_RATE_LIMIT_SHARED` the bucket
//! lives in Redis ([`shared`]), one per partner for every replica, at one round trip per
//! request; while Redis does not answer, the local bucket decides.

mod shared;

use std::num::NonZeroU32;
use std::sync::Arc;

use governor::clock::Clock;
use governor::middleware::StateInformationMiddleware;
use governor::{DefaultKeyedRateLimiter, Quota};
use http::{HeaderMap, HeaderValue};

use self::shared::{SharedLimit, Verdict};
use crate::metrics;
use crate::problem::{ApiError, RATELIMIT_LIMIT, RATELIMIT_REMAINING, RATELIMIT_RESET};
use crate::redis_link::RedisLink;

pub struct RateLimits {
    limiter: DefaultKeyedRateLimiter<String, StateInformationMiddleware>,
    per_second: u32,
    burst: u32,
    /// The bucket every replica shares, when configured.
    shared: Option<SharedLimit>,
}

/// A partner's bucket just after a request took its token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Allowance {
    /// The bucket size (the burst).
    pub limit: u32,
    /// Tokens left now.
    pub remaining: u32,
    /// Whole seconds until the bucket is full again, rounded up.
    pub reset_secs: u64,
}

impl Allowance {
    /// Adds `RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset`.
    pub fn apply(&self, headers: &mut HeaderMap) {
        headers.insert(&RATELIMIT_LIMIT, HeaderValue::from(self.limit));
        headers.insert(&RATELIMIT_REMAINING, HeaderValue::from(self.remaining));
        headers.insert(&RATELIMIT_RESET, HeaderValue::from(self.reset_secs));
    }
}

impl RateLimits {
    /// `per_second` tokens refill each second into a bucket of `burst` tokens. Zeros are
    /// raised to one: a limit of nothing at all is not a rate limit.
    pub fn new(per_second: u32, burst: u32) -> RateLimits {
        let rate = NonZeroU32::new(per_second).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
        let quota = Quota::per_second(rate).allow_burst(burst);
        RateLimits {
            limiter: DefaultKeyedRateLimiter::keyed(quota)
                .with_middleware::<StateInformationMiddleware>(),
            per_second: rate.get(),
            burst: burst.get(),
            shared: None,
        }
    }

    /// The same limits kept in `redis` under `prefix`, shared by every replica.
    pub fn shared(mut self, redis: Arc<RedisLink>, prefix: &str) -> RateLimits {
        self.shared = Some(SharedLimit::new(redis, prefix, self.per_second, self.burst));
        self
    }

    /// Takes one token from `partner`'s bucket (the shared one when configured and Redis
    /// answers, else this process's) and says what is left, or how long until a token is
    /// there.
    pub async fn check(&self, partner: &str) -> Result<Allowance, ApiError> {
        if let Some(shared) = &self.shared {
            match shared.check(partner).await {
                Ok(Verdict::Allowed(allowance)) => return Ok(allowance),
                Ok(Verdict::Refused { retry_after }) => {
                    metrics::rate_limited();
                    return Err(ApiError::RateLimited {
                        limit: self.burst,
                        retry_after,
                    });
                }
                // Logged once per outage by the link; the local bucket decides meanwhile.
                Err(_) => {}
            }
        }
        self.check_local(partner)
    }

    fn check_local(&self, partner: &str) -> Result<Allowance, ApiError> {
        // Lookup by `&String` forces an allocation per request; partner ids are short.
        match self.limiter.check_key(&partner.to_owned()) {
            Ok(snapshot) => {
                let remaining = snapshot.remaining_burst_capacity().min(self.burst);
                // The spent tokens come back at the sustained rate.
                let spent = u64::from(self.burst - remaining);
                Ok(Allowance {
                    limit: self.burst,
                    remaining,
                    reset_secs: spent.div_ceil(u64::from(self.per_second)),
                })
            }
            Err(not_until) => {
                metrics::rate_limited();
                let retry_after = not_until.wait_time_from(self.limiter.clock().now());
                Err(ApiError::RateLimited {
                    limit: self.burst,
                    retry_after,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partner_gets_its_burst_then_is_refused() {
        // One token a second: the refill cannot make this test depend on its speed.
        let limits = RateLimits::new(1, 3);
        for remaining in [2, 1, 0] {
            let allowance = limits.check_local("ota-1").unwrap();
            assert_eq!(allowance.limit, 3);
            assert_eq!(allowance.remaining, remaining);
            // At one token a second, each spent token is a second until full again.
            assert_eq!(allowance.reset_secs, u64::from(3 - remaining));
        }
        match limits.check_local("ota-1") {
            Err(ApiError::RateLimited { limit, retry_after }) => {
                assert_eq!(limit, 3);
                assert!(retry_after.as_secs_f64() <= 1.0, "{retry_after:?}");
            }
            other => panic!("{other:?}"),
        }
        // Another partner's bucket is untouched.
        assert_eq!(limits.check_local("ota-2").unwrap().remaining, 2);
    }

    #[test]
    fn reset_rounds_up_to_whole_seconds() {
        let limits = RateLimits::new(10, 100);
        let allowance = limits.check_local("ota-1").unwrap();
        assert_eq!((allowance.remaining, allowance.reset_secs), (99, 1));
        let mut headers = HeaderMap::new();
        allowance.apply(&mut headers);
        assert_eq!(headers[&RATELIMIT_LIMIT], "100");
        assert_eq!(headers[&RATELIMIT_REMAINING], "99");
        assert_eq!(headers[&RATELIMIT_RESET], "1");
    }
}

//! Per-partner token buckets (governor's GCRA, keyed by partner id).
//!
//! Each partner gets its own bucket, so one partner's flood never eats another's budget.
//! The key set is the partners file, so the limiter's memory is bounded by it. Refusals
//! are 429 with `Retry-After` and the IETF ratelimit-headers draft's `RateLimit-Limit`,
//! `RateLimit-Remaining` and `RateLimit-Reset`, rendered in [`crate::problem`].
//!
//! The limit is per process: behind a load balancer with N replicas a partner's effective
//! ceiling is N times the setting, which operators size for.

use std::num::NonZeroU32;

use governor::clock::Clock;
use governor::{DefaultKeyedRateLimiter, Quota};

use crate::metrics;
use crate::problem::ApiError;

pub struct RateLimits {
    limiter: DefaultKeyedRateLimiter<String>,
    burst: u32,
}

impl RateLimits {
    /// `per_second` tokens refill each second into a bucket of `burst` tokens. Zeros are
    /// raised to one: a limit of nothing at all is not a rate limit.
    pub fn new(per_second: u32, burst: u32) -> RateLimits {
        let rate = NonZeroU32::new(per_second).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
        let quota = Quota::per_second(rate).allow_burst(burst);
        RateLimits {
            limiter: DefaultKeyedRateLimiter::keyed(quota),
            burst: burst.get(),
        }
    }

    /// Takes one token from `partner`'s bucket, or says how long until one is there.
    pub fn check(&self, partner: &str) -> Result<(), ApiError> {
        // Lookup by `&String` forces an allocation per request; partner ids are short.
        match self.limiter.check_key(&partner.to_owned()) {
            Ok(()) => Ok(()),
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
        for _ in 0..3 {
            limits.check("ota-1").unwrap();
        }
        match limits.check("ota-1") {
            Err(ApiError::RateLimited { limit, retry_after }) => {
                assert_eq!(limit, 3);
                assert!(retry_after.as_secs_f64() <= 1.0, "{retry_after:?}");
            }
            other => panic!("{other:?}"),
        }
        // Another partner's bucket is untouched.
        limits.check("ota-2").unwrap();
    }
}

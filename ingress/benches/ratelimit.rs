//! What a partner's rate limit costs per request: this process's bucket against the bucket
//! shared by every replica in Redis (`INGRESS_RATE_LIMIT_SHARED`: one script, one round
//! trip), measured in one run against the Redis of `REDIS_URL` (default: the local stack's).
//! Prints numbers and the ratio; fails only if Redis stopped answering mid-run. Run with
//! `cargo bench -p ingress --bench ratelimit` while `infra/stack.sh up` runs.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ingress::ratelimit::RateLimits;
use ingress::redis_link::RedisLink;

const CHECKS: usize = 20_000;
/// Partners the checks cycle through, so buckets never run dry at these limits.
const PARTNERS: usize = 100;

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/".into());
    let prefix = format!("bench-{}", std::process::id());
    let partners: Vec<String> = (0..PARTNERS).map(|i| format!("partner-{i}")).collect();
    runtime.block_on(async {
        // Made inside the runtime: the lazy connection registers with its reactor.
        let redis = Arc::new(RedisLink::new(&url, Duration::from_secs(2)).expect("redis url"));
        let local = RateLimits::new(1_000_000, 1_000_000);
        let shared = RateLimits::new(1_000_000, 1_000_000).shared(redis.clone(), &prefix);
        // Warm up: the connection, the script's load.
        for partner in &partners {
            shared.check(partner).await.expect("allowed");
        }
        let mut per_check = Vec::new();
        for (name, limits) in [("local bucket", &local), ("shared bucket (Redis)", &shared)] {
            let started = Instant::now();
            for i in 0..CHECKS {
                limits.check(&partners[i % PARTNERS]).await.expect("allowed");
            }
            let micros = started.elapsed().as_secs_f64() * 1e6 / CHECKS as f64;
            println!("{name:<24} {micros:>8.2} µs per request ({CHECKS} sequential checks)");
            per_check.push(micros);
        }
        println!(
            "shared / local: {:.1}x; the shared bucket adds {:.2} µs and one Redis round trip per request ({url})",
            per_check[1] / per_check[0],
            per_check[1] - per_check[0]
        );
        assert!(!redis.is_down(), "Redis failed during the run: the shared numbers are the local bucket's");
    });
}

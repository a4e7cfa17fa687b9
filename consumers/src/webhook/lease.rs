//! One sender per partner across the delivery processes: a lease in Redis, taken by a
//! process for [`TTL`] and renewed every [`RENEW_EVERY`]. The holder runs the partner's
//! [`Lane`]; the others try again from time to time, so a partner whose holder died (even
//! by SIGKILL) is taken over within [`TTL`] plus [`RENEW_EVERY`]. A holder that cannot
//! renew for [`GIVE_UP_AFTER`] (counted from when its last good claim was sent, so a slow
//! Redis cannot stretch it) stops its lane before the lease can lapse, so two lanes never
//! send one partner's outbox at once (and its order holds).

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use partitioner::keys;
use partitioner::redis_target::RedisConnection;
use redis::{RedisError, Script};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::lane::Lane;
use crate::metrics;

const TTL: Duration = Duration::from_secs(15);
const RENEW_EVERY: Duration = Duration::from_secs(3);
/// A holder that has not renewed for this long stops sending: its lease may lapse soon.
const GIVE_UP_AFTER: Duration = Duration::from_secs(10);

/// Takes or renews the lease for ARGV[1] for ARGV[2] ms; 1 if held, 0 if another holds it.
static CLAIM: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"local holder = redis.call('GET', KEYS[1])
          if holder == false or holder == ARGV[1] then
            redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
            return 1
          end
          return 0",
    )
});

/// Gives the lease up if ARGV[1] holds it.
static RELEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
          return 0",
    )
});

async fn claim(redis: &RedisConnection, partner: &str, holder: &str) -> Result<bool, RedisError> {
    let mut connection = redis.clone();
    let held: i32 = CLAIM
        .key(keys::webhook_lease(partner))
        .arg(holder)
        .arg(TTL.as_millis() as u64)
        .invoke_async(&mut connection)
        .await?;
    Ok(held == 1)
}

/// Runs `lane` whenever this process (`holder`) holds its partner's lease, until `stop`.
pub(crate) async fn hold(
    lane: Arc<Lane>,
    redis: RedisConnection,
    holder: String,
    stop: CancellationToken,
) {
    let partner = lane.partner().to_owned();
    loop {
        let sent = Instant::now();
        match claim(&redis, &partner, &holder).await {
            Ok(true) => sending(&lane, &redis, &partner, &holder, &stop, sent).await,
            // Another process sends this partner's outbox.
            Ok(false) => {}
            Err(error) => {
                metrics::webhook_redis_error();
                warn!(%error, partner, "claiming the partner's delivery lease failed");
            }
        }
        tokio::select! {
            () = stop.cancelled() => break,
            () = tokio::time::sleep(RENEW_EVERY) => {}
        }
    }
    let mut connection = redis.clone();
    let released: Result<i32, _> = RELEASE
        .key(keys::webhook_lease(&partner))
        .arg(&holder)
        .invoke_async(&mut connection)
        .await;
    if let Err(error) = released {
        warn!(%error, partner, "releasing the delivery lease failed; it lapses by itself");
    }
}

/// Runs the lane while the lease is renewed. The lease was last known good when the
/// claim that renewed it was *sent*; the lane is stopped [`GIVE_UP_AFTER`] from then unless
/// a later claim succeeds, whatever the claims meanwhile answer or how long they take, so
/// it is gone before the lease can lapse and another process take over.
async fn sending(
    lane: &Arc<Lane>,
    redis: &RedisConnection,
    partner: &str,
    holder: &str,
    stop: &CancellationToken,
    claimed_at: Instant,
) {
    let lane_stop = stop.child_token();
    let mut running = tokio::spawn(lane.clone().run(lane_stop.clone()));
    let mut good_until = claimed_at + GIVE_UP_AFTER;
    loop {
        let next_claim = Instant::now() + RENEW_EVERY;
        tokio::select! {
            () = stop.cancelled() => break,
            ended = &mut running => {
                if let Err(error) = ended {
                    warn!(%error, partner, "the lane ended abnormally");
                }
                // Started again by the caller while the lease is held.
                return;
            }
            () = tokio::time::sleep_until(good_until) => {
                warn!(partner, "delivery lease not renewed in time; stopping this lane");
                break;
            }
            () = tokio::time::sleep_until(next_claim) => {}
        }
        let sent = Instant::now();
        let answer_by = (sent + RENEW_EVERY).min(good_until);
        match tokio::time::timeout_at(answer_by, claim(redis, partner, holder)).await {
            Ok(Ok(true)) => good_until = sent + GIVE_UP_AFTER,
            Ok(Ok(false)) => {
                warn!(
                    partner,
                    "another process took the delivery lease; stopping this lane"
                );
                break;
            }
            Ok(Err(error)) => {
                metrics::webhook_redis_error();
                warn!(%error, partner, "renewing the delivery lease failed");
            }
            Err(_) => {
                metrics::webhook_redis_error();
                warn!(partner, "renewing the delivery lease timed out");
            }
        }
    }
    lane_stop.cancel();
    if let Err(error) = running.await {
        warn!(%error, partner, "the lane ended abnormally");
    }
    info!(partner, "lane stopped");
}

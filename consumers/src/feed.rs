//! `consumer feed`: each partner's decisions, in order, for it to pull and acknowledge
//! (`GET /v1/decisions` and `POST /v1/decisions/ack` on the ingress).
//!
//! The feed is a projection of `booking-decisions`: this mode reads the topic in a group
//! of its own and appends each decision to a Redis stream per recipient (the sender, and
//! the booking's owner when another partner changed it: [`Decision::recipients`]),
//! `feed:{partner}`. The topic is keyed by booking, so a booking's decisions share a
//! partition and are appended in the order they were published.
//!
//! - **Once.** An append is guarded by the decision's offset in its partition, kept beside
//!   the stream per partition (`feed:{partner}:through`); a decision read again (after a
//!   crash before the group's commit, or by a partition's next owner) is not appended
//!   twice. A decision the consumers published twice (the outbox sends again until the
//!   broker acknowledges) is two records, and may be two entries: each names its event.
//! - **None lost.** The group's offsets move only past decisions whose appends Redis
//!   acknowledged; while Redis fails, the batch is retried with backoff.
//! - **Bounded.** Each stream keeps about `--feed-max-len` entries (`XADD MAXLEN ~`): a
//!   partner that leaves more unacknowledged loses the oldest, which its next read reports
//!   as a gap.
//! - **Rebuilt from the topic.** The streams are derived data: lost with Redis, they come
//!   back by resetting the group to the start of the topic (within its retention); the
//!   partners then see decisions again, as a feed may always redeliver.

use std::future::Future;
use std::sync::LazyLock;

use futures::future::try_join_all;
use partitioner::keys;
use partitioner::redis_target::{RedisConnection, RedisTarget};
use partitioner::Decision;
use rdkafka::message::{BorrowedMessage, Message};
use redis::{RedisError, Script};
use tokio::net::TcpListener;
use tracing::{info, warn};

use crate::config::{Config, StartAt};
use crate::decision_reader::{by_partition, DecisionReader};
use crate::{metrics, projection, Error};

/// Appends a decision to a feed unless one at the same or a later offset of the same
/// partition is there already. KEYS: the stream, its through-hash; ARGV: partition,
/// offset, the stream's bound, the decision's JSON. Returns 1 if appended, 0 if not.
static APPEND: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        r"local seen = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '-1')
          if tonumber(ARGV[2]) <= seen then return 0 end
          redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[3], '*', '{field}', ARGV[4])
          redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
          return 1",
        field = keys::FEED_DECISION_FIELD
    ))
});

/// Runs the feed until `shutdown` resolves.
pub async fn run(
    config: &Config,
    admin_listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> Result<(), Error> {
    let target: RedisTarget = config.redis_url.parse()?;
    let redis = target.lazy(projection::LIMITS)?;
    let reader = DecisionReader::join(
        config,
        &config.feed_group,
        // The feeds are rebuilt from the topic: a new group takes all it keeps.
        StartAt::Earliest,
        "feed",
        admin_listener,
    )?;
    info!(redis = %target, "feeding each partner's decisions");
    reader
        .run(shutdown, |batch| {
            let (redis, max_len) = (redis.clone(), config.feed_max_len);
            Box::pin(async move {
                let appended = append_batch(&redis, batch, max_len).await;
                if appended.is_err() {
                    metrics::feed_redis_error();
                }
                appended
            })
        })
        .await;
    Ok(())
}

/// Appends every decision of `batch` to its recipients' feeds: in order within each
/// partition of the topic, the partitions side by side.
async fn append_batch(
    redis: &RedisConnection,
    batch: &[BorrowedMessage<'_>],
    max_len: u64,
) -> Result<(), RedisError> {
    try_join_all(
        by_partition(batch)
            .into_values()
            .map(|messages| async move {
                for message in messages {
                    append(redis, message, max_len).await?;
                }
                Ok::<(), RedisError>(())
            }),
    )
    .await?;
    Ok(())
}

async fn append(
    redis: &RedisConnection,
    message: &BorrowedMessage<'_>,
    max_len: u64,
) -> Result<(), RedisError> {
    let payload = message.payload().unwrap_or_default();
    let decision: Decision = match serde_json::from_slice(payload) {
        Ok(decision) => decision,
        Err(error) => {
            metrics::feed_appended("undecodable");
            warn!(
                %error,
                partition = message.partition(),
                offset = message.offset(),
                "a record of the decisions topic is not a decision; it is left out of the feeds"
            );
            return Ok(());
        }
    };
    if decision.partner_id.is_none() {
        // Published by a consumer that did not name its recipients yet.
        metrics::feed_appended("unaddressed");
        return Ok(());
    }
    for partner in decision.recipients() {
        let mut connection = redis.clone();
        let appended: i32 = APPEND
            .key(keys::feed(partner))
            .key(keys::feed_through(partner))
            .arg(message.partition())
            .arg(message.offset())
            .arg(max_len)
            .arg(payload)
            .invoke_async(&mut connection)
            .await?;
        metrics::feed_appended(if appended == 1 {
            "appended"
        } else {
            "duplicate"
        });
    }
    Ok(())
}

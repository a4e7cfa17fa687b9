//! A partner's webhook outbox in Redis: the stream of its decisions not yet delivered
//! (`partitioner::keys::webhook_outbox`). The intake appends, guarded by the decision's
//! offset like the feed; the partner's lane reads in order and deletes each entry once it
//! is delivered or dead-lettered. So the stream's length is the partner's backlog, its
//! first entry the oldest undelivered decision, and an entry's id the time it was taken
//! in (from which its retry period runs, across restarts).

use std::sync::LazyLock;

use partitioner::keys;
use partitioner::redis_target::RedisConnection;
use redis::{RedisError, Script};

/// Takes a decision into an outbox unless one at the same or a later offset of the same
/// partition is there already, or the outbox is full. KEYS: the outbox, its through-hash;
/// ARGV: partition, offset, the outbox's bound, the decision's JSON. Returns 1 if taken
/// in, 0 if seen before, 2 if the outbox is full (nothing recorded: the caller
/// dead-letters the decision, and a re-read tries again).
static TAKE_IN: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        r"local seen = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '-1')
          if tonumber(ARGV[2]) <= seen then return 0 end
          if redis.call('XLEN', KEYS[1]) >= tonumber(ARGV[3]) then return 2 end
          redis.call('XADD', KEYS[1], '*', '{field}', ARGV[4])
          redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
          return 1",
        field = keys::FEED_DECISION_FIELD
    ))
});

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TakenIn {
    Appended,
    Duplicate,
    Full,
}

pub(crate) async fn take_in(
    redis: &RedisConnection,
    partner: &str,
    partition: i32,
    offset: i64,
    max_len: u64,
    decision: &[u8],
) -> Result<TakenIn, RedisError> {
    let mut connection = redis.clone();
    let result: i32 = TAKE_IN
        .key(keys::webhook_outbox(partner))
        .key(keys::webhook_through(partner))
        .arg(partition)
        .arg(offset)
        .arg(max_len)
        .arg(decision)
        .invoke_async(&mut connection)
        .await?;
    Ok(match result {
        1 => TakenIn::Appended,
        2 => TakenIn::Full,
        _ => TakenIn::Duplicate,
    })
}

/// Puts a decision back at the end of an outbox, unguarded: `consumer replay-webhooks`.
pub(crate) async fn put_back(
    redis: &RedisConnection,
    partner: &str,
    decision: &[u8],
) -> Result<(), RedisError> {
    let mut connection = redis.clone();
    redis::cmd("XADD")
        .arg(keys::webhook_outbox(partner))
        .arg("*")
        .arg(keys::FEED_DECISION_FIELD)
        .arg(decision)
        .query_async::<String>(&mut connection)
        .await?;
    Ok(())
}

/// Stream entries as XRANGE answers them: the id, then field and value alternating.
type RawEntries = Vec<(String, Vec<Vec<u8>>)>;

/// One undelivered decision.
#[derive(Clone, Debug)]
pub(crate) struct Entry {
    pub id: String,
    pub decision: Vec<u8>,
}

impl Entry {
    /// When the entry was taken in, in unix milliseconds (the first part of its id).
    pub(crate) fn taken_in_ms(&self) -> u64 {
        taken_in_ms(&self.id)
    }
}

fn taken_in_ms(id: &str) -> u64 {
    id.split('-')
        .next()
        .and_then(|ms| ms.parse().ok())
        .unwrap_or(0)
}

/// Up to `count` entries after `after` (an entry id; `None` for the first ones), in order.
pub(crate) async fn read_after(
    redis: &RedisConnection,
    partner: &str,
    after: Option<&str>,
    count: usize,
) -> Result<Vec<Entry>, RedisError> {
    let mut connection = redis.clone();
    let start = after.map_or_else(|| "-".to_owned(), |id| format!("({id}"));
    let entries: RawEntries = redis::cmd("XRANGE")
        .arg(keys::webhook_outbox(partner))
        .arg(start)
        .arg("+")
        .arg("COUNT")
        .arg(count)
        .query_async(&mut connection)
        .await?;
    Ok(entries
        .into_iter()
        .map(|(id, fields)| {
            let decision = fields
                .chunks(2)
                .find(|pair| pair[0] == keys::FEED_DECISION_FIELD.as_bytes())
                .and_then(|pair| pair.get(1).cloned())
                .unwrap_or_default();
            Entry { id, decision }
        })
        .collect())
}

/// Deletes a settled entry.
pub(crate) async fn remove(
    redis: &RedisConnection,
    partner: &str,
    id: &str,
) -> Result<(), RedisError> {
    let mut connection = redis.clone();
    redis::cmd("XDEL")
        .arg(keys::webhook_outbox(partner))
        .arg(id)
        .query_async::<i64>(&mut connection)
        .await?;
    Ok(())
}

/// The outbox's length and when its oldest entry was taken in (unix ms), if any.
pub(crate) async fn backlog(
    redis: &RedisConnection,
    partner: &str,
) -> Result<(u64, Option<u64>), RedisError> {
    let mut connection = redis.clone();
    let key = keys::webhook_outbox(partner);
    let (len, first): (u64, RawEntries) = redis::pipe()
        .cmd("XLEN")
        .arg(&key)
        .cmd("XRANGE")
        .arg(&key)
        .arg("-")
        .arg("+")
        .arg("COUNT")
        .arg(1)
        .query_async(&mut connection)
        .await?;
    Ok((len, first.first().map(|(id, _)| taken_in_ms(id))))
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_entry_id_says_when_it_was_taken_in() {
        assert_eq!(super::taken_in_ms("1700000000123-4"), 1_700_000_000_123);
        assert_eq!(super::taken_in_ms("garbage"), 0);
    }
}

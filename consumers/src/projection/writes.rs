//! The projection writes, one key per command so they run unchanged on a Redis Cluster,
//! where no command or transaction may span two hash slots.
//!
//! Each value carries the position it reflects, an offset within its source (the topic
//! and partition it was derived from, [`keys::source`]), and a script writes it only if
//! that offset is newer than the one stored beside it from the same source, so a replay, a
//! retry or a late write by a partition's previous owner never moves a value backwards. A
//! value from another source is replaced: offsets of two streams do not compare. A rebuild
//! from the store (`Freshness::Force`) overwrites whatever is there. The partition's
//! checkpoint is written after its batch's keys, and only forwards the same way.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use futures::future::try_join_all;
use partitioner::keys;
use partitioner::redis_target::RedisConnection;
use redis::{RedisError, Script};

use crate::apply::{Booking, Night, NightId};

/// Commands in flight at once on the shared connection when many keys are written (they
/// are pipelined on the wire by the multiplexed connection).
const IN_FLIGHT: usize = 500;

/// Whether a write may replace a value that reflects a newer offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Freshness {
    /// Only newer values are written: batches.
    Newer,
    /// Everything is written: a rebuild from the store, which is the truth.
    Force,
}

impl Freshness {
    fn arg(self) -> &'static str {
        match self {
            Freshness::Newer => "newer",
            Freshness::Force => "force",
        }
    }
}

/// One availability hash: ARGV = freshness, source, then (night, units, offset) triples.
/// A night's position field holds `{offset}@{source}`.
static NIGHTS: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        r"local force, source = ARGV[1] == 'force', ARGV[2]
          for i = 3, #ARGV, 3 do
            local field = ARGV[i] .. '{suffix}'
            local offset = tonumber(ARGV[i + 2])
            local seen, seen_source = string.match(redis.call('HGET', KEYS[1], field) or '', '^(-?%d+)@(.*)$')
            if force or seen_source ~= source or tonumber(seen) < offset then
              redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1], field, offset .. '@' .. source)
            end
          end
          return 0",
        suffix = keys::NIGHT_POSITION_SUFFIX
    ))
});

/// One booking hash: ARGV = freshness, source, the booking's offset, then field/value
/// pairs (which include the offset's and the source's own fields).
static BOOKING: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        r"local seen = redis.call('HMGET', KEYS[1], '{offset}', '{source}')
          if ARGV[1] == 'force' or seen[2] ~= ARGV[2] or tonumber(seen[1]) < tonumber(ARGV[3]) then
            redis.call('HSET', KEYS[1], unpack(ARGV, 4))
          end
          return 0",
        offset = keys::booking_field::OFFSET,
        source = keys::booking_field::SOURCE,
    ))
});

/// A partition's checkpoint: ARGV = freshness, the new checkpoint (empty to remove it, on
/// a rebuild from a store that has none). Returns the checkpoint it found, so a Redis that
/// lost the partition's projections is noticed at once.
static CHECKPOINT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"local held = redis.call('GET', KEYS[1])
          if ARGV[2] == '' then
            redis.call('DEL', KEYS[1])
          elseif ARGV[1] == 'force' or not held or tonumber(held) < tonumber(ARGV[2]) then
            redis.call('SET', KEYS[1], ARGV[2])
          end
          return held",
    )
});

/// A night's new value and the offset of the event that set it.
pub struct NightWrite<'a> {
    pub id: &'a NightId,
    pub night: Night,
    pub offset: i64,
}

/// Writes `nights` (grouped by availability hash, one command per hash) and `bookings`
/// (one command each) derived from `partition` of `topic`.
pub async fn write(
    redis: &RedisConnection,
    (topic, partition): (&str, i32),
    nights: &[NightWrite<'_>],
    bookings: &[&Booking],
    freshness: Freshness,
) -> Result<(), RedisError> {
    let source = keys::source(topic, partition);
    let mut by_hash: BTreeMap<String, Vec<&NightWrite>> = BTreeMap::new();
    for write in nights {
        let id = write.id;
        by_hash
            .entry(keys::availability(
                &id.tenant_id,
                &id.property_id,
                &id.room_type,
            ))
            .or_default()
            .push(write);
    }
    let mut commands: Vec<redis::ScriptInvocation<'static>> = Vec::new();
    for (key, writes) in by_hash {
        let mut invocation = NIGHTS.key(key);
        invocation.arg(freshness.arg()).arg(&source);
        for write in writes {
            invocation
                .arg(write.id.night.to_string())
                .arg(write.night.remaining())
                .arg(write.offset);
        }
        commands.push(invocation);
    }
    for booking in bookings {
        let mut invocation = BOOKING.key(keys::booking_status(booking.booking_id));
        invocation
            .arg(freshness.arg())
            .arg(&source)
            .arg(booking_offset(booking));
        for (field, value) in booking_fields(booking, partition, &source) {
            invocation.arg(field).arg(value);
        }
        commands.push(invocation);
    }
    for chunk in commands.chunks(IN_FLIGHT) {
        try_join_all(chunk.iter().map(|invocation| {
            let mut redis = redis.clone();
            async move { invocation.invoke_async::<()>(&mut redis).await }
        }))
        .await?;
    }
    Ok(())
}

/// Moves the checkpoint of `partition` of `topic` to `through` (removes it for `None`)
/// and returns the one it found.
pub async fn checkpoint(
    redis: &RedisConnection,
    (topic, partition): (&str, i32),
    through: Option<i64>,
    freshness: Freshness,
) -> Result<Option<i64>, RedisError> {
    let mut redis = redis.clone();
    CHECKPOINT
        .key(keys::projection_checkpoint(topic, partition))
        .arg(freshness.arg())
        .arg(through.map(|t| t.to_string()).unwrap_or_default())
        .invoke_async(&mut redis)
        .await
}

/// The offset of the last event applied to `booking`.
fn booking_offset(booking: &Booking) -> i64 {
    booking.history.last().map_or(-1, |h| h.offset)
}

fn booking_fields(booking: &Booking, partition: i32, source: &str) -> Vec<(&'static str, String)> {
    use keys::booking_field as field;
    vec![
        (field::STATUS, booking.status.as_str().to_owned()),
        (
            field::REASON,
            booking
                .reason
                .map(|r| r.as_str().to_owned())
                .unwrap_or_default(),
        ),
        (field::TENANT_ID, booking.tenant_id.clone()),
        (field::PARTNER_ID, booking.partner_id.clone()),
        (field::PROPERTY_ID, booking.property_id.clone()),
        (field::ROOM_TYPE, booking.stay.room_type.clone()),
        (field::CHECK_IN, booking.stay.check_in.to_string()),
        (field::CHECK_OUT, booking.stay.check_out.to_string()),
        (field::ROOMS, booking.stay.rooms.to_string()),
        (field::PARTITION, partition.to_string()),
        (field::OFFSET, booking_offset(booking).to_string()),
        (field::SOURCE, source.to_owned()),
    ]
}

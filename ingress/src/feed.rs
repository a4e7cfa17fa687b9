//! The decisions feed: `GET /v1/decisions` and `POST /v1/decisions/ack`, a partner's own
//! decisions in order, pulled and acknowledged, redelivered until acknowledged.
//!
//! `consumer feed` appends each decision to a Redis stream per partner it concerns
//! ([`partitioner::keys::feed`]); the authenticated partner's id names the stream, so no
//! partner can read another's. An entry's cursor is its stream id, opaque to partners: a
//! read returns the entries after a cursor, or, without one, after the partner's
//! acknowledged cursor, so what was not acknowledged comes back. An acknowledgement only
//! moves forward, and never past the newest entry. The stream is bounded: a read says
//! `gap` when entries after its position were dropped before they were acknowledged.
//! Each read and acknowledgement is one script, one round trip.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;
use std::sync::LazyLock;

use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::Full;
use partitioner::{keys, Decision, FieldError, Invalid};
use redis::{Script, Value};
use serde::{Deserialize, Serialize};

use crate::auth::Partner;
use crate::problem::ApiError;
use crate::redis_link::{RedisDown, RedisLink};
use crate::response::json_response;

/// Entries per read when the partner names no `limit`, and the most it may name.
pub const DEFAULT_LIMIT: usize = 100;
pub const MAX_LIMIT: usize = 1000;

/// KEYS: the stream, the acknowledged cursor; ARGV: the position ('' for the acknowledged
/// one), the count. Returns {entries, acknowledged, max-deleted-entry-id}.
static READ: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"local acknowledged = redis.call('GET', KEYS[2]) or ''
          local position = ARGV[1]
          if position == '' then position = acknowledged end
          local start = '-'
          if position ~= '' then start = '(' .. position end
          local entries = redis.call('XRANGE', KEYS[1], start, '+', 'COUNT', ARGV[2])
          local deleted = '0-0'
          if redis.call('EXISTS', KEYS[1]) == 1 then
            local info = redis.call('XINFO', 'STREAM', KEYS[1])
            for i = 1, #info, 2 do
              if info[i] == 'max-deleted-entry-id' then deleted = info[i + 1] end
            end
          end
          return {entries, acknowledged, deleted}",
    )
});

/// KEYS: the stream, the acknowledged cursor; ARGV: the cursor's two numbers. Moves the
/// acknowledged cursor forward to it; returns the acknowledged cursor after, or `beyond`
/// for a cursor past the newest entry (or any cursor of an empty feed): a reply, not an
/// error, since an error would count as Redis failing.
static ACKNOWLEDGE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"local function parse(id)
            local ms, seq = string.match(id or '', '^(%d+)-(%d+)$')
            return tonumber(ms), tonumber(seq)
          end
          local function after(a_ms, a_seq, b_ms, b_seq)
            return a_ms > b_ms or (a_ms == b_ms and a_seq > b_seq)
          end
          local ms, seq = tonumber(ARGV[1]), tonumber(ARGV[2])
          local newest = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)[1]
          if not newest then return 'beyond' end
          local n_ms, n_seq = parse(newest[1])
          if after(ms, seq, n_ms, n_seq) then return 'beyond' end
          local current = redis.call('GET', KEYS[2])
          local c_ms, c_seq = parse(current)
          if c_ms and not after(ms, seq, c_ms, c_seq) then return current end
          local cursor = ARGV[1] .. '-' .. ARGV[2]
          redis.call('SET', KEYS[2], cursor)
          return cursor",
    )
});

/// A position in a feed: a Redis stream id, `{milliseconds}-{sequence}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Cursor {
    ms: u64,
    seq: u64,
}

impl FromStr for Cursor {
    type Err = ();

    fn from_str(text: &str) -> Result<Cursor, ()> {
        let (ms, seq) = text.split_once('-').ok_or(())?;
        let number = |part: &str| {
            if part.is_empty() || part.len() > 20 || !part.bytes().all(|b| b.is_ascii_digit()) {
                return Err(());
            }
            part.parse::<u64>().map_err(|_| ())
        };
        Ok(Cursor {
            ms: number(ms)?,
            seq: number(seq)?,
        })
    }
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

/// The body of `GET /v1/decisions`.
#[derive(Debug, Serialize)]
pub struct Page {
    pub decisions: Vec<Entry>,
    /// The cursor to read on from: the last entry's, or the position read from when
    /// there was none (absent for a feed never read or acknowledged).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
    /// The partner's acknowledged cursor.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acknowledged: Option<String>,
    /// Entries after the position read from were dropped (the feed's bound) before they
    /// were acknowledged: the partner reconciles through `GET /v1/bookings/{id}`.
    pub gap: bool,
}

#[derive(Debug, Serialize)]
pub struct Entry {
    pub cursor: String,
    pub decision: Decision,
}

/// The body of `POST /v1/decisions/ack`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Acknowledgement {
    cursor: String,
}

#[derive(Debug, Serialize)]
struct Acknowledged {
    acknowledged: String,
}

/// `GET /v1/decisions?cursor=…&limit=…` for `partner`.
pub async fn read(
    redis: &RedisLink,
    partner: &Partner,
    query: Option<&str>,
) -> Result<Response<Full<Bytes>>, ApiError> {
    let (position, limit) = parse_query(query.unwrap_or_default())?;
    let stream = keys::feed(&partner.partner_id);
    let mut invocation = READ.key(&stream);
    invocation
        .key(keys::feed_acknowledged(&partner.partner_id))
        .arg(position.map(|c| c.to_string()).unwrap_or_default())
        .arg(limit);
    let reply: Value = redis
        .script(&stream, &invocation)
        .await
        .map_err(unavailable)?;
    let page = page(reply, position)?;
    Ok(json_response(StatusCode::OK, &page))
}

/// `POST /v1/decisions/ack` with `body` for `partner`.
pub async fn acknowledge(
    redis: &RedisLink,
    partner: &Partner,
    body: &[u8],
) -> Result<Response<Full<Bytes>>, ApiError> {
    let acknowledgement: Acknowledgement =
        serde_json::from_slice(body).map_err(|e| ApiError::MalformedJson(e.to_string()))?;
    let cursor: Cursor = acknowledgement
        .cursor
        .parse()
        .map_err(|()| invalid("cursor", "is not a cursor this feed gave"))?;
    let stream = keys::feed(&partner.partner_id);
    let mut invocation = ACKNOWLEDGE.key(&stream);
    invocation
        .key(keys::feed_acknowledged(&partner.partner_id))
        .arg(cursor.ms)
        .arg(cursor.seq);
    let acknowledged: String = redis
        .script(&stream, &invocation)
        .await
        .map_err(unavailable)?;
    if acknowledged == "beyond" {
        return Err(invalid(
            "cursor",
            "is past the newest decision of this feed",
        ));
    }
    Ok(json_response(
        StatusCode::OK,
        &Acknowledged { acknowledged },
    ))
}

fn unavailable(error: RedisDown) -> ApiError {
    ApiError::ProjectionsUnavailable(error.to_string())
}

fn invalid(field: &str, detail: &str) -> ApiError {
    ApiError::Invalid(Invalid {
        errors: vec![FieldError {
            field: field.to_owned(),
            detail: detail.to_owned(),
        }],
    })
}

/// `cursor` and `limit` from the query string; unknown parameters are refused.
fn parse_query(query: &str) -> Result<(Option<Cursor>, usize), ApiError> {
    let (mut cursor, mut limit) = (None, DEFAULT_LIMIT);
    let mut errors = Vec::new();
    for pair in query.split('&').filter(|pair| !pair.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let problem = match name {
            "cursor" => match value.parse::<Cursor>() {
                Ok(parsed) => {
                    cursor = Some(parsed);
                    None
                }
                Err(()) => Some("is not a cursor this feed gave"),
            },
            "limit" => match value.parse::<usize>() {
                Ok(n) if (1..=MAX_LIMIT).contains(&n) => {
                    limit = n;
                    None
                }
                _ => Some("must be a whole number from 1 to 1000"),
            },
            _ => Some("unknown query parameter"),
        };
        if let Some(detail) = problem {
            errors.push(FieldError {
                field: name.to_owned(),
                detail: detail.to_owned(),
            });
        }
    }
    if errors.is_empty() {
        Ok((cursor, limit))
    } else {
        Err(ApiError::Invalid(Invalid { errors }))
    }
}

/// The page a read script answered, read from `position` (the acknowledged cursor when
/// `None`).
fn page(reply: Value, position: Option<Cursor>) -> Result<Page, ApiError> {
    let malformed = || ApiError::Internal("unexpected reply of the feed read script".into());
    let Value::Array(parts) = reply else {
        return Err(malformed());
    };
    let [entries, acknowledged, deleted] =
        <[Value; 3]>::try_from(parts).map_err(|_| malformed())?;
    let acknowledged = text(acknowledged).filter(|a| !a.is_empty());
    let deleted: Option<Cursor> = text(deleted).and_then(|d| d.parse().ok());
    let from = position.or_else(|| acknowledged.as_deref().and_then(|a| a.parse().ok()));
    let Value::Array(entries) = entries else {
        return Err(malformed());
    };
    let mut decisions = Vec::with_capacity(entries.len());
    for entry in entries {
        let (cursor, payload) = entry_of(entry).ok_or_else(malformed)?;
        let decision = serde_json::from_str(&payload).map_err(|e| {
            ApiError::Internal(format!("feed entry {cursor} is not a decision: {e}"))
        })?;
        decisions.push(Entry { cursor, decision });
    }
    let zero = Cursor { ms: 0, seq: 0 };
    let gap =
        deleted.is_some_and(|deleted| deleted.cmp(&from.unwrap_or(zero)) == Ordering::Greater);
    let next_cursor = decisions
        .last()
        .map(|entry| entry.cursor.clone())
        .or_else(|| from.map(|c| c.to_string()));
    Ok(Page {
        decisions,
        next_cursor,
        acknowledged,
        gap,
    })
}

/// An entry `[id, [field, value, …]]`: its id and its decision's JSON.
fn entry_of(entry: Value) -> Option<(String, String)> {
    let Value::Array(parts) = entry else {
        return None;
    };
    let [id, fields] = <[Value; 2]>::try_from(parts).ok()?;
    let Value::Array(fields) = fields else {
        return None;
    };
    let mut fields = fields.into_iter();
    while let (Some(name), Some(value)) = (fields.next(), fields.next()) {
        if text(name).as_deref() == Some(keys::FEED_DECISION_FIELD) {
            return Some((text(id)?, text(value)?));
        }
    }
    None
}

fn text(value: Value) -> Option<String> {
    match value {
        Value::BulkString(bytes) => String::from_utf8(bytes).ok(),
        Value::SimpleString(text) => Some(text),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_are_stream_ids_compared_as_numbers() {
        let early: Cursor = "999-5".parse().unwrap();
        let late: Cursor = "1000-0".parse().unwrap();
        assert!(early < late);
        assert_eq!(late.to_string(), "1000-0");
        for bad in [
            "",
            "1",
            "1-",
            "-1",
            "a-1",
            "1-2-3",
            "+",
            "1-1 ",
            "99999999999999999999999-0",
        ] {
            assert!(bad.parse::<Cursor>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_query_names_a_cursor_and_a_bounded_limit() {
        assert_eq!(parse_query("").unwrap(), (None, DEFAULT_LIMIT));
        let (cursor, limit) = parse_query("cursor=17-2&limit=5").unwrap();
        assert_eq!((cursor.unwrap().to_string(), limit), ("17-2".to_owned(), 5));
        for bad in ["limit=0", "limit=1001", "limit=x", "cursor=x", "from=1-0"] {
            assert!(
                matches!(parse_query(bad), Err(ApiError::Invalid(_))),
                "{bad}"
            );
        }
    }

    fn bulk(text: &str) -> Value {
        Value::BulkString(text.as_bytes().to_vec())
    }

    fn decision_json() -> String {
        r#"{"event_id":"00000000-0000-0000-0000-000000000001","tenant_id":"acme",
            "property_id":"p1","event_type":"create_booking","outcome":"confirmed",
            "partition":1,"offset":2,"partner_id":"ota-1"}"#
            .to_owned()
    }

    #[test]
    fn a_page_reads_entries_and_says_when_some_were_dropped_unacknowledged() {
        let entry = |id: &str| {
            Value::Array(vec![
                bulk(id),
                Value::Array(vec![bulk("decision"), bulk(&decision_json())]),
            ])
        };
        let reply = |deleted: &str| {
            Value::Array(vec![
                Value::Array(vec![entry("5-0"), entry("6-0")]),
                bulk("4-0"),
                bulk(deleted),
            ])
        };
        let read = page(reply("0-0"), None).unwrap();
        assert_eq!(read.decisions.len(), 2);
        assert_eq!(read.decisions[0].cursor, "5-0");
        assert_eq!(read.next_cursor.as_deref(), Some("6-0"));
        assert_eq!(read.acknowledged.as_deref(), Some("4-0"));
        assert!(!read.gap);
        assert!(
            !page(reply("3-9"), None).unwrap().gap,
            "dropped after being acknowledged"
        );
        assert!(
            page(reply("4-1"), None).unwrap().gap,
            "dropped unacknowledged"
        );
        let empty = Value::Array(vec![Value::Array(vec![]), bulk(""), bulk("0-0")]);
        let read = page(empty, None).unwrap();
        assert!(read.decisions.is_empty() && read.next_cursor.is_none() && !read.gap);
    }
}

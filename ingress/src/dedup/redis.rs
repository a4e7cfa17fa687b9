//! The shared tier: idempotency records in Redis, one string key per partner and key.
//!
//! A claim is one Lua script (`SET NX PX`, else `GET`), so claiming and learning who holds
//! the key is a single atomic round trip. Records are JSON; an in-flight marker carries a
//! random token so that releasing deletes only the releaser's own marker, never a record a
//! later request has written since.

use std::sync::LazyLock;
use std::time::Duration;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::{Record, StoredFingerprint, StoredResponse};
use crate::redis_link::{RedisDown, RedisLink};

/// Sets the marker when the key is free (answering nil), else answers the current record.
static CLAIM: LazyLock<::redis::Script> = LazyLock::new(|| {
    ::redis::Script::new(
        r"if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return false end
          return redis.call('GET', KEYS[1])",
    )
});

/// Deletes the key only while it still holds the caller's own marker.
static RELEASE: LazyLock<::redis::Script> = LazyLock::new(|| {
    ::redis::Script::new(
        r"if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
          return 0",
    )
});

#[derive(Serialize, Deserialize)]
struct Wire {
    /// The route-and-body digest earlier builds compare ([`super::fingerprint`]).
    fp: String,
    /// The validated command's fingerprint; absent in records of earlier builds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cmd: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    status: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    body: Option<String>,
}

pub(super) fn encode(record: &Record) -> String {
    let wire = match record {
        Record::InFlight { fingerprint, token } => Wire {
            fp: fingerprint.legacy.clone(),
            cmd: fingerprint.command.clone(),
            token: Some(token.clone()),
            status: None,
            body: None,
        },
        Record::Completed {
            fingerprint,
            response,
        } => Wire {
            fp: fingerprint.legacy.clone(),
            cmd: fingerprint.command.clone(),
            token: None,
            status: Some(response.status),
            body: Some(String::from_utf8_lossy(&response.body).into_owned()),
        },
    };
    serde_json::to_string(&wire).expect("a record always serializes")
}

/// Reads a stored record; one we cannot read is treated as absent, which at worst lets a
/// duplicate through to the consumers' own duplicate check.
pub(super) fn decode(text: &str) -> Option<Record> {
    let wire: Wire = serde_json::from_str(text).ok()?;
    let fingerprint = StoredFingerprint {
        command: wire.cmd,
        legacy: wire.fp,
    };
    Some(match (wire.status, wire.body, wire.token) {
        (Some(status), Some(body), _) => Record::Completed {
            fingerprint,
            response: StoredResponse {
                status,
                body: Bytes::from(body),
            },
        },
        (_, _, Some(token)) => Record::InFlight { fingerprint, token },
        _ => return None,
    })
}

/// Claims `key` with `marker` for `lock`; `None` means the claim succeeded.
pub(super) async fn claim(
    link: &RedisLink,
    key: &str,
    marker: &Record,
    lock: Duration,
) -> Result<Option<Record>, RedisDown> {
    let mut invocation = CLAIM.prepare_invoke();
    invocation
        .key(key)
        .arg(encode(marker))
        .arg(lock.as_millis().max(1) as u64);
    let held: Option<String> = link.script(key, &invocation).await?;
    Ok(held.as_deref().and_then(decode))
}

pub(super) async fn store(
    link: &RedisLink,
    key: &str,
    record: &Record,
    ttl: Duration,
) -> Result<(), RedisDown> {
    let mut cmd = ::redis::cmd("SET");
    cmd.arg(key)
        .arg(encode(record))
        .arg("PX")
        .arg(ttl.as_millis().max(1) as u64);
    link.query::<()>(key, &cmd).await
}

pub(super) async fn release(link: &RedisLink, key: &str, marker: &Record) -> Result<(), RedisDown> {
    let mut invocation = RELEASE.prepare_invoke();
    invocation.key(key).arg(encode(marker));
    link.script::<i64>(key, &invocation).await.map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_survive_the_wire() {
        let records = [
            Record::InFlight {
                fingerprint: StoredFingerprint {
                    command: Some("cmd1:f1".into()),
                    legacy: "f1".into(),
                },
                token: "t1".into(),
            },
            Record::Completed {
                fingerprint: StoredFingerprint {
                    command: None,
                    legacy: "f2".into(),
                },
                response: StoredResponse {
                    status: 202,
                    body: Bytes::from_static(br#"{"status":"accepted"}"#),
                },
            },
        ];
        for record in records {
            assert_eq!(decode(&encode(&record)), Some(record));
        }
        // An earlier build reads `fp` and ignores `cmd`.
        let both = StoredFingerprint {
            command: Some("cmd1:x".into()),
            legacy: "x".into(),
        };
        let marker = encode(&Record::InFlight {
            fingerprint: both,
            token: "t".into(),
        });
        let earlier: serde_json::Value = serde_json::from_str(&marker).unwrap();
        assert_eq!(earlier["fp"], "x");
        assert_eq!(decode("not json"), None);
        assert_eq!(decode(r#"{"fp":"f"}"#), None);
    }
}

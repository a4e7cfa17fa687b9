//! The request fingerprint an idempotency record is checked against.
//!
//! Two requests are "the same" when they validate to the same command
//! ([`partitioner::Fingerprint`]): key order, whitespace, `2` against `2.0`, `null` against
//! an absent field or the case of a UUID in the path are a client's serialiser's
//! business, not a change of intent. The consumers compare the same digest when an event
//! id comes back, so the ingress and the store agree on what a resend is.
//!
//! Builds before the command fingerprint stored, as `fp`, a digest of the route and the
//! canonical JSON body. So that a retry stays a retry across a rolling upgrade and a
//! rollback, records carry both for now: `fp` keeps the earlier digest, which earlier
//! builds compare, and `cmd` the command's, which this build compares; a record without
//! `cmd` (an earlier build's) is compared the old way. Drop `fp` once no earlier build can
//! run beside this one and the records it wrote have expired (`INGRESS_IDEMPOTENCY_TTL_SECS`).

use partitioner::{Command, Fingerprint};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// Marks a fingerprint of the validated command.
const COMMAND_SCHEME: &str = "cmd1:";

/// The fingerprints a record carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredFingerprint {
    /// The validated command's; absent in records of earlier builds.
    pub command: Option<String>,
    /// The route and canonical body's, which earlier builds compare.
    pub legacy: String,
}

/// A request's fingerprints, to store and to compare with a stored record.
#[derive(Clone, Debug)]
pub struct RequestFingerprint {
    pub command: String,
    legacy: String,
}

impl RequestFingerprint {
    pub fn new(command: &Command, method: &str, path: &str, body: &[u8]) -> Self {
        Self::with(&command.fingerprint(), method, path, body)
    }

    /// The same, from the command's fingerprint computed already.
    pub fn with(command: &Fingerprint, method: &str, path: &str, body: &[u8]) -> Self {
        RequestFingerprint {
            command: format!("{COMMAND_SCHEME}{command}"),
            legacy: legacy_fingerprint(method, path, body),
        }
    }

    /// The fingerprint of a request made of several commands (an OpenTravel inventory
    /// message's allotments), in their order.
    pub fn with_all(commands: &[Fingerprint], method: &str, path: &str, body: &[u8]) -> Self {
        if let [command] = commands {
            return Self::with(command, method, path, body);
        }
        let mut hasher = Sha256::new();
        for command in commands {
            hasher.update(command.to_string().as_bytes());
            hasher.update(b"\n");
        }
        RequestFingerprint {
            command: format!("{COMMAND_SCHEME}all:{}", hex::encode(hasher.finalize())),
            legacy: legacy_fingerprint(method, path, body),
        }
    }

    /// A fingerprint named `name`, for tests of the tiers that need no real command.
    #[cfg(test)]
    pub(crate) fn named(name: &str) -> Self {
        RequestFingerprint {
            command: format!("{COMMAND_SCHEME}{name}"),
            legacy: format!("legacy-{name}"),
        }
    }

    /// What a record made by this request carries.
    pub fn stored(&self) -> StoredFingerprint {
        StoredFingerprint {
            command: Some(self.command.clone()),
            legacy: self.legacy.clone(),
        }
    }

    /// Whether the record with `stored` was made by the same request: by the command
    /// when the record has one, else the way the build that wrote it compared.
    pub fn matches(&self, stored: &StoredFingerprint) -> bool {
        match &stored.command {
            Some(command) => *command == self.command,
            None => stored.legacy == self.legacy,
        }
    }
}

/// The digest of earlier builds: lowercase hex SHA-256 of `method path` and the canonical
/// body (object keys sorted, no insignificant whitespace).
///
/// The canonical form is serde_json's compact output of the parsed value: its maps keep
/// keys in sorted order (this build does not enable `preserve_order`; the key-order test
/// below fails if a dependency ever does). It is written into one buffer the size of the
/// body and digested at once: fed to the digest piece by piece, the serializer's many
/// small writes cost more than the buffer.
pub fn legacy_fingerprint(method: &str, path: &str, body: &[u8]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(method.as_bytes());
    hasher.update(b" ");
    hasher.update(path.as_bytes());
    hasher.update(b"\n");
    match serde_json::from_slice::<Value>(body) {
        Ok(value) => {
            let mut canonical = Vec::with_capacity(body.len());
            serde_json::to_writer(&mut canonical, &value)
                .expect("a parsed value always serializes");
            hasher.update(&canonical);
        }
        Err(_) => hasher.update(body),
    }
    Fingerprint::from_slice(&hasher.finalize())
        .expect("SHA-256 digests are 32 bytes")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_key_order_and_whitespace_do_not_matter() {
        let a = br#"{"b": 1, "a": {"y": [1, 2], "x": "s"}}"#;
        let b = br#"{"a":{"x":"s","y":[1,2]},"b":1}"#;
        assert_eq!(
            legacy_fingerprint("POST", "/v1/bookings", a),
            legacy_fingerprint("POST", "/v1/bookings", b)
        );
        let canonical = br#"{"a":{"x":"s","y":[1,2]},"b":1}"#;
        let mut digest = Sha256::new();
        digest.update(b"POST /v1/bookings\n");
        digest.update(canonical);
        assert_eq!(
            legacy_fingerprint("POST", "/v1/bookings", a),
            hex::encode(digest.finalize())
        );
    }

    fn create(body: &str) -> Command {
        let request: partitioner::BookingRequest = serde_json::from_str(body).unwrap();
        request.into_create(uuid::Uuid::nil()).unwrap()
    }

    const BODY: &str = r#"{"tenant_id":"acme","property_id":"p1","room_type":"DBL",
        "check_in":"2030-01-01","check_out":"2030-01-03","rooms":2,"guests":2,
        "amount_minor":100,"currency":"EUR"}"#;

    #[test]
    fn requests_that_validate_alike_match() {
        let stored =
            RequestFingerprint::new(&create(BODY), "POST", "/v1/bookings", BODY.as_bytes())
                .stored();
        let same = BODY.replace(r#""rooms":2"#, r#""rooms":2.0"#);
        let fingerprint =
            RequestFingerprint::new(&create(&same), "POST", "/v1/bookings", same.as_bytes());
        assert!(fingerprint.matches(&stored));
        let other = BODY.replace(r#""rooms":2"#, r#""rooms":1"#);
        let other =
            RequestFingerprint::new(&create(&other), "POST", "/v1/bookings", other.as_bytes());
        assert!(!other.matches(&stored));
    }

    #[test]
    fn records_keep_the_earlier_digest_and_earlier_records_are_compared_with_it() {
        let request =
            RequestFingerprint::new(&create(BODY), "POST", "/v1/bookings", BODY.as_bytes());
        // What an earlier build reads from a record of this one: its own digest.
        assert_eq!(
            request.stored().legacy,
            legacy_fingerprint("POST", "/v1/bookings", BODY.as_bytes())
        );
        // A record an earlier build wrote: compared the old way.
        let earlier = StoredFingerprint {
            command: None,
            legacy: legacy_fingerprint("POST", "/v1/bookings", BODY.as_bytes()),
        };
        assert!(request.matches(&earlier));
        let other = BODY.replace(r#""rooms":2"#, r#""rooms":1"#);
        let other =
            RequestFingerprint::new(&create(&other), "POST", "/v1/bookings", other.as_bytes());
        assert!(!other.matches(&earlier));
    }

    #[test]
    fn the_digest_is_stable_across_releases() {
        // Stored records are compared by this value: any change to the canonical form or
        // the encoding would make every partner's retry after an upgrade a 422.
        let body = br#"{"b": 1, "a": "x\"y"}"#;
        assert_eq!(
            legacy_fingerprint("POST", "/v1/bookings", body),
            "12ce54741213764c262c6edfa42f791b93b171cdaf5e63ada915fe6b2c4665f0"
        );
    }

    #[test]
    fn nested_bodies_digest_as_a_sorted_compact_json_would() {
        // The expected digest is Python's: sha256 of "POST /v1/bookings\n" and
        // json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).
        let body = r#"{"rooms": 2, "guest": {"tags": ["b", "a"], "name": "Zoë"},
            "amount": 2.5, "ok": true, "note": null}"#;
        assert_eq!(
            legacy_fingerprint("POST", "/v1/bookings", body.as_bytes()),
            "5383b49a9c6bf64713e77f5f48deb6f45bc0411a0c855bd3f5a3e70d3aff071c"
        );
    }

    #[test]
    fn route_and_values_do_matter() {
        let body = br#"{"rooms": 1}"#;
        let base = legacy_fingerprint("POST", "/v1/bookings", body);
        assert_ne!(base, legacy_fingerprint("PUT", "/v1/bookings", body));
        assert_ne!(base, legacy_fingerprint("POST", "/v1/inventory", body));
        assert_ne!(
            base,
            legacy_fingerprint("POST", "/v1/bookings", br#"{"rooms": 2}"#)
        );
        assert_ne!(
            base,
            legacy_fingerprint("POST", "/v1/bookings", br#"{"rooms": [1]}"#)
        );
        assert_eq!(base.len(), 64);
    }
}

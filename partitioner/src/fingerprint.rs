//! What a request asked for, as a digest: the same for every request that validates to the
//! same command, different for any other.
//!
//! The ingress checks a replayed `Idempotency-Key` against it, and the consumers keep it
//! with every applied event id, so an event that arrives with an id already applied can be
//! told apart: the same command again (a resend, answered with the first decision) or
//! another command under a reused key (rejected). Hashing the validated command rather than
//! the request bytes makes `2` and `2.0`, key order, whitespace and UUID case irrelevant.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};

use crate::event::{Command, Envelope, Event};

/// SHA-256 over the canonical JSON of (tenant, property, event).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint([u8; 32]);

/// What is hashed. The event's serialization is canonical: fields in declaration order,
/// dates as `YYYY-MM-DD`, amounts as integers, and optional fields left out when absent.
#[derive(Serialize)]
struct Hashed<'a> {
    tenant_id: &'a str,
    property_id: &'a str,
    event: &'a Event,
}

impl Fingerprint {
    pub fn of(tenant_id: &str, property_id: &str, event: &Event) -> Fingerprint {
        let hashed = Hashed {
            tenant_id,
            property_id,
            event,
        };
        let json = serde_json::to_vec(&hashed).expect("an event always serializes");
        Fingerprint(Sha256::digest(&json).into())
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// A stored fingerprint; `None` unless it is exactly 32 bytes.
    pub fn from_slice(bytes: &[u8]) -> Option<Fingerprint> {
        bytes.try_into().ok().map(Fingerprint)
    }
}

impl fmt::Display for Fingerprint {
    /// Lowercase hex, encoded on the stack: every mutation formats its fingerprint.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut text = [0u8; 64];
        hex::encode_to_slice(self.0, &mut text).expect("32 bytes are 64 hex digits");
        f.write_str(std::str::from_utf8(&text).expect("hex digits are ASCII"))
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

/// Stored as its hex string, as readable in a staged batch as in a log line.
impl Serialize for Fingerprint {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Fingerprint {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(text.as_bytes(), &mut bytes)
            .map_err(|_| serde::de::Error::custom("a fingerprint is 64 hex digits"))?;
        Ok(Fingerprint(bytes))
    }
}

impl Command {
    pub fn fingerprint(&self) -> Fingerprint {
        Fingerprint::of(&self.tenant_id, &self.property_id, &self.event)
    }
}

impl Envelope {
    /// The fingerprint of the command this event carries: who sent it and when are not
    /// part of it.
    pub fn fingerprint(&self) -> Fingerprint {
        Fingerprint::of(&self.tenant_id, &self.property_id, &self.event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::BookingRequest;
    use uuid::Uuid;

    fn command(body: &str) -> Command {
        let request: BookingRequest = serde_json::from_str(body).unwrap();
        request.into_create(Uuid::nil()).unwrap()
    }

    const BODY: &str = r#"{"tenant_id":"acme","property_id":"p1","room_type":"DBL",
        "check_in":"2030-01-01","check_out":"2030-01-03","rooms":2,"guests":2,
        "amount_minor":100,"currency":"EUR"}"#;

    #[test]
    fn is_pinned() {
        // Fingerprints are stored by the consumers and in idempotency records and compared
        // across releases: the same command must hash the same in every build.
        assert_eq!(
            command(BODY).fingerprint().to_string(),
            "6ce3929e8fb23ba56255aa283d9b26dc393fa44c5e7d63e837bb5cc9f000ee8d"
        );
    }

    #[test]
    fn equal_requests_are_equal() {
        let spellings = [
            BODY.replace(r#""rooms":2"#, r#""rooms":2.0"#),
            BODY.replace(r#""rooms":2"#, r#""rooms":2e0"#),
            BODY.replace(
                r#""currency":"EUR""#,
                r#""currency":"EUR","guest_name":null"#,
            ),
        ];
        for body in spellings {
            assert_eq!(
                command(&body).fingerprint(),
                command(BODY).fingerprint(),
                "{body}"
            );
        }
    }

    #[test]
    fn layout_does_not_matter() {
        let reordered = r#"{ "currency":"EUR", "amount_minor":100, "guests":2, "rooms":2,
            "check_out":"2030-01-03", "check_in":"2030-01-01", "room_type":"DBL",
            "property_id":"p1", "tenant_id":"acme" }"#;
        assert_eq!(
            command(BODY).fingerprint(),
            command(reordered).fingerprint()
        );
    }

    #[test]
    fn any_change_of_the_command_changes_it() {
        let base = command(BODY).fingerprint();
        for (from, to) in [
            (r#""rooms":2"#, r#""rooms":1"#),
            (r#""check_out":"2030-01-03""#, r#""check_out":"2030-01-04""#),
            (r#""property_id":"p1""#, r#""property_id":"p2""#),
            (r#""amount_minor":100"#, r#""amount_minor":101"#),
        ] {
            assert_ne!(command(&BODY.replace(from, to)).fingerprint(), base, "{to}");
        }
    }

    #[test]
    fn reads_back_what_it_stored() {
        let fingerprint = command(BODY).fingerprint();
        assert_eq!(
            Fingerprint::from_slice(fingerprint.as_bytes()),
            Some(fingerprint)
        );
        assert_eq!(Fingerprint::from_slice(&[0; 31]), None);
    }

    #[test]
    fn reads_its_hex_and_refuses_anything_else() {
        let fingerprint = command(BODY).fingerprint();
        let json = serde_json::to_string(&fingerprint).unwrap();
        assert_eq!(
            serde_json::from_str::<Fingerprint>(&json).unwrap(),
            fingerprint
        );
        // 64 bytes, but not 64 hex digits: refused, never a panic on a character boundary.
        let multibyte = format!("\"a{}a\"", "é".repeat(31));
        for bad in [multibyte.as_str(), "\"00\"", &json.replace('0', "g")] {
            assert!(serde_json::from_str::<Fingerprint>(bad).is_err(), "{bad}");
        }
    }
}

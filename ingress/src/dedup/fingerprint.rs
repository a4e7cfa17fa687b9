//! The request fingerprint an idempotency record is checked against.
//!
//! Two requests are "the same" when they target the same route and carry the same JSON
//! value: key order and whitespace are a client's serialiser's business, not a change of
//! intent. So the body is parsed and written back canonically (object keys sorted, no
//! insignificant whitespace) before hashing, independent of serde_json's map ordering
//! features.

use serde_json::Value;
use sha2::{Digest, Sha256};

/// Lowercase hex SHA-256 of `method path` and the canonical body. A body that is not JSON
/// is hashed as it is; such a request never gets this far in the handler anyway.
pub fn fingerprint(method: &str, path: &str, body: &[u8]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(method.as_bytes());
    hasher.update(b" ");
    hasher.update(path.as_bytes());
    hasher.update(b"\n");
    match serde_json::from_slice::<Value>(body) {
        Ok(value) => hasher.update(canonical_json(&value).as_bytes()),
        Err(_) => hasher.update(body),
    }
    hex::encode(hasher.finalize())
}

/// `value` as compact JSON with every object's keys in sorted order.
pub fn canonical_json(value: &Value) -> String {
    let mut out = String::new();
    write(value, &mut out);
    out
}

fn write(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (key, value)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&serde_json::to_string(key).expect("a string always serializes"));
                out.push(':');
                write(value, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_order_and_whitespace_do_not_matter() {
        let a = br#"{"b": 1, "a": {"y": [1, 2], "x": "s"}}"#;
        let b = br#"{"a":{"x":"s","y":[1,2]},"b":1}"#;
        assert_eq!(
            fingerprint("POST", "/v1/bookings", a),
            fingerprint("POST", "/v1/bookings", b)
        );
        let value: Value = serde_json::from_slice(a).unwrap();
        assert_eq!(canonical_json(&value), r#"{"a":{"x":"s","y":[1,2]},"b":1}"#);
    }

    #[test]
    fn the_digest_is_stable_across_releases() {
        // Stored records are compared by this value: any change to the canonical form or
        // the encoding would make every partner's retry after an upgrade a 422.
        let body = br#"{"b": 1, "a": "x\"y"}"#;
        assert_eq!(
            fingerprint("POST", "/v1/bookings", body),
            "12ce54741213764c262c6edfa42f791b93b171cdaf5e63ada915fe6b2c4665f0"
        );
    }

    #[test]
    fn route_and_values_do_matter() {
        let body = br#"{"rooms": 1}"#;
        let base = fingerprint("POST", "/v1/bookings", body);
        assert_ne!(base, fingerprint("PUT", "/v1/bookings", body));
        assert_ne!(base, fingerprint("POST", "/v1/inventory", body));
        assert_ne!(
            base,
            fingerprint("POST", "/v1/bookings", br#"{"rooms": 2}"#)
        );
        assert_ne!(
            base,
            fingerprint("POST", "/v1/bookings", br#"{"rooms": [1]}"#)
        );
        assert_eq!(base.len(), 64);
    }
}

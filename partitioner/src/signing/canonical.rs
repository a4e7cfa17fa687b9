//! The signed message and the two signature headers, as partners must build them.
//!
//! ```text
//! X-Signature-Timestamp: <unix time in whole seconds>
//! X-Signature: v2=<lowercase hex HMAC-SHA256(secret, canonical string)>
//!
//! canonical string (v2) = "v2" LF timestamp LF METHOD LF path-and-query LF
//!                         idempotency-key LF hex(SHA-256(body))
//! canonical string (v1) = "v1" LF timestamp LF METHOD LF path-and-query LF
//!                         hex(SHA-256(body))
//! ```
//!
//! `path-and-query` is the request target exactly as sent on the request line (for
//! `POST /v1/bookings?x=1 HTTP/1.1` it is `/v1/bookings?x=1`), so nothing is normalised
//! and both sides agree byte for byte. `idempotency-key` is the `Idempotency-Key` header's
//! value as sent, empty when the request has none (reads): v2 covers it because it changes
//! what a mutation means (which booking a create makes), so a captured request cannot be
//! sent again under another key. v1, which does not cover it, is still accepted for
//! partners that have not moved; each signature of either scheme is accepted once by the
//! whole deployment (the ingress keeps a record of those it has seen). The body enters as its SHA-256, so the canonical
//! string stays short and line-based whatever the body holds; an empty body hashes to
//! `e3b0c442…b855`. The version prefix lets schemes coexist.
//!
//! The fuzz target `fuzz/fuzz_targets/signature_headers.rs` compiles this file on its own,
//! by path, so it must keep to `http`, `sha2` and `hex` and use nothing else of the crate.

use http::HeaderName;
use sha2::{Digest, Sha256};

pub static X_SIGNATURE: HeaderName = HeaderName::from_static("x-signature");
pub static X_SIGNATURE_TIMESTAMP: HeaderName = HeaderName::from_static("x-signature-timestamp");

/// A signing scheme: it names both the header prefix and the canonical string's first
/// line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    /// Without the Idempotency-Key; accepted for partners that have not moved to v2.
    V1,
    /// With the Idempotency-Key.
    V2,
}

impl Scheme {
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::V1 => "v1",
            Scheme::V2 => "v2",
        }
    }
}

/// The parts of a request a signature covers.
#[derive(Clone, Copy, Debug)]
pub struct Signed<'a> {
    pub timestamp: i64,
    pub method: &'a str,
    pub path_and_query: &'a str,
    /// The `Idempotency-Key` value as sent; empty when there is none.
    pub idempotency_key: &'a str,
    pub body: &'a [u8],
}

/// The bytes a partner signs under `scheme`.
pub fn canonical_string(scheme: Scheme, request: &Signed<'_>) -> String {
    let Signed {
        timestamp,
        method,
        path_and_query,
        idempotency_key,
        body,
    } = request;
    let body_sha256 = hex::encode(Sha256::digest(body));
    let version = scheme.as_str();
    match scheme {
        Scheme::V1 => format!("{version}\n{timestamp}\n{method}\n{path_and_query}\n{body_sha256}"),
        Scheme::V2 => format!(
            "{version}\n{timestamp}\n{method}\n{path_and_query}\n{idempotency_key}\n{body_sha256}"
        ),
    }
}

/// HTTP's optional whitespace around a field value (RFC 9110 section 5.6.3): spaces and
/// tabs only. `str::trim` would also drop Unicode spaces such as U+00A0, which a header
/// may carry as obs-text and which no partner's signing code produces.
const OWS: [char; 2] = [' ', '\t'];

/// The scheme and MAC of `X-Signature: v1=<64 hex digits>` or `v2=…` (hex in either
/// case); `None` for anything else, including other schemes and extra parts.
pub fn parse_signature(value: &[u8]) -> Option<(Scheme, [u8; 32])> {
    let value = std::str::from_utf8(value).ok()?.trim_matches(OWS);
    let (scheme, hex_mac) = value.split_once('=')?;
    let scheme = match scheme {
        "v1" => Scheme::V1,
        "v2" => Scheme::V2,
        _ => return None,
    };
    if hex_mac.len() != 64 {
        return None;
    }
    let mut mac = [0u8; 32];
    hex::decode_to_slice(hex_mac, &mut mac).ok()?;
    Some((scheme, mac))
}

/// `X-Signature-Timestamp`: decimal unix seconds, at most 12 digits (no sign, no
/// fraction), so a year-3000 value still fits and garbage is refused early.
pub fn parse_timestamp(value: &[u8]) -> Option<i64> {
    let digits = std::str::from_utf8(value).ok()?.trim_matches(OWS);
    if digits.is_empty() || digits.len() > 12 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request<'a>(method: &'a str, path: &'a str, key: &'a str, body: &'a [u8]) -> Signed<'a> {
        Signed {
            timestamp: 1_700_000_000,
            method,
            path_and_query: path,
            idempotency_key: key,
            body,
        }
    }

    #[test]
    fn canonical_strings_are_the_documented_layout() {
        let create = request("POST", "/v1/bookings?dry=1", "order-42", b"{}");
        let body = "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";
        assert_eq!(
            canonical_string(Scheme::V1, &create),
            format!("v1\n1700000000\nPOST\n/v1/bookings?dry=1\n{body}")
        );
        assert_eq!(
            canonical_string(Scheme::V2, &create),
            format!("v2\n1700000000\nPOST\n/v1/bookings?dry=1\norder-42\n{body}")
        );
        let read = canonical_string(Scheme::V2, &request("GET", "/v1/bookings/x", "", b""));
        assert!(read.ends_with(
            "/v1/bookings/x\n\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        ));
    }

    #[test]
    fn signature_header_is_a_known_scheme_and_64_hex_digits() {
        let hex_mac = "0f".repeat(32);
        assert_eq!(
            parse_signature(format!("v1={hex_mac}").as_bytes()),
            Some((Scheme::V1, [0x0f; 32]))
        );
        assert_eq!(
            parse_signature(format!("v2={hex_mac}").as_bytes()),
            Some((Scheme::V2, [0x0f; 32]))
        );
        let upper = format!(" v1={} ", hex_mac.to_uppercase());
        assert_eq!(
            parse_signature(upper.as_bytes()),
            Some((Scheme::V1, [0x0f; 32]))
        );
        for bad in [
            String::new(),
            hex_mac.clone(),
            format!("v3={hex_mac}"),
            format!("V1={hex_mac}"),
            format!("v1={}", &hex_mac[2..]),
            format!("v1={hex_mac}00"),
            format!("v1={}zz", &hex_mac[2..]),
            format!("v1={hex_mac},v1={hex_mac}"),
            // Only spaces and tabs are optional whitespace (found by fuzzing).
            format!("\u{a0}v1={hex_mac}"),
            format!("v1={hex_mac}\u{3000}"),
            format!("\rv1={hex_mac}"),
        ] {
            assert_eq!(parse_signature(bad.as_bytes()), None, "{bad:?}");
        }
    }

    #[test]
    fn timestamp_is_plain_unix_seconds() {
        assert_eq!(parse_timestamp(b"1700000000"), Some(1_700_000_000));
        assert_eq!(parse_timestamp(b" 0 "), Some(0));
        assert_eq!(parse_timestamp(b"\t1700000000\t"), Some(1_700_000_000));
        for bad in [
            &b""[..],
            b"-5",
            b"+5",
            b"1.5",
            b"1e9",
            b"1700000000000",
            b"abc",
            // Only spaces and tabs are optional whitespace (found by fuzzing).
            b"\r3\r",
            "\u{a0}1700000000".as_bytes(),
            "1700000000\u{85}".as_bytes(),
        ] {
            assert_eq!(parse_timestamp(bad), None, "{bad:?}");
        }
    }
}

//! The signature headers and the canonical string (`partitioner/src/signing/canonical.rs`)
//! against arbitrary header bytes and request parts.
//!
//! The module is compiled in by path rather than through the `ingress` crate: it needs
//! only `http`, `sha2` and `hex`, while building the whole ingress (librdkafka, tokio,
//! hyper, redis) under coverage instrumentation would cost CI minutes for nothing this
//! target reaches.
//!
//! The input is lines: the `X-Signature` value, the `X-Signature-Timestamp` value, the
//! method, the path and query, the Idempotency-Key, and the rest is the body (so seeds are
//! readable requests).
//!
//! Property: the parsers never panic and accept exactly the documented shapes, checked
//! against a plain restatement of the rules: `X-Signature` is `v1=` or `v2=` and 64 hex digits,
//! `X-Signature-Timestamp` 1 to 12 decimal digits, each with optional spaces or tabs
//! around it (HTTP's optional whitespace) and nothing else. A MAC printed as the header
//! parses back to itself. Each scheme's canonical string splits back into exactly its parts,
//! so two different requests never share one; that needs a method, path and key without a
//! line feed, which the HTTP request line and a header cannot carry (and which, here, are
//! lines).
#![no_main]

#[allow(dead_code)]
#[path = "../../partitioner/src/signing/canonical.rs"]
mod canonical;

use canonical::Scheme;
use libfuzzer_sys::fuzz_target;
use sha2::{Digest, Sha256};

fuzz_target!(|data: &[u8]| {
    let mut lines = data.splitn(6, |b| *b == b'\n');
    let signature = lines.next().unwrap_or_default();
    let timestamp_header = lines.next().unwrap_or_default();
    let method = lines.next().unwrap_or_default();
    let path_and_query = lines.next().unwrap_or_default();
    let idempotency_key = lines.next().unwrap_or_default();
    let body = lines.next().unwrap_or_default();

    assert_eq!(
        canonical::parse_signature(signature),
        expected_signature(signature)
    );
    let timestamp = canonical::parse_timestamp(timestamp_header);
    assert_eq!(timestamp, expected_timestamp(timestamp_header));

    // Any MAC, printed either way the header allows, parses back to itself.
    let mac: [u8; 32] = Sha256::digest(data).into();
    for scheme in [Scheme::V1, Scheme::V2] {
        let lower = format!("{}={}", scheme.as_str(), hex::encode(mac));
        assert_eq!(
            canonical::parse_signature(lower.as_bytes()),
            Some((scheme, mac))
        );
        let upper = format!("\t{}={} ", scheme.as_str(), hex::encode_upper(mac));
        assert_eq!(
            canonical::parse_signature(upper.as_bytes()),
            Some((scheme, mac))
        );
    }

    let (Ok(method), Ok(path_and_query), Ok(idempotency_key)) = (
        std::str::from_utf8(method),
        std::str::from_utf8(path_and_query),
        std::str::from_utf8(idempotency_key),
    ) else {
        return;
    };
    // Signed timestamps are checked against the clock only after the MAC, so any i64 can
    // reach the canonical string.
    let timestamp =
        timestamp.unwrap_or_else(|| i64::from_le_bytes(mac[..8].try_into().expect("8 bytes")));
    let request = canonical::Signed {
        timestamp,
        method,
        path_and_query,
        idempotency_key,
        body,
    };
    let timestamp = timestamp.to_string();
    let body_sha256 = hex::encode(Sha256::digest(body));
    let v1 = canonical::canonical_string(Scheme::V1, &request);
    assert_eq!(
        v1.split('\n').collect::<Vec<_>>(),
        ["v1", &timestamp, method, path_and_query, &body_sha256]
    );
    let v2 = canonical::canonical_string(Scheme::V2, &request);
    assert_eq!(
        v2.split('\n').collect::<Vec<_>>(),
        [
            "v2",
            &timestamp,
            method,
            path_and_query,
            idempotency_key,
            &body_sha256
        ]
    );
});

/// HTTP's optional whitespace around a field value: spaces and tabs only.
fn trim_ows(value: &[u8]) -> &[u8] {
    let is_ows = |b: &u8| *b == b' ' || *b == b'\t';
    let start = value.iter().position(|b| !is_ows(b)).unwrap_or(value.len());
    let end = value
        .iter()
        .rposition(|b| !is_ows(b))
        .map_or(start, |i| i + 1);
    &value[start..end]
}

fn expected_signature(value: &[u8]) -> Option<(Scheme, [u8; 32])> {
    let value = trim_ows(value);
    let (scheme, hex_mac) = if let Some(rest) = value.strip_prefix(b"v1=") {
        (Scheme::V1, rest)
    } else {
        (Scheme::V2, value.strip_prefix(b"v2=")?)
    };
    if hex_mac.len() != 64 || !hex_mac.iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    let mut mac = [0u8; 32];
    for (byte, pair) in mac.iter_mut().zip(hex_mac.chunks(2)) {
        let digit = |d: u8| (d as char).to_digit(16).expect("checked above") as u8;
        *byte = digit(pair[0]) << 4 | digit(pair[1]);
    }
    Some((scheme, mac))
}

fn expected_timestamp(value: &[u8]) -> Option<i64> {
    let digits = trim_ows(value);
    if digits.is_empty() || digits.len() > 12 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(
        digits
            .iter()
            .fold(0i64, |n, d| n * 10 + i64::from(d - b'0')),
    )
}

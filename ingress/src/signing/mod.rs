//! Optional HMAC-SHA256 request signing, per partner.
//!
//! A bearer key proves who sent a request but not that it arrived unaltered, nor that it
//! is not a recording played back. A partner with a `signing_secret` in the partners file
//! must therefore also sign every request ([`canonical`] defines what is signed and the
//! headers that carry it). The ingress checks, in this order: both headers present
//! (`signature-missing`), well formed and matching one of the partner's secrets in
//! constant time (`signature-invalid`), the timestamp within [`WINDOW`] of our clock
//! (`signature-expired`), and a signature never seen before (`signature-replayed`,
//! [`replay`]). Each refusal is a 401 with its own problem type.
//!
//! HMAC needs the secret itself, so unlike the bearer keys it cannot be stored hashed:
//! the partners file is a secret (a Kubernetes Secret mounted read-only, file mode 0400
//! elsewhere) and [`SigningSecret`] never prints its bytes.

pub mod error;
mod replay;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub use error::SignatureError;
use http::HeaderMap;
pub use partitioner::signing::{
    canonical, Scheme, Signed, SigningSecret, MIN_SECRET_LEN, X_SIGNATURE, X_SIGNATURE_TIMESTAMP,
};
pub use replay::SeenSignatures;

use crate::headers::IDEMPOTENCY_KEY;
use crate::metrics;

/// How far a signature's timestamp may be from our clock, either way. Five minutes
/// absorbs clock skew and a client's retries, and bounds how long a signature must be
/// remembered to refuse its replay.
pub const WINDOW: Duration = Duration::from_secs(300);

/// The parts of a request a signature covers.
pub struct SignedRequest<'a> {
    pub headers: &'a HeaderMap,
    pub method: &'a str,
    pub path_and_query: &'a str,
    pub body: &'a [u8],
}

/// Checks `request` against the partner's `secrets` (any one may match: two while the
/// partner rotates) and records it in `seen`. Counts every refusal by reason.
pub async fn verify(
    secrets: &[SigningSecret],
    request: &SignedRequest<'_>,
    seen: &SeenSignatures,
) -> Result<(), SignatureError> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let result = match check(secrets, request, now) {
        Ok(mac) if seen.first_use(mac).await => Ok(()),
        Ok(_) => Err(SignatureError::Replayed),
        Err(error) => Err(error),
    };
    if let Err(error) = result {
        metrics::signature_refused(error.slug());
    }
    result
}

/// Everything but the replay check: the verified MAC, or why not. `now` is unix seconds.
fn check(
    secrets: &[SigningSecret],
    request: &SignedRequest<'_>,
    now: i64,
) -> Result<[u8; 32], SignatureError> {
    let (Some(signature), Some(timestamp)) = (
        request.headers.get(&X_SIGNATURE),
        request.headers.get(&X_SIGNATURE_TIMESTAMP),
    ) else {
        return Err(SignatureError::Missing);
    };
    let (scheme, mac) =
        canonical::parse_signature(signature.as_bytes()).ok_or(SignatureError::Invalid)?;
    let timestamp =
        canonical::parse_timestamp(timestamp.as_bytes()).ok_or(SignatureError::Invalid)?;
    // A key that is not text cannot have been signed; the mutation refuses it anyway.
    let idempotency_key = request
        .headers
        .get(&IDEMPOTENCY_KEY)
        .map_or(Some(""), |key| key.to_str().ok())
        .ok_or(SignatureError::Invalid)?;
    let signed = Signed {
        timestamp,
        method: request.method,
        path_and_query: request.path_and_query,
        idempotency_key,
        body: request.body,
    };
    let canonical = canonical::canonical_string(scheme, &signed);
    // `verify_slice` compares in constant time, so the answer's timing says nothing
    // about how many bytes of a forged MAC were right.
    let matches = secrets
        .iter()
        .any(|secret| secret.verifies(canonical.as_bytes(), &mac));
    if !matches {
        return Err(SignatureError::Invalid);
    }
    // Checked after the MAC, so only the holder of the secret learns that a timestamp
    // was stale rather than the whole request wrong.
    if timestamp.abs_diff(now) > WINDOW.as_secs() {
        return Err(SignatureError::Expired);
    }
    Ok(mac)
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    const SECRET: &str = "partner-signing-secret-of-32-bytes!";
    const NOW: i64 = 1_700_000_000;

    fn headers(signature: &str, timestamp: i64) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(&X_SIGNATURE, HeaderValue::from_str(signature).unwrap());
        headers.insert(&X_SIGNATURE_TIMESTAMP, HeaderValue::from(timestamp));
        headers
    }

    fn check_with(
        secrets: &[&str],
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<[u8; 32], SignatureError> {
        let secrets: Vec<_> = secrets.iter().map(|s| SigningSecret::new(*s)).collect();
        let request = SignedRequest {
            headers,
            method: "POST",
            path_and_query: "/v1/bookings",
            body,
        };
        check(&secrets, &request, NOW)
    }

    /// A create signed under `scheme`, with Idempotency-Key `order-1`.
    fn signed_as(scheme: Scheme, timestamp: i64, body: &[u8]) -> HeaderMap {
        let request = Signed {
            timestamp,
            method: "POST",
            path_and_query: "/v1/bookings",
            idempotency_key: "order-1",
            body,
        };
        let mut headers = headers(
            &SigningSecret::new(SECRET).sign(scheme, &request),
            timestamp,
        );
        headers.insert(&IDEMPOTENCY_KEY, HeaderValue::from_static("order-1"));
        headers
    }

    fn signed(timestamp: i64, body: &[u8]) -> HeaderMap {
        signed_as(Scheme::V2, timestamp, body)
    }

    #[test]
    fn matches_the_documented_openssl_recipe() {
        // printf 'v1\n1700000000\nPOST\n/v1/bookings\n%s' "$(printf %s '{"rooms":1}' |
        //   sha256sum | cut -d' ' -f1)" | openssl dgst -sha256 -hmac "$SECRET"
        let expected = "v1=74f724b44fd9b38a3cc97bcb052a4e598ff6cae36bb06dddea0b3d7230efa7ab";
        let body = br#"{"rooms":1}"#;
        assert_eq!(signed_as(Scheme::V1, NOW, body)[&X_SIGNATURE], expected);
        assert!(check_with(&[SECRET], &headers(expected, NOW), body).is_ok());
        // printf 'v2\n1700000000\nPOST\n/v1/bookings\norder-1\n%s' "$(printf %s '{"rooms":1}' |
        //   sha256sum | cut -d' ' -f1)" | openssl dgst -sha256 -hmac "$SECRET"
        let v2 = signed_as(Scheme::V2, NOW, body);
        assert_eq!(
            v2[&X_SIGNATURE],
            "v2=cf18382f431f0c7a69c98794a37380d175c52be656bf8bcf7b542c800831197d"
        );
        assert!(check_with(&[SECRET], &v2, body).is_ok());
    }

    #[test]
    fn a_v2_signature_covers_the_idempotency_key() {
        let mut rekeyed = signed(NOW, b"{}");
        rekeyed.insert(&IDEMPOTENCY_KEY, HeaderValue::from_static("order-2"));
        assert_eq!(
            check_with(&[SECRET], &rekeyed, b"{}"),
            Err(SignatureError::Invalid)
        );
        let mut unkeyed = signed(NOW, b"{}");
        unkeyed.remove(&IDEMPOTENCY_KEY);
        assert_eq!(
            check_with(&[SECRET], &unkeyed, b"{}"),
            Err(SignatureError::Invalid)
        );
    }

    #[test]
    fn any_listed_secret_verifies() {
        let other = "another-signing-secret-of-32-bytes!";
        assert!(check_with(&[other, SECRET], &signed(NOW, b"{}"), b"{}").is_ok());
        assert_eq!(
            check_with(&[other], &signed(NOW, b"{}"), b"{}"),
            Err(SignatureError::Invalid)
        );
    }

    #[test]
    fn any_change_to_the_signed_parts_is_invalid() {
        let good = signed(NOW, b"{}");
        assert_eq!(
            check_with(&[SECRET], &good, b"{ }"),
            Err(SignatureError::Invalid)
        );
        let mut moved = good.clone();
        moved.insert(&X_SIGNATURE_TIMESTAMP, HeaderValue::from(NOW + 1));
        assert_eq!(
            check_with(&[SECRET], &moved, b"{}"),
            Err(SignatureError::Invalid)
        );
        let secrets = [SigningSecret::new(SECRET)];
        let other_path = SignedRequest {
            headers: &good,
            method: "POST",
            path_and_query: "/v1/bookings?x=1",
            body: b"{}",
        };
        assert_eq!(
            check(&secrets, &other_path, NOW),
            Err(SignatureError::Invalid)
        );
        let other_method = SignedRequest {
            method: "PUT",
            path_and_query: "/v1/bookings",
            ..other_path
        };
        assert_eq!(
            check(&secrets, &other_method, NOW),
            Err(SignatureError::Invalid)
        );
        let garbage = headers("v1=nothex", NOW);
        assert_eq!(
            check_with(&[SECRET], &garbage, b"{}"),
            Err(SignatureError::Invalid)
        );
    }

    #[test]
    fn missing_headers_are_missing() {
        let mut only_signature = signed(NOW, b"{}");
        only_signature.remove(&X_SIGNATURE_TIMESTAMP);
        let mut only_timestamp = signed(NOW, b"{}");
        only_timestamp.remove(&X_SIGNATURE);
        for headers in [HeaderMap::new(), only_signature, only_timestamp] {
            assert_eq!(
                check_with(&[SECRET], &headers, b"{}"),
                Err(SignatureError::Missing)
            );
        }
    }

    #[test]
    fn the_window_is_300_seconds_either_way() {
        let window = WINDOW.as_secs() as i64;
        for timestamp in [NOW - window, NOW + window] {
            assert!(check_with(&[SECRET], &signed(timestamp, b"{}"), b"{}").is_ok());
        }
        for timestamp in [NOW - window - 1, NOW + window + 1, 0] {
            assert_eq!(
                check_with(&[SECRET], &signed(timestamp, b"{}"), b"{}"),
                Err(SignatureError::Expired)
            );
        }
    }

    #[test]
    fn secrets_do_not_print() {
        let shown = format!("{:?}", SigningSecret::new(SECRET));
        assert!(!shown.contains("partner"), "{shown}");
    }
}

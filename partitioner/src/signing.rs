//! HMAC-SHA256 signatures over a request, one scheme for both directions: partners sign
//! what they send to the ingress, and the webhook deliveries sign what they send to
//! partners, so a partner checks both with one routine. [`canonical`] defines what is
//! signed and the headers that carry it; [`SigningSecret`] makes and checks the MAC.
//!
//! HMAC needs the secret itself, so unlike the bearer keys it cannot be stored hashed:
//! the partners file is a secret, and [`SigningSecret`] never prints its bytes.

pub mod canonical;

use hmac::{Hmac, Mac};
use sha2::Sha256;

pub use canonical::{Scheme, Signed, X_SIGNATURE, X_SIGNATURE_TIMESTAMP};

/// Shortest accepted secret: 32 bytes, the HMAC-SHA256 output size (RFC 2104 advises no
/// less than the output length).
pub const MIN_SECRET_LEN: usize = 32;

/// A partner's HMAC key. `Debug` hides it, so no log line or panic can show it.
#[derive(Clone)]
pub struct SigningSecret(Vec<u8>);

impl SigningSecret {
    pub fn new(secret: impl Into<Vec<u8>>) -> SigningSecret {
        SigningSecret(secret.into())
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `v2=<hex>` (or `v1=`) for `request`: what a partner puts in `X-Signature`.
    pub fn sign(&self, scheme: Scheme, request: &Signed<'_>) -> String {
        let mut mac = self.mac();
        mac.update(canonical::canonical_string(scheme, request).as_bytes());
        format!(
            "{}={}",
            scheme.as_str(),
            hex::encode(mac.finalize().into_bytes())
        )
    }

    /// Whether `mac` is this secret's HMAC of `message`, compared in constant time.
    pub fn verifies(&self, message: &[u8], mac: &[u8]) -> bool {
        let mut expected = self.mac();
        expected.update(message);
        expected.verify_slice(mac).is_ok()
    }

    fn mac(&self) -> Hmac<Sha256> {
        Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes keys of any length")
    }
}

impl std::fmt::Debug for SigningSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningSecret(..)")
    }
}

//! Why a request's signature is refused: its own room, so the problem mapping can name it
//! without depending on the verification code.

#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("this partner must sign requests: X-Signature and X-Signature-Timestamp are required")]
    Missing,
    #[error("the request signature is malformed or does not match")]
    Invalid,
    #[error("the signature timestamp is more than 300 seconds from the server's clock")]
    Expired,
    #[error("this signature was already used; sign each request anew")]
    Replayed,
}

impl SignatureError {
    /// The problem type slug and the bounded metric label.
    pub fn slug(self) -> &'static str {
        match self {
            SignatureError::Missing => "signature-missing",
            SignatureError::Invalid => "signature-invalid",
            SignatureError::Expired => "signature-expired",
            SignatureError::Replayed => "signature-replayed",
        }
    }
}

//! What every authenticated request passes before its route runs: the partner's rate
//! limit, then the signature of a partner that must sign ([`crate::signing`]).

use http::request::Parts;
use tokio::sync::Semaphore;

use crate::auth::{LivePartners, Partner};
use crate::body::{read_body, RequestBody};
use crate::problem::ApiError;
use crate::ratelimit::{Allowance, RateLimits};
use crate::signing::{self, SeenSignatures, SignedRequest};

/// What every request passes before its route runs.
pub struct Gate {
    /// The partners table, swapped whole on reload.
    pub partners: LivePartners,
    /// Caps requests in progress; a request that finds it empty is refused with 503
    /// rather than queued, so overload shows up as fast retries instead of latency.
    pub in_flight: Semaphore,
    pub rate_limits: RateLimits,
    /// Signatures already used, so none is accepted twice.
    pub seen_signatures: SeenSignatures,
    /// The most body a signed request may have: its signature covers the body, which is
    /// read here.
    pub max_body_bytes: usize,
}

impl Gate {
    /// Takes a token from `partner`'s bucket (what is left goes into `allowance`, for the
    /// answer's headers), then checks the signature of a partner that must sign. Returns
    /// the body, read if the signature needed it.
    pub async fn admit(
        &self,
        partner: &Partner,
        parts: &Parts,
        body: RequestBody,
        allowance: &mut Option<Allowance>,
    ) -> Result<RequestBody, ApiError> {
        // After authentication, so the bucket is the partner's; before any real work, so
        // a partner over its limit costs us as little as possible.
        *allowance = Some(self.rate_limits.check(&partner.partner_id).await?);
        if partner.signing_secrets().is_empty() {
            return Ok(body);
        }
        // The signature covers the body, so it is read (under the same limit) first.
        let bytes = read_body(body, self.max_body_bytes).await?;
        let signed = SignedRequest {
            headers: &parts.headers,
            method: parts.method.as_str(),
            path_and_query: parts.uri.path_and_query().map_or("/", |p| p.as_str()),
            body: &bytes,
        };
        signing::verify(partner.signing_secrets(), &signed, &self.seen_signatures).await?;
        Ok(RequestBody::Read(bytes))
    }
}

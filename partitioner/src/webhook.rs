//! A partner's webhook endpoint as the partners file names it: where the decisions the
//! partner is to receive are POSTed, and the secret that signs them.
//!
//! ```json
//! "webhook": {"url": "https://hooks.example.com/bookings", "signing_secret": "…32+ bytes…",
//!             "concurrency": 4, "rate_per_second": 50}
//! ```
//!
//! The ingress loads the partners file first and refuses one whose endpoint is malformed,
//! so a typo stops a rollout instead of silently dropping a partner's deliveries; the
//! delivery service reads the same entries. A URL carrying credentials is refused: it
//! would end up in logs, and the signature is what authenticates a delivery.

use std::num::{NonZeroU32, NonZeroUsize};

use http::uri::{Scheme, Uri};
use serde::Deserialize;

use crate::signing::{SigningSecret, MIN_SECRET_LEN};

/// Deliveries in flight to one partner at once when its entry names no `concurrency`.
pub const DEFAULT_CONCURRENCY: usize = 4;
/// The most a partner may ask for: each one holds a connection of the delivery service.
pub const MAX_CONCURRENCY: usize = 64;

/// The `webhook` object of a partner's entry, as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookEntry {
    pub url: String,
    pub signing_secret: String,
    #[serde(default)]
    pub concurrency: Option<usize>,
    #[serde(default)]
    pub rate_per_second: Option<u32>,
}

/// A checked endpoint.
#[derive(Clone, Debug)]
pub struct Endpoint {
    pub uri: Uri,
    pub secret: SigningSecret,
    pub concurrency: NonZeroUsize,
    /// Deliveries started per second at most; unlimited when absent.
    pub rate_per_second: Option<NonZeroU32>,
}

impl Endpoint {
    /// The host the endpoint names, without port.
    pub fn host(&self) -> &str {
        self.uri.host().unwrap_or_default()
    }

    /// The request target a delivery is signed over: the URL's path and query.
    pub fn path_and_query(&self) -> &str {
        self.uri.path_and_query().map_or("/", |p| p.as_str())
    }
}

impl WebhookEntry {
    /// The endpoint, or what is wrong with the entry in words for the operator.
    pub fn check(self) -> Result<Endpoint, String> {
        let uri: Uri = self
            .url
            .parse()
            .map_err(|e| format!("webhook url {:?} is not a URL: {e}", self.url))?;
        let scheme = uri.scheme();
        if scheme != Some(&Scheme::HTTP) && scheme != Some(&Scheme::HTTPS) {
            return Err(format!("webhook url {:?} must be http or https", self.url));
        }
        let Some(authority) = uri.authority() else {
            return Err(format!("webhook url {:?} names no host", self.url));
        };
        if authority.as_str().contains('@') {
            return Err(
                "webhook url must not carry credentials; the signature authenticates each delivery"
                    .to_owned(),
            );
        }
        if self.signing_secret.len() < MIN_SECRET_LEN {
            return Err(format!(
                "webhook signing_secret must be at least {MIN_SECRET_LEN} bytes"
            ));
        }
        let concurrency = self.concurrency.unwrap_or(DEFAULT_CONCURRENCY);
        let concurrency = NonZeroUsize::new(concurrency)
            .filter(|n| n.get() <= MAX_CONCURRENCY)
            .ok_or_else(|| format!("webhook concurrency must be 1 to {MAX_CONCURRENCY}"))?;
        let rate_per_second = match self.rate_per_second {
            None => None,
            Some(rate) => Some(
                NonZeroU32::new(rate)
                    .ok_or("webhook rate_per_second must be at least 1; omit it for no limit")?,
            ),
        };
        Ok(Endpoint {
            uri,
            secret: SigningSecret::new(self.signing_secret),
            concurrency,
            rate_per_second,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(url: &str) -> WebhookEntry {
        WebhookEntry {
            url: url.to_owned(),
            signing_secret: "s".repeat(MIN_SECRET_LEN),
            concurrency: None,
            rate_per_second: None,
        }
    }

    #[test]
    fn an_http_or_https_url_with_a_host_is_an_endpoint() {
        let endpoint = entry("https://hooks.example.com:8443/in?p=1")
            .check()
            .unwrap();
        assert_eq!(endpoint.host(), "hooks.example.com");
        assert_eq!(endpoint.path_and_query(), "/in?p=1");
        assert_eq!(endpoint.concurrency.get(), DEFAULT_CONCURRENCY);
        assert_eq!(
            entry("http://127.0.0.1:9/")
                .check()
                .unwrap()
                .path_and_query(),
            "/"
        );
    }

    #[test]
    fn other_schemes_credentials_short_secrets_and_silly_limits_are_refused() {
        for url in ["ftp://x/", "/relative", "https://user:pw@x/", "not a url"] {
            assert!(entry(url).check().is_err(), "{url}");
        }
        let mut short = entry("https://x/");
        short.signing_secret = "short".to_owned();
        assert!(short.check().unwrap_err().contains("signing_secret"));
        let mut none = entry("https://x/");
        none.concurrency = Some(0);
        assert!(none.check().is_err());
        let mut many = entry("https://x/");
        many.concurrency = Some(MAX_CONCURRENCY + 1);
        assert!(many.check().is_err());
        let mut still = entry("https://x/");
        still.rate_per_second = Some(0);
        assert!(still.check().is_err());
    }
}

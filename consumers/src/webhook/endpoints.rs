//! The partners' webhook endpoints, read from the partners file the ingress loads (which
//! checks every entry first: [`partitioner::webhook`]), and the hosts the delivery
//! service may contact.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;

use partitioner::webhook::{Endpoint, WebhookEntry};
use serde::Deserialize;

/// The part of the partners file this service reads; the rest is the ingress's.
#[derive(Deserialize)]
struct PartnersFile {
    partners: Vec<PartnerEntry>,
}

#[derive(Deserialize)]
struct PartnerEntry {
    partner_id: String,
    #[serde(default)]
    webhook: Option<WebhookEntry>,
}

/// What the service does with a partner's decisions.
#[derive(Clone, Debug)]
pub enum Route {
    Deliver(Endpoint),
    /// The endpoint's host is not allowed: the decisions are dead-lettered
    /// (`host-not-allowed`) until an operator allows it and replays them.
    Refused {
        host: String,
    },
}

/// Every partner with a webhook, by id; a partner not listed gets no deliveries (it may
/// pull its feed instead).
#[derive(Clone, Debug, Default)]
pub struct Endpoints(BTreeMap<String, Route>);

impl Endpoints {
    pub fn load(path: &Path, allowed: &AllowedHosts) -> Result<Endpoints, String> {
        let text = std::fs::read(path)
            .map_err(|e| format!("cannot read partners file {}: {e}", path.display()))?;
        let file: PartnersFile = serde_json::from_slice(&text)
            .map_err(|e| format!("partners file {}: {e}", path.display()))?;
        let mut routes = BTreeMap::new();
        for partner in file.partners {
            let Some(webhook) = partner.webhook else {
                continue;
            };
            let id = partner.partner_id;
            let endpoint = webhook
                .check()
                .map_err(|e| format!("partners file {}: partner {id:?}: {e}", path.display()))?;
            let route = if allowed.allows(endpoint.host()) {
                Route::Deliver(endpoint)
            } else {
                Route::Refused {
                    host: endpoint.host().to_owned(),
                }
            };
            routes.insert(id, route);
        }
        Ok(Endpoints(routes))
    }

    pub fn route(&self, partner: &str) -> Option<&Route> {
        self.0.get(partner)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&String, &Route)> {
        self.0.iter()
    }
}

/// Loopback, plus the hosts an operator listed: a partners file cannot make the service
/// reach into the network it runs in.
#[derive(Clone, Debug, Default)]
pub struct AllowedHosts {
    exact: Vec<String>,
    /// From `*.example.com`: `.example.com`.
    suffixes: Vec<String>,
}

impl AllowedHosts {
    pub fn new(listed: &[String]) -> AllowedHosts {
        let mut allowed = AllowedHosts::default();
        for host in listed.iter().map(|h| h.trim().to_ascii_lowercase()) {
            match host.strip_prefix('*') {
                Some(suffix) if suffix.starts_with('.') => allowed.suffixes.push(suffix.to_owned()),
                _ if !host.is_empty() => allowed.exact.push(host),
                _ => {}
            }
        }
        allowed
    }

    pub fn allows(&self, host: &str) -> bool {
        let host = host.to_ascii_lowercase();
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let loopback =
            host == "localhost" || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
        loopback
            || self.exact.contains(&host)
            || self
                .suffixes
                .iter()
                .any(|suffix| host.ends_with(suffix.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_and_listed_hosts_are_allowed_and_nothing_else() {
        let allowed = AllowedHosts::new(&["hooks.example.com".into(), "*.partner.io".into()]);
        for host in [
            "localhost",
            "127.0.0.1",
            "127.8.9.10",
            "[::1]",
            "hooks.example.com",
            "a.partner.io",
            "HOOKS.example.com",
        ] {
            assert!(allowed.allows(host), "{host}");
        }
        for host in [
            "10.0.0.1",
            "169.254.169.254",
            "example.com",
            "partner.io",
            "evilpartner.io",
            "hooks.example.com.evil",
        ] {
            assert!(!allowed.allows(host), "{host}");
        }
        assert!(!AllowedHosts::new(&[String::new()]).allows(""));
    }

    #[test]
    fn partners_without_a_webhook_get_no_route_and_disallowed_hosts_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("partners.json");
        let secret = "s".repeat(32);
        std::fs::write(
            &path,
            format!(
                r#"{{"partners": [
                    {{"partner_id": "a", "key_sha256": "x", "webhook": {{"url": "http://127.0.0.1:9/in", "signing_secret": "{secret}"}}}},
                    {{"partner_id": "b", "webhook": {{"url": "https://internal.corp/in", "signing_secret": "{secret}"}}}},
                    {{"partner_id": "c"}}]}}"#
            ),
        )
        .unwrap();
        let endpoints = Endpoints::load(&path, &AllowedHosts::default()).unwrap();
        assert!(matches!(endpoints.route("a"), Some(Route::Deliver(_))));
        assert!(
            matches!(endpoints.route("b"), Some(Route::Refused { host }) if host == "internal.corp")
        );
        assert!(endpoints.route("c").is_none());
    }
}

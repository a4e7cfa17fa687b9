//! Loading the partners file: `{"partners": [{"partner_id", "key_sha256", "tenants",
//! "scopes", "signing_secret"?}]}`, plus an optional `_comment` for humans. `key_sha256`
//! is one digest or a list of them: a partner rotating its key has the old and the new
//! one valid at once. `signing_secret` (one or a list, likewise) makes the partner sign
//! every request ([`crate::signing`]); each is at least 32 bytes. `ota_hotels` maps the
//! `HotelCode`s the partner sends in OpenTravel messages to the tenant each belongs to
//! ([`crate::ota`]); every tenant there must be one of the partner's. `webhook` is where
//! the delivery service POSTs the partner's decisions ([`partitioner::webhook`]): the
//! ingress only checks it.
//!
//! Every mistake is refused at startup with the file's path and the entry at fault:
//! unknown fields and scopes (typos would otherwise silently drop a permission), keys
//! that are not SHA-256 digests, partners listed twice and keys shared by two partners.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use partitioner::webhook::WebhookEntry;
use serde::Deserialize;

use super::{Partner, Partners, Scope, Tenants};
use crate::signing::{SigningSecret, MIN_SECRET_LEN};

#[derive(Debug, thiserror::Error)]
// The causes are part of each message rather than `source`s: the message is what an
// operator reads, and a chained source would print the same words twice.
pub enum LoadError {
    #[error("cannot read partners file {path}: {error}")]
    Read { path: String, error: std::io::Error },
    #[error("partners file {path} at {at}: {error}")]
    Parse {
        path: String,
        at: String,
        error: serde_json::Error,
    },
    #[error("partners file {path}: {problem}")]
    Invalid { path: String, problem: String },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PartnersFile {
    #[serde(default, rename = "_comment")]
    _comment: Option<serde_json::Value>,
    partners: Vec<PartnerEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PartnerEntry {
    partner_id: String,
    key_sha256: OneOrMany,
    tenants: Vec<String>,
    scopes: Vec<Scope>,
    #[serde(default)]
    signing_secret: Option<OneOrMany>,
    #[serde(default)]
    ota_hotels: BTreeMap<String, String>,
    /// Read by the delivery service; checked here so a mistake stops the rollout.
    #[serde(default)]
    webhook: Option<WebhookEntry>,
}

/// One key digest, or several while a key is being rotated.
#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::One(one) => vec![one],
            OneOrMany::Many(many) => many,
        }
    }
}

impl Partners {
    pub fn load(path: &Path) -> Result<Partners, LoadError> {
        let shown = path.display().to_string();
        match std::fs::read(path) {
            Ok(text) => Partners::parse(&text, &shown),
            Err(error) => Err(LoadError::Read { path: shown, error }),
        }
    }

    /// Parses the file's contents; `path` only labels errors.
    pub fn parse(text: &[u8], path: &str) -> Result<Partners, LoadError> {
        let de = &mut serde_json::Deserializer::from_slice(text);
        let file: PartnersFile =
            serde_path_to_error::deserialize(&mut *de).map_err(|e| LoadError::Parse {
                path: path.to_owned(),
                at: e.path().to_string(),
                error: e.into_inner(),
            })?;
        // A file with anything after its document (two files run together by a bad merge)
        // is refused, not loaded as its first half.
        de.end().map_err(|error| LoadError::Parse {
            path: path.to_owned(),
            at: "the end of the document".into(),
            error,
        })?;
        let invalid = |problem: String| LoadError::Invalid {
            path: path.to_owned(),
            problem,
        };
        if file.partners.is_empty() {
            return Err(invalid("lists no partners".into()));
        }
        let mut ids = HashSet::new();
        let mut keys = HashSet::new();
        let mut partners = Vec::with_capacity(file.partners.len());
        for entry in file.partners {
            let id = entry.partner_id;
            let bad = |problem: &str| invalid(format!("partner {id:?}: {problem}"));
            if let Some(problem) = partitioner::validate::id_problem(&id) {
                return Err(bad(&format!("partner_id {problem}")));
            }
            let digests = entry.key_sha256.into_vec();
            if digests.is_empty() {
                return Err(bad("key_sha256 lists no key"));
            }
            let mut key_sha256 = Vec::with_capacity(digests.len());
            for digest in &digests {
                let digest = decode_sha256_hex(digest)
                    .ok_or_else(|| bad("key_sha256 must be 64 hex digits"))?;
                // Two partners sharing a key would make the key ambiguous: refuse it.
                if !keys.insert(digest) {
                    return Err(bad(
                        "shares its key with another partner, or lists it twice",
                    ));
                }
                key_sha256.push(digest);
            }
            let tenants = if entry.tenants.iter().any(|t| t == "*") {
                Tenants::All
            } else if entry.tenants.is_empty() {
                return Err(bad("tenants is empty; use [\"*\"] for all"));
            } else {
                Tenants::Only(entry.tenants.into_iter().collect())
            };
            if !ids.insert(id.clone()) {
                return Err(bad("listed twice"));
            }
            let signing_secrets = entry.signing_secret.map_or(Ok(vec![]), |secrets| {
                let secrets = secrets.into_vec();
                if secrets.is_empty() {
                    return Err(bad("signing_secret lists no secret; omit it instead"));
                }
                secrets
                    .into_iter()
                    .map(|secret| match secret.len() {
                        n if n < MIN_SECRET_LEN => Err(bad(&format!(
                            "signing_secret must be at least {MIN_SECRET_LEN} bytes"
                        ))),
                        _ => Ok(SigningSecret::new(secret)),
                    })
                    .collect()
            })?;
            let ota_hotels = ota_hotels(entry.ota_hotels, &tenants).map_err(|p| bad(&p))?;
            if let Some(webhook) = entry.webhook {
                webhook.check().map_err(|p| bad(&p))?;
            }
            partners.push(Partner {
                partner_id: id,
                key_sha256,
                tenants,
                scopes: entry.scopes.into_iter().collect(),
                signing_secrets,
                ota_hotels,
            });
        }
        Ok(Partners { partners })
    }
}

/// The hotel code → tenant map, each code a valid property id and each tenant one of the
/// partner's.
fn ota_hotels(
    map: BTreeMap<String, String>,
    tenants: &Tenants,
) -> Result<HashMap<String, String>, String> {
    let problem = partitioner::validate::id_problem;
    map.into_iter()
        .map(|(code, tenant)| {
            if let Some(why) = problem(&code) {
                return Err(format!("ota_hotels: hotel code {code:?} {why}"));
            }
            if let Some(why) = problem(&tenant) {
                return Err(format!("ota_hotels: tenant {tenant:?} of {code:?} {why}"));
            }
            if !tenants.includes(&tenant) {
                return Err(format!(
                    "ota_hotels: {code:?} belongs to tenant {tenant:?}, which is not one of the partner's tenants"
                ));
            }
            Ok((code, tenant))
        })
        .collect()
}

fn decode_sha256_hex(hex: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(hex, &mut out).ok()?;
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::sha256_hex;

    fn load_error(json: &str) -> String {
        match Partners::parse(json.as_bytes(), "p.json") {
            Ok(_) => panic!("accepted {json}"),
            Err(error) => error.to_string(),
        }
    }

    fn entry(id: &str, key: &str, scopes: &str) -> String {
        format!(
            r#"{{"partner_id": "{id}", "key_sha256": "{key}", "tenants": ["*"], "scopes": {scopes}}}"#
        )
    }

    #[test]
    fn a_webhook_endpoint_is_checked_at_load() {
        let key = sha256_hex(b"k");
        let partner = |webhook: &str| {
            format!(
                r#"{{"partners": [{{"partner_id": "cm-1", "key_sha256": "{key}", "tenants": ["*"],
                     "scopes": ["bookings:write"], "webhook": {webhook}}}]}}"#
            )
        };
        let secret = "w".repeat(MIN_SECRET_LEN);
        let good =
            format!(r#"{{"url": "https://hooks.example.com/in", "signing_secret": "{secret}"}}"#);
        assert!(Partners::parse(partner(&good).as_bytes(), "p.json").is_ok());
        let short = r#"{"url": "https://hooks.example.com/in", "signing_secret": "short"}"#;
        assert!(load_error(&partner(short)).contains("\"cm-1\": webhook signing_secret"));
        let typo =
            format!(r#"{{"url": "https://x/", "signing_secret": "{secret}", "concurency": 2}}"#);
        assert!(load_error(&partner(&typo)).contains("unknown field `concurency`"));
    }

    #[test]
    fn ota_hotel_codes_map_to_the_partners_own_tenants() {
        let key = sha256_hex(b"k");
        let partner = |hotels: &str| {
            format!(
                r#"{{"partners": [{{"partner_id": "cm-1", "key_sha256": "{key}", "tenants": ["acme", "globex"],
                     "scopes": ["bookings:write"], "ota_hotels": {hotels}}}]}}"#
            )
        };
        let partners = Partners::parse(
            partner(r#"{"LIS001": "acme", "OPO002": "globex"}"#).as_bytes(),
            "p.json",
        )
        .unwrap();
        let cm = &partners.partners[0];
        assert_eq!(cm.ota_tenant("LIS001"), Some("acme"));
        assert_eq!(cm.ota_tenant("OPO002"), Some("globex"));
        assert_eq!(cm.ota_tenant("FAO003"), None);
        assert!(load_error(&partner(r#"{"LIS001": "initech"}"#))
            .contains("not one of the partner's tenants"));
        assert!(load_error(&partner(r#"{"LIS 001": "acme"}"#)).contains("hotel code \"LIS 001\""));
        assert!(load_error(&partner(r#"{"LIS001": 7}"#)).contains("ota_hotels"));
    }

    #[test]
    fn rejects_bad_files_naming_the_problem() {
        let key = sha256_hex(b"k");
        assert!(load_error(r#"{"partners": []}"#).contains("no partners"));
        let bad_scope = format!(r#"{{"partners": [{}]}}"#, entry("a", &key, r#"["admin"]"#));
        assert!(load_error(&bad_scope).contains("at partners[0].scopes[0]"));
        let short_key = format!(r#"{{"partners": [{}]}}"#, entry("a", "abc", "[]"));
        assert!(load_error(&short_key).contains("64 hex"));
        let one = entry("a", &key, "[]");
        assert!(load_error(&format!(r#"{{"partners": [{one}, {one}]}}"#)).contains("twice"));
        let other = entry("b", &key, "[]");
        assert!(load_error(&format!(r#"{{"partners": [{one}, {other}]}}"#)).contains("shares"));
        let no_keys = r#"{"partners": [{"partner_id": "a", "key_sha256": [], "tenants": ["*"],
            "scopes": []}]}"#;
        assert!(load_error(no_keys).contains("no key"));
        let bad_id = format!(r#"{{"partners": [{}]}}"#, entry("a/b", &key, "[]"));
        assert!(load_error(&bad_id).contains("partner_id"));
        assert!(load_error(r#"{"partners": [], "extra": 1}"#).contains("extra"));
        let whole = format!(r#"{{"partners": [{one}]}}"#);
        assert!(load_error(&format!("{whole}\n{whole}")).contains("trailing characters"));
    }

    #[test]
    fn a_partner_may_hold_two_keys_while_rotating() {
        let json = format!(
            r#"{{"partners": [{{"partner_id": "a", "key_sha256": ["{}", "{}"],
                "tenants": ["*"], "scopes": []}}]}}"#,
            sha256_hex(b"old"),
            sha256_hex(b"new")
        );
        let partners = Partners::parse(json.as_bytes(), "p.json").unwrap();
        assert_eq!(partners.find(b"old").unwrap().partner_id, "a");
        assert_eq!(partners.find(b"new").unwrap().partner_id, "a");
        assert!(partners.find(b"other").is_none());
    }

    #[test]
    fn signing_secrets_are_optional_and_long() {
        let with = |secret: &str| {
            format!(
                r#"{{"partners": [{{"partner_id": "a", "key_sha256": "{}",
                    "tenants": ["*"], "scopes": [], "signing_secret": {secret}}}]}}"#,
                sha256_hex(b"k")
            )
        };
        let long = "s".repeat(MIN_SECRET_LEN);
        let partners = Partners::parse(with(&format!("\"{long}\"")).as_bytes(), "p").unwrap();
        assert_eq!(partners.find(b"k").unwrap().signing_secrets().len(), 1);
        let two = format!("[\"{long}\", \"{long}t\"]");
        let partners = Partners::parse(with(&two).as_bytes(), "p").unwrap();
        assert_eq!(partners.find(b"k").unwrap().signing_secrets().len(), 2);
        assert!(load_error(&with("\"too-short\"")).contains("at least 32 bytes"));
        assert!(load_error(&with("[]")).contains("lists no secret"));
        let unsigned = format!(
            r#"{{"partners": [{}]}}"#,
            entry("a", &sha256_hex(b"k"), "[]")
        );
        let partners = Partners::parse(unsigned.as_bytes(), "p").unwrap();
        assert!(partners.find(b"k").unwrap().signing_secrets().is_empty());
    }

    #[test]
    fn hex_digests_decode_in_either_case() {
        let lower = sha256_hex(b"x");
        assert_eq!(
            decode_sha256_hex(&lower),
            decode_sha256_hex(&lower.to_uppercase())
        );
        assert!(decode_sha256_hex(&lower).is_some());
        assert!(decode_sha256_hex(&"g".repeat(64)).is_none());
        assert!(decode_sha256_hex(&format!("{lower}00")).is_none());
    }

    #[test]
    fn unreadable_file_names_its_path() {
        let error = Partners::load(Path::new("/nonexistent/p.json")).unwrap_err();
        assert!(error
            .to_string()
            .starts_with("cannot read partners file /nonexistent/p.json"));
    }

    #[test]
    fn loads_the_dev_partners_file() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../infra/dev-partners.json");
        let partners = Partners::load(&path).unwrap();
        assert_eq!(partners.len(), 2);
        assert!(partners.find(b"demo-ota-1-secret").is_some());
        assert!(partners.find(b"demo-ota-2-secret").is_some());
    }
}

//! Partner authentication and authorization.
//!
//! Partners present `Authorization: Bearer <secret>`. The partners file ([`file`]) holds
//! only the SHA-256 of each secret, so a leaked config does not leak keys; the presented
//! secret is hashed and compared against every entry in constant time, so response timing
//! says nothing about how close a guess was. Secrets are never logged, and [`Partners`]
//! never keeps a bearer key; the HMAC signing secrets it must keep ([`crate::signing`])
//! do not show in `Debug`.
//!
//! The file is loaded at startup and again on every reload request (SIGHUP); [`reload`]
//! swaps the new table in without disturbing requests or connections.

mod file;
mod reload;

use std::collections::{HashMap, HashSet};

use http::{header, HeaderMap};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::{ConditionallySelectable, ConstantTimeEq};

use crate::problem::ApiError;
use crate::signing::SigningSecret;

pub use file::LoadError;
pub use reload::LivePartners;

/// What a partner may do; each route requires one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize)]
pub enum Scope {
    #[serde(rename = "bookings:write")]
    BookingsWrite,
    #[serde(rename = "bookings:read")]
    BookingsRead,
    #[serde(rename = "inventory:write")]
    InventoryWrite,
    /// Modify, cancel and read every partner's bookings of the tenants the key may act
    /// for, not only its own: for the hotel's own channel or support desk. Granted only
    /// together with `bookings:write` or `bookings:read`, which still decide the routes.
    #[serde(rename = "bookings:any-partner")]
    BookingsAnyPartner,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::BookingsWrite => "bookings:write",
            Scope::BookingsRead => "bookings:read",
            Scope::InventoryWrite => "inventory:write",
            Scope::BookingsAnyPartner => "bookings:any-partner",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Tenants {
    All,
    Only(HashSet<String>),
}

impl Tenants {
    pub fn includes(&self, tenant_id: &str) -> bool {
        match self {
            Tenants::All => true,
            Tenants::Only(tenants) => tenants.contains(tenant_id),
        }
    }
}

#[derive(Clone, Debug)]
pub struct Partner {
    pub partner_id: String,
    /// Usually one digest; two while the partner rotates its key.
    key_sha256: Vec<[u8; 32]>,
    tenants: Tenants,
    scopes: HashSet<Scope>,
    /// Empty unless the partner must sign its requests ([`crate::signing`]).
    signing_secrets: Vec<SigningSecret>,
    /// The tenant of each `HotelCode` the partner sends in OpenTravel messages.
    ota_hotels: HashMap<String, String>,
}

impl Partner {
    /// The secrets one of which must sign each request; empty when signing is off.
    pub fn signing_secrets(&self) -> &[SigningSecret] {
        &self.signing_secrets
    }

    pub fn require_scope(&self, scope: Scope) -> Result<(), ApiError> {
        if self.scopes.contains(&scope) {
            Ok(())
        } else {
            Err(ApiError::Forbidden(format!(
                "API key lacks scope {}",
                scope.as_str()
            )))
        }
    }

    /// Whether the key may act on other partners' bookings of its tenants.
    pub fn acts_for_any_partner(&self) -> bool {
        self.scopes.contains(&Scope::BookingsAnyPartner)
    }

    /// Whether a booking created by `owner` for `tenant_id` is this partner's to read,
    /// modify or cancel.
    pub fn may_act_on(&self, owner: &str, tenant_id: &str) -> bool {
        let reaches_tenant = self.require_tenant(tenant_id).is_ok();
        reaches_tenant && (owner == self.partner_id || self.acts_for_any_partner())
    }

    pub fn require_tenant(&self, tenant_id: &str) -> Result<(), ApiError> {
        if self.tenants.includes(tenant_id) {
            Ok(())
        } else {
            Err(ApiError::Forbidden(format!(
                "API key may not act for tenant {tenant_id}"
            )))
        }
    }

    /// The tenant the OpenTravel `HotelCode` `hotel_code` belongs to, for this partner;
    /// `None` for a code its entry does not list.
    pub fn ota_tenant(&self, hotel_code: &str) -> Option<&str> {
        self.ota_hotels.get(hotel_code).map(String::as_str)
    }
}

/// The partners allowed to call the API.
#[derive(Debug)]
pub struct Partners {
    partners: Vec<Partner>,
}

impl Partners {
    pub fn len(&self) -> usize {
        self.partners.len()
    }

    pub fn is_empty(&self) -> bool {
        self.partners.is_empty()
    }

    /// The partner whose key the request presents: 401 when there is none or it is unknown.
    pub fn authenticate(&self, headers: &HeaderMap) -> Result<&Partner, ApiError> {
        let secret = bearer_token(headers).ok_or(ApiError::Unauthorized)?;
        self.find(secret).ok_or(ApiError::Unauthorized)
    }

    /// The partner a WS-Security `UsernameToken` names (OpenTravel messages in SOAP): the
    /// user name is the partner id and the password its API key; 401 unless both match.
    pub fn authenticate_username(
        &self,
        username: &str,
        password: &str,
    ) -> Result<&Partner, ApiError> {
        self.find(password.as_bytes())
            .filter(|partner| partner.partner_id == username)
            .ok_or(ApiError::Unauthorized)
    }

    /// Looks a secret up by its digest, visiting every partner and branching on none of
    /// the comparisons, so the time taken does not depend on which entry (if any) matched.
    fn find(&self, secret: &[u8]) -> Option<&Partner> {
        let digest: [u8; 32] = Sha256::digest(secret).into();
        let mut found = u32::MAX;
        for (index, partner) in self.partners.iter().enumerate() {
            for key in &partner.key_sha256 {
                let hit = key.ct_eq(&digest);
                found.conditional_assign(&(index as u32), hit);
            }
        }
        self.partners.get(found as usize)
    }
}

/// The secret of an `Authorization: Bearer <secret>` header; the scheme is
/// case-insensitive (RFC 9110), the secret must be non-empty.
pub fn bearer_token(headers: &HeaderMap) -> Option<&[u8]> {
    let value = headers.get(header::AUTHORIZATION)?.as_bytes();
    let (scheme, rest) = value.split_at_checked(6)?;
    if !scheme.eq_ignore_ascii_case(b"bearer") {
        return None;
    }
    let token = rest.strip_prefix(b" ")?.trim_ascii();
    (!token.is_empty()).then_some(token)
}

/// The SHA-256 of `secret`, in the lowercase hex the partners file uses.
pub fn sha256_hex(secret: &[u8]) -> String {
    Sha256::digest(secret)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn partners() -> Partners {
        let json = format!(
            r#"{{"_comment": "test", "partners": [
                {{"partner_id": "ota-1", "key_sha256": "{}", "tenants": ["*"],
                  "scopes": ["bookings:write", "inventory:write"]}},
                {{"partner_id": "ota-2", "key_sha256": "{}", "tenants": ["acme"],
                  "scopes": ["bookings:write"]}}
            ]}}"#,
            sha256_hex(b"secret-1"),
            sha256_hex(b"secret-2").to_uppercase(),
        );
        Partners::parse(json.as_bytes(), "test").unwrap()
    }

    fn with_auth(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn known_secret_finds_its_partner() {
        let partners = partners();
        let p = partners
            .authenticate(&with_auth("Bearer secret-1"))
            .unwrap();
        assert_eq!(p.partner_id, "ota-1");
        let p = partners
            .authenticate(&with_auth("bearer secret-2"))
            .unwrap();
        assert_eq!(p.partner_id, "ota-2");
    }

    #[test]
    fn missing_or_unknown_secret_is_unauthorized() {
        let partners = partners();
        for headers in [
            HeaderMap::new(),
            with_auth("Bearer nope"),
            with_auth("Bearer "),
            with_auth("Basic c2VjcmV0LTE="),
            with_auth("Bearersecret-1"),
            with_auth("secret-1"),
        ] {
            let result = partners.authenticate(&headers);
            assert!(matches!(result, Err(ApiError::Unauthorized)), "{headers:?}");
        }
    }

    #[test]
    fn tenant_and_scope_checks() {
        let partners = partners();
        let one = partners
            .authenticate(&with_auth("Bearer secret-1"))
            .unwrap();
        assert!(one.require_tenant("anyone").is_ok());
        assert!(one.require_scope(Scope::InventoryWrite).is_ok());
        let two = partners
            .authenticate(&with_auth("Bearer secret-2"))
            .unwrap();
        assert!(two.require_tenant("acme").is_ok());
        let other = two.require_tenant("globex");
        assert!(matches!(other, Err(ApiError::Forbidden(_))));
        assert!(two.require_scope(Scope::BookingsWrite).is_ok());
        let inventory = two.require_scope(Scope::InventoryWrite);
        assert!(matches!(inventory, Err(ApiError::Forbidden(_))));
    }

    #[test]
    fn hash_matches_sha256sum() {
        // `printf %s abc | sha256sum`: the recipe infra/dev-partners.json documents.
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}

//! The partner API's routing table: a hand-rolled match on method and path.
//!
//! A handful of routes do not justify a router framework, and a plain `match` keeps the whole
//! table visible in one screen. [`Route::template`] gives the bounded label used in
//! metrics and logs; ids never become labels. Whether a route writes or reads is its type:
//! a write is one of the contract's [`Mutation`]s, handed to [`crate::mutate`] as such.

use http::Method;
pub use partitioner::Mutation;
use uuid::Uuid;

use crate::auth::Scope;
pub use crate::docs::Asset;
use crate::problem::ApiError;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    Mutation(Mutation),
    Read(Read),
    /// A partner's acknowledgement of its decisions feed, up to a cursor ([`crate::feed`]).
    AcknowledgeDecisions,
    /// An OpenTravel message ([`crate::ota_api`]): which write it is, and so its scope,
    /// is known only once its body is read.
    Ota,
    /// The OpenAPI document: public, no key needed.
    OpenApi,
    /// The API reference page and its files ([`crate::docs`]): public.
    Docs(Asset),
}

/// The reads a partner can make, served from the consumers' projections.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Read {
    Booking(Uuid),
    Availability,
    /// The partner's decisions feed ([`crate::feed`]).
    Decisions,
}

// Short names for the table below and the tests.
use Mutation::{CancelBooking, CreateBooking, ModifyBooking, SetInventory};
use Read::{Availability, Booking, Decisions};

impl Route {
    /// Resolves a request line: 404 for unknown paths (including booking paths whose id
    /// is not a UUID: no such booking can exist), 405 with `Allow` for a known path with
    /// another method. The query string is ignored.
    pub fn parse(method: &Method, path: &str) -> Result<Route, ApiError> {
        let segments: Vec<&str> = path.strip_prefix('/').unwrap_or("\0").split('/').collect();
        let (route, allow) = match segments.as_slice() {
            ["v1", "bookings"] => (Route::Mutation(CreateBooking), "POST"),
            ["v1", "bookings", id, action @ ("modify" | "cancel")] => {
                let id = Uuid::try_parse(id).map_err(|_| ApiError::NotFound)?;
                let mutation = if *action == "modify" {
                    ModifyBooking(id)
                } else {
                    CancelBooking(id)
                };
                (Route::Mutation(mutation), "POST")
            }
            ["v1", "bookings", id] => {
                let id = Uuid::try_parse(id).map_err(|_| ApiError::NotFound)?;
                (Route::Read(Booking(id)), "GET")
            }
            ["v1", "inventory"] => (Route::Mutation(SetInventory), "PUT"),
            ["v1", "availability"] => (Route::Read(Availability), "GET"),
            ["v1", "ota"] => (Route::Ota, "POST"),
            ["v1", "decisions"] => (Route::Read(Decisions), "GET"),
            ["v1", "decisions", "ack"] => (Route::AcknowledgeDecisions, "POST"),
            ["openapi.json"] => (Route::OpenApi, "GET"),
            ["docs"] => (Route::Docs(Asset::Page), "GET"),
            ["docs", name] => {
                let asset = Asset::named(name).ok_or(ApiError::NotFound)?;
                (Route::Docs(asset), "GET")
            }
            _ => return Err(ApiError::NotFound),
        };
        if method.as_str() == allow {
            Ok(route)
        } else {
            Err(ApiError::MethodNotAllowed { allow })
        }
    }

    /// The route template: a metric label from a small fixed set.
    pub fn template(&self) -> &'static str {
        match self {
            Route::Mutation(CreateBooking) => "/v1/bookings",
            Route::Mutation(ModifyBooking(_)) => "/v1/bookings/{id}/modify",
            Route::Mutation(CancelBooking(_)) => "/v1/bookings/{id}/cancel",
            Route::Mutation(SetInventory) => "/v1/inventory",
            Route::Read(Booking(_)) => "/v1/bookings/{id}",
            Route::Read(Availability) => "/v1/availability",
            Route::Ota => "/v1/ota",
            Route::Read(Decisions) => "/v1/decisions",
            Route::AcknowledgeDecisions => "/v1/decisions/ack",
            Route::OpenApi => "/openapi.json",
            Route::Docs(asset) => asset.path(),
        }
    }

    /// The scope a partner's key needs, or `None` for a public route. The OpenTravel
    /// route checks the scope of each message it reads.
    pub fn scope(&self) -> Option<Scope> {
        match self {
            Route::Ota => None,
            Route::Mutation(SetInventory) => Some(Scope::InventoryWrite),
            Route::Mutation(_) => Some(Scope::BookingsWrite),
            // The feed is read, and its progress kept, under the read scope.
            Route::Read(_) | Route::AcknowledgeDecisions => Some(Scope::BookingsRead),
            Route::OpenApi | Route::Docs(_) => None,
        }
    }

    /// The method each route template answers, for the OpenAPI coverage test.
    pub const TABLE: &[(&str, &str)] = &[
        ("POST", "/v1/bookings"),
        ("POST", "/v1/bookings/{id}/modify"),
        ("POST", "/v1/bookings/{id}/cancel"),
        ("PUT", "/v1/inventory"),
        ("GET", "/v1/bookings/{id}"),
        ("GET", "/v1/availability"),
        ("POST", "/v1/ota"),
        ("GET", "/v1/decisions"),
        ("POST", "/v1/decisions/ack"),
        ("GET", "/openapi.json"),
        ("GET", "/docs"),
        ("GET", "/docs/init.js"),
        ("GET", "/docs/swagger-ui-bundle.js"),
        ("GET", "/docs/swagger-ui.css"),
    ];
}

/// The metric label for requests that matched no route.
pub const UNMATCHED: &str = "unmatched";

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "0b8d1d4c-0b5a-5d6c-9a31-6a7b4f3b3a7e";

    fn parse(method: Method, path: &str) -> Result<Route, ApiError> {
        Route::parse(&method, path)
    }

    #[test]
    fn resolves_every_route() {
        let id = Uuid::parse_str(ID).unwrap();
        assert_eq!(
            parse(Method::POST, "/v1/bookings").unwrap(),
            Route::Mutation(CreateBooking)
        );
        assert_eq!(
            parse(Method::POST, &format!("/v1/bookings/{ID}/modify")).unwrap(),
            Route::Mutation(ModifyBooking(id))
        );
        assert_eq!(
            parse(Method::POST, &format!("/v1/bookings/{ID}/cancel")).unwrap(),
            Route::Mutation(CancelBooking(id))
        );
        assert_eq!(
            parse(Method::PUT, "/v1/inventory").unwrap(),
            Route::Mutation(SetInventory)
        );
        assert_eq!(
            parse(Method::GET, &format!("/v1/bookings/{ID}")).unwrap(),
            Route::Read(Booking(id))
        );
        assert_eq!(
            parse(Method::GET, "/v1/availability").unwrap(),
            Route::Read(Availability)
        );
        assert_eq!(parse(Method::POST, "/v1/ota").unwrap(), Route::Ota);
        assert_eq!(parse(Method::GET, "/openapi.json").unwrap(), Route::OpenApi);
    }

    #[test]
    fn the_table_lists_every_route_with_its_method() {
        let id = Uuid::parse_str(ID).unwrap();
        let routes = [
            Route::Mutation(CreateBooking),
            Route::Mutation(ModifyBooking(id)),
            Route::Mutation(CancelBooking(id)),
            Route::Mutation(SetInventory),
            Route::Read(Booking(id)),
            Route::Read(Availability),
            Route::Ota,
            Route::Read(Decisions),
            Route::AcknowledgeDecisions,
            Route::OpenApi,
            Route::Docs(Asset::Page),
            Route::Docs(Asset::Init),
            Route::Docs(Asset::Bundle),
            Route::Docs(Asset::Stylesheet),
        ];
        assert_eq!(routes.len(), Route::TABLE.len());
        for route in routes {
            let path = route.template().replace("{id}", ID);
            let (method, _) = Route::TABLE
                .iter()
                .find(|(_, template)| *template == route.template())
                .unwrap_or_else(|| panic!("{route:?} missing from the table"));
            let method = Method::from_bytes(method.as_bytes()).unwrap();
            assert_eq!(parse(method, &path).unwrap(), route);
        }
    }

    #[test]
    fn unknown_paths_are_not_found() {
        for path in [
            "/",
            "",
            "/v1",
            "/v1/bookings/",
            "/v2/bookings",
            "/v1/bookings/not-a-uuid/cancel",
            "/v1/bookings/not-a-uuid",
            "/openapi.json/x",
            "/docs/",
            "/docs/index.html",
            "/docs/swagger-ui-bundle.js.map",
            &format!("/v1/bookings/{ID}/delete"),
            &format!("/v1/bookings/{ID}/cancel/extra"),
        ] {
            assert!(
                matches!(parse(Method::POST, path), Err(ApiError::NotFound)),
                "{path}"
            );
        }
    }

    #[test]
    fn wrong_method_names_the_allowed_one() {
        assert!(matches!(
            parse(Method::GET, "/v1/bookings"),
            Err(ApiError::MethodNotAllowed { allow: "POST" })
        ));
        assert!(matches!(
            parse(Method::POST, "/v1/inventory"),
            Err(ApiError::MethodNotAllowed { allow: "PUT" })
        ));
        assert!(matches!(
            parse(Method::POST, &format!("/v1/bookings/{ID}")),
            Err(ApiError::MethodNotAllowed { allow: "GET" })
        ));
    }

    #[test]
    fn templates_never_contain_ids() {
        let route = parse(Method::POST, &format!("/v1/bookings/{ID}/cancel")).unwrap();
        assert_eq!(route.template(), "/v1/bookings/{id}/cancel");
        assert_eq!(route.scope(), Some(Scope::BookingsWrite));
        assert_eq!(
            Route::Mutation(SetInventory).scope(),
            Some(Scope::InventoryWrite)
        );
        assert_eq!(Route::Read(Availability).scope(), Some(Scope::BookingsRead));
        assert_eq!(Route::OpenApi.scope(), None);
    }
}

//! The OpenAPI 3.1 document of the partner API, `ingress/openapi.json`, compiled into the
//! binary and served at `GET /openapi.json`.
//!
//! The document is written by hand, as the contract partners code against. The tests
//! below keep it honest: every route in [`Route::TABLE`](crate::routes::Route::TABLE) and
//! every status each route can produce must be documented.

use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::Full;

use crate::response::json_bytes;

pub const SPEC: &str = include_str!("../openapi.json");

pub fn response() -> Response<Full<Bytes>> {
    json_bytes(StatusCode::OK, Bytes::from_static(SPEC.as_bytes()))
}

#[cfg(test)]
mod tests {
    use partitioner::Invalid;
    use serde_json::Value;
    use uuid::Uuid;

    use super::*;
    use crate::problem::ApiError;
    use crate::routes::{Mutation, Read, Route};

    /// One of each `ApiError` variant. [`variant`] matches exhaustively, so a new variant
    /// does not compile until it is placed there, and then this list is checked against it.
    fn samples() -> Vec<ApiError> {
        vec![
            ApiError::MalformedJson("x".into()),
            ApiError::Invalid(Invalid { errors: vec![] }),
            ApiError::MissingIdempotencyKey,
            ApiError::BadIdempotencyKey("x".into()),
            ApiError::Unauthorized,
            ApiError::Forbidden("x".into()),
            ApiError::Signature(crate::signing::SignatureError::Missing),
            ApiError::NotFound,
            ApiError::MethodNotAllowed { allow: "GET" },
            ApiError::PayloadTooLarge { limit: 1 },
            ApiError::UnsupportedMediaType,
            ApiError::IdempotencyKeyReused,
            ApiError::IdempotencyKeyInFlight,
            ApiError::RateLimited {
                limit: 1,
                retry_after: std::time::Duration::ZERO,
            },
            ApiError::BookingNotFound,
            ApiError::BookingRejected { reason: "sold_out" },
            ApiError::Overloaded,
            ApiError::BrokerUnavailable("x".into()),
            ApiError::DeliveryTimeout,
            ApiError::ProjectionsUnavailable("x".into()),
            ApiError::Internal("x".into()),
        ]
    }

    /// Which routes can answer with `error`: the request path's structure, written down
    /// once per variant. `None` means no route at all (answered for unknown requests).
    fn can_come_from(error: &ApiError, route: &Route) -> Option<bool> {
        // The OpenTravel route checks each message's scope, and writes like a mutation.
        let ota = *route == Route::Ota;
        let authenticated = route.scope().is_some() || ota;
        let mutation = matches!(route, Route::Mutation(_)) || ota;
        let acknowledgement = *route == Route::AcknowledgeDecisions;
        let read = matches!(route, Route::Read(_)) || acknowledgement;
        let booking_mutation =
            matches!(route, Route::Mutation(mutation) if mutation.concerns_a_booking());
        Some(match error {
            ApiError::Unauthorized
            | ApiError::Signature(_)
            | ApiError::Forbidden(_)
            | ApiError::RateLimited { .. }
            | ApiError::Overloaded
            | ApiError::Internal(_) => authenticated,
            ApiError::MalformedJson(_)
            | ApiError::PayloadTooLarge { .. }
            | ApiError::UnsupportedMediaType => mutation || acknowledgement,
            ApiError::MissingIdempotencyKey
            | ApiError::BadIdempotencyKey(_)
            | ApiError::IdempotencyKeyReused
            | ApiError::IdempotencyKeyInFlight
            | ApiError::BrokerUnavailable(_)
            | ApiError::DeliveryTimeout => mutation,
            ApiError::Invalid(_) => {
                mutation
                    || acknowledgement
                    || matches!(route, Route::Read(Read::Availability | Read::Decisions))
            }
            // A path id that is not a UUID names no booking.
            ApiError::NotFound => route.template().contains("{id}"),
            ApiError::BookingNotFound => matches!(route, Route::Read(Read::Booking(_))),
            ApiError::BookingRejected { .. } => booking_mutation,
            ApiError::ProjectionsUnavailable(_) => read,
            // Answers a request that matched no route's method; the spec says so in prose.
            ApiError::MethodNotAllowed { .. } => return None,
        })
    }

    fn variant(error: &ApiError) -> usize {
        match error {
            ApiError::MalformedJson(_) => 0,
            ApiError::Invalid(_) => 1,
            ApiError::MissingIdempotencyKey => 2,
            ApiError::BadIdempotencyKey(_) => 3,
            ApiError::Unauthorized => 4,
            ApiError::Forbidden(_) => 5,
            ApiError::NotFound => 6,
            ApiError::MethodNotAllowed { .. } => 7,
            ApiError::PayloadTooLarge { .. } => 8,
            ApiError::UnsupportedMediaType => 9,
            ApiError::IdempotencyKeyReused => 10,
            ApiError::IdempotencyKeyInFlight => 11,
            ApiError::RateLimited { .. } => 12,
            ApiError::BookingNotFound => 13,
            ApiError::Overloaded => 14,
            ApiError::BrokerUnavailable(_) => 15,
            ApiError::DeliveryTimeout => 16,
            ApiError::ProjectionsUnavailable(_) => 17,
            ApiError::Internal(_) => 18,
            ApiError::Signature(_) => 19,
            ApiError::BookingRejected { .. } => 20,
        }
    }

    fn route_of(template: &str) -> Route {
        let id = Uuid::nil();
        let (method, _) = Route::TABLE.iter().find(|(_, t)| *t == template).unwrap();
        let method = http::Method::from_bytes(method.as_bytes()).unwrap();
        Route::parse(&method, &template.replace("{id}", &id.to_string())).unwrap()
    }

    fn spec() -> Value {
        serde_json::from_str(SPEC).expect("openapi.json is JSON")
    }

    #[test]
    fn samples_cover_every_variant() {
        let mut seen: Vec<usize> = samples().iter().map(variant).collect();
        seen.sort_unstable();
        assert_eq!(seen, (0..samples().len()).collect::<Vec<_>>());
    }

    #[test]
    fn every_route_and_every_status_it_produces_is_documented() {
        let spec = spec();
        assert_eq!(spec["openapi"], "3.1.0");
        for (method, template) in Route::TABLE {
            let route = route_of(template);
            let operation = &spec["paths"][template][method.to_lowercase()];
            assert!(
                operation.is_object(),
                "{method} {template} is not in the spec"
            );
            let answers_200 = matches!(route, Route::Read(_) | Route::AcknowledgeDecisions);
            let success = if route.scope().is_none() || answers_200 {
                200
            } else {
                202
            };
            let mut statuses = vec![success];
            // The synchronous answers to `Prefer: wait` (see `crate::wait`).
            match route {
                Route::Mutation(Mutation::CreateBooking) => statuses.push(201),
                Route::Mutation(Mutation::ModifyBooking(_) | Mutation::CancelBooking(_)) => {
                    statuses.push(200)
                }
                _ => {}
            }
            for error in samples() {
                if can_come_from(&error, &route) == Some(true) {
                    statuses.push(error.status().as_u16());
                }
            }
            for status in statuses {
                let response = &operation["responses"][status.to_string()];
                assert!(
                    response.is_object(),
                    "{method} {template} answers {status}, which the spec does not document"
                );
            }
        }
    }

    #[test]
    fn every_reference_resolves() {
        fn walk(value: &Value, spec: &Value) {
            match value {
                Value::Object(map) => {
                    if let Some(Value::String(target)) = map.get("$ref") {
                        let pointer = target.strip_prefix('#').expect("local reference");
                        assert!(spec.pointer(pointer).is_some(), "dangling {target}");
                    }
                    map.values().for_each(|v| walk(v, spec));
                }
                Value::Array(items) => items.iter().for_each(|v| walk(v, spec)),
                _ => {}
            }
        }
        let spec = spec();
        walk(&spec, &spec);
    }

    /// The links schemathesis follows in its stateful phase name real operations and
    /// their real path parameters, so a renamed operation cannot silently end the
    /// create -> read/modify/cancel sequences.
    #[test]
    fn every_link_targets_an_operation_and_its_parameters() {
        let spec = spec();
        let mut operations = std::collections::HashMap::new();
        for (path, methods) in spec["paths"].as_object().unwrap() {
            for operation in methods.as_object().unwrap().values() {
                if let Some(id) = operation["operationId"].as_str() {
                    operations.insert(id.to_owned(), path.clone());
                }
            }
        }
        let mut links = 0;
        for methods in spec["paths"].as_object().unwrap().values() {
            for operation in methods.as_object().unwrap().values() {
                for (_, response) in operation["responses"].as_object().into_iter().flatten() {
                    for (name, link) in response["links"].as_object().into_iter().flatten() {
                        links += 1;
                        let target = link["operationId"].as_str().unwrap_or_default();
                        let path = operations
                            .get(target)
                            .unwrap_or_else(|| panic!("link {name} targets unknown {target:?}"));
                        for (parameter, _) in link["parameters"].as_object().into_iter().flatten() {
                            let param = parameter.strip_prefix("path.").unwrap();
                            assert!(path.contains(&format!("{{{param}}}")), "{name}: {param}");
                        }
                    }
                }
            }
        }
        assert!(links >= 6, "only {links} links");
    }

    #[test]
    fn the_spec_documents_no_route_the_server_lacks() {
        let spec = spec();
        for (path, operations) in spec["paths"].as_object().unwrap() {
            for method in operations.as_object().unwrap().keys() {
                let known = Route::TABLE
                    .iter()
                    .any(|(m, t)| t == path && m.eq_ignore_ascii_case(method));
                assert!(
                    known,
                    "the spec documents {method} {path}, which no route serves"
                );
            }
        }
    }
}

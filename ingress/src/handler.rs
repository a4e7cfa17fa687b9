//! The request path of the partner API, up to the route's own work.
//!
//! Every request runs the same steps in the same order, cheapest and least revealing
//! first: route, take an in-flight slot, authenticate, take a token from the partner's
//! bucket, check the request signature of a partner that must sign ([`crate::signing`]),
//! check the scope; then a mutation ([`crate::mutate`]) or a read ([`crate::reads`])
//! runs. Every failure becomes one problem+json answer here.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::{HeaderValue, Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use tokio::sync::SemaphorePermit;

use crate::body::{read_body, RequestBody};
use crate::gate::Gate;
use crate::headers::{self, X_REQUEST_ID};
use crate::metrics;
use crate::mutate::Mutations;
use crate::problem::ApiError;
use crate::ratelimit::Allowance;
use crate::reads::Reads;
use crate::routes::{self, Route};
use crate::{docs, feed, mutate, openapi, ota_api, reads};

/// Everything a request needs, shared by all connections: the gate every request passes,
/// then what its route's stage uses.
pub struct AppState {
    pub gate: Gate,
    pub mutations: Mutations,
    pub reads: Reads,
}

/// Serves one request; never fails, every error becomes a problem response.
pub async fn handle(state: Arc<AppState>, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let started = Instant::now();
    let request_id = headers::request_id(request.headers());
    let path = request.uri().path().to_owned();
    let route = Route::parse(request.method(), &path);
    let label = route.as_ref().map_or(routes::UNMATCHED, Route::template);
    // Set once the request took a token from its partner's bucket.
    let mut allowance: Option<Allowance> = None;

    let result = match route {
        Err(error) => Err(error),
        Ok(Route::OpenApi) => Ok(openapi::response()),
        Ok(Route::Docs(asset)) => Ok(docs::response(asset)),
        Ok(route) => match state.gate.in_flight.try_acquire() {
            Err(_) => Err(ApiError::Overloaded),
            Ok(permit) => {
                let _in_flight = InFlight::enter(permit);
                if route == Route::Ota {
                    let stages = ota_api::Stages {
                        gate: &state.gate,
                        mutations: &state.mutations,
                        reads: &state.reads,
                    };
                    Ok(ota_api::serve(stages, request, &request_id, &mut allowance).await)
                } else {
                    dispatch(&state, route, request, &request_id, &mut allowance).await
                }
            }
        },
    };

    let mut response = match result {
        Ok(response) => response,
        Err(error) => {
            log_failure(&error, label, &request_id);
            if label == Route::Ota.template() {
                ota_api::refusal(&error, &path, &request_id)
            } else {
                error.to_response(&path, &request_id)
            }
        }
    };
    if let Some(allowance) = allowance {
        allowance.apply(response.headers_mut());
    }
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(X_REQUEST_ID.clone(), value);
    }
    metrics::request_done(label, response.status().as_u16(), started.elapsed());
    response
}

/// Authenticates, applies the partner's rate limit, signature check and scope, then runs
/// the route. `allowance` learns what is left in the partner's bucket, for the answer's
/// headers.
async fn dispatch(
    state: &AppState,
    route: Route,
    request: Request<Incoming>,
    request_id: &str,
    allowance: &mut Option<Allowance>,
) -> Result<Response<Full<Bytes>>, ApiError> {
    let gate = &state.gate;
    let (parts, body) = request.into_parts();
    // The table current now serves the whole request, even if a reload swaps it meanwhile.
    let partners = gate.partners.current();
    let partner = partners.authenticate(&parts.headers)?;
    // After authentication, so the bucket is the partner's; before any real work, so a
    // partner over its limit costs us as little as possible.
    let body = gate
        .admit(partner, &parts, RequestBody::Unread(body), allowance)
        .await?;
    // After the signature, so a caller holding only a signing partner's bearer key
    // learns nothing about what that key may do.
    if let Some(scope) = route.scope() {
        partner.require_scope(scope)?;
    }
    match route {
        Route::Read(read) => reads::read(&state.reads, read, partner, parts.uri.query()).await,
        Route::AcknowledgeDecisions => {
            headers::require_json(&parts.headers)?;
            let body = read_body(body, gate.max_body_bytes).await?;
            feed::acknowledge(&state.reads.redis, partner, &body).await
        }
        Route::Mutation(mutation) => {
            mutate::mutate(&state.mutations, mutation, partner, parts, body, request_id).await
        }
        // Answered by `handle` itself; here only so the match is whole.
        Route::OpenApi => Ok(openapi::response()),
        Route::Docs(asset) => Ok(docs::response(asset)),
        Route::Ota => Err(ApiError::Internal(
            "OpenTravel messages are served by ota_api".into(),
        )),
    }
}

/// Partner mistakes are routine and logged at debug; our own failures at warn or error.
fn log_failure(error: &ApiError, route: &'static str, request_id: &str) {
    let status = error.status().as_u16();
    match status {
        503 => tracing::warn!(route, request_id, error = %error, "request refused"),
        500..=599 => tracing::error!(route, request_id, error = %error, "request failed"),
        _ => tracing::debug!(route, request_id, status, error = %error, "request rejected"),
    }
}

/// Holds an in-flight permit and keeps the gauge in step with it. A guard, because hyper
/// drops a request's future when its client disconnects, and the gauge must still drop.
struct InFlight<'a> {
    _permit: SemaphorePermit<'a>,
}

impl<'a> InFlight<'a> {
    fn enter(permit: SemaphorePermit<'a>) -> Self {
        metrics::in_flight(1.0);
        InFlight { _permit: permit }
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        metrics::in_flight(-1.0);
    }
}

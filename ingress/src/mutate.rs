//! Mutations: from a checked request to an acknowledged event in the log.
//!
//! The steps run cheapest and least revealing first: media type and `Idempotency-Key`,
//! the body under a size limit, decode, validate, tenant; only then is the key claimed
//! ([`crate::dedup`]), the event id derived, the partition chosen, the event published
//! and its delivery report awaited. Nothing reaches the log before every check passed.
//! A partner that asked to wait ([`crate::wait`]) then gets the consumer's decision
//! instead of the 202, if it arrives in time.

use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Body, Incoming};
use partitioner::partition_map::routing_key;
use partitioner::{AllotmentRequest, BookingRequest, CancelRequest, Command, Envelope, EventMeta};
use serde::de::DeserializeOwned;
use serde::Serialize;
use uuid::Uuid;

use crate::auth::Partner;
use crate::dedup::{Claim, RequestFingerprint, StoredResponse};
use crate::handler::{json_bytes, AppState};
use crate::headers::{self, IDEMPOTENT_REPLAYED};
use crate::problem::ApiError;
use crate::publish::OutboundEvent;
use crate::routes::Route;
use crate::{metrics, wait};

/// The 202 body: where the event went, so a partner can quote it and a verifier can find it.
#[derive(Debug, Serialize)]
pub struct Accepted {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub booking_id: Option<Uuid>,
    pub event_id: Uuid,
    pub status: &'static str,
    pub partition: i32,
    pub offset: i64,
}

/// A request body: still on the wire, or already read because a signature covers it.
pub enum RequestBody {
    Unread(Incoming),
    Read(Bytes),
}

pub async fn mutate(
    state: &AppState,
    route: Route,
    partner: &Partner,
    parts: http::request::Parts,
    body: RequestBody,
    request_id: &str,
) -> Result<Response<Full<Bytes>>, ApiError> {
    headers::require_json(&parts.headers)?;
    let key = headers::idempotency_key(&parts.headers)?;
    let body = read_body(body, state.max_body_bytes).await?;

    let partner_id = partner.partner_id.as_str();
    let command = match route {
        Route::CreateBooking => {
            let req: BookingRequest = decode(&body)?;
            // An invalid tenant fails validation below, so the id made from it is never used.
            let tenant = req.tenant_id.as_deref().unwrap_or_default();
            let booking_id = partitioner::booking_id(tenant, partner_id, key);
            req.into_create(booking_id)?
        }
        Route::ModifyBooking(booking_id) => {
            decode::<BookingRequest>(&body)?.into_modify(booking_id)?
        }
        Route::CancelBooking(booking_id) => {
            decode::<CancelRequest>(&body)?.into_cancel(booking_id)?
        }
        Route::SetInventory => decode::<AllotmentRequest>(&body)?.into_allotment()?,
        Route::GetBooking(_) | Route::Availability | Route::OpenApi => {
            return Err(ApiError::Internal(format!("{route:?} is not a mutation")));
        }
    };
    partner.require_tenant(&command.tenant_id)?;

    // Only a request that would be published claims its key: refused requests leave no
    // record, so fixing a bad request and resending it under the same key just works.
    // The fingerprint is the validated command's, so requests that mean the same thing
    // (`2` or `2.0`, keys in any order) are the same request.
    let fingerprint =
        RequestFingerprint::new(&command, parts.method.as_str(), parts.uri.path(), &body);
    let ticket = match state.dedup.claim(partner_id, key, fingerprint).await? {
        Claim::Replay(stored) => return Ok(replayed(stored)),
        Claim::Fresh(ticket) => ticket,
    };

    let event_id = partitioner::event_id(&command.tenant_id, partner_id, key);
    // Registered before publishing, so a decision that outruns the delivery report still
    // finds its request.
    let wait = wait::requested(&parts.headers, &route, state.max_wait)
        .map(|limit| (limit, state.waiters.register(event_id)));
    let traceparent = headers::traceparent(&parts.headers).map(str::to_owned);
    let meta = EventMeta {
        event_id,
        partner_id: partner_id.to_owned(),
        request_id: request_id.to_owned(),
        received_at_ms: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64),
        any_partner: partner.acts_for_any_partner(),
    };
    let (event, booking_id) = outbound(state, command, meta, traceparent);
    let delivered = match state.sink.publish(event).await {
        Ok(delivered) => delivered,
        Err(error) => {
            // Not acknowledged, so not stored: a retry with the same key must be free to
            // try again (and lands the same event id if this one arrives late).
            state.dedup.release(ticket).await;
            return Err(error.into());
        }
    };
    tracing::debug!(
        request_id,
        %event_id,
        partition = delivered.partition,
        offset = delivered.offset,
        "event accepted"
    );
    let accepted = Accepted {
        booking_id,
        event_id,
        status: "accepted",
        partition: delivered.partition,
        offset: delivered.offset,
    };
    let body = Bytes::from(serde_json::to_vec(&accepted).expect("always serializes"));
    let stored = StoredResponse {
        status: StatusCode::ACCEPTED.as_u16(),
        body: body.clone(),
    };
    // The record is the 202 even when the partner waits: the decision is not ours to
    // store, and a replay answers at once with where the event went.
    state.dedup.complete(ticket, stored).await;
    if let Some((limit, waiter)) = wait {
        // The in-flight slot stays taken while waiting, so waits are bounded like any work.
        match waiter
            .decision(limit, delivered.partition, delivered.offset)
            .await
        {
            Some(decision) => {
                metrics::wait_done("decided");
                let path = parts.uri.path();
                return Ok(wait::decided_response(
                    &decision, &accepted, limit, path, request_id,
                ));
            }
            None => metrics::wait_done("timeout"),
        }
    }
    Ok(json_bytes(StatusCode::ACCEPTED, body))
}

/// The original answer again, marked as a replay as the idempotency-key draft asks.
fn replayed(stored: StoredResponse) -> Response<Full<Bytes>> {
    let status = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::ACCEPTED);
    let mut response = json_bytes(status, stored.body);
    response.headers_mut().insert(
        IDEMPOTENT_REPLAYED.clone(),
        HeaderValue::from_static("true"),
    );
    response
}

/// Wraps a validated command into its envelope and chooses its partition.
fn outbound(
    state: &AppState,
    command: Command,
    meta: EventMeta,
    traceparent: Option<String>,
) -> (OutboundEvent, Option<Uuid>) {
    // The partition map keeps partitions below i32::MAX, Kafka's own limit.
    let partition = state
        .partitions
        .partition(&command.tenant_id, &command.property_id) as i32;
    let key = routing_key(&command.tenant_id, &command.property_id);
    let mut envelope = Envelope::new(command, meta);
    envelope.placement = Some(state.partitions.placement().to_owned());
    let booking_id = envelope.event.booking_id();
    let event = OutboundEvent {
        partition,
        key,
        payload: envelope.to_json(),
        event_type: envelope.event.kind(),
        request_id: envelope.request_id,
        partner_id: envelope.partner_id,
        traceparent,
    };
    (event, booking_id)
}

/// Reads the whole body, refusing more than `limit` bytes: up front when Content-Length
/// already says so, else as soon as the stream passes the limit.
pub async fn read_body(body: RequestBody, limit: usize) -> Result<Bytes, ApiError> {
    let body = match body {
        RequestBody::Read(bytes) => return Ok(bytes),
        RequestBody::Unread(body) => body,
    };
    let too_large = ApiError::PayloadTooLarge { limit };
    if body.size_hint().lower() > limit as u64 {
        return Err(too_large);
    }
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(error) if error.is::<http_body_util::LengthLimitError>() => Err(too_large),
        Err(error) => Err(ApiError::MalformedJson(format!(
            "could not read the body: {error}"
        ))),
    }
}

/// Decodes JSON, naming the path of the first field serde could not read.
fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let de = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(de).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        if path == "." {
            ApiError::MalformedJson(inner.to_string())
        } else {
            ApiError::MalformedJson(format!("{path}: {inner}"))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_names_the_bad_field() {
        let error =
            decode::<BookingRequest>(br#"{"tenant_id": "acme", "rooms": "two"}"#).unwrap_err();
        let ApiError::MalformedJson(detail) = error else {
            panic!("{error:?}")
        };
        assert!(detail.starts_with("rooms: "), "{detail}");

        let error = decode::<BookingRequest>(b"{not json").unwrap_err();
        assert!(matches!(error, ApiError::MalformedJson(_)));

        let error = decode::<CancelRequest>(br#"{"tenant_id": "a", "surprise": 1}"#).unwrap_err();
        let ApiError::MalformedJson(detail) = error else {
            panic!("{error:?}")
        };
        assert!(detail.contains("surprise"), "{detail}");
    }

    #[test]
    fn accepted_body_omits_booking_id_for_inventory() {
        let accepted = Accepted {
            booking_id: None,
            event_id: Uuid::nil(),
            status: "accepted",
            partition: 3,
            offset: 42,
        };
        let json = serde_json::to_value(&accepted).unwrap();
        assert!(json.get("booking_id").is_none());
        assert_eq!(json["partition"], 3);
        assert_eq!(json["offset"], 42);
        assert_eq!(json["status"], "accepted");
    }
}

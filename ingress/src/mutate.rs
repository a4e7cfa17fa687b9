//! Mutations: from a checked request to an acknowledged event in the log.
//!
//! The steps run cheapest and least revealing first: media type and `Idempotency-Key`,
//! the body under a size limit, then the contract's request step ([`partitioner::intake`]:
//! decode, validate, derive the ids, choose the partition, build the envelope, with no
//! I/O), then the tenant; only then is the key claimed ([`crate::dedup`]), the event
//! published and its delivery report awaited. Nothing reaches the log before every check passed.
//! A partner that asked to wait ([`crate::wait`]) then gets the consumer's decision
//! instead of the 202, if it arrives in time.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode};
use http_body_util::Full;
use partitioner::{intake, Mutation, PartitionMap, Sender};

use crate::auth::Partner;
use crate::body::{read_body, RequestBody};
use crate::decisions::{ReplyPartitions, Waiters};
use crate::dedup::{Claim, Dedup, RequestFingerprint, StoredResponse};
use crate::headers::{self, IDEMPOTENT_REPLAYED};
use crate::problem::ApiError;
use crate::publish::{EventSink, OutboundEvent};
use crate::response::{json_bytes, Accepted};
use crate::{metrics, wait};

/// What the mutations need, shared by all connections.
pub struct Mutations {
    pub dedup: Dedup,
    pub sink: Arc<dyn EventSink>,
    pub partitions: PartitionMap,
    pub max_body_bytes: usize,
    /// Requests holding out for their decision (`Prefer: wait`), fed by the replies reader.
    pub waiters: Arc<Waiters>,
    /// The reply partitions this process reads, one of which a waiting request names.
    pub reply_partitions: Arc<ReplyPartitions>,
    /// The longest such a wait may last; zero when waiting is turned off.
    pub max_wait: Duration,
}

pub async fn mutate(
    state: &Mutations,
    mutation: Mutation,
    partner: &Partner,
    parts: http::request::Parts,
    body: RequestBody,
    request_id: &str,
) -> Result<Response<Full<Bytes>>, ApiError> {
    headers::require_json(&parts.headers)?;
    let key = headers::idempotency_key(&parts.headers)?;
    let body = read_body(body, state.max_body_bytes).await?;

    let sender = Sender {
        partner_id: &partner.partner_id,
        any_partner: partner.acts_for_any_partner(),
        idempotency_key: key,
        request_id,
        received_at_ms: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64),
    };
    let prepared = intake::prepare(mutation, &sender, &body, &state.partitions)?;
    let envelope = prepared.envelope;
    partner.require_tenant(&envelope.tenant_id)?;

    // Only a request that would be published claims its key: refused requests leave no
    // record, so fixing a bad request and resending it under the same key just works.
    // The fingerprint is the validated command's, so requests that mean the same thing
    // (`2` or `2.0`, keys in any order) are the same request.
    let fingerprint = RequestFingerprint::with(
        &prepared.fingerprint,
        parts.method.as_str(),
        parts.uri.path(),
        &body,
    );
    let ticket = match state
        .dedup
        .claim(&partner.partner_id, key, fingerprint)
        .await?
    {
        Claim::Replay(stored) => return Ok(replayed(stored)),
        Claim::Fresh(ticket) => ticket,
    };

    let event_id = envelope.event_id;
    // Registered before publishing, so a decision that outruns the delivery report still
    // finds its request. Waiting needs a reply partition to name; without one (none
    // assigned yet) the answer is the 202 at once rather than a wait that cannot end well.
    let wait = wait::requested(&parts.headers, mutation, state.max_wait).and_then(|limit| {
        let Some(reply_partition) = state.reply_partitions.pick() else {
            metrics::wait_done("unrouted");
            return None;
        };
        Some((limit, reply_partition, state.waiters.register(event_id)))
    });
    let booking_id = envelope.event.booking_id();
    let event = OutboundEvent {
        partition: prepared.partition,
        key: prepared.routing_key,
        payload: envelope.to_json(),
        event_type: envelope.event.kind(),
        request_id: envelope.request_id,
        partner_id: envelope.partner_id,
        traceparent: headers::traceparent(&parts.headers).map(str::to_owned),
        reply_partition: wait.as_ref().map(|(_, partition, _)| *partition),
    };
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
    if let Some((limit, _, waiter)) = wait {
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

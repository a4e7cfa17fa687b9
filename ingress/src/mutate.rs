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
use partitioner::{intake, Decision, Mutation, PartitionMap, Prepared, Sender};

use crate::auth::Partner;
use crate::body::{read_body, RequestBody};
use crate::decisions::{ReplyPartitions, Waiter, Waiters};
use crate::dedup::{Claim, Dedup, RequestFingerprint, StoredResponse, Ticket};
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
    partner.require_tenant(&prepared.envelope.tenant_id)?;

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
    let wait = wait::requested(&parts.headers, mutation, state.max_wait);
    let traceparent = headers::traceparent(&parts.headers);
    let published = publish(state, ticket, vec![prepared], wait, traceparent).await?;
    let accepted = &published.accepted[0];
    let body = Bytes::from(serde_json::to_vec(accepted).expect("always serializes"));
    let stored = StoredResponse {
        status: StatusCode::ACCEPTED.as_u16(),
        body: body.clone(),
    };
    // The record is the 202 even when the partner waits: the decision is not ours to
    // store, and a replay answers at once with where the event went.
    state.dedup.complete(published.ticket, stored).await;
    if let Some(pending) = published.wait {
        let limit = pending.limit;
        if let Some(decision) = pending.decision().await {
            let path = parts.uri.path();
            return Ok(wait::decided_response(
                &decision, accepted, limit, path, request_id,
            ));
        }
    }
    Ok(json_bytes(StatusCode::ACCEPTED, body))
}

/// A request's events in the log, under the key it claimed.
pub struct Published {
    /// Where each event went, in the order given.
    pub accepted: Vec<Accepted>,
    /// The claim, for the caller to complete with the answer it stores.
    pub ticket: Ticket,
    /// The wait for the first event's decision, when one was asked for and can be routed.
    pub wait: Option<PendingWait>,
}

/// Publishes `events` (at least one) under the claim `ticket`, and waits for every
/// acknowledgement. `wait` asks for the first event's decision: its waiter is registered
/// before publishing, so a decision that outruns the delivery report still finds its
/// request. An event that is not acknowledged releases the claim, so a retry with the
/// same key is free to try again (and lands the same event ids if these arrive late).
pub async fn publish(
    state: &Mutations,
    ticket: Ticket,
    events: Vec<Prepared>,
    wait: Option<Duration>,
    traceparent: Option<&str>,
) -> Result<Published, ApiError> {
    // Waiting needs a reply partition to name; without one (none assigned yet) the answer
    // is the plain acceptance at once rather than a wait that cannot end well.
    let wait = wait.and_then(|limit| {
        let Some(reply_partition) = state.reply_partitions.pick() else {
            metrics::wait_done("unrouted");
            return None;
        };
        let event_id = events.first()?.envelope.event_id;
        Some((limit, reply_partition, state.waiters.register(event_id)))
    });
    let reply_partition = wait.as_ref().map(|(_, partition, _)| *partition);
    let sends = events.iter().enumerate().map(|(index, prepared)| {
        let envelope = &prepared.envelope;
        state.sink.publish(OutboundEvent {
            partition: prepared.partition,
            key: prepared.routing_key.clone(),
            payload: envelope.to_json(),
            event_type: envelope.event.kind(),
            request_id: envelope.request_id.clone(),
            partner_id: envelope.partner_id.clone(),
            traceparent: traceparent.map(str::to_owned),
            reply_partition: reply_partition.filter(|_| index == 0),
        })
    });
    let delivered = match futures::future::try_join_all(sends).await {
        Ok(delivered) => delivered,
        Err(error) => {
            state.dedup.release(ticket).await;
            return Err(error.into());
        }
    };
    let accepted = events
        .iter()
        .zip(delivered)
        .map(|(prepared, delivered)| {
            let event_id = prepared.envelope.event_id;
            tracing::debug!(
                request_id = prepared.envelope.request_id,
                %event_id,
                partition = delivered.partition,
                offset = delivered.offset,
                "event accepted"
            );
            Accepted {
                booking_id: prepared.envelope.event.booking_id(),
                event_id,
                status: "accepted",
                partition: delivered.partition,
                offset: delivered.offset,
            }
        })
        .collect::<Vec<_>>();
    let wait = wait.map(|(limit, _, waiter)| PendingWait {
        limit,
        waiter,
        partition: accepted[0].partition,
        offset: accepted[0].offset,
    });
    Ok(Published {
        accepted,
        ticket,
        wait,
    })
}

/// A published event's wait for its decision. The in-flight slot stays taken while
/// waiting, so waits are bounded like any work.
pub struct PendingWait {
    /// The longest the wait lasts.
    pub limit: Duration,
    waiter: Waiter,
    /// Where the event is, which tells a decision about it from a later one's.
    partition: i32,
    offset: i64,
}

impl PendingWait {
    /// The decision, or `None` when `limit` passed first.
    pub async fn decision(self) -> Option<Decision> {
        let decision = self
            .waiter
            .decision(self.limit, self.partition, self.offset)
            .await;
        metrics::wait_done(if decision.is_some() {
            "decided"
        } else {
            "timeout"
        });
        decision
    }
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

//! `POST /v1/ota`: the OpenTravel messages channel managers push, bare or in a SOAP 1.1
//! envelope, onto the same events, guarantees and decisions as the JSON API.
//!
//! The steps are the JSON routes' in the order XML allows: the body is read (under the
//! same limit) and parsed ([`crate::ota::xml`], bounded) before authentication, since a
//! SOAP message carries its credentials inside (WS-Security `UsernameToken`: user name
//! the partner id, password its API key; a bearer header works too). Then the partner's
//! rate limit and signature ([`crate::gate`]), the message's scope, its translation
//! ([`translate`]), the idempotency claim under the `Idempotency-Key` header or else the
//! key the message gives, the publish and, for a reservation, the wait for the
//! consumer's decision. The answer is the message's `…RS` ([`answer`]), which the
//! idempotency record stores the outcome of, so a retransmission is answered the same.
//!
//! - [`translate`]: a message into its commands and key;
//! - [`answer`]: decisions, records and refusals as `…RS` responses.

pub mod answer;
pub mod translate;

use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use partitioner::{intake, Outcome, Prepared, Sender};

use crate::auth::{self, Partner, Partners};
use crate::body::{read_body, RequestBody};
use crate::dedup::{Claim, RequestFingerprint, StoredResponse};
use crate::gate::Gate;
use crate::headers::{self, IDEMPOTENT_REPLAYED};
use crate::mutate::{self, Mutations};
use crate::ota::codes::{OtaError, PROTOCOL_VIOLATION, UNABLE_TO_PROCESS};
use crate::ota::message;
use crate::ota::response::Answer;
use crate::ota::soap::{self, UsernameToken};
use crate::ota::xml::{self, Limits};
use crate::problem::ApiError;
use crate::ratelimit::Allowance;
use crate::reads::{self, Reads};
use crate::{metrics, wait};
use answer::{Form, Record};
use translate::{translate, Refused, ReservationRef};

/// What the route uses of the shared state.
#[derive(Clone, Copy)]
pub struct Stages<'a> {
    pub gate: &'a Gate,
    pub mutations: &'a Mutations,
    pub reads: &'a Reads,
}

/// Serves one OpenTravel request; every failure is answered as an `…RS` (or
/// `OTA_ErrorRS` before the message is known). `allowance` learns what is left in the
/// partner's bucket.
pub async fn serve(
    stages: Stages<'_>,
    request: Request<Incoming>,
    request_id: &str,
    allowance: &mut Option<Allowance>,
) -> Response<Full<Bytes>> {
    let path = request.uri().path().to_owned();
    let mut form = Form::default();
    let kind = |form: &Form| {
        form.header
            .as_ref()
            .map_or("unknown", |h| h.kind.request_name())
    };
    match run(stages, request, request_id, allowance, &mut form).await {
        Ok((response, result)) => {
            metrics::ota_message(kind(&form), result);
            response
        }
        Err(Failure::Api(error)) => {
            tracing::debug!(request_id, error = %error, "OpenTravel message refused");
            metrics::ota_message(kind(&form), "refused");
            form.refuse(&error, &path, request_id)
        }
        Err(Failure::Message(status, errors)) => {
            let first = errors
                .first()
                .map(|e| e.detail.as_str())
                .unwrap_or_default();
            tracing::debug!(request_id, error = first, "OpenTravel message refused");
            metrics::ota_message(kind(&form), "refused");
            form.respond(status, &Answer::Errors(errors))
        }
    }
}

/// The answer to a request refused anywhere before [`serve`] runs (overload), as
/// `OTA_ErrorRS`.
pub fn refusal(error: &ApiError, path: &str, request_id: &str) -> Response<Full<Bytes>> {
    Form::default().refuse(error, path, request_id)
}

/// Why a request is refused: a failure of the shared request path, or errors in the
/// message itself.
enum Failure {
    Api(ApiError),
    Message(StatusCode, Vec<OtaError>),
}

impl From<ApiError> for Failure {
    fn from(error: ApiError) -> Self {
        Failure::Api(error)
    }
}

impl From<Refused> for Failure {
    fn from(refused: Refused) -> Self {
        match refused {
            Refused::Invalid(errors) => Failure::Message(StatusCode::BAD_REQUEST, errors),
            Refused::Forbidden(error) => Failure::Message(StatusCode::FORBIDDEN, vec![error]),
        }
    }
}

/// An unreadable body: not XML, not within bounds, or not a message in an envelope we
/// take.
fn unreadable(why: impl std::fmt::Display) -> Failure {
    let error = OtaError::new(PROTOCOL_VIOLATION, UNABLE_TO_PROCESS, why.to_string());
    Failure::Message(StatusCode::BAD_REQUEST, vec![error])
}

/// The request's answer and what became of it (a metric label), or why it was refused.
/// `form` learns how the answer goes back as soon as the message is read.
async fn run(
    stages: Stages<'_>,
    request: Request<Incoming>,
    request_id: &str,
    allowance: &mut Option<Allowance>,
    form: &mut Form,
) -> Result<(Response<Full<Bytes>>, &'static str), Failure> {
    let Stages {
        gate,
        mutations,
        reads,
    } = stages;
    let (parts, body) = request.into_parts();
    if !headers::is_xml(&parts.headers) {
        return Err(ApiError::UnsupportedMediaType.into());
    }
    let bytes = read_body(RequestBody::Unread(body), mutations.max_body_bytes).await?;
    let document = xml::parse(&bytes, Limits::default()).map_err(unreadable)?;
    let unwrapped = soap::unwrap(&document).map_err(unreadable)?;
    form.soap = unwrapped.soap;
    let header = message::header(unwrapped.message)
        .map_err(|error| Failure::Message(StatusCode::BAD_REQUEST, vec![error]))?;
    form.header = Some(header.clone());

    // The table current now serves the whole request, even if a reload swaps it meanwhile.
    let partners = gate.partners.current();
    let partner = authenticate(&partners, &parts.headers, unwrapped.token.as_ref())?;
    gate.admit(partner, &parts, RequestBody::Read(bytes.clone()), allowance)
        .await?;
    partner.require_scope(translate::scope(header.kind))?;
    let translated = translate(&header, unwrapped.message, partner)?;
    for command in &translated.commands {
        partner.require_tenant(&command.tenant_id)?;
    }

    let key = match headers::optional_idempotency_key(&parts.headers)? {
        Some(key) => key.to_owned(),
        None => translated.key.clone(),
    };
    let events = place(translated.commands, &key, partner, request_id, mutations);
    let fingerprints: Vec<_> = events.iter().map(|event| event.fingerprint).collect();
    let fingerprint = RequestFingerprint::with_all(
        &fingerprints,
        parts.method.as_str(),
        parts.uri.path(),
        &bytes,
    );
    let reservation = translated.reservation;
    let max_wait = mutations.max_wait.min(wait::CEILING);
    let ticket = match mutations
        .dedup
        .claim(&partner.partner_id, &key, fingerprint)
        .await?
    {
        Claim::Replay(stored) => {
            let record = replayed(&stored, reservation.as_ref(), reads, partner).await;
            let answer = record.answer(reservation.as_ref(), max_wait.as_millis());
            let mut response = form.respond(StatusCode::OK, &answer);
            response.headers_mut().insert(
                IDEMPOTENT_REPLAYED.clone(),
                HeaderValue::from_static("true"),
            );
            return Ok((response, result(&record)));
        }
        Claim::Fresh(ticket) => ticket,
    };

    // A reservation waits for its decision, as OpenTravel answers are synchronous;
    // inventory is set, never decided against.
    let wait = reservation
        .as_ref()
        .map(|_| max_wait)
        .filter(|limit| !limit.is_zero());
    let traceparent = headers::traceparent(&parts.headers);
    let published = mutate::publish(mutations, ticket, events, wait, traceparent).await?;
    let record = match published.wait {
        Some(pending) => pending
            .decision()
            .await
            .map(|decision| Record::decided(&decision))
            .unwrap_or_default(),
        None if reservation.is_none() => Record {
            outcome: Some(Outcome::AllotmentSet),
            reason: None,
        },
        None => Record::default(),
    };
    // Stored after the wait, unlike the JSON API's 202: a retransmission (which finds
    // the claim in flight meanwhile) is owed the same answer, decision included.
    let stored = StoredResponse {
        status: StatusCode::OK.as_u16(),
        body: Bytes::from(serde_json::to_vec(&record).expect("always serializes")),
    };
    mutations.dedup.complete(published.ticket, stored).await;
    let answer = record.answer(reservation.as_ref(), max_wait.as_millis());
    Ok((form.respond(StatusCode::OK, &answer), result(&record)))
}

/// The partner a request's credentials name: the bearer header, the SOAP
/// `UsernameToken`, or both naming the same partner.
fn authenticate<'p>(
    partners: &'p Partners,
    headers: &HeaderMap,
    token: Option<&UsernameToken>,
) -> Result<&'p Partner, ApiError> {
    let by_header = auth::bearer_token(headers)
        .map(|_| partners.authenticate(headers))
        .transpose()?;
    let by_token = token
        .map(|token| partners.authenticate_username(&token.username, &token.password))
        .transpose()?;
    match (by_header, by_token) {
        (Some(one), Some(other)) if one.partner_id != other.partner_id => {
            Err(ApiError::Unauthorized)
        }
        (Some(partner), _) | (None, Some(partner)) => Ok(partner),
        (None, None) => Err(ApiError::Unauthorized),
    }
}

/// The events of `commands`, sent under `key`: one command takes the key itself, several
/// (an inventory message's ranges) `{key}#1`, `{key}#2`, …, so each has its own event id.
fn place(
    commands: Vec<partitioner::Command>,
    key: &str,
    partner: &Partner,
    request_id: &str,
    mutations: &Mutations,
) -> Vec<Prepared> {
    let received_at_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let several = commands.len() > 1;
    commands
        .into_iter()
        .enumerate()
        .map(|(index, command)| {
            let event_key = if several {
                format!("{key}#{}", index + 1)
            } else {
                key.to_owned()
            };
            let sender = Sender {
                partner_id: &partner.partner_id,
                any_partner: partner.acts_for_any_partner(),
                idempotency_key: &event_key,
                request_id,
                received_at_ms,
            };
            intake::place(command, &sender, &mutations.partitions)
        })
        .collect()
}

/// The record a retransmission finds, with a pending reservation looked up in the
/// projections in case it was decided since.
async fn replayed(
    stored: &StoredResponse,
    reservation: Option<&ReservationRef>,
    reads: &Reads,
    partner: &Partner,
) -> Record {
    let record = Record::from_stored(&stored.body);
    match reservation {
        Some(reservation) if record.outcome.is_none() => {
            let status = reads::booking(&reads.redis, partner, reservation.booking_id)
                .await
                .ok();
            record.resolved(reservation, status.as_ref())
        }
        _ => record,
    }
}

/// The metric label of what became of a taken message.
fn result(record: &Record) -> &'static str {
    match record.outcome {
        None => "pending",
        Some(Outcome::Rejected) => "rejected",
        Some(_) => "success",
    }
}

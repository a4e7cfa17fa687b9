//! The request step: from the body a partner sent to a mutation route to the event the
//! ingress publishes, with no I/O and no clock.
//!
//! Decode the route's request type (naming the first field serde could not read),
//! validate it into a command (the booking id of a create derived from the sender's
//! Idempotency-Key), derive the event id, choose the partition and wrap the command into
//! its envelope, stamped with the partition map that placed it. The ingress runs this
//! between its checks and its I/O (the idempotency claim, the publish); its benchmark and
//! the request fuzzer run the very same function.

use serde::de::DeserializeOwned;
use uuid::Uuid;

use crate::event::{Command, Envelope, EventMeta};
use crate::fingerprint::Fingerprint;
use crate::partition_map::{routing_key, PartitionMap};
use crate::request::{AllotmentRequest, BookingRequest, CancelRequest};
use crate::validate::Invalid;

/// The writes a partner can send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mutation {
    CreateBooking,
    ModifyBooking(Uuid),
    CancelBooking(Uuid),
    SetInventory,
}

impl Mutation {
    /// Whether the write concerns a booking, so that a consumer's decision on it is news
    /// to its sender (an allotment is always set).
    pub fn concerns_a_booking(self) -> bool {
        !matches!(self, Mutation::SetInventory)
    }
}

/// Who sent a request, under which key, and what the ingress knows of it.
#[derive(Clone, Copy, Debug)]
pub struct Sender<'a> {
    pub partner_id: &'a str,
    /// The partner may act on every partner's bookings of its tenants.
    pub any_partner: bool,
    pub idempotency_key: &'a str,
    pub request_id: &'a str,
    /// Milliseconds since the Unix epoch at which the request was accepted.
    pub received_at_ms: i64,
}

/// Why a body is refused: it is not the route's JSON, or it does not validate.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// Not JSON, or not the route's shape: the path of the first field serde could not
    /// read, then why.
    #[error("malformed body: {0}")]
    Malformed(String),
    #[error(transparent)]
    Invalid(#[from] Invalid),
}

/// A request made into its event, ready to be published.
#[derive(Clone, Debug)]
pub struct Prepared {
    pub envelope: Envelope,
    /// The validated command's, which tells a resend from a reused key.
    pub fingerprint: Fingerprint,
    /// Where the event goes, and its Kafka key.
    pub partition: i32,
    pub routing_key: String,
}

/// Makes the body of `mutation`, sent by `sender`, into its event placed by `partitions`.
pub fn prepare(
    mutation: Mutation,
    sender: &Sender<'_>,
    body: &[u8],
    partitions: &PartitionMap,
) -> Result<Prepared, RequestError> {
    Ok(place(command(mutation, sender, body)?, sender, partitions))
}

/// Places a validated `command`, sent by `sender`, into its event: the step after
/// decoding, shared by requests that do not arrive as the JSON API's bodies (the
/// OpenTravel messages).
pub fn place(command: Command, sender: &Sender<'_>, partitions: &PartitionMap) -> Prepared {
    let fingerprint = command.fingerprint();
    // The partition map keeps partitions below i32::MAX, Kafka's own limit.
    let partition = partitions.partition(&command.tenant_id, &command.property_id) as i32;
    let routing_key = routing_key(&command.tenant_id, &command.property_id);
    let meta = EventMeta {
        event_id: crate::event_id(
            &command.tenant_id,
            sender.partner_id,
            sender.idempotency_key,
        ),
        partner_id: sender.partner_id.to_owned(),
        request_id: sender.request_id.to_owned(),
        received_at_ms: sender.received_at_ms,
        any_partner: sender.any_partner,
    };
    let mut envelope = Envelope::new(command, meta);
    envelope.placement = Some(partitions.placement().to_owned());
    Prepared {
        envelope,
        fingerprint,
        partition,
        routing_key,
    }
}

/// The validated command of `mutation`'s body.
pub fn command(
    mutation: Mutation,
    sender: &Sender<'_>,
    body: &[u8],
) -> Result<Command, RequestError> {
    let command = match mutation {
        Mutation::CreateBooking => {
            let request: BookingRequest = decode(body)?;
            // An invalid tenant fails validation below, so the id made from it is never used.
            let tenant = request.tenant_id.as_deref().unwrap_or_default();
            let booking_id = crate::booking_id(tenant, sender.partner_id, sender.idempotency_key);
            request.into_create(booking_id)?
        }
        Mutation::ModifyBooking(booking_id) => {
            decode::<BookingRequest>(body)?.into_modify(booking_id)?
        }
        Mutation::CancelBooking(booking_id) => {
            decode::<CancelRequest>(body)?.into_cancel(booking_id)?
        }
        Mutation::SetInventory => decode::<AllotmentRequest>(body)?.into_allotment()?,
    };
    Ok(command)
}

/// Decodes one JSON document (trailing whitespace only), naming the path of the first
/// field serde could not read.
fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, RequestError> {
    let de = &mut serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(&mut *de).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        if path == "." {
            RequestError::Malformed(inner.to_string())
        } else {
            RequestError::Malformed(format!("{path}: {inner}"))
        }
    })?;
    // Without this a body with anything after its document would be accepted, and what
    // followed silently dropped.
    de.end()
        .map_err(|error| RequestError::Malformed(error.to_string()))?;
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Event;

    const CREATE: &[u8] = br#"{"tenant_id": "acme", "property_id": "lisbon-1",
        "room_type": "DBL", "check_in": "2027-03-10", "check_out": "2027-03-12",
        "rooms": 1, "guests": 2, "amount_minor": 25000, "currency": "EUR"}"#;

    fn sender() -> Sender<'static> {
        Sender {
            partner_id: "ota-1",
            any_partner: false,
            idempotency_key: "key-1",
            request_id: "req-1",
            received_at_ms: 7,
        }
    }

    #[test]
    fn a_create_becomes_its_placed_event() {
        let map = PartitionMap::parse(12, "acme=3..4").unwrap();
        let prepared = prepare(Mutation::CreateBooking, &sender(), CREATE, &map).unwrap();
        let envelope = &prepared.envelope;
        let booking_id = crate::booking_id("acme", "ota-1", "key-1");
        assert_eq!(envelope.event.booking_id(), Some(booking_id));
        assert_eq!(envelope.event_id, crate::event_id("acme", "ota-1", "key-1"));
        assert_eq!(
            (envelope.partner_id.as_str(), envelope.request_id.as_str()),
            ("ota-1", "req-1")
        );
        assert_eq!(envelope.received_at_ms, 7);
        assert_eq!(envelope.placement.as_deref(), Some("12:acme=3..4"));
        assert_eq!(prepared.partition, 3);
        assert_eq!(prepared.routing_key, "acme/lisbon-1");
        assert_eq!(prepared.fingerprint, envelope.fingerprint());
        assert!(envelope.check().is_ok());
    }

    #[test]
    fn each_mutation_reads_its_own_body() {
        let id = Uuid::from_u128(9);
        let cancel = br#"{"tenant_id": "acme", "property_id": "lisbon-1"}"#;
        let allotment = br#"{"tenant_id": "acme", "property_id": "lisbon-1",
            "room_type": "DBL", "from": "2027-03-01", "to": "2027-03-02", "units": 4}"#;
        let kind = |mutation, body: &[u8]| {
            let command = command(mutation, &sender(), body).unwrap();
            command.event.kind()
        };
        assert_eq!(kind(Mutation::ModifyBooking(id), CREATE), "modify_booking");
        assert_eq!(kind(Mutation::CancelBooking(id), cancel), "cancel_booking");
        assert_eq!(kind(Mutation::SetInventory, allotment), "set_allotment");
        let cancelled = command(Mutation::CancelBooking(id), &sender(), cancel).unwrap();
        assert!(matches!(
            cancelled.event,
            Event::CancelBooking { booking_id, .. } if booking_id == id
        ));
    }

    #[test]
    fn a_refusal_names_the_bad_field() {
        let malformed = |body: &[u8]| match command(Mutation::CreateBooking, &sender(), body) {
            Err(RequestError::Malformed(detail)) => detail,
            other => panic!("{other:?}"),
        };
        assert!(malformed(br#"{"tenant_id": "acme", "rooms": "two"}"#).starts_with("rooms: "));
        malformed(b"{not json");
        // One JSON document and nothing after it: whatever follows would be lost unread.
        let trailing = [CREATE, b"CNY".as_slice()].concat();
        assert!(malformed(&trailing).contains("trailing characters"));
        let two_documents = [CREATE, CREATE].concat();
        assert!(malformed(&two_documents).contains("trailing characters"));
        let spaced = [CREATE, b" \n".as_slice()].concat();
        assert!(command(Mutation::CreateBooking, &sender(), &spaced).is_ok());
        let cancel = Mutation::CancelBooking(Uuid::nil());
        match command(cancel, &sender(), br#"{"tenant_id": "a", "surprise": 1}"#) {
            Err(RequestError::Malformed(detail)) => assert!(detail.contains("surprise")),
            other => panic!("{other:?}"),
        }
        match command(
            Mutation::CreateBooking,
            &sender(),
            br#"{"tenant_id": "a/b"}"#,
        ) {
            Err(RequestError::Invalid(invalid)) => {
                assert!(invalid.fields().any(|f| f == "tenant_id"))
            }
            other => panic!("{other:?}"),
        }
    }
}

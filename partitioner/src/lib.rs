//! The contract between the ingress and the consumers, free of I/O.
//!
//! Everything both sides must agree on lives here and only here: the versioned event
//! envelope that travels on the `bookings` topic, the partner-facing request bodies and
//! their validation, the request step that makes a body into its event ([`intake`]), the
//! deterministic booking id, Kafka-compatible key hashing and the partition map. Keeping it
//! pure means the ingress and every consumer version can be tested against the same
//! functions, and a change to the wire format is a change to one crate. The one
//! exception, behind the `admin` feature, is the admin port both binaries serve
//! ([`admin`]), kept here so they serve it one way.
#![forbid(unsafe_code)]

#[cfg(feature = "admin")]
pub mod admin;
pub mod decision;
pub mod event;
pub mod fingerprint;
pub mod hash;
pub mod ids;
pub mod intake;
pub mod keys;
pub mod partition_map;
pub mod query;
pub mod recheck;
#[cfg(feature = "redis-client")]
pub mod redis_target;
pub mod request;
#[cfg(feature = "signing")]
pub mod signing;
pub mod validate;
#[cfg(feature = "signing")]
pub mod webhook;

pub use decision::{Decision, Outcome, RejectReason};
pub use event::{Command, DecodeError, Envelope, Event, EventMeta, Money, Stay, SCHEMA_VERSION};
pub use fingerprint::Fingerprint;
pub use ids::{booking_id, event_id};
pub use intake::{Mutation, Prepared, RequestError, Sender};
pub use partition_map::PartitionMap;
pub use query::{AvailabilityQuery, AvailabilityRange};
pub use request::{AllotmentRequest, BookingRequest, CancelRequest};
pub use validate::{FieldError, Invalid};

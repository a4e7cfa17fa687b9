//! The OpenTravel (OTA) XML dialect channel managers speak, read into the JSON API's
//! terms.
//!
//! Followed: the OpenTravel 2015A message schemas (namespace
//! `http://www.opentravel.org/OTA/2003/05`, which every release keeps), read leniently as
//! channel managers send them: no schema validation, any `Version` echoed back, values
//! taken where either of the schema's places for them holds them.
//!
//! - [`xml`]: the body as a bounded, namespace-resolved element tree, refusing DTDs,
//!   undeclared entities and documents too deep or too large;
//! - [`message`]: which message a document is, and its shared root attributes;
//! - [`reservation`]: a reservation (create, modify or cancel) read off its message;
//! - [`cancel`]: the reservation an `OTA_CancelRQ` cancels;
//! - [`inventory`]: allotments read off the two inventory messages;
//! - [`read`]: reading values off elements, each failure naming its path;
//! - [`command`]: what was read, as the JSON API's request bodies (validated by the same
//!   rules), the idempotency key each message gives, and field errors as OTA errors;
//! - [`amount`]: OTA totals as integer minor units;
//! - [`soap`]: the SOAP 1.1 envelope and its WS-Security `UsernameToken`;
//! - [`response`]: the `…RS` answers (success, pending, errors), bare or enveloped;
//! - [`codes`]: the OTA Error Warning Type and Error Code entries answered with.

pub mod amount;
pub mod cancel;
pub mod codes;
pub mod command;
pub mod inventory;
pub mod message;
pub mod read;
pub mod reservation;
pub mod response;
pub mod soap;
pub mod xml;

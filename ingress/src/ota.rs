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
//! - [`amount`]: OTA totals as integer minor units;
//! - [`codes`]: the OTA Error Warning Type and Error Code entries answered with.

pub mod amount;
pub mod codes;
pub mod message;
pub mod reservation;
pub mod xml;

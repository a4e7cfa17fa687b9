//! Load generation and verification for the booking pipeline.
//!
//! [`demo`] pushes a realistic mix of partner traffic through a running ingress and reports
//! what happened; [`verify`] then checks the consumers' store against every acknowledged
//! event ([`record`]); [`bench`] measures stages against their baselines.
#![forbid(unsafe_code)]

pub mod bench;
pub mod client;
pub mod demo;
pub mod open_loop;
pub mod produce;
pub mod record;
pub mod settle;
pub mod verify;

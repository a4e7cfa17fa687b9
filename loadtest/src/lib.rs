//! Load generation and verification for the booking pipeline.
//!
//! [`demo`] pushes a realistic mix of partner traffic through a running ingress and reports
//! what happened; [`verify`] then checks the consumers' store against every acknowledged
//! event ([`record`]); [`bench`] measures stages against their baselines, and
//! [`bench_pipeline`] every stage against its own baseline in one run.
#![forbid(unsafe_code)]

pub mod bare;
pub mod bench;
pub mod bench_pipeline;
pub mod charts;
pub mod child;
pub mod client;
pub mod closed_loop;
pub mod demo;
pub mod e2e;
pub mod endpoint;
pub mod fixed_rate;
pub mod latency;
pub mod open_loop;
pub mod produce;
pub mod progress;
pub mod ratios;
pub mod record;
pub mod redis_conn;
pub mod settle;
pub mod verify;
pub mod wrk;

//! The ingress: the HTTP front door of the booking pipeline.
//!
//! Channel partners push bookings and inventory over HTTP. The ingress authenticates
//! them ([`auth`]), checks headers and bodies ([`headers`], [`routes`], the validation in
//! `partitioner`), wraps each accepted request into a versioned event, picks its
//! partition and publishes it with an idempotent Kafka producer ([`publish`]), answering
//! 202 only once the broker has acknowledged the write, or, when the partner asks to wait
//! ([`wait`]), with the consumer's decision read back from the decisions topic ([`decisions`]). Every failure is one variant of
//! [`problem::ApiError`] and leaves as RFC 9457 problem+json. [`run`] is the whole server;
//! the binary in `main.rs` only adds configuration, logging and signals.
#![forbid(unsafe_code)]

pub mod admin;
pub mod api_socket;
pub mod auth;
pub mod body;
pub mod broker_watch;
pub mod config;
pub mod decisions;
pub mod dedup;
pub mod docs;
pub mod feed;
pub mod gate;
pub mod handler;
pub mod headers;
pub mod metrics;
pub mod mutate;
pub mod null_sink;
pub mod openapi;
pub mod ota;
pub mod ota_api;
pub mod problem;
pub mod publish;
pub mod ratelimit;
pub mod reads;
pub mod redis_link;
pub mod response;
pub mod routes;
pub mod server;
pub mod signing;
pub mod wait;

pub use api_socket::ApiSocket;
pub use config::{Config, LogFormat, SinkKind};
pub use server::{run, run_with_reload};

/// Why the ingress could not start or keep serving.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Partners(#[from] auth::LoadError),
    /// librdkafka refused the producer configuration.
    #[error("kafka producer: {0}")]
    Producer(rdkafka::error::KafkaError),
    #[error(transparent)]
    Topic(#[from] publish::TopicError),
    /// The Redis URL does not parse. An unreachable Redis is no error: the ingress starts
    /// without it and degrades.
    #[error("redis url: {0}")]
    RedisUrl(redis::RedisError),
    /// A startup task panicked or was cancelled.
    #[error("startup failed: {0}")]
    Startup(String),
}

impl Error {
    /// Whether an operator must fix the configuration before a restart can help. A
    /// missing topic or an unreachable broker is not counted: infra may still be
    /// creating the one or starting the other, and a restart may then succeed.
    pub fn is_config(&self) -> bool {
        match self {
            Error::Partners(_) | Error::Producer(_) | Error::RedisUrl(_) => true,
            Error::Topic(publish::TopicError::Overrides(_)) => true,
            Error::Topic(_) | Error::Startup(_) => false,
        }
    }

    /// The process exit code: 64 (`EX_USAGE`) for bad configuration, 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        if self.is_config() {
            64
        } else {
            1
        }
    }
}

//! `consumer deliver`: each decision POSTed to the webhook endpoints of the partners it
//! is for (the sender, and the booking's owner when another partner changed it), signed,
//! in order per booking, retried until delivered or dead-lettered.
//!
//! Two stages, so that no partner waits for another:
//!
//! 1. **Intake** ([`intake`]): the process reads `booking-decisions` in its group and
//!    appends each decision to each recipient's outbox in Redis ([`outbox`]), guarded by
//!    offset; the group's offsets move only past decisions Redis took. The group's lag is
//!    what an autoscaler scales on, and it stays small whatever the endpoints do.
//! 2. **Lanes** ([`lane`]): per partner, one process at a time ([`lease`]) sends the
//!    outbox in order, with the partner's concurrency and rate, each delivery retried with
//!    exponential backoff and jitter (honouring `Retry-After`) for the retry period, the
//!    partner's endpoint held off by its circuit breaker ([`breaker`]) while it fails. An
//!    entry leaves the outbox once delivered (2xx) or dead-lettered ([`dead_letter`]: 410
//!    Gone, expired, outbox full, host not allowed).
//!
//! Delivery is at least once: a crash between a partner's 2xx and the entry's deletion
//! sends the decision again, under the same delivery id (`Idempotency-Key`). Only
//! loopback and the operator's allowed hosts are contacted ([`endpoints`]); https goes
//! through rustls with the system's trust store.

mod breaker;
pub mod dead_letter;
mod endpoints;
mod intake;
mod lane;
mod lease;
mod outbox;
mod send;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use partitioner::redis_target::RedisTarget;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{error, info};

pub use endpoints::{AllowedHosts, Endpoints, Route};
pub use send::DELIVERY_ATTEMPT;

use crate::config::Config;
use crate::decision_reader::DecisionReader;
use crate::{projection, Error};
use dead_letter::DeadLetters;
use intake::Intake;
use lane::{Lane, RetryPolicy};

/// Runs the delivery service until `shutdown` resolves.
pub async fn run(
    config: &Config,
    admin_listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> Result<(), Error> {
    let path = config.partners_file.as_ref().ok_or_else(|| {
        Error::Setup("consumer deliver needs the partners file (CONSUMER_PARTNERS_FILE)".into())
    })?;
    let allowed = AllowedHosts::new(&config.webhook_allowed_hosts);
    let endpoints = Endpoints::load(path, &allowed).map_err(Error::Setup)?;
    let target: RedisTarget = config.redis_url.parse()?;
    let redis = target.lazy(projection::LIMITS)?;
    let dead_letters = DeadLetters::new(config)?;
    let sender = Arc::new(
        send::Sender::new(Duration::from_millis(config.webhook_timeout_ms))
            .map_err(|e| Error::Setup(format!("cannot load the system's TLS roots: {e}")))?,
    );
    let policy = RetryPolicy {
        first: Duration::from_millis(config.webhook_backoff_first_ms),
        max: Duration::from_secs(config.webhook_backoff_max_secs),
        retry_for: Duration::from_secs(config.webhook_retry_for_secs),
    };
    // Names this process in the partners' leases: a restarted one is another holder.
    let holder = uuid::Uuid::new_v4().to_string();
    let lanes_stop = CancellationToken::new();
    let mut lanes = JoinSet::new();
    for (partner, route) in endpoints.iter() {
        match route {
            Route::Deliver(endpoint) => {
                let lane = Arc::new(Lane::new(
                    partner,
                    endpoint.clone(),
                    redis.clone(),
                    sender.clone(),
                    dead_letters.clone(),
                    policy,
                ));
                lanes.spawn(lease::hold(lane, redis.clone(), holder.clone(), lanes_stop.clone()));
            }
            Route::Refused { host } => error!(
                partner,
                host,
                "the partner's webhook host is not allowed (CONSUMER_WEBHOOK_ALLOWED_HOSTS); its decisions are dead-lettered as host-not-allowed"
            ),
        }
    }
    info!(partners = lanes.len(), holder, redis = %target, "delivering decisions to partners' webhooks");
    let intake = Arc::new(Intake {
        redis,
        endpoints,
        dead_letters,
        backlog_max: config.webhook_backlog_max,
    });
    let reader = DecisionReader::join(
        config,
        &config.webhook_group,
        config.webhook_start,
        "deliver",
        admin_listener,
    )?;
    reader
        .run(shutdown, |batch| {
            let intake = intake.clone();
            Box::pin(async move { intake.take(batch).await })
        })
        .await;
    lanes_stop.cancel();
    while lanes.join_next().await.is_some() {}
    Ok(())
}

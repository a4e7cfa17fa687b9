//! Readiness that follows the broker: a load balancer should stop sending mutations to an
//! ingress that cannot reach Kafka, and send them again once it can.
//!
//! Every probe interval the producer's client asks a broker for the topic's metadata
//! ([`EventSink::probe`]). Two failures in a row mark the broker unreachable, so one slow
//! answer does not flap readiness; the first success marks it reachable again. `/healthz`
//! ignores all this: a process that cannot reach the broker is not broken, and restarting
//! it would only make it crash-loop on the startup metadata fetch.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::MissedTickBehavior;

use crate::admin::Health;
use crate::metrics;
use crate::publish::EventSink;

/// Failed probes in a row that mark the broker unreachable.
pub const FAILURES_TO_UNREADY: u32 = 2;

/// Probes until the task is aborted (at shutdown).
pub async fn watch_broker(sink: Arc<dyn EventSink>, health: Arc<Health>, interval: Duration) {
    let mut ticks = tokio::time::interval(interval);
    // A probe that took the whole interval is followed by the next one, not a burst.
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut failures = 0u32;
    metrics::broker_reachable(true);
    loop {
        ticks.tick().await;
        let probe_sink = sink.clone();
        // The metadata request blocks in librdkafka; keep it off the async workers.
        let outcome = tokio::task::spawn_blocking(move || probe_sink.probe(interval)).await;
        let error = match outcome {
            Ok(Ok(())) => None,
            Ok(Err(error)) => Some(error.to_string()),
            Err(error) => Some(format!("probe task failed: {error}")),
        };
        match error {
            None => {
                if failures >= FAILURES_TO_UNREADY {
                    tracing::info!("broker reachable again: ready");
                }
                failures = 0;
            }
            Some(error) => {
                failures = failures.saturating_add(1);
                if failures == FAILURES_TO_UNREADY {
                    tracing::warn!(%error, "broker unreachable: not ready until it answers");
                }
            }
        }
        let reachable = failures < FAILURES_TO_UNREADY;
        health.set_broker_reachable(reachable);
        metrics::broker_reachable(reachable);
    }
}

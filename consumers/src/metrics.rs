//! Every metric the consumers emit, declared, described and emitted in one place (the rest
//! of the crate calls the functions below), and the Prometheus recorder.
//!
//! Labels are bounded sets (partition numbers, outcomes), never tenants or bookings.

use std::time::Duration;

use metrics::{counter, gauge, histogram};
use metrics_exporter_prometheus::{BuildError, PrometheusHandle};

/// Events applied, by `outcome` (confirmed, rejected, ...).
pub const EVENTS_APPLIED: &str = "consumer_events_applied_total";
/// Events skipped, by `reason` (`replayed`: at or below the checkpoint; `resent`: an event
/// id applied before).
pub const EVENTS_SKIPPED: &str = "consumer_events_skipped_total";
/// Decisions published again for events the store had applied before (redelivered after
/// a crash, or resent by a partner).
pub const DECISIONS_REPUBLISHED: &str = "consumer_decisions_republished_total";
/// Events sent to the dead-letter topic, by `cause` (`undecodable`, or `unstorable`: the
/// store refused it on every try).
pub const DEAD_LETTERS: &str = "consumer_dead_letters_total";
/// Events per partition batch.
pub const BATCH_SIZE: &str = "consumer_batch_size_events";
/// Time to apply and commit one partition batch to the store.
pub const STORE_COMMIT_DURATION: &str = "consumer_store_commit_duration_seconds";
/// Store writes retried after an I/O error.
pub const STORE_RETRIES: &str = "consumer_store_retries_total";
/// Time from the ingress accepting an event to its effects being stored.
pub const END_TO_END_DURATION: &str = "consumer_accept_to_store_seconds";
/// Messages behind the end of each partition, by `partition`: what KEDA scales on.
pub const LAG: &str = "consumer_lag_messages";
/// Redis projection writes that failed.
pub const PROJECTION_ERRORS: &str = "consumer_projection_errors_total";
/// Owned partitions whose Redis projections are stale (missed writes, awaiting a rebuild).
pub const PROJECTION_STALE: &str = "consumer_projections_stale";
/// Decisions or dead letters that could not be published.
pub const PUBLISH_ERRORS: &str = "consumer_publish_errors_total";
/// Decisions copied to the replies topic for a waiting request, by outcome.
pub const REPLIES: &str = "consumer_replies_total";
/// Kafka errors seen by the consumer (fetch, commit), by `kind`.
pub const KAFKA_ERRORS: &str = "consumer_kafka_errors_total";
/// Partitions of the topic with events waiting whose committed offset has not moved for
/// `CONSUMER_STALL_AFTER_SECS`: unowned, or owned by a stuck consumer.
pub const PARTITIONS_STALLED: &str = "consumer_partitions_stalled";
/// Partitions currently owned by this process.
pub const OWNED_PARTITIONS: &str = "consumer_owned_partitions";
/// Owned partitions whose state a previous owner still holds: their worker waits for it.
pub const AWAITING_RELEASE: &str = "consumer_partitions_awaiting_release";
/// Owned partitions on which nothing more is applied, by `reason`: `events_deleted`
/// (events deleted from Kafka before they were applied, until `consumer accept-gap`),
/// `unknown_schema_version` (until a consumer that knows the version takes over),
/// `property_moved` (a new partition map moved a property there without its state, until
/// `consumer accept-placement`), `placement_unknown` (state but no accepted partition map,
/// likewise) or `fenced` (another process took the state over; for at
/// most `RETAKE_AFTER`).
pub const PARTITIONS_HELD: &str = "consumer_partitions_held";
/// `consumer feed`: decisions taken into partners' feeds, by result.
pub const FEED_APPENDS: &str = "consumer_feed_appends_total";
/// `consumer feed`: batches whose appends Redis refused or did not answer (retried).
pub const FEED_REDIS_ERRORS: &str = "consumer_feed_redis_errors_total";
/// `consumer deliver`: decisions taken into partners' webhook outboxes, by result.
pub const WEBHOOK_TAKEN_IN: &str = "consumer_webhook_taken_in_total";
/// `consumer deliver`: POSTs to partners' endpoints, by result.
pub const WEBHOOK_ATTEMPTS: &str = "consumer_webhook_attempts_total";
/// `consumer deliver`: decisions settled, by outcome (delivered, or a dead-letter reason).
pub const WEBHOOK_DELIVERIES: &str = "consumer_webhook_deliveries_total";
/// `consumer deliver`: undelivered decisions in a partner's outbox (reported by the
/// process delivering for it; 0 elsewhere).
pub const WEBHOOK_BACKLOG: &str = "consumer_webhook_backlog";
/// `consumer deliver`: age of a partner's oldest undelivered decision.
pub const WEBHOOK_OLDEST: &str = "consumer_webhook_oldest_undelivered_seconds";
/// `consumer deliver`: 1 while a partner's endpoint is held off by its circuit breaker.
pub const WEBHOOK_CIRCUIT_OPEN: &str = "consumer_webhook_circuit_open";
/// `consumer deliver`: from a decision's intake to its delivery.
pub const WEBHOOK_DELIVERY_DELAY: &str = "consumer_webhook_taken_in_to_delivered_seconds";
/// `consumer deliver`: outbox operations that failed against Redis (retried).
pub const WEBHOOK_REDIS_ERRORS: &str = "consumer_webhook_redis_errors_total";

/// Describes every metric so `/metrics` carries help text, and sets sensible buckets.
fn describe() {
    partitioner::redis_target::describe_metrics();
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_counter!(EVENTS_APPLIED, "Events applied to the store, by outcome");
    describe_counter!(
        EVENTS_SKIPPED,
        "Events skipped as replays or resent duplicates"
    );
    describe_counter!(
        DECISIONS_REPUBLISHED,
        "Decisions published again for events applied before"
    );
    describe_counter!(
        DEAD_LETTERS,
        "Events sent to the dead-letter topic, by cause"
    );
    describe_histogram!(BATCH_SIZE, Unit::Count, "Events per partition batch");
    describe_counter!(
        FEED_APPENDS,
        "consumer feed: decisions taken into partners' feeds, by result (appended, duplicate, undecodable, unaddressed)"
    );
    describe_counter!(
        WEBHOOK_TAKEN_IN,
        "consumer deliver: decisions taken into webhook outboxes, by result (appended, duplicate, backlog-full, host-not-allowed, undecodable)"
    );
    describe_counter!(
        WEBHOOK_ATTEMPTS,
        "consumer deliver: POSTs to partners' endpoints, by result (delivered, gone, 429, 4xx, 5xx, other, timeout, connection)"
    );
    describe_counter!(
        WEBHOOK_DELIVERIES,
        "consumer deliver: decisions settled, by outcome (delivered, gone, refused, expired, backlog-full, host-not-allowed)"
    );
    describe_gauge!(
        WEBHOOK_BACKLOG,
        Unit::Count,
        "consumer deliver: undelivered decisions in a partner's outbox"
    );
    describe_gauge!(
        WEBHOOK_OLDEST,
        Unit::Seconds,
        "consumer deliver: age of a partner's oldest undelivered decision"
    );
    describe_gauge!(
        WEBHOOK_CIRCUIT_OPEN,
        "consumer deliver: 1 while a partner's endpoint is held off by its circuit breaker"
    );
    describe_histogram!(
        WEBHOOK_DELIVERY_DELAY,
        Unit::Seconds,
        "consumer deliver: from a decision's intake to its delivery"
    );
    describe_counter!(
        WEBHOOK_REDIS_ERRORS,
        "consumer deliver: outbox operations that failed against Redis and were retried"
    );
    describe_counter!(
        FEED_REDIS_ERRORS,
        "consumer feed: batches of feed appends that failed against Redis and were retried"
    );
    describe_histogram!(
        STORE_COMMIT_DURATION,
        Unit::Seconds,
        "Time to apply and commit a partition batch"
    );
    describe_histogram!(
        END_TO_END_DURATION,
        Unit::Seconds,
        "Time from ingress acceptance to the store commit"
    );
    describe_counter!(STORE_RETRIES, "Store writes retried after an I/O error");
    describe_gauge!(LAG, Unit::Count, "Messages behind the partition end");
    describe_counter!(PROJECTION_ERRORS, "Failed Redis projection writes");
    describe_gauge!(
        PROJECTION_STALE,
        "Partitions whose Redis projections are stale"
    );
    describe_counter!(PUBLISH_ERRORS, "Decisions or dead letters not published");
    describe_counter!(
        REPLIES,
        "Decisions copied to the replies topic for a waiting request, by outcome (sent, or \
         failed: the request answers 202 when its wait runs out)"
    );
    describe_counter!(KAFKA_ERRORS, "Kafka errors seen by the consumer");
    describe_gauge!(
        PARTITIONS_STALLED,
        Unit::Count,
        "Partitions with waiting events whose committed offset stopped moving"
    );
    describe_gauge!(
        OWNED_PARTITIONS,
        Unit::Count,
        "Partitions owned by this process"
    );
    describe_gauge!(
        AWAITING_RELEASE,
        Unit::Count,
        "Owned partitions whose state a previous owner still holds"
    );
    describe_gauge!(
        PARTITIONS_HELD,
        Unit::Count,
        "Owned partitions on which nothing more is applied, by reason"
    );
}

/// Histogram buckets (seconds) for sub-millisecond to multi-second latencies.
const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];
/// Buckets (seconds) for webhook deliveries: from milliseconds to the retry period.
const DELIVERY_BUCKETS: &[f64] = &[
    0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0, 60.0, 300.0, 1800.0, 3600.0, 21600.0, 86400.0,
];
/// Buckets for batch sizes.
const SIZE_BUCKETS: &[f64] = &[1.0, 2.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0];

/// Installs the Prometheus recorder behind the admin port's `/metrics`, once; later calls
/// return the same handle. Fails if another recorder was installed first.
pub fn install() -> Result<&'static PrometheusHandle, BuildError> {
    partitioner::admin::install_recorder(
        &[
            (STORE_COMMIT_DURATION, LATENCY_BUCKETS),
            (END_TO_END_DURATION, LATENCY_BUCKETS),
            (BATCH_SIZE, SIZE_BUCKETS),
            (WEBHOOK_DELIVERY_DELAY, DELIVERY_BUCKETS),
        ],
        describe,
    )
}

/// One partition batch stored: how long its store write took and how many events it had.
pub fn batch_stored(elapsed: Duration, events: usize) {
    histogram!(STORE_COMMIT_DURATION).record(elapsed.as_secs_f64());
    histogram!(BATCH_SIZE).record(events as f64);
}

pub fn accepted_to_stored(elapsed: Duration) {
    histogram!(END_TO_END_DURATION).record(elapsed.as_secs_f64());
}

pub fn event_applied(outcome: &'static str) {
    counter!(EVENTS_APPLIED, "outcome" => outcome).increment(1);
}

pub fn events_skipped(replayed: usize, resent: usize) {
    counter!(EVENTS_SKIPPED, "reason" => "replayed").increment(replayed as u64);
    counter!(EVENTS_SKIPPED, "reason" => "resent").increment(resent as u64);
}

pub fn decisions_republished(count: usize) {
    counter!(DECISIONS_REPUBLISHED).increment(count as u64);
}

/// `cause` is `undecodable` or `unstorable`.
pub fn dead_letters(cause: &'static str, count: usize) {
    counter!(DEAD_LETTERS, "cause" => cause).increment(count as u64);
}

pub fn store_retried() {
    counter!(STORE_RETRIES).increment(1);
}

pub fn lag(partition: i32, messages: i64) {
    gauge!(LAG, "partition" => partition.to_string()).set(messages as f64);
}

pub fn projection_error() {
    counter!(PROJECTION_ERRORS).increment(1);
}

pub fn projections_stale(partitions: usize) {
    gauge!(PROJECTION_STALE).set(partitions as f64);
}

pub fn publish_error() {
    counter!(PUBLISH_ERRORS).increment(1);
}

/// `outcome` is `sent` or `failed`.
pub fn reply(outcome: &'static str) {
    counter!(REPLIES, "outcome" => outcome).increment(1);
}

/// `result`: `appended` to a recipient's feed, `duplicate` (read again, already there),
/// `undecodable` or `unaddressed` (a decision naming no partner, from an older consumer).
pub fn feed_appended(result: &'static str) {
    counter!(FEED_APPENDS, "result" => result).increment(1);
}

pub fn feed_redis_error() {
    counter!(FEED_REDIS_ERRORS).increment(1);
}

/// `result`: see [`WEBHOOK_TAKEN_IN`]'s description.
pub fn webhook_taken_in(result: &'static str) {
    counter!(WEBHOOK_TAKEN_IN, "result" => result).increment(1);
}

pub fn webhook_attempt(result: &'static str) {
    counter!(WEBHOOK_ATTEMPTS, "result" => result).increment(1);
}

/// A decision settled: `delivered` (after `delay` from its intake) or dead-lettered.
pub fn webhook_settled(outcome: &'static str, delay: Option<Duration>) {
    counter!(WEBHOOK_DELIVERIES, "outcome" => outcome).increment(1);
    if let Some(delay) = delay {
        histogram!(WEBHOOK_DELIVERY_DELAY).record(delay.as_secs_f64());
    }
}

/// A partner's backlog as its lane last saw it. Partners are the partners file's, a
/// bounded label set.
pub fn webhook_backlog(partner: &str, undelivered: u64, oldest: Duration) {
    let partner = partner.to_owned();
    gauge!(WEBHOOK_BACKLOG, "partner" => partner.clone()).set(undelivered as f64);
    gauge!(WEBHOOK_OLDEST, "partner" => partner).set(oldest.as_secs_f64());
}

pub fn webhook_circuit(partner: &str, open: bool) {
    gauge!(WEBHOOK_CIRCUIT_OPEN, "partner" => partner.to_owned()).set(if open { 1.0 } else { 0.0 });
}

pub fn webhook_redis_error() {
    counter!(WEBHOOK_REDIS_ERRORS).increment(1);
}

/// `kind` is `fetch`, `commit`, `feed` or `deliver` (the reads of the decisions topic by
/// `consumer feed` and `consumer deliver`).
pub fn kafka_error(kind: &'static str) {
    counter!(KAFKA_ERRORS, "kind" => kind).increment(1);
}

pub fn partitions_stalled(partitions: usize) {
    gauge!(PARTITIONS_STALLED).set(partitions as f64);
}

pub fn owned_partitions(partitions: usize) {
    gauge!(OWNED_PARTITIONS).set(partitions as f64);
}

/// A worker starts (`true`) or stops (`false`) waiting for a previous owner's release.
pub fn awaiting_release(waiting: bool) {
    gauge!(AWAITING_RELEASE).increment(if waiting { 1.0 } else { -1.0 });
}

/// A worker holds its partition for `reason` (`true`), or ends while holding it (`false`).
pub fn partition_held(reason: &'static str, held: bool) {
    gauge!(PARTITIONS_HELD, "reason" => reason).increment(if held { 1.0 } else { -1.0 });
}

/// Partitions fenced off this process and not yet taken back.
pub fn fenced_partitions(partitions: usize) {
    gauge!(PARTITIONS_HELD, "reason" => "fenced").set(partitions as f64);
}

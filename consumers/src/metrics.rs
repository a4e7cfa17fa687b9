//! Every metric the consumers emit, declared in one place.
//!
//! Labels are bounded sets (partition numbers, outcomes), never tenants or bookings.

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

/// Describes every metric so `/metrics` carries help text, and sets sensible buckets.
pub fn describe() {
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
pub const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];
/// Buckets for batch sizes.
pub const SIZE_BUCKETS: &[f64] = &[1.0, 2.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0];

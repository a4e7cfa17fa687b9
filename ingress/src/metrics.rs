//! Every metric the ingress emits, declared in one place, and the Prometheus recorder.
//!
//! Names follow `ingress_<name>_<unit>[_total]`. Labels take values from small fixed sets
//! (route templates, status codes, error classes) and never tenants, partners or ids, so
//! the series count stays bounded whatever partners send.

use std::time::Duration;

use metrics::{
    counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram, Unit,
};
use metrics_exporter_prometheus::{BuildError, PrometheusHandle};

pub const REQUESTS_TOTAL: &str = "ingress_requests_total";
pub const REQUEST_DURATION_SECONDS: &str = "ingress_request_duration_seconds";
pub const IN_FLIGHT_REQUESTS: &str = "ingress_in_flight_requests";
pub const PUBLISH_ERRORS_TOTAL: &str = "ingress_publish_errors_total";
pub const PUBLISH_DURATION_SECONDS: &str = "ingress_publish_duration_seconds";
pub const DEDUP_HITS_TOTAL: &str = "ingress_dedup_hits_total";
pub const DEDUP_FALLBACK_TOTAL: &str = "ingress_dedup_fallback_total";
pub const DEDUP_RECORDS_INLINE_TOTAL: &str = "ingress_dedup_records_written_inline_total";
pub const RATE_LIMITED_TOTAL: &str = "ingress_rate_limited_total";
pub const PARTNERS_RELOADS_TOTAL: &str = "ingress_partners_reloads_total";
pub const BROKER_REACHABLE: &str = "ingress_broker_reachable";
pub const SIGNATURES_REFUSED_TOTAL: &str = "ingress_signatures_refused_total";
pub const WAITS_TOTAL: &str = "ingress_waits_total";
pub const DECISIONS_READ_TOTAL: &str = "ingress_decisions_read_total";
pub const REPLY_PARTITIONS: &str = "ingress_reply_partitions";
pub const REPLY_PARTITIONS_READ: &str = "ingress_reply_partitions_read";
pub const OTA_MESSAGES_TOTAL: &str = "ingress_ota_messages_total";

/// Histogram buckets in seconds, dense around the 60 ms p99 publish target so a
/// regression shows in the bucket it crosses rather than vanishing into a wide one.
const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.04, 0.05, 0.06, 0.075,
    0.1, 0.15, 0.25, 0.5, 1.0, 2.5,
];

/// Installs the Prometheus recorder behind the admin port's `/metrics`, once; later calls
/// return the same handle. Fails if another recorder was installed first.
pub fn install() -> Result<&'static PrometheusHandle, BuildError> {
    partitioner::admin::install_recorder(
        &[
            (REQUEST_DURATION_SECONDS, LATENCY_BUCKETS),
            (PUBLISH_DURATION_SECONDS, LATENCY_BUCKETS),
        ],
        describe,
    )
}

fn describe() {
    partitioner::redis_target::describe_metrics();
    describe_counter!(
        REQUESTS_TOTAL,
        "API requests answered, by route template and status"
    );
    describe_histogram!(
        REQUEST_DURATION_SECONDS,
        Unit::Seconds,
        "API request latency by route template"
    );
    describe_gauge!(IN_FLIGHT_REQUESTS, "API requests being handled");
    describe_counter!(PUBLISH_ERRORS_TOTAL, "Failed publishes, by error class");
    describe_histogram!(
        PUBLISH_DURATION_SECONDS,
        Unit::Seconds,
        "Time from handing an event to the producer to its delivery report"
    );
    describe_counter!(
        DEDUP_HITS_TOTAL,
        "Idempotency-Key lookups that found a record, by tier (local or redis)"
    );
    describe_counter!(
        DEDUP_FALLBACK_TOTAL,
        "Idempotency and signature-replay checks decided without Redis because it was unavailable"
    );
    describe_counter!(
        DEDUP_RECORDS_INLINE_TOTAL,
        "Completed idempotency records a request wrote to Redis itself, before answering, because the queue of records written behind the answers was full (Redis slower than the requests)"
    );
    describe_counter!(
        RATE_LIMITED_TOTAL,
        "Requests refused with 429 by the per-partner rate limit"
    );
    describe_counter!(
        PARTNERS_RELOADS_TOTAL,
        "Partners file reloads, by result (ok, or error: the previous partners stay in force)"
    );
    describe_gauge!(
        BROKER_REACHABLE,
        "1 while the broker answers the readiness probe, 0 while it does not (not ready)"
    );
    describe_counter!(
        SIGNATURES_REFUSED_TOTAL,
        "Signed-partner requests refused with 401, by reason (the problem type)"
    );
    describe_counter!(
        WAITS_TOTAL,
        "Requests that asked Prefer: wait, by result (decided; timeout: answered 202 when \
         the wait ran out; unrouted: answered 202 at once, no reply partition assigned)"
    );
    describe_counter!(
        OTA_MESSAGES_TOTAL,
        "OpenTravel messages answered on POST /v1/ota, by root element and result (success, \
         pending: taken but not decided within the wait, rejected by the consumer, refused \
         before it was taken)"
    );
    describe_counter!(
        DECISIONS_READ_TOTAL,
        "Decisions read from this ingress's reply partitions"
    );
    describe_gauge!(
        REPLY_PARTITIONS,
        "Reply partitions this ingress names to waiting requests"
    );
    describe_gauge!(
        REPLY_PARTITIONS_READ,
        "Reply partitions this ingress reads: those it names, and those taken from it that \
         it reads on until the requests that named them have had their wait"
    );
}

pub fn request_done(route: &'static str, status: u16, elapsed: Duration) {
    counter!(REQUESTS_TOTAL, "route" => route, "status" => status_label(status)).increment(1);
    histogram!(REQUEST_DURATION_SECONDS, "route" => route).record(elapsed.as_secs_f64());
}

pub fn in_flight(delta: f64) {
    gauge!(IN_FLIGHT_REQUESTS).increment(delta);
}

pub fn publish_done(elapsed: Duration) {
    histogram!(PUBLISH_DURATION_SECONDS).record(elapsed.as_secs_f64());
}

pub fn publish_error(class: &'static str) {
    counter!(PUBLISH_ERRORS_TOTAL, "class" => class).increment(1);
}

pub fn dedup_hit(tier: &'static str) {
    counter!(DEDUP_HITS_TOTAL, "tier" => tier).increment(1);
}

pub fn dedup_fallback() {
    counter!(DEDUP_FALLBACK_TOTAL).increment(1);
}

pub fn dedup_record_written_inline() {
    counter!(DEDUP_RECORDS_INLINE_TOTAL).increment(1);
}

pub fn rate_limited() {
    counter!(RATE_LIMITED_TOTAL).increment(1);
}

pub fn broker_reachable(reachable: bool) {
    gauge!(BROKER_REACHABLE).set(if reachable { 1.0 } else { 0.0 });
}

/// `reason` is a [`crate::signing::SignatureError`] slug.
pub fn signature_refused(reason: &'static str) {
    counter!(SIGNATURES_REFUSED_TOTAL, "reason" => reason).increment(1);
}

/// `result` is `decided` or `timeout`.
pub fn wait_done(result: &'static str) {
    counter!(WAITS_TOTAL, "result" => result).increment(1);
}

/// An OpenTravel message answered: `message` its root element (`unknown` before it was
/// read), `result` `success`, `pending`, `rejected` or `refused`.
pub fn ota_message(message: &'static str, result: &'static str) {
    counter!(OTA_MESSAGES_TOTAL, "message" => message, "result" => result).increment(1);
}

pub fn decision_read() {
    counter!(DECISIONS_READ_TOTAL).increment(1);
}

pub fn reply_partitions(count: usize) {
    gauge!(REPLY_PARTITIONS).set(count as f64);
}

pub fn reply_partitions_read(count: usize) {
    gauge!(REPLY_PARTITIONS_READ).set(count as f64);
}

/// `result` is `ok` or `error`.
pub fn partners_reloaded(result: &'static str) {
    counter!(PARTNERS_RELOADS_TOTAL, "result" => result).increment(1);
}

/// Status codes as static strings, so recording a request allocates nothing.
fn status_label(status: u16) -> &'static str {
    match status {
        200 => "200",
        201 => "201",
        202 => "202",
        400 => "400",
        401 => "401",
        403 => "403",
        404 => "404",
        405 => "405",
        409 => "409",
        413 => "413",
        415 => "415",
        422 => "422",
        429 => "429",
        500 => "500",
        503 => "503",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_sorted_and_cover_the_target() {
        assert!(LATENCY_BUCKETS.windows(2).all(|w| w[0] < w[1]));
        assert!(LATENCY_BUCKETS.contains(&0.06));
    }

    #[test]
    fn requests_render_with_the_latency_buckets_once_installed() {
        install().unwrap();
        request_done("/v1/bookings", 202, Duration::from_millis(3));
        let rendered = partitioner::admin::recorder().unwrap().render();
        assert!(
            rendered.contains("ingress_requests_total{route=\"/v1/bookings\",status=\"202\"}"),
            "{rendered}"
        );
        assert!(
            rendered.contains(
                "ingress_request_duration_seconds_bucket{route=\"/v1/bookings\",le=\"0.06\"}"
            ),
            "{rendered}"
        );
    }

    #[test]
    fn every_status_the_api_sends_has_its_own_label() {
        for status in [
            200, 201, 202, 400, 401, 403, 404, 405, 409, 413, 415, 422, 429, 500, 503,
        ] {
            assert_eq!(status_label(status), status.to_string());
        }
        assert_eq!(status_label(418), "other");
    }
}

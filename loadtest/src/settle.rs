//! Waiting until the consumers have processed a run, as seen from the Redis projections.
//!
//! Each partition's projection checkpoint says through which offset its events are
//! reflected. Once every partition's checkpoint reaches the highest offset the ingress
//! acknowledged on it, every acknowledged event has been decided, whether it was applied or
//! dropped as a duplicate.

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use partitioner::keys;
use partitioner::redis_target::query_each;
use redis::AsyncCommands;
use uuid::Uuid;

use crate::demo::{DemoConfig, DemoReport};

pub async fn wait_for_projections(
    report: &mut DemoReport,
    config: &DemoConfig,
    contended_property: &str,
) -> anyhow::Result<()> {
    let mut redis = crate::redis_conn::connect(&config.redis_url).await?;
    let mut targets: BTreeMap<i32, i64> = BTreeMap::new();
    for event in &report.record.acked {
        let target = targets.entry(event.partition).or_insert(-1);
        *target = (*target).max(event.offset);
    }

    let started = Instant::now();
    loop {
        let mut pending = 0;
        for (partition, target) in &targets {
            let key = keys::projection_checkpoint(&config.bookings_topic, *partition);
            let through: Option<i64> = redis.get(key).await?;
            if through.is_none_or(|t| t < *target) {
                pending += 1;
            }
        }
        report.unsettled = pending;
        if pending == 0 {
            report.settled_in = Some(started.elapsed());
            break;
        }
        if started.elapsed() > config.wait {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Tally final statuses, one per booking.
    let mut seen = HashSet::new();
    let bookings: Vec<(Uuid, String)> = report
        .record
        .acked
        .iter()
        .filter_map(|e| e.booking_id.map(|id| (id, e.property_id.clone())))
        .filter(|(id, _)| seen.insert(*id))
        .collect();
    for chunk in bookings.chunks(500) {
        let reads = chunk.iter().map(|(id, _)| {
            let mut read = redis::cmd("HMGET");
            read.arg(keys::booking_status(*id))
                .arg(keys::booking_field::STATUS)
                .arg(keys::booking_field::REASON);
            read
        });
        let answers: Vec<(Option<String>, Option<String>)> =
            query_each(&redis, reads, crate::redis_conn::IN_FLIGHT).await?;
        for ((_, property), (status, reason)) in chunk.iter().zip(answers) {
            let status = status.unwrap_or_else(|| "missing".to_owned());
            if status == "confirmed" && property == contended_property {
                report.contention_confirmed += 1;
            }
            *report.statuses.entry(status).or_default() += 1;
            if let Some(reason) = reason.filter(|r| !r.is_empty()) {
                *report.reasons.entry(reason).or_default() += 1;
            }
        }
    }
    Ok(())
}

//! Finds partitions of the bookings topic that nobody moves: events waiting (the high
//! watermark is past the group's committed offset) and the committed offset unchanged for
//! longer than `CONSUMER_STALL_AFTER_SECS`.
//!
//! Kafka's group coordinator moves a dead member's partitions by itself once its session
//! times out, but an owner that is alive and wedged (waiting for a store lock, a failing
//! disk, a partition whose previous owner never let go) keeps heartbeating and keeps its
//! partitions, and nothing in the group protocol notices. Its committed offset stops while
//! the lag grows: that is what this check reports, for an operator (alert
//! `PartitionsStalled`) and not for a repair no member could make. It uses only the Kafka
//! protocol (Metadata, OffsetFetch for the group, ListOffsets), so it sees every partition,
//! owned by this process or not. Every member of the group runs it; a stalled partition is
//! logged as an error when it stalls and counted in `consumer_partitions_stalled`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::consumer::Consumer;
use rdkafka::{Offset, TopicPartitionList};
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info};

use crate::metrics;
use crate::pipeline::KafkaConsumer;

/// Longest wait for one broker request of the check.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// One partition as last seen.
struct Seen {
    committed: i64,
    /// Since when the committed offset has not moved while events were waiting.
    waiting_since: Option<Instant>,
    reported: bool,
}

/// Checks every `stall_after / 4` (at least every second, at most every 30 s) until
/// `stopping` is cancelled. A zero `stall_after` turns the check off.
pub async fn watch(
    consumer: Arc<KafkaConsumer>,
    topic: String,
    stall_after: Duration,
    stopping: CancellationToken,
) {
    if stall_after.is_zero() {
        return;
    }
    let every = (stall_after / 4).clamp(Duration::from_secs(1), Duration::from_secs(30));
    let mut ticks = tokio::time::interval(every);
    let mut seen: HashMap<i32, Seen> = HashMap::new();
    loop {
        tokio::select! {
            () = stopping.cancelled() => return,
            _ = ticks.tick() => {}
        }
        let (reader, name) = (consumer.clone(), topic.clone());
        let positions = tokio::task::spawn_blocking(move || positions(&reader, &name)).await;
        match positions {
            Ok(Ok(positions)) => review(&mut seen, &positions, stall_after),
            Ok(Err(e)) => {
                debug!(error = %e, "stalled-partition check skipped: broker request failed")
            }
            Err(e) => debug!(error = %e, "stalled-partition check failed"),
        }
    }
}

/// Per partition of the topic: (the group's committed offset, the high watermark).
fn positions(
    consumer: &KafkaConsumer,
    topic: &str,
) -> rdkafka::error::KafkaResult<Vec<(i32, i64, i64)>> {
    let metadata = consumer.fetch_metadata(Some(topic), REQUEST_TIMEOUT)?;
    let mut list = TopicPartitionList::new();
    for t in metadata.topics().iter().filter(|t| t.name() == topic) {
        for p in t.partitions() {
            list.add_partition(topic, p.id());
        }
    }
    let committed = consumer.committed_offsets(list, REQUEST_TIMEOUT)?;
    let mut positions = Vec::new();
    for element in committed.elements_for_topic(topic) {
        let (low, high) = consumer.fetch_watermarks(topic, element.partition(), REQUEST_TIMEOUT)?;
        // No commit yet: the group starts at the earliest offset still kept.
        let committed = match element.offset() {
            Offset::Offset(n) => n,
            _ => low,
        };
        positions.push((element.partition(), committed, high));
    }
    Ok(positions)
}

/// Updates what was seen, reporting the partitions that stalled at this check.
fn review(seen: &mut HashMap<i32, Seen>, positions: &[(i32, i64, i64)], stall_after: Duration) {
    let now = Instant::now();
    for &(partition, committed, high) in positions {
        let waiting = high > committed;
        let Some(entry) = seen.get_mut(&partition) else {
            // First sight: whether it moves shows only at the next check.
            let waiting_since = waiting.then_some(now);
            seen.insert(
                partition,
                Seen {
                    committed,
                    waiting_since,
                    reported: false,
                },
            );
            continue;
        };
        if committed != entry.committed || !waiting {
            if entry.reported {
                info!(partition, committed, "partition moves again");
            }
            *entry = Seen {
                committed,
                waiting_since: waiting.then_some(now),
                reported: false,
            };
            continue;
        }
        let since = *entry.waiting_since.get_or_insert(now);
        if now.duration_since(since) >= stall_after && !entry.reported {
            entry.reported = true;
            error!(
                partition,
                committed,
                lag = high - committed,
                stalled_for = ?now.duration_since(since),
                "partition stalled: events are waiting and its committed offset has not moved; \
                 its owner is stuck (see the runbook \"Partition stalled\")"
            );
        }
    }
    let stalled = seen.values().filter(|s| s.reported).count();
    metrics::partitions_stalled(stalled);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partition_with_waiting_events_and_no_progress_is_stalled_only_after_the_threshold() {
        let mut seen = HashMap::new();
        let stalled = |seen: &HashMap<i32, Seen>| {
            let mut s: Vec<i32> = seen
                .iter()
                .filter(|(_, s)| s.reported)
                .map(|(p, _)| *p)
                .collect();
            s.sort_unstable();
            s
        };
        // Partition 0 moves, 1 has nothing waiting, 2 has waiting events and stands still.
        review(
            &mut seen,
            &[(0, 5, 10), (1, 7, 7), (2, 3, 9)],
            Duration::ZERO,
        );
        assert_eq!(
            stalled(&seen),
            Vec::<i32>::new(),
            "first sight proves nothing"
        );
        review(
            &mut seen,
            &[(0, 6, 10), (1, 7, 7), (2, 3, 12)],
            Duration::ZERO,
        );
        assert_eq!(stalled(&seen), vec![2]);
        // Once it moves again it is no longer stalled.
        review(
            &mut seen,
            &[(0, 7, 10), (1, 7, 7), (2, 4, 12)],
            Duration::ZERO,
        );
        assert_eq!(stalled(&seen), Vec::<i32>::new());

        let mut patient = HashMap::new();
        review(&mut patient, &[(2, 3, 9)], Duration::from_secs(3600));
        review(&mut patient, &[(2, 3, 9)], Duration::from_secs(3600));
        assert_eq!(stalled(&patient), Vec::<i32>::new());
    }
}

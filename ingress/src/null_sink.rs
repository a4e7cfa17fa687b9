//! A sink that acknowledges every event at once and keeps none: **for benchmarks only**.
//!
//! `INGRESS_SINK=null` swaps it in for [`crate::publish::KafkaSink`] so a benchmark can
//! measure the ingress's own cost (auth, validation, the idempotency tiers, partitioning,
//! serialisation) against a bare HTTP handler, with the broker out of the picture. A 202
//! from it means nothing was stored: the event is dropped on the floor. It needs no
//! broker, so readiness never waits on one, and the decisions topic is not read.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use futures::future::BoxFuture;

use crate::publish::{Delivered, EventSink, OutboundEvent, PublishError, TopicError};

/// The partition count the partition map is built with, since there is no topic to ask:
/// the local stack's `bookings` layout, so the answers look like the real ones.
pub const NULL_SINK_PARTITIONS: u32 = 12;

/// Acknowledges at once with a made-up offset that grows per event.
#[derive(Debug, Default)]
pub struct NullSink {
    next_offset: AtomicI64,
}

impl EventSink for NullSink {
    fn publish(&self, event: OutboundEvent) -> BoxFuture<'static, Result<Delivered, PublishError>> {
        let offset = self.next_offset.fetch_add(1, Ordering::Relaxed);
        Box::pin(std::future::ready(Ok(Delivered {
            partition: event.partition,
            offset,
        })))
    }

    fn flush(&self, _timeout: Duration) -> Result<(), PublishError> {
        Ok(())
    }

    fn probe(&self, _timeout: Duration) -> Result<(), TopicError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn acknowledges_at_once_with_growing_offsets() {
        let sink = NullSink::default();
        let event = |partition| OutboundEvent {
            partition,
            key: "t/p".into(),
            payload: b"{}".to_vec(),
            event_type: "booking.created",
            request_id: "r".into(),
            partner_id: "ota-1".into(),
            traceparent: None,
            reply_partition: None,
        };
        let first = sink.publish(event(3)).await.unwrap();
        let second = sink.publish(event(5)).await.unwrap();
        assert_eq!(
            first,
            Delivered {
                partition: 3,
                offset: 0
            }
        );
        assert_eq!(
            second,
            Delivered {
                partition: 5,
                offset: 1
            }
        );
        assert!(sink.flush(Duration::ZERO).is_ok());
        assert!(sink.probe(Duration::ZERO).is_ok());
    }
}

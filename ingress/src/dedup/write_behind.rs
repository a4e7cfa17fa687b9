//! Completed records written to Redis behind the answer, not before it.
//!
//! A request's own marker already holds its key in Redis from the claim on, so the
//! completed record changes only what another replica answers a retry: "in flight, retry
//! shortly" (409) until the record lands, the stored 202 after. Writing it behind the
//! answer therefore keeps every guarantee (no second publish, the same answer replayed)
//! while the request path makes one Redis round trip instead of two. This process's own
//! tier is completed before the answer leaves, so a retry here replays at once.
//!
//! One writer task takes every record queued since its last batch and sends them at once,
//! so it wakes once per batch and the shared connection can write them together. A full
//! queue (Redis slower than the requests) makes the request write its record itself,
//! which bounds memory and slows the requests as a synchronous write would. Should the
//! process die with records queued, their markers expire after the lock time, as they do
//! when a write fails: a retry then publishes the same event id again, which consumers
//! drop as a duplicate.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use super::{redis, Record};
use crate::metrics;
use crate::redis_link::RedisLink;

/// Records waiting for the writer before requests write their own.
const QUEUE: usize = 4_096;
/// The most records in one batch.
const BATCH: usize = 256;

enum Queued {
    Record {
        key: String,
        record: Record,
    },
    /// Answered once every record queued before it was written (or failed).
    Flush(oneshot::Sender<()>),
}

pub(super) struct WriteBehind {
    link: Arc<RedisLink>,
    ttl: Duration,
    queue: mpsc::Sender<Queued>,
}

impl WriteBehind {
    /// Starts the writer on the current runtime.
    pub(super) fn start(link: Arc<RedisLink>, ttl: Duration) -> WriteBehind {
        let (queue, queued) = mpsc::channel(QUEUE);
        tokio::spawn(write(link.clone(), ttl, queued));
        WriteBehind { link, ttl, queue }
    }

    /// Queues `record` under `key`; writes it at once when the queue is full.
    pub(super) async fn store(&self, key: String, record: Record) {
        match self.queue.try_send(Queued::Record { key, record }) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(Queued::Record { key, record })) => {
                metrics::dedup_record_written_inline();
                store(&self.link, &key, &record, self.ttl).await;
            }
            // The writer lives as long as the runtime; a closed queue means shutdown.
            Err(_) => {}
        }
    }

    /// Waits until every record queued so far was written or failed.
    pub(super) async fn flush(&self) {
        let (done, flushed) = oneshot::channel();
        if self.queue.send(Queued::Flush(done)).await.is_ok() {
            let _ = flushed.await;
        }
    }
}

async fn write(link: Arc<RedisLink>, ttl: Duration, mut queued: mpsc::Receiver<Queued>) {
    let mut batch = Vec::with_capacity(BATCH);
    while queued.recv_many(&mut batch, BATCH).await > 0 {
        let (mut writes, mut flushed) = (Vec::with_capacity(batch.len()), Vec::new());
        for queued in batch.drain(..) {
            match queued {
                Queued::Record { key, record } => writes.push((key, record)),
                Queued::Flush(done) => flushed.push(done),
            }
        }
        // Sent at once, so the shared connection can put them in one write.
        futures::future::join_all(
            writes
                .iter()
                .map(|(key, record)| store(&link, key, record, ttl)),
        )
        .await;
        for done in flushed {
            let _ = done.send(());
        }
    }
}

async fn store(link: &RedisLink, key: &str, record: &Record, ttl: Duration) {
    if let Err(error) = redis::store(link, key, record, ttl).await {
        metrics::dedup_fallback();
        tracing::debug!(%error, "idempotency record kept in the local tier only");
    }
}

//! Backpressure per partition: a worker that falls behind pauses its own partition's
//! fetching, never the others'.
//!
//! All partitions arrive through the one consumer queue, so the consume loop cannot wait
//! for a slow worker without stalling every other partition. Instead it hands messages
//! over at once and counts them here; past the high-water mark the partition is paused in
//! librdkafka (which drops what it prefetched for it and, on resume, fetches again from the
//! message after the last one handed over), and the worker resumes it once it has drained
//! to the low-water mark. A worker's queue is therefore bounded by the high-water mark plus
//! the few messages already polled when the pause took effect.

use std::sync::Mutex;

use rdkafka::consumer::Consumer;
use rdkafka::TopicPartitionList;
use tracing::{debug, warn};

pub struct Flow {
    topic: String,
    partition: i32,
    high: usize,
    low: usize,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    queued: usize,
    paused: bool,
    /// Set once the worker is retired: its partition's pause belongs to nobody any more.
    released: bool,
}

impl Flow {
    pub fn new(topic: &str, partition: i32, batch: usize) -> Flow {
        Flow {
            topic: topic.to_owned(),
            partition,
            high: batch.saturating_mul(8).max(1),
            low: batch.saturating_mul(2),
            state: Mutex::new(State::default()),
        }
    }

    /// A message was handed to the worker; pauses the partition past the high-water mark.
    pub fn queued<C: Consumer<X>, X: rdkafka::consumer::ConsumerContext>(&self, consumer: &C) {
        let mut state = self.state.lock().expect("flow lock poisoned");
        state.queued += 1;
        if state.queued >= self.high && !state.paused && !state.released {
            // Under the lock, so a concurrent resume cannot overtake this pause.
            match consumer.pause(&self.list()) {
                Ok(()) => {
                    state.paused = true;
                    debug!(
                        partition = self.partition,
                        queued = state.queued,
                        "worker behind; partition paused"
                    );
                }
                Err(e) => {
                    warn!(error = %e, partition = self.partition, "could not pause a partition")
                }
            }
        }
    }

    /// The worker took `n` messages; resumes the partition at the low-water mark.
    pub fn taken<C: Consumer<X>, X: rdkafka::consumer::ConsumerContext>(
        &self,
        n: usize,
        consumer: &C,
    ) {
        let mut state = self.state.lock().expect("flow lock poisoned");
        state.queued = state.queued.saturating_sub(n);
        if state.paused && state.queued <= self.low && !state.released {
            match consumer.resume(&self.list()) {
                Ok(()) => {
                    state.paused = false;
                    debug!(
                        partition = self.partition,
                        "worker caught up; partition resumed"
                    );
                }
                Err(e) => {
                    warn!(error = %e, partition = self.partition, "could not resume a partition")
                }
            }
        }
    }

    /// Marks the worker retired; true if its partition was left paused, which the caller
    /// must undo so that a later assignment of the partition fetches again.
    pub fn release(&self) -> bool {
        let mut state = self.state.lock().expect("flow lock poisoned");
        state.released = true;
        std::mem::take(&mut state.paused)
    }

    fn list(&self) -> TopicPartitionList {
        let mut list = TopicPartitionList::new();
        list.add_partition(&self.topic, self.partition);
        list
    }
}

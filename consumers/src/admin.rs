//! The consumer's readiness, served on the admin port ([`partitioner::admin`]) with
//! `/metrics` and `/healthz`.

use std::sync::atomic::{AtomicBool, Ordering};

use partitioner::admin::Readiness;

/// Ready while the consumer is in its group and able to apply events.
#[derive(Debug)]
pub struct InGroup(AtomicBool);

impl InGroup {
    pub fn new(ready: bool) -> Self {
        InGroup(AtomicBool::new(ready))
    }

    pub fn set(&self, ready: bool) {
        self.0.store(ready, Ordering::Relaxed);
    }
}

impl Readiness for InGroup {
    fn not_ready_because(&self) -> Option<&'static str> {
        (!self.0.load(Ordering::Relaxed)).then_some("not ready: leaving the group\n")
    }
}

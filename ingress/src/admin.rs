//! The ingress's readiness, served on the admin port ([`partitioner::admin`]): ready only
//! between a successful startup (topic metadata fetched) and the start of shutdown, and
//! only while the broker answers ([`crate::broker_watch`]), which is what a load balancer
//! should route on.

use std::sync::atomic::{AtomicBool, Ordering};

use partitioner::admin::Readiness;

/// Whether the ingress should receive traffic.
#[derive(Debug, Default)]
pub struct Health {
    /// Started and not yet shutting down.
    ready: AtomicBool,
    /// The broker probe's verdict; reachable until a probe says otherwise, since startup
    /// itself needed the broker.
    broker_unreachable: AtomicBool,
}

impl Health {
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::SeqCst);
    }

    pub fn set_broker_reachable(&self, reachable: bool) {
        self.broker_unreachable.store(!reachable, Ordering::SeqCst);
    }

    pub fn is_ready(&self) -> bool {
        self.not_ready_because().is_none()
    }
}

impl Readiness for Health {
    fn not_ready_because(&self) -> Option<&'static str> {
        if !self.ready.load(Ordering::SeqCst) {
            Some("not ready: starting or stopping\n")
        } else if self.broker_unreachable.load(Ordering::SeqCst) {
            Some("not ready: broker unreachable\n")
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readiness_follows_startup_and_the_broker() {
        let health = Health::default();
        assert!(!health.is_ready());
        health.set_ready(true);
        assert!(health.is_ready());
        health.set_broker_reachable(false);
        assert_eq!(
            health.not_ready_because(),
            Some("not ready: broker unreachable\n")
        );
        health.set_broker_reachable(true);
        assert!(health.is_ready());
        health.set_ready(false);
        assert!(!health.is_ready());
    }
}

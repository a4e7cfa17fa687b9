//! Which parts of Redis are failing, and when each may be tried again.
//!
//! A single node fails as a whole. A cluster fails by hash slot: with a master and its
//! replica both gone, the other masters still serve their slots, so only commands for
//! keys in the lost slots fail fast while every other key keeps its shared idempotency
//! record and its reads. While a part is down, one command per probe interval tries it;
//! the others for that part fail at once. A part nobody asked for during
//! [`FORGET_AFTER_PROBES`] probe intervals is forgotten, so an outage ends even for slots
//! no request touches again (should one still be down, its next command finds out).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use redis::cluster_routing::Slot;

/// How many probe intervals a failed part stays remembered without a command for it.
const FORGET_AFTER_PROBES: u32 = 10;

/// A part of Redis that fails as one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Part {
    /// The single node.
    Whole,
    /// The hash slot of a cluster that a key belongs to.
    Slot(Slot),
}

impl Part {
    /// The part that answers for `key`.
    pub fn of(key: &str, cluster: bool) -> Part {
        if cluster {
            Part::Slot(Slot::for_key(key))
        } else {
            Part::Whole
        }
    }
}

pub struct Outages {
    /// False while nothing is down, so a healthy Redis costs a command one atomic load.
    any: AtomicBool,
    down: Mutex<Down>,
    probe_interval: Duration,
}

struct Down {
    /// The failing parts, each with when it may next be probed.
    parts: HashMap<Part, Instant>,
    /// When parts without commands were last forgotten.
    swept: Instant,
}

impl Outages {
    pub fn new(probe_interval: Duration) -> Outages {
        Outages {
            any: AtomicBool::new(false),
            down: Mutex::new(Down {
                parts: HashMap::new(),
                swept: Instant::now(),
            }),
            probe_interval,
        }
    }

    fn down(&self) -> MutexGuard<'_, Down> {
        self.down.lock().expect("outage map lock poisoned")
    }

    /// Whether a command for `part` may try Redis at `now`: always while `part` is up;
    /// while it is down, only the one caller that claims a due probe.
    pub fn admit(&self, part: Part, now: Instant) -> bool {
        if !self.any.load(Ordering::Acquire) {
            return true;
        }
        match self.down().parts.get_mut(&part) {
            None => true,
            Some(probe_at) if now >= *probe_at => {
                *probe_at = now + self.probe_interval;
                true
            }
            Some(_) => false,
        }
    }

    /// Records that `part` answered at `now`; true if that ended the outage (nothing is
    /// down now).
    pub fn succeeded(&self, part: Part, now: Instant) -> bool {
        if !self.any.load(Ordering::Acquire) {
            return false;
        }
        let mut down = self.down();
        down.parts.remove(&part);
        if now >= down.swept + self.probe_interval {
            let forget_after = self.probe_interval * FORGET_AFTER_PROBES;
            down.parts
                .retain(|_, probe_at| now < *probe_at + forget_after);
            down.swept = now;
        }
        if !down.parts.is_empty() {
            return false;
        }
        self.any.store(false, Ordering::Release);
        true
    }

    /// Records that `part` failed at `now`; true if that began an outage (nothing was
    /// down before).
    pub fn failed(&self, part: Part, now: Instant) -> bool {
        let mut down = self.down();
        let began = down.parts.is_empty();
        down.parts.insert(part, now + self.probe_interval);
        self.any.store(true, Ordering::Release);
        began
    }

    /// Whether any part is down.
    pub fn any(&self) -> bool {
        self.any.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INTERVAL: Duration = Duration::from_millis(200);

    fn slot_of(key: &str) -> Part {
        Part::of(key, true)
    }

    #[test]
    fn a_single_node_is_one_part_and_a_cluster_one_per_slot() {
        assert_eq!(Part::of("avail:a", false), Part::of("booking:b", false));
        assert_ne!(slot_of("avail:a"), slot_of("booking:b"));
        // Keys sharing a hash tag share their slot.
        assert_eq!(slot_of("x:{t}:1"), slot_of("y:{t}:2"));
    }

    #[test]
    fn a_failed_slot_fails_fast_until_its_probe_and_other_slots_go_on() {
        let outages = Outages::new(INTERVAL);
        let (lost, served) = (slot_of("avail:a"), slot_of("booking:b"));
        let t0 = Instant::now();
        assert!(outages.admit(lost, t0));
        assert!(
            outages.failed(lost, t0),
            "the first failure begins the outage"
        );
        assert!(
            !outages.admit(lost, t0 + INTERVAL / 2),
            "no probe before it is due"
        );
        assert!(outages.admit(served, t0), "another slot is not held back");
        assert!(
            !outages.succeeded(served, t0),
            "nothing ended: the lost slot is still down"
        );
        assert!(outages.admit(lost, t0 + INTERVAL), "the probe is due");
        assert!(
            !outages.admit(lost, t0 + INTERVAL),
            "and only one caller gets it"
        );
        assert!(
            outages.succeeded(lost, t0 + INTERVAL),
            "its success ends the outage"
        );
        assert!(!outages.any());
        assert!(outages.admit(lost, t0 + INTERVAL));
    }

    #[test]
    fn the_outage_ends_when_the_last_failed_part_answers() {
        let outages = Outages::new(INTERVAL);
        let (a, b) = (slot_of("avail:a"), slot_of("booking:b"));
        let t0 = Instant::now();
        assert!(outages.failed(a, t0));
        assert!(!outages.failed(b, t0), "the outage had begun already");
        assert!(!outages.succeeded(a, t0));
        assert!(outages.any());
        assert!(outages.succeeded(b, t0));
        assert!(!outages.any());
    }

    #[test]
    fn a_failed_part_nobody_asks_for_is_forgotten() {
        let outages = Outages::new(INTERVAL);
        let (idle, busy) = (slot_of("avail:a"), slot_of("booking:b"));
        let t0 = Instant::now();
        assert!(outages.failed(idle, t0));
        assert!(
            !outages.succeeded(busy, t0 + INTERVAL * 2),
            "still remembered"
        );
        let later = t0 + INTERVAL * (FORGET_AFTER_PROBES + 1);
        assert!(
            outages.succeeded(busy, later),
            "forgotten: the outage is over"
        );
        assert!(outages.admit(idle, later));
    }
}

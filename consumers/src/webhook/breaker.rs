//! A circuit breaker per partner endpoint: after [`TRIP_AFTER`] failed attempts in a row
//! (or a `Retry-After`), attempts to that endpoint wait until it is due to be tried
//! again; then one attempt probes it, and only its success lets the others through. The
//! first wait is the retry policy's first delay; a probe that fails doubles it, up to the
//! policy's longest delay. An endpoint that is down thus
//! gets a trickle of probes instead of every pending delivery's retries, and since each
//! partner has its own lane and breaker, no other partner waits for it.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use crate::metrics;

const TRIP_AFTER: u32 = 5;
/// How often an attempt waiting on a probe looks again.
const PROBE_POLL: Duration = Duration::from_millis(50);

pub(crate) struct Breaker {
    partner: String,
    open_first: Duration,
    open_max: Duration,
    state: Mutex<State>,
}

struct State {
    failures: u32,
    /// Set while open: no attempt before this.
    open_until: Option<Instant>,
    /// An attempt is probing the endpoint after an open spell.
    probing: bool,
    open_for: Duration,
}

impl Breaker {
    pub(crate) fn new(partner: &str, open_first: Duration, open_max: Duration) -> Breaker {
        metrics::webhook_circuit(partner, false);
        Breaker {
            partner: partner.to_owned(),
            open_first,
            open_max,
            state: Mutex::new(State {
                failures: 0,
                open_until: None,
                probing: false,
                open_for: open_first,
            }),
        }
    }

    /// Waits until an attempt may be made.
    pub(crate) async fn admit(&self) {
        loop {
            let wait_until = {
                let mut state = self.state();
                match state.open_until {
                    None => return,
                    Some(until) if Instant::now() < until => until,
                    Some(_) if state.probing => Instant::now() + PROBE_POLL,
                    Some(_) => {
                        state.probing = true;
                        return;
                    }
                }
            };
            tokio::time::sleep_until(wait_until).await;
        }
    }

    /// The endpoint answered: close.
    pub(crate) fn succeeded(&self) {
        let mut state = self.state();
        if state.open_until.is_some() {
            metrics::webhook_circuit(&self.partner, false);
        }
        *state = State {
            failures: 0,
            open_until: None,
            probing: false,
            open_for: self.open_first,
        };
    }

    /// An attempt failed; `retry_after` is the endpoint's own request to wait.
    pub(crate) fn failed(&self, retry_after: Option<Duration>) {
        let mut state = self.state();
        state.failures += 1;
        let trip = if state.probing {
            state.probing = false;
            state.open_for = (state.open_for * 2).min(self.open_max);
            true
        } else {
            state.failures >= TRIP_AFTER || retry_after.is_some()
        };
        if trip {
            let wait = state.open_for.max(retry_after.unwrap_or_default());
            let until = Instant::now() + wait;
            // Never shorten an open spell another attempt's failure set.
            state.open_until = Some(state.open_until.map_or(until, |current| current.max(until)));
            metrics::webhook_circuit(&self.partner, true);
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("breaker lock poisoned")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPEN_FIRST: Duration = Duration::from_secs(1);

    fn breaker() -> Breaker {
        Breaker::new("p", OPEN_FIRST, Duration::from_secs(60))
    }

    #[tokio::test(start_paused = true)]
    async fn trips_after_failures_then_lets_one_probe_through() {
        let breaker = breaker();
        for _ in 0..TRIP_AFTER - 1 {
            breaker.admit().await;
            breaker.failed(None);
        }
        let before = Instant::now();
        breaker.admit().await;
        assert_eq!(before.elapsed(), Duration::ZERO, "still closed");
        breaker.failed(None);
        breaker.admit().await;
        assert!(before.elapsed() >= OPEN_FIRST, "open for {OPEN_FIRST:?}");
        // This attempt is the probe: another waits for its outcome.
        let other = tokio::time::timeout(Duration::from_secs(5), breaker.admit()).await;
        assert!(other.is_err(), "a second attempt waits on the probe");
        breaker.failed(None);
        let probe_failed = Instant::now();
        breaker.admit().await;
        assert!(
            probe_failed.elapsed() >= OPEN_FIRST * 2,
            "a failed probe doubles the wait"
        );
        breaker.succeeded();
        let closed = Instant::now();
        breaker.admit().await;
        breaker.admit().await;
        assert_eq!(closed.elapsed(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn retry_after_opens_at_once_for_as_long_as_asked() {
        let breaker = breaker();
        breaker.failed(Some(Duration::from_secs(30)));
        let before = Instant::now();
        breaker.admit().await;
        assert!(before.elapsed() >= Duration::from_secs(30));
    }
}

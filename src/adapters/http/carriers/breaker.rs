//! Consecutive-failure circuit breaker with a single half-open probe.

use std::time::Duration;

use parking_lot::Mutex;
use tokio::time::Instant;

enum State {
    Closed {
        failures: u32,
    },
    Open {
        until: Instant,
    },
    /// The open period ended; one probe is (or may be) in flight.
    HalfOpen {
        probing: bool,
    },
}

pub(super) struct Breaker {
    carrier: &'static str,
    threshold: u32,
    open_for: Duration,
    state: Mutex<State>,
}

/// Leave to make one call; report its result with [`Permit::success`] or [`Permit::failure`].
/// Dropped unreported (the caller went away mid-call), a probe counts as a failure.
pub(super) struct Permit<'a> {
    breaker: &'a Breaker,
    probe: bool,
    reported: bool,
}

impl Breaker {
    pub(super) fn new(carrier: &'static str, threshold: u32, open_for: Duration) -> Self {
        Breaker {
            carrier,
            threshold: threshold.max(1),
            open_for,
            state: Mutex::new(State::Closed { failures: 0 }),
        }
    }

    /// `None` while open, or half-open with the probe already out.
    pub(super) fn try_acquire(&self) -> Option<Permit<'_>> {
        let mut state = self.state.lock();
        let probe = match &*state {
            State::Closed { .. } => false,
            State::Open { until } if Instant::now() < *until => return None,
            State::Open { .. } | State::HalfOpen { probing: false } => {
                *state = State::HalfOpen { probing: true };
                tracing::info!(carrier = self.carrier, "circuit half-open: probing");
                true
            }
            State::HalfOpen { probing: true } => return None,
        };
        Some(Permit {
            breaker: self,
            probe,
            reported: false,
        })
    }

    fn on_success(&self) {
        let mut state = self.state.lock();
        if !matches!(*state, State::Closed { .. }) {
            tracing::info!(carrier = self.carrier, "circuit closed");
        }
        *state = State::Closed { failures: 0 };
        self.gauge(false);
    }

    fn on_failure(&self, probe: bool) {
        let mut state = self.state.lock();
        let open = match &mut *state {
            State::Closed { failures } => {
                *failures = failures.saturating_add(1);
                *failures >= self.threshold
            }
            // A failed probe reopens; a straggler from before the opening changes nothing.
            State::HalfOpen { .. } => probe,
            State::Open { .. } => false,
        };
        if open {
            tracing::warn!(
                carrier = self.carrier,
                open_ms = self.open_for.as_millis() as u64,
                "circuit open"
            );
            *state = State::Open {
                until: Instant::now() + self.open_for,
            };
            self.gauge(true);
        }
    }

    fn gauge(&self, open: bool) {
        metrics::gauge!("stockroute_carrier_breaker_open", "carrier" => self.carrier)
            .set(if open { 1.0 } else { 0.0 });
    }

    #[cfg(test)]
    pub(super) fn is_closed(&self) -> bool {
        matches!(*self.state.lock(), State::Closed { .. })
    }
}

impl Permit<'_> {
    pub(super) fn success(mut self) {
        self.reported = true;
        self.breaker.on_success();
    }

    pub(super) fn failure(mut self) {
        self.reported = true;
        self.breaker.on_failure(self.probe);
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if !self.reported && self.probe {
            self.breaker.on_failure(true);
        }
    }
}

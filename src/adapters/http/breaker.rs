//! Consecutive-failure circuit breaker with a single half-open probe, shared
//! by the carrier and supplier clients.
//!
//! Closed, it counts consecutive failures; at the threshold it opens and
//! refuses calls for `open_for`; then one call (the probe) goes through:
//! success closes it, failure opens it again. Its state is published on a
//! gauge the owner names (1 open or half-open, 0 closed).

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

/// A circuit breaker for one upstream.
pub(crate) struct Breaker {
    /// Who it guards, for logs (a carrier or supplier name).
    name: String,
    threshold: u32,
    open_for: Duration,
    state: Mutex<State>,
    /// 1 while open or half-open, 0 closed.
    gauge: metrics::Gauge,
}

/// Leave to make one call; report its result with [`Permit::success`] or [`Permit::failure`].
/// Dropped unreported (the caller went away mid-call), a probe counts as a failure.
pub(crate) struct Permit<'a> {
    breaker: &'a Breaker,
    probe: bool,
    reported: bool,
}

impl Breaker {
    /// A closed breaker that opens after `threshold` consecutive failures
    /// for `open_for`, publishing its state on `gauge`.
    pub(crate) fn new(
        name: impl Into<String>,
        threshold: u32,
        open_for: Duration,
        gauge: metrics::Gauge,
    ) -> Self {
        gauge.set(0.0);
        Breaker {
            name: name.into(),
            threshold: threshold.max(1),
            open_for,
            state: Mutex::new(State::Closed { failures: 0 }),
            gauge,
        }
    }

    /// `None` while open, or half-open with the probe already out.
    pub(crate) fn try_acquire(&self) -> Option<Permit<'_>> {
        let mut state = self.state.lock();
        let probe = match &*state {
            State::Closed { .. } => false,
            State::Open { until } if Instant::now() < *until => return None,
            State::Open { .. } | State::HalfOpen { probing: false } => {
                *state = State::HalfOpen { probing: true };
                tracing::info!(upstream = %self.name, "circuit half-open: probing");
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
            tracing::info!(upstream = %self.name, "circuit closed");
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
                upstream = %self.name,
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
        self.gauge.set(if open { 1.0 } else { 0.0 });
    }

    /// True while closed (not open, not probing).
    pub(crate) fn is_closed(&self) -> bool {
        matches!(*self.state.lock(), State::Closed { .. })
    }
}

impl Permit<'_> {
    /// The call succeeded (or failed for a reason that says nothing about the upstream's health).
    pub(crate) fn success(mut self) {
        self.reported = true;
        self.breaker.on_success();
    }

    /// The call failed in a way that counts against the upstream.
    pub(crate) fn failure(mut self) {
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

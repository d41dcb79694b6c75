//! The knee search's plan: which rate to try next, given what the steps so far
//! showed. Kept apart from the phases it drives so that it can be tested alone.

use crate::scenario::KneeSettings;

/// Where the search is.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Stage {
    /// Multiplying the rate by `growth` until a step breaks the budget.
    Growing,
    /// Bisecting between the last good and the first bad rate.
    Refining {
        bad: f64,
        left: u32,
    },
    Done,
}

/// Open-loop rates to try, one step at a time: `next_rate`, run it, `record`.
///
/// A step that breaks the budget is tried again up to `confirm` more times
/// and counts as broken only if every try breaks it. On a shared machine one
/// descheduled moment can push a short step's p99 over the budget, and an
/// unconfirmed failure would end the search far below the real knee. A
/// passing try is believed at once: passing is not what noise produces.
#[derive(Debug, Clone)]
pub struct KneePlan {
    settings: KneeSettings,
    stage: Stage,
    rate: f64,
    last_ok: f64,
    /// Failed tries of the current rate.
    failures: u32,
}

impl KneePlan {
    /// A search from `settings.start_per_s`.
    pub fn new(settings: &KneeSettings) -> Self {
        Self {
            settings: settings.clone(),
            stage: Stage::Growing,
            rate: settings.start_per_s,
            last_ok: 0.0,
            failures: 0,
        }
    }

    /// The rate to run next, or `None` when the search is over.
    pub fn next_rate(&self) -> Option<f64> {
        (self.stage != Stage::Done).then_some(self.rate)
    }

    /// What the step at `next_rate` showed.
    pub fn record(&mut self, ok: bool) {
        if !ok {
            self.failures += 1;
            if self.failures <= self.settings.confirm {
                return;
            }
        }
        self.failures = 0;
        match self.stage {
            Stage::Growing if ok => {
                self.last_ok = self.rate;
                self.rate *= self.settings.growth;
                if self.rate > self.settings.max_per_s {
                    self.stage = Stage::Done;
                }
            }
            Stage::Growing => self.refine(self.rate, self.settings.refine_steps),
            Stage::Refining { bad, left } => {
                if ok {
                    self.last_ok = self.rate;
                    self.refine(bad, left);
                } else {
                    self.refine(self.rate, left);
                }
            }
            Stage::Done => {}
        }
    }

    /// The highest rate that met the budget (0 if none did).
    pub fn sustainable(&self) -> f64 {
        self.last_ok
    }

    /// Bisects towards `bad` with `left` steps to go, or ends the search.
    fn refine(&mut self, bad: f64, left: u32) {
        let mid = if self.last_ok > 0.0 {
            (self.last_ok + bad) / 2.0
        } else {
            bad / 2.0
        };
        if left == 0 || (bad - mid) / bad < 0.02 {
            self.stage = Stage::Done;
            return;
        }
        self.rate = mid;
        self.stage = Stage::Refining {
            bad,
            left: left - 1,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(confirm: u32) -> KneeSettings {
        KneeSettings {
            start_per_s: 500.0,
            growth: 1.5,
            refine_steps: 4,
            confirm,
            max_per_s: 100_000.0,
            ..KneeSettings::default()
        }
    }

    /// Runs the plan against `passes` and returns the knee and the rates tried.
    fn search(settings: &KneeSettings, mut passes: impl FnMut(f64) -> bool) -> (f64, Vec<f64>) {
        let mut plan = KneePlan::new(settings);
        let mut tried = Vec::new();
        while let Some(rate) = plan.next_rate() {
            assert!(tried.len() < 100, "the search does not end: {tried:?}");
            tried.push(rate);
            plan.record(passes(rate));
        }
        (plan.sustainable(), tried)
    }

    #[test]
    fn a_steady_server_is_bracketed_and_bisected() {
        // Passes up to 2,000/s: growth 500, 750, 1125, 1687.5, 2531 (bad), then
        // bisection between 1687.5 and 2531.
        let (knee, tried) = search(&settings(0), |r| r <= 2_000.0);
        assert_eq!(&tried[..5], &[500.0, 750.0, 1125.0, 1687.5, 2531.25]);
        assert_eq!(tried.len(), 5 + 4, "4 refinement steps");
        assert!(knee <= 2_000.0 && knee > 1_900.0, "knee {knee}");
    }

    #[test]
    fn one_spurious_failure_does_not_end_the_search() {
        // 750/s fails once (a descheduled moment), then passes on its retry.
        let mut spiked = false;
        let flaky = |r: f64| {
            if r == 750.0 && !spiked {
                spiked = true;
                return false;
            }
            r <= 2_000.0
        };
        let (knee, tried) = search(&settings(1), flaky);
        assert_eq!(
            &tried[..3],
            &[500.0, 750.0, 750.0],
            "the failed step is tried again"
        );
        assert!(knee > 1_900.0, "knee {knee} found past the spike");

        // Without confirmation the same spike ends the search below 750/s.
        let mut spiked = false;
        let (unconfirmed, _) = search(&settings(0), |r: f64| {
            if r == 750.0 && !spiked {
                spiked = true;
                return false;
            }
            r <= 2_000.0
        });
        assert!(unconfirmed < 750.0, "knee {unconfirmed}");
    }

    #[test]
    fn a_real_failure_is_tried_confirm_plus_one_times() {
        let (knee, tried) = search(&settings(2), |r| r <= 600.0);
        // 500 passes; 750 fails three times; then bisection from there.
        assert_eq!(&tried[..4], &[500.0, 750.0, 750.0, 750.0]);
        assert!((500.0..=600.0).contains(&knee), "knee {knee}");
        // Every bisection step that fails is also tried three times.
        let failing_tries = tried.iter().filter(|&&r| r > 600.0).count();
        assert_eq!(failing_tries % 3, 0, "tries {tried:?}");
    }

    #[test]
    fn a_server_that_never_fails_stops_at_the_maximum() {
        let s = KneeSettings {
            max_per_s: 5_000.0,
            ..settings(1)
        };
        let (knee, tried) = search(&s, |_| true);
        assert!(tried.iter().all(|&r| r <= 5_000.0));
        assert_eq!(knee, *tried.last().unwrap());
    }

    #[test]
    fn a_server_that_always_fails_has_no_knee() {
        let (knee, tried) = search(&settings(1), |_| false);
        assert_eq!(knee, 0.0);
        // 500 twice, then halving towards zero with each rate tried twice.
        assert_eq!(&tried[..4], &[500.0, 500.0, 250.0, 250.0]);
    }
}

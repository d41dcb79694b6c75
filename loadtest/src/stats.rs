//! What a phase measured: per-RPC latency histograms (corrected: from the
//! intended start; uncorrected: from the actual send), outcomes by status
//! code, and a per-second timeline for the plots.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::scenario::Rpc;

/// Highest latency a histogram holds, in microseconds (60 s); longer calls
/// are clamped to it.
pub const LATENCY_US_MAX: u64 = 60_000_000;

/// Status code names, by code.
const CODE_NAMES: [&str; 17] = [
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
];

/// The outcome name of an arrival the generator did not send because too
/// many calls were in flight: the server had stopped keeping up.
pub const GENERATOR_BACKLOG: &str = "GENERATOR_BACKLOG";

/// The outcome name of a call that failed in the transport (the connection
/// was reset or closed, e.g. by an HTTP/2 GOAWAY) rather than with a status
/// the server chose.
pub const CONNECTION_ERROR: &str = "CONNECTION_ERROR";

/// The canonical name of a status code.
pub fn code_name(code: tonic::Code) -> &'static str {
    CODE_NAMES
        .get(code as i32 as usize)
        .copied()
        .unwrap_or("UNKNOWN")
}

/// The code of a canonical name (case-insensitive), if it is one.
pub fn code_from_name(name: &str) -> Option<usize> {
    CODE_NAMES.iter().position(|n| n.eq_ignore_ascii_case(name))
}

/// How a call ended, for the budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// OK or an expected answer code.
    Answered,
    /// Refused by load shedding.
    Shed,
    /// Anything else.
    Failed,
}

/// Classifies outcome names by the budget's code lists.
#[derive(Debug, Clone)]
pub struct Classifier {
    answer: Vec<String>,
    shed: Vec<String>,
}

impl Classifier {
    /// From the budget's lists.
    pub fn new(answer: &[String], shed: &[String]) -> Classifier {
        let upper = |v: &[String]| v.iter().map(|c| c.to_ascii_uppercase()).collect();
        Classifier {
            answer: upper(answer),
            shed: upper(shed),
        }
    }

    /// The class of an outcome name.
    pub fn class(&self, code: &str) -> Class {
        if code == "OK" || self.answer.iter().any(|c| c == code) {
            Class::Answered
        } else if self.shed.iter().any(|c| c == code) {
            Class::Shed
        } else {
            Class::Failed
        }
    }
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, LATENCY_US_MAX, 3).expect("constant histogram bounds are valid")
}

fn micros(d: Duration) -> u64 {
    (d.as_micros() as u64).clamp(1, LATENCY_US_MAX)
}

/// One RPC's measurements in a phase.
#[derive(Debug, Clone)]
pub struct RpcStats {
    /// Answered calls, from their intended start.
    pub corrected: Histogram<u64>,
    /// Answered calls, from their actual send.
    pub uncorrected: Histogram<u64>,
    /// Shed calls, from their intended start: shedding must be fast.
    pub shed: Histogram<u64>,
    /// Calls by outcome name.
    pub codes: BTreeMap<String, u64>,
    /// Answered calls.
    pub answered: u64,
    /// Shed calls.
    pub refused: u64,
    /// Failed calls.
    pub failed: u64,
}

impl Default for RpcStats {
    fn default() -> Self {
        Self {
            corrected: histogram(),
            uncorrected: histogram(),
            shed: histogram(),
            codes: BTreeMap::new(),
            answered: 0,
            refused: 0,
            failed: 0,
        }
    }
}

impl RpcStats {
    /// Every call, whatever its outcome.
    pub fn calls(&self) -> u64 {
        self.answered + self.refused + self.failed
    }
}

/// One finished call.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    /// Which RPC.
    pub rpc: Rpc,
    /// Outcome name (a status code name or [`GENERATOR_BACKLOG`]).
    pub code: &'static str,
    /// When the schedule meant it to start.
    pub intended: Instant,
    /// When it was sent.
    pub sent: Instant,
    /// When the answer arrived.
    pub done: Instant,
}

/// A phase's measurements: calls whose intended start lies in
/// `[measure_from, measure_until)` count, the rest went to warm-up.
#[derive(Debug, Clone)]
pub struct PhaseStats {
    /// Per RPC.
    pub rpcs: BTreeMap<Rpc, RpcStats>,
    measure_from: Instant,
    measure_until: Instant,
    classifier: Classifier,
}

impl PhaseStats {
    /// Empty stats for a measured window.
    pub fn new(measure_from: Instant, measure_until: Instant, classifier: Classifier) -> Self {
        Self {
            rpcs: BTreeMap::new(),
            measure_from,
            measure_until,
            classifier,
        }
    }

    /// Records `s` if it was meant to start in the measured window.
    pub fn record(&mut self, s: &Sample) {
        if s.intended < self.measure_from || s.intended >= self.measure_until {
            return;
        }
        let class = self.classifier.class(s.code);
        let r = self.rpcs.entry(s.rpc).or_default();
        *r.codes.entry(s.code.to_owned()).or_default() += 1;
        let corrected = micros(s.done.saturating_duration_since(s.intended));
        match class {
            Class::Answered => {
                r.answered += 1;
                let _ = r.corrected.record(corrected);
                let _ = r
                    .uncorrected
                    .record(micros(s.done.saturating_duration_since(s.sent)));
            }
            Class::Shed => {
                r.refused += 1;
                let _ = r.shed.record(corrected);
            }
            Class::Failed => r.failed += 1,
        }
    }

    /// Calls across every RPC.
    pub fn calls(&self) -> u64 {
        self.rpcs.values().map(RpcStats::calls).sum()
    }

    /// The measured window's length.
    pub fn measured(&self) -> Duration {
        self.measure_until.duration_since(self.measure_from)
    }
}

/// One second of the run, per RPC.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Second {
    /// Calls answered in this second (by completion time).
    pub answered: u64,
    /// Calls shed.
    pub refused: u64,
    /// Calls failed.
    pub failed: u64,
    /// Corrected latency of the answered calls, µs: p50, p99, max.
    pub p50_us: u64,
    /// p99, µs.
    pub p99_us: u64,
    /// max, µs.
    pub max_us: u64,
}

/// Per-second counts and latencies across a whole run, for the plots.
#[derive(Debug)]
pub struct Timeline {
    start: Instant,
    seconds: BTreeMap<(Rpc, u64), (Second, Histogram<u64>)>,
    classifier: Classifier,
}

/// Most seconds a timeline keeps (a run is bounded well below this).
const TIMELINE_SECONDS_MAX: u64 = 24 * 3600;

impl Timeline {
    /// A timeline whose second 0 begins at `start`.
    pub fn new(start: Instant, classifier: Classifier) -> Timeline {
        Timeline {
            start,
            seconds: BTreeMap::new(),
            classifier,
        }
    }

    /// Where the timeline starts.
    pub fn start(&self) -> Instant {
        self.start
    }

    /// Adds `s` to the second it completed in.
    pub fn record(&mut self, s: &Sample) {
        let second = s.done.saturating_duration_since(self.start).as_secs();
        if second >= TIMELINE_SECONDS_MAX {
            return;
        }
        let (entry, hist) = self.seconds.entry((s.rpc, second)).or_insert_with(|| {
            (
                Second::default(),
                Histogram::new_with_bounds(1, LATENCY_US_MAX, 2)
                    .expect("constant histogram bounds are valid"),
            )
        });
        match self.classifier.class(s.code) {
            Class::Answered => {
                entry.answered += 1;
                let _ = hist.record(micros(s.done.saturating_duration_since(s.intended)));
            }
            Class::Shed => entry.refused += 1,
            Class::Failed => entry.failed += 1,
        }
    }

    /// Per RPC, one entry per second from 0 to the last second seen.
    pub fn series(&self) -> BTreeMap<Rpc, Vec<Second>> {
        let mut out: BTreeMap<Rpc, Vec<Second>> = BTreeMap::new();
        let last = self.seconds.keys().map(|(_, s)| *s).max().unwrap_or(0);
        for (&(rpc, second), (entry, hist)) in &self.seconds {
            let v = out
                .entry(rpc)
                .or_insert_with(|| vec![Second::default(); last as usize + 1]);
            let mut e = entry.clone();
            if !hist.is_empty() {
                e.p50_us = hist.value_at_quantile(0.5);
                e.p99_us = hist.value_at_quantile(0.99);
                e.max_us = hist.max();
            }
            v[second as usize] = e;
        }
        out
    }
}

/// Percentiles of a histogram, µs.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct Percentiles {
    /// Values recorded.
    pub count: u64,
    /// Median.
    pub p50_us: u64,
    /// 90th.
    pub p90_us: u64,
    /// 99th.
    pub p99_us: u64,
    /// 99.9th.
    pub p999_us: u64,
    /// Largest.
    pub max_us: u64,
    /// Mean.
    pub mean_us: f64,
}

impl Percentiles {
    /// Reads them off `h`.
    pub fn of(h: &Histogram<u64>) -> Percentiles {
        if h.is_empty() {
            return Percentiles::default();
        }
        Percentiles {
            count: h.len(),
            p50_us: h.value_at_quantile(0.50),
            p90_us: h.value_at_quantile(0.90),
            p99_us: h.value_at_quantile(0.99),
            p999_us: h.value_at_quantile(0.999),
            max_us: h.max(),
            mean_us: h.mean(),
        }
    }
}

/// Points of the percentile spectrum (percentile, µs) for the plots, from
/// p0 up to the highest value on a 1/(1-p) scale.
pub fn spectrum(h: &Histogram<u64>) -> Vec<(f64, u64)> {
    if h.is_empty() {
        return Vec::new();
    }
    let mut out = Vec::new();
    // Halving the remaining tail each step: 0, 50, 75, 87.5, ... percent.
    let mut tail = 1.0f64;
    while tail > 1e-6 {
        let q = 1.0 - tail;
        out.push((q * 100.0, h.value_at_quantile(q)));
        tail /= 2.0_f64.sqrt();
    }
    out.push((100.0, h.max()));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(
        rpc: Rpc,
        code: &'static str,
        intended: Instant,
        sent_ms: u64,
        done_ms: u64,
    ) -> Sample {
        Sample {
            rpc,
            code,
            intended,
            sent: intended + Duration::from_millis(sent_ms),
            done: intended + Duration::from_millis(done_ms),
        }
    }

    #[test]
    fn corrected_latency_counts_from_the_intended_start() {
        let t0 = Instant::now();
        let c = Classifier::new(
            &["FAILED_PRECONDITION".into()],
            &["RESOURCE_EXHAUSTED".into()],
        );
        let mut p = PhaseStats::new(t0, t0 + Duration::from_secs(10), c);
        // Sent 40 ms late (the generator or a queue held it), answered 10 ms later.
        p.record(&sample(Rpc::Quote, "OK", t0, 40, 50));
        let q = &p.rpcs[&Rpc::Quote];
        assert!(
            (49_000..=50_100).contains(&q.corrected.max()),
            "{}",
            q.corrected.max()
        );
        assert!(
            (9_990..=10_100).contains(&q.uncorrected.max()),
            "{}",
            q.uncorrected.max()
        );
    }

    #[test]
    fn outcomes_are_classified_and_warm_up_is_left_out() {
        let t0 = Instant::now();
        let c = Classifier::new(
            &["FAILED_PRECONDITION".into()],
            &["RESOURCE_EXHAUSTED".into()],
        );
        let from = t0 + Duration::from_secs(1);
        let mut p = PhaseStats::new(from, from + Duration::from_secs(1), c);
        p.record(&sample(Rpc::Quote, "OK", t0, 0, 1)); // warm-up
        p.record(&sample(Rpc::Quote, "OK", from, 0, 1));
        p.record(&sample(Rpc::Quote, "FAILED_PRECONDITION", from, 0, 1));
        p.record(&sample(Rpc::Quote, "RESOURCE_EXHAUSTED", from, 0, 1));
        p.record(&sample(Rpc::Quote, "INTERNAL", from, 0, 1));
        p.record(&sample(Rpc::Health, GENERATOR_BACKLOG, from, 0, 0));
        p.record(&sample(
            Rpc::Quote,
            "OK",
            from + Duration::from_secs(1),
            0,
            1,
        )); // after
        let q = &p.rpcs[&Rpc::Quote];
        assert_eq!((q.answered, q.refused, q.failed), (2, 1, 1));
        assert_eq!(q.corrected.len(), 2);
        assert_eq!(q.shed.len(), 1);
        assert_eq!(q.codes["INTERNAL"], 1);
        assert_eq!(p.rpcs[&Rpc::Health].failed, 1);
        assert_eq!(p.calls(), 5);
    }

    #[test]
    fn code_names_round_trip() {
        assert_eq!(
            code_name(tonic::Code::ResourceExhausted),
            "RESOURCE_EXHAUSTED"
        );
        assert_eq!(code_from_name("resource_exhausted"), Some(8));
        assert_eq!(code_from_name("NOPE"), None);
    }

    #[test]
    fn the_timeline_buckets_by_completion_second() {
        let t0 = Instant::now();
        let mut t = Timeline::new(t0, Classifier::new(&[], &[]));
        t.record(&sample(Rpc::Quote, "OK", t0, 0, 5));
        t.record(&sample(Rpc::Quote, "OK", t0, 0, 1_500));
        t.record(&sample(Rpc::Quote, "INTERNAL", t0, 0, 2_100));
        let s = &t.series()[&Rpc::Quote];
        assert_eq!(s.len(), 3);
        assert_eq!((s[0].answered, s[1].answered, s[2].failed), (1, 1, 1));
        assert!(s[1].p99_us >= 1_490_000);
    }

    #[test]
    fn the_spectrum_rises_to_the_max() {
        let mut h = histogram();
        for v in 1..=10_000u64 {
            h.record(v).unwrap();
        }
        let s = spectrum(&h);
        assert_eq!(s.first().unwrap().0, 0.0);
        assert_eq!(s.last().unwrap(), &(100.0, h.max()));
        assert!(s.windows(2).all(|w| w[0].1 <= w[1].1 && w[0].0 < w[1].0));
    }
}

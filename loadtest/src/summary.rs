//! The JSON summary: each phase's figures per RPC, ratios to the baseline
//! measured in the same run, the knee, and the invariant checks.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::driver::PhaseOutcome;
use crate::invariants::Check;
use crate::scenario::{Mode, Rpc, Scenario};
use crate::server_metrics::{quantile, BucketQuantile};
use crate::stats::Percentiles;

/// Server-side latency of one RPC in a phase, from its own histogram.
#[derive(Debug, Clone, Serialize)]
pub struct ServerLatency {
    /// Calls the server counted (status OK).
    pub count: u64,
    /// Median.
    pub p50: BucketQuantile,
    /// 90th.
    pub p90: BucketQuantile,
    /// 99th.
    pub p99: BucketQuantile,
    /// 99.9th.
    pub p999: BucketQuantile,
}

/// One RPC in one phase.
#[derive(Debug, Clone, Serialize)]
pub struct RpcSummary {
    /// Name.
    pub rpc: String,
    /// Calls meant to start in the measured window.
    pub calls: u64,
    /// Answered (OK or an answer code).
    pub answered: u64,
    /// Shed.
    pub refused: u64,
    /// Failed.
    pub failed: u64,
    /// Calls by outcome.
    pub codes: BTreeMap<String, u64>,
    /// Answered calls per second of the measured window.
    pub answered_per_s: f64,
    /// Latency from the intended start (answered calls).
    pub corrected: Percentiles,
    /// Latency from the actual send (answered calls).
    pub uncorrected: Percentiles,
    /// Latency of shed calls, from the intended start.
    pub shed: Percentiles,
    /// The server's own view, when its metrics were scraped.
    pub server: Option<ServerLatency>,
}

/// One phase.
#[derive(Debug, Clone, Serialize)]
pub struct PhaseSummary {
    /// Label.
    pub label: String,
    /// `baseline`, `scenario`, `knee` or `verify`.
    pub kind: String,
    /// Repeat number (from 1), or step number.
    pub repeat: u32,
    /// Open or closed.
    pub mode: Mode,
    /// Arrivals offered per second (open loop, or paced closed loop).
    pub offered_per_s: Option<f64>,
    /// Calls completed per second, any outcome.
    pub achieved_per_s: f64,
    /// Calls answered per second.
    pub goodput_per_s: f64,
    /// Closed-loop callers.
    pub workers: Option<u32>,
    /// Measured seconds.
    pub measured_s: f64,
    /// Measured window on the run's timeline, seconds.
    pub window_s: (f64, f64),
    /// Server CPU per call, µs.
    pub server_cpu_us_per_call: Option<f64>,
    /// Server CPU as a share of one core, percent.
    pub server_cpu_pct: Option<f64>,
    /// Generator CPU as a share of one core, percent.
    pub generator_cpu_pct: Option<f64>,
    /// Calls still unanswered after their deadline plus grace.
    pub abandoned: u64,
    /// Per RPC.
    pub rpcs: Vec<RpcSummary>,
    /// The budget's verdict on this phase.
    pub budget_ok: bool,
    /// What broke the budget, if anything.
    pub budget_notes: Vec<String>,
}

impl PhaseSummary {
    /// The RPC's figures, if it was called.
    pub fn rpc(&self, rpc: Rpc) -> Option<&RpcSummary> {
        self.rpcs.iter().find(|r| r.rpc == rpc.name())
    }

    /// Calls refused by load shedding as a share of all, percent.
    pub fn refused_pct(&self) -> f64 {
        self.share_pct(|r| r.refused)
    }

    /// Share of calls that failed (not counting refusals by load shedding), %.
    pub fn error_pct(&self) -> f64 {
        self.share_pct(|r| r.failed)
    }

    /// `count` summed over the RPCs as a share of all calls, percent.
    fn share_pct(&self, count: impl Fn(&RpcSummary) -> u64) -> f64 {
        let calls: u64 = self.rpcs.iter().map(|r| r.calls).sum();
        let counted: u64 = self.rpcs.iter().map(count).sum();
        if calls == 0 {
            0.0
        } else {
            counted as f64 * 100.0 / calls as f64
        }
    }
}

/// Summarises an outcome and judges it by `scenario`'s budget.
pub fn summarise(
    o: &PhaseOutcome,
    kind: &str,
    repeat: u32,
    scenario: &Scenario,
    judged: &[Rpc],
) -> PhaseSummary {
    let secs = o.stats.measured().as_secs_f64().max(1e-9);
    let mut rpcs = Vec::new();
    for (rpc, s) in &o.stats.rpcs {
        let server = o.server_buckets.as_ref().and_then(|(before, after)| {
            let d = after.delta(before, rpc.path(), Some("OK"));
            Some(ServerLatency {
                count: d.last()?.1,
                p50: quantile(&d, 0.5)?,
                p90: quantile(&d, 0.9)?,
                p99: quantile(&d, 0.99)?,
                p999: quantile(&d, 0.999)?,
            })
        });
        rpcs.push(RpcSummary {
            rpc: rpc.name().to_owned(),
            calls: s.calls(),
            answered: s.answered,
            refused: s.refused,
            failed: s.failed,
            codes: s.codes.clone(),
            answered_per_s: s.answered as f64 / secs,
            corrected: Percentiles::of(&s.corrected),
            uncorrected: Percentiles::of(&s.uncorrected),
            shed: Percentiles::of(&s.shed),
            server,
        });
    }
    let calls = o.stats.calls();
    let answered: u64 = o.stats.rpcs.values().map(|r| r.answered).sum();
    let offered = match o.spec.mode {
        Mode::Open => Some(o.spec.rate_per_s),
        Mode::Closed => (o.spec.rate_per_s > 0.0).then_some(o.spec.rate_per_s),
    };
    let cpu_pct = |us: Option<u64>| us.map(|u| u as f64 / 1e6 / secs * 100.0);
    let mut summary = PhaseSummary {
        label: o.spec.label.clone(),
        kind: kind.to_owned(),
        repeat,
        mode: o.spec.mode,
        offered_per_s: offered,
        achieved_per_s: calls as f64 / secs,
        goodput_per_s: answered as f64 / secs,
        workers: (o.spec.mode == Mode::Closed).then_some(o.spec.workers),
        measured_s: secs,
        window_s: o.window_s,
        server_cpu_us_per_call: o
            .server_cpu_us
            .filter(|_| calls > 0)
            .map(|us| us as f64 / calls as f64),
        server_cpu_pct: cpu_pct(o.server_cpu_us),
        generator_cpu_pct: cpu_pct(o.generator_cpu_us),
        abandoned: o.abandoned,
        rpcs,
        budget_ok: true,
        budget_notes: Vec::new(),
    };
    judge(&mut summary, scenario, judged);
    summary
}

/// Applies the budget: p99 of the judged RPCs, error share, achieved rate,
/// nothing abandoned.
fn judge(s: &mut PhaseSummary, scenario: &Scenario, judged: &[Rpc]) {
    let b = &scenario.budget;
    let mut notes = Vec::new();
    for rpc in judged {
        if let Some(r) = s.rpc(*rpc) {
            let p99_ms = r.corrected.p99_us as f64 / 1000.0;
            if r.answered > 0 && p99_ms > b.p99_ms {
                notes.push(format!(
                    "{} p99 {p99_ms:.2} ms over the {} ms budget",
                    r.rpc, b.p99_ms
                ));
            }
        }
    }
    let calls: u64 = s.rpcs.iter().map(|r| r.calls).sum();
    if calls == 0 {
        notes.push("no calls measured".into());
    }
    let error_pct = s.error_pct();
    if error_pct > b.error_pct_max {
        notes.push(format!(
            "{error_pct:.3}% of calls failed, over the {}% budget",
            b.error_pct_max
        ));
    }
    if let Some(offered) = s.offered_per_s {
        let pct = s.achieved_per_s * 100.0 / offered;
        if pct < b.achieved_pct_min {
            notes.push(format!(
                "achieved {:.0}/s of {offered:.0}/s offered ({pct:.1}%, below {}%)",
                s.achieved_per_s, b.achieved_pct_min
            ));
        }
    }
    if s.abandoned > 0 {
        notes.push(format!("{} calls never answered", s.abandoned));
    }
    // A rate is sustainable only if the server serves it: refusals keep the
    // answered calls fast, so a knee step that sheds more than the error
    // budget is past the knee however good its latency looks.
    let refused_pct = s.refused_pct();
    if s.kind == "knee" && refused_pct > b.error_pct_max {
        notes.push(format!(
            "{refused_pct:.3}% of calls refused by load shedding, over the {}% budget",
            b.error_pct_max
        ));
    }
    s.budget_ok = notes.is_empty();
    s.budget_notes = notes;
}

/// One figure of a scenario phase against its baseline phase.
#[derive(Debug, Clone, Serialize)]
pub struct Ratio {
    /// Repeat number.
    pub repeat: u32,
    /// Scenario figure.
    pub value: f64,
    /// Baseline figure.
    pub baseline: f64,
    /// value / baseline.
    pub ratio: f64,
}

/// A figure compared across repeats.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    /// What is compared.
    pub what: String,
    /// Per repeat.
    pub repeats: Vec<Ratio>,
    /// Median ratio.
    pub median_ratio: f64,
}

/// The median of `v` (NaN when empty).
pub fn median(v: &[f64]) -> f64 {
    let mut v: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Builds a comparison from (repeat, value, baseline) triples.
pub fn compare(what: String, triples: Vec<(u32, f64, f64)>) -> Comparison {
    let repeats: Vec<Ratio> = triples
        .into_iter()
        .map(|(repeat, value, baseline)| Ratio {
            repeat,
            value,
            baseline,
            ratio: if baseline > 0.0 {
                value / baseline
            } else {
                f64::NAN
            },
        })
        .collect();
    let median_ratio = median(&repeats.iter().map(|r| r.ratio).collect::<Vec<_>>());
    Comparison {
        what,
        repeats,
        median_ratio,
    }
}

/// A knee search's steps and result.
#[derive(Debug, Clone, Serialize)]
pub struct Knee {
    /// Which load was searched (`baseline` or `scenario`).
    pub load: String,
    /// Every step tried, in order.
    pub steps: Vec<KneeStep>,
    /// Highest rate that met the budget, per second (0 if none did).
    pub sustainable_per_s: f64,
}

/// One step of a knee search.
#[derive(Debug, Clone, Serialize)]
pub struct KneeStep {
    /// Offered rate.
    pub offered_per_s: f64,
    /// Achieved rate.
    pub achieved_per_s: f64,
    /// Corrected p99 of the judged RPCs, ms (the largest).
    pub p99_ms: f64,
    /// Failed share, percent.
    pub error_pct: f64,
    /// Met the budget.
    pub ok: bool,
}

/// The whole run.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// The scenario's name.
    pub scenario: String,
    /// The command that ran.
    pub command: String,
    /// Unix seconds at the start.
    pub started_unix_s: u64,
    /// How the figures were taken: world, pinning, CPU source.
    pub method: Vec<String>,
    /// Every measured phase.
    pub phases: Vec<PhaseSummary>,
    /// Scenario against baseline, per repeat.
    pub comparisons: Vec<Comparison>,
    /// Knee searches.
    pub knees: Vec<Knee>,
    /// Goals with their measured figures.
    pub goals: Vec<Check>,
    /// Invariants and budgets.
    pub checks: Vec<Check>,
    /// Every check held.
    pub passed: bool,
}

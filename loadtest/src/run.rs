//! The two things a run can do: measure a scenario at its configured load
//! in repeats, each next to the empty-RPC baseline; or find the knee (the
//! highest rate within the latency budget) of the scenario and of the
//! baseline, then check the goals at half and at one and a half times it.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::driver::{PhaseOutcome, PhaseSpec, Runner};
use crate::invariants::{self, Check};
use crate::knee::KneePlan;
use crate::scenario::{Mix, Mode, Op, Rpc, Scenario};
use crate::summary::{self, compare, Comparison, Knee, KneeStep, PhaseSummary};
use crate::workload::Workload;

/// Goal: the scenario's sustainable rate as a share of the baseline's.
pub const GOAL_THROUGHPUT_RATIO_MIN: f64 = 0.5;
/// Goal: server-side p99 at half the sustainable rate, ms.
pub const GOAL_HALF_RATE_SERVER_P99_MS_MAX: f64 = 2.0;
/// Goal: goodput at 150% of the sustainable rate, as a share of it.
pub const GOAL_OVERLOAD_GOODPUT_MIN: f64 = 0.9;
/// Products whose availability is sampled for the oversell check.
const OVERSELL_SAMPLE_PRODUCTS: u64 = 100;

/// Everything measured, kept for the report.
pub struct Measured {
    /// Outcomes with their summaries, in run order.
    pub phases: Vec<(PhaseOutcome, PhaseSummary)>,
    /// Scenario against baseline.
    pub comparisons: Vec<Comparison>,
    /// Knee searches.
    pub knees: Vec<Knee>,
    /// Goals.
    pub goals: Vec<Check>,
    /// Invariants and budgets.
    pub checks: Vec<Check>,
}

/// Runs phases of one scenario.
pub struct Session {
    /// The runner.
    pub runner: Runner,
    /// The scenario.
    pub scenario: Scenario,
    /// Tags idempotency keys.
    pub run_tag: String,
}

/// The RPC a scenario is about: the budget's, or its only one.
pub fn main_rpc(s: &Scenario) -> Option<Rpc> {
    s.judged_rpc()
        .or_else(|| match s.mix.weighted().as_slice() {
            [(op, _)] => Some(first_rpc(*op)),
            _ => None,
        })
}

fn first_rpc(op: Op) -> Rpc {
    match op {
        Op::Health => Rpc::Health,
        Op::CheckStock => Rpc::CheckStock,
        Op::Quote => Rpc::Quote,
        Op::ReserveCommit | Op::ReserveRelease | Op::ReserveExpire => Rpc::Reserve,
        Op::Allocate => Rpc::Allocate,
    }
}

/// The RPCs the budget judges: the budget's, or every one called.
fn judged(s: &Scenario) -> Vec<Rpc> {
    match s.judged_rpc() {
        Some(r) => vec![r],
        None => Rpc::ALL.to_vec(),
    }
}

impl Session {
    fn baseline_scenario(&self) -> Scenario {
        let mut b = self.scenario.clone();
        b.mix = Mix::only(Op::Health);
        b.budget.rpc = Rpc::Health.name().into();
        b
    }

    fn spec(
        &self,
        label: String,
        mode: Mode,
        rate: f64,
        warmup_s: f64,
        measure_s: f64,
    ) -> PhaseSpec {
        PhaseSpec {
            label,
            mode,
            rate_per_s: rate,
            workers: self.scenario.workers,
            warmup: Duration::from_secs_f64(warmup_s),
            measure: Duration::from_secs_f64(measure_s),
            in_flight_max: self.scenario.in_flight_max,
            timeout: Duration::from_millis(self.scenario.timeout_ms),
        }
    }

    async fn phase(
        &self,
        scenario: &Scenario,
        spec: PhaseSpec,
        kind: &str,
        repeat: u32,
        stream: u64,
    ) -> (PhaseOutcome, PhaseSummary) {
        let workload = Workload::new(scenario, stream, &format!("{}-{stream}", self.run_tag));
        eprintln!("loadtest: {} ...", spec.label);
        let outcome = self.runner.run_phase(&spec, &workload).await;
        let summary = summary::summarise(&outcome, kind, repeat, scenario, &judged(scenario));
        eprintln!("loadtest:   {}", one_line(&summary));
        (outcome, summary)
    }

    /// Samples availability of the most popular products before a run that
    /// holds stock, for the oversell check.
    async fn availability_before(&self) -> BTreeMap<(String, String), u32> {
        if !self.scenario.mix.reserves() {
            return BTreeMap::new();
        }
        let w = Workload::new(&self.scenario, 0, "sample");
        let skus: Vec<String> = (0..OVERSELL_SAMPLE_PRODUCTS
            .min(u64::from(self.scenario.skus.products)))
            .map(|rank| w.sku(w.product_of_rank(rank)))
            .collect();
        invariants::availability(self.runner.channel(), &skus)
            .await
            .unwrap_or_default()
    }

    /// The scenario at its configured load, `repeats` times, each measured
    /// phase after its own baseline phase (unless `baseline` is false).
    pub async fn run(&self, baseline: bool) -> Measured {
        let s = &self.scenario;
        let before = self.availability_before().await;
        let base = self.baseline_scenario();
        let mut phases = Vec::new();
        for r in 1..=s.repeats {
            if baseline {
                let spec = self.spec(
                    format!("baseline (Health/Check) {r}/{}", s.repeats),
                    s.mode,
                    s.rate_per_s,
                    s.warmup_s,
                    s.measure_s,
                );
                phases.push(
                    self.phase(&base, spec, "baseline", r, 1_000 + u64::from(r))
                        .await,
                );
            }
            let spec = self.spec(
                format!("{} {r}/{}", s.name, s.repeats),
                s.mode,
                s.rate_per_s,
                s.warmup_s,
                s.measure_s,
            );
            phases.push(self.phase(s, spec, "scenario", r, u64::from(r)).await);
        }
        let comparisons = comparisons(s, &phases);
        let checks = self.checks(&phases, &before).await;
        Measured {
            phases,
            comparisons,
            knees: Vec::new(),
            goals: Vec::new(),
            checks,
        }
    }

    async fn checks(
        &self,
        phases: &[(PhaseOutcome, PhaseSummary)],
        before: &BTreeMap<(String, String), u32>,
    ) -> Vec<Check> {
        let mut checks = Vec::new();
        for (_, p) in phases
            .iter()
            .filter(|(_, p)| p.kind == "scenario" || p.kind == "baseline")
        {
            checks.push(Check::new(
                &format!("budget: {}", p.label),
                p.budget_ok,
                if p.budget_ok {
                    format!(
                        "{:.0}/s answered, {:.3}% failed",
                        p.goodput_per_s,
                        p.error_pct()
                    )
                } else {
                    p.budget_notes.join("; ")
                },
            ));
        }
        // Taken out of the lock: the checks await the server.
        let mut acks = self
            .runner
            .acks()
            .lock()
            .map(|mut a| std::mem::take(&mut *a))
            .unwrap_or_default();
        let ledger = if acks.is_empty() {
            None
        } else {
            let settled = invariants::settle(self.runner.channel(), &mut acks).await;
            let mut l = invariants::check_ledger(self.runner.channel(), &acks, before).await;
            l.insert(0, settled);
            Some(l)
        };
        match ledger {
            Some(mut l) => checks.append(&mut l),
            None if self.scenario.mix.reserves() => checks.push(Check::new(
                "ledger invariants",
                false,
                "the scenario reserves stock but the server acknowledged no reservation",
            )),
            None => {}
        }
        checks
    }

    /// Searches the highest rate whose phase meets the budget.
    async fn knee(
        &self,
        scenario: &Scenario,
        load: &str,
        stream: u64,
    ) -> (Knee, Vec<(PhaseOutcome, PhaseSummary)>) {
        let k = &scenario.knee;
        let judged_rpcs = judged(scenario);
        let mut plan = KneePlan::new(k);
        let mut steps = Vec::new();
        let mut phases = Vec::new();
        let mut n = 0u32;
        while let Some(rate) = plan.next_rate() {
            n += 1;
            let spec = self.spec(
                format!("knee {load} {rate:.0}/s"),
                Mode::Open,
                rate,
                k.warmup_s,
                k.measure_s,
            );
            let (o, p) = self
                .phase(scenario, spec, "knee", n, stream + u64::from(n))
                .await;
            let p99_ms = judged_rpcs
                .iter()
                .filter_map(|r| p.rpc(*r))
                .map(|r| r.corrected.p99_us as f64 / 1000.0)
                .fold(0.0, f64::max);
            steps.push(KneeStep {
                offered_per_s: rate,
                achieved_per_s: p.achieved_per_s,
                p99_ms,
                error_pct: p.error_pct(),
                ok: p.budget_ok,
            });
            plan.record(p.budget_ok);
            phases.push((o, p));
        }
        (
            Knee {
                load: load.to_owned(),
                steps,
                sustainable_per_s: plan.sustainable(),
            },
            phases,
        )
    }

    /// Knee of the baseline (unless `baseline` is false) and of the scenario;
    /// with `verify`, the scenario at half and 1.5 times its knee, `repeats`
    /// times each, and the goals judged.
    pub async fn knee_study(&self, baseline: bool, verify: bool) -> Measured {
        let s = &self.scenario;
        let mut phases = Vec::new();
        let mut knees = Vec::new();
        let mut goals = Vec::new();
        let base_knee = if baseline {
            let (k, mut p) = self
                .knee(&self.baseline_scenario(), "baseline", 10_000)
                .await;
            phases.append(&mut p);
            let r = k.sustainable_per_s;
            knees.push(k);
            Some(r)
        } else {
            None
        };
        let (k, mut p) = self.knee(s, "scenario", 20_000).await;
        phases.append(&mut p);
        let knee = k.sustainable_per_s;
        knees.push(k);
        if let Some(b) = base_knee {
            let ratio = if b > 0.0 { knee / b } else { f64::NAN };
            goals.push(Check::new(
                "sustainable rate >= 0.5 of the empty RPC's",
                ratio >= GOAL_THROUGHPUT_RATIO_MIN,
                format!("{knee:.0}/s vs {b:.0}/s: ratio {ratio:.3}"),
            ));
        }
        if verify && knee > 0.0 {
            let main = main_rpc(s);
            let mut half_p99 = Vec::new();
            let mut over_goodput = Vec::new();
            let mut over_shed_p99 = Vec::new();
            for r in 1..=s.repeats {
                let spec = self.spec(
                    format!(
                        "{} at half the knee ({:.0}/s) {r}/{}",
                        s.name,
                        knee / 2.0,
                        s.repeats
                    ),
                    Mode::Open,
                    knee / 2.0,
                    s.warmup_s,
                    s.measure_s,
                );
                let (o, p) = self
                    .phase(s, spec, "verify-half", r, 30_000 + u64::from(r))
                    .await;
                if let Some(sv) = main.and_then(|m| p.rpc(m)).and_then(|x| x.server.clone()) {
                    half_p99.push((sv.p99.le_ms, sv.p99.estimate_ms));
                }
                phases.push((o, p));
                let spec = self.spec(
                    format!(
                        "{} at 1.5x the knee ({:.0}/s) {r}/{}",
                        s.name,
                        knee * 1.5,
                        s.repeats
                    ),
                    Mode::Open,
                    knee * 1.5,
                    s.warmup_s,
                    s.measure_s,
                );
                let (o, p) = self
                    .phase(s, spec, "verify-over", r, 40_000 + u64::from(r))
                    .await;
                over_goodput.push(p.goodput_per_s);
                if let Some(m) = main.and_then(|m| p.rpc(m)) {
                    if m.refused > 0 {
                        over_shed_p99.push(m.shed.p99_us as f64 / 1000.0);
                    }
                }
                phases.push((o, p));
            }
            if half_p99.is_empty() {
                goals.push(Check::new(
                    "server-side p99 <= 2 ms at half the knee",
                    false,
                    "not measured: the server's /metrics could not be read",
                ));
            } else {
                let le = summary::median(&half_p99.iter().map(|x| x.0).collect::<Vec<_>>());
                let est = summary::median(&half_p99.iter().map(|x| x.1).collect::<Vec<_>>());
                goals.push(Check::new(
                    "server-side p99 <= 2 ms at half the knee",
                    le <= GOAL_HALF_RATE_SERVER_P99_MS_MAX,
                    format!(
                        "median over {} repeats: p99 <= {le} ms (bucket bound), about {est:.2} ms interpolated; per repeat {:?}",
                        half_p99.len(),
                        half_p99
                    ),
                ));
            }
            let g = summary::median(&over_goodput);
            goals.push(Check::new(
                "goodput at 1.5x the knee >= 90% of the knee",
                g >= GOAL_OVERLOAD_GOODPUT_MIN * knee,
                format!(
                    "median goodput {g:.0}/s = {:.1}% of {knee:.0}/s; per repeat {:?}; {}",
                    g * 100.0 / knee,
                    over_goodput.iter().map(|x| x.round()).collect::<Vec<_>>(),
                    if over_shed_p99.is_empty() {
                        "nothing was refused (no load shedding answered RESOURCE_EXHAUSTED)"
                            .to_owned()
                    } else {
                        format!("refused calls p99 {:?} ms", over_shed_p99)
                    }
                ),
            ));
        }
        let checks = Vec::new();
        Measured {
            phases,
            comparisons: Vec::new(),
            knees,
            goals,
            checks,
        }
    }
}

/// Scenario figures as ratios to the baseline phase of the same repeat.
fn comparisons(s: &Scenario, phases: &[(PhaseOutcome, PhaseSummary)]) -> Vec<Comparison> {
    let main = main_rpc(s);
    let name = main.map_or("the mix".to_owned(), |m| m.name().to_owned());
    let mut thr = Vec::new();
    let mut p50 = Vec::new();
    let mut p99 = Vec::new();
    let mut cpu = Vec::new();
    for r in 1..=s.repeats {
        let find = |kind: &str| {
            phases
                .iter()
                .map(|(_, p)| p)
                .find(|p| p.kind == kind && p.repeat == r)
        };
        let (Some(b), Some(x)) = (find("baseline"), find("scenario")) else {
            continue;
        };
        let Some(h) = b.rpc(Rpc::Health) else {
            continue;
        };
        let (rate, lat) = match main.and_then(|m| x.rpc(m)) {
            Some(m) => (m.answered_per_s, m.corrected),
            None => (x.goodput_per_s, crate::stats::Percentiles::default()),
        };
        thr.push((r, rate, h.answered_per_s));
        if lat.count > 0 {
            p50.push((r, lat.p50_us as f64, h.corrected.p50_us as f64));
            p99.push((r, lat.p99_us as f64, h.corrected.p99_us as f64));
        }
        if let (Some(a), Some(c)) = (x.server_cpu_us_per_call, b.server_cpu_us_per_call) {
            cpu.push((r, a, c));
        }
    }
    let mut out = vec![compare(
        format!("{name} answered/s vs Health/Check answered/s"),
        thr,
    )];
    if !p50.is_empty() {
        out.push(compare(
            format!("{name} p50 vs Health/Check p50 (corrected, µs)"),
            p50,
        ));
        out.push(compare(
            format!("{name} p99 vs Health/Check p99 (corrected, µs)"),
            p99,
        ));
    }
    if !cpu.is_empty() {
        out.push(compare(
            "server CPU µs per call vs Health/Check".into(),
            cpu,
        ));
    }
    out
}

/// A phase in one line, for the console.
pub fn one_line(p: &PhaseSummary) -> String {
    let rpcs: Vec<String> = p
        .rpcs
        .iter()
        .map(|r| {
            format!(
                "{} {:.0}/s p50 {:.2} p99 {:.2} p99.9 {:.2} max {:.2} ms{}",
                r.rpc,
                r.answered_per_s,
                r.corrected.p50_us as f64 / 1000.0,
                r.corrected.p99_us as f64 / 1000.0,
                r.corrected.p999_us as f64 / 1000.0,
                r.corrected.max_us as f64 / 1000.0,
                if r.failed + r.refused > 0 {
                    format!(" ({} failed, {} refused)", r.failed, r.refused)
                } else {
                    String::new()
                }
            )
        })
        .collect();
    format!(
        "{}{}; server CPU {}; {}",
        rpcs.join("; "),
        p.offered_per_s
            .map(|o| format!(" (offered {o:.0}/s, achieved {:.0}/s)", p.achieved_per_s))
            .unwrap_or_default(),
        p.server_cpu_us_per_call
            .map(|c| format!("{c:.1} µs/call"))
            .unwrap_or_else(|| "n/a".into()),
        if p.budget_ok {
            "within budget".to_owned()
        } else {
            p.budget_notes.join("; ")
        }
    )
}

//! The planner against the exact MILP (HiGHS, one thread) on random
//! weight-break instances, in one run on the same instances:
//! - time: median and p99 of each, and the ratio of the medians;
//! - cost: share of plans proven optimal, the gap of the planner's cost to
//!   the optimum (p99 and max, in percent; 0 wherever it proved its plan);
//! - savings of the optimum against greedy sourcing (each line from its
//!   cheapest supplier, freight priced afterwards).
//!
//! Baskets up to 20 lines plan with no practical limit, larger ones under
//! the 5 ms budget a quote gets. Run:
//! `cargo bench -p stockroute-eval --bench milp` (`-- --quick` for fewer
//! instances).

use std::time::Duration;

use stockroute_eval::{greedy, milp, plan, Instance, Shape};

/// The planning budget of large baskets.
const LARGE_BUDGET: Duration = Duration::from_millis(5);
/// "No limit" for the others.
const UNLIMITED: Duration = Duration::from_secs(5);

fn quantile(sorted: &[f64], q: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let per_shape = if quick { 10 } else { 40 };
    let shapes = [
        (10, 4, false),
        (10, 8, false),
        (20, 4, false),
        (20, 8, false),
        (30, 8, false),
        (50, 8, false),
        (10, 4, true),
        (20, 4, true),
    ];
    println!(
        "{:>5} {:>6} {:>5} {:>10} {:>10} {:>10} {:>10} {:>7} {:>7} {:>7} {:>8} {:>8}",
        "lines",
        "offers",
        "split",
        "plan p50",
        "plan p99",
        "milp p50",
        "milp p99",
        "ratio",
        "proven",
        "gap p99",
        "gap max",
        "vs greedy"
    );
    for (lines, offers, split) in shapes {
        let shape = Shape {
            lines,
            suppliers: 30,
            offers,
            split,
        };
        let budget = if lines > 20 { LARGE_BUDGET } else { UNLIMITED };
        let (mut plan_us, mut milp_us, mut gaps) = (Vec::new(), Vec::new(), Vec::new());
        let (mut proven, mut optimum_sum, mut greedy_sum) = (0usize, 0i64, 0i64);
        for seed in 0..per_shape {
            let instance = Instance::random(shape, seed * 7919 + lines as u64);
            let exact = match milp(&instance) {
                Ok(e) => e,
                Err(e) => {
                    println!("  seed {seed}: {e}");
                    continue;
                }
            };
            let planned = plan(&instance, budget).expect("every instance has a plan");
            assert!(
                planned.cost >= exact.cost,
                "seed {seed}: a plan below the optimum"
            );
            assert!(
                !planned.proven || planned.cost == exact.cost,
                "seed {seed}: a proven plan above the optimum"
            );
            plan_us.push(planned.elapsed.as_secs_f64() * 1e6);
            milp_us.push(exact.elapsed.as_secs_f64() * 1e6);
            gaps.push((planned.cost - exact.cost) as f64 / exact.cost as f64 * 100.0);
            proven += usize::from(planned.proven);
            if let Some(g) = greedy(&instance) {
                optimum_sum += exact.cost;
                greedy_sum += g;
            }
        }
        if plan_us.is_empty() {
            continue;
        }
        for v in [&mut plan_us, &mut milp_us, &mut gaps] {
            v.sort_by(f64::total_cmp);
        }
        let saving = (greedy_sum - optimum_sum) as f64 / greedy_sum.max(1) as f64 * 100.0;
        println!(
            "{:>5} {:>6} {:>5} {:>8.0}us {:>8.0}us {:>8.1}ms {:>8.1}ms {:>6.0}x {:>6}% {:>6.2}% {:>7.2}% {:>7.2}%",
            lines,
            offers,
            split,
            quantile(&plan_us, 0.5),
            quantile(&plan_us, 0.99),
            quantile(&milp_us, 0.5) / 1e3,
            quantile(&milp_us, 0.99) / 1e3,
            quantile(&milp_us, 0.5) / quantile(&plan_us, 0.5),
            proven * 100 / plan_us.len(),
            quantile(&gaps, 0.99),
            gaps[gaps.len() - 1],
            saving
        );
    }
}

//! The planner's CHEAPEST plan against the exact MILP optimum on a small set
//! of random weight-break instances, with and without split lines: where
//! the planner says its plan is proven optimal the costs are equal, and no
//! plan ever costs less than the optimum (which would mean a wrong MILP or
//! an infeasible plan). Greedy sourcing costs more on some instances, so
//! the sets do need freight to be planned.

use std::time::Duration;

use stockroute_eval::{greedy, milp, plan, Instance, Shape};

/// Far beyond what these sizes need, even in a debug build.
const BUDGET: Duration = Duration::from_secs(20);

/// Checks every seed; returns on how many greedy sourcing costs more than
/// the optimum.
fn check(shape: Shape, seeds: std::ops::Range<u64>) -> usize {
    let mut greedy_worse = 0;
    for seed in seeds {
        let instance = Instance::random(shape, seed);
        let exact = milp(&instance).unwrap_or_else(|e| panic!("{shape:?} seed {seed}: {e}"));
        let planned =
            plan(&instance, BUDGET).unwrap_or_else(|e| panic!("{shape:?} seed {seed}: {e}"));
        assert!(
            planned.proven,
            "{shape:?} seed {seed}: the search did not finish"
        );
        assert_eq!(
            planned.cost, exact.cost,
            "{shape:?} seed {seed}: planner against the MILP optimum"
        );
        let g = greedy(&instance).expect("greedy shipments rate");
        assert!(
            g >= exact.cost,
            "{shape:?} seed {seed}: greedy below the optimum"
        );
        greedy_worse += usize::from(g > exact.cost);
    }
    greedy_worse
}

#[test]
fn planner_matches_the_milp_optimum_without_splits() {
    let mut greedy_worse = 0;
    for lines in [4, 8, 12, 16] {
        let shape = Shape {
            lines,
            suppliers: 12,
            offers: 4,
            split: false,
        };
        greedy_worse += check(shape, 0..6);
    }
    assert!(greedy_worse > 0, "greedy sourcing was optimal everywhere");
}

#[test]
fn planner_matches_the_milp_optimum_with_split_lines() {
    let mut greedy_worse = 0;
    for lines in [3, 6, 9, 12] {
        let shape = Shape {
            lines,
            suppliers: 10,
            offers: 3,
            split: true,
        };
        greedy_worse += check(shape, 100..106);
    }
    assert!(greedy_worse > 0, "greedy sourcing was optimal everywhere");
}

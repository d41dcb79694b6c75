//! Lower bounds on what the lines not yet placed will add.
//!
//! Goods and the cost of opening shipments: the lines left form an
//! uncapacitated facility location problem (line = customer, supplier =
//! facility, goods = assignment cost, the supplier's freight floor = opening
//! cost, zero for suppliers already shipping). Any dual solution of its LP
//! relaxation bounds it from below; dual ascent (Erlenkotter) finds a good
//! one in a few passes over the lines. Weight that lines add to shipments
//! already open is left out, which only weakens the bound.

use super::problem::Units;

/// Passes of dual ascent; each raises every line's dual at most one step.
const ASCENT_PASSES_MAX: usize = 8;

/// One line in the facility-location bound.
#[derive(Debug, Clone)]
pub(super) struct UflLine {
    /// Index of the plannable line (for bans).
    pub line: usize,
    /// For each single-supplier option with the line's fewest missing
    /// units: (facility, goods, the linear freight floor its units add). A
    /// facility is the caller's: a supplier, or a share of one.
    pub costs: Vec<(u32, Units, Units)>,
}

/// Scratch space reused between bounds.
#[derive(Debug, Default)]
pub(super) struct Scratch {
    dual: Vec<Units>,
    slack: Vec<Units>,
    used: Vec<u64>,
    /// Per line, its (cost, supplier) sorted; `starts` delimits the lines.
    costs: Vec<(Units, u32)>,
    starts: Vec<usize>,
}

/// The dual-ascent bound on goods, freight that adds up per unit, and
/// opening costs of `lines` over facilities `0..facilities`. `open_cost(k)`
/// is the least freight of opening facility `k` (0 for one already
/// counted); `adds(k)` says whether a line's linear freight counts when it
/// goes to `k` (not for a shipment whose freight is already counted another
/// way); `usable(line, k)` filters banned pairings.
pub(super) fn facility_bound(
    lines: &[&UflLine],
    facilities: usize,
    open_cost: impl Fn(u32) -> Units,
    adds: impl Fn(u32) -> bool,
    usable: impl Fn(usize, u32) -> bool,
    scratch: &mut Scratch,
) -> Units {
    let Scratch {
        dual,
        slack,
        costs,
        starts,
        ..
    } = scratch;
    dual.clear();
    slack.clear();
    slack.resize(facilities, Units::MIN);
    costs.clear();
    starts.clear();
    for line in lines {
        let start = costs.len();
        starts.push(start);
        for &(k, goods, linear) in &line.costs {
            if !usable(line.line, k) {
                continue;
            }
            let c = goods + if adds(k) { linear } else { 0 };
            costs.push((c, k));
            if slack[k as usize] == Units::MIN {
                slack[k as usize] = open_cost(k);
            }
        }
        costs[start..].sort_unstable();
        dual.push(costs.get(start).map_or(0, |c| c.0));
    }
    starts.push(costs.len());
    for _ in 0..ASCENT_PASSES_MAX {
        let mut raised = false;
        for i in 0..lines.len() {
            let entries = &costs[starts[i]..starts[i + 1]];
            let v = dual[i];
            let (mut room, mut next) = (Units::MAX, Units::MAX);
            for &(c, k) in entries {
                if c <= v {
                    room = room.min(slack[k as usize]);
                } else {
                    next = c;
                    break;
                }
            }
            if room <= 0 || room == Units::MAX {
                continue;
            }
            let step = room.min(next.saturating_sub(v));
            if step <= 0 {
                continue;
            }
            dual[i] = v + step;
            for &(c, k) in entries {
                if c > v {
                    break;
                }
                slack[k as usize] -= step;
            }
            raised = true;
        }
        if !raised {
            break;
        }
    }
    dual.iter().sum()
}

/// Lines that must each open a different new shipment: a greedy packing of
/// lines whose supplier sets are pairwise disjoint and hold no open supplier.
/// `sups` gives each line's suppliers, or `None` for a line that needs none
/// (or can join an open shipment).
pub(super) fn disjoint_lines<'a>(
    suppliers: usize,
    sups: impl Iterator<Item = Option<&'a [u32]>>,
    scratch: &mut Scratch,
) -> u32 {
    let used = &mut scratch.used;
    used.clear();
    used.resize(suppliers.div_ceil(64), 0);
    let mut count = 0;
    for set in sups.flatten() {
        let clash = set
            .iter()
            .any(|&k| used[k as usize / 64] >> (k % 64) & 1 == 1);
        if !clash {
            for &k in set {
                used[k as usize / 64] |= 1 << (k % 64);
            }
            count += 1;
        }
    }
    count
}

#[cfg(test)]
mod tests {
    use super::*;

    fn brute_force(lines: &[UflLine], open: &[Units]) -> Units {
        // Costs here carry no linear freight.
        // Every subset of suppliers opened, each line to its cheapest open one.
        let n = open.len();
        (1u32..(1 << n))
            .filter_map(|mask| {
                let opened: Units = (0..n).filter(|k| mask >> k & 1 == 1).map(|k| open[k]).sum();
                let goods: Option<Units> = lines
                    .iter()
                    .map(|l| {
                        l.costs
                            .iter()
                            .filter(|(k, _, _)| mask >> k & 1 == 1)
                            .map(|c| c.1)
                            .min()
                    })
                    .sum();
                goods.map(|g| g + opened)
            })
            .min()
            .unwrap_or(0)
    }

    #[test]
    fn dual_ascent_never_exceeds_the_optimum_and_beats_cheapest_goods() {
        // Three lines, three suppliers; opening any costs 10.
        let lines = vec![
            UflLine {
                line: 0,
                costs: vec![(0, 5, 0), (1, 6, 0), (2, 9, 0)],
            },
            UflLine {
                line: 1,
                costs: vec![(1, 4, 0), (0, 7, 0)],
            },
            UflLine {
                line: 2,
                costs: vec![(2, 1, 0), (0, 3, 0)],
            },
        ];
        let open = [10, 10, 10];
        let refs: Vec<&UflLine> = lines.iter().collect();
        let mut scratch = Scratch::default();
        let bound = facility_bound(
            &refs,
            3,
            |k| open[k as usize],
            |_| true,
            |_, _| true,
            &mut scratch,
        );
        let best = brute_force(&lines, &open);
        assert!(bound <= best, "bound {bound} > optimum {best}");
        assert!(
            bound > 5 + 4 + 1,
            "bound {bound} no better than cheapest goods"
        );
    }

    #[test]
    fn disjoint_lines_count_only_lines_that_cannot_share() {
        let mut scratch = Scratch::default();
        let a: &[u32] = &[0, 1];
        let b: &[u32] = &[1, 2];
        let c: &[u32] = &[3];
        let n = disjoint_lines(
            4,
            [Some(a), Some(b), Some(c), None].into_iter(),
            &mut scratch,
        );
        assert_eq!(n, 2);
    }
}

//! Lower bounds on what the lines not yet placed will add.
//!
//! Goods and the cost of opening shipments: the lines left form an
//! uncapacitated facility location problem (line = customer, supplier =
//! facility, goods = assignment cost, the supplier's freight floor = opening
//! cost, zero for suppliers already shipping). Any dual solution of its LP
//! relaxation bounds it from below; dual ascent (Erlenkotter) finds a good
//! one in a few passes over the lines. Weight that lines add to shipments
//! already open is left out, which only weakens the bound.

use smallvec::SmallVec;

use super::problem::Units;

/// Passes of dual ascent; each raises every line's dual at most one step.
const ASCENT_PASSES_MAX: usize = 8;

/// One line in the facility-location bound.
#[derive(Debug, Clone)]
pub(super) struct UflLine {
    /// Index of the plannable line (for bans).
    pub line: usize,
    /// For each supplier of the options with the line's fewest missing
    /// units: (facility, goods, the linear freight floor its units add). A
    /// facility is the caller's: a supplier, or a share of one. An option
    /// that splits the line across suppliers may stand under each of them,
    /// with the linear freight of that part only, once per facility.
    pub costs: Vec<(u32, Units, Units)>,
}

/// Scratch space reused between bounds, and between the searches of a basket.
#[derive(Debug, Default)]
pub(super) struct Scratch {
    dual: Vec<Units>,
    slack: Vec<Units>,
    used: Vec<u64>,
    /// Per line, its (cost, supplier) sorted; `starts` delimits the lines.
    costs: Vec<(Units, u32)>,
    starts: Vec<usize>,
    /// The last bound's entries, for [`repaired_bound`]: (index into its
    /// lines, plannable line, goods, linear, next entry of the same
    /// facility), chained from `first` per facility (`NONE`: no more).
    entries: Vec<(u32, u32, Units, Units, u32)>,
    first: Vec<u32>,
}

impl Scratch {
    /// The duals of the last [`facility_bound`], one per line it was given,
    /// in that order.
    pub(super) fn duals(&self) -> &[Units] {
        &self.dual
    }

    /// The facilities whose opening cost the last [`facility_bound`]'s
    /// duals pay in full (no slack left), ascending: those the dual ascent
    /// would open, as a primal start (Erlenkotter's DUALOC).
    pub(super) fn paid(&self) -> impl Iterator<Item = u32> + '_ {
        self.slack
            .iter()
            .enumerate()
            .filter(|&(_, &s)| s != Units::MIN && s <= 0)
            .map(|(f, _)| f as u32)
    }
}

/// The end of a facility's chain of entries.
const NONE: u32 = u32::MAX;

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
        entries,
        first,
        ..
    } = scratch;
    dual.clear();
    slack.clear();
    slack.resize(facilities, Units::MIN);
    costs.clear();
    starts.clear();
    entries.clear();
    first.clear();
    first.resize(facilities, NONE);
    for (i, line) in lines.iter().enumerate() {
        let start = costs.len();
        starts.push(start);
        for &(k, goods, linear) in &line.costs {
            if !usable(line.line, k) {
                continue;
            }
            entries.push((i as u32, line.line as u32, goods, linear, first[k as usize]));
            first[k as usize] = entries.len() as u32 - 1;
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

/// The facility-location bound of the lines of the last [`facility_bound`]
/// run on `scratch`, after facilities `changed` took new
/// opening costs or counted linear freight differently (`open_cost`, `adds`
/// and `usable` as there, for the new state; every other facility as
/// before, bans only added). The duals found then stay feasible once lowered
/// by each changed facility's excess: what the lines' duals charge it beyond
/// its new opening cost. Lowering one line's dual by `d` lowers what it
/// charges any facility by at most `d`, so lowering by the excesses in turn
/// fixes every changed facility and breaks none; the sum that is left bounds
/// the new problem from below without another ascent.
pub(super) fn repaired_bound(
    changed: &[u32],
    open_cost: impl Fn(u32) -> Units,
    adds: impl Fn(u32) -> bool,
    usable: impl Fn(usize, u32) -> bool,
    scratch: &Scratch,
) -> Units {
    let Scratch {
        dual,
        entries,
        first,
        ..
    } = scratch;
    let mut lower: Units = dual.iter().sum();
    for (j, &f) in changed.iter().enumerate() {
        if changed[..j].contains(&f) {
            continue;
        }
        // Per line, what its dual charges the facility: the chain holds a
        // line's entries together, and a line's largest charge is the one
        // that counts.
        let (mut charged, mut line_most): (Units, Option<(u32, Units)>) = (0, None);
        let mut seen = false;
        let add = if adds(f) { 1 } else { 0 };
        let mut at = first.get(f as usize).copied().unwrap_or(NONE);
        while at != NONE {
            let (i, line, goods, linear, next) = entries[at as usize];
            at = next;
            if !usable(line as usize, f) {
                continue;
            }
            seen = true;
            let charge = (dual[i as usize] - goods - add * linear).max(0);
            line_most = match line_most {
                Some((last, most)) if last == i => Some((i, most.max(charge))),
                Some((_, most)) => {
                    charged += most;
                    Some((i, charge))
                }
                None => Some((i, charge)),
            };
        }
        charged += line_most.map_or(0, |(_, most)| most);
        if seen {
            lower -= (charged - open_cost(f)).max(0);
        }
    }
    lower
}

/// Per line, a set of suppliers as bits, so that telling whether two sets
/// meet costs a few word operations, not a walk over both.
#[derive(Debug, Default)]
pub(super) struct SupplierSets {
    words: usize,
    /// Inline for baskets of up to 16 lines over up to 64 suppliers: a
    /// one-line quote builds two of these per search.
    bits: SmallVec<[u64; 16]>,
}

impl SupplierSets {
    /// The sets `sets[l]` over suppliers `0..suppliers`.
    pub(super) fn new(suppliers: usize, sets: &[Vec<u32>]) -> Self {
        let words = suppliers.div_ceil(64).max(1);
        let mut bits = zeroed(words * sets.len());
        for (l, set) in sets.iter().enumerate() {
            for &k in set {
                bits[l * words + k as usize / 64] |= 1 << (k % 64);
            }
        }
        Self { words, bits }
    }

    /// Words per set.
    pub(super) fn words(&self) -> usize {
        self.words
    }

    fn of(&self, l: usize) -> &[u64] {
        &self.bits[l * self.words..(l + 1) * self.words]
    }
}

/// `n` zero words, inline where they fit (`SmallVec::from_elem` pushes
/// them one by one).
pub(super) fn zeroed<const N: usize>(n: usize) -> SmallVec<[u64; N]> {
    if n <= N {
        SmallVec::from_buf_and_len([0; N], n)
    } else {
        SmallVec::from_vec(vec![0; n])
    }
}

/// Sets `a` and `b` (of equal words) share a supplier.
fn meet(a: &[u64], b: &[u64]) -> bool {
    a.iter().zip(b).any(|(x, y)| x & y != 0)
}

/// Lines that must each open a different new shipment: a greedy packing of
/// `lines` whose supplier sets (in `sets`) are pairwise disjoint and hold
/// no supplier of `open` (bits, as a set of `sets`). A line with no
/// supplier (one that needs none) counts for nothing.
pub(super) fn disjoint_lines(
    sets: &SupplierSets,
    lines: impl Iterator<Item = usize>,
    open: &[u64],
    scratch: &mut Scratch,
) -> u32 {
    let used = &mut scratch.used;
    used.clear();
    used.resize(sets.words, 0);
    let mut count = 0;
    for l in lines {
        let set = sets.of(l);
        if set.iter().all(|&w| w == 0) || meet(set, open) || meet(set, used) {
            continue;
        }
        for (u, w) in used.iter_mut().zip(set) {
            *u |= w;
        }
        count += 1;
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

    /// The facility-location bound of `lines` with facility `k` opening
    /// at `open[k]`, every line usable everywhere it has a cost.
    fn ascend_all(lines: &[UflLine], open: &[Units], scratch: &mut Scratch) -> Units {
        let refs: Vec<&UflLine> = lines.iter().collect();
        facility_bound(
            &refs,
            open.len(),
            |k| open[k as usize],
            |_| true,
            |_, _| true,
            scratch,
        )
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
        let bound = ascend_all(&lines, &open, &mut Scratch::default());
        let best = brute_force(&lines, &open);
        assert!(bound <= best, "bound {bound} > optimum {best}");
        assert!(
            bound > 5 + 4 + 1,
            "bound {bound} no better than cheapest goods"
        );
    }

    proptest::proptest! {
        /// After facilities change their opening costs (down to nothing,
        /// as when a shipment opens there), the repaired duals still bound
        /// the changed problem from below.
        #[test]
        fn repaired_bound_never_exceeds_the_changed_optimum(
            goods in proptest::collection::vec(
                proptest::collection::vec(proptest::option::of(0i64..40), 4),
                1..5,
            ),
            open in proptest::collection::vec(0i64..40, 4),
            new_open in proptest::collection::vec(0i64..40, 4),
            changed in proptest::collection::vec(0u32..4, 0..3),
        ) {
            let lines: Vec<UflLine> = goods
                .iter()
                .enumerate()
                .map(|(i, row)| UflLine {
                    line: i,
                    costs: row
                        .iter()
                        .enumerate()
                        .filter_map(|(k, g)| g.map(|g| (k as u32, g, 0)))
                        .collect(),
                })
                .filter(|l| !l.costs.is_empty())
                .collect();
            proptest::prop_assume!(!lines.is_empty());
            let mut scratch = Scratch::default();
            ascend_all(&lines, &open, &mut scratch);
            let after: Vec<Units> = (0..4)
                .map(|k| if changed.contains(&k) { new_open[k as usize] } else { open[k as usize] })
                .collect();
            let repaired = repaired_bound(
                &changed,
                |k| after[k as usize],
                |_| true,
                |_, _| true,
                &scratch,
            );
            let best = brute_force(&lines, &after);
            proptest::prop_assert!(repaired <= best, "repaired {} > optimum {}", repaired, best);
        }
    }

    #[test]
    fn the_ascent_pays_for_the_supplier_the_optimum_opens() {
        // Three lines at 5 from supplier 0 (opening 10) or 4 from supplier 1
        // (opening 100): the optimum opens 0 alone, for 25. Supplier 2 is
        // no line's: the ascent never looks at it.
        let lines: Vec<UflLine> = (0..3)
            .map(|line| UflLine {
                line,
                costs: vec![(0, 5, 0), (1, 4, 0)],
            })
            .collect();
        let open = [10, 100, 0];
        let mut scratch = Scratch::default();
        let bound = ascend_all(&lines, &open, &mut scratch);
        assert_eq!(bound, 25);
        assert_eq!(scratch.paid().collect::<Vec<_>>(), [0]);
    }

    #[test]
    fn disjoint_lines_count_only_lines_that_cannot_share() {
        let mut scratch = Scratch::default();
        let sets = SupplierSets::new(70, &[vec![0, 1], vec![1, 2], vec![3], vec![], vec![69]]);
        let none = vec![0; sets.words()];
        let n = disjoint_lines(&sets, 0..5, &none, &mut scratch);
        assert_eq!(n, 3);
        // A line holding an open supplier can join its shipment.
        let mut open = none.clone();
        open[69 / 64] |= 1 << (69 % 64);
        assert_eq!(disjoint_lines(&sets, 0..5, &open, &mut scratch), 2);
        // Greedy in the order given: a line meeting two others, taken
        // first, keeps both out.
        let chain = SupplierSets::new(2, &[vec![0], vec![0, 1], vec![1]]);
        let none = vec![0; chain.words()];
        assert_eq!(disjoint_lines(&chain, 0..3, &none, &mut scratch), 2);
        assert_eq!(
            disjoint_lines(&chain, [1, 0, 2].into_iter(), &none, &mut scratch),
            1
        );
    }
}

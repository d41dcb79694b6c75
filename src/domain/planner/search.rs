//! Depth-first branch and bound over the lines' options.
//!
//! Lines are placed one at a time in a fixed order (lines with fewest
//! options first, then those whose second-best price is furthest from the
//! best); at each line its options are tried cheapest first by goods plus
//! the freight floor they add. A node is cut when its lower bound is not
//! better than the best plan found: the bound adds the goods so far, for
//! every open shipment its exact freight once no remaining line can join it
//! (else its floor at its current weight, raised, for a node the floors
//! leave standing, to what its few units force however they are parcelled:
//! see `tighten`), and the facility-location bound
//! of the remaining lines (see `bounds`), whose dual ascent runs once per
//! node and is repaired for each option; a CHEAPEST search still running
//! after a few dozen nodes (from the first on baskets of 16 lines or more
//! with few suppliers per line) also bounds the remaining lines by each
//! supplier's subsets of them (see `lagrange`). A search that runs past a few
//! hundred nodes (a few dozen on baskets of 16 lines or more) improves its
//! best plan by local moves once (`local_search`), which only tightens the
//! cut. Everything is deterministic: the
//! order depends only on the input, and a plan replaces the best only when
//! strictly better, so among equal plans the first met in this order wins.

use std::cmp::Reverse;
use std::time::Instant;

use rustc_hash::FxHashMap;
use smallvec::SmallVec;

use super::bounds::{
    disjoint_lines, facility_bound, repaired_bound, zeroed, Scratch, SupplierSets, UflLine,
};
use super::cache::{Cache, Items, UnitFloor};
use super::evaluate::{self, Score};
use super::lagrange::{Lagrange, Member};
use super::problem::{Part, Problem, Units};
use super::{LinearFloor, Objective, PlanOptions, Rater, ShipmentProfile};
use crate::domain::freight::PACKED_MAX_SETS;

/// Nodes between two looks at the clock.
const CLOCK_EVERY_NODES: u64 = 64;

/// Nodes between two looks at the clock in baskets of
/// `LOCAL_SEARCH_EARLY_LINES` or more. A node of a 20-line basket with 8
/// suppliers a line costs 2–4 µs: at 64 nodes a look, searches under a 1 ms
/// deadline stopped up to 0.2 ms late, at 8 about 30 µs. A look costs about
/// a hundredth of such a node.
const CLOCK_EVERY_NODES_LARGE: u64 = 8;

/// Nodes the search may spend past its deadline while it has no feasible
/// plan at all (a plan is owed whenever one exists; this bounds the cost of
/// proving there is none).
const NODES_WITHOUT_PLAN_MAX: u64 = 2_000_000;

/// States a search notes at most (`Search::reached_before`): at most about
/// 14 MiB on 20-line baskets (a state's key holds up to 41 numbers), where
/// a search of up to two million nodes without a plan would otherwise note
/// one per node. Past it, states already noted still cut.
#[cfg(not(test))]
const STATES_MAX: usize = 1 << 16;

/// In tests, few, so that searches of six lines reach it.
#[cfg(test)]
const STATES_MAX: usize = 16;

/// Nodes after which a search still running tries to improve its best
/// plan by local search (small baskets finish well before and pay nothing).
#[cfg(not(test))]
const LOCAL_SEARCH_AT_NODES: u64 = 256;

/// In tests, early: the brute-force comparisons' baskets are small and
/// would otherwise never reach local search.
#[cfg(test)]
const LOCAL_SEARCH_AT_NODES: u64 = 4;

/// Lines from which a search tries local search early, after
/// `LOCAL_SEARCH_EARLY_AT_NODES`: a node of such a basket rates shipments of
/// many units, so a deadline of a millisecond or two ends the search within a
/// few dozen nodes, long before `LOCAL_SEARCH_AT_NODES`. Smaller baskets
/// mostly finish first, and local search would only add ratings.
const LOCAL_SEARCH_EARLY_LINES: usize = 16;

/// Nodes after which a basket of `LOCAL_SEARCH_EARLY_LINES` or more tries
/// local search: about one dive to a first plan.
const LOCAL_SEARCH_EARLY_AT_NODES: u64 = 16;

/// Lines from which a search notes what its root's duals pay for, so that
/// local search also starts from there (`Search::dual_start`): where local
/// search runs after the first dive. Smaller baskets rarely run it at all,
/// and would pay for the note in every quote.
#[cfg(not(test))]
const DUAL_START_LINES: usize = LOCAL_SEARCH_EARLY_LINES;

/// In tests, within the brute-force comparisons' baskets, so that they
/// check the searches it changes.
#[cfg(test)]
const DUAL_START_LINES: usize = 2;

/// Nodes after which a search of `lines` lines tries local search. A node
/// count, not a time, so that the plan met first among equals is the same
/// every time.
fn local_search_at(lines: usize) -> u64 {
    if lines >= LOCAL_SEARCH_EARLY_LINES {
        LOCAL_SEARCH_AT_NODES.min(LOCAL_SEARCH_EARLY_AT_NODES)
    } else {
        LOCAL_SEARCH_AT_NODES
    }
}

/// Lines from which FASTEST drops beaten private options before searching
/// (`Search::undominated_private`): it rates them to compare, which cost
/// one-line quotes more than the small search it spared.
const DOMINANCE_LINES_MIN: usize = 3;

/// Nodes after which a CHEAPEST search still running bounds the lines left
/// by their suppliers' subsets as well (`lagrange`). Its multipliers cost
/// more than most searches that finish sooner. At 64, a few dives in on a
/// 10-line basket, the searches of 10 lines with 8 suppliers a line that
/// ran past 150 nodes took 0.77 of the instructions they took from 256, and
/// all 200 such baskets of the bench 0.92; from 128, 16 or the first node
/// they took more than from 64.
#[cfg(not(test))]
const LAGRANGE_AT_NODES: u64 = 64;

/// In tests, early, so that the brute-force comparisons' small baskets use it.
#[cfg(test)]
const LAGRANGE_AT_NODES: u64 = 2;

/// Nodes after which a CHEAPEST search still running raises its open
/// shipments' floors by their packed floors (`Search::tighten`). Each costs
/// several floors; most searches of up to 10 lines finish sooner, and pay
/// nothing. Baskets of `LAGRANGE_EARLY_LINES` or more start at half of it:
/// they seldom finish that soon, and a floor raised early holds for its
/// shipment all the way down.
#[cfg(not(test))]
const PACKED_AT_NODES: u64 = 64;

/// In tests, early, so that the brute-force comparisons' small baskets use
/// it, and most of them only after their first dive (`raise_open`).
#[cfg(test)]
const PACKED_AT_NODES: u64 = 6;

/// Lines from which a CHEAPEST search may bound by the suppliers' subsets
/// from its first node (see `Search::lagrange_from`): such baskets seldom
/// finish within `LAGRANGE_AT_NODES`, and the bound saves most where it
/// starts first.
#[cfg(not(test))]
const LAGRANGE_EARLY_LINES: usize = 16;

/// In tests, within the brute-force comparisons' baskets, so that both
/// starts are exercised.
#[cfg(test)]
const LAGRANGE_EARLY_LINES: usize = 4;

/// Lines from which a basket whose lines have at most two usable options
/// each is ordered by its root's children (`Search::order_by_second_child`).
/// Smaller baskets finish in a few dozen nodes whatever the order.
#[cfg(not(test))]
const SECOND_CHILD_ORDER_LINES: usize = 16;

/// In tests, within the brute-force comparisons' baskets.
#[cfg(test)]
const SECOND_CHILD_ORDER_LINES: usize = 3;

/// Nodes after which a CHEAPEST search of `LAGRANGE_EARLY_LINES` or more,
/// whose lines have more suppliers each than the bound starts with at its
/// first node, starts it: about two dives, by when it holds a plan for the
/// multipliers' subgradient steps to aim at (`Lagrange::subgradient`).
#[cfg(not(test))]
const LAGRANGE_LARGE_AT_NODES: u64 = 40;

/// In tests, early, as `LAGRANGE_AT_NODES`.
#[cfg(test)]
const LAGRANGE_LARGE_AT_NODES: u64 = 2;

/// Suppliers per line (on average over the basket's lines) up to which a
/// basket of `LAGRANGE_EARLY_LINES` or more starts the suppliers' subsets
/// bound at its first node.
const LAGRANGE_EARLY_SUPPLIERS_PER_LINE: usize = 4;

/// Lines from which a search never uses the suppliers' subsets bound: such
/// baskets plan under a deadline that no proof fits in, where the time its
/// multipliers take is better spent improving the plan.
const LAGRANGE_LINES_MAX: usize = 32;

/// Passes of the multipliers' ascent (it stops sooner once none rises).
const LAGRANGE_PASSES: usize = 10;

/// Freight floors the multipliers' ascent may look up, in all.
const LAGRANGE_ASCENT_EVALS: u32 = 5_000;

/// Freight floors one open shipment's correction may look up.
const LAGRANGE_NODE_EVALS: u32 = 64;

/// Freight floors one open shipment's correction may look up once the
/// multipliers took subgradient steps (`Lagrange::subgradient`): more of
/// its lines then save against their multipliers, and a correction cut
/// short gives back much of what the steps won.
const LAGRANGE_STEPPED_NODE_EVALS: u32 = 256;

/// Subgradient steps of the multipliers, at most (`Lagrange::subgradient`).
/// Since the corrections count the shipments' linear floors, 12 steps
/// beat 20 on 20-line baskets of eight suppliers a line (median 0.93–0.95
/// of the time, the same mean and p99, a tenth more nodes); 8 or fewer
/// cost more nodes than they save.
const LAGRANGE_STEPS: usize = 12;

/// Freight floors one supplier's least subset may look up per step.
const LAGRANGE_STEP_EVALS: u32 = 512;

/// Nodes after which a CHEAPEST search of `LAGRANGE_EARLY_LINES` or more
/// whose multipliers took no subgradient steps yet (its bound started
/// without a plan to aim at, as on baskets of few suppliers a line, which
/// start it at their first node) takes them, once it holds a plan. Most
/// such searches finish sooner. On 20-line baskets of four suppliers a
/// line, the 12 that took the most nodes of 200 took 0.82 of the
/// instructions at 100 and all 200 0.98 (at 20 nodes 0.81 and 1.01, at
/// 200 nodes 0.84 and 0.97).
#[cfg(not(test))]
const LAGRANGE_LATE_STEP_AT_NODES: u64 = 100;

/// In tests, early, so that the brute-force comparisons' small baskets
/// take the steps within their search.
#[cfg(test)]
const LAGRANGE_LATE_STEP_AT_NODES: u64 = 4;

/// Nodes after which a CHEAPEST search whose multipliers took subgradient
/// steps when the suppliers' subsets bound started takes them once more,
/// towards the best plan's total. They start again from the best
/// multipliers met at full length (the first steps' lengths shrink as they
/// stall), and go where the first could not: on 20-line baskets of eight
/// suppliers a line, one search took 618 nodes instead of 49,847 and all
/// 200 0.64 of the nodes, where 20 steps instead of 12 the first time left
/// that search unchanged. Searches that took their first steps late
/// (`LAGRANGE_LATE_STEP_AT_NODES`) do not: on 20-line baskets of four
/// suppliers a line a second round at 300 nodes cost the slowest more
/// than it saved (1.03 of the instructions).
#[cfg(not(test))]
const LAGRANGE_AGAIN_AT_NODES: u64 = 300;

/// In tests, early, within the brute-force comparisons' baskets.
#[cfg(test)]
const LAGRANGE_AGAIN_AT_NODES: u64 = 8;

/// Subgradient steps of multipliers that take them late
/// (`LAGRANGE_LATE_STEP_AT_NODES`), and of a second round
/// (`LAGRANGE_AGAIN_AT_NODES`): on those 12 baskets, stepped at 20 nodes,
/// 20 steps took 0.94 of the instructions 12 took; at 100 nodes 30 steps
/// took no fewer than 20, and all 200 baskets 1.02 of them.
const LAGRANGE_LATE_STEPS: usize = 20;

/// Floors the corrections may look up between two looks at the clock (a
/// floor not looked up before is worked out over the lane's services, far
/// dearer than a look).
const LAGRANGE_EVALS_PER_LOOK: u64 = 64;

/// Plans one local search may score (each may rate a few new shipments).
const LOCAL_SEARCH_EVALS_MAX: usize = 512;

/// A plan's shipments for local search: supplier, its (line, part) pairs
/// and its freight in the plan's score (`None`: not known).
type Base = SmallVec<[(u32, evaluate::Parts, Option<Units>); 4]>;

/// The kinds of local-search move, in the order they are tried.
#[derive(Debug, Default, Clone, Copy)]
enum Phase {
    /// Close a shipment: its lines to the other open shipments.
    #[default]
    Close,
    /// Every line one supplier can ship wholly, to it.
    Consolidate,
    /// One line to another of its options.
    Line,
    /// Two lines, from wherever they ship, to one open shipment.
    Pair,
    /// Every line of one shipment to another supplier.
    Shipment,
}

/// Where local search is in the moves from one plan (`Search::next_move`).
#[derive(Debug, Default)]
struct Cursor {
    phase: Phase,
    i: usize,
    j: usize,
    k: usize,
}

impl Cursor {
    /// On to the first move of `phase`.
    fn advance(&mut self, phase: Phase) {
        *self = Cursor {
            phase,
            ..Cursor::default()
        };
    }
}

/// Moves one local search has looked at.
#[derive(Debug, Default)]
struct Tried {
    /// Moves screened by `Search::may_improve`.
    screened: usize,
    /// Plans scored exactly (at most `LOCAL_SEARCH_EVALS_MAX`).
    scored: usize,
}

/// What trying one move of local search came to.
enum Step {
    /// The plan is the new best.
    Better,
    /// It is not better (or not feasible).
    No,
    /// Local search must stop: out of plans to score or out of time.
    Stop,
}

/// What `apply` replaced per part: profile, floor, exact rating and sets.
type Saved = SmallVec<[(ShipmentProfile, UnitFloor, Option<Exact>, u32); 2]>;

/// An open shipment's exact rating: cheapest freight in time, fastest
/// arrival, and its staircase (`Cache::cheapest_by`).
type Exact = (Units, u32, u32);

/// Per part of an option: the linear floor its units add, `None` where its
/// line cannot ship from the part's supplier.
type PartUnits = SmallVec<[Option<Units>; 2]>;

/// A private option rated under FASTEST (`Search::undominated_private`):
/// option, missing units, goods, earliest arrival, staircase.
type RatedPrivate = (u32, u32, Units, u32, u32);

/// A child of a node worth going down to: its bound, option, whether rating
/// its closed shipments may tighten the bound, the facility-location part of
/// the bound, and what packed floors it was bound with.
type Child = (Score, u32, bool, Units, Packing);

/// What packed floors a child was bound with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Packing {
    /// None yet: the search took them only later (`Search::packs`). Holds
    /// the search's raises so far (`Search::raises`).
    Before(u64),
    /// Its shipments' packed floors, and whether any rose.
    Taken(bool),
}

/// The best assignment found and whether the search finished.
#[derive(Debug, Clone)]
pub(super) struct Found {
    /// Option index per plannable line.
    pub assignment: Vec<u32>,
    /// The whole space was searched (or cut by bounds): it is optimal.
    pub complete: bool,
}

/// How a remaining line enters the bounds.
#[derive(Debug, Clone)]
enum LineBound {
    /// Its fewest-missing options each need a supplier: the
    /// facility-location bound and the suppliers' subsets bound. An option
    /// that splits the line enters both as if it needed only one of its
    /// suppliers (any one), with only that part's units and linear freight
    /// there: a plan that splits the line ships at least that much from
    /// each, and what it adds at the others only raises its cost.
    Facility(UflLine),
    /// Some fewest-missing option needs no supplier (the line may be left
    /// out), or no option is usable: its cheapest goods, if any.
    Fixed(Units),
}

/// What a search works out before its first node: the options it tries,
/// the bound data and the line order. It depends on the objective only
/// through whether private options collapse (every objective but FASTEST),
/// so a planner keeps one of each kind for its later searches. What later
/// searches learn (pairings that cannot ship) only bans options, which the
/// search skips; bound data that still counts them stays a lower bound.
#[derive(Debug)]
pub(super) struct Prepared {
    /// Plannable lines in search order.
    order: Vec<usize>,
    /// Per plannable line: the options the search tries, best first.
    usable: Vec<Vec<u32>>,
    /// Per plannable line: its bound data.
    line_bounds: Vec<LineBound>,
    /// Per plannable line: suppliers of its fewest-missing options (none
    /// when it may be left out at no extra loss).
    bound_sups: Vec<Vec<u32>>,
    /// Per plannable line: suppliers of its usable options.
    line_sups: Vec<Vec<u32>>,
    /// `bound_sups` as bits, for `Search::cover`.
    bound_sets: SupplierSets,
    /// `line_sups` as bits, where shipments are capped (else empty).
    line_sets: SupplierSets,
    /// Per plannable line: whether it may be left out.
    can_leave_out: Vec<bool>,
    /// Per plannable line: fewest missing units of its usable options.
    min_missing: Vec<u32>,
    /// Per depth: fewest missing units of the lines from there on.
    missing_after: Vec<u32>,
    /// Per supplier: the linear opening of a shipment with a unit in a box.
    opening_boxed: Vec<Units>,
    /// Per supplier: the linear opening of a shipment with none (at most
    /// `opening_boxed`).
    opening_own: Vec<Units>,
    /// Per supplier: whether some line's unit from it ships in its own
    /// packaging (its facilities are split, see `facility`).
    has_own: Vec<bool>,
    /// Per supplier: earliest possible arrival.
    earliest: Vec<u32>,
    /// Per supplier: its linear floor (`None`: cannot ship).
    linear: Vec<Option<LinearFloor>>,
    /// Per supplier: whether its linear floor counts boxed goods by space
    /// rather than weight (whichever is larger over the lines it can serve).
    by_space: Vec<bool>,
    /// Per plannable line, per option, per part: the linear freight floor
    /// the part's units add (`None` when the line cannot ship from the
    /// part's supplier), so that placing an option costs no divisions; the
    /// unit's profile stays in the cache.
    part_units: Vec<Vec<PartUnits>>,
    /// Per supplier: how many plannable lines have usable options from it
    /// (the search's count of lines still to place starts here).
    remaining: Vec<u32>,
}

impl Prepared {
    fn empty(lines: usize, sups: usize) -> Self {
        Self {
            order: Vec::new(),
            usable: Vec::with_capacity(lines),
            line_bounds: Vec::with_capacity(lines),
            bound_sups: Vec::with_capacity(lines),
            line_sups: Vec::with_capacity(lines),
            bound_sets: SupplierSets::default(),
            line_sets: SupplierSets::default(),
            can_leave_out: Vec::with_capacity(lines),
            min_missing: Vec::with_capacity(lines),
            missing_after: Vec::new(),
            opening_boxed: vec![0; sups],
            opening_own: vec![0; sups],
            has_own: vec![false; sups],
            earliest: vec![0; sups],
            linear: vec![None; sups],
            by_space: vec![false; sups],
            part_units: Vec::with_capacity(lines),
            remaining: vec![0; sups],
        }
    }

    /// Whether searches under `objective` may use it.
    fn collapses(objective: Objective) -> bool {
        objective != Objective::Fastest
    }
}

struct Search<'a> {
    problem: &'a Problem,
    options: &'a PlanOptions,
    objective: Objective,
    rater: &'a dyn Rater,
    cache: &'a mut Cache,
    deadline: Instant,

    /// Usable options, bound data and line order (see [`Prepared`]).
    prep: Prepared,

    /// What the lines placed so far ship (see [`Node`]).
    node: Node,
    open: u32,
    goods: Units,
    missing: u32,

    best: Option<(Score, Vec<u32>)>,
    nodes: u64,
    /// Local search has run (once per search, from the first best plan
    /// held after `LOCAL_SEARCH_AT_NODES`).
    local_searched: bool,
    stopped: bool,
    /// The open shipments were raised to their packed floors where the
    /// search first took them (`raise_open`).
    raised_path: bool,
    /// Floors raised to packed floors so far: while it stays the same,
    /// every floor is what it was.
    raises: u64,
    /// Ratings made when the clock was last read (see [`Search::clock_due`]).
    ratings_at_clock: u64,
    /// Floors the suppliers' subsets bound had looked up then.
    lagrange_spent_at_clock: u64,
    scratch: Scratch,
    /// The suppliers' subsets bound, once the search has run long enough.
    lagrange: Option<Lagrange>,
    /// Nodes after which the suppliers' subsets bound starts (`lagrange_from`).
    lagrange_at: u64,
    /// Whether the suppliers' subsets bound's multipliers, which took
    /// subgradient steps when the bound started, take them once more
    /// (`LAGRANGE_AGAIN_AT_NODES`).
    steps_again: bool,
    /// The suppliers' subsets bound as it was before late subgradient
    /// steps (`LAGRANGE_LATE_STEP_AT_NODES`), which bounds nodes too where
    /// the stepped one leaves them.
    lagrange_raised: Option<Lagrange>,
    /// Nodes between two looks at the clock.
    clock_every: u64,
    /// Per supplier: whether the root's facility-location duals pay its
    /// opening in full (see `dual_start`); empty under FASTEST.
    paid: Vec<bool>,
    /// In tests: cut nothing, and check at every leaf that no bound on the
    /// way down exceeds its score (see [`check_bounds_below`]).
    #[cfg(test)]
    exhaustive: bool,
    /// In tests, when `exhaustive`: the bounds of the nodes on the way
    /// down to the current one, before and after their exact ratings.
    #[cfg(test)]
    path: Vec<(Score, Score)>,
}

#[cfg(test)]
thread_local! {
    /// Set by [`check_bounds_below`] for the searches it runs.
    static EXHAUSTIVE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// In tests: runs `f` with every search exhaustive. Nothing is cut, and
/// every leaf checks that each bound met on the way down to it is at most
/// its exact score: a bound above a leaf below it could cut that leaf where
/// it is the best plan, whether or not the cases at hand happen to show it.
/// Only for CHEAPEST and FEWEST_SHIPMENTS: FASTEST bounds a node only for
/// completions that arrive by the best plan's day.
#[cfg(test)]
pub(super) fn check_bounds_below<T>(f: impl FnOnce() -> T) -> T {
    /// Ends the mode however `f` ends (a failed check panics).
    struct Reset;
    impl Drop for Reset {
        fn drop(&mut self) {
            EXHAUSTIVE.with(|e| e.set(false));
        }
    }
    EXHAUSTIVE.with(|e| e.set(true));
    let _reset = Reset;
    f()
}

/// The state of the search at its current node: what the lines placed so
/// far ship, per supplier and per line. A finished search leaves it to the
/// next search of the same basket (see [`run`]): a quote runs several, and
/// a small one spent a good part of each allocating it afresh.
#[derive(Debug, Default)]
pub(super) struct Node {
    /// Per plannable line: the option placed (lines not placed yet hold
    /// whatever they held).
    choice: Vec<u32>,
    /// Per supplier: parts placed with it.
    count: Vec<u32>,
    /// Per supplier: at least the sub-multisets of the units placed with
    /// it (each part's units plus one, multiplied; parts of one kind of
    /// unit make fewer), which is what a packed floor's cost grows with.
    sets: Vec<u32>,
    /// Suppliers shipping something, in the order they opened.
    open_list: Vec<u32>,
    /// The suppliers of `open_list` as bits (see `SupplierSets`).
    open_bits: SmallVec<[u64; 2]>,
    /// Per supplier: the profile of what it ships so far.
    profile: Vec<ShipmentProfile>,
    /// Per supplier: the floor of that profile.
    floor: Vec<UnitFloor>,
    /// Per supplier: exact rating of what it ships so far, once rated (used
    /// only once no remaining line can join).
    exact: Vec<Option<Exact>>,
    /// Per supplier: the linear floor its units so far add.
    placed: Vec<Units>,
    /// Per supplier, within one bound: whether remaining lines' linear
    /// freight counts towards it.
    adds: Vec<bool>,
    /// Per supplier: how many lines not placed yet could still ship from it.
    remaining: Vec<u32>,
    /// The states searched so far (see [`Search::reached_before`]): per
    /// depth and the options placed on lines that ship with a supplier
    /// still open to later lines, what the last node searched there
    /// reached.
    states: FxHashMap<Box<[u32]>, Reached>,
}

/// What the placed lines of a node cost where the rest of the search no
/// longer changes it: units missing, shipments closed, and goods plus the
/// closed shipments' exact freight.
#[derive(Debug, Clone, Copy)]
struct Reached {
    missing: u32,
    closed: u32,
    total: Units,
}

impl Reached {
    /// Whether every completion of a node that reached `other` does at least
    /// as well as the same completion of one that reached `self` (the
    /// completion adds the same to both, in every part of the score).
    fn at_least(&self, other: &Reached) -> bool {
        self.missing >= other.missing && self.closed >= other.closed && self.total >= other.total
    }
}

impl Node {
    /// The root of a basket of `lines` lines over `sups` suppliers, in the
    /// allocations already held; `remaining` is the prepared count of lines
    /// per supplier.
    fn reset(&mut self, lines: usize, sups: usize, remaining: &[u32]) {
        fn refill<T: Clone>(v: &mut Vec<T>, n: usize, x: T) {
            v.clear();
            v.resize(n, x);
        }
        refill(&mut self.choice, lines, 0);
        refill(&mut self.count, sups, 0);
        refill(&mut self.sets, sups, 1);
        self.open_list.clear();
        self.open_bits = zeroed(sups.div_ceil(64).max(1));
        refill(&mut self.profile, sups, ShipmentProfile::default());
        let floor = UnitFloor {
            amount: 0,
            arrival_days: 0,
        };
        refill(&mut self.floor, sups, floor);
        refill(&mut self.exact, sups, None);
        refill(&mut self.placed, sups, 0);
        refill(&mut self.adds, sups, false);
        self.remaining.clear();
        self.remaining.extend_from_slice(remaining);
        self.states.clear();
    }
}

/// Searches for the best assignment under `objective`; `None` when no
/// feasible plan exists (or none was found within the node limit).
/// `prepared` holds what an earlier search of the same basket prepared for
/// each kind (see [`Prepared`]): used when there, and left there for the next;
/// `scratch` is the bounds' working space and `spare` the last search's
/// node (see [`Node`]), both kept for the next search too.
#[allow(clippy::too_many_arguments)]
pub(super) fn run(
    problem: &Problem,
    options: &PlanOptions,
    objective: Objective,
    rater: &dyn Rater,
    cache: &mut Cache,
    seeds: &[Vec<u32>],
    deadline: Instant,
    prepared: &mut [Option<Prepared>; 2],
    scratch: &mut Scratch,
    spare: &mut Node,
) -> Option<Found> {
    let kind = &mut prepared[usize::from(Prepared::collapses(objective))];
    let mut s = Search::new(
        problem,
        options,
        objective,
        rater,
        cache,
        deadline,
        kind.take(),
        std::mem::take(spare),
    );
    // The bounds' scratch space grows to the basket once, not once per search.
    s.scratch = std::mem::take(scratch);
    for seed in seeds {
        s.offer(seed.clone());
    }
    if options.allow_partial {
        // Leaving everything out is always feasible: a plan exists from the start.
        let skip: Vec<u32> = problem
            .lines
            .iter()
            .map(|l| {
                l.options
                    .iter()
                    .position(|o| o.parts.is_empty())
                    .unwrap_or(0) as u32
            })
            .collect();
        s.offer(skip);
    }
    if !problem.lines.is_empty() {
        s.dfs(0);
    } else {
        s.offer(Vec::new());
    }
    let complete = !s.stopped;
    *scratch = std::mem::take(&mut s.scratch);
    *spare = s.node;
    *kind = Some(s.prep);
    s.best.map(|(_, assignment)| Found {
        assignment,
        complete,
    })
}

/// In tests: the plan local search reaches from `start` alone, without
/// the tree search around it (which would find the optimum anyway in a
/// basket small enough to reason about).
#[cfg(test)]
pub(super) fn locally_improved(
    problem: &Problem,
    options: &PlanOptions,
    rater: &dyn Rater,
    cache: &mut Cache,
    start: Vec<u32>,
) -> Vec<u32> {
    let mut s = Search::cheapest_for_tests(problem, options, rater, cache);
    assert!(s.offer(start), "the start is a feasible plan");
    s.local_search();
    s.best.map(|(_, a)| a).unwrap_or_default()
}

/// In tests: the second start local search would take (`dual_start`) when
/// the best plan is `best`, from the duals of the root's ascent over every
/// line.
#[cfg(test)]
pub(super) fn dual_start_from(
    problem: &Problem,
    options: &PlanOptions,
    rater: &dyn Rater,
    cache: &mut Cache,
    best: Vec<u32>,
) -> Option<Vec<u32>> {
    let mut s = Search::cheapest_for_tests(problem, options, rater, cache);
    s.ascend(0);
    s.note_paid();
    assert!(s.offer(best), "the best plan is feasible");
    s.dual_start()
}

/// Whether `cheapest`, the plan a CHEAPEST search of this basket finished
/// with, is also what a FEWEST_SHIPMENTS search would return, so that none
/// need run. It is when it leaves out no more units than any plan must and
/// ships from no more suppliers than the root bound says every such plan
/// needs (lines whose suppliers are pairwise apart, see `disjoint_lines`):
/// then no plan has a better (missing, shipments) and none with the same
/// costs less. The search, seeded with it first, would keep it (a plan
/// replaces the best only when strictly better) and finish.
pub(super) fn fewest_is_cheapest(
    problem: &Problem,
    prepared: &[Option<Prepared>; 2],
    cheapest: &[u32],
    scratch: &mut Scratch,
) -> bool {
    // CHEAPEST and FEWEST_SHIPMENTS prepare alike (both collapse private options).
    let Some(prep) =
        prepared[usize::from(Prepared::collapses(Objective::FewestShipments))].as_ref()
    else {
        return false;
    };
    let missing: u32 = cheapest
        .iter()
        .enumerate()
        .map(|(l, &o)| problem.lines[l].options[o as usize].missing)
        .sum();
    if prep.missing_after.first() != Some(&missing) {
        return false;
    }
    let shipments = evaluate::group(problem, cheapest).len() as u32;
    let none: SmallVec<[u64; 2]> = zeroed(prep.bound_sets.words());
    let lines = prep.order.iter().copied();
    shipments <= disjoint_lines(&prep.bound_sets, lines, &none, scratch)
}

impl<'a> Search<'a> {
    #[allow(clippy::too_many_arguments)]
    fn new(
        problem: &'a Problem,
        options: &'a PlanOptions,
        objective: Objective,
        rater: &'a dyn Rater,
        cache: &'a mut Cache,
        deadline: Instant,
        prepared: Option<Prepared>,
        node: Node,
    ) -> Self {
        let n = problem.lines.len();
        let sups = problem.suppliers.len();
        let fresh = prepared.is_none();
        let mut s = Self {
            problem,
            options,
            objective,
            rater,
            cache,
            deadline,
            prep: prepared.unwrap_or_else(|| Prepared::empty(n, sups)),
            node,
            open: 0,
            goods: 0,
            missing: 0,
            best: None,
            nodes: 0,
            local_searched: false,
            stopped: false,
            raised_path: false,
            raises: 0,
            ratings_at_clock: 0,
            lagrange_spent_at_clock: 0,
            scratch: Scratch::default(),
            lagrange: None,
            lagrange_at: LAGRANGE_AT_NODES,
            steps_again: false,
            lagrange_raised: None,
            paid: Vec::new(),
            clock_every: if n >= LOCAL_SEARCH_EARLY_LINES {
                CLOCK_EVERY_NODES_LARGE
            } else {
                CLOCK_EVERY_NODES
            },
            #[cfg(test)]
            exhaustive: EXHAUSTIVE.with(std::cell::Cell::get) && objective != Objective::Fastest,
            #[cfg(test)]
            path: Vec::new(),
        };
        if fresh {
            s.prepare();
        }
        s.node.reset(n, sups, &s.prep.remaining);
        if fresh && s.orders_by_second_child() {
            s.order_by_second_child();
        }
        s.lagrange_at = s.lagrange_from();
        s
    }

    /// In tests: a fresh CHEAPEST search of `problem` with no deadline to
    /// speak of, for the hooks that drive one of its parts alone.
    #[cfg(test)]
    fn cheapest_for_tests(
        problem: &'a Problem,
        options: &'a PlanOptions,
        rater: &'a dyn Rater,
        cache: &'a mut Cache,
    ) -> Self {
        let far = Instant::now() + std::time::Duration::from_secs(600);
        Search::new(
            problem,
            options,
            Objective::Cheapest,
            rater,
            cache,
            far,
            None,
            Node::default(),
        )
    }

    /// Usable options, dominance among private suppliers, bound data and the line order.
    fn prepare(&mut self) {
        let problem = self.problem;
        for k in 0..problem.suppliers.len() {
            self.prep.linear[k] = self.cache.linear(problem, self.rater, k as u32);
            let Some(f) = self.prep.linear[k] else {
                continue;
            };
            // Count boxed goods the way that bounds everything the supplier
            // could ship higher.
            let (mut weight, mut space) = (f.by_weight.opening, f.by_space.opening);
            for &l in &problem.sup_lines[k] {
                if let Some(u) = self
                    .cache
                    .unit_profile(problem, self.rater, l as usize, k as u32)
                {
                    let qty = problem.inputs[problem.lines[l as usize].line].qty;
                    weight += f.marginal(&u, false) * Units::from(qty);
                    space += f.marginal(&u, true) * Units::from(qty);
                }
            }
            self.prep.by_space[k] = space > weight;
        }
        // Per supplier: whether some line's unit ships in its own packaging.
        let mut own_only = vec![false; problem.suppliers.len()];
        for (l, line) in problem.lines.iter().enumerate() {
            let mut usable: Vec<u32> = (0..line.options.len() as u32)
                .filter(|&o| !self.cache.option_banned(problem, l, o as usize))
                .collect();
            usable = if Prepared::collapses(self.objective) {
                self.collapse_private(l, usable)
            } else if problem.lines.len() >= DOMINANCE_LINES_MIN {
                self.undominated_private(l, usable)
            } else {
                usable
            };
            let min_missing = usable
                .iter()
                .map(|&o| line.options[o as usize].missing)
                .min()
                .unwrap_or(u32::MAX);
            let mut sups: Vec<u32> = usable
                .iter()
                .flat_map(|&o| line.options[o as usize].parts.iter().map(|p| p.sup))
                .collect();
            sups.sort_unstable();
            sups.dedup();
            for &k in &sups {
                self.prep.remaining[k as usize] += 1;
            }
            for &k in &sups {
                if let Some(u) = self.cache.unit_profile(problem, self.rater, l, k) {
                    own_only[k as usize] |= u.boxed_weight_g == 0;
                }
            }
            let part_units: Vec<PartUnits> = line
                .options
                .iter()
                .map(|opt| {
                    opt.parts
                        .iter()
                        .map(|p| {
                            if self.cache.banned(l, p.sup) {
                                // Never placed (banned options are skipped).
                                return None;
                            }
                            self.cache.unit_profile(problem, self.rater, l, p.sup)?;
                            Some(self.part_linear(l, p.sup, p.units))
                        })
                        .collect()
                })
                .collect();
            let best_opts: SmallVec<[u32; 16]> = usable
                .iter()
                .copied()
                .filter(|&o| line.options[o as usize].missing == min_missing)
                .collect();
            let leave_out = best_opts
                .iter()
                .any(|&o| line.options[o as usize].parts.is_empty());
            let mut bound_sups: Vec<u32> = if leave_out {
                Vec::new()
            } else {
                best_opts
                    .iter()
                    .flat_map(|&o| line.options[o as usize].parts.iter().map(|p| p.sup))
                    .collect()
            };
            bound_sups.sort_unstable();
            bound_sups.dedup();
            let bound = if leave_out || best_opts.is_empty() {
                let goods = best_opts
                    .iter()
                    .map(|&o| line.options[o as usize].goods)
                    .min()
                    .unwrap_or(0);
                LineBound::Fixed(goods)
            } else {
                let mut costs: Vec<(u32, Units, Units)> = Vec::with_capacity(best_opts.len());
                for &o in &best_opts {
                    let opt = &line.options[o as usize];
                    for (i, p) in opt.parts.iter().enumerate() {
                        let boxed = self
                            .cache
                            .unit_profile(problem, self.rater, l, p.sup)
                            .is_some_and(|u| u.boxed_weight_g > 0);
                        let f = facility(p.sup, boxed);
                        // Only this part's units go to this supplier.
                        let linear = part_units[o as usize][i].unwrap_or(0);
                        // One entry per facility (several only where lines
                        // split), at the least goods and linear freight of
                        // the options through it: the bound's dual ascent
                        // charges each entry apart.
                        match costs.iter_mut().find(|(k, _, _)| *k == f) {
                            Some((_, g, m)) => {
                                *g = (*g).min(opt.goods);
                                *m = (*m).min(linear);
                            }
                            None => costs.push((f, opt.goods, linear)),
                        }
                    }
                }
                costs.sort_by_key(|&(k, c, m)| (c + m, k));
                LineBound::Facility(UflLine { line: l, costs })
            };
            self.prep.bound_sups.push(bound_sups);
            self.prep.can_leave_out.push(
                usable
                    .iter()
                    .any(|&o| line.options[o as usize].parts.is_empty()),
            );
            self.prep.line_sups.push(sups);
            self.prep.part_units.push(part_units);
            self.prep.usable.push(usable);
            self.prep.min_missing.push(min_missing);
            self.prep.line_bounds.push(bound);
        }
        let empty = ShipmentProfile::default();
        for (k, &own) in own_only.iter().enumerate() {
            if let Some(f) = self.prep.linear[k] {
                self.prep.opening_boxed[k] = f.opening(self.prep.by_space[k], true);
                self.prep.opening_own[k] = f.opening(self.prep.by_space[k], false);
            }
            self.prep.has_own[k] = own;
            let f = self.cache.floor(problem, self.rater, k as u32, &empty);
            self.prep.earliest[k] = f.map_or(0, |f| f.arrival_days);
        }
        // Fewest options first (forced lines open their shipments early),
        // then the largest gap between the best and second-best goods.
        let mut order: Vec<usize> = (0..problem.lines.len()).collect();
        let excess: SmallVec<[Units; 16]> = (0..problem.lines.len())
            .map(|l| self.bulk_excess(l))
            .collect();
        // The gap between a line's best and second-best goods.
        let regret: SmallVec<[Units; 16]> = (0..problem.lines.len())
            .map(|l| {
                let (mut a, mut b) = (Units::MAX, Units::MAX);
                for &o in &self.prep.usable[l] {
                    let g = problem.lines[l].options[o as usize].goods;
                    if g < a {
                        (a, b) = (g, a);
                    } else if g < b {
                        b = g;
                    }
                }
                if b == Units::MAX {
                    0
                } else {
                    b - a
                }
            })
            .collect();
        // Lines whose own freight floor is far above the linear one (bulky
        // or heavy goods) weaken the bound until placed: place them early.
        order.sort_by_key(|&l| {
            (
                self.prep.usable[l].len().min(2),
                -(regret[l] + excess[l]),
                l,
            )
        });
        self.prep.order = order;
        let suppliers = problem.suppliers.len();
        self.prep.bound_sets = SupplierSets::new(suppliers, &self.prep.bound_sups);
        // Only a cap on shipments asks for them (`cover`, hard).
        if self.options.max_shipments > 0 {
            self.prep.line_sets = SupplierSets::new(suppliers, &self.prep.line_sups);
        }
        self.count_missing_after();
    }

    /// `missing_after` for the current line order, in place: the ranking
    /// of `order_by_second_child` counts it again for every line it tries.
    fn count_missing_after(&mut self) {
        let prep = &mut self.prep;
        prep.missing_after.clear();
        prep.missing_after.resize(prep.order.len() + 1, 0);
        for d in (0..prep.order.len()).rev() {
            let m = prep.min_missing[prep.order[d]];
            prep.missing_after[d] = prep.missing_after[d + 1].saturating_add(m);
        }
    }

    /// Whether this search orders its lines by their root children
    /// (`order_by_second_child`): a fresh CHEAPEST or FEWEST_SHIPMENTS
    /// search (they share what they prepare, so the order, and which of
    /// equal plans wins, does not depend on which runs first) of at least
    /// `SECOND_CHILD_ORDER_LINES` lines, none with more than two usable
    /// options. With a third option the root's facility-location bound
    /// ranks lines worse than `prepare`'s order: on 20-line baskets of four
    /// suppliers a line the hard ones took up to 1.7 times the nodes.
    fn orders_by_second_child(&self) -> bool {
        Prepared::collapses(self.objective)
            && self.prep.order.len() >= SECOND_CHILD_ORDER_LINES
            && self.prep.usable.iter().all(|u| u.len() <= 2)
    }

    /// Orders the lines that have a choice by the bound of their second
    /// child at the root, highest first (ties keep `prepare`'s order), after
    /// the lines without one. With two options the second child is the
    /// whole of what a proof must search below the line besides the best
    /// one, so a line whose both children bound high settles much of the
    /// tree where it is placed first: on 20-line baskets of two suppliers a
    /// line this took 36 nodes a basket against 98. Each line is tried at
    /// the root as the first placed, its children bounded as the search
    /// would bound them there (as for CHEAPEST, whichever objective runs).
    fn order_by_second_child(&mut self) {
        let objective = std::mem::replace(&mut self.objective, Objective::Cheapest);
        let base = std::mem::take(&mut self.prep.order);
        let least_missing = self.prep.missing_after.first().copied().unwrap_or(0);
        let mut keys: Vec<(bool, Reverse<Units>, usize)> = Vec::with_capacity(base.len());
        for (pos, &l) in base.iter().enumerate() {
            if self.prep.usable[l].len() < 2 {
                keys.push((false, Reverse(Units::MAX), pos));
                continue;
            }
            self.prep.order.clear();
            self.prep.order.push(l);
            self.prep
                .order
                .extend(base.iter().copied().filter(|&m| m != l));
            self.count_missing_after();
            self.leave(l);
            self.ascend(1);
            let mut children: SmallVec<[Units; 2]> = SmallVec::new();
            for i in 0..self.prep.usable[l].len() {
                let o = self.prep.usable[l][i];
                if self.cache.option_banned(self.problem, l, o as usize) {
                    children.push(Units::MAX);
                    continue;
                }
                let saved = self.apply(l, o);
                let bound = self.bound(1, l, o);
                self.undo(l, o, saved);
                // A child that must leave units out ranks as cut.
                children.push(bound.map_or(Units::MAX, |(b, _, _)| {
                    if b.missing > least_missing {
                        Units::MAX
                    } else {
                        b.total
                    }
                }));
            }
            self.enter(l);
            children.sort_unstable();
            keys.push((true, Reverse(children[1]), pos));
        }
        keys.sort_unstable();
        self.prep.order = keys.iter().map(|&(_, _, pos)| base[pos]).collect();
        self.count_missing_after();
        self.objective = objective;
    }

    /// How far the freight floor of the line shipped alone lies above its
    /// linear floor, at the least over its options.
    fn bulk_excess(&mut self, l: usize) -> Units {
        let problem = self.problem;
        let line = &problem.lines[l];
        let mut least: Option<Units> = None;
        for i in 0..self.prep.usable[l].len() {
            let o = self.prep.usable[l][i] as usize;
            let mut excess = 0;
            for p in &line.options[o].parts {
                let Some(u) = self.cache.unit_profile(problem, self.rater, l, p.sup) else {
                    continue;
                };
                let mut profile = ShipmentProfile::default();
                profile.add(&u, p.units);
                let alone = self
                    .cache
                    .floor(problem, self.rater, p.sup, &profile)
                    .map_or(0, |f| f.amount);
                let linear = self.new_opening(p.sup, u.boxed_weight_g > 0)
                    + self.part_linear(l, p.sup, p.units);
                excess += (alone - linear).max(0);
            }
            least = Some(least.map_or(excess, |x| x.min(excess)));
        }
        least.unwrap_or(0)
    }

    /// What the facility-location bound charges for opening a new shipment
    /// from `k` to a line whose unit is (`boxed`) or is not in a box. A
    /// shipment with a boxed unit costs at least `opening_boxed`, one with
    /// none at least `opening_own`; where both kinds of line could go, the
    /// bound opens two facilities, one for each kind, whose openings add up
    /// to at most what the shipment's kinds of unit require: `opening_own`
    /// for the own-packaging one, the rest of `opening_boxed` for the other.
    fn new_opening(&self, k: u32, boxed: bool) -> Units {
        let k = k as usize;
        match (boxed, self.prep.has_own[k]) {
            (false, _) => self.prep.opening_own[k],
            (true, false) => self.prep.opening_boxed[k],
            (true, true) => self.prep.opening_boxed[k] - self.prep.opening_own[k],
        }
    }

    /// The linear freight floor `units` of line `l` add to a shipment from `k`.
    fn part_linear(&mut self, l: usize, k: u32, units: u32) -> Units {
        let unit = self.cache.unit_profile(self.problem, self.rater, l, k);
        match (self.prep.linear[k as usize], unit) {
            (Some(f), Some(u)) => {
                f.marginal(&u, self.prep.by_space[k as usize]) * Units::from(units)
            }
            _ => 0,
        }
    }

    /// Under FASTEST, drops each of a line's options from suppliers no other
    /// line can use that another such option (same missing units) beats at
    /// every arrival: it arrives no later, and by any day it arrives, its
    /// goods and cheapest service by that day cost no more (an option the
    /// same at every day as one ranked before it goes too). Each is a
    /// shipment of its own, so putting the better one in its place in any
    /// plan makes the plan's latest arrival no later and, by the same day,
    /// its cost no higher. Options are rated lazily, cheapest floor first:
    /// one beaten even by its floor (least amount, soonest arrival) is
    /// dropped unrated.
    fn undominated_private(&mut self, l: usize, mut usable: Vec<u32>) -> Vec<u32> {
        let problem = self.problem;
        let line = &problem.lines[l];
        let private = |o: u32| is_private(problem, l, o);
        // (goods + floor, soonest arrival by the floor, option)
        let mut cands: SmallVec<[(Units, u32, u32); 16]> = SmallVec::new();
        for &o in usable.iter().filter(|&&o| private(o)) {
            let f = self.alone_floor(l, o);
            let (amount, soonest) = f.map_or((0, 0), |f| (f.amount, f.arrival_days));
            cands.push((line.options[o as usize].goods + amount, soonest, o));
        }
        cands.sort_unstable();
        // Rated so far and not beaten.
        let mut kept: SmallVec<[RatedPrivate; 8]> = SmallVec::new();
        for (lower, soonest, o) in cands {
            let opt = &line.options[o as usize];
            let missing = opt.missing;
            // Beaten by its floor alone: a kept option that arrives by the
            // soonest this one could and costs no more by then than its
            // floor (prices only fall with later days).
            let cache = &*self.cache;
            let floor_beaten = kept.iter().any(|b| {
                b.1 == missing
                    && b.3 <= soonest
                    && cache
                        .cheapest_by(b.4, soonest)
                        .is_some_and(|pb| (b.2 + pb, b.3, b.0) < (lower, soonest, o))
            });
            if floor_beaten {
                continue;
            }
            let p = opt.parts[0];
            let items = smallvec::smallvec![(line.product, p.units)];
            let Some(r) = self.cache.rate(problem, self.rater, p.sup, items) else {
                self.cache.learn(problem, self.rater, p.sup, &[l]);
                continue;
            };
            let a = (o, missing, opt.goods, r.fastest_days, r.stair);
            let cache = &*self.cache;
            if kept.iter().any(|b| beats(cache, b, &a)) {
                continue;
            }
            kept.retain(|b| !beats(cache, &a, b));
            kept.push(a);
        }
        // In place: `usable` is in option order, and so is what it keeps.
        usable.retain(|&o| !private(o) || kept.iter().any(|k| k.0 == o));
        usable
    }

    /// The floor of option `o` of line `l`, one supplier's part, shipped alone.
    fn alone_floor(&mut self, l: usize, o: u32) -> Option<UnitFloor> {
        let problem = self.problem;
        let p = problem.lines[l].options[o as usize].parts[0];
        let mut profile = ShipmentProfile::default();
        if let Some(u) = self.cache.unit_profile(problem, self.rater, l, p.sup) {
            profile.add(&u, p.units);
        }
        self.cache.floor(problem, self.rater, p.sup, &profile)
    }

    /// Among a line's options from suppliers no other line can use, only the
    /// best per missing count can be in a best plan under CHEAPEST or
    /// FEWEST_SHIPMENTS: each is one shipment of this line alone, priced
    /// exactly. Rated lazily, cheapest floor first.
    fn collapse_private(&mut self, l: usize, mut usable: Vec<u32>) -> Vec<u32> {
        let problem = self.problem;
        let line = &problem.lines[l];
        let private = |o: u32| is_private(problem, l, o);
        // The best private option of each missing count.
        let mut chosen: SmallVec<[u32; 4]> = SmallVec::new();
        let mut groups: SmallVec<[u32; 4]> = usable
            .iter()
            .filter(|&&o| private(o))
            .map(|&o| line.options[o as usize].missing)
            .collect();
        groups.sort_unstable();
        groups.dedup();
        for missing in groups {
            let mut cands: SmallVec<[(Units, u32); 16]> = usable
                .iter()
                .copied()
                .filter(|&o| private(o) && line.options[o as usize].missing == missing)
                .map(|o| {
                    let f = self.alone_floor(l, o);
                    (
                        line.options[o as usize].goods + f.map_or(0, |f| f.amount),
                        o,
                    )
                })
                .collect();
            cands.sort_unstable();
            let mut best: Option<(Units, u32)> = None;
            for (lower, o) in cands {
                if best.is_some_and(|(b, _)| lower >= b) {
                    break;
                }
                let opt = &line.options[o as usize];
                let p = opt.parts[0];
                let rated = self.cache.rate(
                    problem,
                    self.rater,
                    p.sup,
                    smallvec::smallvec![(line.product, p.units)],
                );
                match rated {
                    Some(r) => {
                        let exact = opt.goods + r.cheapest;
                        if best.is_none_or(|(b, _)| exact < b) {
                            best = Some((exact, o));
                        }
                    }
                    None => self.cache.learn(problem, self.rater, p.sup, &[l]),
                }
            }
            if let Some((_, o)) = best {
                chosen.push(o);
            }
        }
        // In place: `usable` is in option order, and so is what it keeps.
        usable.retain(|&o| !private(o) || chosen.contains(&o));
        usable
    }

    /// The exact score of a complete `assignment` under this search's
    /// objective; `None` when it is infeasible.
    fn score(&mut self, assignment: &[u32]) -> Option<Score> {
        evaluate::score(
            self.problem,
            self.options,
            self.objective,
            self.rater,
            self.cache,
            assignment,
        )
    }

    /// Makes `assignment` the best plan if it is feasible and better;
    /// says whether it did.
    fn offer(&mut self, assignment: Vec<u32>) -> bool {
        if let Some(score) = self.score(&assignment) {
            if self.best.as_ref().is_none_or(|(b, _)| score < *b) {
                self.best = Some((score, assignment));
                return true;
            }
        }
        false
    }

    /// Notes the suppliers the last ascent's duals pay for (`paid`), where
    /// `dual_start` looks; none under FASTEST, whose plans the cost duals
    /// do not rank.
    fn note_paid(&mut self) {
        self.paid.clear();
        if self.objective == Objective::Fastest {
            return;
        }
        self.paid.resize(self.problem.suppliers.len(), false);
        for f in self.scratch.paid() {
            self.paid[f as usize / 2] = true;
        }
    }

    /// A second start for local search, besides the best plan: each line from
    /// whichever supplier the root's duals pay for (`paid`) ships it wholly for
    /// the least goods and linear freight, as the dual ascent's own primal
    /// would open them. Every line keeps its count of units left out, and one
    /// that none of them ships keeps the best plan's option. The first dive
    /// follows the bound line by line, and local search from its plan moves a
    /// few lines at a time: neither swaps one set of open suppliers for
    /// another. `None` when there is no best plan, the start is that plan, or a
    /// bound from floors says it cannot beat it (`may_improve`), which spares
    /// its ratings.
    fn dual_start(&mut self) -> Option<Vec<u32>> {
        if self.paid.is_empty() {
            return None;
        }
        let current = self.best.as_ref()?.1.clone();
        let problem = self.problem;
        let mut start = current.clone();
        for (l, usable) in self.prep.usable.iter().enumerate() {
            let was = &problem.lines[l].options[current[l] as usize];
            let pick = usable
                .iter()
                .filter_map(|&c| {
                    let o = &problem.lines[l].options[c as usize];
                    let [p] = o.parts.as_slice() else {
                        return None;
                    };
                    let fits = self.paid[p.sup as usize]
                        && o.missing == was.missing
                        && !self.cache.option_banned(problem, l, c as usize);
                    let linear = self.prep.part_units[l][c as usize][0]?;
                    fits.then_some((o.goods.saturating_add(linear), p.sup, c))
                })
                .min();
            if let Some((_, _, c)) = pick {
                start[l] = c;
            }
        }
        if start == current {
            return None;
        }
        let base = self.base(&current);
        let may = self.may_improve(&base, &current, &start);
        #[cfg(test)]
        if !may {
            self.check_screened(&start);
        }
        may.then_some(start)
    }

    /// Tries to improve the best plan by local moves, in this order: close a
    /// shipment (each of its lines to the open shipment that takes it for the
    /// least goods and linear freight), consolidate (every line one supplier
    /// can take, to it), one line to another of its options, two lines to one
    /// open shipment, and every line of one shipment to another supplier that
    /// can take them all. Under CHEAPEST and FEWEST_SHIPMENTS a move is scored
    /// exactly only when a lower bound says it may pay (`may_improve`). Takes
    /// the first better plan and starts over, until no move improves or
    /// `LOCAL_SEARCH_EVALS_MAX` plans were scored. It only ever offers complete
    /// plans, so the search stays exact; a better incumbent just cuts more of
    /// the tree. Deterministic: moves are tried in supplier, line and option
    /// order.
    fn local_search(&mut self) {
        let Some((_, mut current)) = self.best.clone() else {
            return;
        };
        let problem = self.problem;
        let mut tried = Tried::default();
        // Per supplier: the (line, option) pairs it can ship wholly.
        let mut whole: Vec<SmallVec<[(u32, u32); 4]>> =
            vec![SmallVec::new(); problem.suppliers.len()];
        for (l, usable) in self.prep.usable.iter().enumerate() {
            for &c in usable {
                if let [p] = problem.lines[l].options[c as usize].parts.as_slice() {
                    whole[p.sup as usize].push((l as u32, c));
                }
            }
        }
        'improving: loop {
            let base = self.base(&current);
            let mut at = Cursor::default();
            while let Some(next) = self.next_move(&current, &base, &whole, &mut at) {
                match self.try_move(&base, &current, &next, &mut tried) {
                    Step::Better => {
                        current = next;
                        continue 'improving;
                    }
                    Step::Stop => break 'improving,
                    Step::No => {}
                }
            }
            break;
        }
    }

    /// The next move local search tries from `current` (shipments `base`;
    /// `whole`: per supplier, the (line, option) pairs it can ship wholly),
    /// `at` marking where it is: whole
    /// shipments first (closing one, then consolidating into one supplier),
    /// then single lines, then a whole shipment to another supplier. `None`
    /// once every move was offered.
    fn next_move(
        &self,
        current: &[u32],
        base: &Base,
        whole: &[SmallVec<[(u32, u32); 4]>],
        at: &mut Cursor,
    ) -> Option<Vec<u32>> {
        let problem = self.problem;
        loop {
            let next = match at.phase {
                Phase::Close => {
                    let Some((from, parts, _)) = base.get(at.i) else {
                        at.advance(Phase::Consolidate);
                        continue;
                    };
                    at.i += 1;
                    self.dropped(current, *from, parts, base)
                }
                Phase::Consolidate => {
                    let (to, Some(can)) = (at.i as u32, whole.get(at.i)) else {
                        at.advance(Phase::Line);
                        continue;
                    };
                    at.i += 1;
                    self.absorbed(current, to, can)
                }
                Phase::Line => {
                    let Some(usable) = self.prep.usable.get(at.i) else {
                        at.advance(Phase::Pair);
                        continue;
                    };
                    let (l, Some(&o)) = (at.i, usable.get(at.j)) else {
                        (at.i, at.j) = (at.i + 1, 0);
                        continue;
                    };
                    at.j += 1;
                    (o != current[l] && !self.cache.option_banned(problem, l, o as usize)).then(
                        || {
                            let mut next = current.to_vec();
                            next[l] = o;
                            next
                        },
                    )
                }
                Phase::Pair => {
                    let Some(can) = whole.get(at.i) else {
                        at.advance(Phase::Shipment);
                        continue;
                    };
                    // Only into open shipments: opening a new one for two
                    // lines rarely pays, and there are many more pairs.
                    let open = base.iter().any(|(k, _, _)| *k as usize == at.i);
                    at.k = at.k.max(at.j + 1);
                    match (open, can.get(at.j), can.get(at.k)) {
                        (true, Some(&a), Some(&b)) => {
                            at.k += 1;
                            self.paired(current, at.i as u32, a, b)
                        }
                        (true, Some(_), None) => {
                            (at.j, at.k) = (at.j + 1, 0);
                            continue;
                        }
                        _ => {
                            (at.i, at.j, at.k) = (at.i + 1, 0, 0);
                            continue;
                        }
                    }
                }
                Phase::Shipment => {
                    let (from, parts, _) = base.get(at.i)?;
                    let Some(can) = whole.get(at.j) else {
                        (at.i, at.j) = (at.i + 1, 0);
                        continue;
                    };
                    let to = at.j as u32;
                    at.j += 1;
                    if to == *from {
                        continue;
                    }
                    self.moved(current, parts, to, can)
                }
            };
            if next.is_some() {
                return next;
            }
        }
    }

    /// In tests, that a move `may_improve` turned away would not have
    /// beaten the best plan: the screen may only spare ratings, never lose
    /// a better plan. The brute-force comparisons run local search early
    /// (`LOCAL_SEARCH_AT_NODES`), so they check it on every move.
    #[cfg(test)]
    fn check_screened(&mut self, next: &[u32]) {
        let score = self.score(next);
        let best = self.best.as_ref().map(|(b, _)| *b);
        assert!(
            score.is_none() || score >= best,
            "the screen turned away {next:?}, scored {score:?} against the best {best:?}"
        );
    }

    /// The shipments of `current`, the best plan, with their freight as its
    /// score counted it (`None` where that is not known, which makes every
    /// move touching the shipment worth scoring).
    fn base(&self, current: &[u32]) -> Base {
        evaluate::group(self.problem, current)
            .into_iter()
            .map(|(k, parts)| {
                let freight = self
                    .cache
                    .known(k, evaluate::items(self.problem, &parts))
                    .flatten()
                    .map(|r| r.cheapest);
                (k, parts, freight)
            })
            .collect()
    }

    /// One move of local search: screened by `may_improve`, then scored
    /// exactly, within `LOCAL_SEARCH_EVALS_MAX` scored plans and the
    /// deadline. Screening rates nothing but builds floors, so the clock is
    /// read every few screened moves as well.
    fn try_move(&mut self, base: &Base, current: &[u32], next: &[u32], tried: &mut Tried) -> Step {
        tried.screened += 1;
        if tried.screened.is_multiple_of(8) && Instant::now() >= self.deadline {
            self.stopped = true;
        }
        if self.stopped {
            return Step::Stop;
        }
        if !self.may_improve(base, current, next) {
            #[cfg(test)]
            self.check_screened(next);
            return Step::No;
        }
        if tried.scored >= LOCAL_SEARCH_EVALS_MAX || self.past_deadline(tried.scored) {
            return Step::Stop;
        }
        tried.scored += 1;
        // A move may change several shipments: they are rated one at a
        // time with a look at the clock after each new rating, so that past
        // the deadline at most one more rating starts. Scoring the plan then
        // finds them all rated.
        let problem = self.problem;
        for (k, parts) in evaluate::group(problem, next) {
            if self
                .cache
                .rate(problem, self.rater, k, evaluate::items(problem, &parts))
                .is_none()
            {
                // It cannot ship: scoring says so and learns why.
                break;
            }
            if self.clock_due() && Instant::now() >= self.deadline {
                self.stopped = true;
                return Step::Stop;
            }
        }
        if self.offer(next.to_vec()) {
            Step::Better
        } else {
            Step::No
        }
    }

    /// Whether `next`, a move from `current` (the best plan, with shipments
    /// `base`), may beat the best plan, so that local search should score
    /// it. Under CHEAPEST and FEWEST_SHIPMENTS a lower bound settles most
    /// moves without a rating: the best plan's total, changed by the goods
    /// of the lines that move and, for each shipment they change, by its
    /// exact freight where it was rated, else the floor of its profile;
    /// under FEWEST_SHIPMENTS with the plan's shipments first. Ratings are
    /// what local search spends its time on, and most moves do not pay.
    /// Under FASTEST, whose prices depend on the plan's latest arrival,
    /// every move may.
    fn may_improve(&mut self, base: &Base, current: &[u32], next: &[u32]) -> bool {
        let Some((best, _)) = self.best.as_ref() else {
            return true;
        };
        if self.objective == Objective::Fastest {
            return true;
        }
        let best = *best;
        let problem = self.problem;
        let option = |l: usize, o: u32| &problem.lines[l].options[o as usize];
        let changed: SmallVec<[usize; 8]> =
            (0..next.len()).filter(|&l| next[l] != current[l]).collect();
        let (mut missing, mut total) = (i64::from(best.missing), best.total);
        let mut sups: SmallVec<[u32; 8]> = SmallVec::new();
        for &l in &changed {
            let (was, now) = (option(l, current[l]), option(l, next[l]));
            missing += i64::from(now.missing) - i64::from(was.missing);
            total += now.goods - was.goods;
            sups.extend(was.parts.iter().chain(&now.parts).map(|p| p.sup));
        }
        if missing != i64::from(best.missing) {
            return missing < i64::from(best.missing);
        }
        sups.sort_unstable();
        sups.dedup();
        let mut shipments = best.shipments;
        for k in sups {
            let mut parts = evaluate::Parts::new();
            if let Some((_, kept, freight)) = base.iter().find(|(b, _, _)| *b == k) {
                let Some(freight) = freight else {
                    return true;
                };
                total -= freight;
                shipments -= 1;
                parts.extend(kept.iter().filter(|(l, _)| !changed.contains(l)).copied());
            }
            for &l in &changed {
                let now = option(l, next[l]);
                parts.extend(now.parts.iter().filter(|p| p.sup == k).map(|p| (l, *p)));
            }
            if parts.is_empty() {
                continue;
            }
            shipments += 1;
            match self.cache.known(k, evaluate::items(problem, &parts)) {
                Some(Some(rated)) => total += rated.cheapest,
                // A shipment that cannot ship: the plan is infeasible.
                Some(None) => return false,
                None => {
                    let mut profile = ShipmentProfile::default();
                    for &(l, p) in &parts {
                        if let Some(u) = self.cache.known_unit_profile(l, k) {
                            profile.add(u, p.units);
                        }
                    }
                    if let Some(f) = self.cache.floor(problem, self.rater, k, &profile) {
                        total += f.amount;
                    }
                }
            }
        }
        // FEWEST_SHIPMENTS puts the count first; it is exact here.
        let primary = match self.objective {
            Objective::FewestShipments => shipments,
            _ => 0,
        };
        (primary, total, shipments) < (best.primary, best.total, best.shipments)
    }

    /// `current` with the shipment from `from` (`parts`) closed: each of its
    /// lines moved to whichever other shipment of `base` ships it wholly
    /// for the least goods plus linear freight floor (lower supplier on
    /// ties), units left out unchanged. Single-line moves cannot close a
    /// shipment whose lines only pay off together; `None` when some line
    /// has nowhere else to go (or `from` ships part of a split line).
    fn dropped(
        &self,
        current: &[u32],
        from: u32,
        parts: &[(usize, Part)],
        base: &Base,
    ) -> Option<Vec<u32>> {
        let problem = self.problem;
        let mut next = current.to_vec();
        for &(l, _) in parts {
            let line = &problem.lines[l];
            let opt = &line.options[current[l] as usize];
            if opt.parts.len() != 1 {
                return None;
            }
            next[l] = self.prep.usable[l]
                .iter()
                .copied()
                .filter_map(|c| {
                    let alt = &line.options[c as usize];
                    let to = alt.parts.first()?.sup;
                    let fits = alt.missing == opt.missing
                        && alt.parts.len() == 1
                        && to != from
                        && base.iter().any(|(k, _, _)| *k == to)
                        && !self.cache.banned(l, to);
                    let linear = self.prep.part_units[l][c as usize][0]?;
                    fits.then_some((alt.goods.saturating_add(linear), to, c))
                })
                .min()?
                .2;
        }
        Some(next)
    }

    /// `current` with every line that `to` can ship wholly (`can`: its
    /// (line, option) pairs), leaving out no more, shipped by `to`:
    /// consolidation that single-line moves cannot reach when each line
    /// alone would cost more there. `None` when that moves fewer than two
    /// lines (a single-line move covers it).
    fn absorbed(&self, current: &[u32], to: u32, can: &[(u32, u32)]) -> Option<Vec<u32>> {
        if can.len() < 2 {
            return None;
        }
        let mut found: SmallVec<[(usize, u32); 8]> = SmallVec::new();
        for &(l, c) in can {
            let l = l as usize;
            if found.iter().all(|&(f, _)| f != l) && self.may_join(current, l, c, to) {
                found.push((l, c));
            }
        }
        if found.len() < 2 {
            return None;
        }
        let mut next = current.to_vec();
        for (l, c) in found {
            next[l] = c;
        }
        Some(next)
    }

    /// Whether line `l` of `current` may move to `to` with option `c` (one
    /// that `to` ships wholly): it does not ship from `to` already, `to` may
    /// ship it, and `c` leaves out as many units as its option in `current`.
    fn may_join(&self, current: &[u32], l: usize, c: u32, to: u32) -> bool {
        let line = &self.problem.lines[l];
        let opt = &line.options[current[l] as usize];
        opt.parts.iter().all(|p| p.sup != to)
            && !self.cache.banned(l, to)
            && line.options[c as usize].missing == opt.missing
    }

    /// `current` with lines `a` and `b` ((line, option) pairs that `to`
    /// ships wholly) both shipped by `to`, units left out unchanged: two
    /// lines that pay off only together, as when either alone takes `to`
    /// into a dearer weight break that both fill. `None` when they are one
    /// line, either already ships from `to`, or either would leave out a
    /// different number of units.
    fn paired(&self, current: &[u32], to: u32, a: (u32, u32), b: (u32, u32)) -> Option<Vec<u32>> {
        let joins = |(l, c): (u32, u32)| self.may_join(current, l as usize, c, to);
        if a.0 == b.0 || !joins(a) || !joins(b) {
            return None;
        }
        let mut next = current.to_vec();
        next[a.0 as usize] = a.1;
        next[b.0 as usize] = b.1;
        Some(next)
    }

    /// `current` with every line of `from`'s shipment (`parts`) shipped
    /// wholly by `to` instead (`can`: the (line, option) pairs `to` can
    /// ship wholly), units left out unchanged; `None` when some line cannot
    /// (or `from` ships part of a split line). Looks before it copies: most
    /// suppliers cannot take a whole shipment.
    fn moved(
        &self,
        current: &[u32],
        parts: &[(usize, Part)],
        to: u32,
        can: &[(u32, u32)],
    ) -> Option<Vec<u32>> {
        if can.len() < parts.len() {
            return None;
        }
        let problem = self.problem;
        let mut found: SmallVec<[(usize, u32); 8]> = SmallVec::new();
        for &(l, _) in parts {
            let line = &problem.lines[l];
            let opt = &line.options[current[l] as usize];
            if opt.parts.len() != 1 || self.cache.banned(l, to) {
                return None;
            }
            let &(_, c) = can.iter().find(|&&(cl, c)| {
                cl as usize == l && line.options[c as usize].missing == opt.missing
            })?;
            found.push((l, c));
        }
        let mut next = current.to_vec();
        for (l, c) in found {
            next[l] = c;
        }
        Some(next)
    }

    /// Whether the planning budget ran out while local search scores plans
    /// (each rates whole shipments, so a big basket's 512 plans could take
    /// longer than its budget); the clock is read every 8 plans and after
    /// any plan that rated. A best plan is held by then, so stopping returns
    /// it.
    fn past_deadline(&mut self, evals: usize) -> bool {
        let due = self.clock_due();
        if (due || evals.is_multiple_of(8)) && Instant::now() >= self.deadline {
            self.stopped = true;
        }
        self.stopped
    }

    /// Whether the clock is due for a look beyond the regular count: after
    /// any exact rating since the last look, or once the suppliers' subsets
    /// bound has looked up `LAGRANGE_EVALS_PER_LOOK` floors. A rating costs
    /// a thousand times a look, and nodes that rate (big baskets have many)
    /// would otherwise carry the search well past its deadline between two
    /// looks.
    fn clock_due(&mut self) -> bool {
        let ratings = self.cache.stats.ratings;
        let spent = self.lagrange.as_ref().map_or(0, Lagrange::spent);
        let due = ratings != self.ratings_at_clock
            || spent >= self.lagrange_spent_at_clock + LAGRANGE_EVALS_PER_LOOK;
        self.ratings_at_clock = ratings;
        if due {
            self.lagrange_spent_at_clock = spent;
        }
        due
    }

    /// Whether a plan is held and the deadline has passed (read now); if
    /// so, the search stops.
    fn past_deadline_with_plan(&mut self) -> bool {
        if self.best.is_some() && Instant::now() >= self.deadline {
            self.stopped = true;
        }
        self.stopped
    }

    fn out_of_time(&mut self) -> bool {
        if self.stopped {
            return true;
        }
        self.nodes += 1;
        self.cache.stats.nodes += 1;
        let due = self.clock_due();
        if due || self.nodes.is_multiple_of(self.clock_every) {
            let late = match self.best {
                Some(_) => Instant::now() >= self.deadline,
                None => self.nodes >= NODES_WITHOUT_PLAN_MAX,
            };
            self.stopped = late;
        }
        self.stopped
    }

    fn dfs(&mut self, depth: usize) {
        if self.out_of_time() {
            return;
        }
        if self.reached_before(depth) {
            self.cache.stats.states_cut += 1;
            return;
        }
        if !self.local_searched
            && self.nodes >= local_search_at(self.problem.lines.len())
            && self.best.is_some()
        {
            self.local_searched = true;
            if let Some(start) = self.dual_start() {
                self.offer(start);
            }
            self.local_search();
            if self.stopped {
                return;
            }
        }
        if self.lagrange.is_none()
            && self.objective == Objective::Cheapest
            && self.problem.lines.len() < LAGRANGE_LINES_MAX
            && self.nodes >= self.lagrange_at
        {
            // Its ascent and steps stop at the deadline: the search stops
            // there too, not a few nodes later.
            self.start_lagrange();
            if self.past_deadline_with_plan() {
                return;
            }
        }
        if self.nodes >= LAGRANGE_LATE_STEP_AT_NODES
            && self.best.is_some()
            && self.problem.lines.len() >= LAGRANGE_EARLY_LINES
            && self.lagrange.as_ref().is_some_and(|l| !l.took_steps())
        {
            // The steps raise the bound at the root, not at every node: on
            // 20 × 4's slowest basket, bounding by both took 1,317 nodes
            // instead of 1,774. Steps that did not hold left the
            // multipliers as they were.
            self.lagrange_raised = self.lagrange.as_mut().map(Lagrange::bounding_copy);
            self.step_lagrange(LAGRANGE_LATE_STEPS);
            if !self.lagrange.as_ref().is_some_and(Lagrange::stepped) {
                self.lagrange_raised = None;
            }
            if self.past_deadline_with_plan() {
                return;
            }
        }
        if self.nodes >= LAGRANGE_AGAIN_AT_NODES && self.steps_again {
            self.steps_again = false;
            self.step_lagrange(LAGRANGE_LATE_STEPS);
            if self.past_deadline_with_plan() {
                return;
            }
        }
        if !self.raised_path && self.packs() {
            // The shipments opened on the way down were bound without
            // packed floors; from here on they are.
            self.raised_path = true;
            self.raise_open(depth);
        }
        let l = self.prep.order[depth];
        let problem = self.problem;
        self.leave(l);
        // The lines after this one, bounded once at this node; each child
        // repairs that bound for the shipments its option changes.
        self.ascend(depth + 1);
        if depth == 0 && problem.lines.len() >= DUAL_START_LINES {
            // Over every line but the first: near enough the root's.
            self.note_paid();
        }
        // Each option's bound from floors alone; then the promising ones,
        // best bound first (ties: the option's rank, goods then suppliers),
        // each bounded again with exact ratings before going down.
        let mut children: SmallVec<[Child; 8]> = SmallVec::new();
        for i in 0..self.prep.usable[l].len() {
            let o = self.prep.usable[l][i];
            if self.cache.option_banned(problem, l, o as usize) {
                continue;
            }
            let saved = self.apply(l, o);
            let mut bound = self.bound(depth + 1, l, o);
            let packs = self.packs();
            let tightened = packs
                && bound.as_ref().is_some_and(|(b, _, _)| self.promising(b))
                && self.tighten(l, o, depth + 1);
            if tightened {
                bound = self.bound(depth + 1, l, o);
            }
            self.undo(l, o, saved);
            if let Some((b, ratable, lower)) = bound.filter(|(b, _, _)| self.promising(b)) {
                let packing = if packs {
                    Packing::Taken(tightened)
                } else {
                    Packing::Before(self.raises)
                };
                children.push((b, o, ratable, lower, packing));
            }
        }
        children.sort_unstable();
        let leaf = depth + 1 == self.prep.order.len();
        for (b, o, ratable, lower, packing) in children {
            if !self.promising(&b) {
                break;
            }
            let (b, ratable, lower, saved) = match packing {
                // The floors its bound above was found with (memoised),
                // and only those: `lower` counts the lines left by them.
                Packing::Taken(tightened) => {
                    let saved = self.apply(l, o);
                    if tightened {
                        self.tighten(l, o, depth + 1);
                    }
                    (b, ratable, lower, saved)
                }
                // Bound before the search took packed floors, and it has
                // since: the first children of the first nodes, with the
                // largest subtrees. Its shipments are raised (those of
                // the nodes above may have been, below, since its bound),
                // and where any floor differs from its bound's it is
                // bound anew, from a fresh ascent: the one at this node
                // was overwritten by the children gone down.
                Packing::Before(raises) if self.packs() => {
                    self.raise_open(depth);
                    let saved = self.apply(l, o);
                    self.tighten(l, o, depth + 1);
                    if self.raises == raises {
                        (b, ratable, lower, saved)
                    } else {
                        self.undo(l, o, saved);
                        self.ascend(depth + 1);
                        let saved = self.apply(l, o);
                        self.tighten(l, o, depth + 1);
                        match self.bound(depth + 1, l, o) {
                            Some((again, ratable, lower)) if self.promising(&again) => {
                                (b.max(again), ratable, lower, saved)
                            }
                            _ => {
                                self.undo(l, o, saved);
                                continue;
                            }
                        }
                    }
                }
                Packing::Before(_) => (b, ratable, lower, self.apply(l, o)),
            };
            let bound = if ratable {
                self.rate_closed(depth + 1, b, leaf, lower)
            } else {
                Some(b)
            };
            if let Some(exact) = bound.filter(|b| self.promising(b)) {
                if !leaf {
                    #[cfg(test)]
                    self.path.push((b, exact));
                    self.dfs(depth + 1);
                    #[cfg(test)]
                    self.path.pop();
                } else {
                    #[cfg(test)]
                    if self.exhaustive {
                        for &(floors, rated) in self.path.iter().chain([&(b, exact)]) {
                            assert!(
                                floors <= exact && rated <= exact,
                                "bounds {floors:?} / {rated:?} above the leaf {exact:?} ({:?})",
                                self.node.choice
                            );
                        }
                        if self.best.as_ref().is_some_and(|(best, _)| *best <= exact) {
                            self.undo(l, o, saved);
                            continue;
                        }
                    }
                    // Every shipment is closed and rated: the bound is the
                    // score (for FASTEST, with each shipment's cheapest
                    // service by the latest arrival; see `score_bound`).
                    self.best = Some((exact, self.node.choice.clone()));
                }
            }
            self.undo(l, o, saved);
            if self.late_after_rating() {
                break;
            }
        }
        self.enter(l);
    }

    /// Whether the search must stop: already stopped, or a plan is held, a
    /// rating was made since the clock was last read and the deadline has
    /// passed (children that are leaves rate without entering a node).
    fn late_after_rating(&mut self) -> bool {
        if !self.stopped && self.best.is_some() && self.clock_due() {
            self.stopped = Instant::now() >= self.deadline;
        }
        self.stopped
    }

    /// Whether a node with `depth` lines placed is a state the search has
    /// already been through at no greater cost, so that its subtree can be
    /// left out; otherwise the state is noted for later nodes.
    ///
    /// What a completion adds depends only on the shipments later lines can
    /// still join (what they hold so far decides their rating) and on the
    /// lines left. A closed shipment's exact rating, the goods placed, the
    /// units missing and the shipments closed only add to every completion's
    /// score. So where two nodes at one depth place the same options on the
    /// lines that ship with a supplier still open to later lines, every
    /// completion of the later node scores at least as much, in each part,
    /// as the same completion of the earlier one when it reached no less.
    /// That completion was searched there, or cut by a bound at or above a
    /// plan held, and the plans held only get better: the later node holds
    /// nothing the best plan does not match, and a tie keeps the plan found
    /// first as it always does. Without a line whose shipments are all
    /// closed the state is the node's whole path, which the search meets
    /// once; such nodes are not noted.
    ///
    /// Not under FASTEST, where what a closed shipment pays depends on the
    /// plan's latest arrival; nor where a closed shipment was not rated.
    fn reached_before(&mut self, depth: usize) -> bool {
        #[cfg(test)]
        if self.exhaustive {
            return false;
        }
        if self.objective == Objective::Fastest || depth == 0 {
            return false;
        }
        let problem = self.problem;
        let mut key: SmallVec<[u32; 48]> = SmallVec::new();
        key.push(depth as u32);
        let mut closed_lines = false;
        for &l in &self.prep.order[..depth] {
            let o = self.node.choice[l];
            let parts = &problem.lines[l].options[o as usize].parts;
            if parts
                .iter()
                .any(|p| self.node.remaining[p.sup as usize] > 0)
            {
                key.push(l as u32);
                key.push(o);
            } else {
                closed_lines = true;
            }
        }
        if !closed_lines {
            return false;
        }
        let mut reached = Reached {
            missing: self.missing,
            closed: 0,
            total: self.goods,
        };
        for &k in &self.node.open_list {
            let ku = k as usize;
            if self.node.remaining[ku] == 0 {
                let Some((amount, _, _)) = self.node.exact[ku] else {
                    return false;
                };
                reached.total += amount;
                reached.closed += 1;
            }
        }
        let room = self.node.states.len() < STATES_MAX;
        match self.node.states.get_mut(&key[..]) {
            Some(before) if reached.at_least(before) => return true,
            Some(before) => *before = reached,
            None if room => {
                self.node
                    .states
                    .insert(key.into_vec().into_boxed_slice(), reached);
            }
            None => {}
        }
        false
    }

    /// Whether a node with bound `b` may hold a better plan than the best.
    fn promising(&self, b: &Score) -> bool {
        #[cfg(test)]
        if self.exhaustive {
            return true;
        }
        self.best.as_ref().is_none_or(|(best, _)| b < best)
    }

    /// Line `l` is being placed: it no longer counts as able to join shipments.
    fn leave(&mut self, l: usize) {
        for &k in &self.prep.line_sups[l] {
            self.node.remaining[k as usize] -= 1;
        }
    }

    fn enter(&mut self, l: usize) {
        for &k in &self.prep.line_sups[l] {
            self.node.remaining[k as usize] += 1;
        }
    }

    fn apply(&mut self, l: usize, o: u32) -> Saved {
        let problem = self.problem;
        let opt = &problem.lines[l].options[o as usize];
        self.node.choice[l] = o;
        self.goods += opt.goods;
        self.missing += opt.missing;
        let mut saved = Saved::new();
        for (i, p) in opt.parts.iter().enumerate() {
            let k = p.sup as usize;
            saved.push((
                self.node.profile[k],
                self.node.floor[k],
                self.node.exact[k],
                self.node.sets[k],
            ));
            if self.node.count[k] == 0 {
                self.open += 1;
                self.node.open_list.push(p.sup);
                self.node.open_bits[k / 64] |= 1 << (k % 64);
            }
            self.node.count[k] += 1;
            if let Some(linear) = self.prep.part_units[l][o as usize][i] {
                if let Some(u) = self.cache.known_unit_profile(l, p.sup) {
                    self.node.profile[k].add(u, p.units);
                }
                self.node.placed[k] += linear;
            }
            self.node.exact[k] = None;
            let carried = self.node.floor[k].amount;
            if let Some(f) = self
                .cache
                .floor(problem, self.rater, p.sup, &self.node.profile[k])
            {
                self.node.floor[k] = f;
            }
            self.node.sets[k] = self.node.sets[k].saturating_mul(p.units.saturating_add(1));
            // A floor the shipment held (its packed floor, see `tighten`)
            // bounds every shipment holding its units, so it carries over,
            // also once they grow past what packed floors take.
            if self.node.count[k] > 1 {
                self.node.floor[k].amount = self.node.floor[k].amount.max(carried);
            }
        }
        saved
    }

    /// Raises the floors of the shipments option `o` of line `l` (just
    /// applied, the `depth`th line placed) adds to by their packed floors
    /// (`Rater::packed_floor`), where their units make few enough
    /// sub-multisets (`PACKED_MAX_SETS`); whether any rose. Dearer than a
    /// floor, so only for nodes the floors leave standing. `undo` puts the
    /// floors back with the rest.
    fn tighten(&mut self, l: usize, o: u32, depth: usize) -> bool {
        if !self.packs() {
            return false;
        }
        let problem = self.problem;
        let mut rose = false;
        for p in &problem.lines[l].options[o as usize].parts {
            rose |= self.raise(p.sup, depth);
        }
        rose
    }

    /// Raises every open shipment not yet closed and rated, with the first
    /// `depth` lines placed, to its packed floor, in place: it holds for
    /// as long as the shipment holds what it does now, and `undo` puts back
    /// what the shipment's last growth replaced.
    fn raise_open(&mut self, depth: usize) {
        for i in 0..self.node.open_list.len() {
            let k = self.node.open_list[i];
            if self.node.exact[k as usize].is_none() || self.node.remaining[k as usize] > 0 {
                self.raise(k, depth);
            }
        }
    }

    /// Raises open shipment `k` (with the first `depth` lines placed) to
    /// its packed floor where that is higher; whether it rose.
    fn raise(&mut self, k: u32, depth: usize) -> bool {
        let ku = k as usize;
        // One unit: its floor already prices it alone.
        if !(3..=PACKED_MAX_SETS).contains(&(self.node.sets[ku] as usize)) {
            return false;
        }
        let (items, _) = self.items_of(k, depth);
        // Of use only above the floor held.
        let reach = self.node.floor[ku].amount.saturating_add(1);
        match self.cache.packed(self.problem, self.rater, k, items, reach) {
            Some(packed) if packed > self.node.floor[ku].amount => {
                self.node.floor[ku].amount = packed;
                self.raises += 1;
                true
            }
            _ => false,
        }
    }

    /// Whether the search takes packed floors (`tighten`) by now: a
    /// CHEAPEST search past `PACKED_AT_NODES` (half of it on baskets of
    /// `LAGRANGE_EARLY_LINES` or more). Under the other objectives the
    /// total only breaks ties.
    fn packs(&self) -> bool {
        let from = if self.problem.lines.len() >= LAGRANGE_EARLY_LINES {
            PACKED_AT_NODES / 2
        } else {
            PACKED_AT_NODES
        };
        self.objective == Objective::Cheapest && self.nodes >= from
    }

    fn undo(&mut self, l: usize, o: u32, saved: Saved) {
        let problem = self.problem;
        let opt = &problem.lines[l].options[o as usize];
        self.goods -= opt.goods;
        self.missing -= opt.missing;
        for (i, (p, (profile, floor, exact, sets))) in opt.parts.iter().zip(saved).enumerate().rev()
        {
            let k = p.sup as usize;
            self.node.count[k] -= 1;
            if self.node.count[k] == 0 {
                self.open -= 1;
                self.node.open_list.pop();
                self.node.open_bits[k / 64] &= !(1 << (k % 64));
            }
            if let Some(linear) = self.prep.part_units[l][o as usize][i] {
                self.node.placed[k] -= linear;
            }
            self.node.profile[k] = profile;
            self.node.floor[k] = floor;
            self.node.exact[k] = exact;
            self.node.sets[k] = sets;
        }
    }

    /// The items of open shipment `k` at this node, canonical.
    fn items_of(&self, k: u32, depth: usize) -> (Items, Vec<usize>) {
        let problem = self.problem;
        let mut parts = evaluate::Parts::new();
        for &l in &self.prep.order[..depth] {
            let opt = &problem.lines[l].options[self.node.choice[l] as usize];
            for p in &opt.parts {
                if p.sup == k {
                    parts.push((l, *p));
                }
            }
        }
        let lines = parts.iter().map(|(l, _)| *l).collect();
        (evaluate::items(problem, &parts), lines)
    }

    /// Lower bound of every completion of the node whose first `depth` lines
    /// are placed, the last of them line `l` with option `o`, from floors
    /// and the ratings already known; `None` when it cannot be completed
    /// feasibly. With it, whether rating the shipments no remaining line can
    /// join may tighten it (`rate_closed`), and its bound on the lines left
    /// (`repaired_lower`), which ratings do not change.
    fn bound(&mut self, depth: usize, l: usize, o: u32) -> Option<(Score, bool, Units)> {
        let max = self.options.max_shipments;
        if max > 0 && self.open + self.cover(depth, true) > max {
            return None;
        }
        let cover = self.cover(depth, false);
        let shipments = self.open + cover;
        let missing = self.missing.saturating_add(self.prep.missing_after[depth]);
        if missing == u32::MAX {
            return None;
        }
        if max > 0 && shipments > max {
            // Every line at its fewest missing units needs too many
            // shipments: something more is left out, and the bounds below,
            // which assume the fewest, say nothing.
            return Some((
                Score {
                    missing: missing + 1,
                    primary: 0,
                    total: Units::MIN,
                    shipments: 0,
                },
                false,
                0,
            ));
        }
        let lower = self.repaired_lower(l, o);
        Some((
            self.score_bound(depth, missing, shipments, lower),
            true,
            lower,
        ))
    }

    /// The node's bound `floors` (from `bound`, at this node) tightened by
    /// the exact freight of shipments no remaining line can join, rated
    /// once; `None` when one of them cannot ship. Recomputed only when a
    /// rating is new, or at a `leaf`, where the bound must be the plan's
    /// exact score: elsewhere a bound from fewer ratings is still a bound,
    /// and the caller computed it moments ago for this very node.
    fn rate_closed(
        &mut self,
        depth: usize,
        floors: Score,
        leaf: bool,
        lower: Units,
    ) -> Option<Score> {
        let mut rated_any = false;
        for i in 0..self.node.open_list.len() {
            let k = self.node.open_list[i];
            let ku = k as usize;
            if self.node.count[ku] > 0
                && self.node.remaining[ku] == 0
                && self.node.exact[ku].is_none()
            {
                let (items, lines) = self.items_of(k, depth);
                match self.cache.rate(self.problem, self.rater, k, items) {
                    Some(r) => {
                        self.node.exact[ku] = Some((r.cheapest, r.fastest_days, r.stair));
                        rated_any = true;
                    }
                    None => {
                        self.cache.learn(self.problem, self.rater, k, &lines);
                        return None;
                    }
                }
            }
        }
        if rated_any || leaf {
            return Some(self.score_bound(depth, floors.missing, floors.shipments, lower));
        }
        Some(floors)
    }

    /// The node's bound with `lower` for the facility-location part of the
    /// lines left (`repaired_lower`).
    fn score_bound(&mut self, depth: usize, missing: u32, shipments: u32, lower: Units) -> Score {
        let mut freight: Units = 0;
        let mut latest = 0u32;
        // FASTEST buys every shipment the cheapest service arriving by the
        // latest one. A completion that beats the best plan without leaving
        // out more arrives no later than it, so each closed shipment pays at
        // least its cheapest service by the best plan's arrival; once every
        // shipment is closed and rated the node's own latest arrival is
        // exact, and so is the price by it.
        let fastest = self.objective == Objective::Fastest;
        let complete = fastest
            && depth == self.prep.order.len()
            && self
                .node
                .open_list
                .iter()
                .all(|&k| self.node.exact[k as usize].is_some());
        let best_by = self
            .best
            .as_ref()
            .filter(|(b, _)| fastest && b.missing == missing)
            .map(|(b, _)| b.primary);
        let mut closed: SmallVec<[(Units, u32); 8]> = SmallVec::new();
        for i in 0..self.node.open_list.len() {
            let k = self.node.open_list[i] as usize;
            match self.node.exact[k].filter(|_| self.node.remaining[k] == 0) {
                Some((amount, days, stair)) => {
                    if fastest {
                        closed.push((amount, stair));
                    } else {
                        freight += amount;
                    }
                    latest = latest.max(days);
                }
                None => {
                    let mut open = self.open_freight(k);
                    // A better completion ships this on a service arriving
                    // by the best plan's day (above), so under FASTEST the
                    // floor over those services bounds it; but only where no
                    // remaining line's linear freight is counted on top (`adds`).
                    if let Some(by) =
                        best_by.filter(|_| self.node.remaining[k] == 0 || !self.node.adds[k])
                    {
                        let profile = self.node.profile[k];
                        if let Some(f) =
                            self.cache
                                .floor_by(self.problem, self.rater, k as u32, &profile, by)
                        {
                            open = open.max(f);
                        }
                    }
                    freight += open;
                    latest = latest.max(self.node.floor[k].arrival_days);
                }
            }
        }
        let mut fixed: Units = 0;
        for &l in &self.prep.order[depth..] {
            if let LineBound::Fixed(goods) = &self.prep.line_bounds[l] {
                fixed += goods;
            }
            if fastest {
                latest = latest.max(self.line_earliest(l));
            }
        }
        if fastest {
            let by = if complete { Some(latest) } else { best_by };
            for (amount, stair) in closed {
                // Nothing by then: the shipment arrives later than the best
                // plan, and the node is cut on arrival anyway.
                freight += by
                    .and_then(|d| self.cache.cheapest_by(stair, d))
                    .unwrap_or(amount);
            }
        }
        let mut score = Score {
            missing,
            primary: match self.objective {
                Objective::Cheapest => 0,
                Objective::Fastest => latest,
                Objective::FewestShipments => shipments,
            },
            total: self.goods + freight + fixed + lower,
            shipments,
        };
        // A node these bounds already cut stays cut, whatever the
        // suppliers' subsets would add: their searches are the dearer part.
        if !self.promising(&score) {
            return score;
        }
        if let Some(mut lagrange) = self.lagrange.take() {
            score.total = score.total.max(self.lagrange_bound(&mut lagrange, depth));
            self.lagrange = Some(lagrange);
        }
        // Multipliers from before late steps bound some nodes higher; they
        // are priced only where the stepped ones do not cut.
        if self.promising(&score) {
            if let Some(mut lagrange) = self.lagrange_raised.take() {
                score.total = score.total.max(self.lagrange_bound(&mut lagrange, depth));
                self.lagrange_raised = Some(lagrange);
            }
        }
        score
    }

    /// Nodes after which the suppliers' subsets bound starts: from the first
    /// node for a basket of `LAGRANGE_EARLY_LINES` or more whose lines have
    /// few suppliers each, else after `LAGRANGE_AT_NODES`. Where lines have
    /// many suppliers the bound costs more per node (its subset searches
    /// grow with the lines a supplier may ship), and under a deadline of a
    /// millisecond that time goes better to finding plans. Decided by the
    /// basket alone, not the clock, so that the order of the search, and
    /// with it which of equal plans wins, stays the same for the same input.
    fn lagrange_from(&self) -> u64 {
        let lines = self.problem.lines.len();
        let suppliers: usize = self.prep.bound_sups.iter().map(Vec::len).sum();
        if lines < LAGRANGE_EARLY_LINES {
            LAGRANGE_AT_NODES
        } else if suppliers <= LAGRANGE_EARLY_SUPPLIERS_PER_LINE * lines {
            0
        } else {
            LAGRANGE_LARGE_AT_NODES
        }
    }

    /// Builds the suppliers' subsets bound (`lagrange`) for the lines this
    /// search places: each line's options from one supplier with its fewest
    /// missing units, multipliers raised once. Where the deadline passes
    /// with a plan held before the multipliers are raised, the search stops
    /// instead (setting the bound up costs tens of microseconds on 20-line
    /// baskets, which a search under a deadline of a millisecond does not
    /// have to spare once its time is up).
    fn start_lagrange(&mut self) {
        if self.past_deadline_with_plan() {
            return;
        }
        let problem = self.problem;
        let mut members: Vec<Vec<Member>> = vec![Vec::new(); problem.suppliers.len()];
        let mut fixed: Vec<Option<Units>> = vec![Some(0); problem.lines.len()];
        for &l in &self.prep.order {
            match &self.prep.line_bounds[l] {
                LineBound::Fixed(goods) => fixed[l] = Some(*goods),
                LineBound::Facility(_) => {
                    fixed[l] = None;
                    for &o in &self.prep.usable[l] {
                        let opt = &problem.lines[l].options[o as usize];
                        if opt.missing != self.prep.min_missing[l]
                            || self.cache.option_banned(problem, l, o as usize)
                        {
                            continue;
                        }
                        // A split option is given to each of its suppliers
                        // in turn, with only that part's units: a plan that
                        // splits the line ships at least that much there, and
                        // the goods and floors it counts elsewhere only add.
                        for (i, p) in opt.parts.iter().enumerate() {
                            // The linear floor as the facility-location bound
                            // counts it (`None`: the line cannot ship from there).
                            let Some(lin) = self.prep.part_units[l][o as usize][i] else {
                                continue;
                            };
                            let Some(unit) = self.cache.unit_profile(problem, self.rater, l, p.sup)
                            else {
                                continue;
                            };
                            let ms = &mut members[p.sup as usize];
                            match ms.iter_mut().find(|m| m.line == l) {
                                Some(m) => {
                                    m.goods = m.goods.min(opt.goods);
                                    m.lin = m.lin.min(lin);
                                    m.units = m.units.min(p.units);
                                }
                                None => ms.push(Member {
                                    line: l,
                                    goods: opt.goods,
                                    lin,
                                    unit,
                                    units: p.units,
                                }),
                            }
                        }
                    }
                }
            }
        }
        let openings: Vec<(Units, Units)> = (0..problem.suppliers.len() as u32)
            .map(|k| (self.new_opening(k, true), self.new_opening(k, false)))
            .collect();
        // Every shipment's linear floor opens at least at the lesser of its
        // two openings: the ascent's subset searches count that, with each
        // line's own linear floor (`Lagrange::with_openings`).
        let least_openings: Vec<Units> = (0..problem.suppliers.len())
            .map(|k| self.prep.linear[k].map_or(0, |f| f.opening(self.prep.by_space[k], false)))
            .collect();
        let mut lagrange =
            Lagrange::new(members, fixed, &self.prep.order).with_openings(least_openings);
        // The ascent starts from the root's facility-location duals: most
        // of the way to where it ends, and known to hold without a floor
        // looked up wherever the linear floors are counted (below).
        let mut root = Scratch::default();
        let seeds: SmallVec<[(usize, Units); 32]> = {
            let lines = self.facility_lines(0);
            facility_bound(
                &lines,
                2 * problem.suppliers.len(),
                |f| self.new_opening(f / 2, f % 2 == 0),
                |_| true,
                |l, f| !self.cache.banned(l, f / 2),
                &mut root,
            );
            lines
                .iter()
                .zip(root.duals())
                .map(|(u, &v)| (u.line, v))
                .collect()
        };
        lagrange.seed(seeds, &openings);
        if self.past_deadline_with_plan() {
            return;
        }
        // As for nodes, the deadline counts only once a plan is held.
        let deadline = self.deadline;
        let has_plan = self.best.is_some();
        lagrange.raise(
            LAGRANGE_PASSES,
            &mut self.subsets_floor(),
            LAGRANGE_ASCENT_EVALS,
            || has_plan && Instant::now() >= deadline,
        );
        self.lagrange = Some(lagrange);
        // The ascent stops where no single line can rise, often well below
        // what the relaxation allows (on 20-line baskets of eight suppliers a
        // line, 0.90-0.97 of the plan's total at the root's children, where
        // the relaxation's best is within a percent). Subgradient steps
        // towards the best plan's total go further; without a plan they have
        // nothing to aim at, and the searches that start this bound at their
        // first node do not wait for one (they take the steps later,
        // `LAGRANGE_LATE_STEP_AT_NODES`).
        if problem.lines.len() >= LAGRANGE_EARLY_LINES {
            self.step_lagrange(LAGRANGE_STEPS);
            self.steps_again = self.lagrange.as_ref().is_some_and(Lagrange::took_steps);
        }
    }

    /// A supplier's freight floor for the suppliers' subsets bound: the
    /// larger of its freight floor and its linear floor, the one that lets
    /// the facility-location duals hold from the start.
    fn subsets_floor(&mut self) -> impl FnMut(u32, &ShipmentProfile) -> Option<Units> + '_ {
        let (problem, rater, cache) = (self.problem, self.rater, &mut *self.cache);
        let (linear, by_space) = (&self.prep.linear, &self.prep.by_space);
        move |k: u32, p: &ShipmentProfile| {
            let ku = k as usize;
            let by_line = linear[ku].map_or(0, |f| {
                f.opening(by_space[ku], p.boxed_weight_g > 0) + f.marginal(p, by_space[ku])
            });
            cache
                .floor(problem, rater, k, p)
                .map(|f| f.amount.max(by_line))
        }
    }

    /// Takes up to `steps` subgradient steps of the suppliers' subsets
    /// bound's multipliers towards the best plan's total, if a plan is held
    /// (`Lagrange::subgradient`; they stop at the deadline).
    fn step_lagrange(&mut self, steps: usize) {
        let Some(target) = self.best.as_ref().map(|(best, _)| best.total) else {
            return;
        };
        let Some(mut lagrange) = self.lagrange.take() else {
            return;
        };
        let deadline = self.deadline;
        lagrange.subgradient(
            &mut self.subsets_floor(),
            target,
            steps,
            LAGRANGE_STEP_EVALS,
            || Instant::now() >= deadline,
        );
        self.lagrange = Some(lagrange);
    }

    /// The suppliers' subsets bound on the total of every completion of the
    /// node whose first `depth` lines are placed: goods placed, the lines
    /// left at their multipliers, each closed and rated shipment at its
    /// rating, each other open one at its floor less what the lines that
    /// may still join it can take off (`Lagrange::correction`), and each
    /// supplier shipping nothing at its offset over the lines left
    /// (`Lagrange::closed_offsets`, zero unless the multipliers took
    /// subgradient steps).
    fn lagrange_bound(&mut self, lagrange: &mut Lagrange, depth: usize) -> Units {
        let (problem, rater) = (self.problem, self.rater);
        let mut total = self.goods
            + lagrange.after(depth)
            + lagrange.closed_offsets(depth, &self.node.open_list);
        for &k in &self.node.open_list {
            let ku = k as usize;
            if let Some((amount, _, _)) =
                self.node.exact[ku].filter(|_| self.node.remaining[ku] == 0)
            {
                total += amount;
                continue;
            }
            let amount = self.node.floor[ku].amount;
            total += amount;
            if self.node.remaining[ku] == 0 {
                continue;
            }
            if let Some(c) = lagrange.known(k, depth, &self.node.profile[ku], amount) {
                total += c;
            } else {
                // The shipment's linear floor: each member that joins adds
                // at least its own.
                let linear = self.linear_open(ku);
                let cache = &mut *self.cache;
                let banned: SmallVec<[bool; 16]> = lagrange
                    .members(k)
                    .iter()
                    .map(|m| cache.banned(m.line, k))
                    .collect();
                total += lagrange.correction(
                    k,
                    depth,
                    &self.node.profile[ku],
                    amount,
                    &banned,
                    linear,
                    // What the shipment's units so far force holds for
                    // every subset added to them.
                    &mut |p| {
                        cache
                            .floor(problem, rater, k, p)
                            .map(|f| f.amount.max(amount))
                    },
                    if lagrange.stepped() {
                        LAGRANGE_STEPPED_NODE_EVALS
                    } else {
                        LAGRANGE_NODE_EVALS
                    },
                );
            }
        }
        total
    }

    /// The least freight of open shipment `k` (not closed and rated): the
    /// floor of what it ships now, or its linear floor with the lines still
    /// to join it, whichever is higher. Records which (`adds`): lines in
    /// boxes that join it add their linear freight only when the linear
    /// floor counts. Lines in their own packaging always add theirs, each
    /// unit's own charge, which the floor adds up exactly (see `Rater`).
    fn open_freight(&mut self, k: usize) -> Units {
        let by_floor = self.node.floor[k].amount;
        let by_line = self.linear_open(k).unwrap_or(0);
        self.node.adds[k] = by_line >= by_floor;
        by_floor.max(by_line)
    }

    /// The linear floor of what open shipment `k` ships now: its opening
    /// and the linear floors of its units (`None` where `k` has no linear
    /// floor).
    fn linear_open(&self, k: usize) -> Option<Units> {
        let boxed = self.node.profile[k].boxed_weight_g > 0;
        self.prep.linear[k].map(|f| f.opening(self.prep.by_space[k], boxed) + self.node.placed[k])
    }

    /// Under FASTEST, the day by which every plan that could beat the best
    /// arrives: the best's latest arrival, when no plan leaves out fewer
    /// units (a plan leaving out fewer would beat it whenever it arrived).
    fn beat_by(&self) -> Option<u32> {
        if self.objective != Objective::Fastest {
            return None;
        }
        let (best, _) = self.best.as_ref()?;
        (self.prep.missing_after.first() == Some(&best.missing)).then_some(best.primary)
    }

    /// Whether line `l` may go to facility `f` in the facility-location
    /// bound: not banned there, and, with a day `by` every plan that could
    /// beat the best arrives by (`beat_by`), a supplier that can arrive by
    /// then. Dropping a facility only drops constraints of the bound's
    /// dual, so duals found with it still hold without it.
    fn facility_usable(&self, l: usize, f: u32, by: Option<u32>) -> bool {
        let k = f / 2;
        !self.cache.banned(l, k) && by.is_none_or(|d| self.prep.earliest[k as usize] <= d)
    }

    /// The remaining lines after `depth` that enter the facility-location
    /// bound, in search order.
    fn facility_lines(&self, depth: usize) -> SmallVec<[&UflLine; 16]> {
        self.prep.order[depth..]
            .iter()
            .filter_map(|&l| match &self.prep.line_bounds[l] {
                LineBound::Facility(u) => Some(u),
                LineBound::Fixed(_) => None,
            })
            .collect()
    }

    /// Runs the facility-location bound of the lines from `depth` on at this
    /// node, keeping its duals in the scratch space for the children's
    /// `repaired_lower`.
    fn ascend(&mut self, depth: usize) {
        for i in 0..self.node.open_list.len() {
            let k = self.node.open_list[i] as usize;
            self.open_freight(k);
        }
        let mut scratch = std::mem::take(&mut self.scratch);
        {
            let this = &*self;
            let by = this.beat_by();
            facility_bound(
                &this.facility_lines(depth),
                2 * this.problem.suppliers.len(),
                |f| this.facility_opening(f),
                |f| this.facility_adds(f),
                |l, f| this.facility_usable(l, f, by),
                &mut scratch,
            );
        }
        self.scratch = scratch;
    }

    /// The facility-location bound of the lines left at a child whose last
    /// line `l` took option `o`: the duals its parent found
    /// (`ascend`), lowered where the option's suppliers open shipments or
    /// change how their freight is counted (`adds`, set here for the child).
    /// Every other supplier is as the parent left it, which is what the
    /// repair needs.
    fn repaired_lower(&mut self, l: usize, o: u32) -> Units {
        for i in 0..self.node.open_list.len() {
            let k = self.node.open_list[i] as usize;
            self.open_freight(k);
        }
        let mut changed: SmallVec<[u32; 4]> = SmallVec::new();
        for p in &self.problem.lines[l].options[o as usize].parts {
            changed.push(facility(p.sup, true));
            changed.push(facility(p.sup, false));
        }
        let by = self.beat_by();
        repaired_bound(
            &changed,
            |f| self.facility_opening(f),
            |f| self.facility_adds(f),
            |l, f| self.facility_usable(l, f, by),
            &self.scratch,
        )
    }

    /// Whether a line's linear freight counts when it goes to facility `f`:
    /// always for units in their own packaging (see `open_freight`), else
    /// unless the shipment's freight is counted by its floor.
    fn facility_adds(&self, f: u32) -> bool {
        let k = (f / 2) as usize;
        f % 2 == 1 || self.node.count[k] == 0 || self.node.adds[k]
    }

    /// The opening the facility-location bound charges facility `f` (see
    /// `facility`) at this node: as for a new shipment (`new_opening`)
    /// when its supplier ships nothing yet; when it does and its freight is
    /// counted by the linear floor, what a boxed unit would add to an
    /// opening counted without one; else nothing (the shipment's freight is
    /// counted by its floor, which remaining lines do not raise).
    fn facility_opening(&self, f: u32) -> Units {
        let k = f / 2;
        let boxed = f.is_multiple_of(2);
        let ku = k as usize;
        if self.node.count[ku] == 0 {
            self.new_opening(k, boxed)
        } else if boxed && self.node.adds[ku] && self.node.profile[ku].boxed_weight_g == 0 {
            self.prep.opening_boxed[ku] - self.prep.opening_own[ku]
        } else {
            0
        }
    }

    /// The earliest a remaining line can arrive, whichever option it takes.
    fn line_earliest(&self, l: usize) -> u32 {
        let line = &self.problem.lines[l];
        self.prep.usable[l]
            .iter()
            .map(|&o| &line.options[o as usize])
            .filter(|opt| opt.missing == self.prep.min_missing[l])
            .map(|opt| {
                opt.parts
                    .iter()
                    .map(|p| {
                        let k = p.sup as usize;
                        if self.node.count[k] > 0 {
                            self.node.floor[k].arrival_days.max(self.prep.earliest[k])
                        } else {
                            self.prep.earliest[k]
                        }
                    })
                    .max()
                    .unwrap_or(0)
            })
            .min()
            .unwrap_or(0)
    }

    /// Remaining lines that need new shipments of their own (see
    /// `disjoint_lines`): for `hard`, lines that cannot be left out at all,
    /// with every usable supplier; else lines at their fewest missing units.
    fn cover(&mut self, depth: usize, hard: bool) -> u32 {
        let prep = &self.prep;
        let lines = prep.order[depth..]
            .iter()
            .copied()
            .filter(|&l| !hard || !prep.can_leave_out[l]);
        let sets = if hard {
            &prep.line_sets
        } else {
            &prep.bound_sets
        };
        disjoint_lines(sets, lines, &self.node.open_bits, &mut self.scratch)
    }
}

/// The facility of supplier `k` in the facility-location bound for a line
/// whose unit is (`boxed`) or is not in a box: `2k` and `2k + 1`, so that
/// a supplier that could ship both kinds opens each kind's share of its
/// linear opening only when lines of that kind go to it.
fn facility(k: u32, boxed: bool) -> u32 {
    2 * k + u32::from(!boxed)
}

/// Whether option `o` of line `l` takes its units from one supplier that no
/// other line can use: a shipment of its own in any plan.
fn is_private(problem: &Problem, l: usize, o: u32) -> bool {
    let opt = &problem.lines[l].options[o as usize];
    opt.parts.len() == 1 && problem.sup_lines[opt.parts[0].sup as usize].len() == 1
}

/// Whether private option `b` beats `a` under FASTEST (see
/// `Search::undominated_private`).
fn beats(cache: &Cache, b: &RatedPrivate, a: &RatedPrivate) -> bool {
    // Arriving later: no (the loop below would find no price of `b` by
    // `a`'s earliest day; this is the quick way).
    if b.1 != a.1 || b.3 > a.3 {
        return false;
    }
    let mut strictly = false;
    // Both prices change only at their steps: compare there.
    let days = std::iter::once(a.3)
        .chain(cache.stair_days(a.4))
        .chain(cache.stair_days(b.4))
        .filter(|&d| d >= a.3);
    for d in days {
        let (Some(pa), Some(pb)) = (cache.cheapest_by(a.4, d), cache.cheapest_by(b.4, d)) else {
            return false;
        };
        let (ca, cb) = (a.2 + pa, b.2 + pb);
        if cb > ca {
            return false;
        }
        strictly |= cb < ca;
    }
    strictly || b.3 < a.3 || b.0 < a.0
}

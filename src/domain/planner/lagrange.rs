//! A bound that prices each supplier's lines together.
//!
//! The facility-location bound (`bounds`) charges each line linear freight,
//! and freight does not add up per unit: one long or bulky unit sizes a box
//! that further units fill at no charge, and every parcel past the first
//! pays its own opening. Against the freight floor of a whole shipment the
//! linear floors come to about four fifths, and on 20-line baskets the
//! search's proofs spend their nodes on that gap.
//!
//! Here every line left gets a multiplier `v`. A completion pays, per
//! supplier `k` shipping lines `S`, their goods plus at least the freight
//! floor of `S` (`floor_k(S)`), so its cost is at least the multipliers of
//! the lines left plus, per supplier, the least over subsets `S` of
//! `goods(S) + floor_k(S) - v(S)`: a Lagrangian relaxation of "each line
//! ships once", valid for any `v`. The multipliers start from the
//! facility-location bound's duals ([`Lagrange::seed`]), which hold for
//! every subset once the subset's linear freight floor counts as a floor
//! too; [`Lagrange::raise`] raises them further while no subset of any
//! supplier's lines goes below zero (each raise checks every subset holding
//! the line), so suppliers with no shipment open add nothing at any node
//! (after [`Lagrange::subgradient`], their least excess, at most zero)
//! and only open shipments need a search over the subsets of the lines that
//! may still join them
//! ([`Lagrange::correction`]). The subset searches use the floor of every
//! profile they meet, so a floor that falls as units are added (it may: it
//! is worked out per profile) never lets a bound rise above a price.

use rustc_hash::FxHashMap;
use smallvec::SmallVec;

use super::problem::Units;
use super::ShipmentProfile;

/// One line a supplier may ship within the bound: its option from that
/// supplier alone, with the fewest missing units.
#[derive(Debug, Clone)]
pub(super) struct Member {
    /// Plannable line.
    pub line: usize,
    /// Its goods from this supplier.
    pub goods: Units,
    /// The linear freight floor its units add at this supplier, as the
    /// facility-location bound counts it.
    pub lin: Units,
    /// One unit's profile from this supplier.
    pub unit: ShipmentProfile,
    /// Units the option takes.
    pub units: u32,
}

impl Member {
    /// This line, member `index` of its supplier, as a candidate to join a
    /// subset, under multipliers `mult`.
    fn candidate(&self, index: usize, mult: &[Units]) -> Candidate<'_> {
        Candidate {
            benefit: mult[self.line] - self.goods,
            unit: &self.unit,
            units: self.units,
            lin: self.lin,
            member: u32::try_from(index).unwrap_or(u32::MAX),
        }
    }
}

/// Member `member`'s bit in a mask of [`MemberFloors`]; none past 64.
fn member_bit(member: u32) -> u64 {
    1u64.checked_shl(member).unwrap_or(0)
}

/// A line that may join a subset: what it saves against its multiplier.
#[derive(Debug, Clone, Copy)]
pub(super) struct Candidate<'a> {
    /// Multiplier less goods; only lines where it is positive can lower a
    /// subset's excess (the floor never falls along a search path).
    pub benefit: Units,
    /// One unit's profile from the supplier.
    pub unit: &'a ShipmentProfile,
    /// Units the line takes.
    pub units: u32,
    /// The linear freight floor its units add (see `least_subset`'s
    /// `linear`).
    pub lin: Units,
    /// Its index among its supplier's members, which keys
    /// [`MemberFloors`] (below 64).
    pub member: u32,
}

/// One supplier's floors by the members a subset holds (bit `i`: member
/// `i`), for the subset searches whose profiles are made of members alone:
/// the same few subsets come back in every ascent pass and subgradient
/// step, and a bit mask is found again far faster than a profile. Valid
/// while the members and the floor function stay the same, as they do for
/// the life of a [`Lagrange`].
pub(super) type MemberFloors = FxHashMap<u64, Option<Units>>;

/// A subset search's [`MemberFloors`], with the members already in its
/// base.
pub(super) struct ByMembers<'m> {
    pub floors: &'m mut MemberFloors,
    pub base: u64,
}

/// The least over subsets `S` of `cands` (the empty one included) of the
/// freight floor of `base` with `S` added, less `offset` and the benefits
/// of `S`; `None` when `base` itself cannot ship. Along each path of the
/// search the floor counts as the largest met so far (a shipment holding
/// more units has every smaller profile's floor under its price), which is
/// also what lets a branch stop once even all the benefits left cannot beat
/// the best. `evals` caps the floors looked up: at zero, each branch not
/// searched counts the least it could reach, so the result still bounds the
/// true least from below.
///
/// `linear`, where given, is a floor of `base` that every candidate added
/// raises by its `lin` (a linear floor, which adds up over units): the
/// freight of `base` with any subset added is at least `linear` plus the
/// subset's `lin`, and the search counts that as a floor too. A branch
/// then also stops once even the benefits left beyond their linear floors
/// cannot beat the best, which cuts far deeper where the benefits mostly
/// pay for the candidates' own freight.
///
/// `late()` is read every `LATE_EVERY_EVALS` floors: once it says the
/// time is up, the search stops as at the cap (a search of a thousand
/// floors takes a tenth of a millisecond or more).
///
/// `by`, where given, says `base` is made of members alone (`by.base`),
/// as every candidate is: floors are then kept in and taken from
/// `by.floors`, and a profile is added up only where a floor is not known
/// yet.
///
/// Returns the least with the subset that reaches it, as bits over `cands`
/// (at most 64 of them count; the empty set where none beats `base`
/// alone). Where the cap cut the search short, the excess is a bound below
/// the least and the subset the best one found before.
#[allow(clippy::too_many_arguments)]
pub(super) fn least_subset(
    base: &ShipmentProfile,
    offset: Units,
    cands: &[Candidate<'_>],
    linear: Option<Units>,
    floor: &mut impl FnMut(&ShipmentProfile) -> Option<Units>,
    evals: &mut u32,
    late: &mut dyn FnMut() -> bool,
    by: Option<ByMembers<'_>>,
) -> Option<(Units, u64)> {
    // Masks of 64 bits: members past that take the profiles' way.
    let mut by = by.filter(|_| cands.iter().all(|c| c.member < 64));
    let f = match &mut by {
        Some(by) => *by.floors.entry(by.base).or_insert_with(|| floor(base)),
        None => floor(base),
    }?
    .max(linear.unwrap_or(Units::MIN));
    let mut order: SmallVec<[(Candidate<'_>, usize); 16]> = cands
        .iter()
        .copied()
        .enumerate()
        .filter(|(i, c)| c.benefit > 0 && *i < 64)
        .map(|(i, c)| (c, i))
        .collect();
    // Largest benefit first: the bound on what a branch can still gain
    // shrinks fastest, so branches stop early.
    order.sort_by_key(|(c, _)| std::cmp::Reverse(c.benefit));
    // From each position on: all the benefits a branch can still gain.
    let mut gain: SmallVec<[Units; 17]> = SmallVec::from_elem(0, order.len() + 1);
    for i in (0..order.len()).rev() {
        gain[i] = gain[i + 1] + order[i].0.benefit;
    }
    // And the benefits beyond each candidate's linear floor: what a branch
    // can still gain against the linear floor of what it holds.
    let mut net: SmallVec<[Units; 17]> = SmallVec::from_elem(0, order.len() + 1);
    if linear.is_some() {
        for i in (0..order.len()).rev() {
            net[i] = net[i + 1] + (order[i].0.benefit - order[i].0.lin).max(0);
        }
    }
    let base_bits = by.as_ref().map_or(0, |b| b.base);
    let mut search = Subsets {
        offset,
        order: &order,
        gain: &gain,
        net: linear.map(|_| &net[..]),
        floor,
        evals,
        late,
        base,
        by: by.map(|b| b.floors),
        best: f - offset,
        found: f - offset,
        found_set: 0,
    };
    search.descend(Some(base), base_bits, f, linear.unwrap_or(0), 0, 0, 0);
    Some((search.best, search.found_set))
}

/// One [`least_subset`] search.
struct Subsets<'s, 'a, F> {
    offset: Units,
    /// Candidates with a benefit, largest first, with their index.
    order: &'s [(Candidate<'a>, usize)],
    gain: &'s [Units],
    /// Per position: the benefits from there on beyond their candidates'
    /// linear floors (`None`: no linear floor given).
    net: Option<&'s [Units]>,
    floor: &'s mut F,
    evals: &'s mut u32,
    /// Read whenever the floors left are a multiple of `LATE_EVERY_EVALS`.
    late: &'s mut dyn FnMut() -> bool,
    /// The profile the subsets add to.
    base: &'s ShipmentProfile,
    /// Floors by members (see [`least_subset`]), where used.
    by: Option<&'s mut MemberFloors>,
    /// The least excess, or a bound below it where the cap cut a branch.
    best: Units,
    /// The least excess of a subset looked at, and that subset.
    found: Units,
    found_set: u64,
}

impl<F: FnMut(&ShipmentProfile) -> Option<Units>> Subsets<'_, '_, F> {
    /// Extends `profile` (members `bits` where floors are kept by members;
    /// `None` where not added up: its floor was known; floor at least `f`,
    /// linear floor `lin`, benefits `gained`, candidates `set`) by
    /// candidates from `from` on.
    #[allow(clippy::too_many_arguments)]
    fn descend(
        &mut self,
        profile: Option<&ShipmentProfile>,
        bits: u64,
        f: Units,
        lin: Units,
        from: usize,
        gained: Units,
        set: u64,
    ) {
        for j in from..self.order.len() {
            // Every subset from here holds this profile, so its floor is at
            // least `f`; the benefits it can add are at most `gain[j]`. Its
            // floor is also at least `lin` and each candidate's own linear
            // floor, which leaves it `net[j]` at most.
            let mut reach = f - self.offset - gained - self.gain[j];
            if let Some(net) = self.net {
                reach = reach.max(lin - self.offset - gained - net[j]);
            }
            if reach >= self.best {
                return;
            }
            if self.evals.is_multiple_of(LATE_EVERY_EVALS) && *self.evals > 0 && (self.late)() {
                *self.evals = 0;
            }
            if *self.evals == 0 {
                self.best = reach;
                return;
            }
            *self.evals -= 1;
            let (c, i) = self.order[j];
            let next_bits = bits | member_bit(c.member);
            let mut next: Option<ShipmentProfile> = None;
            let known = self.by.as_ref().and_then(|m| m.get(&next_bits).copied());
            let g = match known {
                Some(g) => g,
                None => {
                    let p = self.extended(profile, next_bits, &c);
                    let g = (self.floor)(&p);
                    if let Some(m) = self.by.as_mut() {
                        m.insert(next_bits, g);
                    }
                    next = Some(p);
                    g
                }
            };
            // A profile no service can carry: nor can any holding more.
            let Some(g) = g else {
                continue;
            };
            let lin = lin + c.lin;
            let g = if self.net.is_some() { g.max(lin) } else { g };
            let (g, gained, set) = (g.max(f), gained + c.benefit, set | 1 << i);
            let excess = g - self.offset - gained;
            self.best = self.best.min(excess);
            if excess < self.found {
                (self.found, self.found_set) = (excess, set);
            }
            self.descend(next.as_ref(), next_bits, g, lin, j + 1, gained, set);
        }
    }

    /// `profile` with candidate `c` added; where `profile` was not added up
    /// (floors kept by members), the base with every candidate in `bits`.
    fn extended(
        &self,
        profile: Option<&ShipmentProfile>,
        bits: u64,
        c: &Candidate<'_>,
    ) -> ShipmentProfile {
        match profile {
            Some(p) => {
                let mut next = *p;
                next.add(c.unit, c.units);
                next
            }
            None => {
                let mut next = *self.base;
                for (m, _) in self.order {
                    if bits & member_bit(m.member) != 0 {
                        next.add(m.unit, m.units);
                    }
                }
                next
            }
        }
    }
}

/// Floors a subset search looks up between two looks at the clock.
#[cfg(not(test))]
const LATE_EVERY_EVALS: u32 = 32;

/// In tests, often, so that the small searches of the property tests stop
/// by the clock too.
#[cfg(test)]
const LATE_EVERY_EVALS: u32 = 2;

/// Freight floors one line's raise may look up (across its suppliers).
const LINE_EVALS_MAX: u32 = 64;

/// Freight floors the check of one seeded line may look up. Seeds sit
/// high, so many subsets look as if they might break them; a capped search
/// then lowers a seed that holds, and the ascent does not win it back.
const CHECK_EVALS_MAX: u32 = 1_024;

/// Multipliers per line and the suppliers' members, for one search.
#[derive(Debug, Clone)]
pub(super) struct Lagrange {
    /// Per plannable line: its multiplier (0 for lines outside the bound).
    mult: Vec<Units>,
    /// Per plannable line: a multiplier no subset can go below (its
    /// cheapest goods within the bound, or 0).
    safe: Vec<Units>,
    /// Per plannable line: seeded above `safe` and not yet checked.
    unchecked: Vec<bool>,
    /// Per supplier: the lines it may ship within the bound.
    members: Vec<Vec<Member>>,
    /// Per plannable line: the goods bound of a line outside the bound
    /// (`None` for a member line).
    fixed: Vec<Option<Units>>,
    /// Plannable lines in search order.
    order: Vec<usize>,
    /// Per plannable line: its position in the search order.
    position: Vec<usize>,
    /// Per depth: the multipliers (or fixed goods) of the lines from there on.
    after: Vec<Units>,
    /// Corrections of open shipments, per (supplier, depth of its next
    /// member, profile, floor): a shipment's floor may stand above its
    /// profile's (a packed floor), and the correction counts from it.
    memo: FxHashMap<(u32, u32, ShipmentProfile, Units), Units>,
    /// Floors the corrections have looked up so far.
    spent: u64,
    /// Per supplier: the least excess over the subsets of its lines at the
    /// multipliers (at most zero, and zero while the multipliers are
    /// dual feasible), counted for every supplier that ships nothing yet.
    offsets: Vec<Units>,
    /// The sum of `offsets`.
    offset_total: Units,
    /// Whether [`Lagrange::subgradient`] ran (whether or not its steps
    /// held).
    stepped_once: bool,
    /// Per supplier and depth (`k * (lines + 1) + depth`): its least excess
    /// over the subsets of its members from that depth on, at least its
    /// offset (empty until the offsets are in use).
    offsets_at: Vec<Units>,
    /// Per depth: the sum of `offsets_at` over the suppliers.
    closed_at: Vec<Units>,
    /// Per supplier: the linear opening every shipment from it pays at
    /// least, which the ascent's subset searches count (see
    /// [`Lagrange::with_openings`]; zero unless given).
    opening: Vec<Units>,
    /// Per supplier: the floors its ascent, steps and offsets looked up,
    /// by members (their subsets hold members alone). Every call that
    /// keeps floors here passes the same floor function.
    member_floors: Vec<MemberFloors>,
}

impl Lagrange {
    /// Multipliers at each line's cheapest goods within the bound (where
    /// no supplier's subset can go below zero: floors are not negative).
    /// `fixed[l]` is the goods bound of a line outside it (`None` for a
    /// member line); `order` is the search order.
    pub fn new(members: Vec<Vec<Member>>, fixed: Vec<Option<Units>>, order: &[usize]) -> Self {
        let n = fixed.len();
        let mut mult = vec![Units::MAX; n];
        for m in members.iter().flatten() {
            mult[m.line] = mult[m.line].min(m.goods);
        }
        for (l, v) in mult.iter_mut().enumerate() {
            if *v == Units::MAX || fixed[l].is_some() {
                *v = 0;
            }
        }
        let n_sups = members.len();
        let mut position = vec![0; n];
        for (d, &l) in order.iter().enumerate() {
            position[l] = d;
        }
        let mut lag = Self {
            safe: mult.clone(),
            unchecked: vec![false; n],
            mult,
            members,
            fixed,
            order: order.to_vec(),
            position,
            after: Vec::new(),
            memo: FxHashMap::default(),
            member_floors: vec![MemberFloors::default(); n_sups],
            spent: 0,
            offsets: Vec::new(),
            offset_total: 0,
            stepped_once: false,
            offsets_at: Vec::new(),
            closed_at: Vec::new(),
            opening: vec![0; n_sups],
        };
        lag.sum_after();
        lag
    }

    /// Says that the freight of every subset of supplier `k`'s members is
    /// at least `opening[k]` plus the members' `lin` (without it, at least
    /// their `lin`), so that the subset searches of [`Lagrange::raise`] stop
    /// sooner (see [`least_subset`]). Ignored unless there is one opening
    /// per supplier.
    pub fn with_openings(mut self, opening: Vec<Units>) -> Self {
        if opening.len() == self.members.len() {
            self.opening = opening;
        }
        self
    }

    /// Starts the ascent from `seeds` (plannable line, multiplier), such as
    /// the duals of the facility-location bound. `openings[k]` is what that
    /// bound lets supplier `k`'s boxed and own-packaging lines charge beyond
    /// their goods and linear floors (`Member::lin`). Where a supplier's
    /// members charge no more, every subset of them costs at least its
    /// multipliers under floors at least the linear floor of the subset
    /// (the opening of its kinds of unit plus its units' linear floors),
    /// which is what [`Lagrange::raise`] must then be given. Seeded lines
    /// at any other supplier are checked in the ascent's first pass and
    /// lowered where a subset holding them goes below zero; lines it does
    /// not reach go back to their safe value.
    pub fn seed(
        &mut self,
        seeds: impl IntoIterator<Item = (usize, Units)>,
        openings: &[(Units, Units)],
    ) {
        for (l, v) in seeds {
            if self.fixed[l].is_none() && v > self.safe[l] {
                self.mult[l] = v;
            }
        }
        for (ms, &(boxed, own)) in self.members.iter().zip(openings) {
            let (mut charged_boxed, mut charged_own) = (0, 0);
            for m in ms {
                let charge = (self.mult[m.line] - m.goods - m.lin).max(0);
                if m.unit.boxed_weight_g > 0 {
                    charged_boxed += charge;
                } else {
                    charged_own += charge;
                }
            }
            if charged_boxed > boxed || charged_own > own {
                for m in ms {
                    self.unchecked[m.line] |= self.mult[m.line] > self.safe[m.line];
                }
            }
        }
        self.sum_after();
    }

    /// The multipliers and fixed goods of every line.
    fn total(&self) -> Units {
        (0..self.fixed.len())
            .map(|l| self.fixed[l].unwrap_or(self.mult[l]))
            .sum()
    }

    fn sum_after(&mut self) {
        self.after = vec![0; self.order.len() + 1];
        for d in (0..self.order.len()).rev() {
            let l = self.order[d];
            self.after[d] = self.after[d + 1] + self.fixed[l].unwrap_or(self.mult[l]);
        }
    }

    /// Raises the multipliers, `passes` times in search order: each line by
    /// the least slack of any subset holding it at any of its suppliers,
    /// at most to its next dearer goods (small steps leave room for the
    /// lines after it, as in dual ascent). `floor(k, profile)` is supplier
    /// `k`'s freight floor (after [`Lagrange::seed`], at least the profile's
    /// linear floor there). The first pass checks the seeded lines not
    /// known to hold, lowering each where a subset goes below zero. `evals`
    /// caps the floors looked up in all, and `late()`, asked before each
    /// line, between its suppliers and within their searches, stops the
    /// ascent where it is (the multipliers hold at every step; a search it
    /// stops bounds its slack from below, and seeded lines not yet checked
    /// go back to their safe value). The floors it looks up are kept for
    /// the steps (`member_floors`): every call on one `Lagrange` passes the
    /// same `floor`.
    pub fn raise(
        &mut self,
        passes: usize,
        floor: &mut impl FnMut(u32, &ShipmentProfile) -> Option<Units>,
        mut evals: u32,
        mut late: impl FnMut() -> bool,
    ) {
        // Per line: the suppliers where it is a member, and where.
        let mut at: Vec<SmallVec<[(u32, usize); 8]>> = vec![SmallVec::new(); self.fixed.len()];
        for (k, ms) in self.members.iter().enumerate() {
            for (i, m) in ms.iter().enumerate() {
                at[m.line].push((k as u32, i));
            }
        }
        for _ in 0..passes {
            let mut raised = false;
            for &l in &self.order {
                if self.fixed[l].is_some() || at[l].is_empty() {
                    continue;
                }
                if late() {
                    evals = 0;
                    break;
                }
                let v = self.mult[l];
                let checking = std::mem::take(&mut self.unchecked[l]);
                let mut step = at[l]
                    .iter()
                    .map(|&(k, i)| self.members[k as usize][i].goods)
                    .filter(|&g| g > v)
                    .map(|g| g - v)
                    .min()
                    .unwrap_or(Units::MAX);
                // A line's checks share a small part of the budget, so the
                // clock is read often even where a supplier has many lines.
                let mut line_evals = evals.min(if checking {
                    CHECK_EVALS_MAX
                } else {
                    LINE_EVALS_MAX
                });
                let spent_from = line_evals;
                let mut cut = false;
                for (j, &(k, i)) in at[l].iter().enumerate() {
                    // A line's checks may look up a thousand floors over its
                    // suppliers: the clock is read between them too. A line
                    // cut short keeps its multiplier (one still unchecked
                    // goes back to its safe value below).
                    if j > 0 && late() {
                        cut = true;
                        break;
                    }
                    let ms = &self.members[k as usize];
                    let me = &ms[i];
                    let cands: SmallVec<[Candidate<'_>; 16]> = ms
                        .iter()
                        .enumerate()
                        .filter(|(_, m)| m.line != l)
                        .map(|(j, m)| m.candidate(j, &self.mult))
                        .collect();
                    let mut base = ShipmentProfile::default();
                    base.add(&me.unit, me.units);
                    let mut at_k = |p: &ShipmentProfile| floor(k, p);
                    // Slack of the subsets holding `l`: its own floor and
                    // goods less its multiplier, then the others' benefits.
                    let linear = Some(self.opening[k as usize] + me.lin);
                    let slack = least_subset(
                        &base,
                        v - me.goods,
                        &cands,
                        linear,
                        &mut at_k,
                        &mut line_evals,
                        &mut late,
                        // Masks of 64 bits: a member past that keeps no floors.
                        (i < 64).then(|| ByMembers {
                            floors: &mut self.member_floors[k as usize],
                            base: 1 << i,
                        }),
                    );
                    if let Some((slack, _)) = slack {
                        step = step.min(slack);
                    }
                }
                evals -= spent_from - line_evals;
                if cut {
                    self.unchecked[l] = checking;
                    evals = 0;
                    break;
                }
                if step > 0 && step < Units::MAX {
                    self.mult[l] = v + step;
                    raised = true;
                } else if step < 0 && checking {
                    // A seed too high: every subset holding the line now
                    // meets its floor (a capped search only lowers more).
                    // The safe value holds too, so the higher of the two.
                    self.mult[l] = (v + step).max(self.safe[l]);
                }
            }
            if !raised || evals == 0 {
                break;
            }
        }
        for (l, unchecked) in self.unchecked.iter_mut().enumerate() {
            if std::mem::take(unchecked) {
                self.mult[l] = self.safe[l];
            }
        }
        self.sum_after();
    }

    /// Moves the multipliers towards the best the relaxation allows, by at
    /// most `steps` subgradient steps towards `target` (a plan's total, or
    /// 0 for none known), and keeps the best met.
    ///
    /// Each step prices, per supplier, its least subset at the multipliers
    /// ([`least_subset`], at most `evals` floors each): the bound is the
    /// multipliers plus those excesses. A line in no supplier's least subset
    /// rises, one in several falls, in proportion to how far the bound is
    /// from `target` (Polyak's rule, halved whenever a few steps bring no
    /// rise). Unlike [`Lagrange::raise`], the multipliers need not keep
    /// every subset's excess at or above zero: each supplier's least excess
    /// at the multipliers kept (`offsets`) counts wherever it ships
    /// nothing, so the bound holds for any multipliers. Why it holds: a
    /// completion ships each line left from one supplier (a split line
    /// counts at one of its parts' suppliers, the others only add), so its
    /// cost is the multipliers plus, per supplier, its subset's goods and
    /// floor less their multipliers, at least the least excess. `late()`
    /// stops the steps where they are (read before each supplier is priced
    /// and within its pricing, which it leaves at a bound below its least;
    /// a step cut short before its last supplier counts for nothing). It
    /// may be called again, towards a better plan's total: it starts from
    /// the multipliers and offsets kept, and keeps them where no step
    /// beats them. `floor` is the one [`Lagrange::raise`] was given.
    pub fn subgradient(
        &mut self,
        floor: &mut impl FnMut(u32, &ShipmentProfile) -> Option<Units>,
        target: Units,
        steps: usize,
        evals: u32,
        mut late: impl FnMut() -> bool,
    ) {
        let n = self.fixed.len();
        // Where it starts after `raise`, every excess is at least zero;
        // after earlier steps, each supplier's is at least its offset.
        let start = self.total() + self.offset_total;
        let kept = if self.offsets.is_empty() {
            vec![0; self.members.len()]
        } else {
            self.offsets.clone()
        };
        let mut best = (start, self.mult.clone(), kept);
        let mut scale = 1.0f64;
        let mut stale = 0;
        let mut offsets = vec![0; self.members.len()];
        let mut covered = vec![0i32; n];
        // Only lines some supplier may ship move: no subset prices any other
        // line's multiplier, which stays where `new` set it.
        let mut member = vec![false; n];
        for m in self.members.iter().flatten() {
            member[m.line] = self.fixed[m.line].is_none();
        }
        'steps: for _ in 0..steps {
            covered.iter_mut().for_each(|c| *c = 0);
            let mut bound = self.total();
            for (k, ms) in self.members.iter().enumerate() {
                // A step prices every supplier, thousands of floors on big
                // baskets: the clock is read per supplier, and a step cut
                // short counts for nothing.
                if late() {
                    break 'steps;
                }
                let cands: SmallVec<[Candidate<'_>; 16]> = ms
                    .iter()
                    .enumerate()
                    .map(|(i, m)| m.candidate(i, &self.mult))
                    .collect();
                let mut left = evals;
                let mut at_k = |p: &ShipmentProfile| floor(k as u32, p);
                // Priced without the linear floor's cut: the cap then stops
                // some pricings with other subsets found, and on 20-line
                // baskets of eight suppliers a line the steps so went to
                // multipliers whose corrections cost more than they cut.
                let linear = None;
                let (excess, set) = least_subset(
                    &ShipmentProfile::default(),
                    0,
                    &cands,
                    linear,
                    &mut at_k,
                    &mut left,
                    &mut late,
                    Some(ByMembers {
                        floors: &mut self.member_floors[k],
                        base: 0,
                    }),
                )
                .unwrap_or((0, 0));
                self.spent += u64::from(evals - left);
                offsets[k] = excess.min(0);
                bound += offsets[k];
                if excess < 0 {
                    for (i, m) in ms.iter().enumerate().take(64) {
                        covered[m.line] += i32::from(set >> i & 1 == 1);
                    }
                }
            }
            if bound > best.0 {
                best = (bound, self.mult.clone(), offsets.clone());
                stale = 0;
            } else {
                stale += 1;
                if stale >= 3 {
                    scale /= 2.0;
                    stale = 0;
                }
            }
            let lines = (0..n).filter(|&l| member[l] && covered[l] != 1);
            let norm: f64 = lines
                .clone()
                .map(|l| f64::from(1 - covered[l]).powi(2))
                .sum();
            // Without a plan, aim a little above the best bound so far.
            let aim = if target > best.0 {
                target
            } else {
                best.0 + best.0.abs() / 200 + 1
            };
            if norm == 0.0 || scale < 1.0 / 64.0 {
                break;
            }
            let step = scale * (aim - bound).max(1) as f64 / norm;
            for l in lines {
                let moved = step * f64::from(1 - covered[l]);
                self.mult[l] = self.mult[l].saturating_add(moved as Units);
            }
        }
        // The best multipliers met, the start's where no step beat it (its
        // offsets are all zero, and none are kept then).
        let (bound, mult, offsets) = best;
        self.mult = mult;
        self.stepped_once = true;
        if bound > start {
            self.memo.clear();
            self.offset_total = offsets.iter().sum();
            self.offsets = offsets;
            self.offsets_by_depth(floor, evals, &mut late);
        }
        self.sum_after();
        #[cfg(test)]
        if let Some((k, mask, least, excess)) = subset_below(
            &self.members,
            &self.mult,
            |k| self.offsets.get(k).copied().unwrap_or(0),
            floor,
        ) {
            panic!("supplier {k} subset {mask:b}: {excess} below its offset {least}");
        }
    }

    /// Prices each supplier's least subset again over only the members
    /// from each depth on (`offsets_at`): at a node, a supplier that ships
    /// nothing can only ship lines not yet placed, and the fewer lines a
    /// subset may take, the higher its least. Its offset over every
    /// member, the least over more subsets, stays a floor under each (a
    /// pricing cut short by `evals` or `late()` bounds its least from
    /// below), so the larger of the two counts.
    fn offsets_by_depth(
        &mut self,
        floor: &mut impl FnMut(u32, &ShipmentProfile) -> Option<Units>,
        evals: u32,
        late: &mut impl FnMut() -> bool,
    ) {
        let depths = self.order.len() + 1;
        let mut at = vec![0; self.members.len() * depths];
        for (k, ms) in self.members.iter().enumerate() {
            let root = self.offsets[k];
            let row = &mut at[k * depths..(k + 1) * depths];
            if root == 0 {
                continue;
            }
            // From the deepest member's position up, each depth where a
            // member stops counting prices the members left once.
            let mut starts: SmallVec<[usize; 16]> =
                ms.iter().map(|m| self.position[m.line]).collect();
            starts.sort_unstable();
            starts.dedup();
            // Depths up to the first member's position see every member.
            let mut from = 0;
            let mut least = root;
            for (i, &start) in starts.iter().enumerate() {
                row[from..=start].iter_mut().for_each(|o| *o = least);
                from = start + 1;
                let Some(&next) = starts.get(i + 1) else {
                    // Past the last member, the supplier can ship nothing.
                    least = 0;
                    continue;
                };
                let cands: SmallVec<[Candidate<'_>; 16]> = ms
                    .iter()
                    .enumerate()
                    .filter(|(_, m)| self.position[m.line] >= next)
                    .map(|(i, m)| m.candidate(i, &self.mult))
                    .collect();
                let mut left = evals;
                let mut at_k = |p: &ShipmentProfile| floor(k as u32, p);
                let priced = least_subset(
                    &ShipmentProfile::default(),
                    0,
                    &cands,
                    None,
                    &mut at_k,
                    &mut left,
                    late,
                    Some(ByMembers {
                        floors: &mut self.member_floors[k],
                        base: 0,
                    }),
                )
                .map_or(0, |(excess, _)| excess.min(0));
                self.spent += u64::from(evals - left);
                least = least.max(priced);
            }
            row[from..].iter_mut().for_each(|o| *o = least);
        }
        self.closed_at = (0..depths)
            .map(|d| (0..self.members.len()).map(|k| at[k * depths + d]).sum())
            .collect();
        self.offsets_at = at;
    }

    /// A copy that bounds nodes as this one does now, without the floors
    /// kept for its ascent and steps (`member_floors`): a copy is only
    /// priced at nodes (`correction`), which never reads them.
    pub fn bounding_copy(&mut self) -> Lagrange {
        let kept = std::mem::take(&mut self.member_floors);
        let mut copy = self.clone();
        copy.member_floors = vec![MemberFloors::default(); kept.len()];
        self.member_floors = kept;
        copy
    }

    /// Whether the multipliers took subgradient steps that held (the
    /// offsets of [`Lagrange::subgradient`] are then in use).
    pub fn stepped(&self) -> bool {
        !self.offsets.is_empty()
    }

    /// Whether the multipliers were given subgradient steps, whether or
    /// not any held.
    pub fn took_steps(&self) -> bool {
        self.stepped_once
    }

    /// The offsets (see [`Lagrange::subgradient`]) of the suppliers not in
    /// `open`, over the lines from `depth` on: what they add to the bound
    /// at a node of that depth where only those ship.
    pub fn closed_offsets(&self, depth: usize, open: &[u32]) -> Units {
        if self.offsets.is_empty() {
            return 0;
        }
        // Offsets in use were priced per depth too (`offsets_by_depth`).
        let depths = self.order.len() + 1;
        self.closed_at[depth]
            - open
                .iter()
                .map(|&k| self.offsets_at[k as usize * depths + depth])
                .sum::<Units>()
    }

    /// The correction [`Lagrange::correction`] keeps for these arguments,
    /// if it worked one out.
    pub fn known(
        &self,
        k: u32,
        depth: usize,
        profile: &ShipmentProfile,
        amount: Units,
    ) -> Option<Units> {
        let from = self.next_member(k, depth);
        self.memo.get(&(k, from as u32, *profile, amount)).copied()
    }

    /// The first depth from `depth` on that places a member of `k` (the
    /// number of lines where none is left): the lines that may still join a
    /// shipment from `k` are the same from `depth` as from there, and so is
    /// its correction. Kept under that depth, a correction serves every
    /// node down to it, whatever the lines placed in between.
    fn next_member(&self, k: u32, depth: usize) -> usize {
        self.members[k as usize]
            .iter()
            .map(|m| self.position[m.line])
            .filter(|&p| p >= depth)
            .min()
            .unwrap_or(self.order.len())
    }

    /// Floors the corrections have looked up so far: a search reads the
    /// clock more often while they are many.
    pub fn spent(&self) -> u64 {
        self.spent
    }

    /// The lines supplier `k` may ship within the bound.
    pub fn members(&self, k: u32) -> &[Member] {
        &self.members[k as usize]
    }

    /// The bound's multipliers and fixed goods of the lines from `depth` on.
    pub fn after(&self, depth: usize) -> Units {
        self.after[depth]
    }

    /// What the lines that may still join the open shipment from `k` can
    /// take off the bound at this node (zero or less): the least over
    /// subsets of them of the floor they raise the shipment's `profile` to,
    /// less its floor `amount` and their multipliers over their goods.
    /// `depth` is the node's depth (lines from there on may join);
    /// `banned[i]` says member `i` of `k` was since found not to ship
    /// from it (a correction kept from before a ban is only lower);
    /// `linear`, if given, is the linear floor of `profile`, which the
    /// joining members raise by their `lin` (see [`least_subset`]). Kept for
    /// [`Lagrange::known`].
    #[allow(clippy::too_many_arguments)]
    pub fn correction(
        &mut self,
        k: u32,
        depth: usize,
        profile: &ShipmentProfile,
        amount: Units,
        banned: &[bool],
        linear: Option<Units>,
        floor: &mut impl FnMut(&ShipmentProfile) -> Option<Units>,
        evals: u32,
    ) -> Units {
        let key = (k, self.next_member(k, depth) as u32, *profile, amount);
        let cands: SmallVec<[Candidate<'_>; 16]> = self.members[k as usize]
            .iter()
            .zip(banned)
            .enumerate()
            .filter(|(_, (m, &banned))| !banned && self.position[m.line] >= depth)
            .map(|(i, (m, _))| m.candidate(i, &self.mult))
            .collect();
        let mut left = evals;
        // Capped by floors alone: a node's bound is no place to stop. The
        // profile holds what the node placed, not members alone.
        let c = least_subset(
            profile,
            amount,
            &cands,
            linear,
            floor,
            &mut left,
            &mut || false,
            None,
        )
        .map_or(0, |(excess, _)| excess.min(0));
        self.spent += u64::from(evals - left);
        self.memo.insert(key, c);
        c
    }
}

/// In tests: a subset of some supplier's members whose goods and floor
/// (`floor(supplier, profile)`) less their multipliers fall below
/// `least(supplier)`, as (supplier, mask, least, excess); subsets of the
/// first 16 members only.
#[cfg(test)]
fn subset_below(
    members: &[Vec<Member>],
    mult: &[Units],
    least: impl Fn(usize) -> Units,
    mut floor: impl FnMut(u32, &ShipmentProfile) -> Option<Units>,
) -> Option<(usize, u32, Units, Units)> {
    for (k, ms) in members.iter().enumerate() {
        for mask in 1u32..(1 << ms.len().min(16)) {
            let mut p = ShipmentProfile::default();
            let mut excess = 0;
            for (i, m) in ms.iter().enumerate() {
                if mask >> i & 1 == 1 {
                    p.add(&m.unit, m.units);
                    excess += m.goods - mult[m.line];
                }
            }
            if let Some(f) = floor(k as u32, &p) {
                if f + excess < least(k) {
                    return Some((k, mask, least(k), f + excess));
                }
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// A floor that does not add up: a box sized by the longest unit
    /// (`boxed_volume_mm3` as its length), weight beyond it at a rate, and a
    /// second parcel's opening past a capacity.
    fn toy_floor(p: &ShipmentProfile) -> Option<Units> {
        if p.boxed_weight_g > 60_000 {
            return None;
        }
        let parcels = p.boxed_weight_g.div_ceil(20_000).max(1) as i64;
        let billable = (p.boxed_weight_g as i64).max(p.boxed_volume_mm3 as i64);
        Some(500 * parcels + billable / 100)
    }

    fn unit(weight: u64, length: u64) -> ShipmentProfile {
        ShipmentProfile {
            boxed_weight_g: weight,
            boxed_volume_mm3: length,
            ..ShipmentProfile::default()
        }
    }

    /// The excess of the subset `mask` of `cands` added to `base` under the
    /// toy floor, counting its linear floor (`linear` and the subset's
    /// `lin`) where given; `None` where it cannot ship.
    fn excess_of(
        base: &ShipmentProfile,
        offset: Units,
        cands: &[Candidate<'_>],
        linear: Option<Units>,
        mask: u64,
    ) -> Option<Units> {
        let mut p = *base;
        let (mut gained, mut lin) = (0, linear.unwrap_or(Units::MIN));
        for (i, c) in cands.iter().enumerate() {
            if mask >> i & 1 == 1 {
                p.add(c.unit, c.units);
                gained += c.benefit;
                lin = lin.saturating_add(c.lin);
            }
        }
        toy_floor(&p).map(|f| f.max(lin) - offset - gained)
    }

    /// The least excess by every subset (see `excess_of`).
    fn brute(
        base: &ShipmentProfile,
        offset: Units,
        cands: &[Candidate<'_>],
        linear: Option<Units>,
    ) -> Option<Units> {
        toy_floor(base)?;
        (0u64..(1 << cands.len()))
            .filter_map(|mask| excess_of(base, offset, cands, linear, mask))
            .min()
    }

    /// Three suppliers' members from `offers` of (line, supplier, goods,
    /// weight, length), lines taken modulo `lines`; a line's first offer at a
    /// supplier counts.
    fn members_of(lines: usize, offers: &[(usize, u32, Units, u64, u64)]) -> Vec<Vec<Member>> {
        let mut members: Vec<Vec<Member>> = vec![Vec::new(); 3];
        for &(l, k, goods, w, len) in offers {
            let l = l % lines;
            if members[k as usize].iter().any(|m| m.line == l) {
                continue;
            }
            members[k as usize].push(Member {
                line: l,
                goods,
                lin: 0,
                unit: unit(w, len),
                units: 1,
            });
        }
        members
    }

    /// Raises `lag` with `floor` for every supplier and no cap on floors,
    /// the clock stopping the ascent after `stop_after` looks if given.
    fn raise_stopping(
        lag: &mut Lagrange,
        passes: usize,
        floor: impl Fn(&ShipmentProfile) -> Option<Units>,
        stop_after: Option<usize>,
    ) {
        let mut looks = 0;
        lag.raise(passes, &mut |_, p| floor(p), u32::MAX, || {
            looks += 1;
            stop_after.is_some_and(|n| looks > n)
        });
    }

    proptest! {
        /// The subset search finds the least excess (the toy floor only
        /// grows with units), and under a cap on floors or stopped by the
        /// clock never reports more; the same where the search is told of a
        /// linear floor (an opening and a rate per kilogram) above the toy
        /// floor.
        #[test]
        fn least_excess_is_the_least_and_a_cap_only_lowers_it(
            units in proptest::collection::vec((1u64..30_000, 0u64..40_000, 1u32..3, -800i64..800), 0..7),
            base in (0u64..20_000, 0u64..30_000),
            offset in -500i64..2_000,
            cap in 0u32..40,
            linear in proptest::option::of((0i64..900, 0i64..40)),
            late_after in 0u32..3,
        ) {
            let (opening, per_kg) = linear.unwrap_or((0, 0));
            let by_weight = |w: u64| per_kg * w as i64 / 1000;
            let mut floor = toy_floor;
            let profiles: Vec<ShipmentProfile> = units.iter().map(|&(w, l, _, _)| unit(w, l)).collect();
            let cands: Vec<Candidate<'_>> = units
                .iter()
                .zip(&profiles)
                .enumerate()
                .map(|(i, (&(w, _, n, b), p))| Candidate { benefit: b, unit: p, units: n, lin: by_weight(w) * i64::from(n), member: i as u32 })
                .collect();
            let base = unit(base.0, base.1);
            let told = linear.map(|_| opening + by_weight(base.boxed_weight_g));
            let want = brute(&base, offset, &cands, told);
            let mut evals = u32::MAX;
            let got = least_subset(&base, offset, &cands, told, &mut floor, &mut evals, &mut || false, None).map(|(e, _)| e);
            prop_assert_eq!(got, want);
            // With floors kept by members (the base as a member of its own,
            // bit 63): filled, then read back, also by searches over fewer
            // candidates, which meet the same subsets at other positions.
            let mut kept = MemberFloors::default();
            for _ in 0..2 {
                let mut evals = u32::MAX;
                let again = least_subset(&base, offset, &cands, told, &mut floor, &mut evals, &mut || false, Some(ByMembers { floors: &mut kept, base: 1 << 63 })).map(|(e, _)| e);
                prop_assert_eq!(again, want);
            }
            for skip in 0..cands.len() {
                let fewer: Vec<Candidate<'_>> = cands.iter().enumerate().filter(|&(i, _)| i != skip).map(|(_, c)| *c).collect();
                let mut evals = u32::MAX;
                let kept_way = least_subset(&base, offset, &fewer, told, &mut floor, &mut evals, &mut || false, Some(ByMembers { floors: &mut kept, base: 1 << 63 })).map(|(e, _)| e);
                prop_assert_eq!(kept_way, brute(&base, offset, &fewer, told));
            }
            // The subset it names reaches the least.
            let mut evals = u32::MAX;
            if let Some((least, set)) = least_subset(&base, offset, &cands, told, &mut floor, &mut evals, &mut || false, None) {
                prop_assert_eq!(excess_of(&base, offset, &cands, told, set), Some(least));
            }
            let mut evals = cap;
            let capped = least_subset(&base, offset, &cands, told, &mut floor, &mut evals, &mut || false, None).map(|(e, _)| e);
            if let (Some(c), Some(w)) = (capped, want) {
                prop_assert!(c <= w, "capped {} above the least {}", c, w);
            }
            // Stopped by the clock at its first or a later look.
            let mut looks = 0;
            let mut evals = u32::MAX;
            let stopped = least_subset(&base, offset, &cands, told, &mut floor, &mut evals, &mut || {
                looks += 1;
                looks > late_after
            }, None)
            .map(|(e, _)| e);
            if let (Some(c), Some(w)) = (stopped, want) {
                prop_assert!(c <= w, "stopped at {} above the least {}", c, w);
            }
        }

        /// After raising, no subset of any supplier's members costs less
        /// than its multipliers: goods plus floor at least the sum of `v`;
        /// also from seeds of any height, and when the clock stops the
        /// ascent part of the way through its first pass.
        #[test]
        fn raised_multipliers_keep_every_subset_feasible(
            lines in 1usize..6,
            offers in proptest::collection::vec((0usize..6, 0u32..3, 100i64..3_000, 1u64..25_000, 0u64..30_000), 1..14),
            passes in 1usize..4,
            seeds in proptest::option::of(proptest::collection::vec(0i64..8_000, 6)),
            stop_after in proptest::option::of(0usize..6),
        ) {
            let members = members_of(lines, &offers);
            let fixed = vec![None; lines];
            let order: Vec<usize> = (0..lines).collect();
            let mut lag = Lagrange::new(members.clone(), fixed, &order);
            if let Some(seeds) = &seeds {
                // No linear floor: a seed holds unchecked only where it
                // charges nothing beyond goods.
                lag.seed(seeds.iter().take(lines).copied().enumerate(), &[(0, 0); 3]);
            }
            raise_stopping(&mut lag, passes, toy_floor, stop_after);
            let below = subset_below(&members, &lag.mult, |_| 0, |_, p| toy_floor(p));
            prop_assert!(below.is_none(), "a subset (supplier, mask, 0, excess) below its multipliers: {:?}", below);
        }

        /// After subgradient steps towards any target, the multipliers with
        /// the offsets of the suppliers bound every way of shipping each
        /// line from one supplier: no more than the cheapest of them. So do
        /// the multipliers of the lines from each depth of the search order
        /// on, with the suppliers' offsets over those lines, every way of
        /// shipping just those lines; also after steps taken a second
        /// time, towards another total.
        #[test]
        fn stepped_multipliers_bound_every_assignment(
            lines in 1usize..6,
            offers in proptest::collection::vec((0usize..6, 0u32..3, 100i64..3_000, 1u64..25_000, 0u64..30_000), 1..14),
            target in 0i64..20_000,
            steps in 1usize..12,
            turn in 0usize..6,
            again in proptest::option::weighted(0.5, 1i64..20_000).prop_map(Option::unwrap_or_default),
        ) {
            let members = members_of(lines, &offers);
            let order: Vec<usize> = (0..lines).map(|i| (i + turn) % lines).collect();
            let mut lag = Lagrange::new(members.clone(), vec![None; lines], &order);
            lag.raise(2, &mut |_, p| toy_floor(p), u32::MAX, || false);
            lag.subgradient(&mut |_, p| toy_floor(p), target, steps, u32::MAX, || false);
            if again > 0 {
                // Towards another total, from where the first steps ended.
                lag.subgradient(&mut |_, p| toy_floor(p), again, steps, u32::MAX, || false);
            }
            for depth in 0..=lines {
                let bound = lag.after(depth) + lag.closed_offsets(depth, &[]);
                let left = &order[depth..];
                // Every assignment of the lines left to suppliers that have them.
                let mut cheapest: Option<Units> = None;
                for code in 0..3usize.pow(left.len() as u32) {
                    let mut profiles = [ShipmentProfile::default(); 3];
                    let mut cost = 0;
                    let mut shipped = [false; 3];
                    let mut ok = true;
                    for (i, &l) in left.iter().enumerate() {
                        let k = code / 3usize.pow(i as u32) % 3;
                        match members[k].iter().find(|m| m.line == l) {
                            Some(m) => {
                                profiles[k].add(&m.unit, m.units);
                                cost += m.goods;
                                shipped[k] = true;
                            }
                            None => ok = false,
                        }
                    }
                    for k in 0..3 {
                        if ok && shipped[k] {
                            match toy_floor(&profiles[k]) {
                                Some(f) => cost += f,
                                None => ok = false,
                            }
                        }
                    }
                    if ok {
                        cheapest = Some(cheapest.map_or(cost, |c: Units| c.min(cost)));
                    }
                }
                if let Some(c) = cheapest {
                    prop_assert!(bound <= c, "at depth {}: bound {} above the cheapest assignment {}", depth, bound, c);
                }
            }
        }

        /// Seeded with the facility-location bound's duals (each supplier's
        /// opening and linear floor per unit weight), some raised further,
        /// the ascent keeps every subset feasible under floors that count
        /// the linear floor, also where the toy floor lies under it and the
        /// clock stops it early.
        #[test]
        fn facility_duals_seed_a_feasible_ascent(
            lines in 1usize..6,
            offers in proptest::collection::vec((0usize..6, 0u32..3, 100i64..3_000, 1u64..25_000, 0u64..30_000, 0u8..4), 1..14),
            (opening_boxed, opening_own) in (0i64..1_500).prop_flat_map(|b| (Just(b), 0..=b)),
            per_kg in 0i64..60,
            passes in 1usize..3,
            stop_after in proptest::option::of(0usize..6),
            bumps in proptest::collection::vec(prop_oneof![Just(0i64), 1i64..400], 6),
        ) {
            use super::super::bounds::{facility_bound, Scratch, UflLine};
            let lin_of = |w: u64| per_kg * w as i64 / 1000;
            // The toy floor, with own-packaging units' charges added, or the
            // linear floor: the opening of the shipment's kinds of unit, own
            // charges and boxed weight at a rate.
            let phi = |p: &ShipmentProfile| {
                let opening = if p.boxed_weight_g > 0 { opening_boxed } else { opening_own };
                toy_floor(p).map(|f| (f + p.own_charge).max(opening + p.own_charge + lin_of(p.boxed_weight_g)))
            };
            let mut members: Vec<Vec<Member>> = vec![Vec::new(); 3];
            for &(l, k, goods, w, len, kind) in &offers {
                let l = l % lines;
                if members[k as usize].iter().any(|m| m.line == l) {
                    continue;
                }
                let (unit, lin) = if kind == 0 {
                    let own = ShipmentProfile { own_charge: w as i64 / 20, ..ShipmentProfile::default() };
                    (own, own.own_charge)
                } else {
                    (unit(w, len), lin_of(w))
                };
                members[k as usize].push(Member { line: l, goods, lin, unit, units: 1 });
            }
            // The facility-location bound's facilities: boxed and own lines
            // of a supplier apart, the boxed ones opening for what the
            // own-packaging opening leaves where the supplier has both.
            let has_own: Vec<bool> = members.iter().map(|ms| ms.iter().any(|m| m.unit.boxed_weight_g == 0)).collect();
            let openings: Vec<(Units, Units)> = has_own
                .iter()
                .map(|&own| (if own { opening_boxed - opening_own } else { opening_boxed }, opening_own))
                .collect();
            let ufl: Vec<UflLine> = (0..lines)
                .map(|l| UflLine {
                    line: l,
                    costs: members
                        .iter()
                        .enumerate()
                        .flat_map(|(k, ms)| {
                            ms.iter()
                                .filter(|m| m.line == l)
                                .map(move |m| (2 * k as u32 + u32::from(m.unit.boxed_weight_g == 0), m.goods, m.lin))
                        })
                        .collect(),
                })
                .collect();
            let refs: Vec<&UflLine> = ufl.iter().collect();
            let mut scratch = Scratch::default();
            facility_bound(
                &refs,
                6,
                |f| if f % 2 == 0 { openings[f as usize / 2].0 } else { openings[f as usize / 2].1 },
                |_| true,
                |_, _| true,
                &mut scratch,
            );
            // Some seeds above the duals: those the ascent must check.
            let seeds: Vec<(usize, Units)> = scratch
                .duals()
                .iter()
                .zip(&bumps)
                .map(|(v, b)| v + b)
                .enumerate()
                .collect();
            let order: Vec<usize> = (0..lines).collect();
            // Every subset's floor counts at least the lesser opening.
            let mut lag = Lagrange::new(members.clone(), vec![None; lines], &order)
                .with_openings(vec![opening_own; 3]);
            lag.seed(seeds, &openings);
            raise_stopping(&mut lag, passes, phi, stop_after);
            let below = subset_below(&members, &lag.mult, |_| 0, |_, p| phi(p));
            prop_assert!(below.is_none(), "a subset (supplier, mask, 0, excess) below its multipliers: {:?}", below);
        }
    }
}

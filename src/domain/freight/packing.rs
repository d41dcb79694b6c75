//! Box packing that minimises billed freight plus box cost under a reference service.
//!
//! Fit rule (simple and sound for what it claims): every unit must fit the box's
//! inner dimensions on its own under some axis-aligned rotation (sorted sides
//! compared pairwise), the units in a box together may use at most
//! `fill_factor_pct` of its inner volume (the allowance for the gaps real packing
//! leaves), and the gross weight must stay within the box's max weight (already
//! capped at the settings' parcel limit). A unit that fits no box ships alone in
//! its own packaging.
//!
//! Search: up to `exact_packing_max_units` units, an exact dynamic programme over
//! subsets (every partition of the units into parcels, each parcel in its cheapest
//! holding box); above that, several first-fit-decreasing constructions (for heavy
//! goods also some that fill parcels only up to the reference carrier's additional
//! handling weight), each parcel re-boxed to its cheapest holding box, the cheapest
//! construction then improved by relocating units and dissolving parcels while the
//! cost drops. The one-unit-per-box packing is always a candidate, so the result
//! never costs more. Everything iterates in a fixed order: the same input gives the
//! same packing.

use std::fmt::Debug;
use std::iter::Sum;
use std::ops::{Add, Sub};

use rustc_hash::FxHashMap;
use smallvec::{smallvec, SmallVec};

use super::tables::{BoxSpec, Settings};
use super::{FreightError, Item, ItemLine, Parcel, OWN_PACKAGING};

/// Local search runs only up to this many units (it is O(units × parcels × boxes) per pass).
const LOCAL_SEARCH_MAX_UNITS: usize = 120;
/// Passes of improvement moves at most.
const LOCAL_SEARCH_PASSES: usize = 4;

/// One unit to pack, with its dimensions sorted longest first.
#[derive(Clone, Copy, Debug)]
pub(super) struct Unit {
    pub dims_mm: [u32; 3],
    pub weight_g: u32,
    pub volume_mm3: u128,
    /// Index of the request line it came from.
    pub line: usize,
}

/// Aggregate of a set of units, enough to decide which boxes hold them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub(super) struct Summary {
    /// Element-wise max of the units' sorted sides: a box holds every unit (each
    /// rotated on its own) iff this fits its sorted inner dimensions.
    max_dims: [u32; 3],
    volume: u128,
    weight: u64,
    count: usize,
}

impl Summary {
    fn add(mut self, u: &Unit) -> Self {
        for (a, b) in self.max_dims.iter_mut().zip(u.dims_mm) {
            *a = (*a).max(b);
        }
        self.volume += u.volume_mm3;
        self.weight += u64::from(u.weight_g);
        self.count += 1;
        self
    }

    /// The summary of the units at `idx`.
    pub fn of(units: &[Unit], idx: impl Iterator<Item = usize>) -> Self {
        idx.fold(Summary::default(), |s, i| s.add(&units[i]))
    }
}

/// Runs of units the packer cannot tell apart (equal sides, weight and
/// volume; `units` sorts them next to each other), as (bit mask, first
/// index), only runs of two or more.
fn identical_runs(units: &[Unit]) -> Vec<(usize, usize)> {
    let mut runs = Vec::new();
    let mut start = 0;
    for i in 1..=units.len() {
        if i == units.len() || !alike(&units[i], &units[start]) {
            if i - start > 1 {
                runs.push((((1usize << (i - start)) - 1) << start, start));
            }
            start = i;
        }
    }
    runs
}

/// Whether the packer cannot tell two units apart (equal sides, weight and
/// volume).
fn alike(a: &Unit, b: &Unit) -> bool {
    a.dims_mm == b.dims_mm && a.weight_g == b.weight_g && a.volume_mm3 == b.volume_mm3
}

/// The subset with as many units of each run as `mask`, taking the first
/// of each run.
fn canonical(mask: usize, runs: &[(usize, usize)]) -> usize {
    let mut canon = mask;
    for &(bits, start) in runs {
        let count = (mask & bits).count_ones();
        canon = (canon & !bits) | (((1usize << count) - 1) << start);
    }
    canon
}

/// Sub-multisets of its units up to which [`Partitions`] takes a set:
/// six units apart, or more where units repeat (forty units of one kind
/// make 41).
pub(super) const LEAST_PARTITION_MAX_SETS: usize = 64;

/// Kinds of unit [`Partitions`] tells apart at most: each has one unit or
/// more, so each at least doubles the sub-multisets.
const LEAST_PARTITION_MAX_KINDS: usize = 6;

/// The units of a shipment as kinds the packer cannot tell apart (equal
/// sides, weight and volume), ready for [`Partitions::least`]. Parcels
/// that differ only in which of a kind's units they hold pack and cost the
/// same, so the programme runs over sub-multisets: counts of each kind,
/// numbered in mixed radix (kind `i` counts `strides[i]`).
pub(super) struct Partitions<'u> {
    units: &'u [Unit],
    /// Per kind: the index of its first unit and how many there are.
    kinds: [(usize, usize); LEAST_PARTITION_MAX_KINDS],
    len: usize,
    strides: [usize; LEAST_PARTITION_MAX_KINDS],
    /// Sub-multisets, the empty one included.
    sets: usize,
}

impl<'u> Partitions<'u> {
    /// The kinds of `units` (sorted as [`units`] sorts them); `None` when
    /// they make more than [`LEAST_PARTITION_MAX_SETS`] sub-multisets.
    pub fn of(units: &'u [Unit]) -> Option<Self> {
        let mut p = Partitions {
            units,
            kinds: [(0, 0); LEAST_PARTITION_MAX_KINDS],
            len: 0,
            strides: [0; LEAST_PARTITION_MAX_KINDS],
            sets: 1,
        };
        let mut start = 0;
        for i in 1..=units.len() {
            if i == units.len() || !alike(&units[i], &units[start]) {
                if p.len == LEAST_PARTITION_MAX_KINDS {
                    return None;
                }
                p.kinds[p.len] = (start, i - start);
                p.strides[p.len] = p.sets;
                p.len += 1;
                p.sets = p
                    .sets
                    .checked_mul(i - start + 1)
                    .filter(|&n| n <= LEAST_PARTITION_MAX_SETS)?;
                start = i;
            }
        }
        Some(p)
    }

    /// The units in one parcel and each unit in its own, priced by `parcel`.
    pub fn whole_and_apart<C: Cost>(
        &self,
        parcel: &mut impl FnMut(&Summary) -> Option<C>,
    ) -> (Option<C>, Option<C>) {
        let whole = parcel(&Summary::of(self.units, 0..self.units.len()));
        let mut apart = Some(C::default());
        for &(first, count) in &self.kinds[..self.len] {
            let one = parcel(&Summary::of(self.units, first..first + 1));
            apart = apart
                .zip(one)
                .map(|(a, c)| (0..count).fold(a, |a, _| a + c));
        }
        (whole, apart)
    }

    /// The least cost of any partition of the units into parcels, each
    /// parcel of units with summary `s` costing `parcel(s)` (`None`: they
    /// fit no parcel together, nor does any set holding them). The exact
    /// programme's sum, without keeping the parcels, in fixed arrays:
    /// callers ask it at many nodes of a search.
    pub fn least<C: Cost>(&self, parcel: &mut impl FnMut(&Summary) -> Option<C>) -> Option<C> {
        const SETS: usize = LEAST_PARTITION_MAX_SETS;
        let kinds = &self.kinds[..self.len];
        let strides = &self.strides[..self.len];
        let digits = |set: usize| {
            let mut d = [0usize; LEAST_PARTITION_MAX_KINDS];
            for (i, (&(_, count), &stride)) in kinds.iter().zip(strides).enumerate() {
                d[i] = set / stride % (count + 1);
            }
            d
        };
        let full = self.sets - 1;
        let mut sums = [Summary::default(); SETS];
        let mut block: [Option<C>; SETS] = [None; SETS];
        let mut best: [Option<C>; SETS] = [None; SETS];
        best[0] = Some(C::default());
        // Every sub-multiset of a set is numbered no higher than it, so one
        // pass in order fills both tables.
        for set in 1..=full {
            let d = digits(set);
            // The parcel holding a unit of the first kind present, with the
            // best of the rest: every partition has exactly one such parcel.
            let Some(low) = (0..kinds.len()).find(|&i| d[i] > 0) else {
                continue;
            };
            let rest = set - strides[low];
            sums[set] = sums[rest].add(&self.units[kinds[low].0]);
            block[set] = if rest == 0 || block[rest].is_some() {
                parcel(&sums[set])
            } else {
                None
            };
            // Counts down every sub-multiset `sub` of `rest`, odometer-wise;
            // the parcel is `sub` with that unit.
            let mut top = d;
            top[low] -= 1;
            let mut sub_digits = top;
            let mut sub = rest;
            let mut least: Option<C> = None;
            loop {
                let blk = sub + strides[low];
                if let (Some(c), Some(r)) = (block[blk], best[set - blk]) {
                    let total = c + r;
                    if least.is_none_or(|l| total < l) {
                        least = Some(total);
                    }
                }
                let Some(i) = (0..kinds.len()).find(|&i| sub_digits[i] > 0) else {
                    break;
                };
                for j in 0..i {
                    sub_digits[j] = top[j];
                    sub += top[j] * strides[j];
                }
                sub_digits[i] -= 1;
                sub -= strides[i];
            }
            best[set] = least;
        }
        best[full]
    }
}

/// A packed parcel: which box, and the envelope of its contents.
#[derive(Clone, Debug)]
pub(super) struct OpenParcel {
    /// Index into the box catalog, or `None` for a unit in its own packaging.
    pub box_idx: Option<usize>,
    pub max_dims_mm: [u32; 3],
    #[cfg_attr(not(test), allow(dead_code))] // read by tests and `Packer::cost`
    pub contents_volume_mm3: u128,
    pub contents_weight_g: u64,
    /// Indices into the request's lines, one per unit (sorted).
    #[cfg_attr(not(test), allow(dead_code))] // read by tests
    pub units: Vec<usize>,
}

fn sorted_dims(item: &Item) -> [u32; 3] {
    let mut d = [item.length_mm, item.width_mm, item.height_mm];
    d.sort_unstable_by(|a, b| b.cmp(a));
    d
}

fn holds(b: &BoxSpec, s: &Summary, fill_pct: u32) -> bool {
    let dims_ok = s
        .max_dims
        .iter()
        .zip(b.inner_mm.iter())
        .all(|(d, i)| d <= i);
    let weight_ok = s.weight + u64::from(b.tare_weight_g) <= u64::from(b.max_weight_g);
    // A lone unit that fits the dimensions always fits; the fill factor models
    // the gaps left between several units.
    let volume_ok = s.count <= 1 || s.volume * 100 <= b.inner_volume_mm3 * u128::from(fill_pct);
    dims_ok && weight_ok && volume_ok
}

/// Checks the request lines and expands them into units, largest first.
pub(super) fn units(lines: &[ItemLine], settings: &Settings) -> Result<Vec<Unit>, FreightError> {
    let mut count: u64 = 0;
    for (i, line) in lines.iter().enumerate() {
        if line.quantity == 0 {
            continue;
        }
        let it = &line.item;
        if it.length_mm == 0 || it.width_mm == 0 || it.height_mm == 0 {
            return Err(FreightError::InvalidRequest {
                reason: format!("line {i}: item dimensions must be positive"),
            });
        }
        if it.weight_g == 0 {
            return Err(FreightError::InvalidRequest {
                reason: format!("line {i}: item weight must be positive"),
            });
        }
        count += u64::from(line.quantity);
    }
    if count == 0 {
        return Err(FreightError::EmptyShipment);
    }
    if count > u64::from(settings.max_units_per_request) {
        return Err(FreightError::InvalidRequest {
            reason: format!(
                "{count} units; at most {} are rated at once",
                settings.max_units_per_request
            ),
        });
    }
    let mut out = Vec::with_capacity(usize::try_from(count).unwrap_or(0));
    for (line, l) in lines.iter().enumerate() {
        let dims_mm = sorted_dims(&l.item);
        // u128: three u32 sides overflow u64.
        let volume_mm3 = dims_mm.iter().map(|&d| u128::from(d)).product();
        let u = Unit {
            dims_mm,
            weight_g: l.item.weight_g,
            volume_mm3,
            line,
        };
        out.extend(std::iter::repeat_n(u, l.quantity as usize));
    }
    // Decreasing volume, then weight; the line index keeps ties deterministic.
    out.sort_by(|a, b| {
        (b.volume_mm3, b.weight_g, b.dims_mm, a.line).cmp(&(
            a.volume_mm3,
            a.weight_g,
            a.dims_mm,
            b.line,
        ))
    });
    Ok(out)
}

/// Exact money as the packer adds and compares it: `Decimal`, or integer
/// hundred-millionths ([`super::rating::E8`]) when every amount is whole
/// there. Both give the same sums and order, hence the same packing.
pub(super) trait Cost:
    Copy + Debug + Default + Ord + Add<Output = Self> + Sub<Output = Self> + Sum
{
}

impl<T: Copy + Debug + Default + Ord + Add<Output = T> + Sub<Output = T> + Sum> Cost for T {}

/// Packs units to minimise reference freight plus box cost.
pub(super) struct Packer<'a, C, F> {
    pub boxes: &'a [BoxSpec],
    /// What each box costs, by index into `boxes`.
    pub box_costs: &'a [C],
    pub fill_pct: u32,
    pub exact_max_units: usize,
    /// The heaviest gross weight, grams, of a parcel that pays no
    /// additional handling on the reference service (`u32::MAX`: none).
    /// The constructions also fill parcels only up to it.
    pub light_g: u32,
    /// Reference freight of one parcel: (gross weight g, index of its box
    /// or `None` for own packaging, outer dims sorted) -> amount.
    pub freight: F,
}

/// The cheapest box (and its cost) of each summary asked for within one
/// heuristic packing: its constructions and moves ask for the same few
/// dozen summaries again and again (in the shipments of more than eight
/// units that the planner bench's slowest 10-line baskets rate, 57 % of
/// the asks repeated one made before).
type Seen<C> = FxHashMap<Summary, Option<(Option<usize>, C)>>;

/// The units of a parcel under construction, as indices into the unit
/// slice: inline for a few, as most parcels hold, since a packing tries some
/// twenty candidate packings and each would otherwise allocate per parcel.
type Members = SmallVec<[usize; 4]>;

/// A parcel under construction: unit indices (into the unit slice) and its choice.
#[derive(Clone, Debug)]
struct Bin<C> {
    units: Members,
    sum: Summary,
    box_idx: Option<usize>,
    cost: C,
}

impl<C: Cost, F: Fn(u32, Option<usize>, [u32; 3]) -> C> Packer<'_, C, F> {
    /// Cheapest way to ship a set of units as one parcel: (box or own packaging, cost).
    /// `None` when several units fit no box together.
    fn best_box(&self, s: &Summary) -> Option<(Option<usize>, C)> {
        let mut best: Option<(Option<usize>, C)> = None;
        for ((bi, b), &cost) in self.boxes.iter().enumerate().zip(self.box_costs) {
            if !holds(b, s, self.fill_pct) {
                continue;
            }
            let gross = u32::try_from(s.weight + u64::from(b.tare_weight_g)).unwrap_or(u32::MAX);
            let c = (self.freight)(gross, Some(bi), b.outer_mm) + cost;
            if best.is_none_or(|(_, bc)| c < bc) {
                best = Some((Some(bi), c));
            }
        }
        if best.is_none() && s.count == 1 {
            let gross = u32::try_from(s.weight).unwrap_or(u32::MAX);
            best = Some((None, (self.freight)(gross, None, s.max_dims)));
        }
        best
    }

    /// [`Packer::best_box`], each summary worked out once in `seen`.
    fn best_box_seen(&self, seen: &mut Seen<C>, s: &Summary) -> Option<(Option<usize>, C)> {
        *seen.entry(*s).or_insert_with(|| self.best_box(s))
    }

    fn bin(&self, seen: &mut Seen<C>, units: &[Unit], idx: Members) -> Option<Bin<C>> {
        let sum = Summary::of(units, idx.iter().copied());
        let (box_idx, cost) = self.best_box_seen(seen, &sum)?;
        Some(Bin {
            units: idx,
            sum,
            box_idx,
            cost,
        })
    }

    /// One unit per parcel, each in its cheapest holding box (the baseline).
    pub fn one_per_box(&self, units: &[Unit]) -> Vec<OpenParcel> {
        let mut seen = Seen::default();
        let bins: Vec<Bin<C>> = (0..units.len())
            .filter_map(|i| self.bin(&mut seen, units, smallvec![i]))
            .collect();
        finish(units, bins)
    }

    /// Reference cost of a packing (freight plus box cost).
    #[cfg(test)]
    pub fn cost(&self, parcels: &[OpenParcel]) -> C {
        parcels
            .iter()
            .map(|p| {
                let s = Summary {
                    max_dims: p.max_dims_mm,
                    volume: p.contents_volume_mm3,
                    weight: p.contents_weight_g,
                    count: p.units.len(),
                };
                match p.box_idx.and_then(|bi| Some((bi, self.boxes.get(bi)?))) {
                    Some((bi, b)) => {
                        let gross = u32::try_from(s.weight + u64::from(b.tare_weight_g))
                            .unwrap_or(u32::MAX);
                        (self.freight)(gross, Some(bi), b.outer_mm) + self.box_costs[bi]
                    }
                    None => {
                        let gross = u32::try_from(s.weight).unwrap_or(u32::MAX);
                        (self.freight)(gross, None, s.max_dims)
                    }
                }
            })
            .sum()
    }

    /// The packing of `units` (sorted largest first, as [`units`] returns them).
    pub fn pack(&self, units: &[Unit]) -> Vec<OpenParcel> {
        let bins = if units.len() <= self.exact_max_units.min(16) {
            self.exact(units)
        } else {
            self.heuristic(units)
        };
        finish(units, bins)
    }

    /// What the cheapest box holding the units of `s` costs as one parcel,
    /// freight and box; `None` when several units fit no box together.
    pub fn parcel_cost(&self, s: &Summary) -> Option<C> {
        self.best_box(s).map(|(_, c)| c)
    }

    /// Exact minimum over all partitions of the units: DP over subsets.
    fn exact(&self, units: &[Unit]) -> Vec<Bin<C>> {
        let n = units.len();
        let full = (1usize << n) - 1;
        // Cheapest single parcel per subset (None: the units do not fit one box).
        let mut sums = vec![Summary::default(); full + 1];
        let mut block: Vec<Option<(Option<usize>, C)>> = vec![None; full + 1];
        let runs = identical_runs(units);
        for mask in 1..=full {
            let low = mask.trailing_zeros() as usize;
            sums[mask] = sums[mask & (mask - 1)].add(&units[low]);
            // Subsets that take the same number of each kind of unit have the
            // same summary, hence the same box: priced once, for the one
            // taking the first units of each run (numerically no larger,
            // so already done).
            let canon = canonical(mask, &runs);
            if canon != mask {
                block[mask] = block[canon];
                continue;
            }
            // A superset of a set that fits no box fits none either (dims, volume and weight only grow).
            let sub_ok = mask & (mask - 1) == 0 || block[mask & (mask - 1)].is_some();
            if sub_ok {
                block[mask] = self.best_box(&sums[mask]);
            }
        }
        let mut best: Vec<Option<(C, usize)>> = vec![None; full + 1];
        best[0] = Some((C::default(), 0));
        for mask in 1..=full {
            let low = mask & mask.wrapping_neg();
            let rest = mask ^ low;
            let mut sub = rest;
            let mut chosen: Option<(C, usize)> = None;
            loop {
                let blk = sub | low;
                if let (Some((_, c)), Some((r, _))) = (block[blk], best[mask ^ blk]) {
                    let total = c + r;
                    if chosen.is_none_or(|(bc, _)| total < bc) {
                        chosen = Some((total, blk));
                    }
                }
                if sub == 0 {
                    break;
                }
                sub = (sub - 1) & rest;
            }
            best[mask] = chosen;
        }
        let mut bins = Vec::new();
        let mut mask = full;
        while mask != 0 {
            let Some((_, blk)) = best[mask] else { break };
            if let Some((box_idx, cost)) = block[blk] {
                bins.push(Bin {
                    units: (0..n).filter(|i| blk & (1 << i) != 0).collect(),
                    sum: sums[blk],
                    box_idx,
                    cost,
                });
            }
            mask ^= blk;
        }
        bins
    }

    /// First-fit-decreasing constructions plus improvement moves.
    fn heuristic(&self, units: &[Unit]) -> Vec<Bin<C>> {
        let mut seen = Seen::default();
        // The cheapest candidate so far; a later one replaces it only when
        // strictly cheaper, so among equals the first tried wins.
        let mut best: Option<(C, Vec<Bin<C>>)> = None;
        let mut offer = |bins: Vec<Bin<C>>| {
            let total = bins.iter().map(|b| b.cost).sum::<C>();
            if best.as_ref().is_none_or(|(c, _)| total < *c) {
                best = Some((total, bins));
            }
        };
        // Units are in decreasing volume. Variant per catalog box: open that box
        // whenever a new parcel is needed and the unit fits it, else the smallest that fits.
        for preferred in 0..=self.boxes.len() {
            offer(self.first_fit(&mut seen, units, preferred, u64::MAX));
        }
        // Goods too heavy for one parcel under the handling weight: the same
        // again, each parcel filled only up to that weight. Filled to the
        // boxes' limits, heavy goods make a few parcels that each pay
        // additional handling, where one more parcel would pay none, and
        // the moves below never open a parcel.
        let weight: u64 = units.iter().map(|u| u64::from(u.weight_g)).sum();
        if weight > u64::from(self.light_g) {
            for preferred in 0..=self.boxes.len() {
                offer(self.first_fit(&mut seen, units, preferred, u64::from(self.light_g)));
            }
        }
        offer(
            (0..units.len())
                .filter_map(|i| self.bin(&mut seen, units, smallvec![i]))
                .collect(),
        );
        let mut bins = best.map(|(_, bins)| bins).unwrap_or_default();
        if units.len() <= LOCAL_SEARCH_MAX_UNITS {
            self.improve(&mut seen, units, &mut bins);
        }
        bins.retain(|b| !b.units.is_empty());
        bins
    }

    /// First fit decreasing; new parcels use box `preferred` when the unit fits
    /// it alone (`preferred == boxes.len()`: always the smallest box that fits).
    /// A unit joins a parcel only while its gross weight stays within
    /// `heaviest_g` (a unit alone always has a parcel). Every finished parcel
    /// is then re-boxed to its cheapest holding box.
    fn first_fit(
        &self,
        seen: &mut Seen<C>,
        units: &[Unit],
        preferred: usize,
        heaviest_g: u64,
    ) -> Vec<Bin<C>> {
        let mut open: Vec<(usize, Summary, Members)> = Vec::new();
        let mut own: Vec<Bin<C>> = Vec::new();
        'units: for (ui, u) in units.iter().enumerate() {
            for (bi, sum, idx) in open.iter_mut() {
                let s = sum.add(u);
                let b = &self.boxes[*bi];
                if holds(b, &s, self.fill_pct)
                    && s.weight + u64::from(b.tare_weight_g) <= heaviest_g
                {
                    *sum = s;
                    idx.push(ui);
                    continue 'units;
                }
            }
            let alone = Summary::default().add(u);
            let fits = |b: &BoxSpec| holds(b, &alone, self.fill_pct);
            let choice = self
                .boxes
                .get(preferred)
                .filter(|b| fits(b))
                .map(|_| preferred)
                .or_else(|| self.boxes.iter().position(fits));
            match choice {
                Some(bi) => open.push((bi, alone, smallvec![ui])),
                None => own.extend(self.bin(seen, units, smallvec![ui])),
            }
        }
        let mut bins: Vec<Bin<C>> = open
            .into_iter()
            .map(|(bi, sum, idx)| {
                let (box_idx, cost) = self.best_box_seen(seen, &sum).unwrap_or_else(|| {
                    let b = &self.boxes[bi];
                    let gross =
                        u32::try_from(sum.weight + u64::from(b.tare_weight_g)).unwrap_or(u32::MAX);
                    (
                        Some(bi),
                        (self.freight)(gross, Some(bi), b.outer_mm) + self.box_costs[bi],
                    )
                });
                Bin {
                    units: idx,
                    sum,
                    box_idx,
                    cost,
                }
            })
            .collect();
        bins.extend(own);
        bins
    }

    /// Relocates single units and dissolves whole parcels while the total cost drops.
    fn improve(&self, seen: &mut Seen<C>, units: &[Unit], bins: &mut Vec<Bin<C>>) {
        for _ in 0..LOCAL_SEARCH_PASSES {
            let mut improved = false;
            // Dissolve: move every unit of a parcel into the others (cheapest insertion each).
            let mut a = 0;
            while a < bins.len() {
                if let Some(new_bins) = self.try_dissolve(seen, units, bins, a) {
                    *bins = new_bins;
                    improved = true;
                } else {
                    a += 1;
                }
            }
            // Relocate: one unit from parcel a to parcel b.
            for a in 0..bins.len() {
                let mut k = 0;
                while k < bins[a].units.len() {
                    let ui = bins[a].units[k];
                    // Identical units were tried already.
                    if bins[a].units[..k]
                        .iter()
                        .any(|&x| units[x].line == units[ui].line)
                    {
                        k += 1;
                        continue;
                    }
                    // The parcel without the unit; its list is built only
                    // when the unit moves (most tries do not).
                    let rest_cost = if bins[a].units.len() == 1 {
                        Some((None, C::default(), Summary::default()))
                    } else {
                        let s =
                            Summary::of(units, bins[a].units.iter().copied().filter(|&x| x != ui));
                        self.best_box_seen(seen, &s).map(|(bx, c)| (bx, c, s))
                    };
                    let Some((rest_box, rest_c, rest_sum)) = rest_cost else {
                        k += 1;
                        continue;
                    };
                    let mut best: Option<(usize, Option<usize>, C, C)> = None;
                    for (b, bin) in bins.iter().enumerate() {
                        if b == a || bin.units.is_empty() {
                            continue;
                        }
                        let s = bin.sum.add(&units[ui]);
                        if let Some((bx, c)) = self.best_box_seen(seen, &s) {
                            let delta = c + rest_c - bin.cost - bins[a].cost;
                            if delta < C::default() && best.is_none_or(|(_, _, _, d)| delta < d) {
                                best = Some((b, bx, c, delta));
                            }
                        }
                    }
                    if let Some((b, bx, c, _)) = best {
                        let s = bins[b].sum.add(&units[ui]);
                        let target = &mut bins[b];
                        target.units.push(ui);
                        target.sum = s;
                        target.box_idx = bx;
                        target.cost = c;
                        let src = &mut bins[a];
                        src.units.retain(|x| *x != ui);
                        src.sum = rest_sum;
                        src.box_idx = rest_box;
                        src.cost = rest_c;
                        improved = true;
                    } else {
                        k += 1;
                    }
                }
            }
            bins.retain(|b| !b.units.is_empty());
            if !improved {
                break;
            }
        }
    }

    fn try_dissolve(
        &self,
        seen: &mut Seen<C>,
        units: &[Unit],
        bins: &[Bin<C>],
        a: usize,
    ) -> Option<Vec<Bin<C>>> {
        if bins.len() < 2 {
            return None;
        }
        // Each parcel's summary, box and cost as the units of `a` go in, and
        // where each went: the parcels' unit lists are copied only when the
        // dissolve pays (most do not).
        let mut trial: Vec<(Summary, Option<usize>, C, bool)> = bins
            .iter()
            .map(|b| (b.sum, b.box_idx, b.cost, b.units.is_empty()))
            .collect();
        trial[a].2 = C::default();
        trial[a].3 = true;
        let mut placed: Vec<(usize, usize)> = Vec::with_capacity(bins[a].units.len());
        for &ui in &bins[a].units {
            let mut best: Option<(usize, Option<usize>, C, C)> = None;
            for (b, &(sum, _, cost, empty)) in trial.iter().enumerate() {
                if empty {
                    continue;
                }
                let s = sum.add(&units[ui]);
                if let Some((bx, c)) = self.best_box_seen(seen, &s) {
                    let delta = c - cost;
                    if best.is_none_or(|(_, _, _, d)| delta < d) {
                        best = Some((b, bx, c, delta));
                    }
                }
            }
            let (b, bx, c, _) = best?;
            let t = &mut trial[b];
            t.0 = t.0.add(&units[ui]);
            t.1 = bx;
            t.2 = c;
            placed.push((ui, b));
        }
        let before: C = bins.iter().map(|b| b.cost).sum();
        let after: C = trial.iter().map(|t| t.2).sum();
        if after >= before {
            return None;
        }
        let mut next: Vec<Bin<C>> = bins.to_vec();
        next[a].units.clear();
        for (ui, b) in placed {
            next[b].units.push(ui);
        }
        for (bin, (sum, box_idx, cost, _)) in next.iter_mut().zip(trial) {
            bin.sum = sum;
            bin.box_idx = box_idx;
            bin.cost = cost;
        }
        next.remove(a);
        Some(next)
    }
}

/// Turns bins into parcels: boxed parcels first, in construction order, then own packaging.
fn finish<C>(units: &[Unit], bins: Vec<Bin<C>>) -> Vec<OpenParcel> {
    let mut out: Vec<OpenParcel> = Vec::with_capacity(bins.len());
    let mut own = Vec::new();
    for b in bins {
        let mut lines: Vec<usize> = b.units.iter().map(|&i| units[i].line).collect();
        lines.sort_unstable();
        let p = OpenParcel {
            box_idx: b.box_idx,
            max_dims_mm: b.sum.max_dims,
            contents_volume_mm3: b.sum.volume,
            contents_weight_g: b.sum.weight,
            units: lines,
        };
        if p.box_idx.is_some() {
            out.push(p);
        } else {
            own.push(p);
        }
    }
    out.extend(own);
    out
}

/// Outer dimensions (sorted) and gross weight of a packed parcel.
pub(super) fn outer(p: &OpenParcel, boxes: &[BoxSpec]) -> ([u32; 3], u32) {
    let (dims, tare) = match p.box_idx.and_then(|b| boxes.get(b)) {
        Some(b) => (b.outer_mm, b.tare_weight_g),
        None => (p.max_dims_mm, 0),
    };
    // Saturate rather than wrap: an absurd weight is then rejected by carrier limits.
    let weight_g = u32::try_from(p.contents_weight_g + u64::from(tare)).unwrap_or(u32::MAX);
    (dims, weight_g)
}

/// Turns an open parcel into the public description (outer dimensions, gross weight).
pub(super) fn to_parcel(
    p: &OpenParcel,
    boxes: &[BoxSpec],
    billable_weight_g: impl Fn(u32, [u32; 3]) -> u32,
) -> Parcel {
    let box_id = match p.box_idx.and_then(|b| boxes.get(b)) {
        Some(b) => b.id.clone(),
        None => OWN_PACKAGING.to_string(),
    };
    let (dims, weight_g) = outer(p, boxes);
    Parcel {
        box_id,
        weight_g,
        billable_weight_g: billable_weight_g(weight_g, dims),
        length_mm: dims[0],
        width_mm: dims[1],
        height_mm: dims[2],
    }
}

#[cfg(test)]
mod canonical_tests {
    use proptest::prelude::*;

    use super::{canonical, identical_runs, Partitions, Summary, Unit};

    fn unit(kind: u8, line: usize) -> Unit {
        let side = 100 + u32::from(kind) * 10;
        Unit {
            dims_mm: [side, side, 50],
            weight_g: 500 + u32::from(kind),
            volume_mm3: u128::from(side * side * 50),
            line,
        }
    }

    proptest! {
        /// Every subset has the summary of its canonical subset, which is
        /// never after it in the order the exact packing fills its table.
        #[test]
        fn canonical_subsets_pack_alike(kinds in prop::collection::vec(0u8..3, 1..10)) {
            let mut kinds = kinds;
            kinds.sort_unstable();
            let units: Vec<Unit> = kinds.iter().enumerate().map(|(i, &k)| unit(k, i)).collect();
            let runs = identical_runs(&units);
            let of = |mask: usize| Summary::of(&units, (0..units.len()).filter(|i| mask >> i & 1 == 1));
            let mut distinct = std::collections::BTreeSet::new();
            for mask in 1..(1usize << units.len()) {
                let canon = canonical(mask, &runs);
                distinct.insert(canon);
                prop_assert!(canon <= mask);
                prop_assert_eq!(canon.count_ones(), mask.count_ones());
                prop_assert_eq!(of(canon), of(mask));
                prop_assert_eq!(canonical(canon, &runs), canon);
            }
            // One per multiset of units: each kind taken 0..=count times.
            let multisets: usize = (0u8..3)
                .map(|k| kinds.iter().filter(|&&x| x == k).count() + 1)
                .product();
            prop_assert_eq!(distinct.len(), multisets - 1);
        }

        /// Over kinds of unit, the least partition costs what the least of
        /// every partition of the units themselves costs, whatever the
        /// price of a parcel (here one that is not additive, and refuses
        /// parcels past a weight, as boxes do).
        #[test]
        fn the_least_partition_of_kinds_is_the_least_of_every_partition(
            kinds in prop::collection::vec(0u8..4, 0..8),
            base in 0u64..2_000,
            limit in 1_000u64..4_000,
        ) {
            let mut kinds = kinds;
            kinds.sort_unstable();
            let units: Vec<Unit> = kinds.iter().enumerate().map(|(i, &k)| unit(k, i)).collect();
            let mut price = |s: &Summary| {
                (s.weight <= limit).then(|| base + s.weight * s.weight / 500 + u64::from(s.max_dims[0]))
            };
            // Every partition: the parcel holding the lowest unit left, then the rest.
            fn brute(
                units: &[Unit],
                left: usize,
                price: &mut impl FnMut(&Summary) -> Option<u64>,
            ) -> Option<u64> {
                if left == 0 {
                    return Some(0);
                }
                let low = left & left.wrapping_neg();
                let rest = left ^ low;
                let mut least = None;
                let mut sub = rest;
                loop {
                    let blk = sub | low;
                    let s = Summary::of(units, (0..units.len()).filter(|i| blk >> i & 1 == 1));
                    if let (Some(c), Some(r)) = (price(&s), brute(units, left ^ blk, price)) {
                        least = Some(least.map_or(c + r, |l: u64| l.min(c + r)));
                    }
                    if sub == 0 {
                        break;
                    }
                    sub = (sub - 1) & rest;
                }
                least
            }
            let expected = brute(&units, (1usize << units.len()) - 1, &mut price);
            match Partitions::of(&units) {
                Some(p) => prop_assert_eq!(p.least(&mut price), expected),
                // Only where the kinds make too many sub-multisets.
                None => {
                    let sets: usize = (0u8..4)
                        .map(|k| kinds.iter().filter(|&&x| x == k).count() + 1)
                        .product();
                    prop_assert!(sets > super::LEAST_PARTITION_MAX_SETS);
                }
            }
        }
    }
}

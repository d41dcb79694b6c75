//! A basket as the search sees it: per line, every way it can be sourced
//! (an option: units per supplier), and what no plan can supply.

use smallvec::SmallVec;

use super::{Candidate, LineInput, PlanError, PlanOptions, Rater, Short, ShortReason};
use crate::domain::catalog::ProductId;
use crate::domain::money::CostUnits;
use crate::domain::suppliers::SupplierId;

/// Money inside the search: ten-thousandths of the currency unit, like
/// `CostUnits`, wide enough for any basket.
pub(super) type Units = i64;

/// Ways to split one line beyond which its options are a heuristic sample
/// (and the plan is no longer proven optimal).
const SPLIT_OPTIONS_MAX: usize = 512;

/// Candidates beyond which a split line's sample takes single suppliers and
/// cheapest-first fills only, not every subset of suppliers.
const SPLIT_SUBSET_CANDIDATES_MAX: usize = 8;

/// Units of a line from one supplier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Part {
    /// Dense supplier index into [`Problem::suppliers`].
    pub sup: u32,
    /// Units.
    pub units: u32,
    /// Unit cost at that supplier.
    pub cost: CostUnits,
    /// When the supplier's data said so.
    pub as_of_s: u32,
}

/// One way to source a line. No parts: the line is left out (partial plans).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Opt {
    /// By dense supplier index.
    pub parts: SmallVec<[Part; 2]>,
    /// Goods cost of all parts.
    pub goods: Units,
    /// Units of the line it leaves out.
    pub missing: u32,
}

/// A line with at least one option.
#[derive(Debug, Clone)]
pub(super) struct PLine {
    /// Index of the basket line.
    pub line: usize,
    /// The product.
    pub product: ProductId,
    /// Every option, by (missing, goods, suppliers).
    pub options: Vec<Opt>,
    /// Units no option can supply for want of stock.
    pub stock_short: u32,
}

/// The whole basket.
#[derive(Debug, Clone)]
pub(super) struct Problem {
    /// The basket as given, for re-planning with other options.
    pub inputs: Vec<LineInput>,
    /// Suppliers any option uses, ascending; options name them by index.
    pub suppliers: Vec<SupplierId>,
    /// Days before each supplier's carrier collects.
    pub processing_days: Vec<u32>,
    /// Lines with options, in basket order.
    pub lines: Vec<PLine>,
    /// Per dense supplier: the lines (indices into `lines`) it can serve.
    pub sup_lines: Vec<Vec<u32>>,
    /// Lines no option can touch (unknown SKU, no stock, excluded).
    pub shorts: Vec<Short>,
    /// Every way to source every line is among the options (false when a
    /// split line had too many ways and got a sample).
    pub exhaustive: bool,
}

impl Problem {
    /// Builds the options. Fails when all-or-nothing is asked and some line
    /// cannot be had in full from the stock there is.
    pub fn new(
        inputs: &[LineInput],
        options: &PlanOptions,
        rater: &dyn Rater,
    ) -> Result<Self, PlanError> {
        let mut shorts = Vec::new();
        let mut exhaustive = true;
        // Lines with their ways before suppliers get dense indices.
        let mut raw: Vec<RawLine> = Vec::new();
        for (i, line) in inputs.iter().enumerate() {
            let short = |missing: u32, reason| Short {
                line: i,
                missing,
                reason,
            };
            let Some(product) = line.product else {
                shorts.push(short(line.qty, ShortReason::UnknownSku));
                continue;
            };
            if line.qty == 0 {
                continue;
            }
            let mut cands: Vec<Candidate> = line
                .candidates
                .iter()
                .copied()
                .filter(|c| c.available > 0)
                .collect();
            if cands.is_empty() {
                let reason = if line.excluded_stock {
                    ShortReason::Excluded
                } else {
                    ShortReason::OutOfStock
                };
                shorts.push(short(line.qty, reason));
                continue;
            }
            cands.sort_by_key(|c| (c.cost, c.supplier));
            let ways = if options.allow_split_lines {
                let (ways, complete) = split_ways(line.qty, &cands, options.allow_partial);
                exhaustive &= complete;
                ways
            } else {
                whole_ways(line.qty, &cands, options.allow_partial)
            };
            let most: u64 = if options.allow_split_lines {
                cands.iter().map(|c| u64::from(c.available)).sum()
            } else {
                cands
                    .iter()
                    .map(|c| u64::from(c.available))
                    .max()
                    .unwrap_or(0)
            };
            let stock_short = line.qty - most.min(u64::from(line.qty)) as u32;
            if stock_short > 0 && !options.allow_partial {
                shorts.push(short(stock_short, ShortReason::OutOfStock));
                continue;
            }
            raw.push((i, product, ways, stock_short));
        }
        if !shorts.is_empty() && !options.allow_partial {
            shorts.sort_by_key(|s| s.line);
            return Err(PlanError::Unfulfillable(shorts));
        }

        let mut suppliers: Vec<SupplierId> = raw
            .iter()
            .flat_map(|r| r.2.iter().flatten().map(|p| p.0))
            .collect();
        suppliers.sort_unstable();
        suppliers.dedup();
        let dense = |s: SupplierId| suppliers.binary_search(&s).unwrap_or(0) as u32;
        let mut lines = Vec::with_capacity(raw.len());
        let mut sup_lines = vec![Vec::new(); suppliers.len()];
        for (line, product, ways, stock_short) in raw {
            let input = &inputs[line];
            let cand = |s: SupplierId| input.candidates.iter().find(|c| c.supplier == s);
            let mut opts: Vec<Opt> = ways
                .into_iter()
                .map(|way| {
                    let mut parts: SmallVec<[Part; 2]> = way
                        .iter()
                        .filter(|p| p.1 > 0)
                        .map(|&(s, units)| {
                            let c = cand(s);
                            Part {
                                sup: dense(s),
                                units,
                                cost: c.map_or(0, |c| c.cost),
                                as_of_s: c.map_or(0, |c| c.as_of_s),
                            }
                        })
                        .collect();
                    parts.sort_by_key(|p| p.sup);
                    let taken: u32 = parts.iter().map(|p| p.units).sum();
                    Opt {
                        goods: parts
                            .iter()
                            .map(|p| Units::from(p.cost) * Units::from(p.units))
                            .sum(),
                        missing: input.qty - taken.min(input.qty),
                        parts,
                    }
                })
                .collect();
            opts.sort_by(|a, b| {
                (a.missing, a.goods)
                    .cmp(&(b.missing, b.goods))
                    .then_with(|| sups_of(a).cmp(sups_of(b)))
                    .then_with(|| units_of(a).cmp(units_of(b)))
            });
            opts.dedup();
            let mut sups: Vec<u32> = opts
                .iter()
                .flat_map(|o| o.parts.iter().map(|p| p.sup))
                .collect();
            sups.sort_unstable();
            sups.dedup();
            for &k in &sups {
                sup_lines[k as usize].push(lines.len() as u32);
            }
            lines.push(PLine {
                line,
                product,
                options: opts,
                stock_short,
            });
        }
        let processing_days = suppliers
            .iter()
            .map(|&s| rater.processing_days(s))
            .collect();
        shorts.sort_by_key(|s| (s.line, s.reason as u8));
        Ok(Self {
            inputs: inputs.to_vec(),
            suppliers,
            processing_days,
            lines,
            sup_lines,
            shorts,
            exhaustive,
        })
    }
}

/// One way to source a line as (supplier, units) parts: inline, as ways
/// have one part unless lines split (a basket builds one per candidate).
type Way = SmallVec<[(SupplierId, u32); 2]>;

/// (basket line, product, ways, units short of stock).
type RawLine = (usize, ProductId, Vec<Way>, u32);

fn sups_of(o: &Opt) -> impl Iterator<Item = u32> + '_ {
    o.parts.iter().map(|p| p.sup)
}

fn units_of(o: &Opt) -> impl Iterator<Item = u32> + '_ {
    o.parts.iter().map(|p| p.units)
}

/// One supplier per line: each candidate with all it can give (all-or-nothing:
/// only those with enough), and leaving the line out when partial plans may.
fn whole_ways(qty: u32, cands: &[Candidate], partial: bool) -> Vec<Way> {
    let mut ways: Vec<Way> = cands
        .iter()
        .filter(|c| partial || c.available >= qty)
        .map(|c| smallvec::smallvec![(c.supplier, c.available.min(qty))])
        .collect();
    if partial {
        ways.push(Way::new());
    }
    ways
}

/// Units per supplier, any split. Every split when there are at most
/// `SPLIT_OPTIONS_MAX` of them (and `true`), else a sample: each single
/// supplier, and cheapest-first fills over subsets of the suppliers.
/// `cands` come sorted by cost.
fn split_ways(qty: u32, cands: &[Candidate], partial: bool) -> (Vec<Way>, bool) {
    let total: u64 = cands.iter().map(|c| u64::from(c.available)).sum();
    let most = u32::try_from(total.min(u64::from(qty))).unwrap_or(qty);
    let totals: Vec<u32> = if partial {
        (1..=most).rev().collect()
    } else {
        vec![qty]
    };
    let count: usize = totals
        .iter()
        .map(|&t| compositions(t, cands, SPLIT_OPTIONS_MAX + 1))
        .fold(0usize, |a, n| a.saturating_add(n));
    let mut ways = Vec::new();
    let complete = count <= SPLIT_OPTIONS_MAX;
    if complete {
        let mut current = vec![0u32; cands.len()];
        for &t in &totals {
            enumerate(t, 0, cands, &mut current, &mut ways);
        }
    } else {
        let n = cands.len();
        let mut subsets: Vec<Vec<usize>> = (0..n).map(|i| vec![i]).collect();
        if n <= SPLIT_SUBSET_CANDIDATES_MAX {
            subsets.extend((1u32..(1 << n)).map(|m| (0..n).filter(|i| m >> i & 1 == 1).collect()));
        } else {
            subsets.push((0..n).collect());
        }
        for set in subsets {
            let mut left = most;
            let mut way = Way::new();
            for &i in &set {
                let take = cands[i].available.min(left);
                if take > 0 {
                    way.push((cands[i].supplier, take));
                }
                left -= take;
            }
            if left == 0 || partial {
                way.sort_unstable();
                ways.push(way);
            }
        }
    }
    if partial {
        ways.push(Way::new());
    }
    (ways, complete)
}

/// Ways to pick `t` units from `cands` (each at most its availability),
/// counted up to `cap`.
fn compositions(t: u32, cands: &[Candidate], cap: usize) -> usize {
    // ways[u]: ways to make u units from the candidates seen so far.
    let t = t as usize;
    let mut ways = vec![0usize; t + 1];
    ways[0] = 1;
    for c in cands {
        let a = c.available as usize;
        let mut next = vec![0usize; t + 1];
        // Sliding window sum of ways[u - a ..= u].
        let mut window = 0usize;
        for u in 0..=t {
            window = window.saturating_add(ways[u]);
            if u > a {
                window -= ways[u - a - 1];
            }
            next[u] = window.min(cap);
        }
        ways = next;
    }
    ways[t]
}

fn enumerate(left: u32, i: usize, cands: &[Candidate], current: &mut Vec<u32>, out: &mut Vec<Way>) {
    if i == cands.len() {
        if left == 0 {
            let mut way: Way = cands
                .iter()
                .zip(current.iter())
                .filter(|(_, &u)| u > 0)
                .map(|(c, &u)| (c.supplier, u))
                .collect();
            way.sort_unstable();
            out.push(way);
        }
        return;
    }
    let rest: u64 = cands[i + 1..].iter().map(|c| u64::from(c.available)).sum();
    let low = u64::from(left).saturating_sub(rest) as u32;
    for u in (low..=cands[i].available.min(left)).rev() {
        current[i] = u;
        enumerate(left - u, i + 1, cands, current, out);
    }
    current[i] = 0;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cands(avail: &[u32]) -> Vec<Candidate> {
        avail
            .iter()
            .enumerate()
            .map(|(i, &a)| Candidate {
                supplier: i as SupplierId,
                available: a,
                cost: 100 + i as u32,
                as_of_s: 0,
            })
            .collect()
    }

    #[test]
    fn compositions_count_and_enumeration_agree() {
        let c = cands(&[2, 3, 1]);
        for t in 0..=6 {
            let mut out = Vec::new();
            enumerate(t, 0, &c, &mut vec![0; 3], &mut out);
            assert_eq!(out.len(), compositions(t, &c, usize::MAX), "t = {t}");
            for way in &out {
                assert_eq!(way.iter().map(|p| p.1).sum::<u32>(), t);
            }
        }
        assert_eq!(compositions(7, &c, usize::MAX), 0);
    }

    #[test]
    fn too_many_splits_give_a_sample_that_still_covers_the_line() {
        let c = cands(&[100, 100, 100, 100]);
        let (ways, complete) = split_ways(150, &c, false);
        assert!(!complete);
        assert!(!ways.is_empty());
        for way in &ways {
            assert_eq!(way.iter().map(|p| p.1).sum::<u32>(), 150);
        }
    }
}

//! Brute force for small baskets: every way to source every line, each
//! priced exactly through the rater. Shares nothing with the search but the
//! `Rater`, the service choice and the published scoring rule, so the
//! property tests compare two independent answers.

use std::collections::HashMap;

use rust_decimal::Decimal;

use super::{choose_rate, LineInput, Objective, PlanOptions, Rater};
use crate::domain::catalog::ProductId;
use crate::domain::suppliers::SupplierId;

/// The best plan's measures: (missing units, primary, total cost, shipments).
pub type OracleScore = (u32, u32, Decimal, u32);

/// Ratings by (supplier, item list).
type Memo = HashMap<(SupplierId, Vec<(ProductId, u32)>), Option<super::RatedShipment>>;

/// Every way to source one line: (supplier, units) parts.
fn ways(line: &LineInput, options: &PlanOptions) -> Vec<Vec<(SupplierId, u32)>> {
    if line.product.is_none() || line.qty == 0 {
        return vec![Vec::new()];
    }
    let cands: Vec<_> = line.candidates.iter().filter(|c| c.available > 0).collect();
    let mut out: Vec<Vec<(SupplierId, u32)>> = Vec::new();
    if options.allow_split_lines {
        fn rec(
            i: usize,
            cands: &[&super::Candidate],
            left: u32,
            cur: &mut Vec<(SupplierId, u32)>,
            out: &mut Vec<Vec<(SupplierId, u32)>>,
        ) {
            if i == cands.len() {
                out.push(cur.clone());
                return;
            }
            for u in 0..=cands[i].available.min(left) {
                if u > 0 {
                    cur.push((cands[i].supplier, u));
                }
                rec(i + 1, cands, left - u, cur, out);
                if u > 0 {
                    cur.pop();
                }
            }
        }
        rec(0, &cands, line.qty, &mut Vec::new(), &mut out);
    } else {
        out.push(Vec::new());
        for c in &cands {
            out.push(vec![(c.supplier, c.available.min(line.qty))]);
        }
    }
    // All-or-nothing keeps only ways that supply the whole line, unless no
    // way can (then the line is short whatever the plan).
    let most = out
        .iter()
        .map(|w| w.iter().map(|p| p.1).sum::<u32>())
        .max()
        .unwrap_or(0);
    if !options.allow_partial {
        out.retain(|w| w.iter().map(|p| p.1).sum::<u32>() == most);
    }
    out
}

/// Combinations the brute force would try.
pub fn combinations(lines: &[LineInput], options: &PlanOptions) -> u64 {
    lines
        .iter()
        .map(|l| ways(l, options).len() as u64)
        .fold(1u64, |a, n| a.saturating_mul(n))
}

/// The best score of any feasible plan, or `None` when there is none.
/// All-or-nothing with a line short of stock has no plan.
pub fn best(lines: &[LineInput], options: &PlanOptions, rater: &dyn Rater) -> Option<OracleScore> {
    let per_line: Vec<Vec<Vec<(SupplierId, u32)>>> =
        lines.iter().map(|l| ways(l, options)).collect();
    if !options.allow_partial {
        for (l, w) in lines.iter().zip(&per_line) {
            let most = w
                .iter()
                .map(|w| w.iter().map(|p| p.1).sum::<u32>())
                .max()
                .unwrap_or(0);
            if l.product.is_none() || most < l.qty {
                return None;
            }
        }
    }
    let within = match options.arrive_within_days {
        0 => u32::MAX,
        d => d,
    };
    let mut memo: Memo = HashMap::new();
    let mut best: Option<OracleScore> = None;
    let mut pick = vec![0usize; lines.len()];
    loop {
        if let Some(s) = score(lines, &per_line, &pick, options, rater, within, &mut memo) {
            if best.as_ref().is_none_or(|b| s < *b) {
                best = Some(s);
            }
        }
        // Next combination, odometer style.
        let mut i = 0;
        loop {
            if i == pick.len() {
                return best;
            }
            pick[i] += 1;
            if pick[i] < per_line[i].len() {
                break;
            }
            pick[i] = 0;
            i += 1;
        }
    }
}

fn score(
    lines: &[LineInput],
    per_line: &[Vec<Vec<(SupplierId, u32)>>],
    pick: &[usize],
    options: &PlanOptions,
    rater: &dyn Rater,
    within: u32,
    memo: &mut Memo,
) -> Option<OracleScore> {
    let mut missing = 0;
    let mut goods = Decimal::ZERO;
    let mut by_sup: HashMap<SupplierId, Vec<(ProductId, u32)>> = HashMap::new();
    for (l, line) in lines.iter().enumerate() {
        let way = &per_line[l][pick[l]];
        let taken: u32 = way.iter().map(|p| p.1).sum();
        missing += line.qty - taken;
        for &(s, u) in way {
            let c = line.candidates.iter().find(|c| c.supplier == s)?;
            goods += Decimal::new(i64::from(c.cost), 4) * Decimal::from(u);
            let product = line.product?;
            let items = by_sup.entry(s).or_default();
            match items.iter_mut().find(|(p, _)| *p == product) {
                Some((_, q)) => *q += u,
                None => items.push((product, u)),
            }
        }
    }
    if options.max_shipments > 0 && by_sup.len() > options.max_shipments as usize {
        return None;
    }
    let mut rated = Vec::new();
    for (s, mut items) in by_sup {
        items.sort_unstable();
        let r = memo
            .entry((s, items.clone()))
            .or_insert_with(|| rater.rate(s, &items).ok())
            .clone()?;
        let processing = rater.processing_days(s);
        choose_rate(&r.rates, Objective::Cheapest, processing, within)?;
        rated.push((processing, r));
    }
    let arrival = |(p, r): &(u32, super::RatedShipment)| {
        choose_rate(&r.rates, Objective::Fastest, *p, within).map(|x| p + x.transit_days)
    };
    let latest = rated.iter().map(arrival).max().flatten().unwrap_or(0);
    let by = if options.objective == Objective::Fastest {
        latest
    } else {
        within
    };
    let freight: Decimal = rated
        .iter()
        .map(|(p, r)| choose_rate(&r.rates, Objective::Cheapest, *p, by).map(|x| x.amount))
        .sum::<Option<Decimal>>()?;
    let shipments = rated.len() as u32;
    let primary = match options.objective {
        Objective::Cheapest => 0,
        Objective::Fastest => latest,
        Objective::FewestShipments => shipments,
    };
    Some((missing, primary, goods + freight, shipments))
}

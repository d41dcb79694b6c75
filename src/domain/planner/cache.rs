//! What the search learns about freight, kept across objectives: ratings per
//! (supplier, item list), floors per (supplier, weight), and the pairings of
//! line and supplier that cannot ship at all.

use std::sync::Arc;

use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use rustc_hash::FxHashMap;

use super::problem::{Problem, Units};
use super::{choose_rate, Objective, Rater};
use crate::domain::catalog::ProductId;
use crate::domain::freight::RatedShipment;

/// A rated shipment and what the search compares of it.
#[derive(Debug, Clone)]
pub(super) struct Rated {
    /// The rating itself.
    pub shipment: Arc<RatedShipment>,
    /// The cheapest service that arrives in time.
    pub cheapest: Units,
    /// The earliest arrival (processing + transit days) in time.
    pub fastest_days: u32,
}

/// A floor in search units: least amount, earliest arrival.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct UnitFloor {
    pub amount: Units,
    pub arrival_days: u32,
}

/// A shipment: dense supplier and canonical item list.
type ShipmentKey = (u32, Vec<(ProductId, u32)>);

/// Memoised freight for one basket.
pub(super) struct Cache {
    rated: FxHashMap<ShipmentKey, Option<Rated>>,
    floors: FxHashMap<(u32, u64), Option<UnitFloor>>,
    /// `banned[line * suppliers + sup]`: that line can never ship from that
    /// supplier (see the `Rater` contract).
    banned: Vec<bool>,
    suppliers: usize,
    /// Latest arrival allowed (processing + transit); `u32::MAX` for none.
    within_days: u32,
    /// Calls made to the rater.
    pub rated_calls: u64,
    /// Ratings answered from the memo.
    pub rated_hits: u64,
}

/// Exact conversion of an amount to search units, rounded down so that a
/// floor stays a floor.
pub(super) fn to_units(d: Decimal) -> Units {
    (d * Decimal::from(10_000))
        .floor()
        .to_i64()
        .unwrap_or(Units::MAX / 4)
}

impl Cache {
    pub fn new(problem: &Problem, arrive_within_days: u32) -> Self {
        Self {
            rated: FxHashMap::default(),
            floors: FxHashMap::default(),
            banned: vec![false; problem.lines.len() * problem.suppliers.len()],
            suppliers: problem.suppliers.len(),
            within_days: match arrive_within_days {
                0 => u32::MAX,
                d => d,
            },
            rated_calls: 0,
            rated_hits: 0,
        }
    }

    /// Latest arrival allowed.
    pub fn within_days(&self) -> u32 {
        self.within_days
    }

    /// The rating of `items` (sorted by product) from dense supplier `k`;
    /// `None` when no service can carry it in time.
    pub fn rate(
        &mut self,
        problem: &Problem,
        rater: &dyn Rater,
        k: u32,
        items: Vec<(ProductId, u32)>,
    ) -> Option<Rated> {
        let key = (k, items);
        if let Some(hit) = self.rated.get(&key) {
            self.rated_hits += 1;
            return hit.clone();
        }
        self.rated_calls += 1;
        let supplier = problem.suppliers[k as usize];
        let processing = problem.processing_days[k as usize];
        let rated = rater.rate(supplier, &key.1).ok().and_then(|r| {
            let cheapest =
                choose_rate(&r.rates, Objective::Cheapest, processing, self.within_days)?;
            let fastest = choose_rate(&r.rates, Objective::Fastest, processing, self.within_days)?;
            Some(Rated {
                cheapest: to_units(cheapest.amount),
                fastest_days: processing + fastest.transit_days,
                shipment: Arc::new(r),
            })
        });
        self.rated.insert(key, rated.clone());
        rated
    }

    /// The floor of any shipment from `k` whose goods weigh at least `weight_g`.
    pub fn floor(
        &mut self,
        problem: &Problem,
        rater: &dyn Rater,
        k: u32,
        weight_g: u64,
    ) -> Option<UnitFloor> {
        if let Some(hit) = self.floors.get(&(k, weight_g)) {
            return *hit;
        }
        let supplier = problem.suppliers[k as usize];
        let f = rater.floor(supplier, weight_g).map(|f| UnitFloor {
            amount: to_units(f.amount),
            arrival_days: problem.processing_days[k as usize] + f.transit_days,
        });
        self.floors.insert((k, weight_g), f);
        f
    }

    /// Whether plannable line `line` can never ship from `k`.
    pub fn banned(&self, line: usize, k: u32) -> bool {
        self.banned[line * self.suppliers + k as usize]
    }

    /// Records that plannable line `line` can never ship from `k`.
    pub fn ban(&mut self, line: usize, k: u32) {
        self.banned[line * self.suppliers + k as usize] = true;
    }

    /// Whether any part of option `o` of `line` is banned.
    pub fn option_banned(&self, problem: &Problem, line: usize, o: usize) -> bool {
        problem.lines[line].options[o]
            .parts
            .iter()
            .any(|p| self.banned(line, p.sup))
    }

    /// Bans every line from suppliers that cannot ship anything (no floor).
    pub fn ban_unserved(&mut self, problem: &Problem, rater: &dyn Rater) {
        for k in 0..problem.suppliers.len() as u32 {
            if self.floor(problem, rater, k, 0).is_none() {
                for &l in &problem.sup_lines[k as usize] {
                    self.ban(l as usize, k);
                }
            }
        }
    }

    /// After a shipment of `lines` from `k` failed to rate: bans each line
    /// whose single unit fails alone too.
    pub fn learn(&mut self, problem: &Problem, rater: &dyn Rater, k: u32, lines: &[usize]) {
        for &l in lines {
            let product = problem.lines[l].product;
            if self.rate(problem, rater, k, vec![(product, 1)]).is_none() {
                self.ban(l, k);
            }
        }
    }
}

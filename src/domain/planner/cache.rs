//! What the search learns about freight, kept across objectives: ratings per
//! (supplier, item list), floors per (supplier, profile), unit profiles per
//! (line, supplier), and the pairings of line and supplier that cannot ship
//! at all.

use std::sync::Arc;

use rustc_hash::FxHashMap;
use smallvec::SmallVec;

use super::problem::{Problem, Units};
use super::{LinearFloor, Rater, ShipmentProfile};
use crate::domain::catalog::ProductId;
use crate::domain::freight::RatedShipment;
use crate::domain::money::to_units;

/// A rated shipment and what the search compares of it.
#[derive(Debug, Clone)]
pub(super) struct Rated {
    /// The rating itself.
    pub shipment: Arc<RatedShipment>,
    /// The cheapest service that arrives in time.
    pub cheapest: Units,
    /// The earliest arrival (processing + transit days) in time.
    pub fastest_days: u32,
    /// Its staircase in [`Cache::cheapest_by`].
    pub stair: u32,
}

/// The cheapest service of a shipment by each arrival day: (arrival days,
/// amount) with arrival ascending and amount strictly falling, services in
/// time only. Lets FASTEST price "the cheapest service arriving by the latest
/// shipment" in integers, for bounds and complete plans alike.
type Stair = SmallVec<[(u32, Units); 4]>;

/// A floor in search units: least amount, earliest arrival.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct UnitFloor {
    pub amount: Units,
    pub arrival_days: u32,
}

/// A shipment's canonical item list: units per product, by product. Inline
/// up to a few products, as most shipments are: the search builds one for
/// every memo lookup.
pub(super) type Items = SmallVec<[(ProductId, u32); 6]>;

/// A shipment: dense supplier and canonical item list.
type ShipmentKey = (u32, Items);

/// Memoised freight for one basket.
pub(super) struct Cache {
    rated: FxHashMap<ShipmentKey, Option<Rated>>,
    /// Staircases of the rated shipments, by [`Rated::stair`].
    stairs: Vec<Stair>,
    floors: FxHashMap<(u32, ShipmentProfile), Option<UnitFloor>>,
    /// Packed floors ([`Rater::packed_floor`]) per shipment, where known.
    packed: FxHashMap<ShipmentKey, Units>,
    /// Floors over the services arriving by a day, per (supplier, profile,
    /// arrival days).
    floors_by: FxHashMap<(u32, ShipmentProfile, u32), Option<Units>>,
    /// `profiles[line * suppliers + sup]`: one unit's profile, once asked.
    profiles: Vec<Option<Option<ShipmentProfile>>>,
    /// Per supplier: its linear floor, once asked.
    linear: Vec<Option<Option<LinearFloor>>>,
    /// `banned[line * suppliers + sup]`: that line can never ship from that
    /// supplier (see the `Rater` contract).
    banned: Vec<bool>,
    suppliers: usize,
    /// Latest arrival allowed (processing + transit); `u32::MAX` for none.
    within_days: u32,
    /// Work so far.
    pub stats: SearchStats,
}

/// What planning a basket cost so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SearchStats {
    /// Search nodes visited.
    pub nodes: u64,
    /// Shipments rated (calls to the rater).
    pub ratings: u64,
    /// Ratings answered from the memo.
    pub memo_hits: u64,
    /// Nodes left out as a state already searched at no greater cost.
    pub states_cut: u64,
}

/// The staircase (see [`Stair`]) of rates for a supplier that needs
/// `processing` days, services arriving after `within_days` left out.
fn stair_of(
    rates: &[crate::domain::freight::ServiceRate],
    processing: u32,
    within_days: u32,
) -> Stair {
    let mut by_day: SmallVec<[(u32, Units); 12]> = rates
        .iter()
        .map(|r| {
            (
                processing.saturating_add(r.transit_days),
                to_units(r.amount),
            )
        })
        .filter(|(d, _)| *d <= within_days)
        .collect();
    by_day.sort_unstable();
    let mut stair = Stair::new();
    for (d, amount) in by_day {
        if stair.last().is_none_or(|(_, a)| amount < *a) {
            stair.push((d, amount));
        }
    }
    stair
}

/// The last step of `stair` arriving within `days`.
fn price_by(stair: &Stair, days: u32) -> Option<Units> {
    stair
        .iter()
        .take_while(|(d, _)| *d <= days)
        .last()
        .map(|(_, amount)| *amount)
}

impl Cache {
    pub fn new(problem: &Problem, arrive_within_days: u32) -> Self {
        // Sized for what a small basket learns, so that the maps do not
        // grow (rehashing each time) during every search.
        let expected = 4 * problem.lines.len() + problem.suppliers.len();
        Self {
            rated: FxHashMap::with_capacity_and_hasher(expected, Default::default()),
            stairs: Vec::with_capacity(expected),
            floors: FxHashMap::with_capacity_and_hasher(expected, Default::default()),
            floors_by: FxHashMap::default(),
            packed: FxHashMap::default(),
            banned: vec![false; problem.lines.len() * problem.suppliers.len()],
            profiles: vec![None; problem.lines.len() * problem.suppliers.len()],
            linear: vec![None; problem.suppliers.len()],
            suppliers: problem.suppliers.len(),
            within_days: match arrive_within_days {
                0 => u32::MAX,
                d => d,
            },
            stats: SearchStats::default(),
        }
    }

    /// Latest arrival allowed.
    pub fn within_days(&self) -> u32 {
        self.within_days
    }

    /// The packed floor of `items` (sorted by product) from dense supplier
    /// `k`: at most the rating of any shipment from it holding them. `None`
    /// when the rater cannot tell, or finds it below `reach`; only answers
    /// are kept, as a later call may reach lower.
    pub fn packed(
        &mut self,
        problem: &Problem,
        rater: &dyn Rater,
        k: u32,
        items: Items,
        reach: Units,
    ) -> Option<Units> {
        let key = (k, items);
        if let Some(hit) = self.packed.get(&key) {
            return Some(*hit);
        }
        let supplier = problem.suppliers[k as usize];
        let packed = rater.packed_floor(supplier, &key.1, reach)?;
        self.packed.insert(key, packed);
        Some(packed)
    }

    /// The rating of `items` (sorted by product) from dense supplier `k`;
    /// `None` when no service can carry it in time.
    pub fn rate(
        &mut self,
        problem: &Problem,
        rater: &dyn Rater,
        k: u32,
        items: Items,
    ) -> Option<Rated> {
        let key = (k, items);
        if let Some(hit) = self.rated.get(&key) {
            self.stats.memo_hits += 1;
            return hit.clone();
        }
        self.stats.ratings += 1;
        let supplier = problem.suppliers[k as usize];
        let processing = problem.processing_days[k as usize];
        let rated = rater.rate(supplier, &key.1).ok().and_then(|r| {
            // The staircase's first step is the earliest arrival in time and
            // its last the cheapest service in time; none: nothing in time.
            let steps = stair_of(&r.rates, processing, self.within_days);
            let (&(fastest_days, _), &(_, cheapest)) = (steps.first()?, steps.last()?);
            let stair = self.stairs.len() as u32;
            self.stairs.push(steps);
            Some(Rated {
                cheapest,
                fastest_days,
                stair,
                shipment: Arc::new(r),
            })
        });
        self.rated.insert(key, rated.clone());
        rated
    }

    /// The rating of `items` from `k` if one was made: `Some(None)` when it
    /// could not ship, `None` when it was never rated.
    pub fn known(&self, k: u32, items: Items) -> Option<Option<&Rated>> {
        self.rated.get(&(k, items)).map(Option::as_ref)
    }

    /// What the cheapest service arriving within `days` (processing and
    /// transit) costs for the shipment rated with staircase `stair`; `None`
    /// when none arrives by then. The same amount as choosing that service
    /// from the rates (`choose_rate`) and converting it, without decimals.
    pub fn cheapest_by(&self, stair: u32, days: u32) -> Option<Units> {
        price_by(&self.stairs[stair as usize], days)
    }

    /// The arrival days (processing and transit) at which the price of the
    /// shipment rated with staircase `stair` changes, earliest first.
    pub fn stair_days(&self, stair: u32) -> impl Iterator<Item = u32> + '_ {
        self.stairs[stair as usize].iter().map(|&(d, _)| d)
    }

    /// The floor of any shipment from `k` whose profile is at least `profile`.
    pub fn floor(
        &mut self,
        problem: &Problem,
        rater: &dyn Rater,
        k: u32,
        profile: &ShipmentProfile,
    ) -> Option<UnitFloor> {
        if let Some(hit) = self.floors.get(&(k, *profile)) {
            return *hit;
        }
        let supplier = problem.suppliers[k as usize];
        let f = rater.floor(supplier, profile).map(|f| UnitFloor {
            amount: f.amount,
            arrival_days: problem.processing_days[k as usize] + f.transit_days,
        });
        self.floors.insert((k, *profile), f);
        f
    }

    /// The floor of any shipment from `k` whose profile is at least
    /// `profile` on the services arriving within `days` (processing and
    /// transit); `None` when none does.
    pub fn floor_by(
        &mut self,
        problem: &Problem,
        rater: &dyn Rater,
        k: u32,
        profile: &ShipmentProfile,
        days: u32,
    ) -> Option<Units> {
        if let Some(hit) = self.floors_by.get(&(k, *profile, days)) {
            return *hit;
        }
        let f = days
            .checked_sub(problem.processing_days[k as usize])
            .and_then(|transit| {
                rater.floor_within(problem.suppliers[k as usize], profile, transit)
            });
        self.floors_by.insert((k, *profile, days), f);
        f
    }

    /// The profile of one unit of plannable line `line` from `k`; `None`
    /// (and the pairing banned) when it cannot ship from there.
    pub fn unit_profile(
        &mut self,
        problem: &Problem,
        rater: &dyn Rater,
        line: usize,
        k: u32,
    ) -> Option<ShipmentProfile> {
        let i = line * self.suppliers + k as usize;
        if let Some(known) = self.profiles[i] {
            return known;
        }
        let p = rater.unit_profile(problem.suppliers[k as usize], problem.lines[line].product);
        self.profiles[i] = Some(p);
        if p.is_none() {
            self.banned[i] = true;
        }
        p
    }

    /// The profile [`Cache::unit_profile`] found for `line` from `k`, if it
    /// found one (it is asked for every usable part before a search).
    pub fn known_unit_profile(&self, line: usize, k: u32) -> Option<&ShipmentProfile> {
        self.profiles[line * self.suppliers + k as usize]
            .as_ref()
            .and_then(Option::as_ref)
    }

    /// The linear floor of shipments from `k`, made tight for a shipment
    /// of every line it could serve.
    pub fn linear(&mut self, problem: &Problem, rater: &dyn Rater, k: u32) -> Option<LinearFloor> {
        if let Some(known) = self.linear[k as usize] {
            return known;
        }
        let mut reference = ShipmentProfile::default();
        for &l in &problem.sup_lines[k as usize] {
            if let Some(u) = self.unit_profile(problem, rater, l as usize, k) {
                let qty = problem.inputs[problem.lines[l as usize].line].qty;
                reference.add(&u, qty);
            }
        }
        let f = rater.linear_floor(problem.suppliers[k as usize], &reference);
        self.linear[k as usize] = Some(f);
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

    /// Bans the pairings that cannot ship at all: suppliers with no floor
    /// (no service on their lane) and units with no profile.
    pub fn ban_unserved(&mut self, problem: &Problem, rater: &dyn Rater) {
        for k in 0..problem.suppliers.len() as u32 {
            let served = self
                .floor(problem, rater, k, &ShipmentProfile::default())
                .is_some();
            for &l in &problem.sup_lines[k as usize] {
                if !served {
                    self.ban(l as usize, k);
                } else {
                    self.unit_profile(problem, rater, l as usize, k);
                }
            }
        }
    }

    /// After a shipment of `lines` from `k` failed to rate: bans each line
    /// whose single unit fails alone too.
    pub fn learn(&mut self, problem: &Problem, rater: &dyn Rater, k: u32, lines: &[usize]) {
        for &l in lines {
            let product = problem.lines[l].product;
            let one: Items = smallvec::smallvec![(product, 1)];
            if self.rate(problem, rater, k, one).is_none() {
                self.ban(l, k);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use proptest::prelude::*;
    use rust_decimal::Decimal;

    use super::{price_by, stair_of, to_units};
    use crate::domain::freight::ServiceRate;
    use crate::domain::planner::{choose_rate, Objective};

    fn rates(spec: &[(u32, i64)]) -> Vec<ServiceRate> {
        spec.iter()
            .enumerate()
            .map(|(i, &(transit_days, cents))| ServiceRate {
                carrier: Arc::from("C"),
                service: Arc::from(format!("S{i}").as_str()),
                amount: Decimal::new(cents, 2),
                transit_days,
            })
            .collect()
    }

    proptest! {
        /// The staircase prices every arrival day as choosing the cheapest
        /// service by that day from the rates does.
        #[test]
        fn staircase_agrees_with_choosing_the_service(
            spec in prop::collection::vec((0u32..8, 0i64..20_000), 0..10),
            processing in 0u32..4,
            within in prop_oneof![Just(u32::MAX), 0u32..12],
        ) {
            let rates = rates(&spec);
            let stair = stair_of(&rates, processing, within);
            for days in 0..14 {
                let by = days.min(within);
                let chosen = choose_rate(&rates, Objective::Cheapest, processing, by)
                    .map(|r| to_units(r.amount));
                prop_assert_eq!(price_by(&stair, by), chosen, "arriving within {} days", by);
            }
        }
    }
}

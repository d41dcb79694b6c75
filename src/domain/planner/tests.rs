//! Planner tests: behaviour on hand-made baskets, and property tests against
//! the brute-force oracle with three kinds of freight (weight breaks,
//! freight that falls as well as rises with weight, and the real SAMPLE
//! carrier tables).

use std::collections::HashMap;
use std::time::Duration;

use proptest::prelude::*;

use super::breaks::{Break, BreakRater, BreakTariff};
use super::*;
use crate::domain::freight::{Endpoint, Freight, Item, ItemLine, RateRequest};

fn far() -> Instant {
    Instant::now() + Duration::from_secs(600)
}

fn dec(units: i64) -> Decimal {
    Decimal::new(units, 4)
}

fn service(name: &str, amount: Decimal, transit_days: u32) -> ServiceRate {
    ServiceRate {
        carrier: "X".into(),
        service: name.into(),
        amount,
        transit_days,
    }
}

fn shipment(rates: Vec<ServiceRate>) -> RatedShipment {
    let mut rates = rates;
    rates.sort_by_key(|r| (r.amount, r.transit_days));
    RatedShipment {
        parcels: Vec::new(),
        rates,
        boxes_cost: Decimal::ZERO,
        handling_fee: Decimal::ZERO,
    }
}

/// Freight of a flat fee per shipment plus 1.00 per unit (units weigh 100 g);
/// 5-day ground or 1-day air for 20.00 more.
struct FlatRater {
    fee: Vec<Decimal>,
}

impl Rater for FlatRater {
    fn rate(
        &self,
        supplier: SupplierId,
        lines: &[(ProductId, u32)],
    ) -> Result<RatedShipment, String> {
        let units: u32 = lines.iter().map(|l| l.1).sum();
        let base = self.fee[supplier as usize] + Decimal::from(units);
        Ok(shipment(vec![
            service("Ground", base, 5),
            service("Air", base + Decimal::from(20), 1),
        ]))
    }

    fn processing_days(&self, _: SupplierId) -> u32 {
        0
    }

    fn unit_profile(&self, _: SupplierId, _: ProductId) -> Option<ShipmentProfile> {
        Some(weighing(100))
    }

    fn floor(&self, supplier: SupplierId, profile: &ShipmentProfile) -> Option<Floor> {
        Some(Floor {
            amount: crate::domain::money::to_units(
                self.fee[supplier as usize] + Decimal::from(profile.boxed_weight_g / 100),
            ),
            transit_days: 1,
        })
    }

    fn linear_floor(&self, supplier: SupplierId, _: &ShipmentProfile) -> Option<LinearFloor> {
        let fee = crate::domain::money::to_units(self.fee[supplier as usize]);
        Some(LinearFloor {
            by_weight: FloorLine {
                opening: fee,
                per: 100_000,
            },
            by_space: FloorLine {
                opening: fee,
                per: 0,
            },
            opening_own: fee,
        })
    }
}

/// The profile of a unit that only has a weight.
fn weighing(grams: u32) -> ShipmentProfile {
    ShipmentProfile {
        boxed_weight_g: u64::from(grams),
        ..ShipmentProfile::default()
    }
}

fn opts(objective: Objective) -> PlanOptions {
    PlanOptions {
        objective,
        allow_partial: false,
        allow_split_lines: false,
        max_shipments: 0,
        arrive_within_days: 0,
    }
}

fn line(product: ProductId, qty: u32, cands: &[(SupplierId, u32, CostUnits)]) -> LineInput {
    LineInput {
        product: Some(product),
        qty,
        candidates: cands
            .iter()
            .map(|&(supplier, available, cost)| Candidate {
                supplier,
                available,
                cost,
                as_of_s: 7,
            })
            .collect(),
        excluded_stock: false,
    }
}

#[test]
fn consolidates_when_freight_outweighs_price() {
    // Supplier 1 is 0.50 cheaper per line but a second shipment costs 10.00.
    let rater = FlatRater {
        fee: vec![Decimal::from(10), Decimal::from(10)],
    };
    let lines = vec![
        line(1, 1, &[(0, 5, 100_000), (1, 5, 95_000)]),
        line(2, 1, &[(0, 5, 100_000)]),
    ];
    let p = plan(&lines, &opts(Objective::Cheapest), &rater, far()).unwrap();
    assert_eq!(p.shipments.len(), 1);
    assert_eq!(p.shipments[0].supplier, 0);
    assert_eq!(p.goods, Decimal::from(20));
    assert_eq!(p.freight, Decimal::from(12));
    assert!(p.proven_optimal);
}

#[test]
fn local_search_moves_two_lines_that_pay_only_together() {
    // Every supplier bills 10.00 up to 1 kg, 12.00 up to 3 kg and 40.00
    // beyond; units weigh 1 kg. Supplier 1 ships X; A and B cost 0.50 more
    // there than at 2 and 3. Either alone moved to 1 costs 2.00 more freight
    // there and saves 2.00 where it was: 0.50 dearer. Together they fill
    // 1's 3 kg break for the same 2.00: 1.00 cheaper. Every line 1 can take
    // (E too) would cost 40.00 there.
    let flat = |up_to_hg, base| Break {
        from_hg: 0,
        up_to_hg,
        base,
        per_hg: 0,
    };
    let tariff = BreakTariff {
        fixed: 0,
        breaks: vec![
            flat(10, 100_000),
            flat(30, 120_000),
            flat(u64::MAX, 400_000),
        ],
        ground_days: 3,
        processing_days: 0,
    };
    let rater = BreakRater {
        tariffs: (1..=4).map(|s| (s, tariff.clone())).collect(),
        unit_weight_g: (1..=7).map(|p| (p, 1_000)).collect(),
        express_factor_pct: 200,
    };
    let lines = vec![
        line(1, 1, &[(1, 5, 100_000)]),
        line(2, 1, &[(1, 5, 105_000), (2, 5, 100_000)]),
        line(3, 1, &[(1, 5, 105_000), (3, 5, 100_000)]),
        line(4, 1, &[(2, 5, 100_000)]),
        line(5, 1, &[(3, 5, 100_000)]),
        line(6, 1, &[(1, 5, 120_000), (4, 5, 100_000)]),
        line(7, 1, &[(4, 5, 100_000)]),
    ];
    let options = opts(Objective::Cheapest);
    let problem = Problem::new(&lines, &options, &rater).unwrap();
    let mut cache = Cache::new(&problem, 0);
    // Plans by the dense index of each line's supplier (suppliers 1-4 are
    // 0-3): `from` reads them off an assignment, `to` makes one.
    let from = |assignment: &[u32]| -> Vec<u32> {
        assignment
            .iter()
            .zip(&problem.lines)
            .map(|(&o, l)| l.options[o as usize].parts[0].sup)
            .collect()
    };
    let to = |sups: &[u32]| -> Vec<u32> {
        sups.iter()
            .zip(&problem.lines)
            .map(|(&s, l)| l.options.iter().position(|o| o.parts[0].sup == s).unwrap() as u32)
            .collect()
    };
    let start = to(&[0, 1, 2, 1, 2, 3, 3]);
    let improved = search::locally_improved(&problem, &options, &rater, &mut cache, start);
    assert_eq!(from(&improved), [0, 0, 0, 1, 2, 3, 3]);
    // It is the optimum, which the whole search finds too.
    let p = plan(&lines, &options, &rater, far()).unwrap();
    assert_eq!(p.freight, Decimal::from(12 + 10 + 10 + 12));
    assert!(p.proven_optimal);
}

#[test]
fn a_second_start_opens_what_the_root_duals_pay_for() {
    // Three lines at 5.00 from supplier 0 (shipments cost 10.00 plus 1.00 a
    // unit) or 4.00 from supplier 1 (100.00 plus 1.00 a unit). From the plan
    // that takes everything from 1 (115.00), no one-line move pays; the
    // duals pay for 0's opening alone, and the start from it costs 28.00.
    let rater = FlatRater {
        fee: vec![Decimal::from(10), Decimal::from(100)],
    };
    let lines: Vec<LineInput> = (1..=3)
        .map(|p| line(p, 1, &[(0, 5, 50_000), (1, 5, 40_000)]))
        .collect();
    let options = opts(Objective::Cheapest);
    let problem = Problem::new(&lines, &options, &rater).unwrap();
    let mut cache = Cache::new(&problem, 0);
    let option_of = |l: &problem::PLine, sup: u32| {
        l.options
            .iter()
            .position(|o| o.parts[0].sup == sup)
            .unwrap() as u32
    };
    let from_1: Vec<u32> = problem.lines.iter().map(|l| option_of(l, 1)).collect();
    let from_0: Vec<u32> = problem.lines.iter().map(|l| option_of(l, 0)).collect();
    let start = search::dual_start_from(&problem, &options, &rater, &mut cache, from_1);
    assert_eq!(start, Some(from_0.clone()));
    // Once the best plan is that start, there is no other.
    let again = search::dual_start_from(&problem, &options, &rater, &mut cache, from_0);
    assert_eq!(again, None);
}

#[test]
fn all_or_nothing_names_every_short_line() {
    let rater = FlatRater {
        fee: vec![Decimal::ONE],
    };
    let lines = vec![
        LineInput {
            product: None,
            qty: 1,
            candidates: vec![],
            excluded_stock: false,
        },
        line(2, 9, &[(0, 3, 1)]),
        line(3, 1, &[(0, 3, 1)]),
    ];
    let err = plan(&lines, &opts(Objective::Cheapest), &rater, far()).unwrap_err();
    let PlanError::Unfulfillable(shorts) = err;
    assert_eq!(
        shorts,
        vec![
            Short {
                line: 0,
                missing: 1,
                reason: ShortReason::UnknownSku
            },
            Short {
                line: 1,
                missing: 6,
                reason: ShortReason::OutOfStock
            },
        ]
    );
    let mut partial = opts(Objective::Cheapest);
    partial.allow_partial = true;
    let p = plan(&lines, &partial, &rater, far()).unwrap();
    assert_eq!(p.shortfalls.len(), 2);
    let shipped: u32 = p
        .shipments
        .iter()
        .flat_map(|s| &s.allocations)
        .map(|a| a.qty)
        .sum();
    assert_eq!(shipped, 4);
}

#[test]
fn split_lines_fill_from_the_cheapest() {
    let rater = FlatRater {
        fee: vec![Decimal::ONE, Decimal::ONE],
    };
    let lines = vec![line(1, 5, &[(0, 3, 200), (1, 4, 100)])];
    assert!(plan(&lines, &opts(Objective::Cheapest), &rater, far()).is_err());
    let mut o = opts(Objective::Cheapest);
    o.allow_split_lines = true;
    let p = plan(&lines, &o, &rater, far()).unwrap();
    let parts: Vec<(SupplierId, u32)> = p
        .shipments
        .iter()
        .map(|s| (s.supplier, s.allocations[0].qty))
        .collect();
    assert_eq!(parts, vec![(0, 1), (1, 4)]);
    assert!(p.proven_optimal);
}

#[test]
fn fastest_pays_for_air_only_where_it_sets_the_arrival() {
    let rater = FlatRater {
        fee: vec![Decimal::ONE],
    };
    let lines = vec![line(1, 1, &[(0, 5, 100)])];
    let p = plan(&lines, &opts(Objective::Fastest), &rater, far()).unwrap();
    assert_eq!(&*p.shipments[0].rate.service, "Air");
    let p = plan(&lines, &opts(Objective::Cheapest), &rater, far()).unwrap();
    assert_eq!(&*p.shipments[0].rate.service, "Ground");
    assert!(p.proven_optimal);
}

#[test]
fn arrival_limit_buys_the_cheapest_service_that_makes_it() {
    let rater = FlatRater {
        fee: vec![Decimal::ONE],
    };
    let lines = vec![line(1, 1, &[(0, 5, 100)])];
    let mut o = opts(Objective::Cheapest);
    o.arrive_within_days = 2;
    let p = plan(&lines, &o, &rater, far()).unwrap();
    assert_eq!(&*p.shipments[0].rate.service, "Air");
    o.arrive_within_days = 5;
    let p = plan(&lines, &o, &rater, far()).unwrap();
    assert_eq!(
        &*p.shipments[0].rate.service, "Ground",
        "ground arrives in 5 days"
    );
}

#[test]
fn max_shipments_is_met_or_refused() {
    let rater = FlatRater {
        fee: vec![Decimal::ONE, Decimal::ONE],
    };
    let lines = vec![line(1, 1, &[(0, 5, 1)]), line(2, 1, &[(1, 5, 1)])];
    let mut o = opts(Objective::Cheapest);
    o.max_shipments = 1;
    let PlanError::Unfulfillable(shorts) = plan(&lines, &o, &rater, far()).unwrap_err();
    assert_eq!(shorts.len(), 1);
    assert_eq!(shorts[0].reason, ShortReason::ShipmentLimit);
    o.allow_partial = true;
    let p = plan(&lines, &o, &rater, far()).unwrap();
    assert_eq!(p.shipments.len(), 1);
    assert_eq!(p.shortfalls.len(), 1);
    assert!(p.proven_optimal);
}

#[test]
fn fewest_shipments_after_a_finished_cheapest_plan_searches_only_where_it_could_differ() {
    let rater = FlatRater {
        fee: vec![Decimal::from(10), Decimal::from(10)],
    };
    // Only supplier 0 holds line 2, so every plan has a shipment from it,
    // and the cheapest plan ships everything from it: nothing to search.
    let together = vec![
        line(1, 1, &[(0, 5, 100_000), (1, 5, 95_000)]),
        line(2, 1, &[(0, 5, 100_000)]),
    ];
    let mut planner = Planner::new(&together, &opts(Objective::Cheapest), &rater).unwrap();
    assert!(planner.searches(Objective::FewestShipments));
    let cheapest = planner.plan(Objective::Cheapest, far()).unwrap();
    assert!(!planner.searches(Objective::FewestShipments));
    assert!(planner.searches(Objective::Fastest));
    let searched = planner.stats().nodes;
    let fewest = planner.plan(Objective::FewestShipments, far()).unwrap();
    assert_eq!(planner.stats().nodes, searched);
    assert_eq!(fewest.shipments, cheapest.shipments);
    assert!(fewest.proven_optimal);

    // Line 1 is 20.00 cheaper from supplier 1, worth a second shipment; one
    // shipment from supplier 0 could carry both, so FEWEST_SHIPMENTS searches.
    let apart = vec![
        line(1, 1, &[(0, 5, 300_000), (1, 5, 100_000)]),
        line(2, 1, &[(0, 5, 100_000)]),
    ];
    let mut planner = Planner::new(&apart, &opts(Objective::Cheapest), &rater).unwrap();
    let cheapest = planner.plan(Objective::Cheapest, far()).unwrap();
    assert_eq!(cheapest.shipments.len(), 2);
    assert!(planner.searches(Objective::FewestShipments));
    let searched = planner.stats().nodes;
    let fewest = planner.plan(Objective::FewestShipments, far()).unwrap();
    assert!(planner.stats().nodes > searched);
    assert_eq!(fewest.shipments.len(), 1);
    assert_eq!(fewest.shipments[0].supplier, 0);
    assert!(fewest.proven_optimal);
}

#[test]
fn same_input_same_plan_whatever_the_candidate_order() {
    let rater = FlatRater {
        fee: vec![Decimal::ONE, Decimal::ONE, Decimal::ONE],
    };
    let lines = vec![
        line(1, 1, &[(2, 5, 100), (0, 5, 100), (1, 5, 100)]),
        line(2, 1, &[(1, 5, 100), (2, 5, 100)]),
    ];
    let mut shuffled = lines.clone();
    shuffled[0].candidates.reverse();
    shuffled[1].candidates.reverse();
    let a = plan(&lines, &opts(Objective::Cheapest), &rater, far()).unwrap();
    let b = plan(&shuffled, &opts(Objective::Cheapest), &rater, far()).unwrap();
    assert_eq!(a, b);
    assert_eq!(a.shipments.len(), 1);
    assert_eq!(
        a.shipments[0].supplier, 1,
        "ties go to the lowest supplier id"
    );
}

/// A product no service carries from supplier 0; supplier 1 carries it.
struct PickyRater;

impl Rater for PickyRater {
    fn rate(
        &self,
        supplier: SupplierId,
        lines: &[(ProductId, u32)],
    ) -> Result<RatedShipment, String> {
        if supplier == 0 && lines.iter().any(|l| l.0 == 9) {
            return Err("over every limit".into());
        }
        Ok(shipment(vec![service("Ground", Decimal::from(5), 3)]))
    }
    fn processing_days(&self, _: SupplierId) -> u32 {
        0
    }
    fn unit_profile(&self, _: SupplierId, _: ProductId) -> Option<ShipmentProfile> {
        Some(weighing(100))
    }
    fn floor(&self, _: SupplierId, _: &ShipmentProfile) -> Option<Floor> {
        Some(Floor {
            amount: 50_000,
            transit_days: 3,
        })
    }
    fn linear_floor(&self, _: SupplierId, _: &ShipmentProfile) -> Option<LinearFloor> {
        Some(LinearFloor {
            by_weight: FloorLine {
                opening: 50_000,
                per: 0,
            },
            by_space: FloorLine {
                opening: 50_000,
                per: 0,
            },
            opening_own: 50_000,
        })
    }
}

#[test]
fn items_one_supplier_cannot_ship_go_with_another_or_are_named() {
    let lines = vec![
        line(1, 1, &[(0, 5, 100)]),
        line(9, 1, &[(0, 5, 50), (1, 5, 900)]),
    ];
    let p = plan(&lines, &opts(Objective::Cheapest), &PickyRater, far()).unwrap();
    let suppliers: Vec<SupplierId> = p.shipments.iter().map(|s| s.supplier).collect();
    assert_eq!(suppliers, vec![0, 1]);
    assert!(p.proven_optimal);
    let lines = vec![line(9, 1, &[(0, 5, 50)])];
    let PlanError::Unfulfillable(shorts) =
        plan(&lines, &opts(Objective::Cheapest), &PickyRater, far()).unwrap_err();
    assert_eq!(shorts[0].reason, ShortReason::NotShippable);
}

/// Flat freight with no useful floor: the search can prove little.
struct Blind(FlatRater);

impl Rater for Blind {
    fn rate(
        &self,
        supplier: SupplierId,
        lines: &[(ProductId, u32)],
    ) -> Result<RatedShipment, String> {
        self.0.rate(supplier, lines)
    }
    fn processing_days(&self, _: SupplierId) -> u32 {
        0
    }
    fn unit_profile(&self, _: SupplierId, _: ProductId) -> Option<ShipmentProfile> {
        Some(ShipmentProfile::default())
    }
    fn floor(&self, _: SupplierId, _: &ShipmentProfile) -> Option<Floor> {
        Some(Floor {
            amount: 0,
            transit_days: 0,
        })
    }
    fn linear_floor(&self, _: SupplierId, _: &ShipmentProfile) -> Option<LinearFloor> {
        Some(LinearFloor {
            by_weight: FloorLine { opening: 0, per: 0 },
            by_space: FloorLine { opening: 0, per: 0 },
            opening_own: 0,
        })
    }
}

/// 40 lines, each at 6 of 10 suppliers: with no floor to prune with (see
/// [`Blind`]), a search that does not finish.
fn forty_lines() -> Vec<LineInput> {
    (0..40u32)
        .map(|i| {
            let cands: Vec<(SupplierId, u32, CostUnits)> = (0..6u32)
                .map(|j| {
                    (
                        ((i * 3 + j * 7) % 10) as SupplierId,
                        9,
                        10_000 + (i * 31 + j * 17) % 900,
                    )
                })
                .collect();
            line(100 + i, 1 + i % 3, &cands)
        })
        .collect()
}

#[test]
fn a_spent_deadline_still_gives_a_feasible_plan() {
    let rater = Blind(FlatRater {
        fee: vec![Decimal::from(7); 10],
    });
    let lines = forty_lines();
    let p = plan(&lines, &opts(Objective::Cheapest), &rater, Instant::now()).unwrap();
    assert!(p.shortfalls.is_empty());
    assert!(!p.proven_optimal);
    let shipped: u32 = p
        .shipments
        .iter()
        .flat_map(|s| &s.allocations)
        .map(|a| a.qty)
        .sum();
    assert_eq!(shipped, lines.iter().map(|l| l.qty).sum::<u32>());
}

/// [`Blind`] freight that counts the ratings asked of it once `deadline`
/// has passed.
struct Late {
    rater: Blind,
    deadline: Instant,
    late: std::cell::Cell<u32>,
}

impl Rater for Late {
    fn rate(
        &self,
        supplier: SupplierId,
        lines: &[(ProductId, u32)],
    ) -> Result<RatedShipment, String> {
        if Instant::now() >= self.deadline {
            self.late.set(self.late.get() + 1);
        }
        // As slow as packing a big shipment can be.
        std::thread::sleep(Duration::from_millis(1));
        self.rater.rate(supplier, lines)
    }
    fn processing_days(&self, supplier: SupplierId) -> u32 {
        self.rater.processing_days(supplier)
    }
    fn unit_profile(&self, supplier: SupplierId, product: ProductId) -> Option<ShipmentProfile> {
        self.rater.unit_profile(supplier, product)
    }
    fn floor(&self, supplier: SupplierId, profile: &ShipmentProfile) -> Option<Floor> {
        self.rater.floor(supplier, profile)
    }
    fn linear_floor(
        &self,
        supplier: SupplierId,
        reference: &ShipmentProfile,
    ) -> Option<LinearFloor> {
        self.rater.linear_floor(supplier, reference)
    }
}

#[test]
fn a_search_that_rates_stops_at_the_first_look_past_its_deadline() {
    // Ratings are what make the search slow (a real one packs boxes), so it
    // looks at the clock after each plan or node that rated, not only every
    // so many, and local search rates a move's shipments one at a time with
    // a look after each: once the deadline passes it starts at most one
    // rating. The first plan (about 10 ratings) is held well before the
    // deadline, which passes while local search rates.
    let deadline = Instant::now() + Duration::from_millis(100);
    let rater = Late {
        rater: Blind(FlatRater {
            fee: vec![Decimal::from(7); 10],
        }),
        deadline,
        late: std::cell::Cell::new(0),
    };
    let lines = forty_lines();
    let mut planner = Planner::new(&lines, &opts(Objective::Cheapest), &rater).unwrap();
    let p = planner.plan(Objective::Cheapest, deadline).unwrap();
    assert!(!p.proven_optimal);
    assert!(
        planner.stats().ratings > 16,
        "the search rated {} shipments: too few to tell",
        planner.stats().ratings
    );
    assert!(
        rater.late.get() <= 1,
        "{} ratings after the deadline",
        rater.late.get()
    );
}

// ---------- property tests against the brute force ----------

/// splitmix64, so that a failing case is reproducible from its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }
}

const SUPPLIERS: u64 = 6;

#[derive(Debug, Clone)]
struct Case {
    lines: Vec<LineInput>,
    options: PlanOptions,
}

fn case(seed: u64, n_lines: usize, split: bool, partial: bool, objective: usize) -> Case {
    let mut r = Rng(seed);
    let lines = (0..n_lines)
        .map(|i| {
            let qty = r.range(1, if split { 3 } else { 4 }) as u32;
            let n = r.range(1, 4);
            let mut sups: Vec<SupplierId> = Vec::new();
            while (sups.len() as u64) < n {
                let s = r.below(SUPPLIERS) as SupplierId;
                if !sups.contains(&s) {
                    sups.push(s);
                }
            }
            let cands = sups
                .iter()
                .map(|&s| Candidate {
                    supplier: s,
                    available: r.range(0, u64::from(qty) + 1) as u32,
                    cost: r.range(1, 60) as u32 * 5_000,
                    as_of_s: 1,
                })
                .collect();
            LineInput {
                product: (r.below(25) != 0).then_some(i as ProductId + 1),
                qty,
                candidates: cands,
                excluded_stock: false,
            }
        })
        .collect();
    let options = PlanOptions {
        objective: Objective::ALL[objective % 3],
        allow_partial: partial,
        allow_split_lines: split,
        max_shipments: [0, 0, 1, 2, 3][r.below(5) as usize],
        arrive_within_days: [0, 0, 0, 3, 5][r.below(5) as usize],
    };
    Case { lines, options }
}

fn break_rater(seed: u64) -> BreakRater {
    let mut r = Rng(seed ^ 0xB4EA);
    let tariffs = (0..SUPPLIERS)
        .map(|s| {
            let per = r.range(40, 400) as i64;
            let b1 = r.range(5, 40);
            let tariff = BreakTariff {
                fixed: r.range(20_000, 150_000) as i64,
                breaks: vec![
                    Break {
                        from_hg: 0,
                        up_to_hg: b1,
                        base: 0,
                        per_hg: per,
                    },
                    Break {
                        from_hg: b1,
                        up_to_hg: b1 * 3,
                        base: 5_000,
                        per_hg: per * 7 / 10,
                    },
                    Break {
                        from_hg: b1 * 3,
                        up_to_hg: u64::MAX,
                        base: 9_000,
                        per_hg: per / 2,
                    },
                ],
                ground_days: r.range(2, 5) as u32,
                processing_days: r.range(0, 2) as u32,
            };
            (s as SupplierId, tariff)
        })
        .collect();
    let unit_weight_g = (1..=8)
        .map(|p| (p as ProductId, r.range(100, 3_000) as u32))
        .collect();
    BreakRater {
        tariffs,
        unit_weight_g,
        express_factor_pct: r.range(150, 260) as i64,
    }
}

/// Freight that rises and falls with weight, and a product that supplier 2
/// cannot ship: the search must stay exact without monotone freight.
struct LumpyRater {
    fixed: Vec<i64>,
    days: Vec<u32>,
}

const LUMPS: [i64; 5] = [0, 30_000, 10_000, 40_000, 20_000];

fn lumpy_weight_g(product: ProductId) -> u32 {
    100 * (product % 4 + 1)
}

impl Rater for LumpyRater {
    fn rate(
        &self,
        supplier: SupplierId,
        lines: &[(ProductId, u32)],
    ) -> Result<RatedShipment, String> {
        if supplier == 2 && lines.iter().any(|l| l.0 == 3) {
            return Err("product 3 does not ship from supplier 2".into());
        }
        let w: u64 = lines
            .iter()
            .map(|&(p, q)| u64::from(lumpy_weight_g(p)) * u64::from(q))
            .sum();
        let ground = self.fixed[supplier as usize] + LUMPS[(w / 100 % 5) as usize];
        Ok(shipment(vec![
            service("Ground", dec(ground), self.days[supplier as usize]),
            service("Air", dec(ground + 150_000), 1),
        ]))
    }
    fn processing_days(&self, supplier: SupplierId) -> u32 {
        supplier as u32 % 2
    }
    fn unit_profile(&self, _: SupplierId, product: ProductId) -> Option<ShipmentProfile> {
        Some(weighing(lumpy_weight_g(product)))
    }
    fn floor(&self, supplier: SupplierId, _: &ShipmentProfile) -> Option<Floor> {
        Some(Floor {
            amount: self.fixed[supplier as usize],
            transit_days: 1,
        })
    }
    fn linear_floor(&self, supplier: SupplierId, _: &ShipmentProfile) -> Option<LinearFloor> {
        let fixed = self.fixed[supplier as usize];
        Some(LinearFloor {
            by_weight: FloorLine {
                opening: fixed,
                per: 0,
            },
            by_space: FloorLine {
                opening: fixed,
                per: 0,
            },
            opening_own: fixed,
        })
    }
}

fn lumpy_rater(seed: u64) -> LumpyRater {
    let mut r = Rng(seed ^ 0x1u64);
    LumpyRater {
        fixed: (0..SUPPLIERS)
            .map(|_| r.range(10_000, 120_000) as i64)
            .collect(),
        days: (0..SUPPLIERS).map(|_| r.range(2, 6) as u32).collect(),
    }
}

/// The SAMPLE carrier tables from a few US origins to one destination.
struct TableRater {
    freight: Freight,
    origins: Vec<&'static str>,
    fees: Vec<Decimal>,
    destination: (&'static str, bool),
    /// Rotation of the products' items (see `table_item`).
    shift: usize,
}

/// Items of the table rater: (weight g, length, width, height mm). The
/// last fits no box and ships in its own packaging; three of the one before
/// pay additional handling in one parcel and bill a large box's
/// dimensional weight apart.
const ITEMS: [(u32, u32, u32, u32); 10] = [
    (250, 150, 100, 20),
    (450, 230, 150, 30),
    (400, 120, 120, 100),
    (900, 330, 210, 120),
    (1_200, 250, 200, 100),
    (2_500, 380, 280, 150),
    (5_000, 450, 350, 250),
    (80, 100, 60, 30),
    (8_977, 372, 347, 148),
    (6_000, 1_100, 300, 200),
];

/// The item of `product` for a rater whose items are rotated by `shift`
/// (baskets number their products from 1, so every item gets its turn).
fn table_item(product: ProductId, shift: usize) -> Item {
    let (w, l, wi, h) = ITEMS[(product as usize + shift) % ITEMS.len()];
    Item {
        weight_g: w,
        length_mm: l,
        width_mm: wi,
        height_mm: h,
    }
}

impl TableRater {
    fn new(seed: u64) -> Self {
        let mut r = Rng(seed ^ 0x7AB1E);
        let zips = [
            "10001", "60601", "94105", "30301", "75201", "98101", "02101",
        ];
        let dests = [
            ("10401", false),
            ("94107", true),
            ("33101", true),
            ("80202", false),
        ];
        Self {
            freight: Freight::sample(),
            origins: (0..SUPPLIERS)
                .map(|_| zips[r.below(zips.len() as u64) as usize])
                .collect(),
            fees: (0..SUPPLIERS)
                .map(|_| dec(r.range(0, 8) as i64 * 2_500))
                .collect(),
            destination: dests[r.below(dests.len() as u64) as usize],
            shift: r.below(ITEMS.len() as u64) as usize,
        }
    }

    /// The items of `lines`, by this rater's rotation.
    fn items(&self, lines: &[(ProductId, u32)]) -> Vec<ItemLine> {
        lines
            .iter()
            .map(|&(p, quantity)| ItemLine {
                item: table_item(p, self.shift),
                quantity,
            })
            .collect()
    }

    fn lane_floor(&self, supplier: SupplierId) -> Option<crate::domain::freight::FreightFloor<'_>> {
        let (origin, destination) = self.ends(supplier);
        self.freight
            .floor(origin, destination, self.fees[supplier as usize])
            .ok()
    }

    fn ends(&self, supplier: SupplierId) -> (Endpoint<'_>, Endpoint<'_>) {
        let us = |postal_code, residential| Endpoint {
            country_code: "US",
            postal_code,
            residential,
        };
        (
            us(self.origins[supplier as usize], false),
            us(self.destination.0, self.destination.1),
        )
    }
}

impl Rater for TableRater {
    fn rate(
        &self,
        supplier: SupplierId,
        lines: &[(ProductId, u32)],
    ) -> Result<RatedShipment, String> {
        let items = self.items(lines);
        let (origin, destination) = self.ends(supplier);
        self.freight
            .rate(&RateRequest {
                origin,
                destination,
                lines: &items,
                handling_fee: self.fees[supplier as usize],
            })
            .map_err(|e| e.to_string())
    }
    fn processing_days(&self, supplier: SupplierId) -> u32 {
        supplier as u32 % 3
    }
    fn unit_profile(&self, supplier: SupplierId, product: ProductId) -> Option<ShipmentProfile> {
        self.lane_floor(supplier)?
            .unit(&table_item(product, self.shift))
    }
    fn floor(&self, supplier: SupplierId, profile: &ShipmentProfile) -> Option<Floor> {
        let f = self.lane_floor(supplier)?;
        Some(Floor {
            amount: f.amount(profile),
            transit_days: f.transit_days(),
        })
    }
    fn floor_within(
        &self,
        supplier: SupplierId,
        profile: &ShipmentProfile,
        transit_max: u32,
    ) -> Option<i64> {
        self.lane_floor(supplier)?
            .amount_within(profile, transit_max)
    }
    fn linear_floor(
        &self,
        supplier: SupplierId,
        reference: &ShipmentProfile,
    ) -> Option<LinearFloor> {
        Some(self.lane_floor(supplier)?.linear(reference))
    }
    fn packed_floor(
        &self,
        supplier: SupplierId,
        lines: &[(ProductId, u32)],
        reach: i64,
    ) -> Option<i64> {
        self.lane_floor(supplier)?.packed(&self.items(lines), reach)
    }
}

/// The plan's measures, recomputed from the outcome alone.
fn measures(p: &PlanOutcome) -> oracle::OracleScore {
    let missing = p.shortfalls.iter().map(|s| s.missing).sum();
    let shipments = p.shipments.len() as u32;
    let primary = match p.objective {
        Objective::Cheapest => 0,
        Objective::Fastest => p.shipments.iter().map(arrival_days).max().unwrap_or(0),
        Objective::FewestShipments => shipments,
    };
    (missing, primary, p.goods + p.freight, shipments)
}

/// Every unit accounted for, within stock, each shipment priced as the rater
/// prices it and on time, within the shipment limit.
fn check_feasible(c: &Case, p: &PlanOutcome, rater: &dyn Rater) -> Result<(), TestCaseError> {
    let o = &c.options;
    if o.max_shipments > 0 {
        prop_assert!(p.shipments.len() <= o.max_shipments as usize);
    }
    let mut goods = Decimal::ZERO;
    let mut freight = Decimal::ZERO;
    let mut taken: HashMap<(usize, SupplierId), u32> = HashMap::new();
    for s in &p.shipments {
        let items = shipment_items(&s.allocations);
        let rated = rater
            .rate(s.supplier, &items)
            .map_err(TestCaseError::fail)?;
        prop_assert!(
            rated.rates.contains(&s.rate),
            "rate not offered for the shipment"
        );
        if o.arrive_within_days > 0 {
            prop_assert!(arrival_days(s) <= o.arrive_within_days);
        }
        freight += s.rate.amount;
        for a in &s.allocations {
            *taken.entry((a.line, s.supplier)).or_default() += a.qty;
            goods += cost_to(a.cost) * Decimal::from(a.qty);
        }
    }
    prop_assert_eq!(goods, p.goods);
    prop_assert_eq!(freight, p.freight);
    for (i, l) in c.lines.iter().enumerate() {
        let mut got = 0;
        for (&(line, s), &q) in &taken {
            if line == i {
                let cand = l.candidates.iter().find(|c| c.supplier == s);
                prop_assert!(cand.is_some_and(|c| c.available >= q), "over stock");
                got += q;
            }
        }
        if !o.allow_split_lines {
            prop_assert!(taken.keys().filter(|(line, _)| *line == i).count() <= 1);
        }
        let short: u32 = p
            .shortfalls
            .iter()
            .filter(|s| s.line == i)
            .map(|s| s.missing)
            .sum();
        prop_assert_eq!(got + short, l.qty, "line {} not accounted for", i);
    }
    Ok(())
}

fn cost_to(c: CostUnits) -> Decimal {
    crate::domain::money::cost_to_decimal(c)
}

/// Checks `got`, the planner's answer to `c`, against the brute-force
/// optimum: both find no plan, or the plan is feasible, proven and scores
/// the same. `what` names the comparison in failures.
fn matches_oracle(
    c: &Case,
    got: Result<PlanOutcome, PlanError>,
    rater: &dyn Rater,
    what: &str,
) -> Result<(), TestCaseError> {
    match (oracle::best(&c.lines, &c.options, rater), got) {
        (None, Err(_)) => {}
        (Some(e), Ok(p)) => {
            check_feasible(c, &p, rater)?;
            prop_assert_eq!(
                measures(&p),
                e,
                "{}: planner and brute force disagree",
                what
            );
            prop_assert!(p.proven_optimal, "{}: not proven optimal", what);
        }
        (e, g) => prop_assert!(
            false,
            "{}: brute force {:?}, planner {:?}",
            what,
            e,
            g.map(|p| measures(&p))
        ),
    }
    Ok(())
}

fn agrees(c: &Case, rater: &dyn Rater) -> Result<(), TestCaseError> {
    prop_assume!(oracle::combinations(&c.lines, &c.options) <= 40_000);
    let got = plan(&c.lines, &c.options, rater, far());
    matches_oracle(c, got, rater, "alone")
}

/// One planner asked for every objective in turn, starting at `first`, as
/// a quote asks for its plan and then the alternatives: what the earlier
/// searches left behind (ratings, seeds, prepared options, learned bans)
/// never changes what a later one finds.
fn agrees_in_turn(c: &Case, rater: &dyn Rater, first: usize) -> Result<(), TestCaseError> {
    prop_assume!(oracle::combinations(&c.lines, &c.options) <= 40_000);
    let mut planner = Planner::new(&c.lines, &c.options, rater);
    for i in 0..Objective::ALL.len() {
        let objective = Objective::ALL[(first + i) % Objective::ALL.len()];
        let got = match planner.as_mut() {
            Ok(p) => p.plan(objective, far()),
            Err(e) => Err(e.clone()),
        };
        let this = Case {
            lines: c.lines.clone(),
            options: PlanOptions {
                objective,
                ..c.options.clone()
            },
        };
        let what = format!("{objective:?} after {i} other objectives");
        matches_oracle(&this, got, rater, &what)?;
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn matches_brute_force_on_weight_breaks(
        seed in any::<u64>(), n in 1usize..=6, split in any::<bool>(),
        partial in any::<bool>(), objective in 0usize..3,
    ) {
        let c = case(seed, n, split, partial, objective);
        agrees(&c, &break_rater(seed))?;
    }

    #[test]
    fn every_objective_in_turn_matches_brute_force(
        seed in any::<u64>(), n in 1usize..=6, split in any::<bool>(),
        partial in any::<bool>(), first in 0usize..3,
    ) {
        let c = case(seed, n, split, partial, 0);
        agrees_in_turn(&c, &break_rater(seed), first)?;
    }

    #[test]
    fn every_objective_in_turn_matches_brute_force_when_freight_is_not_monotone(
        seed in any::<u64>(), n in 1usize..=6, split in any::<bool>(),
        partial in any::<bool>(), first in 0usize..3,
    ) {
        let c = case(seed, n, split, partial, 0);
        agrees_in_turn(&c, &lumpy_rater(seed), first)?;
    }

    #[test]
    fn matches_brute_force_when_freight_is_not_monotone(
        seed in any::<u64>(), n in 1usize..=6, split in any::<bool>(),
        partial in any::<bool>(), objective in 0usize..3,
    ) {
        let c = case(seed, n, split, partial, objective);
        agrees(&c, &lumpy_rater(seed))?;
    }
}

/// Random baskets of six lines under CHEAPEST and FEWEST_SHIPMENTS, with
/// weight breaks and with freight that also falls with weight: nodes that
/// reach a state the search has been through at no greater cost are left
/// out (on some of these baskets at least), and every plan is still the
/// brute-force optimum.
#[test]
fn a_state_searched_before_is_not_searched_again() {
    let mut cut = 0;
    let mut planned = 0;
    for seed in 0..300u64 {
        let objective = if seed % 2 == 0 { 0 } else { 2 };
        let c = case(seed, 6, seed % 3 == 0, seed % 5 == 0, objective);
        if oracle::combinations(&c.lines, &c.options) > 40_000 {
            continue;
        }
        let (breaks, lumpy) = (break_rater(seed), lumpy_rater(seed));
        for (kind, rater) in [("breaks", &breaks as &dyn Rater), ("lumpy", &lumpy)] {
            let got = match Planner::new(&c.lines, &c.options, rater) {
                Ok(mut planner) => {
                    let got = planner.plan(c.options.objective, far());
                    cut += planner.stats().states_cut;
                    got
                }
                Err(e) => Err(e),
            };
            matches_oracle(&c, got, rater, &format!("seed {seed}, {kind}")).unwrap();
            planned += 1;
        }
    }
    assert!(planned > 400, "only {planned} baskets small enough");
    assert!(cut > 0, "no state was met again in {planned} baskets");
}

/// The search with nothing cut (`search::check_bounds_below`): every bound
/// on the way to every leaf is at most the leaf's score, and the plan is
/// still the brute-force optimum. Stricter than comparing plans: a bound
/// too high only shows in a plan when it cuts the very leaf that is best.
fn bounds_hold(c: &Case, rater: &dyn Rater) -> Result<(), TestCaseError> {
    prop_assume!(oracle::combinations(&c.lines, &c.options) <= 4_000);
    let got = search::check_bounds_below(|| plan(&c.lines, &c.options, rater, far()));
    matches_oracle(c, got, rater, "nothing cut")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn no_bound_exceeds_a_leaf_below_it_on_weight_breaks(
        seed in any::<u64>(), n in 1usize..=6, split in any::<bool>(),
        partial in any::<bool>(), fewest in any::<bool>(),
    ) {
        let c = case(seed, n, split, partial, if fewest { 2 } else { 0 });
        bounds_hold(&c, &break_rater(seed))?;
    }

    #[test]
    fn no_bound_exceeds_a_leaf_below_it_when_freight_is_not_monotone(
        seed in any::<u64>(), n in 1usize..=6, split in any::<bool>(),
        partial in any::<bool>(), fewest in any::<bool>(),
    ) {
        let c = case(seed, n, split, partial, if fewest { 2 } else { 0 });
        bounds_hold(&c, &lumpy_rater(seed))?;
    }

    #[test]
    fn no_bound_exceeds_a_leaf_below_it_on_the_sample_carrier_tables(
        seed in any::<u64>(), n in 1usize..=6, split in any::<bool>(),
        partial in any::<bool>(), fewest in any::<bool>(),
    ) {
        let c = case(seed, n, split, partial, if fewest { 2 } else { 0 });
        bounds_hold(&c, &TableRater::new(seed))?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn matches_brute_force_on_the_sample_carrier_tables(
        seed in any::<u64>(), n in 1usize..=6, split in any::<bool>(),
        partial in any::<bool>(), objective in 0usize..3,
    ) {
        let c = case(seed, n, split, partial, objective);
        agrees(&c, &TableRater::new(seed))?;
    }

    #[test]
    fn every_objective_in_turn_matches_brute_force_on_the_sample_carrier_tables(
        seed in any::<u64>(), n in 1usize..=6, split in any::<bool>(),
        partial in any::<bool>(), first in 0usize..3,
    ) {
        let c = case(seed, n, split, partial, 0);
        agrees_in_turn(&c, &TableRater::new(seed), first)?;
    }
}

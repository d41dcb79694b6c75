//! Live carrier prices as the domain sees them.
//!
//! The planner prices from the local tables (fast, deterministic). Once a
//! plan is chosen, its shipments are offered to the carriers' own APIs through
//! the `LiveRater` port, within the caller's remaining deadline; whatever
//! comes back in time replaces the table charge for that service, and a plan's
//! services are chosen again on the merged prices. A carrier that is slow,
//! down or not configured simply leaves the table price in place (`live =
//! false`). The same merge serves `RateShipment`, so a plan's freight and
//! `RateShipment`'s figure agree while the carrier's answer is cached.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use rust_decimal::Decimal;

use super::address::Address;
use super::freight::{choose, Freight, Parcel, RateChoice, RatedShipment, ServiceRate};
use super::money::round_cents;
use super::planner::{shipment_items, Objective, PlanOutcome, PlannedShipment};
use super::quoting::Quote;
use super::suppliers::SupplierId;
use super::world::World;

/// A shipment to price live: where from, where to, and its parcels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveShipment {
    /// Ship-from.
    pub origin: Address,
    /// Ship-to.
    pub destination: Address,
    /// Packed parcels, as the tables packed them.
    pub parcels: Vec<Parcel>,
}

/// One service's price from a carrier's API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveCharge {
    /// The carrier's service code (e.g. `FEDEX_GROUND`, `03`).
    pub service_code: String,
    /// Total carrier charge including surcharges.
    pub charge: Decimal,
    /// Transit days, when the carrier said.
    pub transit_days: Option<u32>,
}

/// What one carrier answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CarrierAnswer {
    /// Carrier name as the tables spell it (`FedEx`, `UPS`).
    pub carrier: String,
    /// Its prices, or `None` when it fell back to the tables.
    pub charges: Option<Vec<LiveCharge>>,
    /// Why it fell back, or how it answered (`answered`, `cached`).
    pub note: String,
}

/// The carriers' APIs, behind a port so the domain stays free of HTTP.
pub trait LiveRater: Send + Sync {
    /// Asks every configured carrier, each bounded by `budget`. Never fails:
    /// a carrier that cannot answer is an answer with `charges: None`.
    fn rates<'a>(
        &'a self,
        shipment: &'a LiveShipment,
        budget: Duration,
    ) -> BoxFuture<'a, Vec<CarrierAnswer>>;
}

/// A rate with where its price came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PricedRate {
    /// Carrier, service, amount (everything beyond goods) and transit days.
    pub rate: ServiceRate,
    /// Priced by the carrier's API rather than the tables.
    pub live: bool,
}

/// The table rates of `rated`, with the carrier charge replaced by the live
/// one wherever a carrier answered for that service. Sorted like the tables'
/// rates: amount, transit days, carrier, service.
pub fn merge(
    freight: &Freight,
    rated: &RatedShipment,
    answers: &[CarrierAnswer],
) -> Vec<PricedRate> {
    let mut out: Vec<PricedRate> = rated
        .rates
        .iter()
        .map(|r| {
            let live = answers
                .iter()
                .filter(|a| a.carrier.eq_ignore_ascii_case(&r.carrier))
                .filter_map(|a| a.charges.as_ref())
                .flatten()
                .find(|c| {
                    freight.service_code(&r.carrier, &r.service) == Some(c.service_code.as_str())
                });
            match live {
                Some(c) => PricedRate {
                    rate: ServiceRate {
                        carrier: r.carrier.clone(),
                        service: r.service.clone(),
                        amount: round_cents(c.charge + rated.boxes_cost + rated.handling_fee),
                        transit_days: c.transit_days.unwrap_or(r.transit_days),
                    },
                    live: true,
                },
                None => PricedRate {
                    rate: r.clone(),
                    live: false,
                },
            }
        })
        .collect();
    out.sort_by(|a, b| {
        (
            a.rate.amount,
            a.rate.transit_days,
            &a.rate.carrier,
            &a.rate.service,
        )
            .cmp(&(
                b.rate.amount,
                b.rate.transit_days,
                &b.rate.carrier,
                &b.rate.service,
            ))
    });
    out
}

/// Which services of a plan were priced live, by shipment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LivePricing {
    /// Per plan (the main plan first, then the alternatives), per shipment:
    /// whether its chosen service was priced live.
    pub live: Vec<Vec<bool>>,
}

/// Offers every shipment of the quote's plans to the carriers within
/// `budget`, then re-chooses each shipment's service on the merged prices by
/// the plan's objective. Plans whose prices changed lose `proven_optimal`,
/// which was proved on table prices.
pub async fn price_quote(
    world: &World,
    rater: &dyn LiveRater,
    quote: &mut Quote,
    ship_to: &Address,
    budget: Duration,
) -> LivePricing {
    // One live request per distinct shipment across the plans.
    let mut jobs: Vec<Job> = Vec::new();
    let plans: Vec<&PlanOutcome> = std::iter::once(&quote.plan)
        .chain(&quote.alternatives)
        .collect();
    for plan in &plans {
        for s in &plan.shipments {
            let items = shipment_items(&s.allocations);
            if jobs
                .iter()
                .any(|j| j.supplier == s.supplier && j.items == items)
            {
                continue;
            }
            let Some(origin) = world.suppliers.get(s.supplier).map(|x| x.origin.clone()) else {
                continue;
            };
            // The planner rated this shipment already; its packing is reused.
            let shipment = LiveShipment {
                origin,
                destination: ship_to.clone(),
                parcels: s.rated.parcels.clone(),
            };
            jobs.push(Job {
                supplier: s.supplier,
                items,
                shipment,
                rated: Arc::clone(&s.rated),
            });
        }
    }
    let answers =
        futures::future::join_all(jobs.iter().map(|j| rater.rates(&j.shipment, budget))).await;
    let merged: Vec<Vec<PricedRate>> = jobs
        .iter()
        .zip(&answers)
        .map(|(j, a)| merge(&world.freight, &j.rated, a))
        .collect();
    let mut pricing = LivePricing::default();
    for plan in std::iter::once(&mut quote.plan).chain(quote.alternatives.iter_mut()) {
        let mut flags = Vec::with_capacity(plan.shipments.len());
        let rates_of = |s: &PlannedShipment| -> Option<&Vec<PricedRate>> {
            let items = shipment_items(&s.allocations);
            jobs.iter()
                .position(|j| j.supplier == s.supplier && j.items == items)
                .map(|i| &merged[i])
        };
        // FASTEST: the quickest arrival any shipment can make sets the plan's
        // arrival; every shipment then takes the cheapest service within it.
        let latest = match plan.objective {
            Objective::Fastest => plan
                .shipments
                .iter()
                .map(|s| {
                    let fastest = rates_of(s)
                        .and_then(|r| r.iter().map(|p| p.rate.transit_days).min())
                        .unwrap_or(s.rate.transit_days);
                    s.processing_days + fastest
                })
                .max(),
            _ => None,
        };
        let mut changed = false;
        for s in &mut plan.shipments {
            let Some(rates) = rates_of(s) else {
                flags.push(false);
                continue;
            };
            let plain: Vec<ServiceRate> = rates.iter().map(|p| p.rate.clone()).collect();
            let limit = match (latest, plan.arrive_within_days) {
                (Some(t), 0) => Some(t),
                (Some(t), w) => Some(t.min(w)),
                (None, 0) => None,
                (None, w) => Some(w),
            };
            let choice = match limit {
                Some(t) => RateChoice::CheapestWithinDays(t.saturating_sub(s.processing_days)),
                None => RateChoice::Cheapest,
            };
            // Keep the planned service when nothing merged fits the limit.
            let best = choose(&plain, choice)
                .cloned()
                .unwrap_or_else(|| s.rate.clone());
            let live = rates.iter().any(|p| p.live && p.rate == best);
            if best != s.rate {
                changed = true;
                s.rate = best;
            }
            flags.push(live);
        }
        if changed {
            plan.freight = plan.shipments.iter().map(|s| s.rate.amount).sum();
            plan.proven_optimal = false;
        }
        pricing.live.push(flags);
    }
    pricing
}

/// One distinct shipment to price live.
struct Job {
    supplier: SupplierId,
    items: Vec<(u32, u32)>,
    shipment: LiveShipment,
    rated: Arc<RatedShipment>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rated() -> RatedShipment {
        let r = |carrier: &str, service: &str, amount: i64, days: u32| ServiceRate {
            carrier: carrier.into(),
            service: service.into(),
            amount: Decimal::new(amount, 2),
            transit_days: days,
        };
        RatedShipment {
            parcels: Vec::new(),
            rates: vec![
                r("FedEx", "FedEx Ground", 1500, 4),
                r("UPS", "UPS Ground", 1600, 4),
            ],
            boxes_cost: Decimal::new(100, 2),
            handling_fee: Decimal::new(200, 2),
        }
    }

    #[test]
    fn live_charges_replace_table_charges_and_keep_boxes_and_handling() {
        let freight = Freight::sample();
        let code = freight
            .service_code("UPS", "UPS Ground")
            .expect("sample has UPS Ground")
            .to_owned();
        let answers = vec![
            CarrierAnswer {
                carrier: "UPS".into(),
                charges: Some(vec![LiveCharge {
                    service_code: code,
                    charge: Decimal::new(800, 2),
                    transit_days: Some(3),
                }]),
                note: "answered".into(),
            },
            CarrierAnswer {
                carrier: "FedEx".into(),
                charges: None,
                note: "timeout".into(),
            },
        ];
        let merged = merge(&freight, &rated(), &answers);
        assert_eq!(
            &*merged[0].rate.carrier, "UPS",
            "the live price is now the cheapest"
        );
        assert_eq!(
            merged[0].rate.amount,
            Decimal::new(1100, 2),
            "8.00 + 1.00 boxes + 2.00 handling"
        );
        assert_eq!(merged[0].rate.transit_days, 3);
        assert!(merged[0].live);
        assert_eq!(merged[1].rate.amount, Decimal::new(1500, 2));
        assert!(!merged[1].live);
    }

    #[test]
    fn no_answers_leave_the_tables_alone() {
        let freight = Freight::sample();
        let merged = merge(&freight, &rated(), &[]);
        assert!(merged.iter().all(|p| !p.live));
        let amounts: Vec<Decimal> = merged.iter().map(|p| p.rate.amount).collect();
        assert_eq!(amounts, vec![Decimal::new(1500, 2), Decimal::new(1600, 2)]);
    }
}

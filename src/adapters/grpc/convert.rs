//! The one place where protobuf meets the domain: requests are validated into
//! domain types here (naming the offending field), and domain results are
//! turned into messages. Messages are destructured without `..`, so a new
//! proto field fails to compile until it is handled here.

use std::collections::HashMap;

use prost_types::Timestamp;
use rust_decimal::Decimal;
use tonic::Status;

use crate::config::QuoteConfig;
use crate::domain::address::Address;
use crate::domain::freight::{FreightError, Parcel};
use crate::domain::live_rates::PricedRate;
use crate::domain::money::{cost_to_decimal, round_cents};
use crate::domain::planner::{Objective, PlanOptions, PlanOutcome, ShortReason};
use crate::domain::quoting::{Demand, Freshness, OfferInfo, Quote, StockSource};
use crate::domain::suppliers::SupplierId;
use crate::domain::world::World;
use crate::limits;
use crate::pb;

/// `INVALID_ARGUMENT` naming the field.
pub fn invalid(field: &str, message: impl std::fmt::Display) -> Status {
    Status::invalid_argument(format!("{field}: {message}"))
}

/// A client's text field, trimmed, within `max_bytes` and free of control
/// characters. The length is checked before anything else looks at the value.
pub fn text<'a>(field: &str, value: &'a str, max_bytes: usize) -> Result<&'a str, Status> {
    if value.len() > max_bytes * 2 {
        // Far too long even with padding: refuse without scanning it.
        return Err(invalid(
            field,
            limits::TextError::TooLong {
                len: value.len(),
                max: max_bytes,
            },
        ));
    }
    let value = value.trim();
    limits::check_text(value, max_bytes).map_err(|e| invalid(field, e))?;
    Ok(value)
}

/// Validates basket lines; unknown SKUs pass with `product: None`, so that the
/// caller decides between a shortfall and an error. Repeated SKUs are merged.
/// Every line is checked (count, SKU text, quantity) before the first index
/// lookup, so a malformed basket costs no index work.
pub fn demands(
    world: &World,
    lines: Vec<pb::BasketLine>,
    limits: &QuoteConfig,
) -> Result<Vec<Demand>, Status> {
    if lines.is_empty() {
        return Err(invalid("lines", "the basket is empty"));
    }
    if lines.len() > limits.basket_lines_max {
        return Err(invalid(
            "lines",
            format!(
                "{} lines, at most {} allowed",
                lines.len(),
                limits.basket_lines_max
            ),
        ));
    }
    let mut checked: Vec<(String, u32)> = Vec::with_capacity(lines.len());
    for (i, line) in lines.into_iter().enumerate() {
        let pb::BasketLine { sku, quantity } = line;
        let field = || format!("lines[{i}].sku");
        let sku = text(&field(), &sku, limits::SKU_BYTES_MAX)?;
        if sku.is_empty() {
            return Err(invalid(&field(), "is empty"));
        }
        if quantity == 0 {
            return Err(invalid(
                &format!("lines[{i}].quantity"),
                "must be at least 1",
            ));
        }
        if quantity > limits.line_quantity_max {
            return Err(too_many(i, sku, quantity, limits));
        }
        checked.push((sku.to_owned(), quantity));
    }
    let mut out: Vec<Demand> = Vec::with_capacity(checked.len());
    let mut seen: HashMap<String, usize> = HashMap::with_capacity(checked.len());
    for (i, (sku, quantity)) in checked.into_iter().enumerate() {
        if let Some(&j) = seen.get(&sku) {
            let total = out[j].qty.saturating_add(quantity);
            if total > limits.line_quantity_max {
                return Err(too_many(i, &sku, total, limits));
            }
            out[j].qty = total;
            continue;
        }
        seen.insert(sku.clone(), out.len());
        let product = world.catalog.by_sku(sku.as_bytes());
        out.push(Demand {
            line: i,
            sku,
            product,
            qty: quantity,
        });
    }
    Ok(out)
}

fn too_many(i: usize, sku: &str, qty: u32, limits: &QuoteConfig) -> Status {
    invalid(
        &format!("lines[{i}].quantity"),
        format!(
            "{qty} units of {sku}, at most {} allowed",
            limits.line_quantity_max
        ),
    )
}

/// Validates an address that freight must be able to rate.
pub fn address(world: &World, a: Option<pb::Address>, field: &str) -> Result<Address, Status> {
    let Some(pb::Address {
        country_code,
        postal_code,
        residential,
    }) = a
    else {
        return Err(invalid(field, "is required"));
    };
    let country_code = country_code.trim().to_ascii_uppercase();
    if country_code.len() != 2 || !country_code.bytes().all(|b| b.is_ascii_alphabetic()) {
        return Err(invalid(
            &format!("{field}.country_code"),
            format!(
                "`{}` is not an ISO 3166-1 alpha-2 code",
                limits::truncate_for_message(&country_code)
            ),
        ));
    }
    let postal_code = text(
        &format!("{field}.postal_code"),
        &postal_code,
        limits::POSTAL_CODE_BYTES_MAX,
    )?
    .to_owned();
    world
        .freight
        .validate_address(&country_code, &postal_code)
        .map_err(|e| {
            let part = match e {
                FreightError::BadPostalCode { .. } => "postal_code",
                _ => "country_code",
            };
            invalid(&format!("{field}.{part}"), e)
        })?;
    Ok(Address {
        country_code,
        postal_code,
        residential,
    })
}

/// Plan options and excluded suppliers from the request's options.
pub fn options(
    world: &World,
    o: Option<pb::QuoteOptions>,
) -> Result<(PlanOptions, Vec<SupplierId>, u32), Status> {
    let pb::QuoteOptions {
        objective,
        allow_partial,
        allow_split_lines,
        max_shipments,
        exclude_suppliers,
        realtime_budget_ms,
        arrive_within_days,
    } = o.unwrap_or_default();
    let objective = match pb::Objective::try_from(objective) {
        Ok(pb::Objective::Unspecified | pb::Objective::Cheapest) => Objective::Cheapest,
        Ok(pb::Objective::Fastest) => Objective::Fastest,
        Ok(pb::Objective::FewestShipments) => Objective::FewestShipments,
        Err(_) => {
            return Err(invalid(
                "options.objective",
                format!("unknown value {objective}"),
            ))
        }
    };
    if exclude_suppliers.len() > limits::EXCLUDED_SUPPLIERS_MAX {
        return Err(invalid(
            "options.exclude_suppliers",
            format!("at most {} allowed", limits::EXCLUDED_SUPPLIERS_MAX),
        ));
    }
    let mut excluded = Vec::with_capacity(exclude_suppliers.len());
    for (i, id) in exclude_suppliers.iter().enumerate() {
        excluded.push(supplier(
            world,
            &format!("options.exclude_suppliers[{i}]"),
            id,
        )?);
    }
    Ok((
        PlanOptions {
            objective,
            allow_partial,
            allow_split_lines,
            max_shipments,
            arrive_within_days,
        },
        excluded,
        realtime_budget_ms,
    ))
}

/// A supplier named by the client; INVALID_ARGUMENT naming the field when
/// malformed or unknown.
pub fn supplier(world: &World, field: &str, id: &str) -> Result<SupplierId, Status> {
    let id = text(field, id, limits::ID_BYTES_MAX)?;
    world
        .suppliers
        .id_of(id)
        .ok_or_else(|| invalid(field, format!("unknown supplier `{id}`")))
}

/// Money in the merchant's currency.
pub fn money(amount: Decimal, currency: &str) -> pb::Money {
    pb::Money {
        currency_code: currency.to_owned(),
        amount: amount.to_string(),
    }
}

/// A timestamp from Unix milliseconds.
pub fn timestamp_ms(ms: i64) -> Timestamp {
    Timestamp {
        seconds: ms.div_euclid(1000),
        nanos: (ms.rem_euclid(1000) * 1_000_000) as i32,
    }
}

/// A timestamp from Unix seconds; `None` for "never".
pub fn timestamp_s(s: u32) -> Option<Timestamp> {
    (s > 0).then(|| Timestamp {
        seconds: i64::from(s),
        nanos: 0,
    })
}

fn pb_address(a: &Address) -> pb::Address {
    pb::Address {
        country_code: a.country_code.clone(),
        postal_code: a.postal_code.clone(),
        residential: a.residential,
    }
}

fn source(s: StockSource) -> pb::StockSource {
    match s {
        StockSource::Feed => pb::StockSource::Feed,
        StockSource::Realtime => pb::StockSource::Realtime,
        StockSource::CachedRealtime => pb::StockSource::CachedRealtime,
    }
}

/// An offer as the API shows it.
pub fn offer(world: &World, o: &OfferInfo) -> pb::Offer {
    let supplier = world.suppliers.get(o.supplier);
    pb::Offer {
        supplier_id: supplier.map(|s| s.id.clone()).unwrap_or_default(),
        supplier_sku: o.supplier_sku.clone(),
        available: o.available,
        unit_cost: Some(money(cost_to_decimal(o.cost), &world.currency)),
        source: source(o.source) as i32,
        as_of: timestamp_s(o.as_of_s),
        origin: supplier.map(|s| pb_address(&s.origin)),
    }
}

/// Real-time outcome.
pub fn freshness(f: Freshness) -> pb::Freshness {
    let Freshness {
        queried,
        answered,
        timed_out,
        failed,
        cached,
    } = f;
    pb::Freshness {
        suppliers_queried: queried,
        suppliers_answered: answered,
        suppliers_timed_out: timed_out,
        suppliers_failed: failed,
        suppliers_cached: cached,
    }
}

/// A parcel as the API shows it.
pub fn parcel(p: &Parcel) -> pb::Parcel {
    let Parcel {
        box_id,
        weight_g,
        billable_weight_g,
        length_mm,
        width_mm,
        height_mm,
    } = p;
    pb::Parcel {
        box_id: box_id.clone(),
        weight_g: *weight_g,
        billable_weight_g: *billable_weight_g,
        length_mm: *length_mm,
        width_mm: *width_mm,
        height_mm: *height_mm,
    }
}

fn objective(o: Objective) -> pb::Objective {
    match o {
        Objective::Cheapest => pb::Objective::Cheapest,
        Objective::Fastest => pb::Objective::Fastest,
        Objective::FewestShipments => pb::Objective::FewestShipments,
    }
}

/// The shortfall reason as the API names it.
pub fn reason(r: ShortReason) -> pb::shortfall::Reason {
    match r {
        ShortReason::UnknownSku => pb::shortfall::Reason::UnknownSku,
        ShortReason::OutOfStock => pb::shortfall::Reason::OutOfStock,
        ShortReason::Excluded => pb::shortfall::Reason::Excluded,
        ShortReason::ShipmentLimit => pb::shortfall::Reason::ShipmentLimit,
        ShortReason::NotShippable => pb::shortfall::Reason::NotShippable,
    }
}

/// A plan as the API shows it.
/// `live[i]` says whether shipment `i`'s freight was priced by the carrier's API.
pub fn plan(
    world: &World,
    quote: &Quote,
    p: &PlanOutcome,
    lines: &[Demand],
    live: &[bool],
) -> pb::Plan {
    let currency = &world.currency;
    let goods = round_cents(p.goods);
    let freight = round_cents(p.freight);
    let shipments = p
        .shipments
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let supplier = world.suppliers.get(s.supplier);
            pb::Shipment {
                supplier_id: supplier.map(|x| x.id.clone()).unwrap_or_default(),
                origin: supplier.map(|x| pb_address(&x.origin)),
                lines: s
                    .allocations
                    .iter()
                    .map(|a| pb::PlanLine {
                        sku: lines.get(a.line).map(|d| d.sku.clone()).unwrap_or_default(),
                        supplier_sku: quote
                            .supplier_skus
                            .get(&(s.supplier, a.product))
                            .cloned()
                            .unwrap_or_default(),
                        quantity: a.qty,
                        unit_cost: Some(money(cost_to_decimal(a.cost), currency)),
                        source: source(
                            quote
                                .sources
                                .get(&(s.supplier, a.product))
                                .copied()
                                .unwrap_or(StockSource::Feed),
                        ) as i32,
                        as_of: timestamp_s(a.as_of_s),
                    })
                    .collect(),
                parcels: s.rated.parcels.iter().map(parcel).collect(),
                carrier: s.rate.carrier.to_string(),
                service: s.rate.service.to_string(),
                freight: Some(money(s.rate.amount, currency)),
                transit_days: s.rate.transit_days,
                processing_days: s.processing_days,
                freight_live: live.get(i).copied().unwrap_or(false),
            }
        })
        .collect();
    pb::Plan {
        quote_id: quote.quote_id.clone(),
        shipments,
        unfulfilled: p
            .shortfalls
            .iter()
            .map(|s| pb::Shortfall {
                sku: lines.get(s.line).map(|d| d.sku.clone()).unwrap_or_default(),
                quantity_missing: s.missing,
                reason: reason(s.reason) as i32,
            })
            .collect(),
        goods_total: Some(money(goods, currency)),
        freight_total: Some(money(freight, currency)),
        grand_total: Some(money(goods + freight, currency)),
        freshness: Some(freshness(quote.freshness)),
        valid_until: Some(timestamp_ms(quote.valid_until_ms)),
        proven_optimal: p.proven_optimal,
        objective: objective(p.objective) as i32,
    }
}

/// A rated shipment as `RateShipment` answers it.
pub fn rated(parcels: &[Parcel], rates: &[PricedRate], currency: &str) -> pb::RateShipmentResponse {
    pb::RateShipmentResponse {
        parcels: parcels.iter().map(parcel).collect(),
        rates: rates
            .iter()
            .map(|p| pb::Rate {
                carrier: p.rate.carrier.to_string(),
                service: p.rate.service.to_string(),
                amount: Some(money(p.rate.amount, currency)),
                transit_days: p.rate.transit_days,
                live: p.live,
            })
            .collect(),
    }
}

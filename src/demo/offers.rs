//! Who offers what, at which stock and cost, and the feed and mapping files
//! that carry it.

use rand::seq::SliceRandom;
use rand::Rng;

use super::catalog::{push_ean, push_sku, Catalog};
use super::suppliers::{CodeFormat, Column, IdStyle, Supplier};
use super::util::{geometric, pick, push_field, push_fixed, push_padded, push_u64};
use super::words::BRANDS;

/// Most suppliers offering one product.
pub(super) const MAX_OFFERS_PER_PRODUCT: usize = 8;

/// Relative frequency of a product having 1..=8 suppliers: a long tail,
/// most products carried by two to five.
const OFFER_COUNT_WEIGHTS: [u32; MAX_OFFERS_PER_PRODUCT] = [10, 22, 26, 20, 12, 6, 3, 1];

/// Largest cost deviation from the product's base cost, in basis points.
const MAX_COST_DEVIATION_BP: i64 = 1_200;

/// One supplier's offer of one product.
#[derive(Clone, Copy)]
pub(super) struct Offer {
    /// Catalog index.
    pub product: u32,
    /// Units in stock.
    pub qty: u32,
    /// Unit cost in 10^-scale dollars (the supplier's `cost_scale`).
    pub cost_units: u64,
    /// The supplier's own item number (rendered per its [`CodeFormat`]).
    pub code: u64,
}

/// Distributes the catalog over the suppliers; returns each supplier's
/// offers in its own item-code order, as distributors export them.
pub(super) fn build<R: Rng>(
    rng: &mut R,
    catalog: &Catalog,
    suppliers: &[Supplier],
) -> Vec<Vec<Offer>> {
    let mut offers: Vec<Vec<Offer>> = suppliers.iter().map(|_| Vec::new()).collect();
    if suppliers.is_empty() {
        return offers;
    }
    let mut cumulative = Vec::with_capacity(suppliers.len());
    let mut total = 0.0;
    for supplier in suppliers {
        total += supplier.popularity;
        cumulative.push(total);
    }
    let weight_total: u32 = OFFER_COUNT_WEIGHTS.iter().sum();
    let max_offers = suppliers.len().min(MAX_OFFERS_PER_PRODUCT);

    for (product_index, product) in catalog.products.iter().enumerate() {
        let mut draw = rng.random_range(0..weight_total);
        let mut wanted = 1;
        for (n, weight) in OFFER_COUNT_WEIGHTS.iter().enumerate() {
            if draw < *weight {
                wanted = n + 1;
                break;
            }
            draw -= weight;
        }
        let wanted = wanted.min(max_offers);

        let mut chosen = [0usize; MAX_OFFERS_PER_PRODUCT];
        let mut len = 0;
        // Popularity-weighted sampling without replacement by rejection; the
        // attempt cap keeps tiny supplier sets from spinning.
        let mut attempts = 0;
        while len < wanted && attempts < 64 {
            attempts += 1;
            let u = rng.random::<f64>() * total;
            let pick = cumulative
                .partition_point(|&c| c <= u)
                .min(suppliers.len() - 1);
            if !chosen[..len].contains(&pick) {
                chosen[len] = pick;
                len += 1;
            }
        }
        for candidate in 0..suppliers.len() {
            if len >= wanted {
                break;
            }
            if !chosen[..len].contains(&candidate) {
                chosen[len] = candidate;
                len += 1;
            }
        }

        for &supplier_index in &chosen[..len] {
            let (Some(supplier), Some(list)) = (
                suppliers.get(supplier_index),
                offers.get_mut(supplier_index),
            ) else {
                continue;
            };
            let qty = if rng.random_range(0..10_000) < supplier.zero_rate_bp {
                0
            } else if rng.random_bool(0.88) {
                geometric(rng, 12.0, 9_999)
            } else {
                geometric(rng, 150.0, 5_000)
            };
            let deviation_bp = (supplier.cost_bias_bp + rng.random_range(-700..=700))
                .clamp(-MAX_COST_DEVIATION_BP, MAX_COST_DEVIATION_BP);
            // base cents × (1 + deviation), expressed in the supplier's scale.
            let numerator = product.base_cost_cents as i64 * (10_000 + deviation_bp);
            let divisor = if supplier.cost_scale >= 4 {
                100
            } else {
                10_000
            };
            let cost_units = ((numerator + divisor / 2) / divisor).max(1) as u64;
            list.push(Offer {
                product: product_index as u32,
                qty: qty as u32,
                cost_units,
                code: 0,
            });
        }
    }

    // Item numbers rise with gaps in the supplier's own order, which is
    // unrelated to our SKU order: shuffle, then walk upwards.
    for list in offers.iter_mut() {
        list.shuffle(rng);
        let mut code = rng.random_range(100..5_000u64);
        for offer in list.iter_mut() {
            code += rng.random_range(1..=19);
            offer.code = code;
        }
    }
    offers
}

/// Digits the supplier pads its item numbers to: at least five, enough for
/// its largest number (offers are sorted by code, so that is the last).
fn code_digits(offers: &[Offer]) -> usize {
    let mut largest = offers.last().map_or(0, |offer| offer.code);
    let mut digits = 0;
    while largest > 0 {
        largest /= 10;
        digits += 1;
    }
    digits.max(5)
}

/// Appends the supplier's code for an offer.
fn push_code(buf: &mut Vec<u8>, supplier: &Supplier, code: u64, digits: usize) {
    match supplier.code_format {
        CodeFormat::Dashed => {
            buf.extend_from_slice(supplier.code.as_bytes());
            buf.push(b'-');
            push_padded(buf, code, digits);
        }
        CodeFormat::Compact => {
            buf.extend_from_slice(supplier.code.as_bytes());
            push_padded(buf, code, digits + 1);
        }
        CodeFormat::Numeric => push_padded(buf, code, digits + 2),
    }
}

/// Renders `feeds/<id>.csv`.
pub(super) fn write_feed<R: Rng>(
    rng: &mut R,
    catalog: &Catalog,
    supplier: &Supplier,
    offers: &[Offer],
) -> Vec<u8> {
    let digits = code_digits(offers);
    let mut buf = Vec::with_capacity(128 + offers.len() * (24 + supplier.columns.len() * 12));
    for (i, column) in supplier.columns.iter().enumerate() {
        if i > 0 {
            buf.push(b',');
        }
        buf.extend_from_slice(column.header().as_bytes());
    }
    buf.push(b'\n');
    for offer in offers {
        let index = offer.product as usize;
        let Some(product) = catalog.products.get(index) else {
            continue;
        };
        for (i, column) in supplier.columns.iter().enumerate() {
            if i > 0 {
                buf.push(b',');
            }
            match column {
                Column::SupplierSku => push_code(&mut buf, supplier, offer.code, digits),
                Column::Qty => push_u64(&mut buf, u64::from(offer.qty)),
                Column::UnitCost => push_fixed(&mut buf, offer.cost_units, supplier.cost_scale),
                Column::Sku => push_sku(&mut buf, index),
                Column::Mpn => catalog.push_mpn(&mut buf, index),
                Column::Ean => push_ean(&mut buf, product.ean),
                Column::Currency => buf.extend_from_slice(b"USD"),
                Column::WeightG => push_u64(&mut buf, product.weight_g),
                Column::Description => push_field(&mut buf, catalog.name(product)),
                Column::Warehouse => {
                    let warehouse = pick(rng, &supplier.warehouses).map_or("", String::as_str);
                    push_field(&mut buf, warehouse);
                }
                Column::Brand => {
                    push_field(&mut buf, BRANDS.get(product.brand).map_or("", |b| b.name))
                }
                Column::MinOrderQty => {
                    let moq = pick(rng, &[1, 1, 1, 1, 1, 1, 2, 5, 10, 12])
                        .copied()
                        .unwrap_or(1);
                    push_u64(&mut buf, moq);
                }
            }
        }
        buf.push(b'\n');
    }
    buf
}

/// Renders `mappings/<id>.csv`, or `None` for a supplier without one: every
/// row for mapping-file suppliers, a handful of (agreeing) override rows for
/// the others that have one.
pub(super) fn write_mapping<R: Rng>(
    rng: &mut R,
    supplier: &Supplier,
    offers: &[Offer],
) -> Option<Vec<u8>> {
    let digits = code_digits(offers);
    let rows: Vec<&Offer> = match supplier.style {
        IdStyle::Mapping => offers.iter().collect(),
        _ if supplier.has_overrides && !offers.is_empty() => {
            let wanted = rng.random_range(5..=12usize).min(offers.len());
            let stride = (offers.len() / wanted).max(1);
            offers.iter().step_by(stride).take(wanted).collect()
        }
        _ if supplier.has_overrides => Vec::new(),
        _ => return None,
    };
    let mut buf = Vec::with_capacity(32 + rows.len() * 32);
    buf.extend_from_slice(b"supplier_id,supplier_sku,sku\n");
    for offer in rows {
        buf.extend_from_slice(supplier.id.as_bytes());
        buf.push(b',');
        push_code(&mut buf, supplier, offer.code, digits);
        buf.push(b',');
        push_sku(&mut buf, offer.product as usize);
        buf.push(b'\n');
    }
    Some(buf)
}

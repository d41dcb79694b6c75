//! Distributors: identity, origin, fees, feed layout, and `suppliers.toml`.

use rand::seq::SliceRandom;
use rand::Rng;
use rust_decimal::Decimal;

use super::util::{pick, push_padded, push_toml_str};
use super::words::{
    CA_FSA_LETTERS, CA_LETTERS, GB_AREAS, GB_UNIT_LETTERS, SUPPLIER_PREFIXES, SUPPLIER_SUFFIXES,
    US_ZIP_PREFIXES,
};

/// How a supplier's feed names our products.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum IdStyle {
    /// Carries our `sku` column.
    Sku,
    /// Carries only the manufacturer part number.
    Mpn,
    /// Carries only the EAN barcode.
    Ean,
    /// Carries no identifier; a mapping file links its codes to our SKUs.
    Mapping,
}

/// A feed column.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Column {
    SupplierSku,
    Qty,
    UnitCost,
    Sku,
    Mpn,
    Ean,
    Currency,
    WeightG,
    Description,
    Warehouse,
    Brand,
    MinOrderQty,
}

impl Column {
    /// Header name in the feed.
    pub fn header(self) -> &'static str {
        match self {
            Column::SupplierSku => "supplier_sku",
            Column::Qty => "qty",
            Column::UnitCost => "unit_cost",
            Column::Sku => "sku",
            Column::Mpn => "mpn",
            Column::Ean => "ean",
            Column::Currency => "currency",
            Column::WeightG => "weight_g",
            Column::Description => "description",
            Column::Warehouse => "warehouse",
            Column::Brand => "brand",
            Column::MinOrderQty => "min_order_qty",
        }
    }
}

/// How a supplier spells its own item codes.
#[derive(Clone, Copy, Debug)]
pub(super) enum CodeFormat {
    /// `KD-88412`
    Dashed,
    /// `KD884120`
    Compact,
    /// `0088412`
    Numeric,
}

/// Where a supplier ships from.
pub(super) struct Origin {
    /// ISO 3166-1 alpha-2.
    pub country_code: &'static str,
    /// Postal code in the country's own format.
    pub postal_code: String,
    /// Two-letter region, used for warehouse codes.
    pub region: String,
}

/// One distributor.
pub(super) struct Supplier {
    /// `SUP001`.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Letters prefixing its item codes (initials of its name).
    pub code: String,
    /// How its codes look.
    pub code_format: CodeFormat,
    /// Which identifier its feed carries.
    pub style: IdStyle,
    /// Whether its gateway answers real-time stock queries.
    pub realtime: bool,
    /// Whether a (small) mapping file of override rows accompanies a
    /// non-mapping supplier.
    pub has_overrides: bool,
    /// Shipping origin.
    pub origin: Origin,
    /// Per-shipment handling fee in cents.
    pub handling_fee_cents: i64,
    /// Days before the carrier collects.
    pub processing_days: u32,
    /// How often the feed is refreshed.
    pub interval_secs: u32,
    /// Relative share of products this supplier carries (Zipf-like).
    pub popularity: f64,
    /// Share of its offers that are out of stock, in basis points.
    pub zero_rate_bp: u32,
    /// Its general price level against the base cost, in basis points.
    pub cost_bias_bp: i64,
    /// Decimal places of its unit costs (2, a few use 4).
    pub cost_scale: u32,
    /// Feed columns in the supplier's order.
    pub columns: Vec<Column>,
    /// Warehouse codes it reports stock from.
    pub warehouses: Vec<String>,
}

/// Real-time-capable supplier count: one in eight, rounded, at least one.
pub(super) fn realtime_count(suppliers: usize) -> usize {
    if suppliers == 0 {
        0
    } else {
        ((suppliers + 4) / 8).max(1)
    }
}

/// Generates `count` suppliers.
pub(super) fn build<R: Rng>(rng: &mut R, count: usize) -> Vec<Supplier> {
    let countries = country_plan(rng, count);
    let styles = style_plan(rng, count);
    let mut realtime = vec![false; count];
    realtime
        .iter_mut()
        .take(realtime_count(count))
        .for_each(|flag| *flag = true);
    realtime.shuffle(rng);
    // Popularity ranks are shuffled so SUP001 is not automatically the giant.
    let mut ranks: Vec<usize> = (0..count).collect();
    ranks.shuffle(rng);
    let mut name_slots: Vec<usize> =
        (0..SUPPLIER_PREFIXES.len() * SUPPLIER_SUFFIXES.len()).collect();
    name_slots.shuffle(rng);
    let override_quota = count / 40;
    let mut overrides_given = 0;

    let mut suppliers = Vec::with_capacity(count);
    for index in 0..count {
        let country = countries.get(index).copied().unwrap_or("US");
        let style = styles.get(index).copied().unwrap_or(IdStyle::Sku);
        let (name, code) = supplier_name(index, &name_slots, country);
        let origin = origin(rng, country);
        let rank = ranks.get(index).copied().unwrap_or(index);
        let has_overrides =
            style != IdStyle::Mapping && overrides_given < override_quota && rng.random_bool(0.3);
        if has_overrides {
            overrides_given += 1;
        }
        // Fees are mostly round quarters, as price lists are.
        let handling_fee_cents = if rng.random_bool(0.8) {
            rng.random_range(0..=20) * 25
        } else {
            rng.random_range(0..=500)
        };
        let processing_days = match rng.random_range(0..10) {
            0..=2 => 0,
            3..=7 => 1,
            _ => 2,
        };
        let interval_secs = pick(rng, &[900, 1800, 3600, 3600, 3600, 7200, 14400, 86400])
            .copied()
            .unwrap_or(3600);
        let code_format = match rng.random_range(0..3) {
            0 => CodeFormat::Dashed,
            1 => CodeFormat::Compact,
            _ => CodeFormat::Numeric,
        };
        let columns = columns(rng, style);
        let warehouse_count = rng.random_range(1..=3);
        let warehouses = (1..=warehouse_count)
            .map(|n| format!("{}{}", origin.region, n))
            .collect();
        suppliers.push(Supplier {
            id: supplier_id(index),
            name,
            code,
            code_format,
            style,
            realtime: realtime.get(index).copied().unwrap_or(false),
            has_overrides,
            origin,
            handling_fee_cents,
            processing_days,
            interval_secs,
            popularity: 1.0 / (rank as f64 + 1.0),
            zero_rate_bp: rng.random_range(1200..=3800),
            cost_bias_bp: rng.random_range(-500..=500),
            cost_scale: if rng.random_bool(0.1) { 4 } else { 2 },
            columns,
            warehouses,
        });
    }
    suppliers
}

/// `SUP001` for index 0.
fn supplier_id(index: usize) -> String {
    let mut buf = b"SUP".to_vec();
    push_padded(&mut buf, index as u64 + 1, 3);
    String::from_utf8(buf).unwrap_or_default()
}

/// Countries in proportion: mostly US, a few Canadian, British and German.
fn country_plan<R: Rng>(rng: &mut R, count: usize) -> Vec<&'static str> {
    let share = |percent: usize| (count * percent + 50) / 100;
    let mut plan = Vec::with_capacity(count);
    plan.extend(std::iter::repeat_n("CA", share(4)));
    plan.extend(std::iter::repeat_n("GB", share(3)));
    plan.extend(std::iter::repeat_n("DE", share(3)));
    plan.truncate(count);
    let rest = count - plan.len();
    plan.extend(std::iter::repeat_n("US", rest));
    plan.shuffle(rng);
    plan
}

/// Identification styles in proportion: about 8% mapping-file suppliers
/// (at least one once there are five suppliers), the rest split between
/// SKU, MPN and EAN.
fn style_plan<R: Rng>(rng: &mut R, count: usize) -> Vec<IdStyle> {
    let mapping = if count >= 5 {
        ((count * 8 + 50) / 100).max(1)
    } else {
        0
    };
    let rest = count - mapping;
    let sku = (rest * 35 + 50) / 100;
    let mpn = ((rest * 35 + 50) / 100).min(rest - sku);
    let ean = rest - sku - mpn;
    let mut plan = Vec::with_capacity(count);
    plan.extend(std::iter::repeat_n(IdStyle::Mapping, mapping));
    plan.extend(std::iter::repeat_n(IdStyle::Sku, sku));
    plan.extend(std::iter::repeat_n(IdStyle::Mpn, mpn));
    plan.extend(std::iter::repeat_n(IdStyle::Ean, ean));
    plan.shuffle(rng);
    plan
}

/// A unique name from the shuffled prefix × suffix grid, with a legal-form
/// suffix for foreign suppliers, and its initials as the item-code prefix.
fn supplier_name(index: usize, slots: &[usize], country: &str) -> (String, String) {
    let suffixes = SUPPLIER_SUFFIXES.len();
    let slot = slots
        .get(index % slots.len().max(1))
        .copied()
        .unwrap_or(index);
    let prefix = SUPPLIER_PREFIXES
        .get(slot / suffixes)
        .copied()
        .unwrap_or("Allied");
    let suffix = SUPPLIER_SUFFIXES
        .get(slot % suffixes)
        .copied()
        .unwrap_or("Supply");
    let mut name = format!("{prefix} {suffix}");
    // Past the grid, a number keeps names unique.
    if index >= slots.len() {
        name.push_str(&format!(" {}", index / slots.len().max(1) + 1));
    }
    match country {
        "GB" => name.push_str(" Ltd"),
        "DE" => name.push_str(" GmbH"),
        "CA" => name.push_str(" Inc."),
        _ => {}
    }
    let code: String = format!("{prefix} {suffix}")
        .split([' ', '-'])
        .filter_map(|word| word.chars().next())
        .filter(char::is_ascii_alphabetic)
        .take(3)
        .collect::<String>()
        .to_ascii_uppercase();
    (name, code)
}

/// A realistic origin for the country.
fn origin<R: Rng>(rng: &mut R, country: &'static str) -> Origin {
    let letter = |rng: &mut R, set: &[u8]| char::from(pick(rng, set).copied().unwrap_or(b'A'));
    match country {
        "CA" => {
            let first = letter(rng, CA_FSA_LETTERS);
            let postal_code = format!(
                "{}{}{} {}{}{}",
                first,
                rng.random_range(1..=9),
                letter(rng, CA_LETTERS),
                rng.random_range(0..=9),
                letter(rng, CA_LETTERS),
                rng.random_range(0..=9),
            );
            let region = match first {
                'H' | 'J' => "QC",
                'V' => "BC",
                'T' => "AB",
                _ => "ON",
            };
            Origin {
                country_code: "CA",
                postal_code,
                region: region.to_string(),
            }
        }
        "GB" => {
            let area = pick(rng, GB_AREAS).copied().unwrap_or("DE");
            let postal_code = format!(
                "{}{} {}{}{}",
                area,
                rng.random_range(1..=28),
                rng.random_range(0..=9),
                letter(rng, GB_UNIT_LETTERS),
                letter(rng, GB_UNIT_LETTERS),
            );
            Origin {
                country_code: "GB",
                postal_code,
                region: area.to_string(),
            }
        }
        "DE" => Origin {
            country_code: "DE",
            postal_code: format!("{:05}", rng.random_range(1_067..=99_998)),
            region: "DE".to_string(),
        },
        _ => {
            let (state, low, high) = pick(rng, US_ZIP_PREFIXES)
                .copied()
                .unwrap_or(("NJ", 70, 89));
            let zip = rng.random_range(low..=high) * 100 + rng.random_range(1..=99);
            Origin {
                country_code: "US",
                postal_code: format!("{zip:05}"),
                region: state.to_string(),
            }
        }
    }
}

/// The supplier's columns in its own order: the three required ones, its
/// identifier, and a random selection of optional and unknown extras.
fn columns<R: Rng>(rng: &mut R, style: IdStyle) -> Vec<Column> {
    let mut columns = vec![Column::SupplierSku, Column::Qty, Column::UnitCost];
    match style {
        IdStyle::Sku => {
            columns.push(Column::Sku);
            // Some SKU suppliers echo the MPN as well; it names the same product.
            if rng.random_bool(0.3) {
                columns.push(Column::Mpn);
            }
        }
        IdStyle::Mpn => columns.push(Column::Mpn),
        IdStyle::Ean => columns.push(Column::Ean),
        IdStyle::Mapping => {}
    }
    for (column, probability) in [
        (Column::Currency, 0.3),
        (Column::WeightG, 0.3),
        (Column::Description, 0.4),
        (Column::Warehouse, 0.3),
        (Column::Brand, 0.2),
        (Column::MinOrderQty, 0.15),
    ] {
        if rng.random_bool(probability) {
            columns.push(column);
        }
    }
    columns.shuffle(rng);
    columns
}

/// A money amount from integer cents.
pub(super) fn cents(amount_cents: i64) -> Decimal {
    Decimal::new(amount_cents, 2)
}

/// Renders `suppliers.toml`.
pub(super) fn write_toml(suppliers: &[Supplier], seed: u64) -> Vec<u8> {
    let mut out = String::with_capacity(64 + suppliers.len() * 420);
    out.push_str(&format!(
        "# stockroute demo suppliers (seed {seed}): generated by `stockroute demo-data`.\n"
    ));
    for supplier in suppliers {
        out.push_str("\n[[supplier]]\nid = ");
        push_toml_str(&mut out, &supplier.id);
        out.push_str("\nname = ");
        push_toml_str(&mut out, &supplier.name);
        out.push_str("\ncurrency = \"USD\"\nhandling_fee = ");
        push_toml_str(&mut out, &cents(supplier.handling_fee_cents).to_string());
        out.push_str(&format!(
            "\nprocessing_days = {}\n",
            supplier.processing_days
        ));
        out.push_str("origin = { country_code = ");
        push_toml_str(&mut out, supplier.origin.country_code);
        out.push_str(", postal_code = ");
        push_toml_str(&mut out, &supplier.origin.postal_code);
        out.push_str(", residential = false }\n");
        out.push_str(&format!(
            "feed = {{ source = \"feeds/{}.csv\", kind = \"full\", interval_secs = {} }}\n",
            supplier.id, supplier.interval_secs
        ));
        if supplier.style == IdStyle::Mapping || supplier.has_overrides {
            out.push_str(&format!("mapping = \"mappings/{}.csv\"\n", supplier.id));
        }
        if supplier.realtime {
            out.push_str(&format!(
                "realtime = {{ base_url = \"fake:{}\" }}\n",
                supplier.id
            ));
        }
        // Every demo supplier takes purchase orders, served by the fake suppliers.
        out.push_str(&format!(
            "orders = {{ base_url = \"fake:{}\" }}\n",
            supplier.id
        ));
    }
    out.into_bytes()
}

//! The merchant's catalog: products with SKU, MPN, EAN, name, weight and size.

use rand::Rng;

use super::util::{log_normal, pick, push_field, push_padded, push_u64, std_normal, to_int};
use super::words::{ADJECTIVES, BRANDS, CATEGORIES};

/// Heaviest product the merchant ships (parcel carriers' usual limit).
pub(super) const MAX_WEIGHT_G: u64 = 30_000;

/// Multiplier that scrambles product indices into MPN numbers; odd and not a
/// multiple of 3, so it is invertible modulo 36^7 and MPNs stay unique.
const MPN_MULTIPLIER: u64 = 2_654_435_761;
/// 36^7: seven base-36 characters.
const MPN_MODULUS: u64 = 78_364_164_096;
/// Multiplier that scrambles product indices into EAN item references; coprime
/// to 10, so it is invertible modulo 10^9 and EANs stay unique within a brand.
const EAN_MULTIPLIER: u64 = 387_420_489;
const EAN_MODULUS: u64 = 1_000_000_000;
/// First GS1 prefix handed to brands (060–139 are US/Canada company prefixes).
const EAN_PREFIX_BASE: u64 = 60;

/// One catalog product.
pub(super) struct Product {
    /// Index into [`BRANDS`].
    pub brand: usize,
    /// Shipping weight.
    pub weight_g: u64,
    /// Length, width and height of the packed item.
    pub dims_mm: [u64; 3],
    /// The cost suppliers scatter their prices around, in cents.
    pub base_cost_cents: u64,
    /// The 13-digit EAN including its check digit.
    pub ean: u64,
    /// Byte range of the name in [`Catalog::names`].
    name: (usize, usize),
}

/// All products plus the text arena their names live in (one allocation
/// instead of one per product).
pub(super) struct Catalog {
    /// Products; index `i` has SKU `SR-{i+1:06}`.
    pub products: Vec<Product>,
    names: String,
    mpn_salt: u64,
}

impl Catalog {
    /// The product's display name.
    pub fn name(&self, product: &Product) -> &str {
        self.names.get(product.name.0..product.name.1).unwrap_or("")
    }

    /// Appends the MPN of product `index`: brand code, dash, seven base-36 characters.
    pub fn push_mpn(&self, buf: &mut Vec<u8>, index: usize) {
        let Some(product) = self.products.get(index) else {
            return;
        };
        let code = BRANDS.get(product.brand).map_or("GEN", |b| b.code);
        buf.extend_from_slice(code.as_bytes());
        buf.push(b'-');
        let mut x = (index as u64)
            .wrapping_mul(MPN_MULTIPLIER)
            .wrapping_add(self.mpn_salt)
            % MPN_MODULUS;
        let mut chars = [b'0'; 7];
        for slot in chars.iter_mut().rev() {
            let digit = (x % 36) as u8;
            *slot = if digit < 10 {
                b'0' + digit
            } else {
                b'A' + digit - 10
            };
            x /= 36;
        }
        buf.extend_from_slice(&chars);
    }
}

/// Appends our SKU for product `index` (`SR-000001` for index 0).
pub(super) fn push_sku(buf: &mut Vec<u8>, index: usize) {
    buf.extend_from_slice(b"SR-");
    push_padded(buf, index as u64 + 1, 6);
}

/// Appends a 13-digit EAN.
pub(super) fn push_ean(buf: &mut Vec<u8>, ean: u64) {
    push_padded(buf, ean, 13);
}

/// The EAN-13 check digit of the 12 leading digits in `body`.
pub(super) fn ean_check_digit(body: u64) -> u64 {
    // Weights 3,1,3,1... from the rightmost data digit.
    let mut sum = 0;
    let mut rest = body;
    for position in 0..12 {
        let digit = rest % 10;
        rest /= 10;
        sum += if position % 2 == 0 { digit * 3 } else { digit };
    }
    (10 - sum % 10) % 10
}

/// Generates `count` products.
pub(super) fn build<R: Rng>(rng: &mut R, count: usize) -> Catalog {
    let mpn_salt = rng.random_range(0..MPN_MODULUS);
    let ean_salt = rng.random_range(0..EAN_MODULUS);
    let mut products = Vec::with_capacity(count);
    let mut names = String::with_capacity(count * 40);
    for index in 0..count {
        let brand = rng.random_range(0..BRANDS.len());
        let category_index = rng.random_range(0..CATEGORIES.len());
        let Some(category) = CATEGORIES.get(category_index) else {
            continue;
        };

        let start = names.len();
        push_name(rng, &mut names, brand, category_index);
        let name = (start, names.len());

        let mut weight_g = log_normal(
            rng,
            category.median_weight_g,
            category.weight_sigma,
            1,
            MAX_WEIGHT_G,
        );
        // A few bulk packs and oversize items make the heavy tail real.
        if rng.random_bool(0.03) {
            weight_g = to_int(
                weight_g as f64 * (1.5 + 0.5 * std_normal(rng)).exp(),
                1,
                MAX_WEIGHT_G,
            );
        }
        let dims_mm = dimensions(rng, weight_g, category.density_g_per_cm3);
        // Cost is drawn apart from weight: heavy is not necessarily pricey.
        let base_cost_cents = log_normal(rng, category.median_cost_cents, 0.9, 100, 200_000);

        let item = ((index as u64)
            .wrapping_mul(EAN_MULTIPLIER)
            .wrapping_add(ean_salt))
            % EAN_MODULUS;
        let body = (EAN_PREFIX_BASE + brand as u64) * EAN_MODULUS + item;
        let ean = body * 10 + ean_check_digit(body);

        products.push(Product {
            brand,
            weight_g,
            dims_mm,
            base_cost_cents,
            ean,
            name,
        });
    }
    Catalog {
        products,
        names,
        mpn_salt,
    }
}

/// Writes "Brand Adjective Noun Size"; a few names get two adjectives joined
/// by a comma so consumers must honour CSV quoting.
fn push_name<R: Rng>(rng: &mut R, names: &mut String, brand: usize, category: usize) {
    let brand_name = BRANDS.get(brand).map_or("Generic", |b| b.name);
    names.push_str(brand_name);
    names.push(' ');
    names.push_str(pick(rng, ADJECTIVES).copied().unwrap_or("Classic"));
    if rng.random_bool(0.04) {
        names.push_str(", ");
        names.push_str(pick(rng, ADJECTIVES).copied().unwrap_or("Classic"));
    }
    if let Some(category) = CATEGORIES.get(category) {
        names.push(' ');
        names.push_str(pick(rng, category.nouns).copied().unwrap_or("Item"));
        names.push(' ');
        names.push_str(pick(rng, category.sizes).copied().unwrap_or("Standard"));
    }
}

/// Box dimensions whose volume matches the weight at a jittered density.
fn dimensions<R: Rng>(rng: &mut R, weight_g: u64, density_g_per_cm3: f64) -> [u64; 3] {
    let density = density_g_per_cm3 * rng.random_range(0.7..1.4);
    let volume_mm3 = weight_g as f64 / density * 1000.0;
    // Side ratios relative to the longest side.
    let width_ratio: f64 = rng.random_range(0.3..1.0);
    let height_ratio: f64 = rng.random_range(0.08..1.0) * width_ratio;
    let length = (volume_mm3 / (width_ratio * height_ratio)).cbrt();
    let length_mm = to_int(length, 1, 3_000);
    let width_mm = to_int(length * width_ratio, 1, 3_000);
    let height_mm = to_int(length * height_ratio, 1, 3_000);
    [length_mm, width_mm, height_mm]
}

/// Renders `catalog.csv`.
pub(super) fn write_csv(catalog: &Catalog) -> Vec<u8> {
    let mut buf = Vec::with_capacity(64 + catalog.products.len() * 96);
    buf.extend_from_slice(b"sku,mpn,ean,name,weight_g,length_mm,width_mm,height_mm\n");
    for (index, product) in catalog.products.iter().enumerate() {
        push_sku(&mut buf, index);
        buf.push(b',');
        catalog.push_mpn(&mut buf, index);
        buf.push(b',');
        push_ean(&mut buf, product.ean);
        buf.push(b',');
        push_field(&mut buf, catalog.name(product));
        buf.push(b',');
        push_u64(&mut buf, product.weight_g);
        for dim in product.dims_mm {
            buf.push(b',');
            push_u64(&mut buf, dim);
        }
        buf.push(b'\n');
    }
    buf
}

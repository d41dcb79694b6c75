//! Test data shared by the benchmarks: a deterministic generator and a
//! synthetic catalog. Each bench uses what it needs.
#![allow(dead_code)]

use std::io::Write;

/// splitmix64: small, deterministic, good enough for test data.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A catalog of `products` products `SR-0000001`..., with mpn and ean filled in.
pub fn catalog_csv(products: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(products as usize * 80);
    out.extend_from_slice(b"sku,mpn,ean,name,weight_g,length_mm,width_mm,height_mm\n");
    for i in 1..=products {
        writeln!(
            out,
            "SR-{i:07},MPN-{i:07},{},Product {i},{},{},{},{}",
            4_006_381_000_000u64 + u64::from(i),
            50 + i % 5_000,
            10 + i % 600,
            10 + i % 400,
            5 + i % 300
        )
        .expect("write to a Vec");
    }
    out
}

//! Checks the generated world the way the service will read it: by parsing
//! the files, not by peeking at generator internals.

use std::collections::{HashMap, HashSet};

use super::{generate, DemoParams, DemoWorld};

const SMALL: DemoParams = DemoParams {
    suppliers: 12,
    products: 2_000,
    seed: 7,
};

/// Splits CSV text into records, honouring RFC 4180 quotes.
fn parse_csv(bytes: &[u8]) -> Vec<Vec<String>> {
    let text = std::str::from_utf8(bytes).expect("CSV is UTF-8");
    let mut records = Vec::new();
    for line in text.lines() {
        let mut fields = Vec::new();
        let mut field = String::new();
        let mut quoted = false;
        let mut chars = line.chars().peekable();
        while let Some(c) = chars.next() {
            match (c, quoted) {
                ('"', true) if chars.peek() == Some(&'"') => {
                    field.push('"');
                    chars.next();
                }
                ('"', true) => quoted = false,
                ('"', false) if field.is_empty() => quoted = true,
                (',', false) => fields.push(std::mem::take(&mut field)),
                (c, _) => field.push(c),
            }
        }
        assert!(!quoted, "unterminated quote in {line:?}");
        fields.push(field);
        records.push(fields);
    }
    records
}

fn ean_valid(ean: &str) -> bool {
    let digits: Vec<u32> = ean.chars().filter_map(|c| c.to_digit(10)).collect();
    if digits.len() != 13 || ean.len() != 13 {
        return false;
    }
    let sum: u32 = digits[..12]
        .iter()
        .enumerate()
        .map(|(i, d)| if i % 2 == 0 { *d } else { d * 3 })
        .sum();
    (10 - sum % 10) % 10 == digits[12]
}

/// A catalog read back: index by sku, mpn and ean.
struct Parsed {
    skus: HashMap<String, usize>,
    mpns: HashMap<String, usize>,
    eans: HashMap<String, usize>,
    weights_g: Vec<u64>,
}

fn parse_catalog(world: &DemoWorld) -> Parsed {
    let records = parse_csv(world.file("catalog.csv").expect("catalog.csv"));
    assert_eq!(
        records[0],
        [
            "sku",
            "mpn",
            "ean",
            "name",
            "weight_g",
            "length_mm",
            "width_mm",
            "height_mm"
        ]
    );
    let mut parsed = Parsed {
        skus: HashMap::new(),
        mpns: HashMap::new(),
        eans: HashMap::new(),
        weights_g: Vec::new(),
    };
    for (i, record) in records[1..].iter().enumerate() {
        assert_eq!(record.len(), 8, "{record:?}");
        assert_eq!(record[0], format!("SR-{:06}", i + 1));
        let (brand, rest) = record[1].split_once('-').expect("mpn has a dash");
        assert!(
            brand.len() == 3 && brand.bytes().all(|b| b.is_ascii_uppercase()),
            "{}",
            record[1]
        );
        assert!(
            !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_alphanumeric()),
            "{}",
            record[1]
        );
        assert!(ean_valid(&record[2]), "bad EAN {}", record[2]);
        assert!(record[3].split(' ').count() >= 4, "{}", record[3]);
        let weight_g: u64 = record[4].parse().expect("weight");
        assert!((1..=30_000).contains(&weight_g), "{weight_g}");
        for dim in &record[5..8] {
            let mm: u64 = dim.parse().expect("dimension");
            assert!((1..=3_000).contains(&mm));
        }
        assert!(parsed.skus.insert(record[0].clone(), i).is_none());
        assert!(
            parsed.mpns.insert(record[1].clone(), i).is_none(),
            "duplicate mpn {}",
            record[1]
        );
        assert!(
            parsed.eans.insert(record[2].clone(), i).is_none(),
            "duplicate ean {}",
            record[2]
        );
        parsed.weights_g.push(weight_g);
    }
    parsed
}

/// Per supplier: id, mapping path, realtime flag (from the parsed TOML).
struct SupplierEntry {
    id: String,
    feed: String,
    mapping: Option<String>,
    realtime: bool,
}

fn parse_suppliers(world: &DemoWorld) -> Vec<SupplierEntry> {
    let text =
        std::str::from_utf8(world.file("suppliers.toml").expect("suppliers.toml")).expect("utf-8");
    let doc: toml::Table = text.parse().expect("suppliers.toml parses");
    let list = doc["supplier"].as_array().expect("[[supplier]] tables");
    list.iter()
        .enumerate()
        .map(|(i, entry)| {
            let id = entry["id"].as_str().expect("id").to_string();
            assert_eq!(id, format!("SUP{:03}", i + 1));
            assert!(!entry["name"].as_str().expect("name").is_empty());
            assert_eq!(entry["currency"].as_str(), Some("USD"));
            let fee: rust_decimal::Decimal = entry["handling_fee"]
                .as_str()
                .expect("fee")
                .parse()
                .expect("decimal fee");
            assert!(
                fee >= rust_decimal::Decimal::ZERO && fee <= rust_decimal::Decimal::new(500, 2)
            );
            assert_eq!(fee.scale(), 2);
            let days = entry["processing_days"].as_integer().expect("days");
            assert!((0..=2).contains(&days));
            let origin = entry["origin"].as_table().expect("origin");
            let country = origin["country_code"].as_str().expect("country");
            let postal = origin["postal_code"].as_str().expect("postal");
            match country {
                "US" | "DE" => assert!(
                    postal.len() == 5 && postal.bytes().all(|b| b.is_ascii_digit()),
                    "{postal}"
                ),
                "CA" => assert!(
                    postal.len() == 7 && postal.as_bytes()[3] == b' ',
                    "{postal}"
                ),
                "GB" => assert!(
                    postal.contains(' ') && (6..=8).contains(&postal.len()),
                    "{postal}"
                ),
                other => panic!("unexpected country {other}"),
            }
            assert_eq!(origin["residential"].as_bool(), Some(false));
            let feed = entry["feed"].as_table().expect("feed");
            assert_eq!(feed["kind"].as_str(), Some("full"));
            assert!(feed["interval_secs"].as_integer().expect("interval") > 0);
            let realtime = match entry.get("realtime") {
                Some(rt) => {
                    assert_eq!(rt["base_url"].as_str(), Some(format!("fake:{id}").as_str()));
                    true
                }
                None => false,
            };
            SupplierEntry {
                feed: feed["source"].as_str().expect("source").to_string(),
                mapping: entry
                    .get("mapping")
                    .map(|m| m.as_str().expect("mapping path").to_string()),
                id,
                realtime,
            }
        })
        .collect()
}

/// Everything the offer checks found.
struct OfferStats {
    offers_per_product: Vec<u32>,
    in_stock: Vec<bool>,
    rows: usize,
    zero_rows: usize,
    rows_per_supplier: Vec<usize>,
}

/// Resolves every feed row to a catalog product through the identifiers it
/// carries (all must agree) or its mapping file, and tallies offers.
fn check_feeds(world: &DemoWorld, catalog: &Parsed, suppliers: &[SupplierEntry]) -> OfferStats {
    let product_count = catalog.skus.len();
    let mut stats = OfferStats {
        offers_per_product: vec![0; product_count],
        in_stock: vec![false; product_count],
        rows: 0,
        zero_rows: 0,
        rows_per_supplier: Vec::new(),
    };
    for supplier in suppliers {
        let mut mapping = HashMap::new();
        if let Some(path) = &supplier.mapping {
            let records = parse_csv(world.file(path).expect("mapping file exists"));
            assert_eq!(records[0], ["supplier_id", "supplier_sku", "sku"]);
            for record in &records[1..] {
                assert_eq!(record[0], supplier.id);
                let product = catalog.skus[&record[2]];
                assert!(mapping.insert(record[1].clone(), product).is_none());
            }
        }
        let records = parse_csv(world.file(&supplier.feed).expect("feed exists"));
        let header = &records[0];
        let col = |name: &str| header.iter().position(|h| h == name);
        let (code_col, qty_col, cost_col) = (
            col("supplier_sku").expect("supplier_sku column"),
            col("qty").expect("qty column"),
            col("unit_cost").expect("unit_cost column"),
        );
        let id_cols = [
            (col("sku"), &catalog.skus),
            (col("mpn"), &catalog.mpns),
            (col("ean"), &catalog.eans),
        ];
        let has_identifier = id_cols.iter().any(|(c, _)| c.is_some());
        assert!(
            has_identifier || supplier.mapping.is_some(),
            "{} cannot be identified",
            supplier.id
        );
        let mut codes = HashSet::new();
        let mut seen_products = HashSet::new();
        for record in &records[1..] {
            assert_eq!(record.len(), header.len());
            assert!(
                codes.insert(record[code_col].clone()),
                "duplicate supplier_sku"
            );
            let mut product = None;
            for (c, index) in &id_cols {
                if let Some(c) = c {
                    let found = *index
                        .get(&record[*c])
                        .expect("identifier matches the catalog");
                    assert!(product.is_none_or(|p| p == found), "identifiers disagree");
                    product = Some(found);
                }
            }
            if let Some(&mapped) = mapping.get(&record[code_col]) {
                assert!(product.is_none_or(|p| p == mapped), "mapping disagrees");
                product = Some(mapped);
            }
            let product = product.expect("row identifies a product");
            assert!(
                seen_products.insert(product),
                "product offered twice by {}",
                supplier.id
            );
            let qty: u64 = record[qty_col]
                .parse()
                .expect("qty is a non-negative integer");
            let cost = &record[cost_col];
            let (whole, frac) = cost.split_once('.').expect("cost has decimals");
            assert!(
                whole.parse::<u64>().is_ok() && (frac.len() == 2 || frac.len() == 4),
                "{cost}"
            );
            assert!(
                cost.parse::<rust_decimal::Decimal>().expect("decimal")
                    > rust_decimal::Decimal::ZERO
            );
            if let Some(c) = col("weight_g") {
                assert_eq!(
                    record[c].parse::<u64>().ok(),
                    Some(catalog.weights_g[product])
                );
            }
            if let Some(c) = col("currency") {
                assert_eq!(record[c], "USD");
            }
            stats.offers_per_product[product] += 1;
            stats.rows += 1;
            if qty == 0 {
                stats.zero_rows += 1;
            } else {
                stats.in_stock[product] = true;
            }
        }
        // Every mapping row names a code the feed has.
        for code in mapping.keys() {
            assert!(codes.contains(code), "mapping row for unknown code {code}");
        }
        stats.rows_per_supplier.push(records.len() - 1);
    }
    stats
}

fn check_world(params: &DemoParams) -> (Vec<SupplierEntry>, OfferStats) {
    let world = generate(params);
    let catalog = parse_catalog(&world);
    assert_eq!(catalog.skus.len(), params.products as usize);
    let suppliers = parse_suppliers(&world);
    assert_eq!(suppliers.len(), params.suppliers as usize);
    let stats = check_feeds(&world, &catalog, &suppliers);
    assert!(stats.offers_per_product.iter().all(|n| (1..=8).contains(n)));
    let in_stock = stats.in_stock.iter().filter(|s| **s).count();
    assert!(
        in_stock * 10 >= params.products as usize * 9,
        "{in_stock} in stock"
    );
    let zero_share = stats.zero_rows as f64 / stats.rows as f64;
    assert!(
        (0.15..=0.35).contains(&zero_share),
        "zero share {zero_share}"
    );
    // Files are exactly the config, catalog, suppliers, feeds and mappings.
    let mappings = suppliers.iter().filter(|s| s.mapping.is_some()).count();
    assert_eq!(world.files.len(), 3 + suppliers.len() + mappings);
    (suppliers, stats)
}

#[test]
fn same_params_same_bytes_and_seed_matters() {
    let a = generate(&SMALL);
    let b = generate(&SMALL);
    assert_eq!(a, b);
    let c = generate(&DemoParams { seed: 8, ..SMALL });
    assert_ne!(a.file("catalog.csv"), c.file("catalog.csv"));
    assert_ne!(a.file("suppliers.toml"), c.file("suppliers.toml"));
    assert_ne!(a.file("feeds/SUP001.csv"), c.file("feeds/SUP001.csv"));
}

#[test]
fn small_world_is_consistent() {
    let (suppliers, _) = check_world(&SMALL);
    assert_eq!(suppliers.iter().filter(|s| s.realtime).count(), 2);
    assert!(suppliers.iter().any(|s| s.mapping.is_some()));
}

#[test]
fn config_points_at_the_files() {
    let world = generate(&SMALL);
    let config =
        std::str::from_utf8(world.file("stockroute.toml").expect("config")).expect("utf-8");
    assert!(config
        .starts_with("# stockroute demo world (seed 7): generated by `stockroute demo-data`.\n"));
    let doc: toml::Table = config.parse().expect("config parses");
    let data = doc["data"].as_table().expect("[data]");
    assert_eq!(data["catalog"].as_str(), Some("catalog.csv"));
    assert_eq!(data["suppliers"].as_str(), Some("suppliers.toml"));
    assert_eq!(data["freight_dir"].as_str(), Some("freight"));
    // Open on purpose, and said so in the file rather than by a silent default.
    assert_eq!(doc["auth"]["mode"].as_str(), Some("off"));
    assert!(world.file("catalog.csv").is_some() && world.file("suppliers.toml").is_some());
}

#[test]
fn names_exercise_csv_quoting() {
    let world = generate(&SMALL);
    let text = std::str::from_utf8(world.file("catalog.csv").expect("catalog")).expect("utf-8");
    assert!(
        text.lines().any(|l| l.contains(", ") && l.contains(",\"")),
        "some name holds a comma"
    );
    assert!(text.contains("\"\""), "some name holds an inch mark");
}

#[test]
fn write_to_creates_the_tree() {
    let world = generate(&DemoParams {
        suppliers: 3,
        products: 50,
        seed: 1,
    });
    let dir = tempfile::tempdir().expect("tempdir");
    world.write_to(dir.path()).expect("write");
    for (path, contents) in &world.files {
        assert_eq!(
            &std::fs::read(dir.path().join(path)).expect("written"),
            contents
        );
    }
    assert!(dir.path().join("feeds/SUP003.csv").is_file());
}

#[test]
fn degenerate_sizes_do_not_panic() {
    for (suppliers, products) in [(0, 0), (0, 10), (1, 0), (1, 10), (2, 100)] {
        let world = generate(&DemoParams {
            suppliers,
            products,
            seed: 3,
        });
        assert!(world.file("catalog.csv").is_some());
        if suppliers == 1 && products > 0 {
            let feed = parse_csv(world.file("feeds/SUP001.csv").expect("feed"));
            assert_eq!(feed.len() as u32, products + 1);
        }
    }
}

#[test]
fn default_world_has_the_promised_shape() {
    let params = DemoParams::default();
    assert_eq!(
        (params.suppliers, params.products, params.seed),
        (120, 100_000, 42)
    );
    let started = std::time::Instant::now();
    let (suppliers, stats) = check_world(&params);
    eprintln!(
        "default world generated and checked in {:?}",
        started.elapsed()
    );
    assert_eq!(suppliers.iter().filter(|s| s.realtime).count(), 15);
    let mapping_only = suppliers.iter().filter(|s| s.mapping.is_some()).count();
    assert!(
        mapping_only >= 10,
        "{mapping_only} suppliers with mapping files"
    );
    let biggest = stats.rows_per_supplier.iter().max().copied().unwrap_or(0);
    let smallest = stats.rows_per_supplier.iter().min().copied().unwrap_or(0);
    assert!(biggest >= 20_000, "biggest supplier carries {biggest}");
    assert!(
        (100..2_000).contains(&smallest),
        "smallest supplier carries {smallest}"
    );
    let mid = stats
        .offers_per_product
        .iter()
        .filter(|n| (2..=5).contains(*n))
        .count();
    assert!(
        mid * 2 > stats.offers_per_product.len(),
        "most products have 2-5 suppliers"
    );
}

//! Tests of the freight module against the SAMPLE tables.

use proptest::prelude::*;
use rust_decimal::Decimal;

use super::packing;
use super::rating;
use super::*;

fn item(weight_g: u32, l: u32, w: u32, h: u32) -> Item {
    Item {
        weight_g,
        length_mm: l,
        width_mm: w,
        height_mm: h,
    }
}

fn us(zip: &str, residential: bool) -> Endpoint<'_> {
    Endpoint {
        country_code: "US",
        postal_code: zip,
        residential,
    }
}

fn req<'a>(
    origin: Endpoint<'a>,
    destination: Endpoint<'a>,
    lines: &'a [ItemLine],
) -> RateRequest<'a> {
    RateRequest {
        origin,
        destination,
        lines,
        handling_fee: Decimal::ZERO,
    }
}

fn dec(s: &str) -> Decimal {
    s.parse().unwrap()
}

fn find<'a>(r: &'a RatedShipment, service: &str) -> Option<&'a ServiceRate> {
    r.rates.iter().find(|s| &*s.service == service)
}

/// A small item that packs into MAILER-S and bills at 1 lb.
const SMALL: Item = Item {
    weight_g: 250,
    length_mm: 150,
    width_mm: 100,
    height_mm: 20,
};

#[test]
fn sample_loads() {
    let f = Freight::sample();
    assert_eq!(Freight::sample_files().len(), 7);
    assert_eq!(f.model.carriers.len(), 2);
    assert_eq!(f.model.services.len(), 14);
}

#[test]
fn load_reads_a_directory() {
    let dir = std::env::temp_dir().join(format!("freight-load-{}", std::process::id()));
    for (path, bytes) in Freight::sample_files() {
        let p = dir.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, bytes).unwrap();
    }
    std::fs::write(dir.join("README.md"), "ignored").unwrap();
    let f = Freight::load(&dir);
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(f.unwrap().model.services.len(), 14);
    assert!(matches!(
        Freight::load(Path::new("/nonexistent/freight")),
        Err(FreightError::Io { .. })
    ));
}

#[test]
fn pound_conversion_round_trips() {
    for lb in 1..=2000 {
        assert_eq!(rating::ceil_lb(rating::lb_to_g(lb)), lb);
    }
    assert_eq!(rating::ceil_lb(453), 1);
    assert_eq!(rating::ceil_lb(454), 2);
}

#[test]
fn dimensional_weight_beats_actual_for_light_big_box() {
    // 305 mm cube = 1731 in³ / 139 = 12.5 -> 13 lb, while it weighs 1 lb.
    assert_eq!(rating::billable_lb(400, [305, 305, 305], 139), 13);
    assert_eq!(rating::billable_lb(400, [305, 305, 305], 166), 11);
    let f = Freight::sample();
    let parcels = f
        .pack(&[ItemLine {
            item: item(500, 580, 480, 430),
            quantity: 1,
        }])
        .unwrap();
    assert_eq!(parcels.len(), 1);
    let p = &parcels[0];
    assert_eq!(p.box_id, "CARTON-XL");
    assert_eq!(p.weight_g, 1700);
    // Outer 612 x 512 x 462 mm = 8834 in³ -> 64 lb.
    assert_eq!(p.billable_weight_g, rating::lb_to_g(64));
}

#[test]
fn domestic_and_international_zones() {
    let f = Freight::sample();
    let lines = [ItemLine {
        item: SMALL,
        quantity: 1,
    }];
    let near = f
        .rate(&req(us("10001", false), us("10401", false), &lines))
        .unwrap();
    let far = f
        .rate(&req(us("10001", false), us("94105-1234", false), &lines))
        .unwrap();
    // Zone 2 and zone 8 ground transit times from the table.
    assert_eq!(find(&near, "FedEx Ground").unwrap().transit_days, 1);
    assert_eq!(find(&far, "FedEx Ground").unwrap().transit_days, 5);
    assert!(
        find(&far, "FedEx Ground").unwrap().amount > find(&near, "FedEx Ground").unwrap().amount
    );
    assert!(find(&near, "FedEx International Priority").is_none());

    let gb = Endpoint {
        country_code: "gb",
        postal_code: "SW1A 1AA",
        residential: false,
    };
    let jp = Endpoint {
        country_code: "JP",
        postal_code: "100-0001",
        residential: false,
    };
    let to_gb = f.rate(&req(us("10001", false), gb, &lines)).unwrap();
    let to_jp = f.rate(&req(us("10001", false), jp, &lines)).unwrap();
    assert_eq!(
        find(&to_gb, "FedEx International Priority")
            .unwrap()
            .transit_days,
        2
    ); // zone D
    assert_eq!(
        find(&to_jp, "FedEx International Priority")
            .unwrap()
            .transit_days,
        3
    ); // zone F
    assert!(find(&to_gb, "UPS Ground").is_none());
    assert_eq!(to_gb.rates.len(), 4);
    // GB origin to US is international too.
    assert_eq!(
        f.rate(&req(gb, us("10001", true), &lines))
            .unwrap()
            .rates
            .len(),
        4
    );
}

#[test]
fn amount_includes_fuel_box_cost_and_handling_fee() {
    let f = Freight::sample();
    let lines = [ItemLine {
        item: SMALL,
        quantity: 1,
    }];
    let mut r = req(us("10001", false), us("10401", false), &lines);
    let out = f.rate(&r).unwrap();
    assert_eq!(out.parcels[0].box_id, "MAILER-S");
    assert_eq!(out.parcels[0].billable_weight_g, rating::lb_to_g(1));
    // 11.05 zone-2 1 lb x 1.185 fuel = 13.09425, + 0.45 box = 13.54425.
    assert_eq!(find(&out, "FedEx Ground").unwrap().amount, dec("13.54"));
    r.handling_fee = dec("2.50");
    assert_eq!(
        find(&f.rate(&r).unwrap(), "FedEx Ground").unwrap().amount,
        dec("16.04")
    );
    r.handling_fee = dec("-1");
    assert!(matches!(
        f.rate(&r),
        Err(FreightError::InvalidRequest { .. })
    ));
}

#[test]
fn residential_and_fuel_surcharges_add_up() {
    let f = Freight::sample();
    let lines = [ItemLine {
        item: SMALL,
        quantity: 1,
    }];
    let home = f
        .rate(&req(us("10001", false), us("10401", true), &lines))
        .unwrap();
    // Home Delivery replaces Ground for homes.
    assert!(find(&home, "FedEx Ground").is_none());
    // (11.05 + 5.95 residential) x 1.185 = 20.145, + 0.45 box = 20.595 -> 20.60 (half away from zero).
    assert_eq!(
        find(&home, "FedEx Home Delivery").unwrap().amount,
        dec("20.60")
    );
    // (11.20 + 5.85) x 1.1825 = 20.161625, + 0.45 = 20.611625 -> 20.61.
    assert_eq!(find(&home, "UPS Ground").unwrap().amount, dec("20.61"));
    let business = f
        .rate(&req(us("10001", false), us("10401", false), &lines))
        .unwrap();
    assert!(find(&business, "FedEx Home Delivery").is_none());
}

#[test]
fn additional_handling_and_own_packaging() {
    let f = Freight::sample();
    // 1300 mm (51 in) long: no box fits, ships as is, over the 48 in handling threshold.
    let lines = [ItemLine {
        item: item(2000, 1300, 100, 100),
        quantity: 1,
    }];
    let out = f
        .rate(&req(us("10001", false), us("10401", false), &lines))
        .unwrap();
    assert_eq!(out.parcels[0].box_id, OWN_PACKAGING);
    assert_eq!(out.parcels[0].weight_g, 2000);
    // Dimensional 793 in³ / 139 -> 6 lb (actual 4.4 -> 5 lb). Zone 2 6 lb interpolates
    // 5 lb 13.37 .. 10 lb 16.27 to 13.95; + 31.50 handling = 45.45, x 1.185 = 53.85825; no box.
    assert_eq!(out.parcels[0].billable_weight_g, rating::lb_to_g(6));
    assert_eq!(find(&out, "FedEx Ground").unwrap().amount, dec("53.86"));
}

#[test]
fn over_limit_items_rule_out_services_or_split() {
    let f = Freight::sample();
    let (o, d) = (us("10001", false), us("10401", false));
    let heavy = [ItemLine {
        item: item(80_000, 300, 300, 300),
        quantity: 1,
    }];
    match f.rate(&req(o, d, &heavy)) {
        Err(FreightError::NoService { reason }) => assert!(reason.contains("limit"), "{reason}"),
        other => panic!("{other:?}"),
    }
    let long = [ItemLine {
        item: item(5_000, 3000, 100, 100),
        quantity: 1,
    }];
    assert!(matches!(
        f.rate(&req(o, d, &long)),
        Err(FreightError::NoService { .. })
    ));
    // Five 20 kg units cannot share a box under its max weight: split over parcels.
    let many = [ItemLine {
        item: item(20_000, 200, 200, 200),
        quantity: 5,
    }];
    let out = f.rate(&req(o, d, &many)).unwrap();
    assert_eq!(out.parcels.len(), 5);
    assert!(out.parcels.iter().all(|p| p.weight_g <= 68_038));
    // Every domestic commercial service carries them (5 FedEx + 4 UPS).
    assert_eq!(out.rates.len(), 9);
}

#[test]
fn addresses_are_validated() {
    let f = Freight::sample();
    assert!(f.validate_address("US", "10001").is_ok());
    assert!(f.validate_address("us", "10001-1234").is_ok());
    assert!(f.validate_address("CA", "K1A 0B1").is_ok());
    assert!(f.validate_address("CA", "k1a0b1").is_ok());
    assert!(f.validate_address("GB", "SW1A 1AA").is_ok());
    assert!(f.validate_address("GB", "M1 1AE").is_ok());
    assert!(f.validate_address("HK", "").is_ok());
    for (c, p) in [
        ("US", "1234"),
        ("US", "ABCDE"),
        ("CA", "12345"),
        ("GB", "SW1A"),
        ("DE", ""),
    ] {
        assert!(
            matches!(
                f.validate_address(c, p),
                Err(FreightError::BadPostalCode { .. })
            ),
            "{c} {p}"
        );
    }
    assert_eq!(
        f.validate_address("XX", "1"),
        Err(FreightError::UnknownCountry {
            country_code: "XX".into()
        })
    );
    assert!(matches!(
        f.validate_address("USA", "10001"),
        Err(FreightError::UnknownCountry { .. })
    ));
    let lines = [ItemLine {
        item: SMALL,
        quantity: 1,
    }];
    assert!(matches!(
        f.rate(&req(us("10001", false), us("1", false), &lines)),
        Err(FreightError::BadPostalCode { .. })
    ));
}

#[test]
fn requests_without_service_or_items_fail() {
    let f = Freight::sample();
    let ca = Endpoint {
        country_code: "CA",
        postal_code: "K1A 0B1",
        residential: false,
    };
    let lines = [ItemLine {
        item: SMALL,
        quantity: 1,
    }];
    match f.rate(&req(ca, ca, &lines)) {
        Err(FreightError::NoService { reason }) => assert!(reason.contains("CA to CA"), "{reason}"),
        other => panic!("{other:?}"),
    }
    let none = [ItemLine {
        item: SMALL,
        quantity: 0,
    }];
    assert_eq!(
        f.rate(&req(us("10001", false), us("10401", false), &none)),
        Err(FreightError::EmptyShipment)
    );
    assert_eq!(
        f.rate(&req(us("10001", false), us("10401", false), &[])),
        Err(FreightError::EmptyShipment)
    );
    let zero = [ItemLine {
        item: item(1, 0, 1, 1),
        quantity: 1,
    }];
    assert!(matches!(
        f.rate(&req(us("10001", false), us("10401", false), &zero)),
        Err(FreightError::InvalidRequest { .. })
    ));
    let lots = [ItemLine {
        item: SMALL,
        quantity: u32::MAX,
    }];
    assert!(matches!(
        f.rate(&req(us("10001", false), us("10401", false), &lots)),
        Err(FreightError::InvalidRequest { .. })
    ));
}

#[test]
fn absurd_inputs_return_errors_not_panics() {
    let f = Freight::sample();
    let huge = [ItemLine {
        item: item(u32::MAX, u32::MAX, u32::MAX, u32::MAX),
        quantity: 3,
    }];
    assert!(matches!(
        f.rate(&req(us("10001", false), us("10401", false), &huge)),
        Err(FreightError::NoService { .. })
    ));
    let lines = [ItemLine {
        item: SMALL,
        quantity: 1,
    }];
    let mut r = req(us("10001", false), us("10401", false), &lines);
    r.handling_fee = Decimal::MAX;
    assert!(matches!(
        f.rate(&r),
        Err(FreightError::InvalidRequest { .. })
    ));
    let big = with_file("boxes.toml", |s| {
        s.replace("inner_length_mm = 1000", "inner_length_mm = 4294967295")
    });
    assert!(big.is_ok());
}

fn with_file(path: &str, edit: impl Fn(&str) -> String) -> Result<Freight, FreightError> {
    let files: Vec<(String, Vec<u8>)> = Freight::sample_files()
        .into_iter()
        .map(|(p, c)| {
            let c = if p == path {
                edit(std::str::from_utf8(&c).unwrap()).into_bytes()
            } else {
                c
            };
            (p, c)
        })
        .collect();
    Freight::from_files(&files)
}

fn table_error(r: Result<Freight, FreightError>) -> (String, String, String) {
    match r {
        Err(FreightError::Table {
            file,
            line_or_key,
            message,
        }) => (file, line_or_key, message),
        Err(other) => panic!("{other:?}"),
        Ok(_) => panic!("loaded"),
    }
}

#[test]
fn malformed_files_name_file_and_place() {
    let (file, at, _) = table_error(with_file("carriers/ups.toml", |s| {
        s.replacen("\"11.20\"", "\"11.2x\"", 1)
    }));
    assert_eq!(file, "carriers/ups.toml");
    assert_eq!(at, "service[0].minimum_charge");

    let (file, at, _) = table_error(with_file("settings.toml", |s| {
        s.replace("fill_factor_pct = 85", "fill_factor_pct = = 85")
    }));
    assert_eq!(file, "settings.toml");
    let line = 1 + Freight::sample_files()[0]
        .1
        .split(|&b| b == b'\n')
        .position(|l| l.starts_with(b"fill_factor_pct"))
        .unwrap();
    assert_eq!(at, format!("line {line}"));

    let (file, at, msg) = table_error(with_file("carriers/fedex.toml", |s| {
        s.replacen("\"11.63\", ", "", 1)
    }));
    assert_eq!(
        (file.as_str(), at.as_str()),
        ("carriers/fedex.toml", "service[0].breaks[1].prices"),
        "{msg}"
    );

    let (file, at, _) = table_error(with_file("zones/international.toml", |s| {
        s.replace("JP = \"F\"", "XX = \"F\"")
    }));
    assert_eq!(
        (file.as_str(), at.as_str()),
        ("zones/international.toml", "fedex.XX")
    );

    let (file, _, _) = table_error(with_file("boxes.toml", |s| {
        s.replace("cost = \"0.45\"", "cost = \"-0.45\"")
    }));
    assert_eq!(file, "boxes.toml");

    let (file, _, _) = table_error(with_file("settings.toml", |s| {
        s.replace("dim_divisor_in3_per_lb = 139", "dim_divisor_in3_per_lb = 0")
    }));
    assert_eq!(file, "settings.toml");

    let files: Vec<_> = Freight::sample_files()
        .into_iter()
        .filter(|(p, _)| p != "countries.toml")
        .collect();
    assert_eq!(table_error(Freight::from_files(&files)).0, "countries.toml");

    let mut files = Freight::sample_files();
    files.push(("carriers/bad.toml".into(), vec![0xff, 0xfe]));
    assert_eq!(
        table_error(Freight::from_files(&files)).0,
        "carriers/bad.toml"
    );
}

#[test]
fn negotiated_discount_lowers_prices() {
    let f = with_file("carriers/fedex.toml", |s| {
        s.replacen(
            "delivery = \"commercial\"\n",
            "delivery = \"commercial\"\ndiscount_pct = \"10\"\n",
            1,
        )
    })
    .unwrap();
    let lines = [ItemLine {
        item: SMALL,
        quantity: 1,
    }];
    let out = f
        .rate(&req(us("10001", false), us("10401", false), &lines))
        .unwrap();
    // 11.05 x 0.9 = 9.945 -> 9.95, below the 11.05 minimum, so the minimum applies.
    assert_eq!(find(&out, "FedEx Ground").unwrap().amount, dec("13.54"));
    let heavy = [ItemLine {
        item: item(9_000, 200, 200, 200),
        quantity: 1,
    }];
    let list = Freight::sample()
        .rate(&req(us("10001", false), us("10401", false), &heavy))
        .unwrap();
    let disc = f
        .rate(&req(us("10001", false), us("10401", false), &heavy))
        .unwrap();
    assert!(
        find(&disc, "FedEx Ground").unwrap().amount < find(&list, "FedEx Ground").unwrap().amount
    );
}

/// Three small units and `quantity` of `other`: a shipment of two lines.
fn small_and(other: Item, quantity: u32) -> [ItemLine; 2] {
    [
        ItemLine {
            item: SMALL,
            quantity: 3,
        },
        ItemLine {
            item: other,
            quantity,
        },
    ]
}

#[test]
fn rates_are_sorted_and_deterministic() {
    let f = Freight::sample();
    let lines = small_and(item(4_000, 400, 300, 200), 2);
    let r = req(us("30301", false), us("60601", true), &lines);
    let a = f.rate(&r).unwrap();
    assert!(a.rates.windows(2).all(|w| {
        (w[0].amount, w[0].transit_days, &w[0].carrier, &w[0].service)
            <= (w[1].amount, w[1].transit_days, &w[1].carrier, &w[1].service)
    }));
    assert_eq!(a.rates.len(), 9);
    assert_eq!(a, f.rate(&r).unwrap());
}

fn line_strategy() -> impl Strategy<Value = ItemLine> {
    (1u32..45_000, 1u32..1_300, 1u32..700, 1u32..500, 0u32..6).prop_map(|(w, l, wi, h, q)| {
        ItemLine {
            item: item(w, l, wi, h),
            quantity: q,
        }
    })
}

fn sorted(d: [u32; 3]) -> [u32; 3] {
    let mut d = d;
    d.sort_unstable_by(|a, b| b.cmp(a));
    d
}

fn check_packing(
    f: &Freight,
    lines: &[ItemLine],
    r: &RateRequest<'_>,
) -> Result<(), TestCaseError> {
    let m = &f.model;
    let total_units: u32 = lines.iter().map(|l| l.quantity).sum();
    let packed = f.reference_cost(r, Packing::Optimised);
    if total_units == 0 {
        prop_assert_eq!(packed.unwrap_err(), FreightError::EmptyShipment);
        return Ok(());
    }
    let (packed, cost) = match packed {
        Ok(p) => p,
        // An item over every limit is refused up front, by name.
        Err(FreightError::NoService { reason }) => {
            prop_assert!(reason.contains("line "), "{}", reason);
            return Ok(());
        }
        Err(e) => return Err(TestCaseError::fail(format!("{e:?}"))),
    };
    // Every unit exactly once.
    let mut seen = vec![0u32; lines.len()];
    for p in &packed {
        for &li in &p.units {
            seen[li] += 1;
        }
    }
    prop_assert_eq!(seen, lines.iter().map(|l| l.quantity).collect::<Vec<_>>());
    let parcels: Vec<Parcel> = packed
        .iter()
        .map(|p| packing::to_parcel(p, &m.boxes, |w, _| w))
        .collect();
    let mut tares: u64 = 0;
    for (op, parcel) in packed.iter().zip(&parcels) {
        let contents: u64 = op
            .units
            .iter()
            .map(|&li| u64::from(lines[li].item.weight_g))
            .sum();
        prop_assert_eq!(op.contents_weight_g, contents);
        match op.box_idx {
            Some(bi) => {
                let b = &m.boxes[bi];
                prop_assert_eq!(&parcel.box_id, &b.id);
                prop_assert!(u64::from(parcel.weight_g) <= u64::from(b.max_weight_g));
                prop_assert!(parcel.weight_g <= m.settings.max_parcel_weight_g);
                prop_assert_eq!(
                    u64::from(parcel.weight_g),
                    contents + u64::from(b.tare_weight_g)
                );
                tares += u64::from(b.tare_weight_g);
                for &li in &op.units {
                    let it = lines[li].item;
                    let d = sorted([it.length_mm, it.width_mm, it.height_mm]);
                    prop_assert!(
                        d.iter().zip(b.inner_mm).all(|(x, y)| *x <= y),
                        "{:?} in {}",
                        d,
                        b.id
                    );
                }
                let volume: u128 = op
                    .units
                    .iter()
                    .map(|&li| {
                        let it = lines[li].item;
                        u128::from(it.length_mm)
                            * u128::from(it.width_mm)
                            * u128::from(it.height_mm)
                    })
                    .sum();
                prop_assert!(op.units.len() == 1 || volume * 100 <= b.inner_volume_mm3 * 85);
            }
            None => {
                prop_assert_eq!(parcel.box_id.as_str(), OWN_PACKAGING);
                prop_assert_eq!(op.units.len(), 1);
                prop_assert_eq!(u64::from(parcel.weight_g), contents);
                // Own packaging only when no box holds the unit.
                let it = lines[op.units[0]].item;
                let d = sorted([it.length_mm, it.width_mm, it.height_mm]);
                let boxed = m.boxes.iter().any(|b| {
                    d.iter().zip(b.inner_mm).all(|(x, y)| *x <= y)
                        && it.weight_g + b.tare_weight_g <= b.max_weight_g
                });
                prop_assert!(!boxed);
            }
        }
    }
    let items: u64 = lines
        .iter()
        .map(|l| u64::from(l.item.weight_g) * u64::from(l.quantity))
        .sum();
    let total: u64 = parcels.iter().map(|p| u64::from(p.weight_g)).sum();
    prop_assert_eq!(total, items + tares);
    // Never worse than one unit per box under the reference service.
    let (_, baseline) = f.reference_cost(r, Packing::OnePerBox).unwrap();
    prop_assert!(cost <= baseline, "{} > {}", cost, baseline);
    // Deterministic, and rating reports the same parcels.
    prop_assert_eq!(f.reference_cost(r, Packing::Optimised).unwrap().1, cost);
    if let Ok(a) = f.rate(r) {
        prop_assert_eq!(a.parcels.len(), parcels.len());
        prop_assert_eq!(&a, &f.rate(r).unwrap());
        let weights: Vec<u32> = a.parcels.iter().map(|p| p.weight_g).collect();
        prop_assert_eq!(
            weights,
            parcels.iter().map(|p| p.weight_g).collect::<Vec<_>>()
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]
    #[test]
    fn packing_invariants_small(lines in prop::collection::vec(line_strategy(), 1..4)) {
        // Few units: the exact search.
        let f = Freight::sample();
        let r = req(us("10001", false), us("90210", true), &lines);
        check_packing(&f, &lines, &r)?;
    }

    #[test]
    fn packing_invariants_large(
        lines in prop::collection::vec(line_strategy(), 1..6),
        extra in 0u32..25,
    ) {
        // Many units: the heuristic.
        let mut lines = lines;
        lines[0].quantity += extra;
        let f = Freight::sample();
        let r = req(us("30301", false), us("60601", false), &lines);
        check_packing(&f, &lines, &r)?;
    }

    #[test]
    fn rating_invariant_amount_is_charge_plus_boxes_plus_fee(
        lines in prop::collection::vec(line_strategy(), 1..4),
        fee_cents in 0u32..10_000,
        residential in any::<bool>(),
    ) {
        let f = Freight::sample();
        let mut r = req(us("10001", false), us("59935", residential), &lines);
        r.handling_fee = Decimal::new(i64::from(fee_cents), 2);
        if let Ok(out) = f.rate(&r) {
            let boxes: Decimal = out
                .parcels
                .iter()
                .filter_map(|p| f.model.boxes.iter().find(|b| b.id == p.box_id))
                .map(|b| b.cost)
                .sum();
            prop_assert_eq!(out.boxes_cost, boxes);
            prop_assert_eq!(out.handling_fee, r.handling_fee);
            for rate in &out.rates {
                let charge = out.carrier_charge(rate);
                prop_assert!(charge > Decimal::ZERO);
                prop_assert_eq!(charge.round_dp(2), charge);
                prop_assert_eq!(rate.amount, charge + out.boxes_cost + out.handling_fee);
            }
        }
    }
}

proptest! {
    #[test]
    fn damaged_data_files_give_errors_not_panics(
        file in 0usize..7,
        at in 0usize..20_000,
        junk in "[ -~\n]{0,4}",
    ) {
        let mut files = Freight::sample_files();
        let (_, bytes) = &mut files[file];
        let at = at % (bytes.len() + 1);
        bytes.splice(at..(at + 3).min(bytes.len()), junk.bytes());
        // Either outcome is fine; what matters is that loading returns.
        let _ = Freight::from_files(&files);
    }
}

#[test]
fn zone_charts_per_origin_with_default_fallback() {
    let f = Freight::sample();
    let d = &f.model.domestic;
    let zone = |o: u16, t: u16| {
        let id = d.zone(o, t);
        // Ground transit days are 1, 2, 3, 3, 4, 5, 5 for zones 2..8.
        let s = &f.model.services[0];
        s.transit_days[usize::from(id)].unwrap()
    };
    // Northeast chart: 100 -> 104 zone 2, 100 -> 606 zone 6.
    assert_eq!(zone(100, 104), 1);
    assert_eq!(zone(100, 606), 4);
    // Midwest chart: 606 -> 100 is zone 5, whereas the distance bands would say zone 7.
    assert_eq!(zone(606, 100), 3);
    // An origin in no chart uses the distance bands: 500 -> 506 zone 2, 500 -> 999 zone 7.
    assert_eq!(zone(500, 506), 1);
    assert_eq!(zone(500, 999), 5);
    let lines = [ItemLine {
        item: SMALL,
        quantity: 1,
    }];
    let chi_ny = f
        .rate(&req(us("60601", false), us("10001", false), &lines))
        .unwrap();
    assert_eq!(find(&chi_ny, "UPS Ground").unwrap().transit_days, 3);
}

#[test]
fn unknown_postal_codes_and_countries_are_errors() {
    let f = Freight::sample();
    for zip in ["00012", "21301", "99999-", "1000", "ABCDE", ""] {
        assert!(
            matches!(
                f.validate_address("US", zip),
                Err(FreightError::BadPostalCode { .. })
            ),
            "{zip}"
        );
    }
    match f.validate_address("US", "21301") {
        Err(FreightError::BadPostalCode { reason, .. }) => assert!(reason.contains("213")),
        other => panic!("{other:?}"),
    }
    let lines = [ItemLine {
        item: SMALL,
        quantity: 1,
    }];
    let zz = Endpoint {
        country_code: "ZZ",
        postal_code: "1",
        residential: false,
    };
    assert!(matches!(
        f.rate(&req(us("10001", false), zz, &lines)),
        Err(FreightError::UnknownCountry { .. })
    ));
    assert!(matches!(
        f.rate(&req(us("00012", false), us("10001", false), &lines)),
        Err(FreightError::BadPostalCode { .. })
    ));
}

#[test]
fn zero_weight_and_zero_dimension_items_are_rejected() {
    let f = Freight::sample();
    for it in [
        item(0, 10, 10, 10),
        item(10, 0, 10, 10),
        item(10, 10, 0, 10),
        item(10, 10, 10, 0),
    ] {
        let lines = [
            ItemLine {
                item: SMALL,
                quantity: 1,
            },
            ItemLine {
                item: it,
                quantity: 2,
            },
        ];
        match f.rate(&req(us("10001", false), us("10401", false), &lines)) {
            Err(FreightError::InvalidRequest { reason }) => {
                assert!(reason.starts_with("line 1"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            f.pack(&lines),
            Err(FreightError::InvalidRequest { .. })
        ));
    }
}

#[test]
fn over_limit_items_name_the_item_and_the_limit() {
    let f = Freight::sample();
    let (o, d) = (us("10001", false), us("10401", false));
    for (it, limit) in [
        (item(80_000, 300, 300, 300), "150 lb"),
        (item(5_000, 3000, 100, 100), "108 in"),
        (item(5_000, 2500, 500, 400), "165 in"),
    ] {
        let lines = [
            ItemLine {
                item: SMALL,
                quantity: 1,
            },
            ItemLine {
                item: it,
                quantity: 1,
            },
        ];
        match f.rate(&req(o, d, &lines)) {
            Err(FreightError::NoService { reason }) => {
                assert!(reason.contains("line 1"), "{reason}");
                assert!(reason.contains(limit), "{reason}");
            }
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn metric_tables_bill_whole_kilograms() {
    let rule = tables::DimRule {
        metric: true,
        divisor: 5000,
    };
    // 400 x 300 x 200 mm = 24 000 cm³ / 5000 = 4.8 -> 5 kg; 1001 g -> 2 kg.
    assert_eq!(rule.billable(100, [400, 300, 200]), 5);
    assert_eq!(rule.billable(1001, [10, 10, 10]), 2);
    assert_eq!(rule.units_to_g(5), 5000);
    assert_eq!(rule.units_from_lb(90), 41);
    let f = Freight::sample();
    let gb = Endpoint {
        country_code: "GB",
        postal_code: "SW1A 1AA",
        residential: false,
    };
    let lines = [ItemLine {
        item: SMALL,
        quantity: 1,
    }];
    let out = f.rate(&req(us("10001", false), gb, &lines)).unwrap();
    // 310 g in MAILER-S -> 1 kg; zone 53 1 kg 94.69 x 1.225 fuel = 115.99525, + 0.45 box.
    assert_eq!(
        find(&out, "UPS Worldwide Expedited").unwrap().amount,
        dec("116.45")
    );
}

#[test]
fn divisor_is_configurable_per_carrier_and_service() {
    let lines = [ItemLine {
        item: item(500, 580, 480, 430),
        quantity: 1,
    }];
    let r = req(us("10001", false), us("10401", false), &lines);
    let list = Freight::sample().rate(&r).unwrap();
    let f = with_file("carriers/fedex.toml", |s| {
        s.replacen(
            "dim_divisor_in3_per_lb = 139",
            "dim_divisor_in3_per_lb = 250",
            1,
        )
    })
    .unwrap();
    let cheaper = f.rate(&r).unwrap();
    assert!(
        find(&cheaper, "FedEx Ground").unwrap().amount
            < find(&list, "FedEx Ground").unwrap().amount
    );
    assert_eq!(
        find(&cheaper, "UPS Ground").unwrap().amount,
        find(&list, "UPS Ground").unwrap().amount
    );
    // A service-level override beats the carrier's.
    let g = with_file("carriers/ups.toml", |s| {
        s.replacen(
            "code = \"03\"\n",
            "code = \"03\"\ndim_divisor_in3_per_lb = 250\n",
            1,
        )
    })
    .unwrap();
    let ups = g.rate(&r).unwrap();
    assert!(find(&ups, "UPS Ground").unwrap().amount < find(&list, "UPS Ground").unwrap().amount);
    assert_eq!(
        find(&ups, "UPS 2nd Day Air").unwrap().amount,
        find(&list, "UPS 2nd Day Air").unwrap().amount
    );
}

#[test]
fn delivery_area_surcharges_by_zip_prefix() {
    let f = Freight::sample();
    let lines = [ItemLine {
        item: SMALL,
        quantity: 1,
    }];
    let ground = |zip: &str| {
        let out = f
            .rate(&req(us("10001", false), us(zip, false), &lines))
            .unwrap();
        find(&out, "FedEx Ground").unwrap().amount
    };
    // Zone 3 1 lb 11.67; x 1.185 fuel; + 0.45 box.
    assert_eq!(ground("04011"), dec("14.28")); // no surcharge
    assert_eq!(ground("04630"), dec("18.96")); // 046: + 3.95
    assert_eq!(ground("04631"), dec("20.38")); // 04631 extended: + 5.15
    let home = f
        .rate(&req(us("10001", false), us("04631", true), &lines))
        .unwrap();
    // (11.67 + 5.95 residential + 7.60 extended residential) x 1.185 + 0.45 = 30.3357 -> 30.34.
    assert_eq!(
        find(&home, "FedEx Home Delivery").unwrap().amount,
        dec("30.34")
    );
}

#[test]
fn additional_handling_and_oversize_thresholds() {
    let f = Freight::sample();
    let (o, d) = (us("10001", false), us("10401", false));
    let ground = |it: Item| {
        let lines = [ItemLine {
            item: it,
            quantity: 1,
        }];
        let out = f.rate(&req(o, d, &lines)).unwrap();
        (
            out.parcels[0].clone(),
            find(&out, "FedEx Ground").unwrap().amount,
        )
    };
    // Second side 780 mm (30.7 in) > 30 in: additional handling.
    // Own packaging; 800 x 780 x 50 = 31.2e6 mm³ = 1904 in³ / 139 -> 14 lb: zone 2
    // 16.27 + 4 x 0.58 = 18.59; + 31.50 = 50.09; x 1.185 = 59.35665.
    let (p, amount) = ground(item(3_000, 800, 780, 50));
    assert_eq!(p.box_id, OWN_PACKAGING);
    assert_eq!(amount, dec("59.36"));
    // Length + girth 2700 + 4 x 160 = 3980 mm (156.7 in) > 130: oversize, billed at least
    // 90 lb: zone 2 90 lb = 49.33 + 20/30 x 14.79 = 59.19; (59.19 + 265) x 1.185 = 384.16515.
    let (p, amount) = ground(item(5_000, 2700, 160, 160));
    assert_eq!(p.box_id, OWN_PACKAGING);
    assert_eq!(amount, dec("384.17"));
}

#[test]
fn service_codes_round_trip() {
    let f = Freight::sample();
    assert_eq!(f.service_code("FedEx", "FedEx 2Day"), Some("FEDEX_2_DAY"));
    assert_eq!(
        f.service_code("fedex", "fedex home delivery"),
        Some("GROUND_HOME_DELIVERY")
    );
    assert_eq!(f.service_code("UPS", "UPS Ground"), Some("03"));
    assert_eq!(f.service_code("UPS", "UPS Worldwide Saver"), Some("65"));
    assert_eq!(f.service_code("UPS", "FedEx 2Day"), None);
    assert_eq!(f.service_code("DHL", "UPS Ground"), None);
    assert_eq!(
        f.service_by_code("UPS", "08"),
        Some("UPS Worldwide Expedited")
    );
    assert_eq!(
        f.service_by_code("FedEx", "INTERNATIONAL_ECONOMY"),
        Some("FedEx International Economy")
    );
    assert_eq!(f.service_by_code("FedEx", "03"), None);
    for s in &f.model.services {
        let c = &f.model.carriers[s.carrier];
        let code = f.service_code(&c.name, &s.name).unwrap();
        assert_eq!(f.service_by_code(&c.id, code), Some(&*s.name));
    }
    let dup = with_file("carriers/ups.toml", |s| {
        s.replacen("code = \"12\"", "code = \"03\"", 1)
    });
    assert_eq!(
        table_error(dup).2,
        "service name or code used twice in this carrier"
    );
    let missing = with_file("carriers/ups.toml", |s| {
        s.replacen("code = \"12\"\n", "", 1)
    });
    assert_eq!(table_error(missing).0, "carriers/ups.toml");
}

fn sr(carrier: &str, service: &str, amount: &str, days: u32) -> ServiceRate {
    ServiceRate {
        carrier: carrier.into(),
        service: service.into(),
        amount: dec(amount),
        transit_days: days,
    }
}

#[test]
fn rate_shopping_choices_and_tie_breaks() {
    let rates = vec![
        sr("UPS", "UPS Next Day Air", "60.00", 1),
        sr("FedEx", "FedEx Ground", "12.00", 4),
        sr("UPS", "UPS Ground", "12.00", 4),
        sr("FedEx", "FedEx 2Day", "30.00", 2),
        sr("FedEx", "FedEx Priority Overnight", "60.00", 1),
        sr("UPS", "UPS 3 Day Select", "25.00", 3),
        sr("FedEx", "FedEx Express Saver", "12.00", 3),
    ];
    let pick = |c| choose(&rates, c).map(|r| &*r.service);
    // Cheapest: 12.00 three ways; fewer days wins.
    assert_eq!(pick(RateChoice::Cheapest), Some("FedEx Express Saver"));
    // Fastest: 1 day twice at 60.00; carrier name breaks the tie.
    assert_eq!(pick(RateChoice::Fastest), Some("FedEx Priority Overnight"));
    assert_eq!(pick(RateChoice::CheapestWithinDays(2)), Some("FedEx 2Day"));
    assert_eq!(
        pick(RateChoice::CheapestWithinDays(4)),
        Some("FedEx Express Saver")
    );
    assert_eq!(pick(RateChoice::CheapestWithinDays(0)), None);
    assert_eq!(choose(&[], RateChoice::Cheapest), None);
    // Order of the input does not matter.
    let mut rev = rates.clone();
    rev.reverse();
    for c in [
        RateChoice::Cheapest,
        RateChoice::Fastest,
        RateChoice::CheapestWithinDays(2),
    ] {
        assert_eq!(choose(&rev, c), choose(&rates, c));
    }
    // On real output, Cheapest is the first rate (same sort order).
    let f = Freight::sample();
    let lines = [ItemLine {
        item: SMALL,
        quantity: 2,
    }];
    let out = f
        .rate(&req(us("10001", false), us("94105", false), &lines))
        .unwrap();
    assert_eq!(choose(&out.rates, RateChoice::Cheapest), out.rates.first());
    let fast = choose(&out.rates, RateChoice::Fastest).unwrap();
    assert_eq!(fast.transit_days, 1);
}

#[test]
fn shipment_fields_satisfy_the_amount_invariant() {
    let f = Freight::sample();
    let lines = [
        ItemLine {
            item: SMALL,
            quantity: 3,
        },
        ItemLine {
            item: item(4_000, 400, 300, 200),
            quantity: 2,
        },
    ];
    let mut r = req(us("30301", false), us("60601", true), &lines);
    r.handling_fee = dec("1.25");
    let out = f.rate(&r).unwrap();
    let unrounded = f.carrier_charges_unrounded(&r);
    assert_eq!(unrounded.len(), out.rates.len());
    for rate in &out.rates {
        let c = unrounded
            .iter()
            .find(|(s, _)| **s == *rate.service)
            .unwrap()
            .1;
        assert_eq!(
            rate.amount,
            (c + out.boxes_cost + out.handling_fee)
                .round_dp_with_strategy(2, rust_decimal::RoundingStrategy::MidpointAwayFromZero)
        );
        assert_eq!(
            out.carrier_charge(rate),
            c.round_dp_with_strategy(2, rust_decimal::RoundingStrategy::MidpointAwayFromZero)
        );
    }
    assert_eq!(out.handling_fee, dec("1.25"));
    assert!(out.boxes_cost > Decimal::ZERO);
}

#[test]
fn packing_beats_one_per_box_and_exact_beats_heuristic() {
    let f = Freight::sample();
    let lines = [
        ItemLine {
            item: SMALL,
            quantity: 5,
        },
        ItemLine {
            item: item(1_200, 250, 200, 100),
            quantity: 3,
        },
    ];
    let r = req(us("10001", false), us("94105", false), &lines);
    let (packed, cost) = f.reference_cost(&r, Packing::Optimised).unwrap();
    let (single, baseline) = f.reference_cost(&r, Packing::OnePerBox).unwrap();
    assert_eq!(single.len(), 8);
    assert!(packed.len() < 8);
    assert!(cost < baseline, "{cost} vs {baseline}");
    let opt = f.rate(&r).unwrap();
    let one = f.rate_with(&r, Packing::OnePerBox).unwrap();
    assert!(opt.rates[0].amount < one.rates[0].amount);
}

#[test]
fn heavy_goods_pack_under_the_handling_weight_when_that_is_cheaper() {
    // Twelve 4 kg units, past the exact search: filled to their boxes'
    // limits they made two parcels of 37 kg, each over the carriers' 50 lb
    // additional handling weight (238.10). Three under it cost 222.21.
    let f = Freight::sample();
    let lines = [ItemLine {
        item: item(4_000, 200, 150, 100),
        quantity: 12,
    }];
    let r = req(us("10001", false), us("60601", false), &lines);
    let rated = f.rate(&r).unwrap();
    let heaviest = rated.parcels.iter().map(|p| p.weight_g).max().unwrap();
    // 50 lb, in whole grams.
    assert!(
        heaviest <= 22_679,
        "a parcel of {heaviest} g pays additional handling"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    #[test]
    fn exact_search_is_never_worse_than_the_heuristic(
        lines in prop::collection::vec(line_strategy(), 1..4),
    ) {
        let units: u32 = lines.iter().map(|l| l.quantity).sum();
        prop_assume!((1..=10).contains(&units));
        let exact = with_file("settings.toml", |s| s.replace("exact_packing_max_units = 8", "exact_packing_max_units = 10")).unwrap();
        let heur = with_file("settings.toml", |s| s.replace("exact_packing_max_units = 8", "exact_packing_max_units = 0")).unwrap();
        let r = req(us("10001", false), us("94105", false), &lines);
        if let (Ok((_, e)), Ok((_, h))) = (
            exact.reference_cost(&r, Packing::Optimised),
            heur.reference_cost(&r, Packing::Optimised),
        ) {
            prop_assert!(e <= h, "exact {} > heuristic {}", e, h);
        }
    }
}

#[test]
fn new_table_keys_are_checked() {
    let e = table_error(with_file("zones/domestic.toml", |s| {
        s.replacen("origins = [\"600-629\"]", "origins = [\"100-105\"]", 1)
    }));
    assert_eq!(
        (e.0.as_str(), e.1.as_str()),
        ("zones/domestic.toml", "chart[2].origins[0]")
    );
    let e = table_error(with_file("zones/domestic.toml", |s| {
        s.replacen("{ zip3 = \"005-069\"", "{ zip3 = \"05-069\"", 1)
    }));
    assert_eq!(e.1, "chart[0].destinations[0]");
    let e = table_error(with_file("carriers/ups.toml", |s| {
        s.replacen("{ kg =  1,", "{ lb =  1,", 1)
    }));
    assert_eq!(e.1, "service[4].breaks[0]");
    let e = table_error(with_file("carriers/fedex.toml", |s| {
        s.replacen("\"12870\"", "\"1287\"", 1)
    }));
    assert!(e.1.starts_with("delivery_area.zip_prefixes"), "{e:?}");
    let e = table_error(with_file("settings.toml", |s| {
        s.replace(
            "exact_packing_max_units = 8",
            "exact_packing_max_units = 20",
        )
    }));
    assert_eq!(e.1, "exact_packing_max_units");
}

/// The fuelled charge tables give exactly what the published formula does:
/// `(max(price, minimum) + per-parcel surcharges + oversize or additional
/// handling) × fuel`, for every service, zone and kind of parcel.
#[test]
fn fuelled_charges_equal_the_published_formula() {
    let f = Freight::sample();
    let m = &f.model;
    let parcels = [
        rating::ParcelFacts::new(250, [150, 100, 20]),
        rating::ParcelFacts::new(9_000, [500, 400, 300]),
        // Over additional-handling weight.
        rating::ParcelFacts::new(25_000, [400, 300, 200]),
        // Long enough for additional handling by its longest side.
        rating::ParcelFacts::new(3_000, [1_300, 200, 100]),
        // Oversize by length + girth.
        rating::ParcelFacts::new(10_000, [1_500, 700, 500]),
    ];
    let mut compared = 0;
    for s in &m.services {
        let carrier = &m.carriers[s.carrier];
        for (zone, row) in s.prices.iter().enumerate() {
            let Some(row) = row else { continue };
            for (residential, area) in [(false, "0"), (true, "0"), (true, "3.95"), (false, "2.1")] {
                let area = dec(area);
                let p = rating::Pricer::new(carrier, s, zone, residential, area).unwrap();
                for facts in &parcels {
                    let Ok(got) = p.charge(facts) else { continue };
                    let oversize = facts.length_plus_girth_mm_x10 > carrier.oversize_lg_mm_x10;
                    let mut billable = s.dim.billable(facts.weight_g, facts.dims_mm);
                    if oversize {
                        billable = billable.max(s.dim.units_from_lb(carrier.oversize_min_lb));
                    }
                    let base = row[billable.max(1) as usize - 1];
                    let ah = facts.longest_mm_x10 > carrier.ah_longest_mm_x10
                        || facts.second_mm_x10 > carrier.ah_second_mm_x10
                        || facts.length_plus_girth_mm_x10 > carrier.ah_lg_mm_x10
                        || facts.weight_g_x1e5 > carrier.ah_weight_g_x1e5;
                    let extra = if oversize {
                        carrier.oversize
                    } else if ah {
                        carrier.additional_handling
                    } else {
                        Decimal::ZERO
                    };
                    let surcharges = if residential {
                        s.residential_surcharge + area
                    } else {
                        area
                    };
                    let want = (base.max(s.minimum_charge) + surcharges + extra) * s.fuel_factor;
                    assert_eq!(got, want, "{} zone {zone} {facts:?}", s.name);
                    compared += 1;
                }
            }
        }
    }
    assert!(compared > 500, "only {compared} charges compared");
}

#[test]
fn amounts_convert_to_hundred_millionths_only_when_exact() {
    assert_eq!(rating::to_e8(dec("12.34")), Some(1_234_000_000));
    assert_eq!(rating::to_e8(dec("0.00000001")), Some(1));
    // Trailing zeros past the eighth decimal are still exact.
    assert_eq!(rating::to_e8(dec("1.5000000000")), Some(150_000_000));
    assert_eq!(rating::to_e8(dec("0.000000001")), None);
    assert_eq!(rating::to_e8(Decimal::ZERO), Some(0));
}

/// The packing `pack_on` chooses, and the one pricing in `Decimal` chooses
/// for the same units on the same lane, as (box, units, weight) per parcel.
#[allow(clippy::type_complexity)]
fn packings_both_ways(
    f: &Freight,
    r: &RateRequest<'_>,
) -> Option<(
    Vec<(Option<usize>, Vec<usize>, u64)>,
    Vec<(Option<usize>, Vec<usize>, u64)>,
)> {
    let lane = f.lane_between(r.origin, r.destination).ok()?;
    let packed = f
        .pack_on(&lane, r.lines, r.handling_fee, Packing::Optimised)
        .ok()?;
    let units = packing::units(r.lines, &f.model.settings).ok()?;
    let by_decimal = f.decimal_packer(lane.reference()).pack(&units);
    let key = |p: &[packing::OpenParcel]| {
        p.iter()
            .map(|p| (p.box_idx, p.units.clone(), p.contents_weight_g))
            .collect::<Vec<_>>()
    };
    Some((key(&packed), key(&by_decimal)))
}

/// Domestic destinations with and without residential and delivery-area
/// surcharges, and two abroad.
fn mixed_destinations() -> [Endpoint<'static>; 5] {
    [
        us("94105", false),
        us("04630", false),
        us("04631", true),
        Endpoint {
            country_code: "GB",
            postal_code: "SW1A 1AA",
            residential: false,
        },
        Endpoint {
            country_code: "JP",
            postal_code: "100-0001",
            residential: true,
        },
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]
    /// Integer pricing picks exactly the packing `Decimal` pricing picks,
    /// for the exact search and the heuristic, on domestic lanes with and
    /// without residential and delivery-area surcharges and abroad.
    #[test]
    fn integer_pricing_packs_as_decimal_does(
        lines in prop::collection::vec(line_strategy(), 1..5),
        extra in prop_oneof![Just(0u32), 0u32..20],
        to in 0usize..5,
    ) {
        let mut lines = lines;
        lines[0].quantity += extra;
        let f = Freight::sample();
        let destination = mixed_destinations()[to];
        let r = req(us("10001", false), destination, &lines);
        let lane = f.lane_between(r.origin, r.destination).unwrap();
        // The sample tables are whole hundred-millionths everywhere.
        prop_assert!(lane.reference().is_some_and(|p| p.e8.is_some()));
        prop_assert!(f.model.box_costs_e8.is_some());
        if let Some((integer, decimal)) = packings_both_ways(&f, &r) {
            prop_assert_eq!(integer, decimal);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]
    /// Rates added up in hundred-millionths are the rates `Decimal` gives:
    /// the same services, order and amounts, down to the text of each
    /// amount (two decimals), with handling fees that round at half a cent.
    #[test]
    fn integer_rates_are_decimal_rates(
        lines in prop::collection::vec(line_strategy(), 1..5),
        fee_e4 in prop_oneof![Just(0i64), 0i64..100_000, (0i64..2_000).prop_map(|c| c * 100 + 50)],
        to in 0usize..5,
    ) {
        let f = Freight::sample();
        let destination = mixed_destinations()[to];
        let mut r = req(us("10001", false), destination, &lines);
        r.handling_fee = Decimal::new(fee_e4, 4);
        let lane = f.lane_between(r.origin, r.destination).unwrap();
        let Ok(rated) = f.rate_on(&lane, r.lines, r.handling_fee, Packing::Optimised) else {
            return Ok(());
        };
        let parcels: Vec<ParcelFacts> = rated
            .parcels
            .iter()
            .map(|p| ParcelFacts::new(p.weight_g, [p.length_mm, p.width_mm, p.height_mm]))
            .collect();
        let fixed = rated.boxes_cost + rated.handling_fee;
        let by_decimal = Freight::price_services(&lane, &parcels, fixed, None).unwrap();
        let shown = |rates: &[ServiceRate]| {
            rates
                .iter()
                .map(|r| (r.service.to_string(), r.amount.to_string(), r.transit_days))
                .collect::<Vec<_>>()
        };
        prop_assert_eq!(shown(&rated.rates), shown(&by_decimal));
        for rate in &rated.rates {
            prop_assert_eq!(rate.amount.scale(), 2);
        }
    }
}

#[test]
fn amounts_finer_than_hundred_millionths_pack_in_decimal() {
    // A hundred-millionth of a percent more fuel everywhere makes every
    // fuelled charge finer than integer pricing carries: packing falls back
    // to Decimal and, since no charge moves by half a cent, rates as before.
    let files: Vec<(String, Vec<u8>)> = Freight::sample_files()
        .into_iter()
        .map(|(p, c)| {
            let text = std::str::from_utf8(&c).unwrap();
            let finer = if p.starts_with("carriers/") {
                text.lines()
                    .map(|l| match l.strip_prefix("fuel_surcharge_pct = \"") {
                        Some(v) => format!("fuel_surcharge_pct = \"{}000001\"", &v[..v.len() - 1]),
                        None => l.to_string(),
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            } else {
                text.to_string()
            };
            (p, finer.into_bytes())
        })
        .collect();
    let f = Freight::from_files(&files).unwrap();
    assert!(f.model.services.iter().all(|s| s.fuelled.e8.is_none()));
    let sample = Freight::sample();
    for (zip, residential, quantity) in [
        ("04011", false, 3),
        ("04631", true, 12),
        ("94105", false, 1),
    ] {
        let lines = [ItemLine {
            item: SMALL,
            quantity,
        }];
        let r = req(us("10001", false), us(zip, residential), &lines);
        let lane = f.lane_between(r.origin, r.destination).unwrap();
        assert!(lane.reference().is_some_and(|p| p.e8.is_none()));
        assert_eq!(f.rate(&r).unwrap(), sample.rate(&r).unwrap());
        assert_eq!(packings_both_ways(&f, &r), packings_both_ways(&sample, &r));
    }
}

#[test]
fn origins_with_one_lane_key_rate_alike() {
    let f = Freight::sample();
    let lines = small_and(item(9_000, 600, 400, 300), 1);
    for destination in [
        us("04631", true),
        us("94105", false),
        Endpoint {
            country_code: "GB",
            postal_code: "SW1A 1AA",
            residential: false,
        },
    ] {
        let near = f.lane_key(us("10001", false), destination).unwrap();
        let same = f.lane_key(us("10018", false), destination).unwrap();
        let far = f.lane_key(us("98101", false), destination).unwrap();
        assert_eq!(
            near, same,
            "two Manhattan origins share the lane to {destination:?}"
        );
        for origin in ["10001", "10018"] {
            let r = req(us(origin, false), destination, &lines);
            let shared = f.lane_at(near, destination).unwrap();
            assert_eq!(
                f.rate_on(&shared, &lines, Decimal::ZERO, Packing::Optimised)
                    .unwrap(),
                f.rate(&r).unwrap()
            );
        }
        // Domestic destinations are zoned by origin; abroad, the origin's
        // country is all that counts.
        assert_eq!(far == near, destination.country_code == "GB");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// A lane found through its class, after other destinations filled the
    /// classes, rates exactly as one worked out for the destination alone:
    /// what earlier destinations left behind never changes a rating. (That
    /// the class's residential flag and tiers price correctly is what the
    /// surcharge tests above check.)
    #[test]
    fn lanes_from_their_class_rate_as_lanes_worked_out_alone(
        zips in proptest::collection::vec(
            prop_oneof![
                Just("03901"), Just("04631"), Just("12812"), Just("12813"),
                Just("59935"), Just("59901"), Just("96701"), Just("99501"),
                Just("10001"), Just("10018"), Just("94105"), Just("60601"),
            ],
            1..12,
        ),
        residential in proptest::collection::vec(any::<bool>(), 12),
        weight_g in 100u32..30_000,
        origin in prop_oneof![Just("10001"), Just("98101"), Just("33101")],
    ) {
        let shared = Freight::sample();
        let lines = [ItemLine { item: item(weight_g, 300, 200, 100), quantity: 2 }];
        for (zip, res) in zips.iter().zip(&residential) {
            let r = req(us(origin, false), us(zip, *res), &lines);
            let alone = Freight::sample().rate(&r);
            prop_assert_eq!(shared.rate(&r), alone, "to {} (residential {})", zip, res);
        }
    }
}

#[test]
fn lanes_of_one_zone_keep_their_delivery_area_surcharges_apart() {
    let f = Freight::sample();
    let lines = [ItemLine {
        item: SMALL,
        quantity: 1,
    }];
    // 12812 is in FedEx's delivery area and 12813 is not, in the same zone
    // from 10001: the class of the first lane must not serve the second.
    let ground = |zip: &str| {
        let r = f
            .rate(&req(us("10001", true), us(zip, true), &lines))
            .unwrap();
        find(&r, "FedEx Ground")
            .or_else(|| find(&r, "FedEx Home Delivery"))
            .unwrap()
            .amount
    };
    let (area, plain) = (ground("12812"), ground("12813"));
    assert_eq!(
        f.lane_key(us("10001", true), us("12812", true)).unwrap(),
        f.lane_key(us("10001", true), us("12813", true)).unwrap()
    );
    assert!(area > plain, "delivery area {area} against {plain}");
    // And again in the other order, each now from its class.
    assert_eq!((ground("12813"), ground("12812")), (plain, area));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]
    /// The services a least charge looks at (`floor::least_charging`) are
    /// never missing the cheapest: over every parcel, in any box or none,
    /// their least charge equals the least of all the lane's services, and
    /// a parcel some service takes is taken by one of them.
    #[test]
    fn the_services_a_least_charge_skips_are_never_cheapest(
        weight_g in 1u32..70_000,
        dims in (10u32..1_500, 10u32..900, 5u32..700),
        from in 0usize..3,
        to in 0usize..5,
    ) {
        let f = Freight::sample();
        let origin = [us("10001", false), us("60601", false), us("98101", false)][from];
        let lane = f.lane_between(origin, mixed_destinations()[to]).unwrap();
        let kept = floor::least_charging(&lane.services);
        prop_assert!(!kept.is_empty());
        let mut sides = [dims.0, dims.1, dims.2];
        sides.sort_unstable_by(|a, b| b.cmp(a));
        let facts = ParcelFacts::new(weight_g, sides);
        let least = |pricers: &mut dyn Iterator<Item = &rating::Pricer<'_>>| {
            pricers.filter_map(|p| p.charge_e8(&facts)?.ok()).min()
        };
        prop_assert_eq!(
            least(&mut kept.iter()),
            least(&mut lane.services.iter().map(|s| &s.pricer))
        );
    }
}

#[test]
fn a_least_charge_skips_services_dearer_everywhere() {
    // On a domestic lane each carrier's ground service undercuts its
    // express ones at every weight: those are left out of least charges.
    let f = Freight::sample();
    let lane = f
        .lane_between(us("10001", false), us("60601", false))
        .unwrap();
    let kept = floor::least_charging(&lane.services).len();
    assert!(
        kept > 0 && kept < lane.services.len(),
        "{kept} of {}",
        lane.services.len()
    );
}

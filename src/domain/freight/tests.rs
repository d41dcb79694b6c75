//! Tests of the freight module against the SAMPLE tables.

use proptest::prelude::*;
use rust_decimal::Decimal;

use super::packing::{self, OpenParcel};
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
    r.rates.iter().find(|s| s.service == service)
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

#[test]
fn rates_are_sorted_and_deterministic() {
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

proptest! {
    #[test]
    fn packing_invariants(lines in prop::collection::vec(line_strategy(), 1..6)) {
        let f = Freight::sample();
        let m = &f.model;
        let total_units: u32 = lines.iter().map(|l| l.quantity).sum();
        let packed = packing::pack(&lines, &m.boxes, &m.settings);
        if total_units == 0 {
            prop_assert_eq!(packed.unwrap_err(), FreightError::EmptyShipment);
            return Ok(());
        }
        let packed: Vec<OpenParcel> = packed.unwrap();
        // Every unit exactly once.
        let mut seen = vec![0u32; lines.len()];
        for p in &packed {
            for &li in &p.units {
                seen[li] += 1;
            }
        }
        prop_assert_eq!(seen, lines.iter().map(|l| l.quantity).collect::<Vec<_>>());

        let parcels = f.pack(&lines).unwrap();
        prop_assert_eq!(parcels.len(), packed.len());
        let mut tares: u64 = 0;
        for (op, parcel) in packed.iter().zip(&parcels) {
            let contents: u64 = op.units.iter().map(|&li| u64::from(lines[li].item.weight_g)).sum();
            match op.box_idx {
                Some(bi) => {
                    let b = &m.boxes[bi];
                    prop_assert_eq!(&parcel.box_id, &b.id);
                    prop_assert!(u64::from(parcel.weight_g) <= u64::from(b.max_weight_g));
                    prop_assert_eq!(u64::from(parcel.weight_g), contents + u64::from(b.tare_weight_g));
                    tares += u64::from(b.tare_weight_g);
                    for &li in &op.units {
                        let it = lines[li].item;
                        let d = sorted([it.length_mm, it.width_mm, it.height_mm]);
                        prop_assert!(d.iter().zip(b.inner_mm).all(|(x, y)| *x <= y), "{:?} in {}", d, b.id);
                    }
                    let volume: u128 = op.units.iter().map(|&li| {
                        let it = lines[li].item;
                        u128::from(it.length_mm) * u128::from(it.width_mm) * u128::from(it.height_mm)
                    }).sum();
                    prop_assert!(op.units.len() == 1 || volume * 100 <= b.inner_volume_mm3 * 85);
                }
                None => {
                    prop_assert_eq!(parcel.box_id.as_str(), OWN_PACKAGING);
                    prop_assert_eq!(op.units.len(), 1);
                    prop_assert_eq!(u64::from(parcel.weight_g), contents);
                }
            }
            prop_assert!(parcel.billable_weight_g >= parcel.weight_g);
        }
        let items: u64 = lines.iter().map(|l| u64::from(l.item.weight_g) * u64::from(l.quantity)).sum();
        let total: u64 = parcels.iter().map(|p| u64::from(p.weight_g)).sum();
        prop_assert_eq!(total, items + tares);

        // Deterministic, and rating agrees with packing.
        prop_assert_eq!(&f.pack(&lines).unwrap(), &parcels);
        let r = req(us("10001", false), us("90210", true), &lines);
        let a = f.rate(&r);
        prop_assert_eq!(&a, &f.rate(&r));
        if let Ok(a) = a {
            prop_assert_eq!(a.parcels, parcels);
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

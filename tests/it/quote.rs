//! Quotes end to end: validation, shortfalls, totals and the freight rule.

use rust_decimal::Decimal;
use stockroute::pb;

use crate::helpers::{in_stock_skus, line, spawn_app, us};

fn dec(m: &Option<pb::Money>) -> Decimal {
    m.as_ref().expect("money").amount.parse().expect("decimal")
}

fn request(lines: Vec<pb::BasketLine>, ship_to: Option<pb::Address>) -> pb::QuoteRequest {
    pb::QuoteRequest {
        lines,
        ship_to,
        options: None,
    }
}

/// A quote covers every unit, totals add up to the cent, and each shipment's
/// freight equals RateShipment's figure for the same carrier and service.
#[tokio::test]
async fn quote_totals_add_up_and_freight_matches_rate_shipment() {
    let app = spawn_app().await;
    let skus = in_stock_skus(&app, 4).await;
    assert_eq!(skus.len(), 4);
    let lines: Vec<pb::BasketLine> = skus.iter().map(|s| line(s, 2)).collect();
    let r = app
        .fulfillment()
        .quote(request(lines.clone(), us("10001")))
        .await
        .expect("quote")
        .into_inner();
    let plan = r.plan.expect("plan");
    assert!(plan.unfulfilled.is_empty());
    assert!(!plan.quote_id.is_empty());
    let shipped: u32 = plan
        .shipments
        .iter()
        .flat_map(|s| &s.lines)
        .map(|l| l.quantity)
        .sum();
    assert_eq!(shipped, 8);
    let goods: Decimal = plan
        .shipments
        .iter()
        .flat_map(|s| &s.lines)
        .map(|l| dec(&l.unit_cost) * Decimal::from(l.quantity))
        .sum();
    assert_eq!(dec(&plan.goods_total), goods.round_dp(2));
    let freight: Decimal = plan.shipments.iter().map(|s| dec(&s.freight)).sum();
    assert_eq!(dec(&plan.freight_total), freight);
    assert_eq!(
        dec(&plan.grand_total),
        dec(&plan.goods_total) + dec(&plan.freight_total)
    );

    for s in &plan.shipments {
        assert!(!s.parcels.is_empty() && !s.carrier.is_empty());
        let rated = app
            .catalog()
            .rate_shipment(pb::RateShipmentRequest {
                origin: s.origin.clone(),
                destination: us("10001"),
                lines: s.lines.iter().map(|l| line(&l.sku, l.quantity)).collect(),
                supplier_id: s.supplier_id.clone(),
            })
            .await
            .expect("rate shipment")
            .into_inner();
        let same = rated
            .rates
            .iter()
            .find(|x| x.carrier == s.carrier && x.service == s.service)
            .expect("the plan's service is among the rates");
        assert_eq!(
            dec(&same.amount),
            dec(&s.freight),
            "shipment from {}",
            s.supplier_id
        );
        // The test world rates against the fake carrier APIs: both figures are live.
        assert!(
            s.freight_live && same.live,
            "shipment from {} not priced live",
            s.supplier_id
        );
        assert_eq!(rated.parcels, s.parcels);
    }

    // Same request, same data: same plan.
    let again = app
        .fulfillment()
        .quote(request(lines, us("10001")))
        .await
        .unwrap()
        .into_inner()
        .plan
        .unwrap();
    assert_eq!(again.shipments, plan.shipments);
}

/// Malformed requests are INVALID_ARGUMENT naming the field.
#[tokio::test]
async fn malformed_requests_name_the_field() {
    let app = spawn_app().await;
    let mut client = app.fulfillment();
    let cases = vec![
        (request(vec![], us("10001")), "lines"),
        (
            request(vec![line("SR-000001", 0)], us("10001")),
            "lines[0].quantity",
        ),
        (
            request(vec![line("SR-000001", 10_000_000)], us("10001")),
            "lines[0].quantity",
        ),
        (request(vec![line("", 1)], us("10001")), "lines[0].sku"),
        (request(vec![line("SR-000001", 1)], None), "ship_to"),
        (
            request(
                vec![line("SR-000001", 1)],
                Some(pb::Address {
                    country_code: "ZZ".into(),
                    postal_code: "1".into(),
                    residential: false,
                }),
            ),
            "ship_to.country_code",
        ),
        (
            request(vec![line("SR-000001", 1)], us("ABCDE")),
            "ship_to.postal_code",
        ),
    ];
    for (req, field) in cases {
        let err = client.quote(req).await.expect_err(field);
        assert_eq!(
            err.code(),
            tonic::Code::InvalidArgument,
            "{field}: {}",
            err.message()
        );
        assert!(
            err.message().starts_with(field),
            "expected `{field}` in `{}`",
            err.message()
        );
    }
    let mut bad_excl = request(vec![line("SR-000001", 1)], us("10001"));
    bad_excl.options = Some(pb::QuoteOptions {
        exclude_suppliers: vec!["SUP999".into()],
        ..Default::default()
    });
    let err = client.quote(bad_excl).await.unwrap_err();
    assert!(
        err.message().contains("exclude_suppliers[0]"),
        "{}",
        err.message()
    );
}

/// All-or-nothing fails naming each short line; allow_partial lists them instead.
#[tokio::test]
async fn shortfalls_fail_or_are_listed() {
    let app = spawn_app().await;
    let skus = in_stock_skus(&app, 1).await;
    let lines = vec![
        line(&skus[0], 1),
        line("NO-SUCH", 2),
        line(&skus[0], 1),
        line("SR-000002", 99_999),
    ];
    let mut client = app.fulfillment();
    let err = client
        .quote(request(lines.clone(), us("94105")))
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::FailedPrecondition);
    assert!(
        err.message().contains("NO-SUCH") && err.message().contains("unknown SKU"),
        "{}",
        err.message()
    );
    assert!(
        err.message().contains("SR-000002") && err.message().contains("out of stock"),
        "{}",
        err.message()
    );
    // Lines are named by their place in the request, even after the repeated SKU merged.
    assert!(
        err.message().contains("lines[1] NO-SUCH") && err.message().contains("lines[3] SR-000002"),
        "{}",
        err.message()
    );

    let mut partial = request(lines, us("94105"));
    partial.options = Some(pb::QuoteOptions {
        allow_partial: true,
        ..Default::default()
    });
    let plan = client
        .quote(partial)
        .await
        .expect("partial quote")
        .into_inner()
        .plan
        .unwrap();
    let unknown = plan
        .unfulfilled
        .iter()
        .find(|u| u.sku == "NO-SUCH")
        .expect("unknown listed");
    assert_eq!(unknown.reason, pb::shortfall::Reason::UnknownSku as i32);
    assert_eq!(unknown.quantity_missing, 2);
    assert!(plan
        .unfulfilled
        .iter()
        .any(|u| u.sku == "SR-000002" && u.reason == pb::shortfall::Reason::OutOfStock as i32));
    // The repeated line was merged: two units of the in-stock SKU ship.
    let shipped: u32 = plan
        .shipments
        .iter()
        .flat_map(|s| &s.lines)
        .filter(|l| l.sku == skus[0])
        .map(|l| l.quantity)
        .sum();
    assert_eq!(shipped, 2);
}

/// International destinations are planned, and excluded suppliers are not used.
#[tokio::test]
async fn international_quote_and_exclusions() {
    let app = spawn_app().await;
    let skus = in_stock_skus(&app, 2).await;
    let mut client = app.fulfillment();
    let req = pb::QuoteRequest {
        lines: skus.iter().map(|s| line(s, 1)).collect(),
        ship_to: Some(pb::Address {
            country_code: "GB".into(),
            postal_code: "SW1A 1AA".into(),
            residential: true,
        }),
        options: Some(pb::QuoteOptions {
            allow_partial: true,
            ..Default::default()
        }),
    };
    let plan = client
        .quote(req.clone())
        .await
        .expect("quote to GB")
        .into_inner()
        .plan
        .unwrap();
    assert!(!plan.shipments.is_empty());
    let used: Vec<String> = plan
        .shipments
        .iter()
        .map(|s| s.supplier_id.clone())
        .collect();
    let mut excluding = req;
    excluding.options.as_mut().unwrap().exclude_suppliers = used.clone();
    let plan = client
        .quote(excluding)
        .await
        .expect("quote")
        .into_inner()
        .plan
        .unwrap();
    assert!(plan
        .shipments
        .iter()
        .all(|s| !used.contains(&s.supplier_id)));
}

/// GetOffers answers from the index; an unknown SKU is NOT_FOUND.
#[tokio::test]
async fn get_offers_lists_suppliers_with_origins() {
    let app = spawn_app().await;
    let skus = in_stock_skus(&app, 1).await;
    let mut catalog = app.catalog();
    let offers = catalog
        .get_offers(pb::GetOffersRequest {
            sku: skus[0].clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .offers;
    assert!(!offers.is_empty());
    for o in &offers {
        assert!(o.origin.is_some() && o.as_of.is_some() && !o.supplier_sku.is_empty());
    }
    let err = catalog
        .get_offers(pb::GetOffersRequest { sku: "NOPE".into() })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::NotFound);
}

/// An arrival limit is met by every shipment, or the units are listed as not shippable.
#[tokio::test]
async fn arrive_within_days_is_respected() {
    let app = spawn_app().await;
    let skus = in_stock_skus(&app, 3).await;
    let mut req = request(skus.iter().map(|s| line(s, 1)).collect(), us("98101"));
    req.options = Some(pb::QuoteOptions {
        allow_partial: true,
        arrive_within_days: 2,
        ..Default::default()
    });
    let plan = app
        .fulfillment()
        .quote(req)
        .await
        .expect("quote")
        .into_inner()
        .plan
        .unwrap();
    for s in &plan.shipments {
        assert!(
            s.processing_days + s.transit_days <= 2,
            "{} arrives in {} + {} days",
            s.supplier_id,
            s.processing_days,
            s.transit_days
        );
    }
    let shipped: u32 = plan
        .shipments
        .iter()
        .flat_map(|s| &s.lines)
        .map(|l| l.quantity)
        .sum();
    let missing: u32 = plan
        .unfulfilled
        .iter()
        .inspect(|u| assert_eq!(u.reason, pb::shortfall::Reason::NotShippable as i32))
        .map(|u| u.quantity_missing)
        .sum();
    assert_eq!(shipped + missing, 3);
}

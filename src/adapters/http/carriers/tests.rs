//! Tests against the fake FedEx + UPS on loopback.

use std::str::FromStr;
use std::time::Duration;

use rust_decimal::Decimal;

use super::fake::{FakeCarrierServer, FAKE_CLIENT_SECRET};
use super::*;

fn dec(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

fn request(dest_country: &str, residential: bool) -> LiveRateRequest {
    LiveRateRequest {
        origin: LiveAddress {
            country_code: "US".into(),
            postal_code: "10001".into(),
            residential: false,
        },
        destination: LiveAddress {
            country_code: dest_country.into(),
            postal_code: if dest_country == "US" {
                "94105"
            } else {
                "M5V 2T6"
            }
            .into(),
            residential,
        },
        // 2000 g → 4.5 lb → 5 billable lb; 12×8×4 in = 384 in³ → 3 dim lb.
        parcels: vec![LiveParcel {
            weight_g: 2000,
            length_mm: 300,
            width_mm: 200,
            height_mm: 100,
        }],
    }
}

fn config(fake: &FakeCarrierServer, tweak: impl Fn(&mut CarrierConfig)) -> CarriersConfig {
    let mut c = fake.config();
    for carrier in [c.fedex.as_mut(), c.ups.as_mut()].into_iter().flatten() {
        tweak(carrier);
    }
    c
}

fn uncached(fake: &FakeCarrierServer, tweak: impl Fn(&mut CarrierConfig)) -> CarrierClients {
    let mut c = config(fake, tweak);
    c.cache_ttl_secs = 0;
    CarrierClients::new(&c).unwrap()
}

const BUDGET: Duration = Duration::from_secs(5);

fn outcome<'a>(all: &'a [(String, LiveOutcome)], carrier: &str) -> &'a LiveOutcome {
    &all.iter().find(|(c, _)| c == carrier).unwrap().1
}

fn quote<'a>(quotes: &'a [LiveQuote], code: &str) -> &'a LiveQuote {
    quotes
        .iter()
        .find(|q| q.service_code == code)
        .unwrap_or_else(|| panic!("no {code} in {quotes:?}"))
}

fn both_fall_back(all: &[(String, LiveOutcome)], reason: &FallbackReason) {
    assert_eq!(all.len(), 2, "{all:?}");
    for (carrier, o) in all {
        assert_eq!(o, &LiveOutcome::Fallback(reason.clone()), "{carrier}");
    }
}

#[tokio::test]
async fn happy_path_both_carriers() {
    let fake = FakeCarrierServer::start().await.unwrap();
    let clients = CarrierClients::new(&fake.config()).unwrap();
    let all = clients.rates(&request("US", false), BUDGET).await;
    assert_eq!(all[0].0, "FedEx");
    assert_eq!(all[1].0, "UPS");

    let LiveOutcome::Answered(fedex) = outcome(&all, FEDEX) else {
        panic!("{all:?}")
    };
    let codes: Vec<_> = fedex.iter().map(|q| q.service_code.as_str()).collect();
    assert_eq!(
        codes,
        [
            "FEDEX_GROUND",
            "FEDEX_EXPRESS_SAVER",
            "FEDEX_2_DAY",
            "STANDARD_OVERNIGHT",
            "PRIORITY_OVERNIGHT"
        ]
    );
    // Account rate (90 % of list 9.50 + 0.85 × 5 = 13.75) preferred over LIST.
    let ground = quote(fedex, "FEDEX_GROUND");
    assert_eq!(ground.carrier, "FedEx");
    assert_eq!(ground.charge, dec("12.38"));
    assert_eq!(ground.transit_days, Some(5));
    let two_day = quote(fedex, "FEDEX_2_DAY");
    assert_eq!(two_day.charge, dec("36.90"));
    assert_eq!(two_day.transit_days, Some(2));
    assert_eq!(quote(fedex, "PRIORITY_OVERNIGHT").transit_days, Some(1));

    let LiveOutcome::Answered(ups) = outcome(&all, UPS) else {
        panic!("{all:?}")
    };
    let codes: Vec<_> = ups.iter().map(|q| q.service_code.as_str()).collect();
    assert_eq!(codes, ["03", "12", "02", "01"]);
    // Negotiated (90 % of 9.75 + 0.80 × 5 = 13.75) preferred over TotalCharges.
    let ground = quote(ups, "03");
    assert_eq!(ground.carrier, "UPS");
    assert_eq!(ground.charge, dec("12.38"));
    assert_eq!(ground.transit_days, None, "Ground is not guaranteed");
    let second_day = quote(ups, "02");
    assert_eq!(second_day.charge, dec("36.23"));
    assert_eq!(second_day.transit_days, Some(2));

    let calls = fake.calls();
    assert_eq!((calls.fedex_token, calls.fedex_rate), (1, 1));
    assert_eq!((calls.ups_token, calls.ups_rate), (1, 1));
    fake.shutdown().await;
}

#[tokio::test]
async fn residential_and_international_services() {
    let fake = FakeCarrierServer::start().await.unwrap();
    let clients = CarrierClients::new(&fake.config()).unwrap();

    let all = clients.rates(&request("US", true), BUDGET).await;
    let fedex = outcome(&all, FEDEX).quotes().unwrap();
    assert!(fedex.iter().all(|q| q.service_code != "FEDEX_GROUND"));
    // (13.75 + 4.50 residential) × 0.9 = 16.425 → 16.43
    assert_eq!(quote(fedex, "GROUND_HOME_DELIVERY").charge, dec("16.43"));
    let ups = outcome(&all, UPS).quotes().unwrap();
    assert_eq!(quote(ups, "03").charge, dec("16.43"));

    let all = clients.rates(&request("CA", false), BUDGET).await;
    let fedex = outcome(&all, FEDEX).quotes().unwrap();
    let codes: Vec<_> = fedex.iter().map(|q| q.service_code.as_str()).collect();
    assert_eq!(codes, ["INTERNATIONAL_ECONOMY", "INTERNATIONAL_PRIORITY"]);
    // 90 % of 60 + 6.50 × 5 = 92.50
    assert_eq!(quote(fedex, "INTERNATIONAL_ECONOMY").charge, dec("83.25"));
    let ups = outcome(&all, UPS).quotes().unwrap();
    let codes: Vec<_> = ups.iter().map(|q| q.service_code.as_str()).collect();
    assert_eq!(codes, ["08", "65"]);
    assert_eq!(quote(ups, "65").transit_days, Some(3));
}

#[tokio::test]
async fn token_cached_then_refreshed_once_after_expiry() {
    let fake = FakeCarrierServer::start().await.unwrap();
    let clients = uncached(&fake, |_| {});
    let req = request("US", false);
    for _ in 0..3 {
        let all = clients.rates(&req, BUDGET).await;
        assert!(
            all.iter()
                .all(|(_, o)| matches!(o, LiveOutcome::Answered(_))),
            "{all:?}"
        );
    }
    let calls = fake.calls();
    assert_eq!(
        (calls.fedex_token, calls.ups_token),
        (1, 1),
        "one token each"
    );
    assert_eq!((calls.fedex_rate, calls.ups_rate), (3, 3));

    fake.expire_tokens_now();
    let all = clients.rates(&req, BUDGET).await;
    assert!(
        all.iter()
            .all(|(_, o)| matches!(o, LiveOutcome::Answered(_))),
        "{all:?}"
    );
    let calls = fake.calls();
    assert_eq!(
        (calls.fedex_token, calls.ups_token),
        (2, 2),
        "one refresh each"
    );
    assert_eq!(
        (calls.fedex_rate, calls.ups_rate),
        (5, 5),
        "401 then one retry"
    );

    // And the refreshed token is cached again.
    clients.rates(&req, BUDGET).await;
    assert_eq!(fake.calls().token_calls(), 4);
}

#[tokio::test]
async fn token_refetched_before_its_stated_expiry() {
    let fake = FakeCarrierServer::start().await.unwrap();
    fake.set_token_ttl_secs(1);
    let clients = uncached(&fake, |_| {});
    let req = request("US", false);
    clients.rates(&req, BUDGET).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let all = clients.rates(&req, BUDGET).await;
    assert!(
        all.iter()
            .all(|(_, o)| matches!(o, LiveOutcome::Answered(_))),
        "{all:?}"
    );
    let calls = fake.calls();
    assert_eq!(
        calls.token_calls(),
        4,
        "refetched without waiting for a 401"
    );
    assert_eq!(calls.rate_calls(), 4, "no 401 retries");
}

#[tokio::test]
async fn concurrent_callers_share_one_token_fetch() {
    let fake = FakeCarrierServer::start().await.unwrap();
    fake.set_latency(Duration::from_millis(100));
    let clients = uncached(&fake, |_| {});
    let reqs: Vec<_> = (0..8u32)
        .map(|i| {
            let mut r = request("US", false);
            r.parcels[0].weight_g += i; // distinct requests
            r
        })
        .collect();
    let all = futures::future::join_all(reqs.iter().map(|r| clients.rates(r, BUDGET))).await;
    assert!(all
        .iter()
        .flatten()
        .all(|(_, o)| matches!(o, LiveOutcome::Answered(_))));
    let calls = fake.calls();
    assert_eq!((calls.fedex_token, calls.ups_token), (1, 1));
    assert_eq!((calls.fedex_rate, calls.ups_rate), (8, 8));
}

#[tokio::test]
async fn latency_over_budget_is_timeout_within_budget() {
    let fake = FakeCarrierServer::start().await.unwrap();
    fake.set_latency(Duration::from_secs(3));
    let clients = CarrierClients::new(&fake.config()).unwrap();
    let budget = Duration::from_millis(300);
    let started = std::time::Instant::now();
    let all = clients.rates(&request("US", false), budget).await;
    let took = started.elapsed();
    both_fall_back(&all, &FallbackReason::Timeout);
    assert!(took >= budget, "{took:?}");
    assert!(took < budget + Duration::from_millis(1500), "{took:?}");
}

#[tokio::test]
async fn carrier_timeout_ms_caps_a_generous_budget() {
    let fake = FakeCarrierServer::start().await.unwrap();
    fake.set_latency(Duration::from_secs(3));
    let clients = CarrierClients::new(&config(&fake, |c| c.timeout_ms = 200)).unwrap();
    let started = std::time::Instant::now();
    let all = clients.rates(&request("US", false), BUDGET).await;
    both_fall_back(&all, &FallbackReason::Timeout);
    assert!(started.elapsed() < Duration::from_millis(1700));
}

#[tokio::test]
async fn server_error_is_http_fallback() {
    let fake = FakeCarrierServer::start().await.unwrap();
    fake.set_fail_status(Some(503));
    let clients = CarrierClients::new(&fake.config()).unwrap();
    let all = clients.rates(&request("US", false), BUDGET).await;
    both_fall_back(&all, &FallbackReason::Http(503));
}

#[tokio::test]
async fn garbage_is_malformed() {
    let fake = FakeCarrierServer::start().await.unwrap();
    fake.set_garbage(true);
    let clients = uncached(&fake, |_| {});
    // Truncated JSON and wrong types (the fake alternates).
    for _ in 0..4 {
        let all = clients.rates(&request("US", false), BUDGET).await;
        for (carrier, o) in &all {
            assert!(
                matches!(o, LiveOutcome::Fallback(FallbackReason::Malformed(_))),
                "{carrier}: {o:?}"
            );
        }
    }
    // Garbage is never cached: once the fake behaves, answers are live.
    fake.set_garbage(false);
    let all = clients.rates(&request("US", false), BUDGET).await;
    assert!(all
        .iter()
        .all(|(_, o)| matches!(o, LiveOutcome::Answered(_))));
}

#[tokio::test]
async fn breaker_opens_short_circuits_then_half_opens() {
    let fake = FakeCarrierServer::start().await.unwrap();
    fake.set_fail_status(Some(500));
    let clients = uncached(&fake, |c| {
        c.breaker_failures = 3;
        c.breaker_open_ms = 300;
    });
    let req = request("US", false);
    for _ in 0..3 {
        both_fall_back(
            &clients.rates(&req, BUDGET).await,
            &FallbackReason::Http(500),
        );
    }
    let before = fake.calls();
    assert_eq!(before.rate_calls(), 6);
    for _ in 0..3 {
        both_fall_back(
            &clients.rates(&req, BUDGET).await,
            &FallbackReason::CircuitOpen,
        );
    }
    assert_eq!(
        fake.calls(),
        before,
        "open circuit does not call the carrier"
    );

    // Half-open probe fails: open again.
    tokio::time::sleep(Duration::from_millis(350)).await;
    both_fall_back(
        &clients.rates(&req, BUDGET).await,
        &FallbackReason::Http(500),
    );
    assert_eq!(fake.calls().rate_calls(), 8, "one probe per carrier");
    both_fall_back(
        &clients.rates(&req, BUDGET).await,
        &FallbackReason::CircuitOpen,
    );

    // Half-open probe succeeds: closed.
    fake.set_fail_status(None);
    tokio::time::sleep(Duration::from_millis(350)).await;
    let all = clients.rates(&req, BUDGET).await;
    assert!(
        all.iter()
            .all(|(_, o)| matches!(o, LiveOutcome::Answered(_))),
        "{all:?}"
    );
    assert!(clients.fedex.as_ref().unwrap().breaker.is_closed());
    assert!(clients.ups.as_ref().unwrap().breaker.is_closed());
}

#[tokio::test]
async fn half_open_admits_a_single_probe() {
    let fake = FakeCarrierServer::start().await.unwrap();
    fake.set_fail_status(Some(502));
    let clients = uncached(&fake, |c| {
        c.breaker_failures = 1;
        c.breaker_open_ms = 100;
    });
    let req = request("US", false);
    clients.rates(&req, BUDGET).await;
    fake.set_fail_status(None);
    fake.set_latency(Duration::from_millis(200));
    tokio::time::sleep(Duration::from_millis(150)).await;
    let before = fake.calls().rate_calls();
    let (a, b) =
        futures::future::join(clients.rates(&req, BUDGET), clients.rates(&req, BUDGET)).await;
    let answered = a
        .iter()
        .chain(b.iter())
        .filter(|(_, o)| matches!(o, LiveOutcome::Answered(_)))
        .count();
    let short = a
        .iter()
        .chain(b.iter())
        .filter(|(_, o)| o == &LiveOutcome::Fallback(FallbackReason::CircuitOpen))
        .count();
    assert_eq!((answered, short), (2, 2), "{a:?} {b:?}");
    assert_eq!(fake.calls().rate_calls() - before, 2);
}

#[tokio::test]
async fn client_errors_do_not_open_the_breaker() {
    let fake = FakeCarrierServer::start().await.unwrap();
    fake.set_fail_status(Some(400));
    let clients = uncached(&fake, |c| c.breaker_failures = 1);
    for _ in 0..3 {
        both_fall_back(
            &clients.rates(&request("US", false), BUDGET).await,
            &FallbackReason::Http(400),
        );
    }
}

#[tokio::test]
async fn cache_hit_is_cached_without_upstream_call() {
    let fake = FakeCarrierServer::start().await.unwrap();
    let clients = CarrierClients::new(&fake.config()).unwrap();
    let req = request("US", false);
    let first = clients.rates(&req, BUDGET).await;
    let second = clients.rates(&req, BUDGET).await;
    for ((c1, o1), (c2, o2)) in first.iter().zip(&second) {
        assert_eq!(c1, c2);
        let (LiveOutcome::Answered(a), LiveOutcome::Cached(b)) = (o1, o2) else {
            panic!("{o1:?} then {o2:?}")
        };
        assert_eq!(a, b);
    }
    assert_eq!(fake.calls().rate_calls(), 2);

    // A different request is a miss.
    let other = clients.rates(&request("US", true), BUDGET).await;
    assert!(other
        .iter()
        .all(|(_, o)| matches!(o, LiveOutcome::Answered(_))));
    assert_eq!(fake.calls().rate_calls(), 4);
}

#[tokio::test]
async fn failures_are_not_cached() {
    let fake = FakeCarrierServer::start().await.unwrap();
    fake.set_fail_status(Some(503));
    let clients = CarrierClients::new(&fake.config()).unwrap();
    let req = request("US", false);
    both_fall_back(
        &clients.rates(&req, BUDGET).await,
        &FallbackReason::Http(503),
    );
    fake.set_fail_status(None);
    let all = clients.rates(&req, BUDGET).await;
    assert!(
        all.iter()
            .all(|(_, o)| matches!(o, LiveOutcome::Answered(_))),
        "{all:?}"
    );
}

#[tokio::test]
async fn concurrent_identical_requests_make_one_upstream_call() {
    let fake = FakeCarrierServer::start().await.unwrap();
    fake.set_latency(Duration::from_millis(200));
    let clients = CarrierClients::new(&fake.config()).unwrap();
    let req = request("US", false);
    let all = futures::future::join_all((0..10).map(|_| clients.rates(&req, BUDGET))).await;
    let calls = fake.calls();
    assert_eq!((calls.fedex_rate, calls.ups_rate), (1, 1));
    for carrier in [FEDEX, UPS] {
        let outcomes: Vec<_> = all.iter().map(|a| outcome(a, carrier)).collect();
        let answered = outcomes
            .iter()
            .filter(|o| matches!(o, LiveOutcome::Answered(_)))
            .count();
        assert_eq!(answered, 1, "{carrier}: {outcomes:?}");
        let first = outcomes[0].quotes().unwrap();
        assert!(outcomes.iter().all(|o| o.quotes() == Some(first)));
    }
}

#[tokio::test]
async fn not_configured() {
    let clients = CarrierClients::new(&CarriersConfig::default()).unwrap();
    assert!(clients.configured().is_empty());
    let all = clients.rates(&request("US", false), BUDGET).await;
    both_fall_back(&all, &FallbackReason::NotConfigured);

    let fake = FakeCarrierServer::start().await.unwrap();
    let mut c = fake.config();
    c.ups = None;
    let clients = CarrierClients::new(&c).unwrap();
    assert_eq!(clients.configured(), ["FedEx"]);
    let all = clients.rates(&request("US", false), BUDGET).await;
    assert!(matches!(outcome(&all, FEDEX), LiveOutcome::Answered(_)));
    assert_eq!(
        outcome(&all, UPS),
        &LiveOutcome::Fallback(FallbackReason::NotConfigured)
    );
}

#[tokio::test]
async fn wrong_secret_is_auth_fallback() {
    let fake = FakeCarrierServer::start().await.unwrap();
    let clients = CarrierClients::new(&config(&fake, |c| c.client_secret = "nope".into())).unwrap();
    let all = clients.rates(&request("US", false), BUDGET).await;
    for (carrier, o) in &all {
        assert!(
            matches!(o, LiveOutcome::Fallback(FallbackReason::Auth(m)) if m.contains("401")),
            "{carrier}: {o:?}"
        );
    }
    assert_eq!(fake.calls().rate_calls(), 0);
}

#[tokio::test]
async fn unreachable_carrier_is_transport_fallback() {
    let fake = FakeCarrierServer::start().await.unwrap();
    let config = fake.config();
    fake.shutdown().await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let clients = CarrierClients::new(&config).unwrap();
    let all = clients.rates(&request("US", false), BUDGET).await;
    for (carrier, o) in &all {
        assert!(
            matches!(o, LiveOutcome::Fallback(FallbackReason::Transport(_))),
            "{carrier}: {o:?}"
        );
    }
}

#[tokio::test]
async fn invalid_request_calls_nobody() {
    let fake = FakeCarrierServer::start().await.unwrap();
    let clients = CarrierClients::new(&fake.config()).unwrap();
    let mut req = request("US", false);
    req.parcels.clear();
    let all = clients.rates(&req, BUDGET).await;
    for (_, o) in &all {
        assert!(matches!(
            o,
            LiveOutcome::Fallback(FallbackReason::InvalidRequest(_))
        ));
    }
    req.parcels.push(LiveParcel {
        weight_g: 0,
        length_mm: 1,
        width_mm: 1,
        height_mm: 1,
    });
    let all = clients.rates(&req, BUDGET).await;
    for (_, o) in &all {
        assert!(matches!(
            o,
            LiveOutcome::Fallback(FallbackReason::InvalidRequest(_))
        ));
    }
    assert_eq!(fake.calls(), fake::FakeCalls::default());
}

#[test]
fn config_parses_with_defaults_and_secret_env() {
    let c: CarriersConfig = serde_json::from_str(
        r#"{"fedex": {"base_url": "https://apis-sandbox.fedex.com/", "client_id": "id",
             "client_secret": "s", "account_number": "123"}}"#,
    )
    .unwrap();
    assert_eq!(c.cache_ttl_secs, 300);
    assert_eq!(c.cache_capacity, 10_000);
    assert!(c.ups.is_none());
    let f = c.fedex.as_ref().unwrap();
    assert_eq!(
        (f.timeout_ms, f.breaker_failures, f.breaker_open_ms),
        (2000, 5, 30_000)
    );
    assert!(!format!("{f:?}").contains("\"s\""), "secret redacted");
    let clients = CarrierClients::new(&c).unwrap();
    assert_eq!(
        clients
            .fedex
            .as_ref()
            .unwrap()
            .settings
            .url(fedex::RATE_PATH),
        "https://apis-sandbox.fedex.com/rate/v1/rates/quotes"
    );

    // client_secret_env
    let var = "STOCKROUTE_CARRIERS_TEST_SECRET";
    std::env::set_var(var, FAKE_CLIENT_SECRET);
    let mut c2 = c.clone();
    let f2 = c2.fedex.as_mut().unwrap();
    f2.client_secret.clear();
    f2.client_secret_env = Some(var.into());
    let clients = CarrierClients::new(&c2).unwrap();
    assert_eq!(
        clients.fedex.as_ref().unwrap().settings.client_secret,
        FAKE_CLIENT_SECRET
    );

    // Both, neither, unset variable, unknown key, bad URL: refused.
    let mut both = c2.clone();
    both.fedex.as_mut().unwrap().client_secret = "x".into();
    assert!(CarrierClients::new(&both).is_err());
    let mut unset = c2.clone();
    unset.fedex.as_mut().unwrap().client_secret_env = Some("STOCKROUTE_NO_SUCH_VAR_X".into());
    assert!(CarrierClients::new(&unset).is_err());
    let mut neither = c.clone();
    neither.fedex.as_mut().unwrap().client_secret.clear();
    assert!(CarrierClients::new(&neither).is_err());
    let mut bad_url = c.clone();
    bad_url.fedex.as_mut().unwrap().base_url = "ftp://x".into();
    assert!(CarrierClients::new(&bad_url).is_err());
    assert!(serde_json::from_str::<CarriersConfig>(r#"{"fedx": null}"#).is_err());
}

#[test]
fn unit_conversions() {
    assert_eq!(lb_decimal(2000), dec("4.5"));
    assert_eq!(lb_decimal(1), dec("0.1"));
    assert_eq!(lb_decimal(453), dec("1.0"));
    assert!(lb_decimal(u32::MAX).is_sign_positive());
    assert_eq!(inches(300), 12);
    assert_eq!(inches(254), 10);
    assert_eq!(inches(0), 1);
    assert!(inches(u32::MAX) > 0);
    assert_eq!(fedex::transit_word("ONE_DAY"), Some(1));
    assert_eq!(fedex::transit_word("TWO_DAYS"), Some(2));
    assert_eq!(fedex::transit_word("twenty_days"), Some(20));
    assert_eq!(fedex::transit_word("UNKNOWN"), None);
    assert_eq!(fedex::transit_enum(1), "ONE_DAY");
    assert_eq!(fedex::transit_enum(7), "SEVEN_DAYS");
    assert_eq!(fedex::transit_enum(0), "UNKNOWN");
}

#[test]
fn fedex_parsing_is_strict_about_charges_lenient_elsewhere() {
    let ok = br#"{"output":{"rateReplyDetails":[
        {"serviceType":"FEDEX_GROUND","ratedShipmentDetails":[
            {"rateType":"LIST","totalNetCharge":20.5,"currency":"USD"},
            {"rateType":"ACCOUNT","totalNetCharge":"18.25","currency":"USD"}],
         "commit":{"transitDays":{"minimumTransitTime":"THREE_DAYS"}},"extra":[1,2]},
        {"serviceType":"FEDEX_2_DAY","ratedShipmentDetails":[{"totalNetCharge":0}]}]}}"#;
    let q = fedex::parse_response(ok).unwrap();
    assert_eq!(q[0].charge, dec("18.25"));
    assert_eq!(q[0].transit_days, Some(3));
    assert_eq!(q[1].charge, Decimal::ZERO);
    assert_eq!(q[1].transit_days, None);

    for bad in [
        &br#"{"output":{"rateReplyDetails":[{"serviceType":"X","ratedShipmentDetails":[{"totalNetCharge":-1}]}]}}"#[..],
        br#"{"output":{"rateReplyDetails":[{"serviceType":"X","ratedShipmentDetails":[{"totalNetCharge":null}]}]}}"#,
        br#"{"output":{"rateReplyDetails":[{"serviceType":"X","ratedShipmentDetails":[{}]}]}}"#,
        br#"{"output":{"rateReplyDetails":[{"serviceType":"X","ratedShipmentDetails":[]}]}}"#,
        br#"{"output":{"rateReplyDetails":[{"serviceType":"X","ratedShipmentDetails":[{"totalNetCharge":5,"currency":"EUR"}]}]}}"#,
        br#"{"output":{"rateReplyDetails":{"serviceType":"X"}}}"#,
        br#"{"errors":[{"code":"X"}]}"#,
        b"",
        b"\xff\xfe",
        br#"[1e999]"#,
    ] {
        assert!(
            matches!(fedex::parse_response(bad), Err(FallbackReason::Malformed(_))),
            "{}",
            String::from_utf8_lossy(bad)
        );
    }
}

#[test]
fn ups_parsing_handles_single_objects_and_prefers_negotiated() {
    let single = br#"{"RateResponse":{"RatedShipment":{
        "Service":{"Code":"03"},
        "TotalCharges":{"CurrencyCode":"USD","MonetaryValue":"15.10"},
        "NegotiatedRateCharges":{"TotalCharge":{"CurrencyCode":"USD","MonetaryValue":"12.00"}},
        "TimeInTransit":{"ServiceSummary":{"EstimatedArrival":{"BusinessDaysInTransit":"4"}}}}}}"#;
    let q = ups::parse_response(single).unwrap();
    assert_eq!(q.len(), 1);
    assert_eq!(
        (q[0].service_code.as_str(), q[0].charge),
        ("03", dec("12.00"))
    );
    assert_eq!(q[0].transit_days, Some(4));

    let list_only = br#"{"RateResponse":{"RatedShipment":[{"Service":{"Code":"01"},
        "TotalCharges":{"MonetaryValue":"40"},"GuaranteedDelivery":{"BusinessDaysInTransit":"1"}}]}}"#;
    let q = ups::parse_response(list_only).unwrap();
    assert_eq!((q[0].charge, q[0].transit_days), (dec("40"), Some(1)));

    for bad in [
        &br#"{"RateResponse":{"RatedShipment":[{"Service":{"Code":"01"},"TotalCharges":{"MonetaryValue":"-4"}}]}}"#[..],
        br#"{"RateResponse":{"RatedShipment":[{"Service":{"Code":"01"},"TotalCharges":{"MonetaryValue":"abc"}}]}}"#,
        br#"{"RateResponse":{"RatedShipment":[{"Service":{"Code":"01"}}]}}"#,
        br#"{"RateResponse":{"RatedShipment":[{"Service":{"Code":1},"TotalCharges":{"MonetaryValue":"1"}}]}}"#,
        br#"{"RateResponse":"nope"}"#,
        br#"{}"#,
    ] {
        assert!(
            matches!(ups::parse_response(bad), Err(FallbackReason::Malformed(_))),
            "{}",
            String::from_utf8_lossy(bad)
        );
    }
}

#[test]
fn request_shapes_match_the_published_apis() {
    let settings = Settings {
        base_url: "http://x".into(),
        client_id: "id".into(),
        client_secret: "s".into(),
        account_number: "123".into(),
    };
    let req = request("US", true);
    let f = serde_json::to_value(fedex::request_body(&settings, &req)).unwrap();
    assert_eq!(f["accountNumber"]["value"], "123");
    let s = &f["requestedShipment"];
    assert_eq!(s["shipper"]["address"]["postalCode"], "10001");
    assert_eq!(s["recipient"]["address"]["countryCode"], "US");
    assert_eq!(s["recipient"]["address"]["residential"], true);
    assert_eq!(s["rateRequestType"], serde_json::json!(["ACCOUNT", "LIST"]));
    let item = &s["requestedPackageLineItems"][0];
    assert_eq!(
        item["weight"],
        serde_json::json!({"units": "LB", "value": 4.5})
    );
    assert_eq!(
        item["dimensions"],
        serde_json::json!({"length": 12, "width": 8, "height": 4, "units": "IN"})
    );

    let u = serde_json::to_value(ups::request_body(&settings, &req)).unwrap();
    let s = &u["RateRequest"]["Shipment"];
    assert_eq!(u["RateRequest"]["Request"]["RequestOption"], "Shop");
    assert_eq!(s["Shipper"]["ShipperNumber"], "123");
    assert_eq!(s["ShipTo"]["Address"]["ResidentialAddressIndicator"], "");
    assert!(s["ShipFrom"]["Address"]
        .get("ResidentialAddressIndicator")
        .is_none());
    let p = &s["Package"][0];
    assert_eq!(p["PackagingType"]["Code"], "02");
    assert_eq!(p["Dimensions"]["Length"], "12");
    assert_eq!(p["Dimensions"]["UnitOfMeasurement"]["Code"], "IN");
    assert_eq!(p["PackageWeight"]["Weight"], "4.5");
    assert_eq!(p["PackageWeight"]["UnitOfMeasurement"]["Code"], "LBS");
}

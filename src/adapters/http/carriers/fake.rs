//! A fake FedEx and UPS on loopback, for tests and the demo world.
//!
//! One axum server answers both carriers' routes:
//! - FedEx: `POST /oauth/token` (form `grant_type=client_credentials&client_id=…&client_secret=…`)
//!   and `POST /rate/v1/rates/quotes` (Bearer);
//! - UPS: `POST /security/v1/oauth/token` (HTTP Basic `client_id:client_secret`, form
//!   `grant_type=client_credentials`) and `POST /api/rating/v2409/Shop` (Bearer).
//!
//! Credentials must be [`FAKE_CLIENT_ID`] / [`FAKE_CLIENT_SECRET`] (anything else is a 401), so a
//! wrong secret can be tested. Requests are parsed in the carriers' shapes; a request that does
//! not parse, or lacks an account number, postal codes or packages, is a 400 in the carrier's
//! error shape.
//!
//! ## Pricing (deterministic, distance-free)
//! Per package, billable pounds = max(actual weight rounded up to a whole lb, L×W×H in³ / 139
//! rounded up); list charge per service = Σ packages (base + per-lb × billable lb), plus
//! $4.50 per package to a residential address. The account (FedEx `ACCOUNT`) / negotiated (UPS
//! `NegotiatedRateCharges`) charge is 90 % of list, rounded half away from zero to cents; FedEx
//! also returns the `LIST` rate, UPS the list `TotalCharges`. Origin country ≠ destination
//! country gives the international services only.
//!
//! | carrier | code | base | per lb | transit days |
//! |---|---|---|---|---|
//! | FedEx | FEDEX_GROUND (commercial) / GROUND_HOME_DELIVERY (residential) | 9.50 | 0.85 | 5 |
//! | FedEx | FEDEX_EXPRESS_SAVER | 22.00 | 2.10 | 3 |
//! | FedEx | FEDEX_2_DAY | 28.00 | 2.60 | 2 |
//! | FedEx | STANDARD_OVERNIGHT | 45.00 | 4.10 | 1 |
//! | FedEx | PRIORITY_OVERNIGHT | 55.00 | 4.90 | 1 |
//! | FedEx | INTERNATIONAL_ECONOMY | 60.00 | 6.50 | 5 |
//! | FedEx | INTERNATIONAL_PRIORITY | 75.00 | 8.00 | 3 |
//! | UPS | 03 Ground | 9.75 | 0.80 | none (not guaranteed) |
//! | UPS | 12 3 Day Select | 21.50 | 2.05 | 3 |
//! | UPS | 02 2nd Day Air | 27.50 | 2.55 | 2 |
//! | UPS | 01 Next Day Air | 52.00 | 4.80 | 1 |
//! | UPS | 08 Worldwide Expedited | 62.00 | 6.20 | 5 |
//! | UPS | 65 Worldwide Saver | 72.00 | 7.70 | 3 |
//!
//! ## Injected behaviour (applies to both carriers, changeable at runtime)
//! `set_latency` delays every token and rate answer; `set_fail_status(Some(s))` answers every
//! rate call with status `s`; `set_garbage(true)` answers rate calls alternately with truncated
//! JSON and with well-formed JSON of the wrong types; `expire_tokens_now` invalidates every token
//! issued so far (rate calls with them get 401); `set_token_ttl_secs` sets `expires_in` (and the
//! real lifetime) of tokens issued from then on. [`FakeCarrierServer::calls`] counts calls.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use parking_lot::Mutex;
use rust_decimal::{Decimal, RoundingStrategy};
use serde_json::json;
use tokio::time::Instant;

use super::{fedex, ups, CarrierConfig, CarriersConfig};
use crate::adapters::http::loopback::ServerTask;

/// The only client id the fake accepts.
pub const FAKE_CLIENT_ID: &str = "fake-client-id";
/// The only client secret the fake accepts.
pub const FAKE_CLIENT_SECRET: &str = "fake-client-secret";
/// Account / shipper number used by [`FakeCarrierServer::config`].
pub const FAKE_ACCOUNT: &str = "740561073";

/// Calls received, by endpoint (every call counts, including refused ones).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FakeCalls {
    /// `POST /oauth/token`.
    pub fedex_token: u64,
    /// `POST /rate/v1/rates/quotes`.
    pub fedex_rate: u64,
    /// `POST /security/v1/oauth/token`.
    pub ups_token: u64,
    /// `POST /api/rating/v2409/Shop`.
    pub ups_rate: u64,
}

impl FakeCalls {
    /// Token calls to both carriers.
    pub fn token_calls(&self) -> u64 {
        self.fedex_token + self.ups_token
    }
    /// Rate calls to both carriers.
    pub fn rate_calls(&self) -> u64 {
        self.fedex_rate + self.ups_rate
    }
}

struct Behaviour {
    latency: Duration,
    fail_status: Option<u16>,
    garbage: bool,
    token_ttl_secs: u64,
}

#[derive(Default)]
struct Counters {
    fedex_token: AtomicU64,
    fedex_rate: AtomicU64,
    ups_token: AtomicU64,
    ups_rate: AtomicU64,
}

struct Shared {
    behaviour: Mutex<Behaviour>,
    /// Issued token → when it stops being accepted.
    tokens: Mutex<HashMap<String, Instant>>,
    next_token: AtomicU64,
    garbage_n: AtomicU64,
    calls: Counters,
}

/// A fake FedEx + UPS; stops when dropped or on [`FakeCarrierServer::shutdown`].
pub struct FakeCarrierServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    server: ServerTask,
}

impl std::fmt::Debug for FakeCarrierServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeCarrierServer")
            .field("addr", &self.addr)
            .finish()
    }
}

impl FakeCarrierServer {
    /// Binds 127.0.0.1 on a free port and starts serving.
    pub async fn start() -> std::io::Result<FakeCarrierServer> {
        let shared = Arc::new(Shared {
            behaviour: Mutex::new(Behaviour {
                latency: Duration::ZERO,
                fail_status: None,
                garbage: false,
                token_ttl_secs: 3600,
            }),
            tokens: Mutex::new(HashMap::new()),
            next_token: AtomicU64::new(1),
            garbage_n: AtomicU64::new(0),
            calls: Counters::default(),
        });
        let router = Router::new()
            .route(fedex::TOKEN_PATH, post(fedex_token))
            .route(fedex::RATE_PATH, post(fedex_rate))
            .route(ups::TOKEN_PATH, post(ups_token))
            .route(ups::RATE_PATH, post(ups_rate))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        Ok(FakeCarrierServer {
            addr,
            shared,
            server: ServerTask::spawn(listener, router, "fake carriers"),
        })
    }

    /// `http://127.0.0.1:PORT`, the base URL of both carriers.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Base URL for the FedEx section (same server).
    pub fn fedex_base_url(&self) -> String {
        self.base_url()
    }

    /// Base URL for the UPS section (same server).
    pub fn ups_base_url(&self) -> String {
        self.base_url()
    }

    /// A carrier section pointing at this fake with its credentials and the default knobs.
    pub fn carrier_config(&self) -> CarrierConfig {
        CarrierConfig::new(
            &self.base_url(),
            FAKE_CLIENT_ID,
            FAKE_CLIENT_SECRET,
            FAKE_ACCOUNT,
        )
    }

    /// Both carriers pointing at this fake, default cache settings.
    pub fn config(&self) -> CarriersConfig {
        CarriersConfig {
            fedex: Some(self.carrier_config()),
            ups: Some(self.carrier_config()),
            ..CarriersConfig::default()
        }
    }

    /// Delay before every answer (token and rate).
    pub fn set_latency(&self, latency: Duration) {
        self.shared.behaviour.lock().latency = latency;
    }

    /// Answer every rate call with this status (`None`: behave).
    pub fn set_fail_status(&self, status: Option<u16>) {
        self.shared.behaviour.lock().fail_status = status;
    }

    /// Answer rate calls with invalid JSON / wrong types, alternately.
    pub fn set_garbage(&self, garbage: bool) {
        self.shared.behaviour.lock().garbage = garbage;
    }

    /// Every token issued so far becomes invalid (rate calls with it get 401).
    pub fn expire_tokens_now(&self) {
        self.shared.tokens.lock().clear();
    }

    /// Lifetime (and `expires_in`) of tokens issued from now on. Default 3600.
    pub fn set_token_ttl_secs(&self, secs: u64) {
        self.shared.behaviour.lock().token_ttl_secs = secs;
    }

    /// Calls received so far.
    pub fn calls(&self) -> FakeCalls {
        let c = &self.shared.calls;
        FakeCalls {
            fedex_token: c.fedex_token.load(Ordering::SeqCst),
            fedex_rate: c.fedex_rate.load(Ordering::SeqCst),
            ups_token: c.ups_token.load(Ordering::SeqCst),
            ups_rate: c.ups_rate.load(Ordering::SeqCst),
        }
    }

    /// Stops accepting connections and waits (up to a second) for the server task.
    pub async fn shutdown(mut self) {
        self.server.stop().await;
    }
}

// ---- shared handler plumbing ----

fn json_response(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn fedex_error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = json!({
        "transactionId": "fake",
        "errors": [{ "code": code, "message": message }]
    });
    json_response(status, body.to_string())
}

fn ups_error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = json!({ "response": { "errors": [{ "code": code, "message": message }] } });
    json_response(status, body.to_string())
}

/// How one fake carrier says no, in its own error format.
struct Refusals {
    error: fn(StatusCode, &str, &str) -> Response,
    down: (&'static str, &'static str),
    unauthorized: (&'static str, &'static str),
    /// Garbage answers: wrong types, then truncated JSON.
    garbage: [&'static str; 2],
}

const FEDEX_REFUSALS: Refusals = Refusals {
    error: fedex_error,
    down: ("SERVICE.UNAVAILABLE.ERROR", "injected failure"),
    unauthorized: (
        "NOT.AUTHORIZED.ERROR",
        "Access token expired. Please modify your request and try again.",
    ),
    garbage: [
        r#"{"transactionId":"fake","output":{"rateReplyDetails":[{"serviceType":"FEDEX_GROUND","ratedShipmentDetails":[{"rateType":"ACCOUNT","totalNetCharge":"lots","currency":"USD"}]}]}}"#,
        r#"{"transactionId":"fake","output":{"rateReplyDetails":[{"serviceType":"FEDEX_GR"#,
    ],
};

const UPS_REFUSALS: Refusals = Refusals {
    error: ups_error,
    down: ("10500", "injected failure"),
    unauthorized: ("250002", "Invalid Authentication Information."),
    garbage: [
        r#"{"RateResponse":{"RatedShipment":[{"Service":{"Code":3},"TotalCharges":{"MonetaryValue":true}}]}}"#,
        r#"{"RateResponse":{"RatedShipment":[{"Service":{"Co"#,
    ],
};

impl Shared {
    /// The injected behaviour of a rate call, before the request is read:
    /// latency, then a failure status, an expired token or garbage.
    async fn injected_answer(&self, headers: &HeaderMap, r: &Refusals) -> Option<Response> {
        self.delay().await;
        let (fail, garbage) = self.injected();
        if let Some(code) = fail {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            return Some((r.error)(status, r.down.0, r.down.1));
        }
        if !self.bearer_ok(headers) {
            return Some((r.error)(
                StatusCode::UNAUTHORIZED,
                r.unauthorized.0,
                r.unauthorized.1,
            ));
        }
        if garbage {
            let body = if self.garbage_wrong_types() {
                r.garbage[0]
            } else {
                r.garbage[1]
            };
            return Some(json_response(StatusCode::OK, body.to_string()));
        }
        None
    }

    async fn delay(&self) {
        let latency = self.behaviour.lock().latency;
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
    }

    fn issue_token(&self, prefix: &str) -> (String, u64) {
        let ttl = self.behaviour.lock().token_ttl_secs;
        let n = self.next_token.fetch_add(1, Ordering::SeqCst);
        let token = format!("{prefix}-token-{n}");
        let until = Instant::now()
            .checked_add(Duration::from_secs(ttl))
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(86_400 * 365));
        self.tokens.lock().insert(token.clone(), until);
        (token, ttl)
    }

    fn bearer_ok(&self, headers: &HeaderMap) -> bool {
        let Some(token) = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
        else {
            return false;
        };
        self.tokens
            .lock()
            .get(token.trim())
            .is_some_and(|until| Instant::now() < *until)
    }

    /// Status to fail with, or garbage to send, before looking at the request.
    fn injected(&self) -> (Option<u16>, bool) {
        let b = self.behaviour.lock();
        (b.fail_status, b.garbage)
    }

    fn garbage_wrong_types(&self) -> bool {
        self.garbage_n.fetch_add(1, Ordering::SeqCst) % 2 == 1
    }
}

// ---- FedEx ----

async fn fedex_token(State(s): State<Arc<Shared>>, body: Bytes) -> Response {
    s.calls.fedex_token.fetch_add(1, Ordering::SeqCst);
    s.delay().await;
    let form = form_decode(&body);
    let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    if get("grant_type") != Some("client_credentials") {
        return fedex_error(
            StatusCode::BAD_REQUEST,
            "BAD.REQUEST.ERROR",
            "grant_type must be client_credentials",
        );
    }
    if get("client_id") != Some(FAKE_CLIENT_ID) || get("client_secret") != Some(FAKE_CLIENT_SECRET)
    {
        return fedex_error(
            StatusCode::UNAUTHORIZED,
            "NOT.AUTHORIZED.ERROR",
            "The given client credentials were not valid. Please modify your request and try again.",
        );
    }
    let (token, ttl) = s.issue_token("fedex");
    let body = json!({
        "access_token": token,
        "token_type": "bearer",
        "expires_in": ttl,
        "scope": "CXS-TP"
    });
    json_response(StatusCode::OK, body.to_string())
}

async fn fedex_rate(State(s): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    s.calls.fedex_rate.fetch_add(1, Ordering::SeqCst);
    if let Some(early) = s.injected_answer(&headers, &FEDEX_REFUSALS).await {
        return early;
    }
    let req: fedex::RateRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return fedex_error(
                StatusCode::BAD_REQUEST,
                "INVALID.INPUT.EXCEPTION",
                &e.to_string(),
            )
        }
    };
    let shipment = &req.requested_shipment;
    if req.account_number.value.trim().is_empty()
        || shipment.shipper.address.postal_code.is_empty()
        || shipment.recipient.address.postal_code.is_empty()
        || shipment.requested_package_line_items.is_empty()
    {
        return fedex_error(
            StatusCode::BAD_REQUEST,
            "INVALID.INPUT.EXCEPTION",
            "accountNumber, postal codes and requestedPackageLineItems are required",
        );
    }
    let mut packages = Vec::new();
    for item in &shipment.requested_package_line_items {
        let value: Option<Decimal> = item.weight.value.to_string().parse().ok();
        let lb = match item.weight.units.as_str() {
            "LB" => value,
            "KG" => value.and_then(|v| v.checked_mul(Decimal::new(220_462, 5))),
            _ => None,
        };
        let dims = item.dimensions.as_ref().map(|d| {
            let to_in = if d.units == "CM" {
                Decimal::new(3937, 4)
            } else {
                Decimal::ONE
            };
            [d.length, d.width, d.height].map(|x| Decimal::from(x) * to_in)
        });
        match lb {
            Some(lb) if lb > Decimal::ZERO => packages.push((lb, dims)),
            _ => {
                return fedex_error(
                    StatusCode::BAD_REQUEST,
                    "WEIGHT.VALUE.INVALID",
                    "weight must be a positive LB or KG value",
                )
            }
        }
    }
    let intl = !shipment
        .shipper
        .address
        .country_code
        .eq_ignore_ascii_case(&shipment.recipient.address.country_code);
    let residential = shipment.recipient.address.residential.unwrap_or(false);
    let mut details = Vec::new();
    for svc in FEDEX_SERVICES {
        if svc.intl != intl || svc.residential.is_some_and(|r| r != residential) {
            continue;
        }
        let Some(list) = list_charge(svc, &packages, residential) else {
            return fedex_error(StatusCode::BAD_REQUEST, "PACKAGE.TOO.LARGE", "overflow");
        };
        let account = discounted(list);
        let transit = fedex::transit_enum(svc.days.unwrap_or(0));
        details.push(json!({
            "serviceType": svc.code,
            "serviceName": svc.name,
            "packagingType": "YOUR_PACKAGING",
            "ratedShipmentDetails": [
                {
                    "rateType": "ACCOUNT",
                    "ratedWeightMethod": "ACTUAL",
                    "totalBaseCharge": number(account),
                    "totalNetCharge": number(account),
                    "totalNetFedExCharge": number(account),
                    "currency": "USD"
                },
                {
                    "rateType": "LIST",
                    "ratedWeightMethod": "ACTUAL",
                    "totalBaseCharge": number(list),
                    "totalNetCharge": number(list),
                    "totalNetFedExCharge": number(list),
                    "currency": "USD"
                }
            ],
            "operationalDetail": { "transitTime": transit, "ineligibleForMoneyBackGuarantee": false },
            "commit": { "dateDetail": { "dayOfWeek": "TUE", "dayFormat": "2025-01-07T23:59:00" } },
            "signatureOptionType": "SERVICE_DEFAULT"
        }));
    }
    let body = json!({
        "transactionId": "fake",
        "output": { "rateReplyDetails": details, "quoteDate": "2025-01-03", "encoded": false }
    });
    json_response(StatusCode::OK, body.to_string())
}

// ---- UPS ----

async fn ups_token(State(s): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    s.calls.ups_token.fetch_add(1, Ordering::SeqCst);
    s.delay().await;
    let form = form_decode(&body);
    if !form
        .iter()
        .any(|(k, v)| k == "grant_type" && v == "client_credentials")
    {
        return ups_error(
            StatusCode::BAD_REQUEST,
            "10400",
            "Invalid/Missing grant_type",
        );
    }
    let creds = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| base64_decode(b.trim()))
        .and_then(|raw| String::from_utf8(raw).ok());
    let expected = format!("{FAKE_CLIENT_ID}:{FAKE_CLIENT_SECRET}");
    if creds.as_deref() != Some(expected.as_str()) {
        return ups_error(StatusCode::UNAUTHORIZED, "10401", "ClientId is Invalid");
    }
    let (token, ttl) = s.issue_token("ups");
    let issued_at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    let body = json!({
        "token_type": "Bearer",
        "issued_at": issued_at.to_string(),
        "client_id": FAKE_CLIENT_ID,
        "access_token": token,
        "expires_in": ttl.to_string(),
        "refresh_count": "0",
        "status": "approved"
    });
    json_response(StatusCode::OK, body.to_string())
}

async fn ups_rate(State(s): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    s.calls.ups_rate.fetch_add(1, Ordering::SeqCst);
    if let Some(early) = s.injected_answer(&headers, &UPS_REFUSALS).await {
        return early;
    }
    let envelope: ups::Envelope = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return ups_error(StatusCode::BAD_REQUEST, "111100", &e.to_string()),
    };
    let shipment = &envelope.rate_request.shipment;
    let shipper_number = shipment
        .shipper
        .shipper_number
        .as_deref()
        .unwrap_or("")
        .trim()
        .to_string();
    if shipment.shipper.address.postal_code.is_empty()
        || shipment.ship_to.address.postal_code.is_empty()
        || shipment.package.as_slice().is_empty()
    {
        return ups_error(
            StatusCode::BAD_REQUEST,
            "111210",
            "postal codes and at least one Package are required",
        );
    }
    let mut packages = Vec::new();
    for p in shipment.package.as_slice() {
        let w: Option<Decimal> = p.package_weight.weight.trim().parse().ok();
        let lb = match p.package_weight.unit_of_measurement.code.as_str() {
            "LBS" => w,
            "KGS" => w.and_then(|w| w.checked_mul(Decimal::new(220_462, 5))),
            _ => None,
        };
        let dims = p.dimensions.as_ref().and_then(|d| {
            let to_in = if d.unit_of_measurement.code == "CM" {
                Decimal::new(3937, 4)
            } else {
                Decimal::ONE
            };
            let parse = |s: &str| s.trim().parse::<Decimal>().ok().map(|x| x * to_in);
            Some([parse(&d.length)?, parse(&d.width)?, parse(&d.height)?])
        });
        match lb {
            Some(lb) if lb > Decimal::ZERO => packages.push((lb, dims)),
            _ => {
                return ups_error(
                    StatusCode::BAD_REQUEST,
                    "111050",
                    "Package weight must be a positive LBS or KGS value",
                )
            }
        }
    }
    let intl = !shipment
        .shipper
        .address
        .country_code
        .eq_ignore_ascii_case(&shipment.ship_to.address.country_code);
    let residential = shipment
        .ship_to
        .address
        .residential_address_indicator
        .is_some();
    let negotiated = !shipper_number.is_empty()
        && shipment
            .shipment_rating_options
            .as_ref()
            .is_some_and(|o| o.negotiated_rates_indicator.is_some());
    let mut rated = Vec::new();
    for svc in UPS_SERVICES {
        if svc.intl != intl {
            continue;
        }
        let Some(list) = list_charge(svc, &packages, residential) else {
            return ups_error(StatusCode::BAD_REQUEST, "111057", "overflow");
        };
        let money =
            |d: Decimal| json!({ "CurrencyCode": "USD", "MonetaryValue": format!("{d:.2}") });
        let mut r = json!({
            "Service": { "Code": svc.code, "Description": svc.name },
            "RatedShipmentAlert": [{ "Code": "110971", "Description": "Your invoice may vary from the displayed reference rates" }],
            "BillingWeight": { "UnitOfMeasurement": { "Code": "LBS", "Description": "Pounds" }, "Weight": "1.0" },
            "TransportationCharges": money(list),
            "ServiceOptionsCharges": money(Decimal::ZERO),
            "TotalCharges": money(list),
        });
        if let (Some(obj), true) = (r.as_object_mut(), negotiated) {
            obj.insert(
                "NegotiatedRateCharges".into(),
                json!({ "TotalCharge": money(discounted(list)) }),
            );
        }
        if let (Some(obj), Some(days)) = (r.as_object_mut(), svc.days) {
            obj.insert(
                "GuaranteedDelivery".into(),
                json!({ "BusinessDaysInTransit": days.to_string() }),
            );
        }
        rated.push(r);
    }
    // Like UPS, a single rated shipment is sent as a bare object.
    let rated = if rated.len() == 1 {
        rated.pop().unwrap_or_default()
    } else {
        serde_json::Value::Array(rated)
    };
    let body = json!({
        "RateResponse": {
            "Response": {
                "ResponseStatus": { "Code": "1", "Description": "Success" },
                "Alert": { "Code": "110971", "Description": "Your invoice may vary from the displayed reference rates" },
                "TransactionReference": { "CustomerContext": "fake" }
            },
            "RatedShipment": rated
        }
    });
    json_response(StatusCode::OK, body.to_string())
}

// ---- pricing ----

struct Service {
    code: &'static str,
    name: &'static str,
    /// Cents.
    base: i64,
    /// Cents per billable lb.
    per_lb: i64,
    days: Option<u32>,
    intl: bool,
    /// `Some(true)`: residential deliveries only; `Some(false)`: commercial only.
    residential: Option<bool>,
}

const fn svc(
    code: &'static str,
    name: &'static str,
    base: i64,
    per_lb: i64,
    days: Option<u32>,
    intl: bool,
    residential: Option<bool>,
) -> Service {
    Service {
        code,
        name,
        base,
        per_lb,
        days,
        intl,
        residential,
    }
}

const FEDEX_SERVICES: &[Service] = &[
    svc(
        "FEDEX_GROUND",
        "FedEx Ground",
        950,
        85,
        Some(5),
        false,
        Some(false),
    ),
    svc(
        "GROUND_HOME_DELIVERY",
        "FedEx Home Delivery",
        950,
        85,
        Some(5),
        false,
        Some(true),
    ),
    svc(
        "FEDEX_EXPRESS_SAVER",
        "FedEx Express Saver",
        2200,
        210,
        Some(3),
        false,
        None,
    ),
    svc("FEDEX_2_DAY", "FedEx 2Day", 2800, 260, Some(2), false, None),
    svc(
        "STANDARD_OVERNIGHT",
        "FedEx Standard Overnight",
        4500,
        410,
        Some(1),
        false,
        None,
    ),
    svc(
        "PRIORITY_OVERNIGHT",
        "FedEx Priority Overnight",
        5500,
        490,
        Some(1),
        false,
        None,
    ),
    svc(
        "INTERNATIONAL_ECONOMY",
        "FedEx International Economy",
        6000,
        650,
        Some(5),
        true,
        None,
    ),
    svc(
        "INTERNATIONAL_PRIORITY",
        "FedEx International Priority",
        7500,
        800,
        Some(3),
        true,
        None,
    ),
];

const UPS_SERVICES: &[Service] = &[
    svc("03", "UPS Ground", 975, 80, None, false, None),
    svc("12", "UPS 3 Day Select", 2150, 205, Some(3), false, None),
    svc("02", "UPS 2nd Day Air", 2750, 255, Some(2), false, None),
    svc("01", "UPS Next Day Air", 5200, 480, Some(1), false, None),
    svc(
        "08",
        "UPS Worldwide Expedited",
        6200,
        620,
        Some(5),
        true,
        None,
    ),
    svc("65", "UPS Worldwide Saver", 7200, 770, Some(3), true, None),
];

/// Residential surcharge per package, cents.
const RESIDENTIAL_CENTS: i64 = 450;

type Package = (Decimal, Option<[Decimal; 3]>);

/// Σ packages (base + per-lb × billable lb) + residential surcharge; `None` on overflow.
fn list_charge(svc: &Service, packages: &[Package], residential: bool) -> Option<Decimal> {
    let mut total = Decimal::ZERO;
    for (lb, dims) in packages {
        let dim_lb = match dims {
            Some([l, w, h]) => l
                .checked_mul(*w)?
                .checked_mul(*h)?
                .checked_div(Decimal::from(139))?
                .ceil(),
            None => Decimal::ZERO,
        };
        let billable = lb.ceil().max(dim_lb);
        let mut charge = Decimal::new(svc.base, 2)
            .checked_add(Decimal::new(svc.per_lb, 2).checked_mul(billable)?)?;
        if residential {
            charge = charge.checked_add(Decimal::new(RESIDENTIAL_CENTS, 2))?;
        }
        total = total.checked_add(charge)?;
    }
    Some(total)
}

/// Account / negotiated rate: 90 % of list, to cents, half away from zero.
fn discounted(list: Decimal) -> Decimal {
    (list * Decimal::new(9, 1)).round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero)
}

/// A JSON number for a money amount (FedEx sends numbers).
fn number(d: Decimal) -> serde_json::Value {
    serde_json::from_str(&format!("{d:.2}")).unwrap_or(serde_json::Value::Null)
}

// ---- tiny codecs (axum's `form` feature and base64 are not dependencies) ----

/// `application/x-www-form-urlencoded` pairs; undecodable escapes are kept as-is.
fn form_decode(body: &[u8]) -> Vec<(String, String)> {
    fn decode(s: &str) -> String {
        let bytes = s.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'+' => out.push(b' '),
                b'%' if i + 2 < bytes.len() => {
                    let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                    match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                        Some(b) => {
                            out.push(b);
                            i += 2;
                        }
                        None => out.push(b'%'),
                    }
                }
                b => out.push(b),
            }
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    }
    String::from_utf8_lossy(body)
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(k), decode(v))
        })
        .collect()
}

/// Standard base64 with padding; `None` if invalid.
fn base64_decode(s: &str) -> Option<Vec<u8>> {
    fn val(c: u8) -> Option<u32> {
        match c {
            b'A'..=b'Z' => Some(u32::from(c - b'A')),
            b'a'..=b'z' => Some(u32::from(c - b'a') + 26),
            b'0'..=b'9' => Some(u32::from(c - b'0') + 52),
            b'+' => Some(62),
            b'/' => Some(63),
            _ => None,
        }
    }
    let bytes = s.trim_end_matches('=').as_bytes();
    if bytes.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for chunk in bytes.chunks(4) {
        let mut acc = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            acc |= val(c)? << (18 - 6 * i);
        }
        let n = chunk.len() - 1;
        for i in 0..n {
            out.push((acc >> (16 - 8 * i)) as u8);
        }
    }
    Some(out)
}

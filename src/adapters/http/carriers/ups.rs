//! UPS Rating API (`POST /api/rating/v2409/Shop`) and its OAuth token endpoint, in UPS's
//! published JSON shapes (numbers as strings; single-element arrays sometimes sent as objects).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::oauth::{token_from_response, Token};
use super::{
    days, inches, lb_decimal, money, rate_body, transport, Attempt, FallbackReason, LiveQuote,
    LiveRateRequest, Settings, UPS,
};

pub(super) const TOKEN_PATH: &str = "/security/v1/oauth/token";
pub(super) const RATE_PATH: &str = "/api/rating/v2409/Shop";

// ---- request ----

#[derive(Serialize, Deserialize, Debug)]
pub(super) struct Envelope {
    #[serde(rename = "RateRequest")]
    pub(super) rate_request: RateRequest,
}

#[derive(Serialize, Deserialize, Debug)]
#[serde(rename_all = "PascalCase")]
pub(super) struct RateRequest {
    pub(super) request: Request,
    pub(super) shipment: Shipment,
}

#[derive(Serialize, Deserialize, Debug)]
#[serde(rename_all = "PascalCase")]
pub(super) struct Request {
    #[serde(default)]
    pub(super) request_option: Option<String>,
    #[serde(default)]
    pub(super) transaction_reference: Option<Value>,
}

#[derive(Serialize, Deserialize, Debug)]
#[serde(rename_all = "PascalCase")]
pub(super) struct Shipment {
    pub(super) shipper: Shipper,
    pub(super) ship_to: Party,
    #[serde(default)]
    pub(super) ship_from: Option<Party>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) shipment_rating_options: Option<RatingOptions>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) num_of_pieces: Option<String>,
    pub(super) package: OneOrMany<Package>,
}

#[derive(Serialize, Deserialize, Debug)]
#[serde(rename_all = "PascalCase")]
pub(super) struct Shipper {
    #[serde(default)]
    pub(super) shipper_number: Option<String>,
    pub(super) address: Address,
}

#[derive(Serialize, Deserialize, Debug)]
#[serde(rename_all = "PascalCase")]
pub(super) struct Party {
    pub(super) address: Address,
}

#[derive(Serialize, Deserialize, Debug)]
#[serde(rename_all = "PascalCase")]
pub(super) struct Address {
    pub(super) postal_code: String,
    pub(super) country_code: String,
    /// Present (empty string) means residential; absent means commercial.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) residential_address_indicator: Option<String>,
}

#[derive(Serialize, Deserialize, Debug)]
#[serde(rename_all = "PascalCase")]
pub(super) struct RatingOptions {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) negotiated_rates_indicator: Option<String>,
}

#[derive(Serialize, Deserialize, Debug)]
#[serde(rename_all = "PascalCase")]
pub(super) struct Package {
    pub(super) packaging_type: Code,
    #[serde(default)]
    pub(super) dimensions: Option<Dimensions>,
    pub(super) package_weight: PackageWeight,
}

#[derive(Serialize, Deserialize, Debug)]
#[serde(rename_all = "PascalCase")]
pub(super) struct Code {
    pub(super) code: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) description: Option<String>,
}

#[derive(Serialize, Deserialize, Debug)]
#[serde(rename_all = "PascalCase")]
pub(super) struct Dimensions {
    pub(super) unit_of_measurement: Code,
    pub(super) length: String,
    pub(super) width: String,
    pub(super) height: String,
}

#[derive(Serialize, Deserialize, Debug)]
#[serde(rename_all = "PascalCase")]
pub(super) struct PackageWeight {
    pub(super) unit_of_measurement: Code,
    pub(super) weight: String,
}

/// UPS sends a one-element array as a bare object; accept both.
#[derive(Serialize, Deserialize, Debug)]
#[serde(untagged)]
pub(super) enum OneOrMany<T> {
    Many(Vec<T>),
    One(T),
}

impl<T> OneOrMany<T> {
    pub(super) fn as_slice(&self) -> &[T] {
        match self {
            OneOrMany::Many(v) => v,
            OneOrMany::One(t) => std::slice::from_ref(t),
        }
    }
}

fn code(c: &str) -> Code {
    Code {
        code: c.into(),
        description: None,
    }
}

pub(super) fn request_body(settings: &Settings, req: &LiveRateRequest) -> Envelope {
    let address = |a: &super::LiveAddress, residential: bool| Address {
        postal_code: a.postal_code.trim().to_string(),
        country_code: a.country_code.trim().to_ascii_uppercase(),
        residential_address_indicator: residential.then(String::new),
    };
    Envelope {
        rate_request: RateRequest {
            request: Request {
                request_option: Some("Shop".into()),
                transaction_reference: Some(
                    serde_json::json!({ "CustomerContext": "stockroute live rate" }),
                ),
            },
            shipment: Shipment {
                shipper: Shipper {
                    shipper_number: Some(settings.account_number.clone()),
                    address: address(&req.origin, false),
                },
                ship_to: Party {
                    address: address(&req.destination, req.destination.residential),
                },
                ship_from: Some(Party {
                    address: address(&req.origin, false),
                }),
                shipment_rating_options: Some(RatingOptions {
                    negotiated_rates_indicator: Some(String::new()),
                }),
                num_of_pieces: Some(req.parcels.len().to_string()),
                package: OneOrMany::Many(
                    req.parcels
                        .iter()
                        .map(|p| Package {
                            packaging_type: code("02"),
                            dimensions: Some(Dimensions {
                                unit_of_measurement: code("IN"),
                                length: inches(p.length_mm).to_string(),
                                width: inches(p.width_mm).to_string(),
                                height: inches(p.height_mm).to_string(),
                            }),
                            package_weight: PackageWeight {
                                unit_of_measurement: code("LBS"),
                                weight: lb_decimal(p.weight_g).to_string(),
                            },
                        })
                        .collect(),
                ),
            },
        },
    }
}

// ---- token ----

pub(super) async fn fetch_token(
    http: &reqwest::Client,
    settings: &Settings,
) -> Result<Token, FallbackReason> {
    let resp = http
        .post(settings.url(TOKEN_PATH))
        .basic_auth(&settings.client_id, Some(&settings.client_secret))
        .header("x-merchant-id", &settings.account_number)
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .map_err(transport)?;
    // Missing or odd lifetimes count as one hour.
    token_from_response(resp, 3600).await
}

// ---- rate ----

pub(super) async fn rate(
    http: &reqwest::Client,
    settings: &Settings,
    token: &str,
    req: &LiveRateRequest,
) -> Result<Attempt, FallbackReason> {
    let resp = http
        .post(settings.url(RATE_PATH))
        .bearer_auth(token)
        .header("transId", trans_id())
        .header("transactionSrc", "stockroute")
        .json(&request_body(settings, req))
        .send()
        .await
        .map_err(transport)?;
    match rate_body(resp, UPS).await? {
        Some(body) => parse_response(&body).map(Attempt::Quotes),
        None => Ok(Attempt::Unauthorized),
    }
}

/// A request id UPS echoes back (up to 32 characters).
fn trans_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    format!("sr{:x}{:x}", nanos, NEXT.fetch_add(1, Ordering::Relaxed))
}

#[derive(Deserialize)]
struct ResponseEnvelope {
    #[serde(rename = "RateResponse")]
    rate_response: RateResponse,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RateResponse {
    #[serde(default)]
    rated_shipment: Option<OneOrMany<RatedShipment>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RatedShipment {
    service: ServiceCode,
    #[serde(default)]
    total_charges: Option<Charge>,
    #[serde(default)]
    negotiated_rate_charges: Option<NegotiatedRateCharges>,
    #[serde(default)]
    guaranteed_delivery: Option<Value>,
    #[serde(default)]
    time_in_transit: Option<Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ServiceCode {
    code: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Charge {
    #[serde(default)]
    currency_code: Option<String>,
    monetary_value: Value,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct NegotiatedRateCharges {
    #[serde(default)]
    total_charge: Option<Charge>,
}

/// Parses a Shop reply. Prefers the negotiated total; strict about charges (present, numeric,
/// non-negative, USD); lenient about transit fields and arrays-as-objects.
pub(super) fn parse_response(body: &[u8]) -> Result<Vec<LiveQuote>, FallbackReason> {
    let resp: ResponseEnvelope =
        serde_json::from_slice(body).map_err(|e| FallbackReason::Malformed(e.to_string()))?;
    let Some(rated) = resp.rate_response.rated_shipment else {
        return Ok(Vec::new());
    };
    let mut quotes = Vec::new();
    let mut skipped_currency = 0usize;
    for r in rated.as_slice() {
        let service = r.service.code.trim();
        if service.is_empty() {
            return Err(FallbackReason::Malformed("empty Service.Code".into()));
        }
        let charge = r
            .negotiated_rate_charges
            .as_ref()
            .and_then(|n| n.total_charge.as_ref())
            .or(r.total_charges.as_ref())
            .ok_or_else(|| FallbackReason::Malformed(format!("{service}: no TotalCharges")))?;
        if charge
            .currency_code
            .as_deref()
            .is_some_and(|c| !c.trim().eq_ignore_ascii_case("USD"))
        {
            skipped_currency += 1;
            continue;
        }
        let amount = money(&charge.monetary_value)
            .map_err(|m| FallbackReason::Malformed(format!("{service}: {m}")))?;
        let transit = r
            .guaranteed_delivery
            .as_ref()
            .and_then(|g| g.get("BusinessDaysInTransit"))
            .and_then(days)
            .or_else(|| {
                r.time_in_transit
                    .as_ref()
                    .and_then(|t| {
                        t.pointer("/ServiceSummary/EstimatedArrival/BusinessDaysInTransit")
                    })
                    .and_then(days)
            });
        quotes.push(LiveQuote {
            carrier: UPS.to_string(),
            service_code: service.to_string(),
            charge: amount,
            transit_days: transit,
        });
    }
    if quotes.is_empty() && skipped_currency > 0 {
        return Err(FallbackReason::Malformed("no charges in USD".into()));
    }
    Ok(quotes)
}

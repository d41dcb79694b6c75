//! FedEx Rate API (`POST /rate/v1/rates/quotes`) and its OAuth token endpoint, in FedEx's
//! published JSON shapes.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::oauth::{token_from_response, Token};
use super::{
    inches, money, rate_body, tenths_lb, transport, Attempt, FallbackReason, LiveQuote,
    LiveRateRequest, Settings, FEDEX,
};

pub(super) const TOKEN_PATH: &str = "/oauth/token";
pub(super) const RATE_PATH: &str = "/rate/v1/rates/quotes";

// ---- request ----

#[derive(Serialize, Deserialize, Debug)]
#[serde(rename_all = "camelCase")]
pub(super) struct RateRequest {
    pub(super) account_number: AccountNumber,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) rate_request_control_parameters: Option<Value>,
    pub(super) requested_shipment: RequestedShipment,
}

#[derive(Serialize, Deserialize, Debug)]
pub(super) struct AccountNumber {
    pub(super) value: String,
}

#[derive(Serialize, Deserialize, Debug)]
#[serde(rename_all = "camelCase")]
pub(super) struct RequestedShipment {
    pub(super) shipper: Party,
    pub(super) recipient: Party,
    pub(super) pickup_type: String,
    #[serde(default)]
    pub(super) rate_request_type: Vec<String>,
    #[serde(default)]
    pub(super) total_package_count: Option<u32>,
    pub(super) requested_package_line_items: Vec<PackageLineItem>,
}

#[derive(Serialize, Deserialize, Debug)]
pub(super) struct Party {
    pub(super) address: Address,
}

#[derive(Serialize, Deserialize, Debug)]
#[serde(rename_all = "camelCase")]
pub(super) struct Address {
    pub(super) postal_code: String,
    pub(super) country_code: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) residential: Option<bool>,
}

#[derive(Serialize, Deserialize, Debug)]
pub(super) struct PackageLineItem {
    pub(super) weight: Weight,
    #[serde(default)]
    pub(super) dimensions: Option<Dimensions>,
}

#[derive(Serialize, Deserialize, Debug)]
pub(super) struct Weight {
    pub(super) units: String,
    /// A JSON number (pounds with one decimal), as FedEx expects.
    pub(super) value: f64,
}

#[derive(Serialize, Deserialize, Debug)]
pub(super) struct Dimensions {
    pub(super) length: u64,
    pub(super) width: u64,
    pub(super) height: u64,
    pub(super) units: String,
}

pub(super) fn request_body(settings: &Settings, req: &LiveRateRequest) -> RateRequest {
    RateRequest {
        account_number: AccountNumber {
            value: settings.account_number.clone(),
        },
        rate_request_control_parameters: Some(serde_json::json!({ "returnTransitTimes": true })),
        requested_shipment: RequestedShipment {
            shipper: Party {
                address: Address {
                    postal_code: req.origin.postal_code.trim().to_string(),
                    country_code: req.origin.country_code.trim().to_ascii_uppercase(),
                    residential: None,
                },
            },
            recipient: Party {
                address: Address {
                    postal_code: req.destination.postal_code.trim().to_string(),
                    country_code: req.destination.country_code.trim().to_ascii_uppercase(),
                    residential: Some(req.destination.residential),
                },
            },
            pickup_type: "DROPOFF_AT_FEDEX_LOCATION".into(),
            rate_request_type: vec!["ACCOUNT".into(), "LIST".into()],
            total_package_count: u32::try_from(req.parcels.len()).ok(),
            requested_package_line_items: req
                .parcels
                .iter()
                .map(|p| PackageLineItem {
                    weight: Weight {
                        units: "LB".into(),
                        value: tenths_lb(p.weight_g) as f64 / 10.0,
                    },
                    dimensions: Some(Dimensions {
                        length: inches(p.length_mm),
                        width: inches(p.width_mm),
                        height: inches(p.height_mm),
                        units: "IN".into(),
                    }),
                })
                .collect(),
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
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", settings.client_id.as_str()),
            ("client_secret", settings.client_secret.as_str()),
        ])
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
        .header("X-locale", "en_US")
        .json(&request_body(settings, req))
        .send()
        .await
        .map_err(transport)?;
    match rate_body(resp, FEDEX).await? {
        Some(body) => parse_response(&body).map(Attempt::Quotes),
        None => Ok(Attempt::Unauthorized),
    }
}

#[derive(Deserialize)]
struct RateResponse {
    output: Output,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Output {
    #[serde(default)]
    rate_reply_details: Vec<RateReplyDetail>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RateReplyDetail {
    service_type: String,
    #[serde(default)]
    rated_shipment_details: Vec<RatedShipmentDetail>,
    #[serde(default)]
    commit: Option<Value>,
    #[serde(default)]
    operational_detail: Option<Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RatedShipmentDetail {
    #[serde(default)]
    rate_type: Option<String>,
    #[serde(default)]
    total_net_charge: Option<Value>,
    #[serde(default)]
    currency: Option<String>,
}

/// Parses a rate reply. Strict about charges (present, numeric, non-negative, USD); lenient about
/// everything that varies between API versions (transit fields, extra fields).
pub(super) fn parse_response(body: &[u8]) -> Result<Vec<LiveQuote>, FallbackReason> {
    let resp: RateResponse =
        serde_json::from_slice(body).map_err(|e| FallbackReason::Malformed(e.to_string()))?;
    let mut quotes = Vec::with_capacity(resp.output.rate_reply_details.len());
    let mut skipped_currency = 0usize;
    for d in &resp.output.rate_reply_details {
        let service = d.service_type.trim();
        if service.is_empty() {
            return Err(FallbackReason::Malformed("empty serviceType".into()));
        }
        let usd = |r: &&RatedShipmentDetail| {
            r.currency
                .as_deref()
                .is_none_or(|c| c.trim().eq_ignore_ascii_case("USD"))
        };
        // The account (negotiated) rate when FedEx gives one, else the first (list) rate.
        let chosen = d
            .rated_shipment_details
            .iter()
            .filter(usd)
            .find(|r| r.rate_type.as_deref() == Some("ACCOUNT"))
            .or_else(|| d.rated_shipment_details.iter().find(|r| usd(r)));
        let Some(chosen) = chosen else {
            if d.rated_shipment_details.is_empty() {
                return Err(FallbackReason::Malformed(format!(
                    "{service}: no ratedShipmentDetails"
                )));
            }
            skipped_currency += 1;
            continue;
        };
        let charge = chosen
            .total_net_charge
            .as_ref()
            .ok_or_else(|| FallbackReason::Malformed(format!("{service}: no totalNetCharge")))
            .and_then(|v| {
                money(v).map_err(|m| FallbackReason::Malformed(format!("{service}: {m}")))
            })?;
        quotes.push(LiveQuote {
            carrier: FEDEX.to_string(),
            service_code: service.to_string(),
            charge,
            transit_days: transit_days(d),
        });
    }
    if quotes.is_empty() && skipped_currency > 0 {
        return Err(FallbackReason::Malformed("no charges in USD".into()));
    }
    Ok(quotes)
}

/// FedEx spells transit as an enum word ("TWO_DAYS") in `operationalDetail.transitTime` or
/// `commit.transitDays.minimumTransitTime`, or (some versions) a number. `commit.dateDetail`
/// holds a delivery date, not a count, and is not used.
fn transit_days(d: &RateReplyDetail) -> Option<u32> {
    let candidates = [
        d.operational_detail
            .as_ref()
            .and_then(|o| o.get("transitTime")),
        d.commit
            .as_ref()
            .and_then(|c| c.get("transitDays"))
            .and_then(|t| t.get("minimumTransitTime")),
        d.commit.as_ref().and_then(|c| c.get("transitDays")),
        d.operational_detail
            .as_ref()
            .and_then(|o| o.get("transitDays")),
    ];
    candidates.into_iter().flatten().find_map(|v| match v {
        Value::String(s) => transit_word(s),
        Value::Number(n) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
        _ => None,
    })
}

const NUMBERS: [&str; 20] = [
    "ONE",
    "TWO",
    "THREE",
    "FOUR",
    "FIVE",
    "SIX",
    "SEVEN",
    "EIGHT",
    "NINE",
    "TEN",
    "ELEVEN",
    "TWELVE",
    "THIRTEEN",
    "FOURTEEN",
    "FIFTEEN",
    "SIXTEEN",
    "SEVENTEEN",
    "EIGHTEEN",
    "NINETEEN",
    "TWENTY",
];

/// "ONE_DAY" → 1, "TWO_DAYS" → 2, …, "TWENTY_DAYS" → 20; also plain digits.
pub(super) fn transit_word(s: &str) -> Option<u32> {
    let s = s.trim().to_ascii_uppercase();
    if let Ok(n) = s.parse::<u32>() {
        return Some(n);
    }
    let word = s.strip_suffix("_DAYS").or_else(|| s.strip_suffix("_DAY"))?;
    NUMBERS
        .iter()
        .position(|w| w.eq_ignore_ascii_case(word))
        .and_then(|i| u32::try_from(i + 1).ok())
}

/// The enum word for `n` days, for the fake.
pub(super) fn transit_enum(n: u32) -> String {
    let i = usize::try_from(n).unwrap_or(0);
    match NUMBERS.get(i.wrapping_sub(1)) {
        Some(w) if n == 1 => format!("{w}_DAY"),
        Some(w) => format!("{w}_DAYS"),
        None => "UNKNOWN".into(),
    }
}

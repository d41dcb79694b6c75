//! Live carrier rates: the FedEx Rate API and the UPS Rating API.
//!
//! [`CarrierClients::rates`] asks every configured carrier concurrently, each call bounded by the
//! caller's remaining budget, and never errors: a carrier that is not configured, too slow, down,
//! refusing our credentials or answering nonsense comes back as [`LiveOutcome::Fallback`] with the
//! reason, and the caller prices from its tables instead.
//!
//! Per carrier: an OAuth client-credentials token cached until shortly before expiry (one fetch
//! shared by concurrent callers, refreshed once on a 401), a moka cache of answers keyed by the
//! request (concurrent identical requests coalesce into one upstream call), a consecutive-failure
//! circuit breaker with a single half-open probe, a 1 MiB response limit, and metrics:
//!
//! - `stockroute_carrier_request_seconds{carrier}` histogram (one per upstream attempt),
//! - `stockroute_carrier_errors_total{carrier,reason}` (upstream attempts that failed),
//! - `stockroute_carrier_fallbacks_total{carrier,reason}` (answers to callers that fell back),
//! - `stockroute_carrier_breaker_open{carrier}` gauge (1 open or half-open, 0 closed).
//!
//! Types here are transport-free; the wire shapes live in `fedex` and `ups`. `fake` holds a
//! loopback server speaking both carriers' shapes, for tests and the demo world.

mod error;
pub mod fake;
mod fedex;
mod oauth;
mod ups;

#[cfg(test)]
mod tests;

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rust_decimal::Decimal;
use serde::Deserialize;
use tokio::time::Instant;

pub use self::error::CarrierError;
use self::oauth::{Token, TokenCache};
use super::body;
use super::breaker::Breaker;

/// Display name of FedEx in [`LiveQuote::carrier`] and in [`CarrierClients::rates`].
pub const FEDEX: &str = "FedEx";
/// Display name of UPS in [`LiveQuote::carrier`] and in [`CarrierClients::rates`].
pub const UPS: &str = "UPS";

/// Largest response body read from a carrier; anything longer is `Malformed`.
pub const MAX_RESPONSE_BYTES: usize = 1024 * 1024;

/// One package as the carriers see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LiveParcel {
    /// Gross weight in grams (sent as pounds, rounded up to 0.1 lb).
    pub weight_g: u32,
    /// Outer length in millimetres (sent as whole inches, rounded up).
    pub length_mm: u32,
    /// Outer width in millimetres.
    pub width_mm: u32,
    /// Outer height in millimetres.
    pub height_mm: u32,
}

/// An end of a shipment as the carriers see it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct LiveAddress {
    /// ISO 3166-1 alpha-2 code (sent upper-cased).
    pub country_code: String,
    /// Postal code as the carrier expects it.
    pub postal_code: String,
    /// Home delivery (matters for the recipient only).
    pub residential: bool,
}

/// What to ask the carriers; also the cache key.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct LiveRateRequest {
    /// Ship-from address.
    pub origin: LiveAddress,
    /// Ship-to address.
    pub destination: LiveAddress,
    /// The packages; at least one, each with a non-zero weight.
    pub parcels: Vec<LiveParcel>,
}

/// One service's price from a carrier's API.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LiveQuote {
    /// [`FEDEX`] or [`UPS`].
    pub carrier: String,
    /// The carrier's own code, e.g. `FEDEX_GROUND` or `"03"`.
    pub service_code: String,
    /// Total net charge including surcharges, in USD; account/negotiated rate when given.
    pub charge: Decimal,
    /// Business days in transit when the carrier said so.
    pub transit_days: Option<u32>,
}

/// What one carrier contributed to a rating.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LiveOutcome {
    /// Fresh answer from the carrier's API.
    Answered(Vec<LiveQuote>),
    /// Answer from the cache (an identical request was answered within the TTL, or was in flight).
    Cached(Vec<LiveQuote>),
    /// No live answer: price from the tables and say why.
    Fallback(FallbackReason),
}

impl LiveOutcome {
    /// The quotes, whether fresh or cached; `None` for a fallback.
    pub fn quotes(&self) -> Option<&[LiveQuote]> {
        match self {
            LiveOutcome::Answered(q) | LiveOutcome::Cached(q) => Some(q),
            LiveOutcome::Fallback(_) => None,
        }
    }
}

/// Why a carrier did not answer live.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FallbackReason {
    /// No configuration for this carrier.
    NotConfigured,
    /// The budget (or the carrier's `timeout_ms`) ran out.
    Timeout,
    /// The circuit breaker is open after consecutive failures.
    CircuitOpen,
    /// The carrier answered with this non-success status.
    Http(u16),
    /// The answer could not be understood (bad JSON, wrong types, negative charge, too large).
    Malformed(String),
    /// Connection-level failure (refused, reset, DNS, TLS).
    Transport(String),
    /// The token endpoint refused or confused us, or a fresh token was still refused.
    Auth(String),
    /// The request cannot be sent to a carrier (no parcels, zero weight); nothing was called.
    InvalidRequest(String),
}

/// Which carrier API a body comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CarrierApi {
    /// FedEx Rate API (and its OAuth token endpoint).
    FedEx,
    /// UPS Rating API (and its OAuth token endpoint).
    Ups,
}

/// Parses a carrier's rate reply exactly as its client does: the quotes it
/// holds, or why it cannot be used. Carriers are untrusted input; this is
/// the entry point the fuzz targets drive.
pub fn parse_rate_reply(api: CarrierApi, body: &[u8]) -> Result<Vec<LiveQuote>, FallbackReason> {
    match api {
        CarrierApi::FedEx => fedex::parse_response(body),
        CarrierApi::Ups => ups::parse_response(body),
    }
}

/// Parses an OAuth token endpoint's success body as the clients do, returning
/// the token's lifetime in seconds (`default_secs` when it gives none).
pub fn parse_token_reply(body: &[u8], default_secs: u64) -> Result<u64, FallbackReason> {
    oauth::parse_token(body, default_secs).map(|t| t.expires_in.as_secs())
}

impl FallbackReason {
    /// Low-cardinality label for metrics.
    pub fn label(&self) -> &'static str {
        match self {
            FallbackReason::NotConfigured => "not_configured",
            FallbackReason::Timeout => "timeout",
            FallbackReason::CircuitOpen => "circuit_open",
            FallbackReason::Http(s) if *s >= 500 => "http_5xx",
            FallbackReason::Http(_) => "http_4xx",
            FallbackReason::Malformed(_) => "malformed",
            FallbackReason::Transport(_) => "transport",
            FallbackReason::Auth(_) => "auth",
            FallbackReason::InvalidRequest(_) => "invalid_request",
        }
    }

    /// Whether this failure says something about the carrier's health (counts toward the breaker).
    /// Client errors other than 408/429 are about our request, not the carrier.
    fn trips_breaker(&self) -> bool {
        match self {
            FallbackReason::Http(s) => !(400..500).contains(s) || *s == 408 || *s == 429,
            FallbackReason::NotConfigured
            | FallbackReason::CircuitOpen
            | FallbackReason::InvalidRequest(_) => false,
            FallbackReason::Timeout
            | FallbackReason::Malformed(_)
            | FallbackReason::Transport(_)
            | FallbackReason::Auth(_) => true,
        }
    }
}

impl fmt::Display for FallbackReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FallbackReason::NotConfigured => f.write_str("not configured"),
            FallbackReason::Timeout => f.write_str("timed out"),
            FallbackReason::CircuitOpen => f.write_str("circuit open"),
            FallbackReason::Http(s) => write!(f, "HTTP {s}"),
            FallbackReason::Malformed(m) => write!(f, "malformed answer: {m}"),
            FallbackReason::Transport(m) => write!(f, "transport: {m}"),
            FallbackReason::Auth(m) => write!(f, "auth: {m}"),
            FallbackReason::InvalidRequest(m) => write!(f, "invalid request: {m}"),
        }
    }
}

fn default_cache_ttl_secs() -> u64 {
    300
}
fn default_cache_capacity() -> u64 {
    10_000
}
fn default_timeout_ms() -> u64 {
    2_000
}
fn default_breaker_failures() -> u32 {
    5
}
fn default_breaker_open_ms() -> u64 {
    30_000
}

/// Live-rate settings; a carrier without a section is not called (`NotConfigured`).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CarriersConfig {
    /// FedEx Rate API.
    #[serde(default)]
    pub fedex: Option<CarrierConfig>,
    /// UPS Rating API.
    #[serde(default)]
    pub ups: Option<CarrierConfig>,
    /// How long an answer is reused for an identical request; 0 disables caching. Default 300.
    #[serde(default = "default_cache_ttl_secs")]
    pub cache_ttl_secs: u64,
    /// Most answers kept per carrier. Default 10000.
    #[serde(default = "default_cache_capacity")]
    pub cache_capacity: u64,
}

impl Default for CarriersConfig {
    fn default() -> Self {
        CarriersConfig {
            fedex: None,
            ups: None,
            cache_ttl_secs: default_cache_ttl_secs(),
            cache_capacity: default_cache_capacity(),
        }
    }
}

/// One carrier's endpoint and credentials.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CarrierConfig {
    /// e.g. `https://apis.fedex.com` / `https://onlinetools.ups.com` (sandboxes:
    /// `https://apis-sandbox.fedex.com`, `https://wwwcie.ups.com`). No trailing path.
    pub base_url: String,
    /// OAuth client id (FedEx "API key").
    pub client_id: String,
    /// OAuth client secret, inline. Exactly one of this and `client_secret_env`.
    #[serde(default)]
    pub client_secret: String,
    /// Name of an environment variable holding the client secret.
    #[serde(default)]
    pub client_secret_env: Option<String>,
    /// FedEx account number / UPS shipper number (needed for account and negotiated rates).
    pub account_number: String,
    /// Cap on one call (token + rate), also bounded by the caller's budget. Default 2000.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Consecutive failures that open the breaker. Default 5.
    #[serde(default = "default_breaker_failures")]
    pub breaker_failures: u32,
    /// How long the breaker stays open before one half-open probe. Default 30000.
    #[serde(default = "default_breaker_open_ms")]
    pub breaker_open_ms: u64,
}

impl CarrierConfig {
    /// A config with the documented defaults.
    pub fn new(base_url: &str, client_id: &str, client_secret: &str, account_number: &str) -> Self {
        CarrierConfig {
            base_url: base_url.to_string(),
            client_id: client_id.to_string(),
            client_secret: client_secret.to_string(),
            client_secret_env: None,
            account_number: account_number.to_string(),
            timeout_ms: default_timeout_ms(),
            breaker_failures: default_breaker_failures(),
            breaker_open_ms: default_breaker_open_ms(),
        }
    }
}

impl fmt::Debug for CarrierConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CarrierConfig")
            .field("base_url", &self.base_url)
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .field("client_secret_env", &self.client_secret_env)
            .field("account_number", &self.account_number)
            .field("timeout_ms", &self.timeout_ms)
            .field("breaker_failures", &self.breaker_failures)
            .field("breaker_open_ms", &self.breaker_open_ms)
            .finish()
    }
}

/// Resolved credentials and endpoint of one carrier.
#[derive(Clone)]
pub(super) struct Settings {
    pub(super) base_url: String,
    pub(super) client_id: String,
    pub(super) client_secret: String,
    pub(super) account_number: String,
}

impl Settings {
    pub(super) fn url(&self, path: &str) -> String {
        format!("{}{}", self.base_url, path)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    FedEx,
    Ups,
}

/// Result of one rate call with a given token.
pub(super) enum Attempt {
    Quotes(Vec<LiveQuote>),
    /// 401: the token is no longer good.
    Unauthorized,
}

struct Live {
    name: &'static str,
    kind: Kind,
    http: reqwest::Client,
    settings: Settings,
    timeout: Duration,
    tokens: TokenCache,
    breaker: Breaker,
    cache: Option<moka::future::Cache<LiveRateRequest, Arc<Vec<LiveQuote>>>>,
}

/// The live rate clients of every configured carrier.
pub struct CarrierClients {
    fedex: Option<Live>,
    ups: Option<Live>,
}

impl fmt::Debug for CarrierClients {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CarrierClients")
            .field("fedex", &self.fedex.is_some())
            .field("ups", &self.ups.is_some())
            .finish()
    }
}

impl CarrierClients {
    /// Validates the configuration and builds the clients; no network traffic.
    pub fn new(config: &CarriersConfig) -> Result<Self, CarrierError> {
        describe_metrics();
        let http = reqwest::Client::builder()
            .user_agent(concat!("stockroute/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(5))
            .pool_idle_timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| CarrierError::Client(e.to_string()))?;
        let build = |name: &'static str, kind: Kind, c: &Option<CarrierConfig>| {
            c.as_ref()
                .map(|c| Live::new(name, kind, http.clone(), c, config))
                .transpose()
        };
        Ok(CarrierClients {
            fedex: build(FEDEX, Kind::FedEx, &config.fedex)?,
            ups: build(UPS, Kind::Ups, &config.ups)?,
        })
    }

    /// Names of the configured carriers.
    pub fn configured(&self) -> Vec<&'static str> {
        [&self.fedex, &self.ups]
            .into_iter()
            .flatten()
            .map(|l| l.name)
            .collect()
    }

    /// Asks every configured carrier concurrently; each call is bounded by `budget` (the caller's
    /// remaining deadline). Never errors: a carrier that cannot answer in time, or answers badly,
    /// is a Fallback with the reason. Always one entry per known carrier, FedEx then UPS; a
    /// carrier without configuration is `Fallback(NotConfigured)`.
    pub async fn rates(
        &self,
        req: &LiveRateRequest,
        budget: Duration,
    ) -> Vec<(String, LiveOutcome)> {
        let deadline = Instant::now()
            .checked_add(budget)
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(86_400));
        let (f, u) = futures::future::join(
            ask(FEDEX, self.fedex.as_ref(), req, deadline),
            ask(UPS, self.ups.as_ref(), req, deadline),
        )
        .await;
        vec![f, u]
    }
}

async fn ask(
    name: &'static str,
    live: Option<&Live>,
    req: &LiveRateRequest,
    deadline: Instant,
) -> (String, LiveOutcome) {
    let outcome = match live {
        Some(live) => live.rates(req, deadline).await,
        None => LiveOutcome::Fallback(FallbackReason::NotConfigured),
    };
    if let LiveOutcome::Fallback(reason) = &outcome {
        metrics::counter!(
            "stockroute_carrier_fallbacks_total",
            "carrier" => name,
            "reason" => reason.label()
        )
        .increment(1);
    }
    (name.to_string(), outcome)
}

impl Live {
    fn new(
        name: &'static str,
        kind: Kind,
        http: reqwest::Client,
        c: &CarrierConfig,
        all: &CarriersConfig,
    ) -> Result<Live, CarrierError> {
        let bad = |message: String| CarrierError::Config {
            carrier: name,
            message,
        };
        let base_url = c.base_url.trim().trim_end_matches('/').to_string();
        let parsed = reqwest::Url::parse(&base_url)
            .map_err(|e| bad(format!("base_url {:?}: {e}", c.base_url)))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(bad(format!("base_url {:?} is not http(s)", c.base_url)));
        }
        if c.client_id.trim().is_empty() {
            return Err(bad("client_id is empty".into()));
        }
        let client_secret = match (&c.client_secret_env, c.client_secret.is_empty()) {
            (Some(_), false) => {
                return Err(bad(
                    "set only one of client_secret and client_secret_env".into()
                ))
            }
            (Some(var), true) => match std::env::var(var) {
                Ok(s) if !s.is_empty() => s,
                _ => {
                    return Err(bad(format!(
                        "client_secret_env {var:?} is not set or empty"
                    )))
                }
            },
            (None, false) => c.client_secret.clone(),
            (None, true) => {
                return Err(bad("client_secret (or client_secret_env) is empty".into()))
            }
        };
        if c.account_number.trim().is_empty() {
            return Err(bad("account_number is empty".into()));
        }
        if c.timeout_ms == 0 {
            return Err(bad("timeout_ms must be positive".into()));
        }
        if c.breaker_failures == 0 {
            return Err(bad("breaker_failures must be at least 1".into()));
        }
        let cache = (all.cache_ttl_secs > 0 && all.cache_capacity > 0).then(|| {
            moka::future::Cache::builder()
                .max_capacity(all.cache_capacity)
                .time_to_live(Duration::from_secs(all.cache_ttl_secs))
                .build()
        });
        Ok(Live {
            name,
            kind,
            http,
            settings: Settings {
                base_url,
                client_id: c.client_id.trim().to_string(),
                client_secret,
                account_number: c.account_number.trim().to_string(),
            },
            timeout: Duration::from_millis(c.timeout_ms),
            tokens: TokenCache::new(),
            breaker: Breaker::new(
                name,
                c.breaker_failures,
                Duration::from_millis(c.breaker_open_ms),
                metrics::gauge!("stockroute_carrier_breaker_open", "carrier" => name),
            ),
            cache,
        })
    }

    async fn rates(&self, req: &LiveRateRequest, deadline: Instant) -> LiveOutcome {
        let Some(cache) = &self.cache else {
            return match tokio::time::timeout_at(deadline, self.fetch(req, deadline)).await {
                Ok(Ok(q)) => LiveOutcome::Answered(q),
                Ok(Err(e)) => LiveOutcome::Fallback(e),
                Err(_) => LiveOutcome::Fallback(FallbackReason::Timeout),
            };
        };
        if let Some(hit) = cache.get(req).await {
            return LiveOutcome::Cached(hit.as_ref().clone());
        }
        // Concurrent identical requests share one evaluation; only the caller that ran it
        // reports `Answered`.
        let ran = AtomicBool::new(false);
        let init = async {
            ran.store(true, Ordering::Relaxed);
            self.fetch(req, deadline).await.map(Arc::new)
        };
        match tokio::time::timeout_at(deadline, cache.try_get_with_by_ref(req, init)).await {
            Ok(Ok(q)) if ran.load(Ordering::Relaxed) => LiveOutcome::Answered(q.as_ref().clone()),
            Ok(Ok(q)) => LiveOutcome::Cached(q.as_ref().clone()),
            Ok(Err(e)) => LiveOutcome::Fallback(e.as_ref().clone()),
            Err(_) => LiveOutcome::Fallback(FallbackReason::Timeout),
        }
    }

    /// One upstream evaluation: validation, breaker, token, rate call, metrics.
    async fn fetch(
        &self,
        req: &LiveRateRequest,
        deadline: Instant,
    ) -> Result<Vec<LiveQuote>, FallbackReason> {
        validate(req)?;
        let Some(permit) = self.breaker.try_acquire() else {
            return Err(FallbackReason::CircuitOpen);
        };
        let started = Instant::now();
        let until = deadline.min(started + self.timeout);
        let result = match tokio::time::timeout_at(until, self.call(req)).await {
            Ok(r) => r,
            Err(_) => Err(FallbackReason::Timeout),
        };
        metrics::histogram!("stockroute_carrier_request_seconds", "carrier" => self.name)
            .record(started.elapsed().as_secs_f64());
        match &result {
            Ok(_) => permit.success(),
            Err(e) => {
                metrics::counter!(
                    "stockroute_carrier_errors_total",
                    "carrier" => self.name,
                    "reason" => e.label()
                )
                .increment(1);
                tracing::warn!(carrier = self.name, reason = %e, "live rate call failed");
                if e.trips_breaker() {
                    permit.failure();
                } else {
                    permit.success();
                }
            }
        }
        result
    }

    async fn call(&self, req: &LiveRateRequest) -> Result<Vec<LiveQuote>, FallbackReason> {
        let token = self.tokens.get(|| self.fetch_token()).await?;
        match self.rate_once(&token, req).await? {
            Attempt::Quotes(q) => Ok(q),
            Attempt::Unauthorized => {
                tracing::info!(carrier = self.name, "token refused; refreshing once");
                self.tokens.invalidate(&token).await;
                let token = self.tokens.get(|| self.fetch_token()).await?;
                match self.rate_once(&token, req).await? {
                    Attempt::Quotes(q) => Ok(q),
                    Attempt::Unauthorized => Err(FallbackReason::Auth(
                        "rate call refused a freshly issued token".into(),
                    )),
                }
            }
        }
    }

    async fn fetch_token(&self) -> Result<Token, FallbackReason> {
        match self.kind {
            Kind::FedEx => fedex::fetch_token(&self.http, &self.settings).await,
            Kind::Ups => ups::fetch_token(&self.http, &self.settings).await,
        }
    }

    async fn rate_once(
        &self,
        token: &str,
        req: &LiveRateRequest,
    ) -> Result<Attempt, FallbackReason> {
        match self.kind {
            Kind::FedEx => fedex::rate(&self.http, &self.settings, token, req).await,
            Kind::Ups => ups::rate(&self.http, &self.settings, token, req).await,
        }
    }
}

fn validate(req: &LiveRateRequest) -> Result<(), FallbackReason> {
    let bad = |m: &str| Err(FallbackReason::InvalidRequest(m.to_string()));
    if req.parcels.is_empty() {
        return bad("no parcels");
    }
    if req.parcels.len() > 200 {
        return bad("more than 200 parcels");
    }
    if req.parcels.iter().any(|p| p.weight_g == 0) {
        return bad("a parcel weighs 0 g");
    }
    for a in [&req.origin, &req.destination] {
        if a.country_code.trim().len() != 2 || !a.country_code.trim().is_ascii() {
            return bad("country code is not two letters");
        }
    }
    Ok(())
}

fn describe_metrics() {
    metrics::describe_histogram!(
        "stockroute_carrier_request_seconds",
        metrics::Unit::Seconds,
        "Duration of one live rate attempt (token + rate call) per carrier"
    );
    metrics::describe_counter!(
        "stockroute_carrier_errors_total",
        "Live rate attempts that failed, by carrier and reason"
    );
    metrics::describe_counter!(
        "stockroute_carrier_fallbacks_total",
        "Rate answers that fell back to the tables, by carrier and reason"
    );
    metrics::describe_gauge!(
        "stockroute_carrier_breaker_open",
        "1 while a carrier's circuit breaker is open or half-open"
    );
}

// ---- helpers shared by the carrier clients ----

/// Weight in tenths of a pound, rounded up, at least 0.1 lb.
pub(super) fn tenths_lb(weight_g: u32) -> u64 {
    // 1 lb = 453.59237 g; tenths = g * 10 / 453.59237 = g * 1_000_000 / 45_359_237.
    (u64::from(weight_g) * 1_000_000)
        .div_ceil(45_359_237)
        .max(1)
}

/// Pounds with one decimal, e.g. `4.5`.
pub(super) fn lb_decimal(weight_g: u32) -> Decimal {
    Decimal::new(i64::try_from(tenths_lb(weight_g)).unwrap_or(i64::MAX), 1)
}

/// Whole inches, rounded up, at least 1.
pub(super) fn inches(mm: u32) -> u64 {
    (u64::from(mm) * 10).div_ceil(254).max(1)
}

/// Reads a rate call's answer: `None` for 401 (the token needs renewing),
/// `Http` for any other failure status, else the body for the carrier's parser.
pub(super) async fn rate_body(
    resp: reqwest::Response,
    carrier: &'static str,
) -> Result<Option<Vec<u8>>, FallbackReason> {
    let status = resp.status();
    if status == reqwest::StatusCode::UNAUTHORIZED {
        return Ok(None);
    }
    let body = read_limited(resp).await?;
    if !status.is_success() {
        tracing::debug!(carrier, status = status.as_u16(), body = %snippet(&body), "rate call refused");
        return Err(FallbackReason::Http(status.as_u16()));
    }
    Ok(Some(body))
}

/// Reads a body of at most [`MAX_RESPONSE_BYTES`].
pub(super) async fn read_limited(resp: reqwest::Response) -> Result<Vec<u8>, FallbackReason> {
    body::read_limited(resp, MAX_RESPONSE_BYTES)
        .await
        .map_err(|e| match e {
            body::BodyError::TooLarge(limit) => {
                FallbackReason::Malformed(format!("body over {limit} bytes"))
            }
            body::BodyError::Transport(e) => transport(e),
        })
}

/// Maps a reqwest error to a reason, with the source chain.
pub(super) fn transport(e: reqwest::Error) -> FallbackReason {
    if e.is_timeout() {
        return FallbackReason::Timeout;
    }
    FallbackReason::Transport(body::error_chain(&e))
}

pub(super) use super::body::snippet;

/// A money amount from a JSON number or numeric string; must be finite and non-negative.
pub(super) fn money(v: &serde_json::Value) -> Result<Decimal, String> {
    let parsed = match v {
        serde_json::Value::Number(n) => {
            let s = n.to_string();
            s.parse::<Decimal>()
                .or_else(|_| Decimal::from_scientific(&s))
                .map_err(|_| format!("charge {s} is not a decimal"))?
        }
        serde_json::Value::String(s) => s
            .trim()
            .parse::<Decimal>()
            .map_err(|_| format!("charge {:?} is not a number", snippet(s.as_bytes())))?,
        other => return Err(format!("charge is {}, not a number", json_kind(other))),
    };
    if parsed.is_sign_negative() && !parsed.is_zero() {
        return Err(format!("charge {parsed} is negative"));
    }
    Ok(parsed.normalize())
}

/// A day count from a JSON number or numeric string.
pub(super) fn days(v: &serde_json::Value) -> Option<u32> {
    match v {
        serde_json::Value::Number(n) => n.as_u64().and_then(|d| u32::try_from(d).ok()),
        serde_json::Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

pub(super) use super::body::json_kind;

/// Seconds from a JSON number or numeric string (UPS sends `"14399"`).
pub(super) fn seconds(v: &serde_json::Value) -> Option<u64> {
    match v {
        serde_json::Value::Number(n) => n.as_u64().or_else(|| {
            n.as_f64()
                .filter(|f| *f >= 0.0 && f.is_finite())
                .map(|f| f as u64)
        }),
        serde_json::Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

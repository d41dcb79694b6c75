//! Scenario files: what load to offer (rate or concurrency, phases, repeats),
//! which RPCs in what mix, what the baskets look like, and the budget a run is
//! judged by. TOML; every key but `name` has a default, and a bad value is
//! refused with the key named. loadtest/README.md documents the format.

use std::path::Path;

use serde::Deserialize;

/// Longest phase accepted, in seconds: runs stop by themselves.
pub const PHASE_SECS_MAX: f64 = 600.0;
/// Most repeats of the measured phase.
pub const REPEATS_MAX: u32 = 50;
/// Highest arrival rate accepted, per second.
pub const RATE_PER_S_MAX: f64 = 1_000_000.0;
/// Most closed-loop workers or connections.
pub const WORKERS_MAX: u32 = 10_000;
/// Most products the SKU popularity table covers (8 bytes each).
pub const PRODUCTS_MAX: u32 = 10_000_000;
/// Most lines in a generated basket.
pub const BASKET_LINES_MAX: u32 = 200;

/// A scenario file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// The file could not be read.
    #[error("cannot read scenario {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// Not TOML, or a key of the wrong type or unknown.
    #[error("scenario {origin}: {message}")]
    Parse {
        /// The file.
        origin: String,
        /// The parser's message, naming the key.
        message: String,
    },
    /// A value out of range or inconsistent with another.
    #[error("scenario {origin}: `{key}` {message}")]
    Invalid {
        /// The file.
        origin: String,
        /// The key.
        key: &'static str,
        /// What is wrong.
        message: String,
    },
}

/// How requests are issued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Requests start at a constant arrival rate whether or not earlier ones
    /// answered; latency counts from each request's intended start.
    Open,
    /// `workers` callers each send the next request when the previous one
    /// answers (optionally paced to `rate_per_s` in total).
    Closed,
}

/// The RPCs a scenario can mix, by the names the mix table uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub enum Rpc {
    /// `grpc.health.v1.Health/Check`: the empty baseline.
    Health,
    /// `Fulfillment/CheckStock`.
    CheckStock,
    /// `Fulfillment/Quote`.
    Quote,
    /// `Fulfillment/Reserve`.
    Reserve,
    /// `Fulfillment/Commit`.
    Commit,
    /// `Fulfillment/Release`.
    Release,
    /// `Fulfillment/Allocate`.
    Allocate,
    /// `Fulfillment/GetReservation`.
    GetReservation,
}

impl Rpc {
    /// Every RPC, in report order.
    pub const ALL: [Rpc; 8] = [
        Rpc::Health,
        Rpc::CheckStock,
        Rpc::Quote,
        Rpc::Reserve,
        Rpc::Commit,
        Rpc::Release,
        Rpc::Allocate,
        Rpc::GetReservation,
    ];

    /// The name used in reports.
    pub fn name(self) -> &'static str {
        match self {
            Rpc::Health => "Health",
            Rpc::CheckStock => "CheckStock",
            Rpc::Quote => "Quote",
            Rpc::Reserve => "Reserve",
            Rpc::Commit => "Commit",
            Rpc::Release => "Release",
            Rpc::Allocate => "Allocate",
            Rpc::GetReservation => "GetReservation",
        }
    }

    /// The gRPC path, as the server's metrics label it.
    pub fn path(self) -> &'static str {
        match self {
            Rpc::Health => "grpc.health.v1.Health/Check",
            Rpc::CheckStock => "stockroute.v1.Fulfillment/CheckStock",
            Rpc::Quote => "stockroute.v1.Fulfillment/Quote",
            Rpc::Reserve => "stockroute.v1.Fulfillment/Reserve",
            Rpc::Commit => "stockroute.v1.Fulfillment/Commit",
            Rpc::Release => "stockroute.v1.Fulfillment/Release",
            Rpc::Allocate => "stockroute.v1.Fulfillment/Allocate",
            Rpc::GetReservation => "stockroute.v1.Fulfillment/GetReservation",
        }
    }

    /// Parses a report name (case-insensitive).
    pub fn from_name(name: &str) -> Option<Rpc> {
        Rpc::ALL
            .into_iter()
            .find(|r| r.name().eq_ignore_ascii_case(name))
    }
}

/// What one arrival does. Reservation flows issue several RPCs in a row,
/// each measured on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub enum Op {
    /// One health check.
    Health,
    /// One stock check.
    CheckStock,
    /// One quote.
    Quote,
    /// Reserve, then commit.
    ReserveCommit,
    /// Reserve, then release.
    ReserveRelease,
    /// Reserve and leave the hold to expire.
    ReserveExpire,
    /// One allocate (reserve and commit in one call).
    Allocate,
}

/// Relative weights of the operations; zero leaves one out.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Mix {
    /// `grpc.health.v1.Health/Check`.
    pub health: u32,
    /// `CheckStock`.
    pub check_stock: u32,
    /// `Quote`.
    pub quote: u32,
    /// `Reserve` then `Commit`.
    pub reserve_commit: u32,
    /// `Reserve` then `Release`.
    pub reserve_release: u32,
    /// `Reserve`, left to expire.
    pub reserve_expire: u32,
    /// `Allocate`.
    pub allocate: u32,
}

impl Mix {
    /// The operations with a weight, in a fixed order.
    pub fn weighted(&self) -> Vec<(Op, u32)> {
        [
            (Op::Health, self.health),
            (Op::CheckStock, self.check_stock),
            (Op::Quote, self.quote),
            (Op::ReserveCommit, self.reserve_commit),
            (Op::ReserveRelease, self.reserve_release),
            (Op::ReserveExpire, self.reserve_expire),
            (Op::Allocate, self.allocate),
        ]
        .into_iter()
        .filter(|(_, w)| *w > 0)
        .collect()
    }

    /// True when the mix holds stock (so ledger invariants apply).
    pub fn reserves(&self) -> bool {
        self.reserve_commit + self.reserve_release + self.reserve_expire + self.allocate > 0
    }

    /// A mix of one operation.
    pub fn only(op: Op) -> Mix {
        let mut m = Mix::default();
        match op {
            Op::Health => m.health = 1,
            Op::CheckStock => m.check_stock = 1,
            Op::Quote => m.quote = 1,
            Op::ReserveCommit => m.reserve_commit = 1,
            Op::ReserveRelease => m.reserve_release = 1,
            Op::ReserveExpire => m.reserve_expire = 1,
            Op::Allocate => m.allocate = 1,
        }
        m
    }
}

/// Basket shape.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Basket {
    /// `[lines, weight]` pairs: how many distinct SKUs a basket has.
    pub lines: Vec<(u32, u32)>,
    /// `[quantity, weight]` pairs: units per line.
    pub quantities: Vec<(u32, u32)>,
}

impl Default for Basket {
    fn default() -> Self {
        Self {
            lines: vec![(1, 25), (2, 25), (3, 20), (5, 20), (10, 10)],
            quantities: vec![(1, 70), (2, 20), (3, 10)],
        }
    }
}

/// Which SKUs baskets name and how popular each is.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Skus {
    /// SKU text before the number.
    pub prefix: String,
    /// Digits of the zero-padded number.
    pub digits: usize,
    /// How many products (numbers 1 to `products`).
    pub products: u32,
    /// Zipf exponent: the k-th most popular product is drawn with weight
    /// 1/k^s. 0 = uniform; about 1 is typical of retail.
    pub zipf_s: f64,
}

impl Default for Skus {
    fn default() -> Self {
        Self {
            prefix: "SR-".into(),
            digits: 6,
            products: 100_000,
            zipf_s: 1.0,
        }
    }
}

/// A destination.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Destination {
    /// ISO 3166-1 alpha-2.
    pub country_code: String,
    /// Postal code.
    pub postal_code: String,
    /// Residential delivery.
    #[serde(default)]
    pub residential: bool,
}

fn dest(country_code: &str, postal_code: &str, residential: bool) -> Destination {
    Destination {
        country_code: country_code.into(),
        postal_code: postal_code.into(),
        residential,
    }
}

/// Where baskets ship to.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ShipTo {
    /// Share of domestic destinations, percent.
    pub domestic_pct: f64,
    /// Domestic destinations, drawn uniformly.
    pub domestic: Vec<Destination>,
    /// International destinations, drawn uniformly.
    pub international: Vec<Destination>,
}

impl Default for ShipTo {
    fn default() -> Self {
        Self {
            domestic_pct: 85.0,
            domestic: vec![
                dest("US", "10001", false),
                dest("US", "94105", true),
                dest("US", "60601", true),
                dest("US", "30301", false),
                dest("US", "73301", true),
            ],
            international: vec![
                dest("CA", "M5V 3L9", true),
                dest("GB", "SW1A 1AA", true),
                dest("DE", "10115", false),
                dest("MX", "06600", true),
            ],
        }
    }
}

/// Quote options sent with every Quote, Reserve and Allocate.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QuoteOpts {
    /// `cheapest`, `fastest` or `fewest_shipments`.
    pub objective: String,
    /// Accept a plan that leaves lines unfulfilled.
    pub allow_partial: bool,
    /// `realtime_budget_ms` (0 = the server's default).
    pub realtime_budget_ms: u32,
}

impl Default for QuoteOpts {
    fn default() -> Self {
        Self {
            objective: "cheapest".into(),
            allow_partial: true,
            realtime_budget_ms: 0,
        }
    }
}

/// Reservation flows.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Holds {
    /// `hold_seconds` of each Reserve.
    pub hold_secs: u32,
}

impl Default for Holds {
    fn default() -> Self {
        Self { hold_secs: 60 }
    }
}

/// What a run must meet.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Budget {
    /// Latency budget: corrected p99 of the judged RPCs, in milliseconds.
    pub p99_ms: f64,
    /// The RPC the latency budget and the knee judge; empty = every RPC in the mix.
    pub rpc: String,
    /// Largest share of calls that may fail, percent. Calls answered with a
    /// code in `answer_codes` or `shed_codes` are not failures.
    pub error_pct_max: f64,
    /// Status codes that are answers, not failures (an all-or-nothing quote
    /// that cannot be met is FAILED_PRECONDITION by contract).
    pub answer_codes: Vec<String>,
    /// Status codes of deliberate load shedding; counted apart, as refused.
    pub shed_codes: Vec<String>,
    /// Smallest share of the offered rate that must be achieved, percent.
    pub achieved_pct_min: f64,
}

impl Default for Budget {
    fn default() -> Self {
        Self {
            p99_ms: 10.0,
            rpc: String::new(),
            error_pct_max: 0.1,
            answer_codes: vec!["FAILED_PRECONDITION".into()],
            shed_codes: vec!["RESOURCE_EXHAUSTED".into()],
            achieved_pct_min: 95.0,
        }
    }
}

/// Knee search settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KneeSettings {
    /// First rate tried, per second.
    pub start_per_s: f64,
    /// Each step multiplies the rate by this until the budget breaks.
    pub growth: f64,
    /// Bisection steps between the last good and the first bad rate.
    pub refine_steps: u32,
    /// How many more times a step that breaks the budget is tried before it
    /// counts as broken (a passing try passes the step).
    pub confirm: u32,
    /// Warm-up of each step, seconds.
    pub warmup_s: f64,
    /// Measured time of each step, seconds.
    pub measure_s: f64,
    /// Highest rate tried.
    pub max_per_s: f64,
}

impl Default for KneeSettings {
    fn default() -> Self {
        Self {
            start_per_s: 500.0,
            growth: 1.5,
            refine_steps: 4,
            confirm: 1,
            warmup_s: 1.0,
            measure_s: 4.0,
            max_per_s: 200_000.0,
        }
    }
}

/// A whole scenario.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Shown in reports.
    pub name: String,
    /// Open or closed loop.
    #[serde(default = "default_mode")]
    pub mode: Mode,
    /// Open loop: arrivals per second. Closed loop: total pacing (0 = as fast
    /// as answers come).
    #[serde(default)]
    pub rate_per_s: f64,
    /// Closed loop: concurrent callers.
    #[serde(default = "default_workers")]
    pub workers: u32,
    /// HTTP/2 connections the calls spread over.
    #[serde(default = "default_connections")]
    pub connections: u32,
    /// Open loop: most calls in flight; an arrival beyond it is counted as
    /// `GENERATOR_BACKLOG` and not sent, so a dead server cannot exhaust memory.
    #[serde(default = "default_in_flight_max")]
    pub in_flight_max: u32,
    /// Warm-up before the first measured phase, seconds (not measured).
    #[serde(default = "default_warmup")]
    pub warmup_s: f64,
    /// Each measured phase, seconds.
    #[serde(default = "default_measure")]
    pub measure_s: f64,
    /// Measured phases (each with its own baseline phase before it).
    #[serde(default = "default_repeats")]
    pub repeats: u32,
    /// gRPC deadline of each call, milliseconds.
    #[serde(default = "default_timeout")]
    pub timeout_ms: u64,
    /// Seed of every random choice: the same seed sends the same requests.
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// Operation weights.
    #[serde(default)]
    pub mix: Mix,
    /// Basket shape.
    #[serde(default)]
    pub basket: Basket,
    /// SKU popularity.
    #[serde(default)]
    pub skus: Skus,
    /// Destinations.
    #[serde(default)]
    pub ship_to: ShipTo,
    /// Quote options.
    #[serde(default)]
    pub quote: QuoteOpts,
    /// Reservation flows.
    #[serde(default)]
    pub holds: Holds,
    /// Pass/fail limits.
    #[serde(default)]
    pub budget: Budget,
    /// Knee search.
    #[serde(default)]
    pub knee: KneeSettings,
}

fn default_mode() -> Mode {
    Mode::Open
}
fn default_workers() -> u32 {
    16
}
fn default_connections() -> u32 {
    4
}
fn default_in_flight_max() -> u32 {
    20_000
}
fn default_warmup() -> f64 {
    3.0
}
fn default_measure() -> f64 {
    10.0
}
fn default_repeats() -> u32 {
    3
}
fn default_timeout() -> u64 {
    2_000
}
fn default_seed() -> u64 {
    1
}

impl Scenario {
    /// Reads and checks a scenario file.
    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Scenario::parse(&text, &path.display().to_string())
    }

    /// Parses and checks scenario text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Scenario, ScenarioError> {
        let scenario: Scenario = toml::from_str(text).map_err(|e| ScenarioError::Parse {
            origin: origin.to_owned(),
            message: e.to_string(),
        })?;
        scenario.validate(origin)?;
        Ok(scenario)
    }

    /// The objective as the proto enum's value.
    pub fn objective(&self) -> i32 {
        objective_value(&self.quote.objective).unwrap_or(0)
    }

    /// The RPCs the latency budget judges.
    pub fn judged_rpc(&self) -> Option<Rpc> {
        Rpc::from_name(&self.budget.rpc)
    }

    fn validate(&self, origin: &str) -> Result<(), ScenarioError> {
        let bad = |key: &'static str, message: String| ScenarioError::Invalid {
            origin: origin.to_owned(),
            key,
            message,
        };
        let in_range = |key: &'static str, v: f64, lo: f64, hi: f64| {
            if v.is_finite() && v >= lo && v <= hi {
                Ok(())
            } else {
                Err(bad(key, format!("is {v}; expected {lo} to {hi}")))
            }
        };
        if self.name.trim().is_empty() {
            return Err(bad("name", "is empty".into()));
        }
        match self.mode {
            Mode::Open => in_range("rate_per_s", self.rate_per_s, 0.1, RATE_PER_S_MAX)?,
            Mode::Closed => in_range("rate_per_s", self.rate_per_s, 0.0, RATE_PER_S_MAX)?,
        }
        in_range(
            "workers",
            f64::from(self.workers),
            1.0,
            f64::from(WORKERS_MAX),
        )?;
        in_range("connections", f64::from(self.connections), 1.0, 1024.0)?;
        in_range("in_flight_max", f64::from(self.in_flight_max), 1.0, 1e6)?;
        in_range("warmup_s", self.warmup_s, 0.0, PHASE_SECS_MAX)?;
        in_range("measure_s", self.measure_s, 0.5, PHASE_SECS_MAX)?;
        in_range(
            "repeats",
            f64::from(self.repeats),
            1.0,
            f64::from(REPEATS_MAX),
        )?;
        in_range("timeout_ms", self.timeout_ms as f64, 1.0, 600_000.0)?;
        if self.mix.weighted().is_empty() {
            return Err(bad("mix", "gives no operation a weight".into()));
        }
        let weights_ok = |pairs: &[(u32, u32)], hi: u32| {
            !pairs.is_empty()
                && pairs.iter().any(|(_, w)| *w > 0)
                && pairs.iter().all(|(v, _)| (1..=hi).contains(v))
        };
        if !weights_ok(&self.basket.lines, BASKET_LINES_MAX) {
            return Err(bad(
                "basket.lines",
                format!("needs [lines, weight] pairs with 1 to {BASKET_LINES_MAX} lines and a weight above 0"),
            ));
        }
        if !weights_ok(&self.basket.quantities, 100_000) {
            return Err(bad(
                "basket.quantities",
                "needs [quantity, weight] pairs with quantity 1 to 100000 and a weight above 0"
                    .into(),
            ));
        }
        in_range(
            "skus.products",
            f64::from(self.skus.products),
            1.0,
            f64::from(PRODUCTS_MAX),
        )?;
        let most_lines = self.basket.lines.iter().map(|(l, _)| *l).max().unwrap_or(1);
        if most_lines > self.skus.products {
            return Err(bad(
                "basket.lines",
                format!(
                    "asks for {most_lines} distinct SKUs but skus.products is {}",
                    self.skus.products
                ),
            ));
        }
        in_range("skus.digits", self.skus.digits as f64, 0.0, 20.0)?;
        in_range("skus.zipf_s", self.skus.zipf_s, 0.0, 5.0)?;
        in_range(
            "ship_to.domestic_pct",
            self.ship_to.domestic_pct,
            0.0,
            100.0,
        )?;
        if self.ship_to.domestic_pct > 0.0 && self.ship_to.domestic.is_empty() {
            return Err(bad(
                "ship_to.domestic",
                "is empty but domestic_pct > 0".into(),
            ));
        }
        if self.ship_to.domestic_pct < 100.0 && self.ship_to.international.is_empty() {
            return Err(bad(
                "ship_to.international",
                "is empty but domestic_pct < 100".into(),
            ));
        }
        if objective_value(&self.quote.objective).is_none() {
            return Err(bad(
                "quote.objective",
                format!(
                    "is {:?}; expected cheapest, fastest or fewest_shipments",
                    self.quote.objective
                ),
            ));
        }
        in_range(
            "holds.hold_secs",
            f64::from(self.holds.hold_secs),
            1.0,
            86_400.0,
        )?;
        in_range("budget.p99_ms", self.budget.p99_ms, 0.001, 600_000.0)?;
        in_range(
            "budget.error_pct_max",
            self.budget.error_pct_max,
            0.0,
            100.0,
        )?;
        in_range(
            "budget.achieved_pct_min",
            self.budget.achieved_pct_min,
            0.0,
            100.0,
        )?;
        if !self.budget.rpc.is_empty() && self.judged_rpc().is_none() {
            return Err(bad(
                "budget.rpc",
                format!("{:?} is not an RPC name", self.budget.rpc),
            ));
        }
        for code in self
            .budget
            .answer_codes
            .iter()
            .chain(&self.budget.shed_codes)
        {
            if crate::stats::code_from_name(code).is_none() {
                return Err(bad(
                    "budget.answer_codes",
                    format!("{code:?} is not a gRPC status code name"),
                ));
            }
        }
        in_range(
            "knee.start_per_s",
            self.knee.start_per_s,
            0.1,
            RATE_PER_S_MAX,
        )?;
        in_range("knee.growth", self.knee.growth, 1.01, 10.0)?;
        in_range(
            "knee.refine_steps",
            f64::from(self.knee.refine_steps),
            0.0,
            20.0,
        )?;
        in_range("knee.confirm", f64::from(self.knee.confirm), 0.0, 5.0)?;
        in_range("knee.warmup_s", self.knee.warmup_s, 0.0, PHASE_SECS_MAX)?;
        in_range("knee.measure_s", self.knee.measure_s, 0.5, PHASE_SECS_MAX)?;
        in_range(
            "knee.max_per_s",
            self.knee.max_per_s,
            self.knee.start_per_s,
            RATE_PER_S_MAX,
        )?;
        Ok(())
    }
}

fn objective_value(name: &str) -> Option<i32> {
    match name.to_ascii_lowercase().as_str() {
        "" | "unspecified" => Some(0),
        "cheapest" => Some(1),
        "fastest" => Some(2),
        "fewest_shipments" => Some(3),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_minimal_scenario_takes_the_defaults() {
        let s = Scenario::parse("name = \"x\"\nrate_per_s = 100\n[mix]\nquote = 1\n", "t").unwrap();
        assert_eq!(s.mode, Mode::Open);
        assert_eq!(s.repeats, 3);
        assert_eq!(s.mix.weighted(), vec![(Op::Quote, 1)]);
        assert!(!s.mix.reserves());
    }

    #[test]
    fn bad_values_name_their_key() {
        let cases = [
            ("name = \"x\"\nrate_per_s = 0\n[mix]\nquote = 1\n", "rate_per_s"),
            ("name = \"x\"\nrate_per_s = 10\n", "mix"),
            (
                "name = \"x\"\nrate_per_s = 10\n[mix]\nquote = 1\n[basket]\nlines = [[0, 1]]\n",
                "basket.lines",
            ),
            (
                "name = \"x\"\nrate_per_s = 10\n[mix]\nquote = 1\n[budget]\nrpc = \"Nope\"\n",
                "budget.rpc",
            ),
            (
                "name = \"x\"\nrate_per_s = 10\n[mix]\nquote = 1\n[budget]\nanswer_codes = [\"NOPE\"]\n",
                "budget.answer_codes",
            ),
            (
                "name = \"x\"\nrate_per_s = 10\n[mix]\nquote = 1\n[quote]\nobjective = \"best\"\n",
                "quote.objective",
            ),
            ("name = \"x\"\nrate_per_s = 10\nbogus = 1\n", "bogus"),
        ];
        for (text, key) in cases {
            let err = Scenario::parse(text, "t").unwrap_err().to_string();
            assert!(err.contains(key), "{key}: {err}");
        }
    }

    #[test]
    fn the_shipped_scenarios_parse() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
        let mut seen = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "toml") {
                Scenario::load(&path).unwrap_or_else(|e| panic!("{e}"));
                seen += 1;
            }
        }
        assert!(seen >= 3, "only {seen} scenarios in {}", dir.display());
    }
}

//! Settings: a TOML file, then `STOCKROUTE_*` environment overrides.
//!
//! Every key has a default, so an empty file (or none) is a valid config. An
//! environment variable `STOCKROUTE_<SECTION>__<KEY>` overrides `[section] key`
//! (double underscore between levels, case-insensitive); its value is read as a
//! TOML literal when it parses as one (numbers, booleans) and as a string
//! otherwise. docs/configuration.md lists every key.

use std::path::{Path, PathBuf};

use rust_decimal::Decimal;
use serde::Deserialize;

use crate::limits;

/// Prefix of environment variables that override config keys.
pub const ENV_PREFIX: &str = "STOCKROUTE_";

/// A config that could not be read or does not make sense.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The TOML (after overrides) does not match the schema.
    #[error("invalid config{}: {message}", origin.as_deref().map(|p| format!(" {p}")).unwrap_or_default())]
    Invalid {
        /// The file, when there was one.
        origin: Option<String>,
        /// What is wrong, naming the key.
        message: String,
    },
    /// An environment override names no known key or has a bad value.
    #[error("environment override {var}: {message}")]
    Env {
        /// The variable.
        var: String,
        /// What is wrong.
        message: String,
    },
}

/// The whole configuration.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Listen addresses and server limits.
    pub server: ServerConfig,
    /// Where the world (catalog, suppliers, freight tables) comes from.
    pub data: DataConfig,
    /// Feed ingest behaviour.
    pub feeds: FeedsConfig,
    /// Quote behaviour.
    pub quote: QuoteConfig,
    /// Logging.
    pub log: LogConfig,
    /// Live carrier rating (FedEx, UPS); see docs/carriers.md.
    pub carriers: crate::adapters::http::carriers::CarriersConfig,
    /// The reservation ledger; see docs/reservations.md.
    pub ledger: LedgerConfig,
    /// Real-time supplier stock; see docs/suppliers.md.
    pub realtime: crate::adapters::http::suppliers::RealtimeConfig,
    /// Who may call (API keys and roles); see docs/security.md.
    pub auth: crate::auth::AuthConfig,
    /// TLS and mutual TLS on the gRPC port; see docs/security.md.
    pub tls: crate::adapters::grpc::tls::TlsConfig,
    /// Sending purchase orders to suppliers; see docs/reservations.md.
    pub purchase_orders: crate::adapters::http::purchase_orders::PurchaseOrdersConfig,
    /// Directory the config file was read from; relative data paths resolve against it.
    #[serde(skip)]
    pub base_dir: Option<PathBuf>,
}

/// `[server]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// gRPC listen address.
    pub grpc_addr: String,
    /// HTTP listen address (`/metrics`, `/healthz`, `/readyz`).
    pub http_addr: String,
    /// Largest gRPC message accepted, in bytes.
    pub max_message_bytes: usize,
    /// Concurrent HTTP/2 streams per connection.
    pub max_concurrent_streams: u32,
    /// TCP keepalive probes on accepted connections start after this idle
    /// time, in seconds (0 = off): finds peers that vanished without a FIN.
    pub tcp_keepalive_secs: u64,
    /// HTTP/2 PING sent on a connection idle this long, in seconds (0 = off):
    /// keeps idle connections through proxies and load balancers.
    pub http2_keepalive_interval_secs: u64,
    /// A PING unanswered this long closes the connection, in seconds.
    pub http2_keepalive_timeout_secs: u64,
    /// Largest block of request headers accepted, in bytes.
    pub max_header_list_bytes: u32,
    /// Calls served at once (health and reflection aside); more are refused
    /// with RESOURCE_EXHAUSTED at once.
    pub concurrency_max: usize,
    /// CPU shedding: while the process uses at least this percentage of the
    /// cores it may run on, only a share of the calls (all but health,
    /// reflection, Commit and Release) is admitted, cut by a quarter per
    /// busy sample (or one that woke `shed_lag_ms` late) and grown back by
    /// a twentieth per quiet one; the rest are refused at once with
    /// RESOURCE_EXHAUSTED. 0 = shedding off (both signals).
    pub shed_cpu_percent: u32,
    /// How often CPU use and the runtime's lateness are sampled for
    /// shedding, in ms.
    pub shed_interval_ms: u64,
    /// A sample that wakes at least this late (ms) counts as overload too,
    /// whatever the CPU use: tasks wait to run, because of this process's
    /// own queue or because the host gives its cores to others.
    pub shed_lag_ms: u64,
    /// Deadline of a call whose caller set none (or a later one).
    pub request_timeout_ms: u64,
    /// Deadline of an `IngestFeed` push whose caller set none (or a later one).
    pub feed_push_timeout_ms: u64,
    /// Calls a second allowed per client (key id, or IP address when auth is
    /// off); 0 = no limit.
    pub client_rate_per_sec: u32,
    /// Calls a client may make at once above its rate.
    pub client_burst: u32,
    /// After SIGTERM, how long health says NOT_SERVING while calls are still
    /// taken, so that load balancers stop sending before the port closes.
    pub drain_delay_ms: u64,
    /// How long SIGTERM waits for in-flight calls before exiting anyway.
    pub shutdown_grace_ms: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            grpc_addr: "0.0.0.0:50051".into(),
            http_addr: "0.0.0.0:9090".into(),
            max_message_bytes: limits::GRPC_MESSAGE_BYTES_MAX,
            max_concurrent_streams: 256,
            tcp_keepalive_secs: 60,
            http2_keepalive_interval_secs: 30,
            http2_keepalive_timeout_secs: 10,
            max_header_list_bytes: limits::HEADER_LIST_BYTES_MAX,
            concurrency_max: 64,
            shed_cpu_percent: 90,
            shed_interval_ms: 25,
            shed_lag_ms: 5,
            request_timeout_ms: 30_000,
            feed_push_timeout_ms: 900_000,
            client_rate_per_sec: 0,
            client_burst: 50,
            drain_delay_ms: 0,
            shutdown_grace_ms: 10_000,
        }
    }
}

/// `[data]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DataConfig {
    /// Directory holding the world; empty = the built-in demo world in memory.
    pub dir: Option<PathBuf>,
    /// Catalog CSV, relative to `dir`.
    pub catalog: String,
    /// Supplier registry TOML, relative to `dir`.
    pub suppliers: String,
    /// Freight tables directory, relative to `dir`.
    pub freight_dir: String,
    /// The merchant's currency; every price is in it.
    pub currency: String,
    /// Demo world size and seed, used when `dir` is empty.
    pub demo_suppliers: u32,
    /// Demo world product count.
    pub demo_products: u32,
    /// Demo world seed.
    pub demo_seed: u64,
    /// Start the fake FedEx and UPS APIs on loopback and rate against them
    /// (always on for the built-in demo world, unless carriers are configured).
    pub fake_carriers: bool,
}

impl Default for DataConfig {
    fn default() -> Self {
        Self {
            dir: None,
            catalog: "catalog.csv".into(),
            suppliers: "suppliers.toml".into(),
            freight_dir: "freight".into(),
            currency: "USD".into(),
            demo_suppliers: 120,
            demo_products: 100_000,
            demo_seed: 42,
            fake_carriers: false,
        }
    }
}

/// `[feeds]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FeedsConfig {
    /// A feed whose rejected rows exceed this share (percent) is refused whole.
    pub reject_threshold_pct: Decimal,
    /// Row errors kept in an `IngestReport`; the count covers all of them.
    pub errors_reported_max: usize,
    /// Timeout of one HTTP feed download.
    pub fetch_timeout_ms: u64,
    /// Largest feed accepted, in bytes (files, downloads and `IngestFeed`).
    pub feed_bytes_max: u64,
    /// Run the per-supplier schedules (off: only the first load and `IngestFeed`).
    pub schedule: bool,
}

impl Default for FeedsConfig {
    fn default() -> Self {
        Self {
            reject_threshold_pct: Decimal::from(5),
            errors_reported_max: 1000,
            fetch_timeout_ms: 120_000,
            feed_bytes_max: limits::FEED_BYTES_MAX,
            schedule: true,
        }
    }
}

/// `[quote]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QuoteConfig {
    /// How long a quote's `valid_until` lies ahead.
    pub valid_secs: u64,
    /// Most lines in one basket.
    pub basket_lines_max: usize,
    /// Most units of one line.
    pub line_quantity_max: u32,
    /// Time allowed for live carrier rates when the caller set no deadline.
    pub live_budget_ms: u64,
    /// Kept back from the caller's deadline for planning and the answer.
    pub deadline_reserve_ms: u64,
    /// Most time the planner searches for one quote's plans (the caller's
    /// deadline can only shorten it).
    pub planning_budget_ms: u64,
}

impl Default for QuoteConfig {
    fn default() -> Self {
        Self {
            valid_secs: 900,
            basket_lines_max: limits::BASKET_LINES_MAX,
            line_quantity_max: limits::LINE_QUANTITY_MAX,
            live_budget_ms: 1_500,
            deadline_reserve_ms: 20,
            planning_budget_ms: limits::PLANNING_BUDGET_MS,
        }
    }
}

/// Which reservation ledger serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LedgerKind {
    /// In-process and durable on local disk: one replica.
    Embedded,
    /// PostgreSQL (or a Postgres-wire database): shared by several replicas.
    Postgres,
}

/// `[ledger]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LedgerConfig {
    /// `"embedded"` or `"postgres"`.
    pub kind: LedgerKind,
    /// Journal directory of the embedded ledger. Unset: `<data.dir>/ledger`
    /// for a world directory, else a temporary directory removed at exit.
    pub dir: Option<PathBuf>,
    /// Hold time of a Reserve that asks for none.
    pub hold_secs_default: u32,
    /// Longest hold a Reserve may ask for.
    pub hold_secs_max: u32,
    /// A journal segment past this size is folded into a snapshot.
    pub segment_bytes_max: u64,
    /// Finished reservations and their idempotency keys are kept this long
    /// after their last change (at least 24).
    pub retention_hours: u32,
    /// Longest the expiry sweeper sleeps between looks.
    pub sweep_interval_ms: u64,
    /// Quotes kept for Reserve-from-quote.
    pub quote_cache_capacity: u64,
    /// Plans a Reserve or Allocate of a basket makes when other callers keep
    /// taking the stock it planned with.
    pub reserve_attempts_max: u32,
    /// Connection string of the PostgreSQL ledger: a URL
    /// (`postgres://user:password@host:5432/db`) or key=value pairs
    /// (`host=/run/postgresql dbname=stockroute`).
    pub postgres_url: String,
    /// Most connections one replica opens.
    pub postgres_pool_size: usize,
    /// Time allowed to open a connection, and to wait for a free one.
    pub postgres_connect_timeout_ms: u64,
    /// Time one ledger call may take in the database, retries included;
    /// past it the call answers UNAVAILABLE.
    pub postgres_call_budget_ms: u64,
    /// Learn other replicas' holds through LISTEN/NOTIFY (off for databases
    /// without it, e.g. CockroachDB; polling alone then).
    pub postgres_notify: bool,
    /// How often the holds cache is re-read in full, and the database
    /// probed for readiness.
    pub postgres_poll_ms: u64,
}

impl Default for LedgerConfig {
    fn default() -> Self {
        Self {
            kind: LedgerKind::Embedded,
            dir: None,
            hold_secs_default: 600,
            hold_secs_max: 3_600,
            segment_bytes_max: 64 * 1024 * 1024,
            retention_hours: 168,
            sweep_interval_ms: 1_000,
            quote_cache_capacity: 100_000,
            reserve_attempts_max: 3,
            postgres_url: String::new(),
            postgres_pool_size: 16,
            postgres_connect_timeout_ms: 2_000,
            postgres_call_budget_ms: 5_000,
            postgres_notify: true,
            postgres_poll_ms: 1_000,
        }
    }
}

/// `[log]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `tracing` filter directive, e.g. `info` or `stockroute=debug`; `RUST_LOG` wins.
    pub level: String,
    /// `text` or `json`.
    pub format: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            level: "info".into(),
            format: "text".into(),
        }
    }
}

impl Config {
    /// Reads `path` (when given) and applies the environment's overrides.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        let (text, origin) = match path {
            Some(p) => (
                std::fs::read_to_string(p).map_err(|source| ConfigError::Read {
                    path: p.to_path_buf(),
                    source,
                })?,
                Some(p.display().to_string()),
            ),
            None => (String::new(), None),
        };
        let vars = std::env::vars().filter(|(k, _)| k.starts_with(ENV_PREFIX));
        let mut config = Self::from_toml_with_env(&text, origin.as_deref(), vars)?;
        if let Some(p) = path {
            let base = p.parent().map(Path::to_path_buf).unwrap_or_default();
            config.base_dir = Some(base.clone());
            // A config that sits in a world written by `demo-data` names files
            // relative to itself; a config elsewhere names `data.dir`.
            if config.data.dir.is_none() && base.join(&config.data.catalog).exists() {
                config.data.dir = Some(base.clone());
            } else if let Some(dir) = config.data.dir.take() {
                config.data.dir = Some(if dir.is_relative() {
                    base.join(dir)
                } else {
                    dir
                });
            }
            if let Some(dir) = config.ledger.dir.take() {
                config.ledger.dir = Some(if dir.is_relative() {
                    base.join(dir)
                } else {
                    dir
                });
            }
        }
        Ok(config)
    }

    /// Parses TOML text, then applies `(variable, value)` overrides.
    pub fn from_toml_with_env(
        text: &str,
        origin: Option<&str>,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let invalid = |message: String| ConfigError::Invalid {
            origin: origin.map(str::to_owned),
            message,
        };
        let mut root: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| invalid(e.to_string()))?;
        let mut vars: Vec<(String, String)> = vars.into_iter().collect();
        // Sorted so that the outcome never depends on the environment's order.
        vars.sort();
        for (var, value) in vars {
            apply_override(&mut root, &var, &value)?;
        }
        let config =
            Config::deserialize(toml::Value::Table(root)).map_err(|e| invalid(e.to_string()))?;
        if config.server.shed_cpu_percent > 100 {
            return Err(invalid(format!(
                "server.shed_cpu_percent is {}: it is a share of the usable cores, 0 (off) to 100",
                config.server.shed_cpu_percent
            )));
        }
        Ok(config)
    }
}

/// Applies one `STOCKROUTE_SECTION__KEY=value` override to the TOML tree.
fn apply_override(root: &mut toml::Table, var: &str, value: &str) -> Result<(), ConfigError> {
    let env_err = |message: &str| ConfigError::Env {
        var: var.to_owned(),
        message: message.to_owned(),
    };
    let path = &var[ENV_PREFIX.len()..];
    let keys: Vec<String> = path.split("__").map(str::to_ascii_lowercase).collect();
    if keys.len() != 2 || keys.iter().any(String::is_empty) {
        return Err(env_err(
            "expected STOCKROUTE_<SECTION>__<KEY>, e.g. STOCKROUTE_SERVER__GRPC_ADDR",
        ));
    }
    // Unknown sections or keys are caught when the tree is deserialized, with
    // `deny_unknown_fields` naming the key.
    let section = root
        .entry(keys[0].clone())
        .or_insert_with(|| toml::Value::Table(toml::Table::new()));
    let toml::Value::Table(section) = section else {
        return Err(env_err("that config key is not a section"));
    };
    let parsed = format!("v = {value}")
        .parse::<toml::Table>()
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(value.to_owned()));
    // Strings stay strings where the key is a string, even if they look like numbers.
    let parsed = match (section.get(&keys[1]), parsed) {
        (Some(toml::Value::String(_)), v) if !v.is_str() => toml::Value::String(value.to_owned()),
        (_, v) => v,
    };
    section.insert(keys[1].clone(), parsed);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_config_has_contract_defaults() {
        let c = Config::from_toml_with_env("", None, []).unwrap();
        assert_eq!(c.server.grpc_addr, "0.0.0.0:50051");
        assert_eq!(c.server.http_addr, "0.0.0.0:9090");
        assert_eq!(c.feeds.reject_threshold_pct, Decimal::from(5));
        assert!(c.data.dir.is_none());
        assert_eq!(c.ledger.kind, LedgerKind::Embedded);
    }

    #[test]
    fn cpu_shedding_past_every_core_is_refused_by_name() {
        let err = Config::from_toml_with_env("[server]\nshed_cpu_percent = 150\n", None, [])
            .unwrap_err()
            .to_string();
        assert!(err.contains("server.shed_cpu_percent is 150"), "{err}");
        let off = Config::from_toml_with_env("[server]\nshed_cpu_percent = 0\n", None, []).unwrap();
        assert_eq!(off.server.shed_cpu_percent, 0);
    }

    #[test]
    fn ledger_settings_come_from_the_environment_too() {
        let c = Config::from_toml_with_env(
            "[ledger]\nkind = \"embedded\"\n",
            None,
            [
                ("STOCKROUTE_LEDGER__KIND".into(), "postgres".into()),
                (
                    "STOCKROUTE_LEDGER__POSTGRES_URL".into(),
                    "postgres://u@127.0.0.1:5432/db".into(),
                ),
                ("STOCKROUTE_LEDGER__POSTGRES_POOL_SIZE".into(), "4".into()),
            ],
        )
        .unwrap();
        assert_eq!(c.ledger.kind, LedgerKind::Postgres);
        assert_eq!(c.ledger.postgres_url, "postgres://u@127.0.0.1:5432/db");
        assert_eq!(c.ledger.postgres_pool_size, 4);
        let err = Config::from_toml_with_env("[ledger]\nkind = \"mysql\"\n", None, [])
            .unwrap_err()
            .to_string();
        assert!(err.contains("mysql"), "{err}");
    }

    #[test]
    fn env_overrides_file_values() {
        let c = Config::from_toml_with_env(
            "[server]\ngrpc_addr = \"127.0.0.1:1\"\n[feeds]\nreject_threshold_pct = 5\n",
            None,
            [
                ("STOCKROUTE_SERVER__GRPC_ADDR".into(), "127.0.0.1:7".into()),
                (
                    "STOCKROUTE_FEEDS__REJECT_THRESHOLD_PCT".into(),
                    "12.5".into(),
                ),
                ("STOCKROUTE_QUOTE__VALID_SECS".into(), "60".into()),
            ],
        )
        .unwrap();
        assert_eq!(c.server.grpc_addr, "127.0.0.1:7");
        assert_eq!(c.feeds.reject_threshold_pct, Decimal::new(125, 1));
        assert_eq!(c.quote.valid_secs, 60);
    }

    #[test]
    fn unknown_keys_are_named() {
        let err = Config::from_toml_with_env("[server]\ngrpc_adr = \"x\"\n", Some("a.toml"), [])
            .unwrap_err()
            .to_string();
        assert!(err.contains("grpc_adr"), "{err}");
        let err = Config::from_toml_with_env("", None, [("STOCKROUTE_NOPE".into(), "1".into())])
            .unwrap_err()
            .to_string();
        assert!(err.contains("STOCKROUTE_NOPE"), "{err}");
        let err =
            Config::from_toml_with_env("", None, [("STOCKROUTE_SERVER__NOPE".into(), "1".into())])
                .unwrap_err()
                .to_string();
        assert!(err.contains("nope"), "{err}");
    }
}

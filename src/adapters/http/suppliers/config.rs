//! `[realtime]`: how the real-time supplier gateway asks, caches and protects
//! itself. Per-supplier overrides sit in `suppliers.toml` (`realtime = { … }`).

use serde::Deserialize;

/// `[realtime]` (docs/suppliers.md lists every key).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RealtimeConfig {
    /// Ask real-time suppliers at all; off, every request uses feed data.
    pub enabled: bool,
    /// Time for real-time answers when the request names no `realtime_budget_ms`.
    pub budget_ms: u64,
    /// Kept back from the caller's gRPC deadline for planning and the answer.
    pub planning_reserve_ms: u64,
    /// Longest one supplier call may take, whatever the budget (also bounds
    /// background refreshes).
    pub timeout_ms: u64,
    /// How long a supplier's answer about an item is reused.
    pub cache_ttl_ms: u64,
    /// How long "unknown to the supplier" is reused.
    pub negative_ttl_ms: u64,
    /// Most items cached, across suppliers.
    pub cache_capacity: u64,
    /// Refresh a cached item in the background once it is this old (percent of
    /// `cache_ttl_ms`) and has been read `hot_hits` times; 0 turns refresh-ahead off.
    pub refresh_ahead_pct: u32,
    /// Reads of a cached item that make it hot enough to refresh ahead.
    pub hot_hits: u32,
    /// Batches in flight to one supplier at once; more wait within their budget.
    pub max_in_flight: usize,
    /// Consecutive failures that open a supplier's circuit.
    pub breaker_failures: u32,
    /// How long an open circuit refuses calls before one probe.
    pub breaker_open_ms: u64,
    /// A call cut off by the caller's budget counts against the supplier only
    /// when it had at least this long; a caller's tiny budget says nothing
    /// about the supplier.
    pub breaker_timeout_min_ms: u64,
    /// Retry once, within the budget, when the connection fails before any answer.
    pub retry_connect: bool,
    /// Send a second request when the first has taken longer than the
    /// supplier's observed p95, and take whichever answers first.
    pub hedge: bool,
    /// Answers observed before the p95 is trusted for hedging.
    pub hedge_min_samples: u32,
    /// Largest answer read from a supplier, in bytes.
    pub response_bytes_max: usize,
    /// How often fresh answers are written into the offer index.
    pub index_flush_ms: u64,
}

impl Default for RealtimeConfig {
    fn default() -> Self {
        RealtimeConfig {
            enabled: true,
            budget_ms: 150,
            planning_reserve_ms: 25,
            timeout_ms: 1_000,
            cache_ttl_ms: 5_000,
            negative_ttl_ms: 60_000,
            cache_capacity: 200_000,
            refresh_ahead_pct: 80,
            hot_hits: 3,
            max_in_flight: 16,
            breaker_failures: 5,
            breaker_open_ms: 5_000,
            breaker_timeout_min_ms: 20,
            retry_connect: true,
            hedge: false,
            hedge_min_samples: 20,
            response_bytes_max: 256 * 1024,
            index_flush_ms: 200,
        }
    }
}

impl RealtimeConfig {
    /// Checks the values that would make the gateway misbehave.
    pub fn validate(&self) -> Result<(), String> {
        if self.timeout_ms == 0 {
            return Err("realtime.timeout_ms must be positive".into());
        }
        if self.max_in_flight == 0 {
            return Err("realtime.max_in_flight must be at least 1".into());
        }
        if self.breaker_failures == 0 {
            return Err("realtime.breaker_failures must be at least 1".into());
        }
        if self.response_bytes_max < 1024 {
            return Err("realtime.response_bytes_max must be at least 1024".into());
        }
        if self.refresh_ahead_pct > 100 {
            return Err("realtime.refresh_ahead_pct must be 0 to 100".into());
        }
        if self.index_flush_ms == 0 {
            return Err("realtime.index_flush_ms must be positive".into());
        }
        Ok(())
    }
}

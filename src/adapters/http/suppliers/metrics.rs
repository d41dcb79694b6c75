//! Per-supplier metrics of the real-time gateway. Handles are taken once per
//! supplier, so the hot path does not build label sets.

use metrics::{Counter, Gauge, Histogram};

/// Every metric of one supplier.
pub(super) struct LinkMetrics {
    supplier: String,
    /// `stockroute_supplier_request_seconds`: one upstream attempt.
    pub latency: Histogram,
    /// `stockroute_supplier_timeouts_total`: calls with no answer in time.
    pub timeouts: Counter,
    /// `stockroute_supplier_cache_hits_total`: items answered from the cache.
    pub cache_hits: Counter,
    /// `stockroute_supplier_cache_misses_total`: items that needed the supplier.
    pub cache_misses: Counter,
    /// `stockroute_supplier_coalesced_total`: items that joined a call in flight.
    pub coalesced: Counter,
    /// `stockroute_supplier_retries_total`: attempts repeated after a connection failure.
    pub retries: Counter,
    /// `stockroute_supplier_hedges_total`: second requests sent after the p95.
    pub hedges: Counter,
    /// `stockroute_supplier_refreshes_total`: items refreshed ahead of expiry.
    pub refreshes: Counter,
    /// `stockroute_supplier_breaker_open`: 1 open or half-open, 0 closed.
    pub breaker: Gauge,
}

impl LinkMetrics {
    pub fn new(supplier: &str) -> Self {
        let s = supplier.to_owned();
        LinkMetrics {
            latency: metrics::histogram!("stockroute_supplier_request_seconds", "supplier" => s.clone()),
            timeouts: metrics::counter!("stockroute_supplier_timeouts_total", "supplier" => s.clone()),
            cache_hits: metrics::counter!("stockroute_supplier_cache_hits_total", "supplier" => s.clone()),
            cache_misses: metrics::counter!("stockroute_supplier_cache_misses_total", "supplier" => s.clone()),
            coalesced: metrics::counter!("stockroute_supplier_coalesced_total", "supplier" => s.clone()),
            retries: metrics::counter!("stockroute_supplier_retries_total", "supplier" => s.clone()),
            hedges: metrics::counter!("stockroute_supplier_hedges_total", "supplier" => s.clone()),
            refreshes: metrics::counter!("stockroute_supplier_refreshes_total", "supplier" => s.clone()),
            breaker: metrics::gauge!("stockroute_supplier_breaker_open", "supplier" => s.clone()),
            supplier: s,
        }
    }

    /// `stockroute_supplier_errors_total{reason}`: a call that failed.
    pub fn error(&self, reason: &'static str) {
        metrics::counter!("stockroute_supplier_errors_total", "supplier" => self.supplier.clone(), "reason" => reason)
            .increment(1);
    }

    /// `stockroute_supplier_items_dropped_total{reason}`: answered items not used.
    pub fn dropped(&self, reason: &'static str) {
        metrics::counter!("stockroute_supplier_items_dropped_total", "supplier" => self.supplier.clone(), "reason" => reason)
            .increment(1);
    }
}

/// Describes every metric once, for the exporter's HELP lines.
pub(super) fn describe() {
    metrics::describe_histogram!(
        "stockroute_supplier_request_seconds",
        metrics::Unit::Seconds,
        "Duration of one real-time stock attempt, per supplier"
    );
    metrics::describe_counter!(
        "stockroute_supplier_timeouts_total",
        "Real-time stock calls that got no answer within their budget, per supplier"
    );
    metrics::describe_counter!(
        "stockroute_supplier_errors_total",
        "Real-time stock calls that failed, by supplier and reason"
    );
    metrics::describe_counter!(
        "stockroute_supplier_items_dropped_total",
        "Items of real-time answers dropped as unusable, by supplier and reason"
    );
    metrics::describe_counter!(
        "stockroute_supplier_cache_hits_total",
        "Items answered from the real-time cache, per supplier"
    );
    metrics::describe_counter!(
        "stockroute_supplier_cache_misses_total",
        "Items not in the real-time cache, per supplier"
    );
    metrics::describe_counter!(
        "stockroute_supplier_coalesced_total",
        "Items that joined a real-time call already in flight, per supplier"
    );
    metrics::describe_counter!(
        "stockroute_supplier_retries_total",
        "Real-time attempts repeated after a connection failure, per supplier"
    );
    metrics::describe_counter!(
        "stockroute_supplier_hedges_total",
        "Hedged second requests sent after a supplier's observed p95"
    );
    metrics::describe_counter!(
        "stockroute_supplier_refreshes_total",
        "Hot cached items refreshed ahead of expiry, per supplier"
    );
    metrics::describe_gauge!(
        "stockroute_supplier_breaker_open",
        "1 while a supplier's circuit breaker is open or half-open"
    );
}

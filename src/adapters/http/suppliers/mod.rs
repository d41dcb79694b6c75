//! The suppliers' HTTP APIs (docs/suppliers.md): the real-time stock gateway
//! and the purchase-order endpoint. `wire` holds their JSON shapes; `fake` a
//! loopback server speaking both, for tests and the demo world.
//!
//! [`SupplierClients`] implements the domain's `StockGateway` port. For one
//! request it asks every supplier concurrently, one batched
//! `POST {base}/v1/stock` each, everything bounded by the caller's budget,
//! and never fails: what does not arrive in time, or arrives unusable, is
//! simply not in the answer, and the request goes on with cached or feed data.
//!
//! Per supplier:
//! - **Cache** (shared moka cache, `cache.rs`): answers per (supplier, SKU)
//!   for `cache_ttl_ms`, "unknown to the supplier" for `negative_ttl_ms`;
//!   only the items missing from it are asked. Hot items (read `hot_hits`
//!   times) past `refresh_ahead_pct` of their TTL are refreshed in the
//!   background while the cached answer is served.
//! - **Coalescing**: a call in flight is registered under each SKU it asks;
//!   a concurrent request needing one of them waits for that call instead of
//!   asking again. Calls run as their own tasks, so an answer still fills the
//!   cache when the request that started it has given up.
//! - **Resilience**: at most `max_in_flight` batches at once (more wait within
//!   their budget), a consecutive-failure circuit breaker with one half-open
//!   probe (`super::breaker`), one retry within the budget when the
//!   connection fails before an answer, an optional hedged second request
//!   once the first has taken longer than the supplier's observed p95, and a
//!   `response_bytes_max` cap read as the body streams in.
//! - **Untrusted answers** (`parse.rs`): a malformed, oversized or slow
//!   answer is dropped for the request; bad items are dropped one by one.
//!   Each drop is counted and logged with its reason (warnings at most once
//!   per supplier every [`WARN_EVERY`]; the rest at debug).
//!
//! Metrics (`metrics.rs`), all labelled `supplier`: request latency
//! histogram, timeouts, errors by reason, dropped items by reason, breaker
//! state, cache hits and misses (their ratio is the hit ratio), coalesced
//! items, retries, hedges, refreshes.

mod cache;
mod config;
pub mod fake;
mod latency;
mod metrics;
mod parse;
#[cfg(test)]
mod tests;
pub mod wire;

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::future::{BoxFuture, FutureExt, Shared};
use parking_lot::Mutex;
use tokio::sync::Semaphore;
use tokio::time::Instant;

use self::cache::{CachedItem, ItemCache};
use self::latency::LatencyTracker;
use self::metrics::LinkMetrics;
use self::wire::{StockRequest, StockRequestItem, STOCK_PATH};
use super::body::{self, BodyError};
use super::breaker::Breaker;
use crate::domain::catalog::ProductId;
use crate::domain::realtime::{
    AskOutcome, ItemAnswer, StockGateway, SupplierAnswer, SupplierQuestion,
};
use crate::domain::suppliers::{SupplierId, SupplierRegistry};

/// What one stock answer held, as [`parse_stock_answer`] reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AnswerCounts {
    /// Asked items the answer settles: known with stock and cost, or unknown (missing).
    pub answered: usize,
    /// Items dropped for a reason (wrong type, negative stock, unasked, ...).
    pub dropped: usize,
}

/// Parses a supplier's stock answer exactly as the client does, for the items
/// `asked` in `currency`: how much of it stands, or why it is unusable whole.
/// Suppliers are untrusted; this is the entry point the fuzz targets drive.
pub fn parse_stock_answer(
    body: &[u8],
    asked: &[&str],
    currency: &str,
) -> Result<AnswerCounts, String> {
    let asked: Vec<Arc<str>> = asked.iter().map(|s| Arc::from(*s)).collect();
    parse::stock_answer(body, &asked, currency).map(|a| AnswerCounts {
        answered: a.items.len(),
        dropped: a.dropped.len(),
    })
}

pub use self::config::RealtimeConfig;

/// Least time between two warnings about one supplier; the rest go to debug.
pub const WARN_EVERY: Duration = Duration::from_secs(10);
/// Prefix of a `base_url` that names a demo fake started by the service.
pub const FAKE_SCHEME: &str = "fake:";

/// Why [`SupplierClients::new`] refused a configuration.
#[derive(Debug, thiserror::Error)]
pub enum SupplierClientError {
    /// `[realtime]` makes no sense.
    #[error("{0}")]
    Config(String),
    /// A supplier's `realtime` entry makes no sense.
    #[error("supplier {supplier}: realtime: {message}")]
    Supplier {
        /// The supplier's id.
        supplier: String,
        /// What is wrong.
        message: String,
    },
    /// The HTTP client could not be built (TLS initialisation).
    #[error("building the HTTP client: {0}")]
    Client(String),
}

/// Why one call to a supplier gave nothing usable.
#[derive(Debug, Clone, PartialEq, Eq)]
enum CallError {
    /// No answer within the budget.
    Timeout,
    /// Every call slot was busy for the whole budget.
    Saturated,
    /// The circuit breaker is open.
    CircuitOpen,
    /// A non-success HTTP status.
    Http(u16),
    /// The answer was over `response_bytes_max`.
    TooLarge(usize),
    /// The answer could not be used (see `parse.rs`).
    Malformed(String),
    /// The connection failed before an answer (refused, reset, closed).
    Connect(String),
    /// The connection failed while the answer was arriving.
    Transport(String),
}

impl CallError {
    fn label(&self) -> &'static str {
        match self {
            CallError::Timeout => "timeout",
            CallError::Saturated => "saturated",
            CallError::CircuitOpen => "circuit_open",
            CallError::Http(s) if *s >= 500 => "http_5xx",
            CallError::Http(_) => "http_4xx",
            CallError::TooLarge(_) => "too_large",
            CallError::Malformed(_) => "malformed",
            CallError::Connect(_) => "connect",
            CallError::Transport(_) => "transport",
        }
    }

    /// What the request makes of it.
    fn outcome(&self) -> AskOutcome {
        match self {
            CallError::Timeout | CallError::Saturated => AskOutcome::TimedOut,
            other => AskOutcome::Failed(other.to_string()),
        }
    }

    /// Whether it says something about the supplier's health. A timeout
    /// counts only when the call had a fair amount of time (`fair_budget`).
    fn trips_breaker(&self, fair_budget: bool) -> bool {
        match self {
            CallError::Timeout => fair_budget,
            CallError::Http(s) => !(400..500).contains(s) || *s == 408 || *s == 429,
            CallError::Saturated | CallError::CircuitOpen => false,
            CallError::TooLarge(_)
            | CallError::Malformed(_)
            | CallError::Connect(_)
            | CallError::Transport(_) => true,
        }
    }
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallError::Timeout => f.write_str("timed out"),
            CallError::Saturated => f.write_str("every call slot busy"),
            CallError::CircuitOpen => f.write_str("circuit open"),
            CallError::Http(s) => write!(f, "HTTP {s}"),
            CallError::TooLarge(limit) => write!(f, "answer over {limit} bytes"),
            CallError::Malformed(m) => write!(f, "malformed answer: {m}"),
            CallError::Connect(m) => write!(f, "connection failed: {m}"),
            CallError::Transport(m) => write!(f, "transport: {m}"),
        }
    }
}

/// A usable answer: per asked SKU, what the supplier said (items it answered
/// badly are absent).
#[derive(Debug)]
struct Answer {
    as_of_s: u32,
    items: HashMap<Arc<str>, crate::domain::realtime::ItemState>,
}

type CallResult = Result<Answer, CallError>;

/// A call in flight, shared by every request that needs one of its SKUs.
#[derive(Clone)]
struct Flight {
    id: u64,
    result: Shared<BoxFuture<'static, Arc<CallResult>>>,
}

/// Everything about one real-time supplier.
struct Link {
    supplier: SupplierId,
    name: String,
    url: String,
    http: reqwest::Client,
    currency: String,
    /// Cap on one call, whatever the budget.
    timeout: Duration,
    hedge: bool,
    hedge_min_samples: u32,
    retry_connect: bool,
    response_bytes_max: usize,
    breaker_timeout_min: Duration,
    slots: Semaphore,
    breaker: Breaker,
    latency: LatencyTracker,
    cache: Option<ItemCache>,
    /// Calls in flight by SKU.
    flights: Mutex<HashMap<Arc<str>, Flight>>,
    next_flight: AtomicU64,
    metrics: LinkMetrics,
    /// When the next warning may be logged.
    warn_after: Mutex<Instant>,
}

/// The real-time clients of every supplier with a `realtime` entry.
pub struct SupplierClients {
    /// By dense supplier id; `None` for feed-only suppliers.
    links: Vec<Option<Arc<Link>>>,
    refresh_ahead_pct: u32,
    hot_hits: u32,
    cache_ttl: Duration,
}

impl fmt::Debug for SupplierClients {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SupplierClients")
            .field("suppliers", &self.links.iter().flatten().count())
            .finish()
    }
}

impl SupplierClients {
    /// Builds a client for every supplier of `registry` with a `realtime`
    /// entry; no network traffic. `base_urls` replaces a supplier's
    /// configured base URL (by supplier id): that is how `fake:` URLs are
    /// pointed at the demo world's fakes. A `fake:` URL left unreplaced, or
    /// a URL that is not http(s), is an error naming the supplier.
    pub fn new(
        config: &RealtimeConfig,
        registry: &SupplierRegistry,
        currency: &str,
        base_urls: &HashMap<String, String>,
    ) -> Result<SupplierClients, SupplierClientError> {
        config.validate().map_err(SupplierClientError::Config)?;
        metrics::describe();
        let builder = || {
            reqwest::Client::builder()
                .user_agent(concat!("stockroute/", env!("CARGO_PKG_VERSION")))
                .redirect(reqwest::redirect::Policy::none())
                .connect_timeout(Duration::from_millis(config.timeout_ms.min(2_000)))
                .pool_idle_timeout(Duration::from_secs(90))
                .tcp_nodelay(true)
        };
        let client_err = |e: reqwest::Error| SupplierClientError::Client(e.to_string());
        // One pool for HTTP/1.1 (and HTTP/2 where TLS negotiates it), one for
        // gateways that speak cleartext HTTP/2 only.
        let http1 = builder().build().map_err(client_err)?;
        let http2 = builder()
            .http2_prior_knowledge()
            .build()
            .map_err(client_err)?;
        let cache = cache::build(
            Duration::from_millis(config.cache_ttl_ms),
            Duration::from_millis(config.negative_ttl_ms),
            config.cache_capacity,
        );
        let mut links = Vec::with_capacity(registry.len());
        for (id, s) in registry.iter() {
            let Some(rt) = &s.realtime else {
                links.push(None);
                continue;
            };
            let bad = |message: String| SupplierClientError::Supplier {
                supplier: s.id.clone(),
                message,
            };
            let base = base_urls.get(&s.id).unwrap_or(&rt.base_url).trim();
            if base.starts_with(FAKE_SCHEME) {
                return Err(bad(format!(
                    "base_url `{base}` names a demo fake, and no fake suppliers are running"
                )));
            }
            let parsed = reqwest::Url::parse(base)
                .map_err(|e| bad(format!("base_url `{base}` is not a URL: {e}")))?;
            if !matches!(parsed.scheme(), "http" | "https") {
                return Err(bad(format!("base_url `{base}` is not http(s)")));
            }
            let timeout_ms = rt.timeout_ms.unwrap_or(config.timeout_ms);
            let max_in_flight = rt.max_in_flight.unwrap_or(config.max_in_flight);
            if timeout_ms == 0 || max_in_flight == 0 {
                return Err(bad("timeout_ms and max_in_flight must be positive".into()));
            }
            let metrics = LinkMetrics::new(&s.id);
            let breaker = Breaker::new(
                format!("supplier {}", s.id),
                config.breaker_failures,
                Duration::from_millis(config.breaker_open_ms),
                metrics.breaker.clone(),
            );
            links.push(Some(Arc::new(Link {
                supplier: id,
                name: s.id.clone(),
                url: format!("{}{STOCK_PATH}", base.trim_end_matches('/')),
                http: if rt.http2 {
                    http2.clone()
                } else {
                    http1.clone()
                },
                currency: currency.to_owned(),
                timeout: Duration::from_millis(timeout_ms),
                hedge: rt.hedge.unwrap_or(config.hedge),
                hedge_min_samples: config.hedge_min_samples,
                retry_connect: config.retry_connect,
                response_bytes_max: config.response_bytes_max,
                breaker_timeout_min: Duration::from_millis(config.breaker_timeout_min_ms),
                slots: Semaphore::new(max_in_flight),
                breaker,
                latency: LatencyTracker::new(),
                cache: cache.clone(),
                flights: Mutex::new(HashMap::new()),
                next_flight: AtomicU64::new(0),
                metrics,
                warn_after: Mutex::new(Instant::now()),
            })));
        }
        Ok(SupplierClients {
            links,
            refresh_ahead_pct: config.refresh_ahead_pct,
            hot_hits: config.hot_hits.max(1),
            cache_ttl: Duration::from_millis(config.cache_ttl_ms),
        })
    }

    /// Ids of the suppliers with a real-time client.
    pub fn suppliers(&self) -> Vec<SupplierId> {
        self.links.iter().flatten().map(|l| l.supplier).collect()
    }

    /// Whether `supplier`'s circuit is closed; `None` when it has no client.
    pub fn breaker_closed(&self, supplier: SupplierId) -> Option<bool> {
        self.link(supplier).map(|l| l.breaker.is_closed())
    }

    fn link(&self, supplier: SupplierId) -> Option<&Arc<Link>> {
        self.links
            .get(usize::from(supplier))
            .and_then(Option::as_ref)
    }

    /// One supplier's part of a request.
    async fn ask_one(&self, question: &SupplierQuestion, deadline: Instant) -> SupplierAnswer {
        let Some(link) = self.link(question.supplier) else {
            return SupplierAnswer {
                supplier: question.supplier,
                outcome: AskOutcome::Failed("no real-time gateway configured".into()),
                items: Vec::new(),
            };
        };
        let mut items = Vec::with_capacity(question.items.len());
        let mut need: Vec<(Arc<str>, ProductId, u32)> = Vec::new();
        let mut hot: Vec<(Arc<str>, u32)> = Vec::new();
        for q in &question.items {
            let sku: Arc<str> = Arc::from(q.supplier_sku.as_str());
            let hit = match &link.cache {
                Some(cache) => cache.get(&(link.supplier, Arc::clone(&sku))).await,
                None => None,
            };
            match hit {
                Some(hit) => {
                    link.metrics.cache_hits.increment(1);
                    items.push(ItemAnswer {
                        product: q.product,
                        state: hit.state,
                        as_of_s: hit.as_of_s,
                        cached: true,
                    });
                    if self.is_hot(&hit) {
                        hot.push((sku, q.quantity));
                    }
                }
                None => {
                    link.metrics.cache_misses.increment(1);
                    need.push((sku, q.product, q.quantity));
                }
            }
        }
        if !hot.is_empty() {
            link.refresh(hot);
        }
        if need.is_empty() {
            return SupplierAnswer {
                supplier: question.supplier,
                outcome: AskOutcome::Cached,
                items,
            };
        }
        if Instant::now() >= deadline {
            return SupplierAnswer {
                supplier: question.supplier,
                outcome: AskOutcome::TimedOut,
                items,
            };
        }
        let (flights, covering) = link.start_or_join(&need, deadline);
        let waited = tokio::time::timeout_at(
            deadline,
            futures::future::join_all(flights.iter().map(|f| f.result.clone())),
        )
        .await;
        // A call that finished in time answers even when another did not.
        let results: Vec<Option<Arc<CallResult>>> = match waited {
            Ok(all) => all.into_iter().map(Some).collect(),
            Err(_) => flights.iter().map(|f| f.result.peek().cloned()).collect(),
        };
        let mut outcome = AskOutcome::Answered;
        for r in &results {
            let this = match r.as_deref() {
                None => AskOutcome::TimedOut,
                Some(Ok(_)) => AskOutcome::Answered,
                Some(Err(e)) => e.outcome(),
            };
            // Timed out outranks failed, which outranks answered.
            outcome = match (&outcome, this) {
                (AskOutcome::TimedOut, _) => AskOutcome::TimedOut,
                (_, AskOutcome::TimedOut) => AskOutcome::TimedOut,
                (AskOutcome::Failed(_), _) => outcome,
                (_, failed @ AskOutcome::Failed(_)) => failed,
                (_, other) => other,
            };
        }
        for ((sku, product, _), &f) in need.iter().zip(&covering) {
            let Some(Some(result)) = results.get(f) else {
                continue;
            };
            let Ok(answer) = result.as_ref() else {
                continue;
            };
            if let Some(&state) = answer.items.get(sku) {
                items.push(ItemAnswer {
                    product: *product,
                    state,
                    as_of_s: answer.as_of_s,
                    cached: false,
                });
            }
        }
        SupplierAnswer {
            supplier: question.supplier,
            outcome,
            items,
        }
    }

    /// Whether a cache hit should be refreshed ahead of its expiry.
    fn is_hot(&self, hit: &CachedItem) -> bool {
        if self.refresh_ahead_pct == 0 {
            return false;
        }
        let reads = hit.hit();
        let due = self.cache_ttl * self.refresh_ahead_pct / 100;
        reads >= self.hot_hits && hit.stored.elapsed() >= due
    }
}

impl StockGateway for SupplierClients {
    fn ask<'a>(
        &'a self,
        questions: &'a [SupplierQuestion],
        budget: Duration,
    ) -> BoxFuture<'a, Vec<SupplierAnswer>> {
        Box::pin(async move {
            let now = Instant::now();
            let deadline = now
                .checked_add(budget)
                .unwrap_or(now + Duration::from_secs(3600));
            futures::future::join_all(questions.iter().map(|q| self.ask_one(q, deadline))).await
        })
    }
}

impl Link {
    /// The calls that will answer `need`: calls in flight for some SKUs, and
    /// one new call for the rest. Also says, per item of `need`, which of the
    /// returned calls covers it.
    fn start_or_join(
        self: &Arc<Self>,
        need: &[(Arc<str>, ProductId, u32)],
        deadline: Instant,
    ) -> (Vec<Flight>, Vec<usize>) {
        let mut flights = self.flights.lock();
        let mut joined: Vec<Flight> = Vec::new();
        let mut covering = Vec::with_capacity(need.len());
        let mut fresh: Vec<(Arc<str>, u32)> = Vec::new();
        let new_index = usize::MAX;
        for (sku, _, quantity) in need {
            match flights.get(sku) {
                Some(f) => {
                    self.metrics.coalesced.increment(1);
                    let at = match joined.iter().position(|j| j.id == f.id) {
                        Some(at) => at,
                        None => {
                            joined.push(f.clone());
                            joined.len() - 1
                        }
                    };
                    covering.push(at);
                }
                None => {
                    fresh.push((Arc::clone(sku), *quantity));
                    covering.push(new_index);
                }
            }
        }
        if !fresh.is_empty() {
            let flight = self.launch(fresh.clone(), deadline);
            for (sku, _) in &fresh {
                flights.insert(Arc::clone(sku), flight.clone());
            }
            joined.push(flight);
            let at = joined.len() - 1;
            for c in &mut covering {
                if *c == new_index {
                    *c = at;
                }
            }
        }
        (joined, covering)
    }

    /// Refreshes hot items in the background, unless a call already asks them.
    fn refresh(self: &Arc<Self>, hot: Vec<(Arc<str>, u32)>) {
        let mut flights = self.flights.lock();
        let fresh: Vec<(Arc<str>, u32)> = hot
            .into_iter()
            .filter(|(sku, _)| !flights.contains_key(sku))
            .collect();
        if fresh.is_empty() {
            return;
        }
        self.metrics.refreshes.increment(fresh.len() as u64);
        let flight = self.launch(fresh.clone(), Instant::now() + self.timeout);
        for (sku, _) in &fresh {
            flights.insert(Arc::clone(sku), flight.clone());
        }
    }

    /// Starts one call as its own task. The caller holds `flights`.
    fn launch(self: &Arc<Self>, items: Vec<(Arc<str>, u32)>, deadline: Instant) -> Flight {
        let id = self.next_flight.fetch_add(1, Ordering::Relaxed);
        let deadline = deadline.min(Instant::now() + self.timeout);
        let link = Arc::clone(self);
        let task = tokio::spawn(async move {
            let result = link.fetch(&items, deadline).await;
            link.settle(id, &items, &result).await;
            Arc::new(result)
        });
        let result: BoxFuture<'static, Arc<CallResult>> = Box::pin(async move {
            task.await.unwrap_or_else(|e| {
                Arc::new(Err(CallError::Transport(format!("call stopped: {e}"))))
            })
        });
        Flight {
            id,
            result: result.shared(),
        }
    }

    /// Caches a call's answer, then retires the call: a request arriving in
    /// between finds either the call or the cache.
    async fn settle(&self, id: u64, items: &[(Arc<str>, u32)], result: &CallResult) {
        if let (Ok(answer), Some(cache)) = (result, &self.cache) {
            for (sku, &state) in &answer.items {
                cache
                    .insert(
                        (self.supplier, Arc::clone(sku)),
                        Arc::new(CachedItem::new(state, answer.as_of_s)),
                    )
                    .await;
            }
        }
        let mut flights = self.flights.lock();
        for (sku, _) in items {
            if flights.get(sku).is_some_and(|f| f.id == id) {
                flights.remove(sku);
            }
        }
    }

    /// One call: a slot, the breaker, the exchange, the verdict.
    async fn fetch(&self, items: &[(Arc<str>, u32)], deadline: Instant) -> CallResult {
        let started = Instant::now();
        let Ok(Ok(_slot)) = tokio::time::timeout_at(deadline, self.slots.acquire()).await else {
            self.metrics.timeouts.increment(1);
            self.metrics.error(CallError::Saturated.label());
            return Err(CallError::Saturated);
        };
        let Some(permit) = self.breaker.try_acquire() else {
            self.metrics.error(CallError::CircuitOpen.label());
            return Err(CallError::CircuitOpen);
        };
        let request = StockRequest {
            items: items
                .iter()
                .map(|(sku, quantity)| StockRequestItem {
                    supplier_sku: sku.to_string(),
                    quantity: *quantity,
                })
                .collect(),
        };
        let body = Bytes::from(serde_json::to_vec(&request).unwrap_or_default());
        let result = self.exchange(&body, deadline).await.and_then(|bytes| {
            let asked: Vec<Arc<str>> = items.iter().map(|(sku, _)| Arc::clone(sku)).collect();
            let parsed = parse::stock_answer(&bytes, &asked, &self.currency)
                .map_err(CallError::Malformed)?;
            for d in &parsed.dropped {
                self.metrics.dropped(d.reason.label());
                self.warn(format_args!("item dropped: {}", d.detail), d.reason.label());
            }
            Ok(Answer {
                as_of_s: parsed.as_of_s,
                items: parsed.items,
            })
        });
        match &result {
            Ok(_) => permit.success(),
            Err(e) => {
                if *e == CallError::Timeout {
                    self.metrics.timeouts.increment(1);
                }
                self.metrics.error(e.label());
                self.warn(format_args!("real-time call failed: {e}"), e.label());
                let fair = deadline.saturating_duration_since(started) >= self.breaker_timeout_min;
                if e.trips_breaker(fair) {
                    permit.failure();
                } else {
                    permit.success();
                }
            }
        }
        result
    }

    /// The HTTP exchange, hedged once the first attempt has taken longer than
    /// the supplier's p95: whichever answers usably first wins.
    async fn exchange(&self, body: &Bytes, deadline: Instant) -> Result<Vec<u8>, CallError> {
        let first = self.attempt_with_retry(body, deadline);
        let after = match (self.hedge, self.latency.p95(self.hedge_min_samples)) {
            (true, Some(p95)) if Instant::now() + p95 < deadline => p95,
            _ => return first.await,
        };
        tokio::pin!(first);
        tokio::select! {
            r = &mut first => return r,
            _ = tokio::time::sleep(after) => {}
        }
        self.metrics.hedges.increment(1);
        let second = self.attempt_with_retry(body, deadline);
        tokio::pin!(second);
        tokio::select! {
            r = &mut first => match r {
                Ok(b) => Ok(b),
                Err(_) => second.await,
            },
            r = &mut second => match r {
                Ok(b) => Ok(b),
                Err(_) => first.await,
            },
        }
    }

    /// One attempt, repeated once when the connection fails before any answer.
    async fn attempt_with_retry(
        &self,
        body: &Bytes,
        deadline: Instant,
    ) -> Result<Vec<u8>, CallError> {
        match self.attempt(body, deadline).await {
            Err(CallError::Connect(why)) if self.retry_connect && Instant::now() < deadline => {
                tracing::debug!(supplier = %self.name, reason = %why, "retrying after a connection failure");
                self.metrics.retries.increment(1);
                self.attempt(body, deadline).await
            }
            other => other,
        }
    }

    /// One HTTP attempt within the deadline, body read under the size cap.
    async fn attempt(&self, body: &Bytes, deadline: Instant) -> Result<Vec<u8>, CallError> {
        let started = Instant::now();
        let call = async {
            let resp = self
                .http
                .post(&self.url)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .header(reqwest::header::ACCEPT, "application/json")
                .body(body.clone())
                .send()
                .await
                .map_err(|e| {
                    if e.is_timeout() {
                        CallError::Timeout
                    } else {
                        // No answer arrived: refused, reset or closed early.
                        CallError::Connect(body::error_chain(&e))
                    }
                })?;
            let status = resp.status();
            if !status.is_success() {
                return Err(CallError::Http(status.as_u16()));
            }
            body::read_limited(resp, self.response_bytes_max)
                .await
                .map_err(|e| match e {
                    BodyError::TooLarge(limit) => CallError::TooLarge(limit),
                    BodyError::Transport(e) if e.is_timeout() => CallError::Timeout,
                    BodyError::Transport(e) => CallError::Transport(body::error_chain(&e)),
                })
        };
        let result = tokio::time::timeout_at(deadline, call)
            .await
            .unwrap_or(Err(CallError::Timeout));
        let took = started.elapsed();
        self.metrics.latency.record(took.as_secs_f64());
        if result.is_ok() {
            self.latency.record(took);
        }
        result
    }

    /// Logs a warning about this supplier at most once every [`WARN_EVERY`];
    /// the others go to debug, so a hanging supplier cannot flood the log.
    fn warn(&self, message: fmt::Arguments<'_>, reason: &'static str) {
        let now = Instant::now();
        let mut after = self.warn_after.lock();
        if now >= *after {
            *after = now + WARN_EVERY;
            drop(after);
            tracing::warn!(supplier = %self.name, reason, "{message}");
        } else {
            drop(after);
            tracing::debug!(supplier = %self.name, reason, "{message}");
        }
    }
}

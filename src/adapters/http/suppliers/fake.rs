//! Fake suppliers on loopback, for tests and the demo world.
//!
//! One axum server (HTTP/1.1 and cleartext HTTP/2) hosts any number of fake
//! suppliers, each under its own path prefix: supplier `SUP003` lives at
//! `http://127.0.0.1:PORT/SUP003` ([`FakeSupplierServer::base_url`]), so that
//! its endpoints are the two of the supplier protocols (docs/suppliers.md):
//!
//! - `POST {base}/v1/stock`, body `{"items":[{"supplier_sku":"X","quantity":2}]}`, answers
//!   `{"as_of":"RFC3339","items":[{"supplier_sku":"X","available":5,"unit_cost":"12.34","currency":"USD"}]}`
//!   with one entry per asked item the supplier knows, in the order asked; unknown items are
//!   left out. A body that is not such a request is a 400.
//! - `POST {base}/v1/purchase-orders`, body a [`PurchaseOrderRequest`] (`po_number`,
//!   `order_ref`, `currency`, `lines[{supplier_sku, quantity, unit_cost}]`, optional
//!   `ship_to`). Idempotent by `po_number`: the first receipt is recorded and answered 201 with a
//!   [`PurchaseOrderAck`]; the same order again is answered 200 with the same acknowledgement
//!   and recorded once; a different order under a known `po_number` is a 409. A body that does
//!   not parse, an empty or over-long `po_number`, no lines, a zero quantity or a `unit_cost`
//!   that is not a non-negative decimal is a 400. Every accepted order takes its quantities off
//!   the supplier's stock (never below zero), so later stock answers show it.
//!   [`FakeSupplierServer::purchase_orders`] lists what a supplier received, in arrival order.
//!
//! Refusals carry `{"error": "..."}`. An unknown supplier prefix is a 404.
//!
//! ## Stock and determinism
//! A supplier answers from its items ([`FakeSupplierServer::add_supplier`],
//! [`FakeSupplierServer::set_item`]). [`items_from_feed_csv`] reads a feed file into items and
//! [`drifted`] moves them away from the feed the way stock moves between two hourly feeds
//! (some sold out, some sold down, some restocked, a few repriced), deterministically for a
//! seed, supplier and SKU. Injected latency and faults are drawn from a per-supplier generator
//! seeded from the server's seed and the supplier id, so a run with the same calls in the same
//! order behaves the same. `as_of` is the server's clock plus [`FakeBehaviour::as_of_offset_s`].
//!
//! ## Injected behaviour (per supplier, changeable at runtime with [`FakeSupplierServer::set_behaviour`])
//! First the [`Latency`] (none, fixed, uniform, a base with random spikes, or periodic stalls
//! placed exactly), then, on a
//! share `fault_per_mille` of the calls, the [`Fault`]:
//! - before the request is looked at: `Hang` (never answers until the server stops),
//!   `Status(s)` (answers `s` with an error body; a purchase order is not recorded);
//! - on the answer (a purchase order is recorded first): `SlowDrip` (the body in small chunks
//!   with a pause between them), `Oversized` (a valid answer padded to a given size, sent
//!   without a content length), `Malformed` (truncated JSON), `WrongTypes` (numbers as strings
//!   and the other way round), `NegativeStock` (every `available` negative).
//!
//! [`FakeSupplierServer::drop_next_connections`] closes the next connections as soon as they
//! are accepted, before any request is read, to exercise connection retries.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use futures::StreamExt;
use parking_lot::{Mutex, RwLock};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use rust_decimal::{Decimal, RoundingStrategy};
use serde_json::json;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::adapters::http::loopback::ServerTask;

use super::wire::{
    ErrorBody, PurchaseOrderAck, PurchaseOrderRequest, StockRequest, PURCHASE_ORDERS_PATH,
    STOCK_PATH,
};

/// Stock requests remembered per supplier for [`FakeSupplierServer::stock_requests`].
const REQUESTS_KEPT: usize = 1_000;
/// Longest `po_number` accepted.
const PO_NUMBER_BYTES_MAX: usize = 64;

/// What a fake supplier holds of one item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeItem {
    /// The supplier's own code.
    pub supplier_sku: String,
    /// Units it has.
    pub available: u32,
    /// Its price.
    pub unit_cost: Decimal,
}

/// How long a fake supplier takes before answering.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Latency {
    /// Answers at once.
    #[default]
    None,
    /// Always this long.
    Fixed(Duration),
    /// Uniformly between the two.
    Uniform {
        /// Shortest.
        min: Duration,
        /// Longest.
        max: Duration,
    },
    /// `base` usually; `spike` on `spike_per_mille` of the calls (a slow tail).
    Spiky {
        /// The usual latency.
        base: Duration,
        /// The latency of a slow call.
        spike: Duration,
        /// Slow calls per thousand.
        spike_per_mille: u32,
    },
    /// `slow` for the first call after the behaviour is set and every `n`-th
    /// after it, `base` otherwise (periodic stalls, exactly placed).
    EveryNth {
        /// The usual latency.
        base: Duration,
        /// The latency of a stalled call.
        slow: Duration,
        /// One call in `n` stalls (at least 1).
        n: u32,
    },
}

impl Latency {
    /// The latency of call number `call` (0-based since the behaviour was set).
    fn sample(&self, rng: &mut SmallRng, call: u64) -> Duration {
        match *self {
            Latency::None => Duration::ZERO,
            Latency::Fixed(d) => d,
            Latency::Uniform { min, max } if max > min => {
                let span = (max - min).as_micros() as u64;
                min + Duration::from_micros(rng.random_range(0..=span))
            }
            Latency::Uniform { min, .. } => min,
            Latency::Spiky {
                base,
                spike,
                spike_per_mille,
            } => {
                if rng.random_range(0..1000) < spike_per_mille {
                    spike
                } else {
                    base
                }
            }
            Latency::EveryNth { base, slow, n } => {
                if call.is_multiple_of(u64::from(n.max(1))) {
                    slow
                } else {
                    base
                }
            }
        }
    }
}

/// A misbehaviour a fake supplier can be told to show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Never answers (until the server stops).
    Hang,
    /// Answers with this HTTP status and an error body.
    Status(u16),
    /// Sends the answer `chunk_bytes` at a time with `pause` between chunks.
    SlowDrip {
        /// Bytes per chunk (at least 1).
        chunk_bytes: usize,
        /// Pause before each chunk.
        pause: Duration,
    },
    /// Pads a valid answer to `bytes` bytes, sent in chunks without a content length.
    Oversized {
        /// Total body size.
        bytes: usize,
    },
    /// Truncated JSON.
    Malformed,
    /// Well-formed JSON of the wrong types (`available` as a string, `unit_cost` as a number).
    WrongTypes,
    /// Every `available` is negative.
    NegativeStock,
}

/// A fake supplier's latency and faults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FakeBehaviour {
    /// Delay before every answer.
    pub latency: Latency,
    /// The fault to show, if any.
    pub fault: Option<Fault>,
    /// Calls per thousand that show the fault (1000: every call).
    pub fault_per_mille: u32,
    /// Seconds added to the clock for `as_of` (negative: answers about the past).
    pub as_of_offset_s: i64,
}

impl Default for FakeBehaviour {
    fn default() -> Self {
        FakeBehaviour {
            latency: Latency::None,
            fault: None,
            fault_per_mille: 1000,
            as_of_offset_s: 0,
        }
    }
}

impl FakeBehaviour {
    /// Well-behaved apart from `latency`.
    pub fn with_latency(latency: Latency) -> Self {
        FakeBehaviour {
            latency,
            ..FakeBehaviour::default()
        }
    }

    /// Shows `fault` on every call.
    pub fn with_fault(fault: Fault) -> Self {
        FakeBehaviour {
            fault: Some(fault),
            ..FakeBehaviour::default()
        }
    }
}

/// A purchase order as a fake supplier received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedPurchaseOrder {
    /// The order as sent.
    pub order: PurchaseOrderRequest,
    /// The acknowledgement given (the same for every repeat).
    pub ack: PurchaseOrderAck,
    /// How many times it was sent, the first included.
    pub times_received: u32,
}

/// Calls a fake supplier received (refused and faulty ones included).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FakeSupplierCalls {
    /// `POST /v1/stock` calls.
    pub stock: u64,
    /// Items asked across those calls.
    pub items_asked: u64,
    /// `POST /v1/purchase-orders` calls.
    pub purchase_orders: u64,
}

struct FakeSupplier {
    items: Mutex<HashMap<String, FakeItem>>,
    /// The behaviour, and the calls planned since it was set.
    behaviour: Mutex<(FakeBehaviour, u64)>,
    rng: Mutex<SmallRng>,
    stock_calls: AtomicU64,
    items_asked: AtomicU64,
    po_calls: AtomicU64,
    /// Supplier SKUs of each stock request, oldest first (bounded).
    requests: Mutex<Vec<Vec<String>>>,
    /// Purchase orders by `po_number`, and their arrival order.
    orders: Mutex<(HashMap<String, usize>, Vec<ReceivedPurchaseOrder>)>,
}

struct Shared {
    seed: u64,
    suppliers: RwLock<HashMap<String, Arc<FakeSupplier>>>,
    drop_connections: AtomicU32,
    /// Stock calls being answered now, and the most ever at once.
    in_flight: AtomicU64,
    peak_in_flight: AtomicU64,
    stopping: watch::Receiver<bool>,
}

/// Fake suppliers on one loopback port; stops when dropped or on [`FakeSupplierServer::shutdown`].
pub struct FakeSupplierServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stopping: watch::Sender<bool>,
    server: ServerTask,
}

impl std::fmt::Debug for FakeSupplierServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeSupplierServer")
            .field("addr", &self.addr)
            .field("suppliers", &self.shared.suppliers.read().len())
            .finish()
    }
}

/// Accepts connections, closing the ones [`FakeSupplierServer::drop_next_connections`] asks for.
struct FaultyListener {
    inner: TcpListener,
    shared: Arc<Shared>,
}

impl axum::serve::Listener for FaultyListener {
    type Io = TcpStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (TcpStream, SocketAddr) {
        loop {
            let (io, addr) = axum::serve::Listener::accept(&mut self.inner).await;
            let drop_it = self
                .shared
                .drop_connections
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok();
            if drop_it {
                drop(io);
                continue;
            }
            // Small answers should not wait for Nagle.
            let _ = io.set_nodelay(true);
            return (io, addr);
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.inner.local_addr()
    }
}

impl FakeSupplierServer {
    /// Binds 127.0.0.1 on a free port and starts serving, with no suppliers yet.
    /// `seed` drives injected latency and faults.
    pub async fn start(seed: u64) -> std::io::Result<FakeSupplierServer> {
        let (stopping, stopping_rx) = watch::channel(false);
        let shared = Arc::new(Shared {
            seed,
            suppliers: RwLock::new(HashMap::new()),
            drop_connections: AtomicU32::new(0),
            in_flight: AtomicU64::new(0),
            peak_in_flight: AtomicU64::new(0),
            stopping: stopping_rx,
        });
        let router = Router::new()
            .route(&format!("/{{supplier}}{STOCK_PATH}"), post(stock))
            .route(
                &format!("/{{supplier}}{PURCHASE_ORDERS_PATH}"),
                post(purchase_order),
            )
            .with_state(Arc::clone(&shared));
        let listener = FaultyListener {
            inner: TcpListener::bind(("127.0.0.1", 0)).await?,
            shared: Arc::clone(&shared),
        };
        let addr = axum::serve::Listener::local_addr(&listener)?;
        Ok(FakeSupplierServer {
            addr,
            shared,
            stopping,
            server: ServerTask::spawn(listener, router, "fake suppliers"),
        })
    }

    /// Adds (or replaces) supplier `id` with these items and good behaviour;
    /// returns its base URL.
    pub fn add_supplier(&self, id: &str, items: Vec<FakeItem>) -> String {
        let mut seed_rng = SmallRng::seed_from_u64(self.shared.seed ^ fnv1a(id.as_bytes()));
        let supplier = FakeSupplier {
            items: Mutex::new(
                items
                    .into_iter()
                    .map(|i| (i.supplier_sku.clone(), i))
                    .collect(),
            ),
            behaviour: Mutex::new((FakeBehaviour::default(), 0)),
            rng: Mutex::new(SmallRng::seed_from_u64(seed_rng.random())),
            stock_calls: AtomicU64::new(0),
            items_asked: AtomicU64::new(0),
            po_calls: AtomicU64::new(0),
            requests: Mutex::new(Vec::new()),
            orders: Mutex::new((HashMap::new(), Vec::new())),
        };
        self.shared
            .suppliers
            .write()
            .insert(id.to_owned(), Arc::new(supplier));
        self.base_url(id)
    }

    /// `http://127.0.0.1:PORT/{id}`, the base URL of supplier `id`.
    pub fn base_url(&self, id: &str) -> String {
        format!("http://{}/{}", self.addr, id)
    }

    /// The server's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn supplier(&self, id: &str) -> Option<Arc<FakeSupplier>> {
        self.shared.suppliers.read().get(id).cloned()
    }

    /// Sets supplier `id`'s latency and faults; unknown ids are ignored.
    pub fn set_behaviour(&self, id: &str, behaviour: FakeBehaviour) {
        if let Some(s) = self.supplier(id) {
            *s.behaviour.lock() = (behaviour, 0);
        }
    }

    /// Sets (adds or replaces) one item of supplier `id`.
    pub fn set_item(&self, id: &str, item: FakeItem) {
        if let Some(s) = self.supplier(id) {
            s.items.lock().insert(item.supplier_sku.clone(), item);
        }
    }

    /// Removes one item: the supplier no longer knows it.
    pub fn remove_item(&self, id: &str, supplier_sku: &str) {
        if let Some(s) = self.supplier(id) {
            s.items.lock().remove(supplier_sku);
        }
    }

    /// One item of supplier `id` as it stands.
    pub fn item(&self, id: &str, supplier_sku: &str) -> Option<FakeItem> {
        self.supplier(id)
            .and_then(|s| s.items.lock().get(supplier_sku).cloned())
    }

    /// Calls supplier `id` received.
    pub fn calls(&self, id: &str) -> FakeSupplierCalls {
        self.supplier(id)
            .map(|s| FakeSupplierCalls {
                stock: s.stock_calls.load(Ordering::SeqCst),
                items_asked: s.items_asked.load(Ordering::SeqCst),
                purchase_orders: s.po_calls.load(Ordering::SeqCst),
            })
            .unwrap_or_default()
    }

    /// The supplier SKUs of each well-formed stock request supplier `id` received, oldest first
    /// (the last 1,000).
    pub fn stock_requests(&self, id: &str) -> Vec<Vec<String>> {
        self.supplier(id)
            .map(|s| s.requests.lock().clone())
            .unwrap_or_default()
    }

    /// Purchase orders supplier `id` recorded, in arrival order.
    pub fn purchase_orders(&self, id: &str) -> Vec<ReceivedPurchaseOrder> {
        self.supplier(id)
            .map(|s| s.orders.lock().1.clone())
            .unwrap_or_default()
    }

    /// The most stock calls (across suppliers) that were being answered at once.
    pub fn peak_concurrent_stock_calls(&self) -> u64 {
        self.shared.peak_in_flight.load(Ordering::SeqCst)
    }

    /// Closes the next `n` connections as soon as they are accepted.
    pub fn drop_next_connections(&self, n: u32) {
        self.shared.drop_connections.store(n, Ordering::SeqCst);
    }

    /// Stops accepting connections, ends hanging answers and waits (up to a second) for the
    /// server task.
    pub async fn shutdown(mut self) {
        let _ = self.stopping.send(true);
        self.server.stop().await;
    }
}

impl Drop for FakeSupplierServer {
    fn drop(&mut self) {
        // Hanging answers end; the server task stops with `server`.
        let _ = self.stopping.send(true);
    }
}

/// Reads a supplier feed CSV (columns `supplier_sku`, `qty`, `unit_cost`, in any order, others
/// ignored) into items. Rows that do not parse are skipped; a file without those columns is an
/// error naming the missing one.
pub fn items_from_feed_csv(bytes: &[u8]) -> Result<Vec<FakeItem>, String> {
    let mut rdr = csv::ReaderBuilder::new().flexible(true).from_reader(bytes);
    let header = rdr.byte_headers().map_err(|e| e.to_string())?.clone();
    let col = |name: &str| {
        header
            .iter()
            .position(|h| h.trim_ascii().eq_ignore_ascii_case(name.as_bytes()))
            .ok_or_else(|| format!("feed has no `{name}` column"))
    };
    let (sku, qty, cost) = (col("supplier_sku")?, col("qty")?, col("unit_cost")?);
    let mut items = Vec::new();
    let mut record = csv::ByteRecord::new();
    while rdr
        .read_byte_record(&mut record)
        .map_err(|e| e.to_string())?
    {
        let field = |i: usize| {
            record
                .get(i)
                .and_then(|f| std::str::from_utf8(f).ok())
                .map(str::trim)
        };
        let parsed = (|| {
            let supplier_sku = field(sku).filter(|s| !s.is_empty())?.to_owned();
            let available = field(qty)?.parse().ok()?;
            let unit_cost: Decimal = field(cost)?.parse().ok()?;
            (!unit_cost.is_sign_negative()).then_some(FakeItem {
                supplier_sku,
                available,
                unit_cost,
            })
        })();
        items.extend(parsed);
    }
    Ok(items)
}

/// `items` as they might stand some time after the feed was written: per item, decided by a hash
/// of `seed`, `supplier_id` and its SKU, one in eight has sold out, one in eight has sold a few
/// units, one in eight has been restocked, and one in ten costs 3 % more; the rest are unchanged.
pub fn drifted(seed: u64, supplier_id: &str, items: Vec<FakeItem>) -> Vec<FakeItem> {
    let base = seed ^ fnv1a(supplier_id.as_bytes()).rotate_left(17);
    items
        .into_iter()
        .map(|mut item| {
            let h = splitmix(base ^ fnv1a(item.supplier_sku.as_bytes()));
            let amount = ((h >> 8) % 10) as u32 + 1;
            item.available = match h % 8 {
                0 => 0,
                1 => item.available.saturating_sub(amount),
                2 => item.available.saturating_add(amount * 5),
                _ => item.available,
            };
            if (h >> 32).is_multiple_of(10) {
                item.unit_cost = (item.unit_cost * Decimal::new(103, 2))
                    .round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero);
            }
            item
        })
        .collect()
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

// ---- handlers ----

fn json_response(status: StatusCode, body: impl Into<Body>) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.into(),
    )
        .into_response()
}

fn refuse(status: StatusCode, error: impl Into<String>) -> Response {
    let body = serde_json::to_string(&ErrorBody {
        error: error.into(),
    })
    .unwrap_or_default();
    json_response(status, body)
}

fn rfc3339(offset_s: i64) -> String {
    let at = time::OffsetDateTime::now_utc() + time::Duration::seconds(offset_s);
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// What one call will do, decided up front from the supplier's generator.
struct CallPlan {
    latency: Duration,
    fault: Option<Fault>,
    as_of_offset_s: i64,
}

impl FakeSupplier {
    fn plan(&self) -> CallPlan {
        let (b, call) = {
            let mut guard = self.behaviour.lock();
            guard.1 += 1;
            (guard.0, guard.1 - 1)
        };
        let mut rng = self.rng.lock();
        let latency = b.latency.sample(&mut rng, call);
        let fault = b
            .fault
            .filter(|_| b.fault_per_mille >= 1000 || rng.random_range(0..1000) < b.fault_per_mille);
        CallPlan {
            latency,
            fault,
            as_of_offset_s: b.as_of_offset_s,
        }
    }
}

impl Shared {
    fn supplier(&self, id: &str) -> Option<Arc<FakeSupplier>> {
        self.suppliers.read().get(id).cloned()
    }

    /// Latency, then the faults that come before the request is looked at.
    async fn before(&self, plan: &CallPlan) -> Option<Response> {
        if !plan.latency.is_zero() {
            tokio::time::sleep(plan.latency).await;
        }
        match plan.fault {
            Some(Fault::Hang) => {
                let mut stopping = self.stopping.clone();
                let _ = stopping.wait_for(|stop| *stop).await;
                Some(refuse(StatusCode::SERVICE_UNAVAILABLE, "shutting down"))
            }
            Some(Fault::Status(code)) => Some(refuse(
                StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                "injected failure",
            )),
            _ => None,
        }
    }
}

/// The answer `body`, as the plan's fault sends it.
fn deliver(status: StatusCode, body: String, fault: Option<Fault>) -> Response {
    match fault {
        Some(Fault::SlowDrip { chunk_bytes, pause }) => {
            let chunks: Vec<Bytes> = body
                .into_bytes()
                .chunks(chunk_bytes.max(1))
                .map(Bytes::copy_from_slice)
                .collect();
            let stream = futures::stream::iter(chunks).then(move |c| async move {
                tokio::time::sleep(pause).await;
                Ok::<_, std::io::Error>(c)
            });
            json_response(status, Body::from_stream(stream))
        }
        Some(Fault::Oversized { bytes }) => {
            // A valid document padded with white space inside the object.
            let mut padded = body.into_bytes();
            if let Some(end) = padded.pop() {
                padded.resize(bytes.max(padded.len() + 1) - 1, b' ');
                padded.push(end);
            }
            let chunks: Vec<Result<Bytes, std::io::Error>> = padded
                .chunks(64 * 1024)
                .map(|c| Ok(Bytes::copy_from_slice(c)))
                .collect();
            json_response(status, Body::from_stream(futures::stream::iter(chunks)))
        }
        Some(Fault::Malformed) => {
            let cut = body.len() / 2;
            json_response(status, body.into_bytes()[..cut].to_vec())
        }
        _ => json_response(status, body),
    }
}

/// The fake supplier a call is for, counted in `calls` (of that supplier),
/// and the call's plan, after its latency; or the early answer (unknown
/// supplier, hang, status fault).
async fn admit(
    s: &Shared,
    supplier: &str,
    calls: fn(&FakeSupplier) -> &AtomicU64,
) -> Result<(Arc<FakeSupplier>, CallPlan), Response> {
    let Some(sup) = s.supplier(supplier) else {
        return Err(refuse(
            StatusCode::NOT_FOUND,
            format!("no supplier `{supplier}`"),
        ));
    };
    calls(&sup).fetch_add(1, Ordering::SeqCst);
    let plan = sup.plan();
    match s.before(&plan).await {
        Some(early) => Err(early),
        None => Ok((sup, plan)),
    }
}

async fn stock(
    State(s): State<Arc<Shared>>,
    Path(supplier): Path<String>,
    body: Bytes,
) -> Response {
    let _in_flight = InFlight::enter(&s);
    let (sup, plan) = match admit(&s, &supplier, |f| &f.stock_calls).await {
        Ok(admitted) => admitted,
        Err(early) => return early,
    };
    let request: StockRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return refuse(StatusCode::BAD_REQUEST, format!("not a stock request: {e}")),
    };
    sup.items_asked
        .fetch_add(request.items.len() as u64, Ordering::SeqCst);
    {
        let mut requests = sup.requests.lock();
        if requests.len() >= REQUESTS_KEPT {
            requests.remove(0);
        }
        requests.push(
            request
                .items
                .iter()
                .map(|i| i.supplier_sku.clone())
                .collect(),
        );
    }
    let items: Vec<serde_json::Value> = {
        let known = sup.items.lock();
        request
            .items
            .iter()
            .filter_map(|asked| known.get(&asked.supplier_sku))
            .map(|item| match plan.fault {
                Some(Fault::WrongTypes) => json!({
                    "supplier_sku": item.supplier_sku,
                    "available": item.available.to_string(),
                    "unit_cost": item.unit_cost.to_string().parse::<f64>().unwrap_or(0.0),
                    "currency": "USD",
                }),
                Some(Fault::NegativeStock) => json!({
                    "supplier_sku": item.supplier_sku,
                    "available": -i64::from(item.available.max(1)),
                    "unit_cost": item.unit_cost.to_string(),
                    "currency": "USD",
                }),
                _ => json!({
                    "supplier_sku": item.supplier_sku,
                    "available": item.available,
                    "unit_cost": item.unit_cost.to_string(),
                    "currency": "USD",
                }),
            })
            .collect()
    };
    let body = json!({ "as_of": rfc3339(plan.as_of_offset_s), "items": items }).to_string();
    deliver(StatusCode::OK, body, plan.fault)
}

/// Counts a stock call as being answered until dropped.
struct InFlight<'a>(&'a Shared);

impl<'a> InFlight<'a> {
    fn enter(shared: &'a Shared) -> Self {
        let now = shared.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        shared.peak_in_flight.fetch_max(now, Ordering::SeqCst);
        InFlight(shared)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Why a purchase order is refused before it is recorded.
fn check_order(order: &PurchaseOrderRequest) -> Result<(), String> {
    let po = order.po_number.trim();
    if po.is_empty() || po.len() > PO_NUMBER_BYTES_MAX {
        return Err(format!(
            "po_number must be 1 to {PO_NUMBER_BYTES_MAX} bytes"
        ));
    }
    if order.lines.is_empty() {
        return Err("lines: at least one line is required".into());
    }
    for (i, line) in order.lines.iter().enumerate() {
        if line.supplier_sku.trim().is_empty() {
            return Err(format!("lines[{i}].supplier_sku is empty"));
        }
        if line.quantity == 0 {
            return Err(format!("lines[{i}].quantity must be at least 1"));
        }
        match line.unit_cost.trim().parse::<Decimal>() {
            Ok(d) if !d.is_sign_negative() => {}
            _ => {
                return Err(format!(
                    "lines[{i}].unit_cost `{}` is not a non-negative decimal",
                    line.unit_cost
                ))
            }
        }
    }
    Ok(())
}

async fn purchase_order(
    State(s): State<Arc<Shared>>,
    Path(supplier): Path<String>,
    body: Bytes,
) -> Response {
    let (sup, plan) = match admit(&s, &supplier, |f| &f.po_calls).await {
        Ok(admitted) => admitted,
        Err(early) => return early,
    };
    let order: PurchaseOrderRequest = match serde_json::from_slice(&body) {
        Ok(o) => o,
        Err(e) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                format!("not a purchase order: {e}"),
            )
        }
    };
    if let Err(why) = check_order(&order) {
        return refuse(StatusCode::BAD_REQUEST, why);
    }
    let (status, ack) = {
        let mut orders = sup.orders.lock();
        let (by_number, list) = &mut *orders;
        match by_number.get(&order.po_number).copied() {
            Some(i) if list[i].order == order => {
                list[i].times_received += 1;
                (StatusCode::OK, list[i].ack.clone())
            }
            Some(_) => {
                return refuse(
                    StatusCode::CONFLICT,
                    format!(
                        "po_number {} was already received with different contents",
                        order.po_number
                    ),
                )
            }
            None => {
                let ack = PurchaseOrderAck {
                    po_number: order.po_number.clone(),
                    status: "accepted".into(),
                    received_at: rfc3339(0),
                };
                {
                    let mut items = sup.items.lock();
                    for line in &order.lines {
                        if let Some(item) = items.get_mut(&line.supplier_sku) {
                            item.available = item.available.saturating_sub(line.quantity);
                        }
                    }
                }
                by_number.insert(order.po_number.clone(), list.len());
                list.push(ReceivedPurchaseOrder {
                    order,
                    ack: ack.clone(),
                    times_received: 1,
                });
                (StatusCode::CREATED, ack)
            }
        }
    };
    let body = match plan.fault {
        Some(Fault::WrongTypes) => json!({ "po_number": 12, "status": true }).to_string(),
        _ => serde_json::to_string(&ack).unwrap_or_default(),
    };
    deliver(status, body, plan.fault)
}

#[cfg(test)]
mod tests;

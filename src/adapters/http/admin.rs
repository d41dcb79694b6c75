//! `/metrics` (Prometheus text), `/healthz` (the process is up) and `/readyz`
//! (catalog loaded and every scheduled feed tried once; JSON detail names
//! failing feeds).

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use metrics_exporter_prometheus::PrometheusHandle;
use serde::Serialize;
use tokio::net::TcpListener;

use crate::domain::world::World;

/// Whether the first load has finished, whether the reservation ledger can
/// serve, and whether shutdown has begun.
#[derive(Debug, Default)]
pub struct Readiness {
    ready: AtomicBool,
    draining: AtomicBool,
    /// Why the ledger cannot serve, while it cannot.
    ledger_down: parking_lot::RwLock<Option<String>>,
}

impl Readiness {
    /// Marks the service ready.
    pub fn set_ready(&self) {
        self.ready.store(true, Ordering::SeqCst);
    }

    /// Marks the service as shutting down: not ready for new traffic from
    /// then on, whatever else holds.
    pub fn set_draining(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    /// Records whether the ledger can serve: `Some(reason)` while it cannot
    /// (its database unreachable), `None` once it can again.
    pub fn set_ledger_down(&self, reason: Option<String>) {
        *self.ledger_down.write() = reason;
    }

    /// Why the ledger cannot serve, if it cannot.
    pub fn ledger_down(&self) -> Option<String> {
        self.ledger_down.read().clone()
    }

    /// True once ready, while the ledger serves, until shutdown begins.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::SeqCst)
            && !self.draining.load(Ordering::SeqCst)
            && self.ledger_down.read().is_none()
    }

    /// True once shutdown has begun.
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }
}

#[derive(Clone)]
struct AdminState {
    world: Arc<World>,
    readiness: Arc<Readiness>,
    metrics: PrometheusHandle,
    /// Suppliers with a configured feed, by dense id.
    scheduled: Arc<Vec<u16>>,
}

#[derive(Serialize)]
struct FeedFailure {
    supplier: String,
    error: String,
}

#[derive(Serialize)]
struct ReadyDetail {
    ready: bool,
    draining: bool,
    /// `"ready"`, or why the reservation ledger cannot serve.
    ledger: String,
    products: usize,
    offers: u64,
    feeds_configured: usize,
    feeds_loaded: usize,
    feeds_pending: Vec<String>,
    feeds_failing: Vec<FeedFailure>,
}

/// Serves the operator endpoints on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    world: Arc<World>,
    readiness: Arc<Readiness>,
    metrics: PrometheusHandle,
    scheduled: Vec<u16>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let state = AdminState {
        world,
        readiness,
        metrics,
        scheduled: Arc::new(scheduled),
    };
    let app = Router::new()
        .route("/metrics", get(render_metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .with_state(state);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

async fn render_metrics(State(s): State<AdminState>) -> impl IntoResponse {
    // Gauges that are cheaper to read at scrape time than to keep updated.
    metrics::gauge!("stockroute_index_offers").set(s.world.index.offers_total() as f64);
    metrics::gauge!("stockroute_catalog_products").set(s.world.catalog.len() as f64);
    let now_ms = s.world.clock.now_ms();
    for (id, applied_ms) in s.world.index.applied_at_ms().into_iter().enumerate() {
        if applied_ms > 0 {
            if let Some(sup) = s.world.suppliers.get(id as u16) {
                metrics::gauge!("stockroute_feed_age_seconds", "supplier" => sup.id.clone())
                    .set((now_ms - applied_ms) as f64 / 1000.0);
            }
        }
    }
    let failing = s
        .world
        .feeds
        .snapshot()
        .iter()
        .filter(|f| f.last_error.is_some())
        .count();
    metrics::gauge!("stockroute_feeds_failing").set(failing as f64);
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        s.metrics.render(),
    )
}

async fn readyz(State(s): State<AdminState>) -> impl IntoResponse {
    let status = s.world.feeds.snapshot();
    let name = |id: u16| {
        s.world
            .suppliers
            .get(id)
            .map(|x| x.id.clone())
            .unwrap_or_default()
    };
    let mut detail = ReadyDetail {
        ready: s.readiness.is_ready(),
        draining: s.readiness.is_draining(),
        ledger: s
            .readiness
            .ledger_down()
            .map_or_else(|| "ready".to_owned(), |why| format!("down: {why}")),
        products: s.world.catalog.len(),
        offers: s.world.index.offers_total(),
        feeds_configured: s.scheduled.len(),
        feeds_loaded: 0,
        feeds_pending: Vec::new(),
        feeds_failing: Vec::new(),
    };
    for &id in s.scheduled.iter() {
        let Some(f) = status.get(id as usize) else {
            continue;
        };
        if f.last_applied_ms > 0 {
            detail.feeds_loaded += 1;
        }
        if !f.attempted {
            detail.feeds_pending.push(name(id));
        }
    }
    for (id, f) in status.iter().enumerate() {
        if let Some(e) = &f.last_error {
            detail.feeds_failing.push(FeedFailure {
                supplier: name(id as u16),
                error: e.clone(),
            });
        }
    }
    let code = if detail.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(detail))
}

//! The PostgreSQL reservation ledger: the system of record when several
//! stockroute replicas share stock.
//!
//! Every ledger call is one short transaction of conditional statements,
//! sent pipelined (one round trip for the work, one for COMMIT): the stock
//! rows a reserve touches are locked in one fixed order, counts change only
//! where the condition still holds (`held + allocated + n <= supply`), the
//! idempotency key is bound in the same transaction, and the database's own
//! clock decides expiry. The schema's `CHECK` constraints refuse an oversold
//! row whatever the client does. See docs/reservations.md for the tables and
//! what was tested against which database.
//!
//! Calls run on their own task, so a caller that goes away (tonic drops the
//! handler's future) never cuts a transaction in half: it finishes or rolls
//! back. Conflicts (serialization failures, deadlocks) and lost connections
//! are retried within the call budget; every call is safe to repeat, because
//! reserves carry idempotency keys and the others check state first. Past
//! the budget the answer is `Unavailable`, never a guess.
//!
//! Each replica keeps a cache of the counts for its quotes, fed by its own
//! transactions, by other replicas' `NOTIFY`s and by a periodic full read
//! (the only source on databases without LISTEN/NOTIFY).

mod background;
mod error;
pub mod holds_cache;
mod ops;
pub mod schema;
mod sql;
pub mod supply;

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use parking_lot::{Mutex, RwLock};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::config::LedgerConfig;
use crate::domain::ledger::{
    AllocateRequest, CommitRequest, DeliveryOutcome, HoldsView, IdempotencyKey, KeyResolver,
    Ledger, LedgerError, LedgerHealth, OutboundOrder, ReleaseRequest, RequestFingerprint,
    Reservation, ReservationId, ReserveRequest,
};
use crate::domain::suppliers::SupplierId;

use self::error::Fail;
use self::holds_cache::{Count, HoldsCache};
pub use self::supply::{Supply, SupplySource};

/// Changed counts waiting to be announced; past this, announcements are
/// dropped and other replicas catch up at their next full read.
const NOTIFY_QUEUE: usize = 65_536;
/// `Inner::test_clock_ms` when no test drives the clock.
const NO_CLOCK: i64 = i64::MIN;

/// How to reach the database and how hard to try.
#[derive(Debug, Clone)]
pub struct PgSettings {
    /// Where and as whom.
    pub pg: tokio_postgres::Config,
    /// Most connections this replica opens.
    pub pool_size: usize,
    /// Opening a connection, and waiting for a free one, gives up after this.
    pub connect_timeout: Duration,
    /// A call's whole time in the database, retries included.
    pub call_budget: Duration,
    /// Listen for other replicas' changes (where the database has it).
    pub notify: bool,
    /// Full refresh of the holds cache and readiness probe interval.
    pub poll: Duration,
}

/// A ledger configuration that cannot work.
#[derive(Debug, thiserror::Error)]
pub enum PgConfigError {
    /// The connection string does not parse.
    #[error("ledger.postgres_url: {0}")]
    Url(String),
    /// A number is out of range.
    #[error("ledger.{key}: {message}")]
    Setting {
        /// The key.
        key: &'static str,
        /// What is wrong.
        message: String,
    },
}

impl PgSettings {
    /// Reads the `[ledger]` section's `postgres_*` keys.
    pub fn from_config(c: &LedgerConfig) -> Result<Self, PgConfigError> {
        if c.postgres_url.trim().is_empty() {
            return Err(PgConfigError::Url(
                "empty: kind = \"postgres\" needs a connection string, e.g. \
                 postgres://stockroute@db.internal:5432/stockroute"
                    .into(),
            ));
        }
        let mut pg: tokio_postgres::Config = c
            .postgres_url
            .parse()
            .map_err(|e: tokio_postgres::Error| PgConfigError::Url(e.to_string()))?;
        if c.postgres_pool_size == 0 {
            return Err(PgConfigError::Setting {
                key: "postgres_pool_size",
                message: "must be at least 1".into(),
            });
        }
        for (key, v) in [
            ("postgres_connect_timeout_ms", c.postgres_connect_timeout_ms),
            ("postgres_call_budget_ms", c.postgres_call_budget_ms),
            ("postgres_poll_ms", c.postgres_poll_ms),
        ] {
            if v == 0 {
                return Err(PgConfigError::Setting {
                    key,
                    message: "must be more than 0".into(),
                });
            }
        }
        let connect_timeout = Duration::from_millis(c.postgres_connect_timeout_ms);
        pg.connect_timeout(connect_timeout);
        pg.keepalives(true);
        pg.keepalives_idle(Duration::from_secs(10));
        if pg.get_application_name().is_none() {
            pg.application_name("stockroute");
        }
        Ok(Self {
            pg,
            pool_size: c.postgres_pool_size,
            connect_timeout,
            call_budget: Duration::from_millis(c.postgres_call_budget_ms),
            notify: c.postgres_notify,
            poll: Duration::from_millis(c.postgres_poll_ms),
        })
    }
}

/// The shared state of one replica's ledger.
pub(crate) struct Inner {
    pool: Pool,
    settings: PgSettings,
    cache: HoldsCache,
    supply: Arc<dyn SupplySource>,
    health: RwLock<LedgerHealth>,
    schema_ready: AtomicBool,
    /// What the database is, once the first connection told.
    flavor: std::sync::OnceLock<schema::Flavor>,
    /// A simulated now (Unix ms) set by tests; [`NO_CLOCK`] in service,
    /// where the database's clock decides.
    test_clock_ms: AtomicI64,
    notify_tx: Option<mpsc::Sender<Count>>,
    last_purge: Mutex<Option<Instant>>,
}

impl Inner {
    /// The clock as statements take it in `$1`: `None` lets the database decide.
    pub(crate) fn clock(&self) -> Option<i64> {
        let ms = self.test_clock_ms.load(Ordering::Acquire);
        (ms != NO_CLOCK).then_some(ms)
    }

    /// Takes counts this replica just committed: into the cache, and out to
    /// the other replicas.
    pub(crate) fn publish(&self, counts: Vec<Count>) {
        for c in counts {
            self.cache.apply(&c);
            if let Some(tx) = &self.notify_tx {
                // Full queue: other replicas learn it at their next full read.
                let _ = tx.try_send(c);
            }
        }
    }

    fn set_health(&self, health: LedgerHealth) {
        let mut h = self.health.write();
        if *h != health {
            match &health {
                LedgerHealth::Ready => tracing::info!("ledger database reachable: ready"),
                LedgerHealth::Down(why) => tracing::warn!(reason = %why, "ledger not ready"),
            }
            *h = health;
        }
    }

    /// Runs `attempt` on its own task, again after conflicts and lost
    /// connections, until it answers or the call budget is spent.
    async fn run<T, F, Fut>(
        self: &Arc<Self>,
        what: &'static str,
        attempt: F,
    ) -> Result<T, LedgerError>
    where
        T: Send + 'static,
        F: Fn(Arc<Inner>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, Fail>> + Send + 'static,
    {
        let inner = Arc::clone(self);
        let task = tokio::spawn(async move { inner.retrying(what, attempt).await });
        match task.await {
            Ok(answer) => answer,
            Err(e) => Err(LedgerError::Unavailable(format!(
                "ledger {what} stopped: {e}"
            ))),
        }
    }

    async fn retrying<T, F, Fut>(
        self: Arc<Self>,
        what: &'static str,
        attempt: F,
    ) -> Result<T, LedgerError>
    where
        F: Fn(Arc<Inner>) -> Fut,
        Fut: Future<Output = Result<T, Fail>>,
    {
        let budget = self.settings.call_budget;
        let deadline = Instant::now() + budget;
        let mut backoff = Duration::from_millis(2);
        let mut last;
        loop {
            let outcome = if self.schema_ready.load(Ordering::Acquire) {
                match tokio::time::timeout_at(deadline, attempt(Arc::clone(&self))).await {
                    Ok(outcome) => outcome,
                    Err(_) => Err(Fail::Down(format!(
                        "no answer from the database within {} ms",
                        budget.as_millis()
                    ))),
                }
            } else {
                Err(Fail::Busy(match &*self.health.read() {
                    LedgerHealth::Down(why) => format!("ledger schema not ready: {why}"),
                    LedgerHealth::Ready => "ledger schema not ready".into(),
                }))
            };
            match outcome {
                Ok(v) => {
                    if matches!(*self.health.read(), LedgerHealth::Down(_)) {
                        self.set_health(LedgerHealth::Ready);
                    }
                    return Ok(v);
                }
                Err(Fail::Ledger(e)) => return Err(e),
                Err(Fail::Conflict(why)) => {
                    metrics::counter!("stockroute_ledger_pg_retries_total", "why" => "conflict")
                        .increment(1);
                    last = why;
                }
                Err(Fail::Busy(why)) => last = why,
                Err(Fail::Down(why)) => {
                    metrics::counter!("stockroute_ledger_pg_retries_total", "why" => "down")
                        .increment(1);
                    self.set_health(LedgerHealth::Down(why.clone()));
                    last = why;
                }
            }
            // Jitter keeps conflicting callers from meeting again in step.
            let pause = backoff.mul_f64(0.5 + rand::random::<f64>());
            if Instant::now() + pause >= deadline {
                tracing::debug!(call = what, reason = %last, "ledger call gave up");
                return Err(LedgerError::Unavailable(last));
            }
            tokio::time::sleep(pause).await;
            backoff = (backoff * 2).min(Duration::from_millis(200));
        }
    }
}

/// The PostgreSQL ledger of one replica.
pub struct PgLedger {
    inner: Arc<Inner>,
    stop: watch::Sender<bool>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl std::fmt::Debug for PgLedger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgLedger")
            .field("pool_size", &self.inner.settings.pool_size)
            .field("health", &*self.inner.health.read())
            .field("cache", &self.inner.cache)
            .finish()
    }
}

impl PgLedger {
    /// Starts the ledger: the pool, then in the background the migrations
    /// (retried until the database answers), the holds cache and its
    /// listeners. Returns at once; [`Ledger::health`] says `Down` until the
    /// schema is in place. Must run inside a tokio runtime.
    pub fn start(
        settings: PgSettings,
        resolver: Arc<dyn KeyResolver>,
        supply: Arc<dyn SupplySource>,
    ) -> Result<PgLedger, PgConfigError> {
        let manager = Manager::from_config(
            settings.pg.clone(),
            tokio_postgres::NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(settings.pool_size)
            .runtime(Runtime::Tokio1)
            .create_timeout(Some(settings.connect_timeout))
            .wait_timeout(Some(settings.call_budget))
            .build()
            .map_err(|e| PgConfigError::Setting {
                key: "postgres_pool_size",
                message: e.to_string(),
            })?;
        let (notify_tx, notify_rx) = if settings.notify {
            let (tx, rx) = mpsc::channel(NOTIFY_QUEUE);
            (Some(tx), Some(rx))
        } else {
            (None, None)
        };
        let inner = Arc::new(Inner {
            pool,
            settings,
            cache: HoldsCache::new(resolver),
            supply,
            health: RwLock::new(LedgerHealth::Down(
                "connecting to the ledger database".into(),
            )),
            schema_ready: AtomicBool::new(false),
            flavor: std::sync::OnceLock::new(),
            test_clock_ms: AtomicI64::new(NO_CLOCK),
            notify_tx,
            last_purge: Mutex::new(None),
        });
        let (stop, stop_rx) = watch::channel(false);
        let mut tasks = vec![tokio::spawn(background::maintain(
            Arc::clone(&inner),
            stop_rx.clone(),
        ))];
        if let Some(rx) = notify_rx {
            tasks.push(tokio::spawn(background::announce(
                Arc::clone(&inner),
                rx,
                stop_rx.clone(),
            )));
            tasks.push(tokio::spawn(background::listen(
                Arc::clone(&inner),
                stop_rx,
            )));
        }
        Ok(PgLedger {
            inner,
            stop,
            tasks: Mutex::new(tasks),
        })
    }

    /// Waits until the schema is in place and the database answers, up to `timeout`.
    pub async fn wait_ready(&self, timeout: Duration) -> Result<(), LedgerError> {
        let until = Instant::now() + timeout;
        loop {
            match self.health() {
                LedgerHealth::Ready => return Ok(()),
                LedgerHealth::Down(why) if Instant::now() >= until => {
                    return Err(LedgerError::Unavailable(why))
                }
                LedgerHealth::Down(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    }

    /// From now on this replica's ledger clock reads `now_ms` instead of the
    /// database's, until moved with [`Self::advance_clock_ms`]. For tests and
    /// simulations only: replicas sharing a database must be set alike.
    pub fn freeze_clock_ms(&self, now_ms: i64) {
        self.inner.test_clock_ms.store(now_ms, Ordering::Release);
    }

    /// Moves a frozen clock forward by `ms`.
    pub fn advance_clock_ms(&self, ms: i64) {
        let _ = self
            .inner
            .test_clock_ms
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |t| {
                (t != NO_CLOCK).then(|| t.saturating_add(ms))
            });
    }

    /// The frozen clock, if a test froze it.
    pub fn frozen_clock_ms(&self) -> Option<i64> {
        self.inner.clock()
    }

    /// Reads every non-zero count from the database into the holds cache now.
    pub async fn refresh_holds(&self) -> Result<(), LedgerError> {
        self.inner
            .run("refresh", |inner| async move { ops::refresh(&inner).await })
            .await
    }
}

#[async_trait::async_trait]
impl Ledger for PgLedger {
    async fn reserve(&self, req: ReserveRequest) -> Result<Reservation, LedgerError> {
        ops::validate_reserve(&req)?;
        let req = Arc::new(req);
        self.inner
            .run("reserve", move |inner| {
                let req = Arc::clone(&req);
                async move { ops::hold(&inner, &req, None).await }
            })
            .await
    }

    async fn find(
        &self,
        owner: Option<&str>,
        key: &IdempotencyKey,
        fingerprint: RequestFingerprint,
    ) -> Result<Option<Reservation>, LedgerError> {
        let (owner, key) = (owner.map(str::to_owned), key.clone());
        self.inner
            .run("find", move |inner| {
                let (owner, key) = (owner.clone(), key.clone());
                async move { ops::find(&inner, owner.as_deref(), &key, fingerprint).await }
            })
            .await
    }

    async fn commit(&self, req: CommitRequest) -> Result<Reservation, LedgerError> {
        crate::domain::ledger::check_order_ref(&req.order_ref)?;
        let req = Arc::new(req);
        self.inner
            .run("commit", move |inner| {
                let req = Arc::clone(&req);
                async move { ops::commit(&inner, &req).await }
            })
            .await
    }

    async fn release(&self, req: ReleaseRequest) -> Result<Reservation, LedgerError> {
        let req = Arc::new(req);
        self.inner
            .run("release", move |inner| {
                let req = Arc::clone(&req);
                async move { ops::release(&inner, &req).await }
            })
            .await
    }

    async fn get(
        &self,
        id: &ReservationId,
        owner: Option<&str>,
    ) -> Result<Reservation, LedgerError> {
        let (id, owner) = (id.clone(), owner.map(str::to_owned));
        self.inner
            .run("get", move |inner| {
                let (id, owner) = (id.clone(), owner.clone());
                async move { ops::get(&inner, &id, owner.as_deref()).await }
            })
            .await
    }

    async fn allocate(&self, req: AllocateRequest) -> Result<Reservation, LedgerError> {
        crate::domain::ledger::check_order_ref(&req.order_ref)?;
        let mut req = req;
        // The hold part is never visible; only the lines are checked.
        req.reserve.hold_ms = 1;
        ops::validate_reserve(&req.reserve)?;
        let req = Arc::new(req);
        self.inner
            .run("allocate", move |inner| {
                let req = Arc::clone(&req);
                async move { ops::hold(&inner, &req.reserve, Some(&req.order_ref)).await }
            })
            .await
    }

    async fn expire_due(&self) -> Result<usize, LedgerError> {
        self.inner
            .run(
                "expire",
                |inner| async move { ops::expire_due(&inner).await },
            )
            .await
    }

    fn next_expiry_ms(&self) -> Option<i64> {
        // Other replicas make holds too: only the database knows the next
        // deadline, so the sweeper polls.
        None
    }

    async fn supply_refreshed(
        &self,
        _supplier: SupplierId,
        supplier_id: &str,
        as_of_ms: i64,
    ) -> Result<(), LedgerError> {
        let supplier_id = supplier_id.to_owned();
        self.inner
            .run("supply_refreshed", move |inner| {
                let supplier_id = supplier_id.clone();
                async move { ops::supply_refreshed(&inner, &supplier_id, as_of_ms).await }
            })
            .await
    }

    async fn due_orders(
        &self,
        limit: usize,
        lease_ms: i64,
    ) -> Result<Vec<OutboundOrder>, LedgerError> {
        self.inner
            .run("due_orders", move |inner| async move {
                ops::due_orders(&inner, limit, lease_ms).await
            })
            .await
    }

    async fn record_delivery(
        &self,
        po_number: &str,
        outcome: DeliveryOutcome,
    ) -> Result<(), LedgerError> {
        let po_number = po_number.to_owned();
        self.inner
            .run("record_delivery", move |inner| {
                let (po_number, outcome) = (po_number.clone(), outcome.clone());
                async move { ops::record_delivery(&inner, &po_number, &outcome).await }
            })
            .await
    }

    fn holds(&self) -> Arc<dyn HoldsView> {
        self.inner.cache.table()
    }

    fn health(&self) -> LedgerHealth {
        self.inner.health.read().clone()
    }

    async fn flush(&self) -> Result<(), LedgerError> {
        // Every acknowledged call is already committed; what is left is to
        // announce the last changes and stop the background work.
        let _ = self.stop.send(true);
        let tasks: Vec<JoinHandle<()>> = std::mem::take(&mut *self.tasks.lock());
        for task in tasks {
            if tokio::time::timeout(Duration::from_secs(5), task)
                .await
                .is_err()
            {
                tracing::warn!("a ledger background task did not stop in time");
            }
        }
        self.inner.pool.close();
        Ok(())
    }
}

impl Drop for PgLedger {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        for task in self.tasks.lock().iter() {
            task.abort();
        }
    }
}

#[cfg(test)]
mod tests;

//! Wiring of the reservation ledger: opens the configured ledger, connects
//! it to the world (availability, full feeds), and runs its background work
//! (the expiry sweeper, the purchase-order sender, the health watch).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::adapters::http::purchase_orders::{BaseResolver, OrderSender};
use crate::adapters::postgres::{PgLedger, PgSettings, SupplySource};
use crate::config::{Config, LedgerConfig, LedgerKind};
use crate::domain::clock::Clock;
use crate::domain::ledger::embedded::{EmbeddedLedger, EmbeddedOptions};
use crate::domain::ledger::{KeyResolver, Ledger, LedgerHealth, LedgerLink};
use crate::domain::world::World;

/// An open ledger and what closing it involves.
pub struct OpenLedger {
    /// The ledger.
    pub ledger: Arc<dyn Ledger>,
    /// A journal directory that exists only for this process and is removed
    /// at shutdown.
    pub scratch_dir: Option<PathBuf>,
}

impl std::fmt::Debug for OpenLedger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenLedger")
            .field("ledger", &self.ledger)
            .field("scratch_dir", &self.scratch_dir)
            .finish()
    }
}

/// Checks the `[ledger]` settings, naming the key that is wrong.
pub fn validate(config: &LedgerConfig) -> anyhow::Result<()> {
    if config.hold_secs_default == 0 || config.hold_secs_max == 0 {
        anyhow::bail!("ledger.hold_secs_default and ledger.hold_secs_max must be at least 1");
    }
    if config.hold_secs_default > config.hold_secs_max {
        anyhow::bail!(
            "ledger.hold_secs_default ({}) is more than ledger.hold_secs_max ({})",
            config.hold_secs_default,
            config.hold_secs_max
        );
    }
    if config.retention_hours < 24 {
        anyhow::bail!(
            "ledger.retention_hours is {}; idempotency keys must live at least 24 hours",
            config.retention_hours
        );
    }
    if config.segment_bytes_max < 64 * 1024 {
        anyhow::bail!("ledger.segment_bytes_max must be at least 65536");
    }
    Ok(())
}

/// Where the embedded ledger journals: `ledger.dir`, else `<data.dir>/ledger`,
/// else a fresh directory for this process only (`true`: remove at exit).
fn journal_dir(config: &Config) -> (PathBuf, bool) {
    if let Some(dir) = &config.ledger.dir {
        return (dir.clone(), false);
    }
    if let Some(data) = &config.data.dir {
        return (data.join("ledger"), false);
    }
    let unique = format!(
        "stockroute-ledger-{}-{:08x}",
        std::process::id(),
        rand::random::<u32>()
    );
    (std::env::temp_dir().join(unique), true)
}

/// Opens the configured ledger and connects it to `world`. The embedded
/// ledger recovers its journal first (off the async threads); PostgreSQL
/// starts at once and brings its schema and connections up in the
/// background (readiness waits for them).
pub async fn open(config: &Config, world: &Arc<World>) -> anyhow::Result<OpenLedger> {
    validate(&config.ledger)?;
    if config.ledger.kind == LedgerKind::Postgres {
        let settings = PgSettings::from_config(&config.ledger)?;
        let ledger = PgLedger::start(
            settings,
            Arc::clone(world) as Arc<dyn KeyResolver>,
            Arc::clone(world) as Arc<dyn SupplySource>,
        )?;
        tracing::info!("reservation ledger: PostgreSQL");
        let ledger: Arc<dyn Ledger> = Arc::new(ledger);
        connect(&ledger, world);
        return Ok(OpenLedger {
            ledger,
            scratch_dir: None,
        });
    }
    let (dir, scratch) = journal_dir(config);
    if scratch {
        tracing::warn!(
            dir = %dir.display(),
            "ledger journal in a temporary directory: reservations do not survive a restart; \
             serve a world directory (--data) or set ledger.dir to keep them"
        );
    }
    let options = EmbeddedOptions {
        dir: Some(dir.clone()),
        segment_bytes_max: config.ledger.segment_bytes_max,
        retention_ms: i64::from(config.ledger.retention_hours) * 3_600_000,
    };
    let ledger = {
        let (world, clock): (Arc<World>, Arc<dyn Clock>) =
            (Arc::clone(world), Arc::clone(&world.clock));
        tokio::task::spawn_blocking(move || EmbeddedLedger::open(&options, clock, world.as_ref()))
            .await
            .context("ledger recovery stopped")?
            .context("cannot open the reservation ledger")?
    };
    let ledger: Arc<dyn Ledger> = Arc::new(ledger);
    connect(&ledger, world);
    Ok(OpenLedger {
        ledger,
        scratch_dir: scratch.then_some(dir),
    })
}

/// Makes availability subtract the ledger's counts, and full feeds retire
/// allocations.
pub fn connect(ledger: &Arc<dyn Ledger>, world: &World) {
    let handle = tokio::runtime::Handle::current();
    let for_feeds = Arc::clone(ledger);
    let link = LedgerLink {
        holds: ledger.holds(),
        on_full_feed: Box::new(move |supplier, supplier_id, as_of_ms| {
            let (ledger, supplier_id) = (Arc::clone(&for_feeds), supplier_id.to_owned());
            // Feeds are applied on blocking threads; the ledger is async.
            handle.spawn(async move {
                if let Err(e) = ledger
                    .supply_refreshed(supplier, &supplier_id, as_of_ms)
                    .await
                {
                    tracing::error!(supplier = %supplier_id, error = %e, "allocations not retired after a full feed");
                }
            });
        }),
    };
    if world.ledger.set(link).is_err() {
        tracing::error!("a ledger was already connected to this world; keeping the first");
    }
}

/// Replenishes expired holds: sleeps until the next expiry (at most
/// `interval`), then sweeps.
pub fn spawn_sweeper(
    ledger: Arc<dyn Ledger>,
    clock: Arc<dyn Clock>,
    interval: Duration,
    mut shutdown: watch::Receiver<bool>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let wait = match ledger.next_expiry_ms() {
                Some(at) => Duration::from_millis(at.saturating_sub(clock.now_ms()).max(0) as u64),
                None => interval,
            }
            .min(interval);
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.changed() => return,
            }
            match ledger.expire_due().await {
                Ok(0) => {}
                Ok(n) => {
                    metrics::counter!("stockroute_reservations_expired_total").increment(n as u64);
                    tracing::debug!(expired = n, "holds expired and replenished");
                }
                Err(e) => tracing::warn!(error = %e, "expiry sweep failed"),
            }
        }
    })
}

/// Sends purchase orders from the outbox, unless turned off.
pub fn spawn_order_sender(
    config: &Config,
    ledger: Arc<dyn Ledger>,
    world: Arc<World>,
    resolve: BaseResolver,
    shutdown: watch::Receiver<bool>,
) -> anyhow::Result<Option<JoinHandle<()>>> {
    if !config.purchase_orders.enabled {
        tracing::warn!("purchase_orders.enabled is false: committed orders stay queued");
        return Ok(None);
    }
    let sender = OrderSender::new(ledger, world, config.purchase_orders.clone(), resolve)
        .context("cannot build the purchase-order HTTP client")?;
    Ok(Some(tokio::spawn(sender.run(shutdown))))
}

/// Whether the ledger can serve, as readiness reports it.
pub fn down_reason(ledger: &dyn Ledger) -> Option<String> {
    match ledger.health() {
        LedgerHealth::Ready => None,
        LedgerHealth::Down(why) => Some(why),
    }
}

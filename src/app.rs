//! Wiring: load the world, start the gRPC and HTTP servers, load and
//! schedule the feeds, and shut everything down in order.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use futures::StreamExt;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tonic_health::ServingStatus;

use crate::adapters::grpc::{self, Admission, TlsState};
use crate::adapters::http::admin::{self, Readiness};
use crate::adapters::http::carriers::fake::FakeCarrierServer;
use crate::adapters::http::carriers::CarrierClients;
use crate::adapters::http::feed_fetch::FeedFetcher;
use crate::adapters::http::suppliers::fake::{drifted, items_from_feed_csv, FakeSupplierServer};
use crate::adapters::http::suppliers::{SupplierClients, FAKE_SCHEME};
use crate::auth::{AuthMode, Keyring};
use crate::config::Config;
use crate::domain::clock::SystemClock;
use crate::domain::feeds::{FeedError, IngestReport};
use crate::domain::ledger::{Ledger, LedgerHealth};
use crate::domain::live_rates::LiveRater;
use crate::domain::realtime::RealtimeStock;
use crate::domain::suppliers::{FeedKind, SupplierId};
use crate::domain::world::World;
use crate::load::{self, WorldSource};
use crate::pb;
use crate::telemetry;

/// Feeds loaded at once during start-up: one per core keeps both busy.
const INITIAL_LOADS_PARALLEL: usize = 2;

/// A running service.
pub struct RunningApp {
    /// Where gRPC listens.
    pub grpc_addr: SocketAddr,
    /// Where the HTTP endpoints listen.
    pub http_addr: SocketAddr,
    /// The world it answers from.
    pub world: Arc<World>,
    /// Readiness, as `/readyz` reports it.
    pub readiness: Arc<Readiness>,
    /// Calls admitted and not yet answered, and the limits they pass.
    pub admission: Arc<Admission>,
    health: tonic_health::server::HealthReporter,
    shutdown: watch::Sender<bool>,
    servers: Vec<JoinHandle<()>>,
    background: Vec<JoinHandle<()>>,
    drain_delay: Duration,
    grace: Duration,
    /// The demo world's fake FedEx and UPS, kept running as long as the service.
    fake_carriers: Option<FakeCarrierServer>,
    /// The demo world's fake real-time suppliers, kept running as long as the service.
    fake_suppliers: Option<FakeSupplierServer>,
    /// Real-time stock, when any supplier answers in real time.
    pub realtime: Option<Arc<RealtimeStock>>,
    /// The reservation ledger; flushed last at shutdown.
    pub ledger: Arc<dyn Ledger>,
    /// The embedded ledger's journal directory when it exists only for this
    /// process; removed at shutdown.
    ledger_scratch: Option<std::path::PathBuf>,
}

impl std::fmt::Debug for RunningApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningApp")
            .field("grpc_addr", &self.grpc_addr)
            .field("http_addr", &self.http_addr)
            .finish()
    }
}

/// Sets the health of the whole server (`""`) and of both services.
async fn set_health(health: &tonic_health::server::HealthReporter, status: ServingStatus) {
    use tonic::server::NamedService;
    for name in [
        "",
        pb::fulfillment_server::FulfillmentServer::<grpc::FulfillmentService>::NAME,
        pb::catalog_server::CatalogServer::<grpc::CatalogService>::NAME,
    ] {
        health.set_service_status(name, status).await;
    }
}

/// Health says SERVING exactly when `/readyz` says ready.
async fn follow_readiness(health: &tonic_health::server::HealthReporter, readiness: &Readiness) {
    let status = if readiness.is_ready() {
        ServingStatus::Serving
    } else {
        ServingStatus::NotServing
    };
    set_health(health, status).await;
}

/// How often readiness looks at the ledger's health.
const LEDGER_HEALTH_EVERY: Duration = Duration::from_millis(100);

/// Keeps readiness and gRPC health following the ledger's health: not ready
/// while its database is unreachable, ready again by itself when it is back.
async fn watch_ledger(
    ledger: Arc<dyn Ledger>,
    readiness: Arc<Readiness>,
    health: tonic_health::server::HealthReporter,
) {
    let mut tick = tokio::time::interval(LEDGER_HEALTH_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let down = match ledger.health() {
            LedgerHealth::Ready => None,
            LedgerHealth::Down(why) => Some(why),
        };
        if down != readiness.ledger_down() {
            match &down {
                Some(why) => tracing::warn!(reason = %why, "reservation ledger down: not ready"),
                None => tracing::info!("reservation ledger serving"),
            }
            readiness.set_ledger_down(down);
            if !readiness.is_draining() {
                follow_readiness(&health, &readiness).await;
            }
        }
    }
}

/// Resolves when the shutdown signal is sent.
async fn until_shutdown(mut rx: watch::Receiver<bool>) {
    // An error means the sender is gone, which is a shutdown too.
    let _ = rx.wait_for(|stop| *stop).await;
}

/// Loads the world and starts serving. Feeds load in the background;
/// `RunningApp::wait_ready` waits for them.
pub async fn start(config: Config) -> anyhow::Result<RunningApp> {
    let started = Instant::now();
    let config = Arc::new(config);
    let metrics = telemetry::metrics_handle();
    let (world, source) = {
        let config = Arc::clone(&config);
        tokio::task::spawn_blocking(move || {
            let source = load::source_for(&config);
            load::load_world(&config, &source, Arc::new(SystemClock)).map(|w| (w, source))
        })
        .await
        .context("world loader stopped")??
    };
    let world = Arc::new(world);
    tracing::info!(
        products = world.catalog.len(),
        suppliers = world.suppliers.len(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "catalog and suppliers loaded"
    );

    let crate::ledger::OpenLedger {
        ledger,
        scratch_dir: ledger_scratch,
    } = crate::ledger::open(&config, &world).await?;

    let keyring = keyring(&config)?;
    let tls = TlsState::from_config(&config.tls)?;
    if let Some(tls) = &tls {
        tracing::info!(mutual = tls.mutual(), "tls on the gRPC port");
    }
    let admission = Arc::new(Admission::new(&config.server, keyring.clone()));

    let (live, fake_carriers) = live_rater(&config).await?;
    let (realtime, mut fake_suppliers) = realtime_stock(&config, &world, &source).await?;
    let order_endpoints = order_endpoints(&config, &world, &mut fake_suppliers).await?;

    let grpc_listener = TcpListener::bind(&config.server.grpc_addr)
        .await
        .with_context(|| format!("cannot listen on gRPC address {}", config.server.grpc_addr))?;
    let http_listener = TcpListener::bind(&config.server.http_addr)
        .await
        .with_context(|| format!("cannot listen on HTTP address {}", config.server.http_addr))?;
    let grpc_addr = grpc_listener.local_addr()?;
    let http_addr = http_listener.local_addr()?;

    let (shutdown, shutdown_rx) = watch::channel(false);
    let readiness = Arc::new(Readiness::default());
    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    health_reporter
        .set_not_serving::<pb::fulfillment_server::FulfillmentServer<grpc::FulfillmentService>>()
        .await;
    health_reporter
        .set_not_serving::<pb::catalog_server::CatalogServer<grpc::CatalogService>>()
        .await;

    let mut servers = Vec::new();
    {
        let (world, config, rx) = (Arc::clone(&world), Arc::clone(&config), shutdown_rx.clone());
        let upstreams = grpc::Upstreams {
            live,
            realtime: realtime.clone(),
        };
        let edge = grpc::Edge {
            admission: Arc::clone(&admission),
            tls: tls.clone(),
            ledger: Arc::clone(&ledger),
        };
        servers.push(tokio::spawn(async move {
            if let Err(e) = grpc::serve(
                grpc_listener,
                world,
                config,
                upstreams,
                health_service,
                edge,
                until_shutdown(rx),
            )
            .await
            {
                tracing::error!(error = %e, "gRPC server failed");
            }
        }));
    }
    let scheduled: Vec<SupplierId> = world
        .suppliers
        .iter()
        .filter(|(_, s)| s.feed.is_some())
        .map(|(id, _)| id)
        .collect();
    {
        let (world, readiness, rx) = (
            Arc::clone(&world),
            Arc::clone(&readiness),
            shutdown_rx.clone(),
        );
        let scheduled = scheduled.clone();
        servers.push(tokio::spawn(async move {
            if let Err(e) = admin::serve(
                http_listener,
                world,
                readiness,
                metrics,
                scheduled,
                until_shutdown(rx),
            )
            .await
            {
                tracing::error!(error = %e, "HTTP server failed");
            }
        }));
    }
    tracing::info!(%grpc_addr, %http_addr, "listening");

    let fetcher = FeedFetcher::new(
        Duration::from_millis(config.feeds.fetch_timeout_ms),
        config.feeds.feed_bytes_max,
    )
    .context("cannot build the feed HTTP client")?;
    let feeds = Arc::new(FeedLoader {
        world: Arc::clone(&world),
        source,
        fetcher,
        limit_bytes: config.feeds.feed_bytes_max,
    });
    let mut background = Vec::new();
    background.push(crate::ledger::spawn_sweeper(
        Arc::clone(&ledger),
        Arc::clone(&world.clock),
        Duration::from_millis(config.ledger.sweep_interval_ms.max(1)),
        shutdown_rx.clone(),
    ));
    if let Some(task) = crate::ledger::spawn_order_sender(
        &config,
        Arc::clone(&ledger),
        Arc::clone(&world),
        order_endpoints,
        shutdown_rx.clone(),
    )? {
        background.push(task);
    }
    if let Some(rt) = &realtime {
        background.push(tokio::spawn(flush_realtime(
            Arc::clone(rt),
            Arc::clone(&world),
            Duration::from_millis(config.realtime.index_flush_ms),
        )));
    }
    if let (Some(ring), true) = (&keyring, config.auth.keys_file.is_some()) {
        let ring = Arc::clone(ring);
        background.push(tokio::spawn(reload_every(
            "auth_keys",
            Duration::from_millis(config.auth.reload_interval_ms),
            shutdown_rx.clone(),
            move || ring.reload().map_err(|e| e.to_string()),
        )));
    }
    if let Some(tls) = &tls {
        let tls = Arc::clone(tls);
        background.push(tokio::spawn(reload_every(
            "tls",
            Duration::from_millis(config.tls.reload_interval_ms),
            shutdown_rx.clone(),
            move || tls.reload().map_err(|e| e.to_string()),
        )));
    }
    {
        let health_reporter = health_reporter.clone();
        let (feeds, readiness) = (Arc::clone(&feeds), Arc::clone(&readiness));
        let scheduled = scheduled.clone();
        let rx = shutdown_rx.clone();
        let schedule = config.feeds.schedule;
        background.push(tokio::spawn(async move {
            let t0 = Instant::now();
            futures::stream::iter(scheduled.iter().copied())
                .for_each_concurrent(INITIAL_LOADS_PARALLEL, |s| {
                    let feeds = Arc::clone(&feeds);
                    async move {
                        let _ = feeds.load(s).await;
                    }
                })
                .await;
            readiness.set_ready();
            follow_readiness(&health_reporter, &readiness).await;
            tracing::info!(
                offers = feeds.world.index.offers_total(),
                feeds_ms = t0.elapsed().as_millis() as u64,
                since_start_ms = started.elapsed().as_millis() as u64,
                "ready"
            );
            if schedule {
                feeds.run_schedules(&scheduled, rx).await;
            }
        }));
    }
    if let Some(overload) = admission.overload() {
        background.push(
            Arc::clone(overload)
                .spawn_sampler(Duration::from_millis(config.server.shed_interval_ms.max(1))),
        );
    }
    background.push(tokio::spawn(watch_ledger(
        Arc::clone(&ledger),
        Arc::clone(&readiness),
        health_reporter.clone(),
    )));
    Ok(RunningApp {
        ledger,
        ledger_scratch,
        grpc_addr,
        http_addr,
        world,
        readiness,
        admission,
        health: health_reporter,
        shutdown,
        servers,
        background,
        drain_delay: Duration::from_millis(config.server.drain_delay_ms),
        grace: Duration::from_millis(config.server.shutdown_grace_ms),
        fake_carriers,
        fake_suppliers,
        realtime,
    })
}

/// Why a config without keys does not start.
const NO_KEYS: &str = "auth: no API keys configured; add [[auth.keys]] entries or \
                       auth.keys_file (see docs/security.md), or set auth.mode = \"off\" \
                       to serve without authentication";

/// Whether this is `stockroute serve` with no config and no world: the only
/// case that may run open without saying `auth.mode = "off"`.
fn is_built_in_demo(config: &Config) -> bool {
    config.base_dir.is_none() && config.data.dir.is_none()
}

/// Checks a config as far as it can without reading the files it names
/// (keys file, certificates, the world): what `serve` would refuse at once.
pub fn check_config(config: &Config) -> anyhow::Result<()> {
    if config.auth.mode == AuthMode::ApiKeys {
        let inline = crate::auth::AuthConfig {
            keys_file: None,
            ..config.auth.clone()
        };
        Keyring::from_config(&inline).context("auth configuration")?;
        if config.auth.keys.is_empty()
            && config.auth.keys_file.is_none()
            && !is_built_in_demo(config)
        {
            anyhow::bail!(NO_KEYS);
        }
    }
    let tls = &config.tls;
    if tls.enabled() && (tls.cert_file.is_none() || tls.key_file.is_none()) {
        anyhow::bail!("tls: cert_file and key_file must both be set");
    }
    Ok(())
}

/// Real-time stock for the suppliers that have a gateway. A `fake:<id>`
/// base URL (the demo world's) is served by a fake supplier started here on
/// loopback, answering from that supplier's feed file moved the way stock
/// moves between feeds (deterministic for `data.demo_seed`).
async fn realtime_stock(
    config: &Config,
    world: &World,
    source: &WorldSource,
) -> anyhow::Result<(Option<Arc<RealtimeStock>>, Option<FakeSupplierServer>)> {
    let live: Vec<(String, String, Option<String>)> = world
        .suppliers
        .iter()
        .filter_map(|(_, s)| {
            let rt = s.realtime.as_ref()?;
            let feed = s.feed.as_ref().map(|f| f.source.clone());
            Some((s.id.clone(), rt.base_url.trim().to_owned(), feed))
        })
        .collect();
    if live.is_empty() || !config.realtime.enabled {
        if !live.is_empty() {
            tracing::info!("real-time stock turned off: quoting from feeds only");
        }
        return Ok((None, None));
    }
    let mut base_urls = std::collections::HashMap::new();
    let fakes: Vec<&(String, String, Option<String>)> = live
        .iter()
        .filter(|(_, url, _)| url.starts_with(FAKE_SCHEME))
        .collect();
    let fake = if fakes.is_empty() {
        None
    } else {
        let seed = config.data.demo_seed;
        let server = FakeSupplierServer::start(seed)
            .await
            .context("cannot start the fake real-time suppliers")?;
        for (id, url, feed) in fakes {
            let name = url[FAKE_SCHEME.len()..].trim();
            let name = if name.is_empty() { id.as_str() } else { name };
            let items = match feed.as_deref().filter(|f| !f.contains("://")) {
                Some(rel) => {
                    let bytes = source.read(rel).context("fake supplier's feed")?;
                    items_from_feed_csv(&bytes)
                        .map_err(|e| anyhow::anyhow!("feed {rel} of fake supplier {id}: {e}"))?
                }
                None => Vec::new(),
            };
            base_urls.insert(
                id.clone(),
                server.add_supplier(name, drifted(seed, id, items)),
            );
        }
        tracing::info!(
            suppliers = base_urls.len(),
            addr = %server.addr(),
            "demo: fake real-time suppliers on loopback"
        );
        Some(server)
    };
    let clients = SupplierClients::new(
        &config.realtime,
        &world.suppliers,
        &world.currency,
        &base_urls,
    )
    .context("real-time supplier configuration")?;
    tracing::info!(suppliers = live.len(), "real-time stock on");
    Ok((Some(Arc::new(RealtimeStock::new(Arc::new(clients)))), fake))
}

/// Where purchase orders go: configured `http(s)` base URLs as they are;
/// `fake:<id>` ones (the demo world's) to a fake supplier on loopback, on the
/// real-time fakes' server when it runs (so a supplier keeps one base URL),
/// else on one started here.
async fn order_endpoints(
    config: &Config,
    world: &World,
    fake_suppliers: &mut Option<FakeSupplierServer>,
) -> anyhow::Result<crate::adapters::http::purchase_orders::BaseResolver> {
    // Suppliers the real-time fakes already serve keep their items.
    let served: std::collections::HashSet<String> = if fake_suppliers.is_some() {
        world
            .suppliers
            .iter()
            .filter_map(|(_, s)| s.realtime.as_ref())
            .filter_map(|r| r.base_url.trim().strip_prefix(FAKE_SCHEME))
            .map(|n| n.trim().to_owned())
            .collect()
    } else {
        std::collections::HashSet::new()
    };
    let wanted: Vec<String> = world
        .suppliers
        .iter()
        .filter_map(|(_, s)| {
            let base = s
                .orders
                .as_ref()
                .map(|o| o.base_url.trim())
                .or_else(|| s.realtime.as_ref().map(|r| r.base_url.trim()))?;
            let name = base.strip_prefix(FAKE_SCHEME)?.trim();
            Some(if name.is_empty() {
                s.id.clone()
            } else {
                name.to_owned()
            })
        })
        .collect();
    let mut fake_urls = std::collections::HashMap::new();
    if !wanted.is_empty() {
        if fake_suppliers.is_none() {
            let server = FakeSupplierServer::start(config.data.demo_seed)
                .await
                .context("cannot start the fake suppliers' order endpoints")?;
            *fake_suppliers = Some(server);
        }
        if let Some(server) = fake_suppliers.as_ref() {
            for name in wanted {
                let url = if served.contains(&name) {
                    server.base_url(&name)
                } else {
                    server.add_supplier(&name, Vec::new())
                };
                fake_urls.insert(name, url);
            }
            tracing::info!(
                suppliers = fake_urls.len(),
                addr = %server.addr(),
                "demo: fake purchase-order endpoints on loopback"
            );
        }
    }
    Ok(Arc::new(move |base: &str| {
        let base = base.trim();
        if let Some(name) = base.strip_prefix(FAKE_SCHEME) {
            return fake_urls.get(name.trim()).cloned();
        }
        (base.starts_with("http://") || base.starts_with("https://")).then(|| base.to_owned())
    }))
}

/// Writes real-time answers into the index every `every`, off the async threads.
async fn flush_realtime(realtime: Arc<RealtimeStock>, world: Arc<World>, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if !realtime.has_pending() {
            continue;
        }
        let (rt, w) = (Arc::clone(&realtime), Arc::clone(&world));
        if let Err(e) = tokio::task::spawn_blocking(move || rt.flush(&w.index)).await {
            tracing::error!(error = %e, "real-time index flush stopped");
        }
    }
}

/// The keys callers must present; `None` when auth is off. Off only when
/// configured so, or for the built-in demo world with no keys; loudly either way.
fn keyring(config: &Config) -> anyhow::Result<Option<Arc<Keyring>>> {
    const OPEN: &str = "AUTHENTICATION IS OFF: any caller that reaches the gRPC port may \
                        quote, reserve, commit and push feeds; configure [auth] keys \
                        (docs/security.md) before exposing it";
    if config.auth.mode == AuthMode::Off {
        tracing::warn!(reason = "auth.mode = \"off\"", "{OPEN}");
        return Ok(None);
    }
    let ring = Keyring::from_config(&config.auth).context("auth configuration")?;
    if ring.is_empty() && config.auth.keys_file.is_none() {
        if is_built_in_demo(config) {
            tracing::warn!(reason = "built-in demo world without keys", "{OPEN}");
            return Ok(None);
        }
        anyhow::bail!(NO_KEYS);
    }
    if ring.is_empty() {
        tracing::warn!("auth: the keys file holds no key yet; every call is refused until it does");
    }
    tracing::info!(keys = ring.len(), "api key authentication on");
    Ok(Some(Arc::new(ring)))
}

/// Re-reads a file-backed setting (API keys, TLS certificates) every
/// `interval` until shutdown; a failed reload keeps what is in force.
async fn reload_every(
    what: &'static str,
    interval: Duration,
    shutdown: watch::Receiver<bool>,
    reload: impl Fn() -> Result<bool, String> + Send + Sync + 'static,
) {
    let reload = Arc::new(reload);
    let mut tick = tokio::time::interval(interval.max(Duration::from_millis(10)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tokio::select! {
            _ = until_shutdown(shutdown.clone()) => break,
            _ = tick.tick() => {}
        }
        let reload = Arc::clone(&reload);
        // File reads may block (network file systems); keep them off the async threads.
        let outcome = tokio::task::spawn_blocking(move || reload())
            .await
            .unwrap_or_else(|e| Err(format!("reload task failed: {e}")));
        match outcome {
            Ok(true) => {
                metrics::counter!("stockroute_reloads_total", "what" => what, "outcome" => "loaded")
                    .increment(1);
                tracing::info!(what, "reloaded");
            }
            Ok(false) => {}
            Err(error) => {
                metrics::counter!("stockroute_reloads_total", "what" => what, "outcome" => "failed")
                    .increment(1);
                tracing::error!(what, %error, "reload failed; what was loaded before stays in force");
            }
        }
    }
}

/// The live carrier clients: as configured, or against the demo world's fakes.
async fn live_rater(
    config: &Config,
) -> anyhow::Result<(Option<Arc<dyn LiveRater>>, Option<FakeCarrierServer>)> {
    let configured = config.carriers.fedex.is_some() || config.carriers.ups.is_some();
    let wants_fakes = config.data.dir.is_none() || config.data.fake_carriers;
    if configured {
        let clients = CarrierClients::new(&config.carriers).context("carrier configuration")?;
        tracing::info!(carriers = ?clients.configured(), "live carrier rating on");
        return Ok((Some(Arc::new(clients)), None));
    }
    if !wants_fakes {
        tracing::info!("no carrier APIs configured: freight from the local tables only");
        return Ok((None, None));
    }
    let fake = FakeCarrierServer::start()
        .await
        .context("cannot start the fake carrier APIs")?;
    let mut carriers = fake.config();
    carriers.cache_ttl_secs = config.carriers.cache_ttl_secs;
    carriers.cache_capacity = config.carriers.cache_capacity;
    let clients = CarrierClients::new(&carriers).context("fake carrier configuration")?;
    tracing::info!(base_url = %fake.base_url(), "demo: fake FedEx and UPS APIs on loopback");
    Ok((Some(Arc::new(clients)), Some(fake)))
}

impl RunningApp {
    /// The demo world's fake real-time suppliers, when it started them.
    pub fn fake_suppliers(&self) -> Option<&FakeSupplierServer> {
        self.fake_suppliers.as_ref()
    }

    /// Waits until the first feeds are loaded.
    pub async fn wait_ready(&self) {
        while !self.readiness.is_ready() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Shuts down in order: health and `/readyz` say NOT_SERVING at once;
    /// after `server.drain_delay_ms` (calls are still taken meanwhile, for load
    /// balancers that have not noticed yet) the ports close; in-flight calls
    /// finish, up to `server.shutdown_grace_ms`, after which the connections
    /// still open (a stuck client) are dropped. Always returns within drain
    /// delay plus grace, plus a moment.
    pub async fn shutdown(self) {
        tracing::info!(
            in_flight = self.admission.in_flight(),
            drain_delay_ms = self.drain_delay.as_millis() as u64,
            "shutting down: health NOT_SERVING"
        );
        for task in &self.background {
            task.abort();
        }
        self.readiness.set_draining();
        set_health(&self.health, ServingStatus::NotServing).await;
        if !self.drain_delay.is_zero() {
            tokio::time::sleep(self.drain_delay).await;
        }
        tracing::info!(
            in_flight = self.admission.in_flight(),
            "ports closed; finishing in-flight calls"
        );
        let _ = self.shutdown.send(true);
        let aborts: Vec<_> = self.servers.iter().map(JoinHandle::abort_handle).collect();
        let servers = futures::future::join_all(self.servers);
        if tokio::time::timeout(self.grace, servers).await.is_err() {
            tracing::warn!(
                grace_ms = self.grace.as_millis() as u64,
                in_flight = self.admission.in_flight(),
                "in-flight calls outlived the grace period; dropping their connections"
            );
            for abort in aborts {
                abort.abort();
            }
        }
        // In-flight calls are done: make everything they were told durable.
        if let Err(e) = self.ledger.flush().await {
            tracing::warn!(error = %e, "ledger flush failed");
        }
        if let Some(dir) = &self.ledger_scratch {
            let _ = std::fs::remove_dir_all(dir);
        }
        if let Some(fake) = self.fake_carriers {
            fake.shutdown().await;
        }
        if let Some(fake) = self.fake_suppliers {
            fake.shutdown().await;
        }
        tracing::info!("stopped");
    }
}

/// Loads feeds from their configured sources.
struct FeedLoader {
    world: Arc<World>,
    source: WorldSource,
    fetcher: FeedFetcher,
    limit_bytes: u64,
}

impl FeedLoader {
    /// Loads the configured feed of `supplier` once.
    async fn load(&self, supplier: SupplierId) -> Result<IngestReport, FeedError> {
        let Some(feed) = self
            .world
            .suppliers
            .get(supplier)
            .and_then(|s| s.feed.clone())
        else {
            return Err(FeedError::Unreadable("no feed configured".into()));
        };
        let outcome = if feed.source.starts_with("http://") || feed.source.starts_with("https://") {
            self.fetcher
                .fetch(Arc::clone(&self.world), supplier, feed.kind, &feed.source)
                .await
        } else {
            let world = Arc::clone(&self.world);
            let source = self.source.clone();
            let limit = self.limit_bytes;
            tokio::task::spawn_blocking(move || {
                ingest_local(&world, &source, supplier, feed.kind, &feed.source, limit)
            })
            .await
            .unwrap_or_else(|e| Err(FeedError::Unreadable(format!("feed loader stopped: {e}"))))
        };
        outcome
    }

    /// Reloads each feed on its interval until shutdown.
    async fn run_schedules(
        self: &Arc<Self>,
        scheduled: &[SupplierId],
        shutdown: watch::Receiver<bool>,
    ) {
        let mut tasks = Vec::new();
        for &s in scheduled {
            let interval_secs = self
                .world
                .suppliers
                .get(s)
                .and_then(|x| x.feed.as_ref())
                .map_or(0, |f| f.interval_secs);
            // The built-in demo world's files never change: nothing to poll.
            if interval_secs == 0 || matches!(self.source, WorldSource::Memory(_)) {
                continue;
            }
            let this = Arc::clone(self);
            let rx = shutdown.clone();
            tasks.push(tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_secs(interval_secs));
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                tick.tick().await;
                loop {
                    tokio::select! {
                        _ = tick.tick() => { let _ = this.load(s).await; }
                        _ = until_shutdown(rx.clone()) => break,
                    }
                }
            }));
        }
        futures::future::join_all(tasks).await;
    }
}

/// Ingests a feed from a file of the world's source.
fn ingest_local(
    world: &World,
    source: &WorldSource,
    supplier: SupplierId,
    kind: FeedKind,
    rel: &str,
    limit_bytes: u64,
) -> Result<IngestReport, FeedError> {
    match source {
        WorldSource::Memory(files) => match files.get(rel) {
            Some(bytes) => world.ingest(supplier, kind, bytes.as_slice()),
            None => Err(FeedError::Unreadable(format!(
                "{rel}: not in the built-in demo world"
            ))),
        },
        WorldSource::Dir(_) => {
            let path = source.path(rel).unwrap_or_default();
            let opened = std::fs::File::open(&path)
                .map_err(|e| format!("{}: {e}", path.display()))
                .and_then(|file| {
                    let meta = file.metadata().ok();
                    let len = meta.as_ref().map_or(0, |m| m.len());
                    if len > limit_bytes {
                        return Err(format!(
                            "{}: {len} bytes, more than the limit of {limit_bytes}",
                            path.display()
                        ));
                    }
                    // The file's data is as of its last change, not of this
                    // read: re-reading it after a restart is not news.
                    let modified_ms = meta
                        .and_then(|m| m.modified().ok())
                        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                        .map(|d| d.as_millis() as i64);
                    Ok((file, modified_ms))
                });
            match opened {
                Ok((file, modified_ms)) => world.ingest_as_of(supplier, kind, file, modified_ms),
                Err(why) => {
                    world.record_feed_failure(supplier, &why);
                    Err(FeedError::Unreadable(why))
                }
            }
        }
    }
}

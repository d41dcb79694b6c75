//! Sends the load of one phase and measures it.
//!
//! Open loop: a dispatcher thread walks a fixed schedule (the i-th arrival is
//! due at start + i/rate) and hands each request to the runtime stamped with
//! its due time; latency counts from that time, so a server (or generator)
//! that falls behind shows up in the corrected figures instead of silently
//! lowering the rate (coordinated omission). Closed loop: `workers` callers,
//! each sending when its previous call answered, optionally paced.
//!
//! At the start and end of the measured window the server's CPU time is
//! read and its `/metrics` scraped, so a phase knows the server's CPU per
//! request and its own view of the latency.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use stockroute::pb;
use tonic::transport::Channel;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

use crate::cpu;
use crate::invariants::{outcome_unknown, Acks, Unsettled};
use crate::scenario::{Mode, Rpc};
use crate::server_metrics::{self, Buckets};
use crate::stats::{
    code_name, Classifier, PhaseStats, Sample, Timeline, CONNECTION_ERROR, GENERATOR_BACKLOG,
};
use crate::workload::{AfterHold, Request, Workload};
use crate::world::CpuSource;

/// Sleeps shorter than this are spun through by the dispatcher: the OS
/// wakes a sleeper tens of microseconds late.
const SPIN_BELOW: Duration = Duration::from_micros(60);
/// Extra time allowed past a call's deadline before the generator gives up
/// on it itself.
const CLIENT_GRACE: Duration = Duration::from_secs(1);

/// Connections to the server; calls take them in turn.
#[derive(Debug)]
pub struct Clients {
    channels: Vec<Channel>,
    next: AtomicUsize,
}

impl Clients {
    /// Opens `connections` HTTP/2 connections to `addr`.
    pub async fn connect(addr: &str, connections: u32) -> anyhow::Result<Clients> {
        let mut channels = Vec::new();
        for _ in 0..connections.max(1) {
            channels.push(crate::world::connect(addr).await?);
        }
        Ok(Clients {
            channels,
            next: AtomicUsize::new(0),
        })
    }

    /// The next connection.
    pub fn channel(&self) -> Channel {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.channels.len();
        self.channels[i].clone()
    }
}

/// What one phase sends.
#[derive(Debug, Clone)]
pub struct PhaseSpec {
    /// Shown in reports.
    pub label: String,
    /// Open or closed loop.
    pub mode: Mode,
    /// Open: arrivals per second; closed: total pacing (0 = none).
    pub rate_per_s: f64,
    /// Closed: callers.
    pub workers: u32,
    /// Not measured.
    pub warmup: Duration,
    /// Measured.
    pub measure: Duration,
    /// Open: most calls in flight.
    pub in_flight_max: u32,
    /// Deadline of each call.
    pub timeout: Duration,
}

/// What one phase measured.
#[derive(Debug, Clone)]
pub struct PhaseOutcome {
    /// The spec it ran.
    pub spec: PhaseSpec,
    /// Calls meant to start in the measured window.
    pub stats: PhaseStats,
    /// Server CPU time over the measured window, µs.
    pub server_cpu_us: Option<u64>,
    /// Generator CPU time over the measured window, µs.
    pub generator_cpu_us: Option<u64>,
    /// Server histogram before and after the measured window.
    pub server_buckets: Option<(Buckets, Buckets)>,
    /// Measured window, seconds since the run's timeline start.
    pub window_s: (f64, f64),
    /// Calls still unanswered when the phase gave up waiting.
    pub abandoned: u64,
}

/// Where samples go.
struct Sink {
    phase: Mutex<PhaseStats>,
    timeline: Arc<Mutex<Timeline>>,
    acks: Arc<Mutex<Acks>>,
}

impl Sink {
    fn record(&self, s: Sample) {
        if let Ok(mut p) = self.phase.lock() {
            p.record(&s);
        }
        if let Ok(mut t) = self.timeline.lock() {
            t.record(&s);
        }
    }
}

/// Runs phases against one server and keeps the run's timeline.
#[derive(Clone)]
pub struct Runner {
    clients: Arc<Clients>,
    timeline: Arc<Mutex<Timeline>>,
    acks: Arc<Mutex<Acks>>,
    classifier: Classifier,
    cpu: CpuSource,
    /// The in-process server's threads, subtracted from this process's time.
    in_process: bool,
    metrics_url: Option<String>,
    http: reqwest::Client,
}

impl Runner {
    /// A runner over `clients`.
    pub fn new(
        clients: Clients,
        classifier: Classifier,
        cpu: CpuSource,
        metrics_url: Option<String>,
    ) -> Runner {
        let in_process = matches!(cpu, CpuSource::ServerThreads);
        Runner {
            clients: Arc::new(clients),
            timeline: Arc::new(Mutex::new(Timeline::new(
                Instant::now(),
                classifier.clone(),
            ))),
            acks: Arc::new(Mutex::new(Acks::default())),
            classifier,
            cpu,
            in_process,
            metrics_url,
            http: reqwest::Client::new(),
        }
    }

    /// The run's timeline.
    pub fn timeline(&self) -> Arc<Mutex<Timeline>> {
        Arc::clone(&self.timeline)
    }

    /// Reservations the server acknowledged.
    pub fn acks(&self) -> Arc<Mutex<Acks>> {
        Arc::clone(&self.acks)
    }

    /// One channel to the server, for checks outside the load.
    pub fn channel(&self) -> Channel {
        self.clients.channel()
    }

    fn generator_cpu_us(&self) -> Option<u64> {
        let all = cpu::process_cpu_us(std::process::id()).ok()?;
        if self.in_process {
            Some(all.saturating_sub(self.cpu.read_us()?))
        } else {
            Some(all)
        }
    }

    /// Runs one phase: warm-up, then the measured window, then waits for the
    /// calls still in flight (up to their deadline).
    pub async fn run_phase(&self, spec: &PhaseSpec, workload: &Workload) -> PhaseOutcome {
        let t0 = Instant::now() + Duration::from_millis(20);
        let measure_from = t0 + spec.warmup;
        let until = measure_from + spec.measure;
        let timeline_start = self.timeline.lock().map(|t| t.start()).unwrap_or(t0);
        let sink = Arc::new(Sink {
            phase: Mutex::new(PhaseStats::new(
                measure_from,
                until,
                self.classifier.clone(),
            )),
            timeline: Arc::clone(&self.timeline),
            acks: Arc::clone(&self.acks),
        });

        // The measured window's edges: CPU and server histograms.
        let boundaries = {
            let this = self.clone();
            tokio::spawn(async move {
                tokio::time::sleep_until(measure_from.into()).await;
                let cpu0 = this.cpu.read_us();
                let gen0 = this.generator_cpu_us();
                let scrape0 = this.scrape().await;
                tokio::time::sleep_until(until.into()).await;
                let cpu1 = this.cpu.read_us();
                let gen1 = this.generator_cpu_us();
                let scrape1 = this.scrape().await;
                (
                    cpu0.zip(cpu1).map(|(a, b)| b.saturating_sub(a)),
                    gen0.zip(gen1).map(|(a, b)| b.saturating_sub(a)),
                    scrape0.zip(scrape1),
                )
            })
        };

        let in_flight = Arc::new(AtomicU64::new(0));
        match spec.mode {
            Mode::Open => {
                self.open_loop(spec, workload, t0, until, &sink, &in_flight)
                    .await
            }
            Mode::Closed => {
                self.closed_loop(spec, workload, t0, until, &sink, &in_flight)
                    .await
            }
        }
        let drain_until = Instant::now() + spec.timeout + CLIENT_GRACE * 2;
        while in_flight.load(Ordering::Acquire) > 0 && Instant::now() < drain_until {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let abandoned = in_flight.load(Ordering::Acquire);
        let (server_cpu_us, generator_cpu_us, server_buckets) =
            boundaries.await.unwrap_or((None, None, None));
        let stats = sink
            .phase
            .lock()
            .map(|p| p.clone())
            .unwrap_or_else(|e| e.into_inner().clone());
        let rel = |t: Instant| t.saturating_duration_since(timeline_start).as_secs_f64();
        PhaseOutcome {
            spec: spec.clone(),
            stats,
            server_cpu_us,
            generator_cpu_us,
            server_buckets,
            window_s: (rel(measure_from), rel(until)),
            abandoned,
        }
    }

    async fn scrape(&self) -> Option<Buckets> {
        let url = self.metrics_url.as_deref()?;
        match server_metrics::scrape(&self.http, url).await {
            Ok(b) => Some(b),
            Err(e) => {
                eprintln!("loadtest: {e}");
                None
            }
        }
    }

    async fn open_loop(
        &self,
        spec: &PhaseSpec,
        workload: &Workload,
        t0: Instant,
        until: Instant,
        sink: &Arc<Sink>,
        in_flight: &Arc<AtomicU64>,
    ) {
        let handle = tokio::runtime::Handle::current();
        let interval = Duration::from_secs_f64(1.0 / spec.rate_per_s);
        let mut workload = workload.clone();
        let (clients, sink, in_flight) = (
            Arc::clone(&self.clients),
            Arc::clone(sink),
            Arc::clone(in_flight),
        );
        let (timeout, limit) = (spec.timeout, u64::from(spec.in_flight_max));
        let dispatcher = std::thread::Builder::new()
            .name("lt-dispatch".into())
            .spawn(move || {
                let mut i: u32 = 0;
                loop {
                    let due = t0 + interval * i;
                    if due >= until {
                        break;
                    }
                    i = i.saturating_add(1);
                    wait_until(due);
                    let request = workload.next_request();
                    if in_flight.load(Ordering::Acquire) >= limit {
                        let now = Instant::now();
                        sink.record(Sample {
                            rpc: request.first_rpc(),
                            code: GENERATOR_BACKLOG,
                            intended: due,
                            sent: now,
                            done: now,
                        });
                        continue;
                    }
                    in_flight.fetch_add(1, Ordering::AcqRel);
                    let (channel, sink, in_flight) =
                        (clients.channel(), Arc::clone(&sink), Arc::clone(&in_flight));
                    handle.spawn(async move {
                        execute(channel, request, due, timeout, &sink).await;
                        in_flight.fetch_sub(1, Ordering::AcqRel);
                    });
                }
            });
        match dispatcher {
            Ok(thread) => {
                // Joined off the runtime's threads.
                let _ = tokio::task::spawn_blocking(move || thread.join()).await;
            }
            Err(e) => eprintln!("loadtest: cannot start the dispatcher thread: {e}"),
        }
    }

    async fn closed_loop(
        &self,
        spec: &PhaseSpec,
        workload: &Workload,
        t0: Instant,
        until: Instant,
        sink: &Arc<Sink>,
        in_flight: &Arc<AtomicU64>,
    ) {
        let workers = spec.workers.max(1);
        // Paced: each worker keeps its own schedule, offset from the others.
        let period = (spec.rate_per_s > 0.0)
            .then(|| Duration::from_secs_f64(f64::from(workers) / spec.rate_per_s));
        let mut tasks = Vec::new();
        for w in 0..workers {
            let mut workload = workload.fork(u64::from(w));
            let (clients, sink, in_flight) = (
                Arc::clone(&self.clients),
                Arc::clone(sink),
                Arc::clone(in_flight),
            );
            let timeout = spec.timeout;
            tasks.push(tokio::spawn(async move {
                let offset = period.map_or(Duration::ZERO, |p| p * w / workers);
                let mut k: u32 = 0;
                loop {
                    let due = match period {
                        Some(p) => t0 + offset + p * k,
                        None => Instant::now().max(t0),
                    };
                    if due >= until {
                        break;
                    }
                    k = k.saturating_add(1);
                    tokio::time::sleep_until(due.into()).await;
                    let request = workload.next_request();
                    in_flight.fetch_add(1, Ordering::AcqRel);
                    execute(clients.channel(), request, due, timeout, &sink).await;
                    in_flight.fetch_sub(1, Ordering::AcqRel);
                }
            }));
        }
        for t in tasks {
            let _ = t.await;
        }
    }
}

/// Sleeps, then spins the last few microseconds, until `due`.
fn wait_until(due: Instant) {
    loop {
        let now = Instant::now();
        if now >= due {
            return;
        }
        let left = due - now;
        if left > SPIN_BELOW {
            std::thread::sleep(left - SPIN_BELOW);
        } else {
            std::hint::spin_loop();
        }
    }
}

fn request_with<T>(message: T, timeout: Duration) -> tonic::Request<T> {
    let mut r = tonic::Request::new(message);
    r.set_timeout(timeout);
    r
}

/// Awaits a call with the client's own limit on top of the deadline, and
/// names its outcome.
async fn call<T>(
    timeout: Duration,
    fut: impl std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
) -> Result<T, &'static str> {
    match tokio::time::timeout(timeout + CLIENT_GRACE, fut).await {
        Ok(Ok(r)) => Ok(r.into_inner()),
        Ok(Err(status)) => Err(outcome_name(&status)),
        Err(_) => Err("DEADLINE_EXCEEDED"),
    }
}

/// The outcome name of a failed call: its status code, except where the
/// client itself made the status (a lost connection, its own timeout).
fn outcome_name(status: &tonic::Status) -> &'static str {
    let m = status.message();
    if m.starts_with("h2 protocol error") || m.starts_with("transport error") {
        CONNECTION_ERROR
    } else if status.code() == tonic::Code::Cancelled && m.contains("Timeout expired") {
        "DEADLINE_EXCEEDED"
    } else {
        code_name(status.code())
    }
}

fn outcome<T>(r: &Result<T, &'static str>) -> &'static str {
    match r {
        Ok(_) => "OK",
        Err(code) => code,
    }
}

/// Sends one arrival's calls (several for a reservation flow) and records each.
async fn execute(
    channel: Channel,
    request: Request,
    intended: Instant,
    timeout: Duration,
    sink: &Sink,
) {
    let record = |rpc: Rpc, code: &'static str, intended: Instant, sent: Instant| {
        sink.record(Sample {
            rpc,
            code,
            intended,
            sent,
            done: Instant::now(),
        })
    };
    let mut fulfillment = pb::fulfillment_client::FulfillmentClient::new(channel.clone());
    let sent = Instant::now();
    match request {
        Request::Health(service) => {
            let r = call(
                timeout,
                HealthClient::new(channel)
                    .check(request_with(HealthCheckRequest { service }, timeout)),
            )
            .await;
            record(Rpc::Health, outcome(&r), intended, sent);
        }
        Request::CheckStock(m) => {
            let r = call(timeout, fulfillment.check_stock(request_with(m, timeout))).await;
            record(Rpc::CheckStock, outcome(&r), intended, sent);
        }
        Request::Quote(m) => {
            let r = call(timeout, fulfillment.quote(request_with(m, timeout))).await;
            record(Rpc::Quote, outcome(&r), intended, sent);
        }
        Request::Allocate(m) => {
            let r = call(
                timeout,
                fulfillment.allocate(request_with(m.clone(), timeout)),
            )
            .await;
            record(Rpc::Allocate, outcome(&r), intended, sent);
            if outcome_unknown(outcome(&r)) {
                if let Ok(mut acks) = sink.acks.lock() {
                    acks.unsettled(Unsettled::Allocate(m));
                }
            }
            if let Ok(c) = &r {
                if let Some(res) = &c.reservation {
                    if let Ok(mut acks) = sink.acks.lock() {
                        acks.committed(res);
                    }
                }
            }
        }
        Request::Reserve { then, request } => {
            let r = call(
                timeout,
                fulfillment.reserve(request_with(request.clone(), timeout)),
            )
            .await;
            record(Rpc::Reserve, outcome(&r), intended, sent);
            if outcome_unknown(outcome(&r)) {
                if let Ok(mut acks) = sink.acks.lock() {
                    acks.unsettled(Unsettled::Reserve(request));
                }
                return;
            }
            let Ok(reservation) = r else { return };
            if let Ok(mut acks) = sink.acks.lock() {
                acks.held(&reservation);
            }
            let id = reservation.reservation_id.clone();
            // The follow-up is sent as soon as the hold answers: it is measured
            // from its own start.
            let sent = Instant::now();
            match then {
                AfterHold::Commit => {
                    let r = call(
                        timeout,
                        fulfillment.commit(request_with(
                            pb::CommitRequest {
                                reservation_id: id.clone(),
                                order_ref: format!("order-{id}"),
                            },
                            timeout,
                        )),
                    )
                    .await;
                    record(Rpc::Commit, outcome(&r), sent, sent);
                    if let Ok(c) = &r {
                        if let Some(res) = &c.reservation {
                            if let Ok(mut acks) = sink.acks.lock() {
                                acks.committed(res);
                            }
                        }
                    }
                }
                AfterHold::Release => {
                    let r = call(
                        timeout,
                        fulfillment.release(request_with(
                            pb::ReleaseRequest {
                                reservation_id: id,
                                reason: "load test".into(),
                                cancel_allocation: false,
                            },
                            timeout,
                        )),
                    )
                    .await;
                    record(Rpc::Release, outcome(&r), sent, sent);
                    if let Ok(res) = &r {
                        if let Ok(mut acks) = sink.acks.lock() {
                            acks.released(res);
                        }
                    }
                }
                AfterHold::Expire => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::Scenario;
    use crate::stats::Classifier;

    /// A real server on a small demo world, on free loopback ports.
    async fn small_server() -> (stockroute::app::RunningApp, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let params = stockroute::demo::DemoParams {
            suppliers: 8,
            products: 1_000,
            seed: 3,
        };
        stockroute::load::write_demo(dir.path(), &params, "freight").unwrap();
        let mut config =
            stockroute::config::Config::load(Some(&dir.path().join("stockroute.toml"))).unwrap();
        config.server.grpc_addr = "127.0.0.1:0".into();
        config.server.http_addr = "127.0.0.1:0".into();
        config.data.fake_carriers = false;
        config.feeds.schedule = false;
        // A debug build on a shared machine: no shedding to get in the way.
        config.server.concurrency_max = 10_000;
        config.server.shed_cpu_percent = 0;
        let app = stockroute::app::start(config).await.unwrap();
        tokio::time::timeout(Duration::from_secs(30), app.wait_ready())
            .await
            .unwrap();
        (app, dir)
    }

    fn scenario(mix: &str) -> Scenario {
        Scenario::parse(
            &format!(
                "name = \"t\"\nrate_per_s = 100\n[mix]\n{mix}\n[skus]\nproducts = 1000\n[basket]\nlines = [[3, 1]]\n"
            ),
            "t",
        )
        .unwrap()
    }

    fn spec(mode: Mode) -> PhaseSpec {
        PhaseSpec {
            label: "t".into(),
            mode,
            rate_per_s: 100.0,
            workers: 4,
            warmup: Duration::from_millis(300),
            measure: Duration::from_secs(1),
            in_flight_max: 1_000,
            timeout: Duration::from_secs(10),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_open_loop_phase_sends_the_rate_and_the_server_agrees() {
        let (app, _dir) = small_server().await;
        let addr = app.grpc_addr.to_string();
        let s = scenario("check_stock = 3\nhealth = 1");
        let classifier = Classifier::new(&s.budget.answer_codes, &s.budget.shed_codes);
        let runner = Runner::new(
            Clients::connect(&addr, 2).await.unwrap(),
            classifier,
            CpuSource::Process(std::process::id()),
            Some(format!("http://{}/metrics", app.http_addr)),
        );
        let o = runner
            .run_phase(&spec(Mode::Open), &Workload::new(&s, 0, "t"))
            .await;
        // 100/s for 1 s measured: the schedule fixes the count exactly.
        assert_eq!(o.stats.calls(), 100, "{:?}", o.stats.rpcs.keys());
        let check = &o.stats.rpcs[&Rpc::CheckStock];
        assert_eq!(check.failed, 0, "{:?}", check.codes);
        assert!(check.answered > 50, "{}", check.answered);
        assert!(o.stats.rpcs[&Rpc::Health].answered > 10);
        assert_eq!(o.abandoned, 0);
        assert!(o.server_cpu_us.is_some());
        // The server's histogram moved over the window, and once the phase
        // has drained it has counted every stock check the client sent.
        let (before, after) = o.server_buckets.expect("metrics scraped");
        let in_window = after.delta(&before, Rpc::CheckStock.path(), None);
        assert!(in_window.last().is_some_and(|b| b.1 > 0), "{in_window:?}");
        let now = runner.scrape().await.expect("metrics scraped");
        let served = now.delta(&Buckets::default(), Rpc::CheckStock.path(), None);
        let sent: u64 = runner.timeline().lock().unwrap().series()[&Rpc::CheckStock]
            .iter()
            .map(|s| s.answered + s.failed + s.refused)
            .sum();
        assert_eq!(served.last().map_or(0, |b| b.1), sent);
        app.shutdown().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_closed_loop_phase_keeps_its_workers_busy_and_records_failures() {
        let (app, _dir) = small_server().await;
        let addr = app.grpc_addr.to_string();
        // Not CheckStock: the other test counts the server's CheckStock calls,
        // and both servers share this process's metrics.
        let s = scenario("quote = 1\nreserve_commit = 1");
        let classifier = Classifier::new(&s.budget.answer_codes, &s.budget.shed_codes);
        let runner = Runner::new(
            Clients::connect(&addr, 1).await.unwrap(),
            classifier,
            CpuSource::None,
            None,
        );
        let mut closed = spec(Mode::Closed);
        closed.rate_per_s = 0.0;
        let o = runner.run_phase(&closed, &Workload::new(&s, 0, "t")).await;
        let quote = &o.stats.rpcs[&Rpc::Quote];
        assert!(quote.answered > 10, "{}", quote.answered);
        assert_eq!(quote.corrected.len(), quote.uncorrected.len());
        // Every Reserve is counted under its own RPC with the server's code,
        // whatever that code is.
        let reserve = &o.stats.rpcs[&Rpc::Reserve];
        assert!(reserve.calls() > 10);
        assert_eq!(reserve.codes.values().sum::<u64>(), reserve.calls());
        app.shutdown().await;
    }

    /// Calls cut off by their deadline may still have held stock: they are
    /// kept as unsettled, and settling sends each again with its key, so every
    /// reservation the server made is acknowledged and then read back.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn calls_cut_off_by_their_deadline_are_replayed_with_their_keys() {
        let (app, _dir) = small_server().await;
        let addr = app.grpc_addr.to_string();
        let s = scenario("reserve_release = 1\nallocate = 1");
        let classifier = Classifier::new(&s.budget.answer_codes, &s.budget.shed_codes);
        let runner = Runner::new(
            Clients::connect(&addr, 1).await.unwrap(),
            classifier,
            CpuSource::None,
            None,
        );
        let mut cut = spec(Mode::Open);
        cut.rate_per_s = 20.0;
        // No call can answer within a microsecond.
        cut.timeout = Duration::from_micros(1);
        runner.run_phase(&cut, &Workload::new(&s, 0, "cut")).await;
        let mut acks = runner
            .acks()
            .lock()
            .map(|mut a| std::mem::take(&mut *a))
            .unwrap();
        assert_eq!(acks.len(), 0, "nothing was acknowledged");
        assert!(!acks.is_empty(), "but the calls are unsettled");
        let settled = crate::invariants::settle(runner.channel(), &mut acks).await;
        assert!(settled.ok, "{}", settled.detail);
        assert!(!acks.is_empty(), "{}", settled.detail);
        let checks = crate::invariants::check_ledger(
            runner.channel(),
            &acks,
            &std::collections::BTreeMap::new(),
        )
        .await;
        assert!(checks.iter().all(|c| c.ok), "{checks:?}");
        app.shutdown().await;
    }
}

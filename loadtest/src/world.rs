//! The world a run tests against: a stockroute it starts itself (the real
//! binary as a child process, pinned to its own core, or in this process on
//! its own runtime), with fake carrier APIs hosted here when live freight is
//! wanted, or a server already running at an address.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::Context;
use stockroute::adapters::http::carriers::fake::FakeCarrierServer;
use tonic::transport::Channel;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

use crate::cpu;

/// How long a started server may take to listen and to load its feeds.
const START_TIMEOUT: Duration = Duration::from_secs(120);
/// Name of the in-process server's runtime threads (at most 15 bytes: the
/// kernel truncates thread names there).
const SERVER_THREAD_NAME: &str = "srv-stockroute";
/// The service whose health says the feeds are loaded.
const READY_SERVICE: &str = "stockroute.v1.Fulfillment";

/// Where freight prices come from in a started world.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Freight {
    /// The local rate tables only.
    Tables,
    /// Live rating against fake FedEx and UPS APIs hosted by the generator,
    /// answering after `latency_ms`.
    Live {
        /// Delay of every fake answer.
        latency_ms: u64,
    },
}

/// What to test against.
#[derive(Debug, Clone)]
pub enum Target {
    /// Start the `stockroute` binary as a child process.
    Spawn {
        /// The binary.
        bin: PathBuf,
    },
    /// Start stockroute inside this process, on its own runtime.
    InProcess,
    /// A server that is already running.
    Remote {
        /// Its gRPC address.
        addr: String,
        /// Its `/metrics` URL, for server-side latency.
        metrics_url: Option<String>,
        /// Its process id, for CPU time (same machine only).
        pid: Option<u32>,
    },
}

/// How to build the world.
#[derive(Debug, Clone)]
pub struct WorldSpec {
    /// Where the server runs.
    pub target: Target,
    /// A config file for the started server; none = a demo world written
    /// with `demo-data` into a temporary directory.
    pub config: Option<PathBuf>,
    /// Demo world size (products), when no config is given.
    pub demo_products: u32,
    /// Demo world size (suppliers).
    pub demo_suppliers: u32,
    /// Freight source of a started server.
    pub freight: Freight,
    /// Ask the real-time supplier gateways during quotes (the demo world's
    /// fake suppliers then run inside the server process); off = stock from
    /// the feeds only.
    pub realtime: bool,
    /// Pin the server to core 0 (the generator pins itself to core 1
    /// before its runtime starts, see [`pin_generator`]).
    pub pin: bool,
}

/// How the server's CPU time is read.
#[derive(Debug, Clone)]
pub enum CpuSource {
    /// /proc/PID/stat of the server process.
    Process(u32),
    /// /proc/self/task/*/stat of the in-process server's runtime threads.
    ServerThreads,
    /// Not available (a remote server without a pid).
    None,
}

impl CpuSource {
    /// The server's CPU time so far, µs.
    pub fn read_us(&self) -> Option<u64> {
        match self {
            CpuSource::Process(pid) => cpu::process_cpu_us(*pid).ok(),
            CpuSource::ServerThreads => cpu::own_threads_cpu_us(SERVER_THREAD_NAME).ok(),
            CpuSource::None => None,
        }
    }

    /// How it is measured, for the report.
    pub fn describe(&self) -> String {
        match self {
            CpuSource::Process(pid) => {
                format!("server process {pid}: utime+stime from /proc/{pid}/stat (10 ms ticks)")
            }
            CpuSource::ServerThreads => format!(
                "in-process server: utime+stime of the threads named {SERVER_THREAD_NAME} from /proc/self/task/*/stat"
            ),
            CpuSource::None => "not measured (remote server, no --server-pid)".into(),
        }
    }
}

/// A running world.
pub struct World {
    /// gRPC address.
    pub grpc_addr: String,
    /// `/metrics` URL, when known.
    pub metrics_url: Option<String>,
    /// Server CPU time.
    pub cpu: CpuSource,
    /// How the world was set up, for the report.
    pub description: Vec<String>,
    child: Option<Child>,
    in_process: Option<(tokio::runtime::Runtime, stockroute::app::RunningApp)>,
    fakes: Option<FakeCarrierServer>,
    _dir: Option<tempfile::TempDir>,
}

impl std::fmt::Debug for World {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("World")
            .field("grpc_addr", &self.grpc_addr)
            .finish()
    }
}

/// Pins this process to core 1 when `wanted` and possible; call before any
/// runtime starts so that every thread inherits it. Returns whether it did.
pub fn pin_generator(wanted: bool) -> anyhow::Result<bool> {
    if !(wanted && cpu::cores() >= 2 && cpu::taskset_available()) {
        return Ok(false);
    }
    cpu::pin(std::process::id(), 1)?;
    Ok(true)
}

/// The binary next to this one (`target/release/stockroute` when the
/// generator runs from `target/release`).
pub fn sibling_server_bin() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let dir = exe.parent()?;
    // Test binaries live one level down, in deps/.
    [dir.join("stockroute"), dir.join("../stockroute")]
        .into_iter()
        .find(|p| p.is_file())
}

impl World {
    /// Starts (or connects to) the world. The generator's runtime must be
    /// current: fake carriers run on it.
    pub async fn start(spec: &WorldSpec) -> anyhow::Result<World> {
        let pin = spec.pin;
        let mut description = Vec::new();
        match &spec.target {
            Target::Remote {
                addr,
                metrics_url,
                pid,
            } => {
                description.push(format!("remote server at {addr}"));
                let world = World {
                    grpc_addr: addr.clone(),
                    metrics_url: metrics_url.clone(),
                    cpu: pid.map_or(CpuSource::None, CpuSource::Process),
                    description,
                    child: None,
                    in_process: None,
                    fakes: None,
                    _dir: None,
                };
                wait_serving(&world.grpc_addr, START_TIMEOUT).await?;
                Ok(world)
            }
            Target::Spawn { bin } => {
                let (config, dir, fakes, mut notes) = prepare(spec, Some(bin)).await?;
                description.append(&mut notes);
                let mut command = if pin {
                    description
                        .push("server pinned to core 0 (taskset -c 0), generator to core 1".into());
                    let mut c = Command::new("taskset");
                    c.args(["-c", "0"]).arg(bin);
                    c
                } else {
                    Command::new(bin)
                };
                command
                    .arg("serve")
                    .arg("--config")
                    .arg(&config)
                    .args(["--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0"])
                    .env("STOCKROUTE_LOG__FORMAT", "json")
                    .env("STOCKROUTE_LOG__LEVEL", "info")
                    .env_remove("RUST_LOG")
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped());
                if spec.freight == Freight::Tables {
                    command.env("STOCKROUTE_DATA__FAKE_CARRIERS", "false");
                }
                if !spec.realtime {
                    command.env("STOCKROUTE_REALTIME__ENABLED", "false");
                }
                let mut child = command
                    .spawn()
                    .with_context(|| format!("cannot start {}", bin.display()))?;
                let pid = child.id();
                let stderr = child.stderr.take().context("server stderr")?;
                let addrs = watch_log(stderr);
                let (grpc, http) = match addrs.recv_timeout(START_TIMEOUT) {
                    Ok(Ok(a)) => a,
                    Ok(Err(log)) => {
                        let _ = child.kill();
                        let _ = child.wait();
                        anyhow::bail!(
                            "{} exited before listening; its last log lines:\n{log}",
                            bin.display()
                        );
                    }
                    Err(_) => {
                        let _ = child.kill();
                        let _ = child.wait();
                        anyhow::bail!("{} did not listen within {START_TIMEOUT:?}", bin.display());
                    }
                };
                description.push(format!(
                    "spawned {} serve (pid {pid}) on {grpc}",
                    bin.display()
                ));
                let world = World {
                    grpc_addr: grpc.to_string(),
                    metrics_url: Some(format!("http://{http}/metrics")),
                    cpu: CpuSource::Process(pid),
                    description,
                    child: Some(child),
                    in_process: None,
                    fakes,
                    _dir: dir,
                };
                wait_serving(&world.grpc_addr, START_TIMEOUT).await?;
                Ok(world)
            }
            Target::InProcess => {
                let (config_path, dir, fakes, mut notes) = prepare(spec, None).await?;
                description.append(&mut notes);
                let mut config = stockroute::config::Config::load(Some(&config_path))
                    .with_context(|| format!("config {}", config_path.display()))?;
                config.server.grpc_addr = "127.0.0.1:0".into();
                config.server.http_addr = "127.0.0.1:0".into();
                // The process's CPU includes the generator's own: it cannot
                // tell the server's load, so CPU shedding is off in process.
                config.server.shed_cpu_percent = 0;
                description.push("CPU shedding off (the generator shares the process)".into());
                if spec.freight == Freight::Tables {
                    config.data.fake_carriers = false;
                }
                config.realtime.enabled = spec.realtime;
                // Threads inherit the creating thread's mask: build the server's
                // runtime while this thread sits on core 0, then move it back.
                let me = cpu::current_tid().context("cannot find this thread's id")?;
                if pin {
                    cpu::pin(me, 0)?;
                    description.push(
                        "in-process server runtime pinned to core 0, generator to core 1".into(),
                    );
                }
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .thread_name(SERVER_THREAD_NAME)
                    .enable_all()
                    .build()
                    .context("server runtime")?;
                if pin {
                    cpu::pin(me, 1)?;
                }
                let app = runtime
                    .spawn(async move { stockroute::app::start(config).await })
                    .await
                    .context("server start task")??;
                let grpc = app.grpc_addr;
                let http = app.http_addr;
                description.push(format!("in-process server on {grpc}"));
                let world = World {
                    grpc_addr: grpc.to_string(),
                    metrics_url: Some(format!("http://{http}/metrics")),
                    cpu: CpuSource::ServerThreads,
                    description,
                    child: None,
                    in_process: Some((runtime, app)),
                    fakes,
                    _dir: dir,
                };
                wait_serving(&world.grpc_addr, START_TIMEOUT).await?;
                Ok(world)
            }
        }
    }

    /// Stops what was started: SIGTERM to a child (then SIGKILL after 10 s),
    /// shutdown of an in-process server, the fakes.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(mut child) = self.child.take() {
            let pid = child.id();
            let _ = Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                if let Some(status) = child.try_wait()? {
                    if !status.success() {
                        anyhow::bail!("server exited with {status} after SIGTERM");
                    }
                    break;
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    anyhow::bail!("server did not exit within 10 s of SIGTERM");
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        if let Some((runtime, app)) = self.in_process.take() {
            let _ = runtime.spawn(app.shutdown()).await;
            runtime.shutdown_timeout(Duration::from_secs(5));
        }
        if let Some(f) = self.fakes.take() {
            f.shutdown().await;
        }
        Ok(())
    }
}

impl Drop for World {
    fn drop(&mut self) {
        // A run that fails half-way must not leave a server behind.
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if let Some((runtime, _app)) = self.in_process.take() {
            runtime.shutdown_background();
        }
    }
}

type Prepared = (
    PathBuf,
    Option<tempfile::TempDir>,
    Option<FakeCarrierServer>,
    Vec<String>,
);

/// The config to serve: the given one, or a demo world written to a
/// temporary directory; with fake carriers started here when wanted.
async fn prepare(spec: &WorldSpec, bin: Option<&PathBuf>) -> anyhow::Result<Prepared> {
    let mut notes = Vec::new();
    let (mut config, dir) = match &spec.config {
        Some(c) => {
            notes.push(format!("config {}", c.display()));
            (c.clone(), None)
        }
        None => {
            let dir = tempfile::tempdir().context("temporary directory for the demo world")?;
            write_demo(bin, dir.path(), spec.demo_products, spec.demo_suppliers)?;
            notes.push(format!(
                "demo world: {} suppliers, {} products, seed 42, written with demo-data",
                spec.demo_suppliers, spec.demo_products
            ));
            (dir.path().join("stockroute.toml"), Some(dir))
        }
    };
    notes.push(if spec.realtime {
        "stock: feeds plus real-time supplier gateways (the demo world's fake suppliers run inside the server process, their CPU counted as the server's)".into()
    } else {
        "stock from the feeds only (real-time gateways off)".into()
    });
    let mut fakes = None;
    match spec.freight {
        Freight::Tables => {
            notes.push("freight from the local rate tables (no carrier APIs)".into())
        }
        Freight::Live { latency_ms } => {
            let fake = FakeCarrierServer::start()
                .await
                .context("cannot start the fake carrier APIs")?;
            fake.set_latency(Duration::from_millis(latency_ms));
            let text = std::fs::read_to_string(&config)
                .with_context(|| format!("cannot read {}", config.display()))?;
            if text
                .lines()
                .any(|l| l.trim_start().starts_with("[carriers"))
            {
                anyhow::bail!(
                    "{} configures carriers itself; use --freight tables with it",
                    config.display()
                );
            }
            let c = fake.carrier_config();
            let section = |name: &str| {
                format!(
                    "\n[carriers.{name}]\nbase_url = \"{}\"\nclient_id = \"{}\"\nclient_secret = \"{}\"\naccount_number = \"{}\"\n",
                    c.base_url, c.client_id, c.client_secret, c.account_number
                )
            };
            let live_path = config.with_file_name("stockroute-live.toml");
            std::fs::write(
                &live_path,
                format!("{text}{}{}", section("fedex"), section("ups")),
            )
            .with_context(|| format!("cannot write {}", live_path.display()))?;
            notes.push(format!(
                "live freight from fake FedEx and UPS APIs in the generator process ({latency_ms} ms per answer)"
            ));
            config = live_path;
            fakes = Some(fake);
        }
    }
    Ok((config, dir, fakes, notes))
}

/// Writes the demo world with the binary (or the library when in-process).
fn write_demo(
    bin: Option<&PathBuf>,
    dir: &Path,
    products: u32,
    suppliers: u32,
) -> anyhow::Result<()> {
    match bin {
        Some(bin) => {
            let out = Command::new(bin)
                .arg("demo-data")
                .arg("--out")
                .arg(dir)
                .args(["--products", &products.to_string()])
                .args(["--suppliers", &suppliers.to_string()])
                .output()
                .with_context(|| format!("cannot run {} demo-data", bin.display()))?;
            if !out.status.success() {
                anyhow::bail!(
                    "{} demo-data failed: {}",
                    bin.display(),
                    String::from_utf8_lossy(&out.stderr).trim()
                );
            }
        }
        None => {
            let params = stockroute::demo::DemoParams {
                suppliers,
                products,
                seed: 42,
            };
            let freight_dir = stockroute::config::Config::default().data.freight_dir;
            stockroute::load::write_demo(dir, &params, &freight_dir)
                .map_err(|e| anyhow::anyhow!("cannot write the demo world: {e}"))?;
        }
    }
    Ok(())
}

/// Reads the server's JSON log on a thread: sends the gRPC and HTTP
/// addresses once it listens, or the last lines if it exits first; then
/// keeps draining so the pipe never fills.
fn watch_log(
    stderr: impl std::io::Read + Send + 'static,
) -> mpsc::Receiver<Result<(SocketAddr, SocketAddr), String>> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut last: std::collections::VecDeque<String> = Default::default();
        let mut sent = false;
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if !sent {
                if let Some(addrs) = listening(&line) {
                    let _ = tx.send(Ok(addrs));
                    sent = true;
                    continue;
                }
                if last.len() == 20 {
                    last.pop_front();
                }
                last.push_back(line);
            } else if line.contains("\"ERROR\"") {
                eprintln!("server: {line}");
            }
        }
        if !sent {
            let _ = tx.send(Err(last.into_iter().collect::<Vec<_>>().join("\n")));
        }
    });
    rx
}

/// The addresses of a `listening` log line, if `line` is one.
fn listening(line: &str) -> Option<(SocketAddr, SocketAddr)> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    let fields = v.get("fields")?;
    if fields.get("message")?.as_str()? != "listening" {
        return None;
    }
    let grpc = fields.get("grpc_addr")?.as_str()?.parse().ok()?;
    let http = fields.get("http_addr")?.as_str()?.parse().ok()?;
    Some((grpc, http))
}

/// A channel to `addr` (`host:port`).
pub async fn connect(addr: &str) -> anyhow::Result<Channel> {
    Channel::from_shared(format!("http://{addr}"))
        .with_context(|| format!("bad address {addr}"))?
        .tcp_nodelay(true)
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await
        .with_context(|| format!("cannot connect to {addr}"))
}

/// Waits until the server's health says Fulfillment is serving (feeds loaded).
async fn wait_serving(addr: &str, within: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + within;
    let mut last = String::new();
    while Instant::now() < deadline {
        match connect(addr).await {
            Ok(channel) => {
                let answer = HealthClient::new(channel)
                    .check(HealthCheckRequest {
                        service: READY_SERVICE.into(),
                    })
                    .await;
                match answer {
                    Ok(r) if r.get_ref().status == ServingStatus::Serving as i32 => return Ok(()),
                    Ok(r) => last = format!("health says {:?}", r.get_ref().status),
                    Err(s) => last = format!("health check failed: {s}"),
                }
            }
            Err(e) => last = format!("{e:#}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    anyhow::bail!("{addr} not serving within {within:?}: {last}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_listening_line_gives_both_addresses() {
        let line = r#"{"timestamp":"x","level":"INFO","fields":{"message":"listening","grpc_addr":"127.0.0.1:4000","http_addr":"127.0.0.1:4001"},"target":"stockroute::app"}"#;
        let (g, h) = listening(line).unwrap();
        assert_eq!((g.port(), h.port()), (4000, 4001));
        assert!(listening(r#"{"fields":{"message":"ready"}}"#).is_none());
        assert!(listening("not json").is_none());
    }
}

//! `spawn_app()`: a real server on port 0 over a fresh small demo world.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use stockroute::app::{self, RunningApp};
use stockroute::config::Config;
use stockroute::demo::DemoParams;
use stockroute::pb;
use tonic::transport::Channel;

/// A running server and the directory of its world.
pub struct TestApp {
    pub app: RunningApp,
    pub channel: Channel,
    /// Keeps the world directory alive as long as the server.
    pub _dir: tempfile::TempDir,
}

impl TestApp {
    pub fn fulfillment(&self) -> pb::fulfillment_client::FulfillmentClient<Channel> {
        pb::fulfillment_client::FulfillmentClient::new(self.channel.clone())
    }

    pub fn catalog(&self) -> pb::catalog_client::CatalogClient<Channel> {
        pb::catalog_client::CatalogClient::new(self.channel.clone())
    }

    pub fn http(&self, path: &str) -> String {
        format!("http://{}{}", self.app.http_addr, path)
    }
}

/// Writes a small world (12 suppliers, 2,000 products) into `dir`.
pub fn write_small_world(dir: &Path) {
    let params = DemoParams {
        suppliers: 12,
        products: 2_000,
        seed: 7,
    };
    stockroute::load::write_demo(dir, &params, "freight").expect("write demo world");
}

/// The config of a world written by `write_small_world`, on free loopback ports.
pub fn test_config(dir: &Path) -> Config {
    let mut config = Config::load(Some(&dir.join("stockroute.toml"))).expect("config");
    config.server.grpc_addr = "127.0.0.1:0".into();
    config.server.http_addr = "127.0.0.1:0".into();
    // The test process hosts many servers and the tests' own work, so its
    // CPU says nothing about one server's load: no CPU shedding.
    config.server.shed_cpu_percent = 0;
    config
}

/// A gRPC channel to a server on loopback.
pub async fn connect(addr: std::net::SocketAddr) -> Channel {
    Channel::from_shared(format!("http://{addr}"))
        .expect("uri")
        .connect()
        .await
        .expect("connect")
}

/// Starts the server on free loopback ports and waits until it is ready.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Like `spawn_app`, with the config changed by `change` first.
pub async fn spawn_app_with(change: impl FnOnce(&mut Config)) -> TestApp {
    let dir = tempfile::tempdir().expect("tempdir");
    write_small_world(dir.path());
    let mut config = test_config(dir.path());
    config.feeds.schedule = false;
    change(&mut config);
    let app = app::start(config).await.expect("server starts");
    tokio::time::timeout(std::time::Duration::from_secs(30), app.wait_ready())
        .await
        .expect("ready within 30 s");
    let channel = connect(app.grpc_addr).await;
    TestApp {
        app,
        channel,
        _dir: dir,
    }
}

pub fn us(postal: &str) -> Option<pb::Address> {
    Some(pb::Address {
        country_code: "US".into(),
        postal_code: postal.into(),
        residential: false,
    })
}

pub fn line(sku: &str, quantity: u32) -> pb::BasketLine {
    pb::BasketLine {
        sku: sku.into(),
        quantity,
    }
}

/// Pushes CSV text through `IngestFeed` in chunks of `chunk` bytes.
pub async fn push_feed(
    app: &TestApp,
    supplier: &str,
    full: bool,
    csv: &str,
    chunk: usize,
) -> Result<pb::IngestReport, tonic::Status> {
    let bytes = csv.as_bytes().to_vec();
    let mut chunks: Vec<pb::FeedChunk> = bytes
        .chunks(chunk.max(1))
        .map(|c| pb::FeedChunk {
            supplier_id: String::new(),
            data: c.to_vec(),
            full_snapshot: false,
        })
        .collect();
    if chunks.is_empty() {
        chunks.push(pb::FeedChunk::default());
    }
    chunks[0].supplier_id = supplier.into();
    chunks[0].full_snapshot = full;
    app.catalog()
        .ingest_feed(futures::stream::iter(chunks))
        .await
        .map(|r| r.into_inner())
}

/// SKUs that some supplier has in stock, found through CheckStock.
pub async fn in_stock_skus(app: &TestApp, want: usize) -> Vec<String> {
    let mut found = Vec::new();
    let mut client = app.fulfillment();
    for start in (1..2000).step_by(50) {
        let lines = (start..start + 50)
            .map(|i| line(&format!("SR-{i:06}"), 1))
            .collect();
        let r = client
            .check_stock(pb::CheckStockRequest {
                lines,
                ship_to: us("10001"),
                realtime_budget_ms: 0,
            })
            .await
            .expect("check stock")
            .into_inner();
        for l in r.lines {
            if l.offers.iter().any(|o| o.available >= 3) {
                found.push(l.sku);
            }
        }
        if found.len() >= want {
            break;
        }
    }
    found.truncate(want);
    found
}

/// Kills the child if the test fails half-way, so no process is left behind.
pub struct ChildGuard(pub Option<Child>);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A `fields.<name>` string of a JSON log line.
pub fn log_field<'a>(v: &'a serde_json::Value, name: &str) -> Option<&'a str> {
    v.get("fields")
        .and_then(|f| f.get(name))
        .and_then(|x| x.as_str())
}

/// The real binary running `serve`, logging JSON to a pipe that the test reads.
pub struct ServerProcess {
    pub child: ChildGuard,
    /// Parsed log lines, in order.
    pub logs: mpsc::Receiver<serde_json::Value>,
    /// Every line of stderr as written, for searching.
    pub raw: Arc<Mutex<Vec<String>>>,
}

impl ServerProcess {
    /// Starts `stockroute serve` with `args` and `env` (JSON logs on).
    pub fn spawn(args: &[&str], env: &[(&str, &str)]) -> ServerProcess {
        let mut command = Command::new(env!("CARGO_BIN_EXE_stockroute"));
        command
            .arg("serve")
            .args(args)
            .env("STOCKROUTE_LOG__FORMAT", "json")
            // Debug builds on a shared machine: storms must reach the ledger,
            // not CPU shedding.
            .env("STOCKROUTE_SERVER__SHED_CPU_PERCENT", "0")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in env {
            command.env(k, v);
        }
        let mut child = command.spawn().expect("spawn stockroute");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = mpsc::channel::<serde_json::Value>();
        let raw = Arc::new(Mutex::new(Vec::new()));
        let keep = Arc::clone(&raw);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str(&line) {
                    let _ = tx.send(v);
                }
                keep.lock().unwrap().push(line);
            }
        });
        ServerProcess {
            child: ChildGuard(Some(child)),
            logs: rx,
            raw,
        }
    }

    /// Waits for a log line with this message; panics after `limit`.
    pub fn wait_for(&self, message: &str, limit: Duration) -> serde_json::Value {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let v = self
                .logs
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("no `{message}` log line in {limit:?}"));
            if log_field(&v, "message") == Some(message) {
                return v;
            }
        }
    }

    /// Waits for `listening` and returns the gRPC and HTTP addresses.
    pub fn addresses(&self) -> (String, String) {
        let listening = self.wait_for("listening", Duration::from_secs(120));
        (
            log_field(&listening, "grpc_addr").unwrap().to_owned(),
            log_field(&listening, "http_addr").unwrap().to_owned(),
        )
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.0.as_ref().expect("running").id()
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
    }

    /// Waits for the process to exit; panics after `limit`.
    pub fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        let mut child = self.child.0.take().expect("running");
        let deadline = Instant::now() + limit;
        loop {
            if let Some(s) = child.try_wait().expect("try_wait") {
                return s;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("the process did not exit within {limit:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// All of stderr so far.
    pub fn stderr_text(&self) -> String {
        self.raw.lock().unwrap().join("\n")
    }
}

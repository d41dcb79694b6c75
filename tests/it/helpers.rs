//! `spawn_app()`: a real server on port 0 over a fresh small demo world.

use std::path::Path;

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
    let dir = tempfile::tempdir().expect("tempdir");
    write_small_world(dir.path());
    let mut config = test_config(dir.path());
    config.feeds.schedule = false;
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

//! Downloads supplier feeds over HTTP(S) with reqwest, streaming the body
//! straight into the parser so a large feed never sits whole in memory.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;

use crate::domain::feeds::{FeedError, IngestReport};
use crate::domain::suppliers::{FeedKind, SupplierId};
use crate::domain::world::World;
use crate::ingest::ingest_chunks;

/// An HTTP client for feeds, with pooled connections.
#[derive(Debug, Clone)]
pub struct FeedFetcher {
    client: reqwest::Client,
    limit_bytes: u64,
}

impl FeedFetcher {
    /// A fetcher whose downloads time out after `timeout` and stop at `limit_bytes`.
    pub fn new(timeout: Duration, limit_bytes: u64) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("stockroute/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            client,
            limit_bytes,
        })
    }

    /// Downloads `url` and ingests it. A failed or cut-off download applies nothing.
    pub async fn fetch(
        &self,
        world: Arc<World>,
        supplier: SupplierId,
        kind: FeedKind,
        url: &str,
    ) -> Result<IngestReport, FeedError> {
        // Failures before parsing starts are recorded here; `World::ingest`
        // records its own.
        let unreadable = |m: String| {
            let why = format!("GET {url}: {m}");
            world.record_feed_failure(supplier, &why);
            FeedError::Unreadable(why)
        };
        let response = match self.client.get(url).send().await {
            Ok(r) => r,
            Err(e) => return Err(unreadable(e.to_string())),
        };
        let status = response.status();
        if !status.is_success() {
            return Err(unreadable(format!("HTTP {status}")));
        }
        if let Some(len) = response.content_length() {
            if len > self.limit_bytes {
                return Err(unreadable(format!(
                    "{len} bytes, more than the limit of {}",
                    self.limit_bytes
                )));
            }
        }
        let body = response
            .bytes_stream()
            .map(|chunk| chunk.map_err(|e| format!("download failed: {e}")));
        ingest_chunks(world, supplier, kind, self.limit_bytes, Box::pin(body)).await
    }
}

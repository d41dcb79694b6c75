//! `stockroute.v1.Catalog`: feed pushes, offer inspection and freight rating.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use tonic::{Request, Response, Status, Streaming};

use super::{convert, deadline, status};
use crate::config::Config;
use crate::domain::feeds::IngestReport;
use crate::domain::live_rates::{merge, LiveRater, LiveShipment};
use crate::domain::suppliers::FeedKind;
use crate::domain::world::World;
use crate::ingest::ingest_chunks;
use crate::limits;
use crate::pb;

/// The Catalog service.
#[derive(Clone)]
pub struct CatalogService {
    world: Arc<World>,
    config: Arc<Config>,
    /// Carrier APIs for live freight, when configured.
    live: Option<Arc<dyn LiveRater>>,
}

impl std::fmt::Debug for CatalogService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CatalogService")
            .field("live", &self.live.is_some())
            .finish()
    }
}

impl CatalogService {
    /// A service over `world`.
    pub fn new(world: Arc<World>, config: Arc<Config>, live: Option<Arc<dyn LiveRater>>) -> Self {
        Self {
            world,
            config,
            live,
        }
    }
}

fn report(r: IngestReport) -> pb::IngestReport {
    let IngestReport {
        rows_read,
        rows_applied,
        rows_rejected,
        errors,
        refused,
    } = r;
    pb::IngestReport {
        rows_read,
        rows_applied,
        rows_rejected,
        errors: errors
            .into_iter()
            .map(|e| pb::RowError {
                line: e.line,
                message: e.message,
            })
            .collect(),
        refused: refused.is_some(),
        refusal: refused.unwrap_or_default(),
    }
}

#[tonic::async_trait]
impl pb::catalog_server::Catalog for CatalogService {
    async fn ingest_feed(
        &self,
        request: Request<Streaming<pb::FeedChunk>>,
    ) -> Result<Response<pb::IngestReport>, Status> {
        let mut stream = request.into_inner();
        let first = match stream.next().await {
            Some(chunk) => chunk?,
            None => return Err(convert::invalid("supplier_id", "the stream sent no chunk")),
        };
        let pb::FeedChunk {
            supplier_id,
            data,
            full_snapshot,
        } = first;
        let supplier = convert::supplier(&self.world, "supplier_id", &supplier_id)?;
        let kind = if full_snapshot {
            FeedKind::Full
        } else {
            FeedKind::Delta
        };
        let rest = stream.map(|chunk| match chunk {
            Ok(c) => Ok(bytes::Bytes::from(c.data)),
            // A broken stream aborts the feed; nothing of it is applied.
            Err(status) => Err(format!("feed stream failed: {}", status.message())),
        });
        let chunks = futures::stream::iter([Ok(bytes::Bytes::from(data))]).chain(rest);
        let outcome = ingest_chunks(
            Arc::clone(&self.world),
            supplier,
            kind,
            self.config.feeds.feed_bytes_max,
            Box::pin(chunks),
        )
        .await;
        match outcome {
            Ok(r) => Ok(Response::new(report(r))),
            Err(e) => Err(status::feed_error(e)),
        }
    }

    async fn get_offers(
        &self,
        request: Request<pb::GetOffersRequest>,
    ) -> Result<Response<pb::GetOffersResponse>, Status> {
        let pb::GetOffersRequest { sku } = request.into_inner();
        let sku = convert::text("sku", &sku, limits::SKU_BYTES_MAX)?;
        if sku.is_empty() {
            return Err(convert::invalid("sku", "is empty"));
        }
        let product = self
            .world
            .catalog
            .by_sku(sku.as_bytes())
            .ok_or_else(|| Status::not_found(format!("sku `{sku}` is not in the catalog")))?;
        let offers = self
            .world
            .offers(product)
            .iter()
            .map(|o| convert::offer(&self.world, o))
            .collect();
        Ok(Response::new(pb::GetOffersResponse { offers }))
    }

    async fn rate_shipment(
        &self,
        request: Request<pb::RateShipmentRequest>,
    ) -> Result<Response<pb::RateShipmentResponse>, Status> {
        let deadline = deadline::deadline(request.metadata(), Instant::now());
        let pb::RateShipmentRequest {
            origin,
            destination,
            lines,
            supplier_id,
        } = request.into_inner();
        let origin = convert::address(&self.world, origin, "origin")?;
        let destination = convert::address(&self.world, destination, "destination")?;
        let demands = convert::demands(&self.world, lines, &self.config.quote)?;
        let mut items = Vec::with_capacity(demands.len());
        for d in &demands {
            let product = d.product.ok_or_else(|| {
                convert::invalid(
                    &format!("lines[{}].sku", d.line),
                    format!("unknown SKU `{}`", d.sku),
                )
            })?;
            items.push((product, d.qty));
        }
        let supplier = match supplier_id.trim() {
            "" => None,
            id => Some(convert::supplier(&self.world, "supplier_id", id)?),
        };
        let rated = self
            .world
            .rate_shipment(&origin, &destination, &items, supplier)
            .map_err(status::freight_error)?;
        let answers = match &self.live {
            Some(rater) => {
                let budget = deadline::budget(
                    deadline,
                    Duration::from_millis(self.config.quote.deadline_reserve_ms),
                    Duration::from_millis(self.config.quote.live_budget_ms),
                );
                let shipment = LiveShipment {
                    origin,
                    destination,
                    parcels: rated.parcels.clone(),
                };
                rater.rates(&shipment, budget).await
            }
            None => Vec::new(),
        };
        let rates = merge(&self.world.freight, &rated, &answers);
        Ok(Response::new(convert::rated(
            &rated.parcels,
            &rates,
            &self.world.currency,
        )))
    }
}

//! The loaded world: catalog, suppliers, freight tables and the offer index,
//! plus the one way feeds get into it.

use std::io::Read;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use super::address::Address;
use super::catalog::{Catalog, ProductId};
use super::clock::Clock;
use super::feeds::{
    apply_parsed, parse_feed, FeedBoard, FeedError, FeedRules, IngestReport, Mapping,
};
use super::freight::{
    Endpoint, Freight, FreightError, FreightFloor, Item, ItemLine, Lane, LaneKey, Packing, Place,
    RatedShipment,
};
use super::index::OfferIndex;
use super::ledger::{LedgerLink, StockKey};
use super::suppliers::{FeedKind, SupplierId, SupplierRegistry};

/// Everything the service answers from.
pub struct World {
    /// The merchant's products.
    pub catalog: Catalog,
    /// Who ships.
    pub suppliers: SupplierRegistry,
    /// Carriers, zones, boxes.
    pub freight: Freight,
    /// Offers.
    pub index: OfferIndex,
    /// Per-supplier mapping files, by supplier id.
    pub mappings: Vec<Option<Mapping>>,
    /// How feeds are judged.
    pub feed_rules: FeedRules,
    /// Feed outcomes per supplier.
    pub feeds: Arc<FeedBoard>,
    /// The merchant's currency.
    pub currency: String,
    /// Time.
    pub clock: Arc<dyn Clock>,
    /// The reservation ledger's counts and feed hook, once it is open;
    /// until then nothing is counted.
    pub ledger: OnceLock<LedgerLink>,
    /// Where each supplier's origin lies for lanes, by supplier id (`None`:
    /// no lane starts there), found on first use: every quote needs it for
    /// each supplier it considers, and it depends on this world alone.
    pub origins: OnceLock<Vec<Option<Place>>>,
}

impl std::fmt::Debug for World {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("World")
            .field("products", &self.catalog.len())
            .field("suppliers", &self.suppliers.len())
            .field("offers", &self.index.offers_total())
            .finish()
    }
}

impl World {
    /// Units of `product` from `supplier` that the ledger holds or has
    /// allocated and not yet seen reflected in a newer full feed: what
    /// availability subtracts from the supplier's quantity.
    #[inline]
    pub fn counted(&self, supplier: SupplierId, product: ProductId) -> u32 {
        match self.ledger.get() {
            Some(link) => link.holds.counted(StockKey { supplier, product }),
            None => 0,
        }
    }

    /// Parses and applies one feed of `supplier`, whose data is as of now.
    /// Blocking and CPU-heavy: call it off the async threads. The outcome is
    /// logged, counted and recorded.
    pub fn ingest(
        &self,
        supplier: SupplierId,
        kind: FeedKind,
        reader: impl Read + Send,
    ) -> Result<IngestReport, FeedError> {
        self.ingest_as_of(supplier, kind, reader, None)
    }

    /// As [`World::ingest`], for data as of `as_of_ms` (Unix ms; `None` =
    /// when reading starts). A full feed tells the ledger, which stops
    /// counting allocations committed before `as_of_ms`: so a file re-read
    /// unchanged (its modification time as `as_of_ms`) retires nothing.
    pub fn ingest_as_of(
        &self,
        supplier: SupplierId,
        kind: FeedKind,
        reader: impl Read + Send,
        as_of_ms: Option<i64>,
    ) -> Result<IngestReport, FeedError> {
        let started = Instant::now();
        let as_of_ms = as_of_ms.unwrap_or_else(|| self.clock.now_ms());
        let external = self
            .suppliers
            .get(supplier)
            .map(|s| s.id.clone())
            .unwrap_or_default();
        let mapping = self
            .mappings
            .get(supplier as usize)
            .and_then(Option::as_ref);
        let parsed = parse_feed(
            reader,
            &self.catalog,
            mapping,
            &self.feed_rules,
            self.clock.now_s(),
        );
        let outcome = parsed.map(|p| {
            apply_parsed(
                &self.index,
                supplier,
                kind,
                p,
                &self.feed_rules,
                self.clock.now_ms(),
            )
        });
        let kind_label = match kind {
            FeedKind::Full => "full",
            FeedKind::Delta => "delta",
        };
        let result = match &outcome {
            Ok(r) if r.refused.is_none() => "applied",
            Ok(_) => "refused",
            Err(_) => "unreadable",
        };
        metrics::counter!("stockroute_feed_ingests_total", "supplier" => external.clone(), "kind" => kind_label, "result" => result).increment(1);
        metrics::histogram!("stockroute_feed_ingest_seconds")
            .record(started.elapsed().as_secs_f64());
        match &outcome {
            Ok(report) => {
                metrics::counter!("stockroute_feed_rows_rejected_total", "supplier" => external.clone())
                    .increment(report.rows_rejected);
                for e in report.errors.iter().take(20) {
                    tracing::warn!(supplier = %external, line = e.line, reason = %e.message, "feed row rejected");
                }
                if report.rows_rejected > 20 {
                    tracing::warn!(supplier = %external, more = report.rows_rejected - 20, "further feed rows rejected");
                }
                match &report.refused {
                    None => {
                        tracing::info!(
                            supplier = %external, kind = kind_label, rows_read = report.rows_read,
                            rows_applied = report.rows_applied, rows_rejected = report.rows_rejected,
                            elapsed_ms = started.elapsed().as_millis() as u64, "feed applied"
                        );
                        self.feeds.record(supplier, self.clock.now_ms(), Ok(()));
                        if kind == FeedKind::Full {
                            if let Some(link) = self.ledger.get() {
                                (link.on_full_feed)(supplier, &external, as_of_ms);
                            }
                        }
                    }
                    Some(why) => {
                        tracing::error!(supplier = %external, reason = %why, "feed refused");
                        self.feeds
                            .record(supplier, self.clock.now_ms(), Err(why.clone()));
                    }
                }
            }
            Err(e) => {
                tracing::error!(supplier = %external, error = %e, "feed unreadable");
                self.feeds
                    .record(supplier, self.clock.now_ms(), Err(e.to_string()));
            }
        }
        outcome
    }

    /// Records a feed that failed before parsing (a download error, say).
    pub fn record_feed_failure(&self, supplier: SupplierId, error: &str) {
        let external = self
            .suppliers
            .get(supplier)
            .map(|s| s.id.clone())
            .unwrap_or_default();
        metrics::counter!("stockroute_feed_ingests_total", "supplier" => external.clone(), "kind" => "any", "result" => "unreadable").increment(1);
        tracing::error!(supplier = %external, error, "feed fetch failed");
        self.feeds
            .record(supplier, self.clock.now_ms(), Err(error.to_owned()));
    }

    /// One unit of a product as freight sees it.
    pub fn item(&self, product: ProductId) -> Option<Item> {
        let (weight_g, [length_mm, width_mm, height_mm]) = self.catalog.weight_and_dims(product)?;
        Some(Item {
            weight_g,
            length_mm,
            width_mm,
            height_mm,
        })
    }

    /// Packs and rates `lines` from `origin` to `destination`, adding the
    /// handling fee of `supplier` when given. The planner prices shipments
    /// through this same function, which is why a plan's freight always equals
    /// what `RateShipment` says for the same lines.
    pub fn rate_shipment(
        &self,
        origin: &Address,
        destination: &Address,
        lines: &[(ProductId, u32)],
        supplier: Option<SupplierId>,
    ) -> Result<RatedShipment, FreightError> {
        let lane = self.lane(origin, destination)?;
        self.rate_on_lane(&lane, lines, supplier)
    }

    /// The carrier services from `origin` to `destination`, found once for
    /// any number of [`World::rate_on_lane`] and [`World::floor_on_lane`].
    pub fn lane(&self, origin: &Address, destination: &Address) -> Result<Lane<'_>, FreightError> {
        self.freight
            .lane_between(endpoint(origin), endpoint(destination))
    }

    /// Where `supplier`'s origin lies for lanes (see [`World::origins`]);
    /// `None` for an unknown supplier or an origin no lane starts from.
    pub fn origin_place(&self, supplier: SupplierId) -> Option<Place> {
        let origins = self.origins.get_or_init(|| {
            let mut places = vec![None; self.suppliers.len()];
            for (id, s) in self.suppliers.iter() {
                if let Some(slot) = places.get_mut(usize::from(id)) {
                    *slot = self.freight.place(endpoint(&s.origin)).ok();
                }
            }
            places
        });
        origins.get(usize::from(supplier)).copied().flatten()
    }

    /// The lane of `key`, found for `destination`.
    pub fn lane_at(&self, key: LaneKey, destination: &Address) -> Result<Lane<'_>, FreightError> {
        self.freight.lane_at(key, endpoint(destination))
    }

    /// [`World::rate_shipment`] on a lane already found.
    pub fn rate_on_lane(
        &self,
        lane: &Lane<'_>,
        lines: &[(ProductId, u32)],
        supplier: Option<SupplierId>,
    ) -> Result<RatedShipment, FreightError> {
        let mut items: Vec<ItemLine> = Vec::with_capacity(lines.len());
        let mut sorted = lines.to_vec();
        // One canonical order, so packing never depends on how the lines came.
        sorted.sort_unstable();
        for (product, quantity) in sorted {
            if let Some(item) = self.item(product) {
                items.push(ItemLine { item, quantity });
            }
        }
        self.freight.rate_on(
            lane,
            &items,
            self.handling_fee(supplier),
            Packing::Optimised,
        )
    }

    /// The least [`World::rate_on_lane`] can say for any shipment on `lane`
    /// from `supplier` by the profile of its goods (the planner's lower
    /// bound); see [`FreightFloor`].
    pub fn floor_on_lane<'a>(
        &'a self,
        lane: &Lane<'a>,
        supplier: Option<SupplierId>,
    ) -> FreightFloor<'a> {
        self.freight.floor_on(lane, self.handling_fee(supplier))
    }

    fn handling_fee(&self, supplier: Option<SupplierId>) -> rust_decimal::Decimal {
        supplier
            .and_then(|s| self.suppliers.get(s))
            .map(|s| s.handling_fee)
            .unwrap_or_default()
    }
}

/// A shipping address as freight sees one end of a lane.
pub(crate) fn endpoint(a: &Address) -> Endpoint<'_> {
    Endpoint {
        country_code: &a.country_code,
        postal_code: &a.postal_code,
        residential: a.residential,
    }
}

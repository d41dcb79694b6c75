//! Real-time stock: asking the suppliers that answer live, laying their
//! answers over the index for one request, and keeping the index fresh.
//!
//! A request ([`RealtimeStock::gather`]) asks every real-time-capable
//! supplier that offers a basket product, through the [`StockGateway`] port,
//! within the caller's budget. What comes back is an [`Overlay`]: per
//! (supplier, product), the available units, cost, `as_of` and whether the
//! answer is fresh ([`StockSource::Realtime`]) or from the gateway's cache
//! ([`StockSource::CachedRealtime`]), plus the [`Freshness`] counts. Quotes
//! and stock checks read every offer through the overlay; suppliers that did
//! not answer keep what the index holds.
//!
//! Fresh answers are also queued for the index and applied in batches
//! ([`RealtimeStock::flush`]), conditional on `as_of` (`OfferIndex::apply_realtime`),
//! so data never goes backwards: an older answer never replaces newer feed
//! data, nor an older feed row a newer answer. Batching bounds the cost of
//! copy-on-write snapshots to one per supplier per flush however many
//! requests ask.
//!
//! This module never sees HTTP: the port's implementation lives in
//! `adapters::http::suppliers`, and tests use in-memory gateways.

mod overlay;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use parking_lot::Mutex;
use rustc_hash::FxHashMap;

use super::catalog::ProductId;
use super::index::{OfferIndex, RealtimeRow};
use super::money::CostUnits;
use super::quoting::Demand;
use super::suppliers::SupplierId;
use super::world::World;

pub use overlay::{Overlay, SeenOffer};

/// Most real-time readings waiting for the index; past this, new ones are
/// dropped (the gateway's cache still serves them) until the next flush.
pub const PENDING_ROWS_MAX: usize = 100_000;

/// Where data about an offer came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StockSource {
    /// The supplier's feed.
    Feed,
    /// A real-time answer during this request.
    Realtime,
    /// An earlier real-time answer: the gateway's cache, or the index
    /// updated by an answer to an earlier request.
    CachedRealtime,
}

/// Who was asked in real time and how it went.
///
/// `queried = answered + timed_out + failed`; suppliers whose items were all
/// in the gateway's cache count as `cached` and not as queried.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Freshness {
    /// Real-time suppliers asked.
    pub queried: u32,
    /// Answered in time.
    pub answered: u32,
    /// Did not answer in time.
    pub timed_out: u32,
    /// Answered unusably, refused, or skipped while their circuit is open.
    pub failed: u32,
    /// Not asked: everything needed was in the cache.
    pub cached: u32,
}

/// One item to ask a supplier about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StockQuestion {
    /// Our product.
    pub product: ProductId,
    /// The supplier's code for it.
    pub supplier_sku: String,
    /// Units the basket wants.
    pub quantity: u32,
}

/// Everything to ask one supplier, in one batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SupplierQuestion {
    /// Who.
    pub supplier: SupplierId,
    /// What, one entry per product.
    pub items: Vec<StockQuestion>,
}

/// What a supplier said about one item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemState {
    /// It has the item.
    Known {
        /// Units available.
        available: u32,
        /// Unit cost.
        cost: CostUnits,
    },
    /// It does not know the item (the item was missing from its answer).
    Unknown,
}

/// A real-time answer about one item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ItemAnswer {
    /// Our product.
    pub product: ProductId,
    /// What the supplier said.
    pub state: ItemState,
    /// When the supplier said its data was from (Unix seconds).
    pub as_of_s: u32,
    /// Served from the gateway's cache rather than asked now.
    pub cached: bool,
}

/// How asking one supplier went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AskOutcome {
    /// It answered in time (items not in its answer are `Unknown`).
    Answered,
    /// Not asked: every item was in the cache.
    Cached,
    /// No answer within the budget.
    TimedOut,
    /// It answered unusably or refused, or its circuit is open; the reason says which.
    Failed(String),
}

/// One supplier's part of a real-time check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SupplierAnswer {
    /// Who.
    pub supplier: SupplierId,
    /// How asking went.
    pub outcome: AskOutcome,
    /// The items with an answer, fresh or cached; items it said nothing
    /// usable about are left out (their feed data stands).
    pub items: Vec<ItemAnswer>,
}

/// The suppliers' real-time APIs, behind a port so the domain stays free of HTTP.
pub trait StockGateway: Send + Sync {
    /// Asks every supplier in `questions` concurrently, each bounded by
    /// `budget`. Never fails: a supplier that cannot answer is an answer with
    /// `TimedOut` or `Failed` (and whatever its cache had).
    fn ask<'a>(
        &'a self,
        questions: &'a [SupplierQuestion],
        budget: Duration,
    ) -> BoxFuture<'a, Vec<SupplierAnswer>>;
}

/// What to ask: every real-time-capable supplier (not in `excluded`) that
/// the index says offers a product of the basket, one batch per supplier,
/// in supplier order.
pub fn questions(
    world: &World,
    lines: &[Demand],
    excluded: &[SupplierId],
) -> Vec<SupplierQuestion> {
    let view = world.index.view();
    let mut by_supplier: Vec<SupplierQuestion> = Vec::new();
    let mut offers = Vec::new();
    for d in lines {
        let Some(product) = d.product else {
            continue;
        };
        offers.clear();
        view.offers_into(product, &mut offers);
        for o in &offers {
            let live = world
                .suppliers
                .get(o.supplier)
                .is_some_and(|s| s.realtime.is_some());
            if !live || excluded.contains(&o.supplier) || o.supplier_sku.is_empty() {
                continue;
            }
            let question = StockQuestion {
                product,
                supplier_sku: o.supplier_sku.to_owned(),
                quantity: d.qty,
            };
            match by_supplier.iter_mut().find(|q| q.supplier == o.supplier) {
                Some(q) => q.items.push(question),
                None => by_supplier.push(SupplierQuestion {
                    supplier: o.supplier,
                    items: vec![question],
                }),
            }
        }
    }
    by_supplier.sort_by_key(|q| q.supplier);
    by_supplier
}

/// The real-time side of the quote path: the gateway, and the readings
/// waiting to be applied to the index.
pub struct RealtimeStock {
    gateway: Arc<dyn StockGateway>,
    /// Fresh readings per supplier and product, the latest kept.
    pending: Mutex<FxHashMap<SupplierId, FxHashMap<ProductId, RealtimeRow>>>,
}

impl std::fmt::Debug for RealtimeStock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RealtimeStock")
            .field("pending_suppliers", &self.pending.lock().len())
            .finish()
    }
}

impl RealtimeStock {
    /// Real-time stock through `gateway`.
    pub fn new(gateway: Arc<dyn StockGateway>) -> Self {
        RealtimeStock {
            gateway,
            pending: Mutex::new(FxHashMap::default()),
        }
    }

    /// Asks the real-time suppliers about the basket within `budget` and
    /// returns what this request should see. Fresh answers are queued for
    /// the index. A basket no real-time supplier offers asks nobody.
    pub async fn gather(
        &self,
        world: &World,
        lines: &[Demand],
        excluded: &[SupplierId],
        budget: Duration,
    ) -> Overlay {
        let questions = questions(world, lines, excluded);
        if questions.is_empty() {
            return Overlay::default();
        }
        let answers = self.gateway.ask(&questions, budget).await;
        let overlay = Overlay::from_answers(&answers, world.clock.now_s());
        self.remember(&overlay);
        overlay
    }

    /// Queues the overlay's fresh readings for the index.
    fn remember(&self, overlay: &Overlay) {
        let mut pending = self.pending.lock();
        let mut total: usize = pending.values().map(FxHashMap::len).sum();
        for (supplier, row) in overlay.fresh_rows() {
            let rows = pending.entry(supplier).or_default();
            match rows.get_mut(&row.product) {
                Some(old) if old.as_of_s > row.as_of_s => {}
                Some(old) => *old = row,
                None if total < PENDING_ROWS_MAX => {
                    rows.insert(row.product, row);
                    total += 1;
                }
                None => {
                    metrics::counter!("stockroute_realtime_index_dropped_total").increment(1);
                }
            }
        }
    }

    /// Applies the queued readings to the index (each only where the index
    /// holds nothing newer); returns how many offers changed. One snapshot
    /// copy per supplier: call it off the async threads.
    pub fn flush(&self, index: &OfferIndex) -> usize {
        let pending = std::mem::take(&mut *self.pending.lock());
        let mut applied = 0;
        let mut rows = Vec::new();
        for (supplier, by_product) in pending {
            rows.clear();
            rows.extend(by_product.into_values());
            rows.sort_unstable_by_key(|r| r.product);
            applied += index.apply_realtime(supplier, &rows);
        }
        if applied > 0 {
            metrics::counter!("stockroute_realtime_index_updates_total").increment(applied as u64);
        }
        applied
    }

    /// True when readings are waiting for [`RealtimeStock::flush`].
    pub fn has_pending(&self) -> bool {
        !self.pending.lock().is_empty()
    }
}

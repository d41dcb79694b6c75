//! The offer index: every supplier's stock and price per product, in memory.
//!
//! Layout, and why:
//! - Each supplier's offers are one immutable `SupplierSnapshot`: the product
//!   ids sorted (searched), and beside them one 16-byte row per offer holding
//!   everything else, so a found offer costs one more cache line, not four
//!   (about 30 bytes an offer). A feed
//!   builds a new snapshot off to the side and swaps it in with one pointer
//!   store, so a reader sees a supplier's old feed or its new one, never a mix,
//!   and ingest never blocks a reader.
//! - All snapshots hang off one `ArcSwap`ed table. A reader takes the table
//!   once per request (`IndexView`), so everything it reads, across suppliers
//!   and lines, comes from one consistent moment.
//! - Which suppliers carry a product is a lock-sharded list per product id
//!   (`carriers`). It only grows between rebuilds, so it is a superset: a
//!   reader checks the snapshot and skips suppliers that no longer carry it.
//!   Writers add to it before publishing a snapshot that needs the entry.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwap;
use parking_lot::{Mutex, RwLock};
use smallvec::SmallVec;

use super::catalog::ProductId;
use super::money::CostUnits;
use super::suppliers::SupplierId;

/// Shards of the per-product carrier lists; a power of two.
const CARRIER_SHARDS: usize = 256;

/// Suppliers of one product, inline up to this many (the demo world's maximum is 8).
type Carriers = SmallVec<[SupplierId; 8]>;

/// One offer as a reader sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OfferRef<'a> {
    /// Who offers it.
    pub supplier: SupplierId,
    /// What.
    pub product: ProductId,
    /// Units in stock per the supplier's data.
    pub qty: u32,
    /// Unit cost in index units.
    pub cost: CostUnits,
    /// When the supplier's data said so (Unix seconds).
    pub as_of_s: u32,
    /// The supplier's own code for it.
    pub supplier_sku: &'a str,
}

/// One row to put into a snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewOffer {
    /// What.
    pub product: ProductId,
    /// Units in stock.
    pub qty: u32,
    /// Unit cost.
    pub cost: CostUnits,
    /// When the data is from (Unix seconds).
    pub as_of_s: u32,
    /// Start of the supplier SKU in the batch's byte buffer.
    pub sku_start: u32,
    /// Its length.
    pub sku_len: u32,
}

/// Offers of one supplier ready to apply, with their supplier SKUs in one buffer.
///
/// Rows must be sorted by product with no duplicates (`sort_dedup` does that).
#[derive(Debug, Default)]
pub struct OfferBatch {
    /// The rows.
    pub rows: Vec<NewOffer>,
    /// Supplier SKUs, end to end.
    pub sku_bytes: Vec<u8>,
}

impl OfferBatch {
    /// Adds a row, copying its supplier SKU into the buffer.
    pub fn push(
        &mut self,
        product: ProductId,
        qty: u32,
        cost: CostUnits,
        as_of_s: u32,
        sku: &[u8],
    ) {
        self.rows.push(NewOffer {
            product,
            qty,
            cost,
            as_of_s,
            sku_start: self.sku_bytes.len() as u32,
            sku_len: sku.len() as u32,
        });
        self.sku_bytes.extend_from_slice(sku);
    }

    fn sku(&self, row: &NewOffer) -> &[u8] {
        let start = row.sku_start as usize;
        &self.sku_bytes[start..start + row.sku_len as usize]
    }
}

/// Everything about one offer but its product, side by side in memory.
#[derive(Debug, Clone, Copy)]
struct OfferRow {
    qty: u32,
    cost: CostUnits,
    as_of_s: u32,
    /// End of its supplier SKU in `sku_bytes` (the start is the previous row's end).
    sku_end: u32,
}

/// One supplier's offers at one moment; immutable once published.
#[derive(Debug, Default)]
pub struct SupplierSnapshot {
    /// When this snapshot was applied (Unix ms); 0 = never loaded.
    pub applied_at_ms: i64,
    /// When the supplier's last full feed was applied (Unix ms); 0 = never.
    pub full_at_ms: i64,
    products: Vec<ProductId>,
    rows: Vec<OfferRow>,
    /// Supplier SKUs end to end; kept as a `String` so reading one is a slice,
    /// not a UTF-8 check per offer read.
    sku_bytes: String,
}

impl SupplierSnapshot {
    /// Number of offers.
    pub fn len(&self) -> usize {
        self.products.len()
    }

    /// True when the supplier offers nothing.
    pub fn is_empty(&self) -> bool {
        self.products.is_empty()
    }

    fn sku(&self, i: usize) -> &str {
        let start = if i == 0 {
            0
        } else {
            self.rows[i - 1].sku_end as usize
        };
        let end = self.rows[i].sku_end as usize;
        // Every SKU ends on a char boundary: only whole `str`s are pushed.
        self.sku_bytes.get(start..end).unwrap_or("")
    }

    fn find(&self, product: ProductId) -> Option<usize> {
        // Product ids are dense and a supplier's offers spread over them, so a
        // guess interpolated from the range's ends lands near the offer: a few
        // rounds of that touch far fewer cache lines than bisecting. Bisection
        // finishes the search and bounds the worst case.
        let p = self.products.as_slice();
        let (mut lo, mut hi) = (0usize, p.len());
        for _ in 0..4 {
            if hi - lo <= 16 {
                break;
            }
            let (first, last) = (p[lo], p[hi - 1]);
            if product < first || product > last {
                return None;
            }
            let offset = (u64::from(product - first) * (hi - lo - 1) as u64)
                .checked_div(u64::from(last - first))
                .unwrap_or(0);
            let g = lo + offset as usize;
            match p[g].cmp(&product) {
                std::cmp::Ordering::Equal => return Some(g),
                std::cmp::Ordering::Less => lo = g + 1,
                std::cmp::Ordering::Greater => hi = g,
            }
        }
        p[lo..hi].binary_search(&product).ok().map(|i| lo + i)
    }

    fn offer(&self, supplier: SupplierId, i: usize) -> OfferRef<'_> {
        let row = self.rows[i];
        OfferRef {
            supplier,
            product: self.products[i],
            qty: row.qty,
            cost: row.cost,
            as_of_s: row.as_of_s,
            supplier_sku: self.sku(i),
        }
    }

    fn with_capacity(n: usize, sku_bytes: usize) -> Self {
        Self {
            products: Vec::with_capacity(n),
            rows: Vec::with_capacity(n),
            sku_bytes: String::with_capacity(sku_bytes),
            ..Self::default()
        }
    }

    fn push(&mut self, product: ProductId, qty: u32, cost: CostUnits, as_of_s: u32, sku: &[u8]) {
        self.products.push(product);
        // A SKU that is not UTF-8 (never from `feeds`) reads back as "", as before.
        self.sku_bytes
            .push_str(std::str::from_utf8(sku).unwrap_or_default());
        self.rows.push(OfferRow {
            qty,
            cost,
            as_of_s,
            sku_end: self.sku_bytes.len() as u32,
        });
    }

    fn push_from(&mut self, other: &SupplierSnapshot, i: usize) {
        let row = other.rows[i];
        self.push(
            other.products[i],
            row.qty,
            row.cost,
            row.as_of_s,
            other.sku(i).as_bytes(),
        );
    }

    fn shrink(&mut self) {
        self.products.shrink_to_fit();
        self.rows.shrink_to_fit();
        self.sku_bytes.shrink_to_fit();
    }

    /// A snapshot holding exactly the batch.
    fn from_batch(batch: &OfferBatch) -> Self {
        let mut s = Self::with_capacity(batch.rows.len(), batch.sku_bytes.len());
        for r in &batch.rows {
            s.push(r.product, r.qty, r.cost, r.as_of_s, batch.sku(r));
        }
        s
    }

    /// This snapshot with the batch's rows replacing or adding to its own.
    fn merged(&self, batch: &OfferBatch) -> Self {
        let mut s = Self::with_capacity(
            self.len() + batch.rows.len(),
            self.sku_bytes.len() + batch.sku_bytes.len(),
        );
        let (mut i, mut j) = (0, 0);
        while i < self.len() || j < batch.rows.len() {
            let old = self.products.get(i).copied();
            let new = batch.rows.get(j).map(|r| r.product);
            match (old, new) {
                (Some(o), Some(n)) if o < n => {
                    s.push_from(self, i);
                    i += 1;
                }
                (Some(_), None) => {
                    s.push_from(self, i);
                    i += 1;
                }
                (o, Some(n)) => {
                    let r = &batch.rows[j];
                    s.push(r.product, r.qty, r.cost, r.as_of_s, batch.sku(r));
                    j += 1;
                    if o == Some(n) {
                        i += 1;
                    }
                }
                (None, None) => break,
            }
        }
        s.shrink();
        s
    }
}

/// Sorts rows by product and drops the earlier of duplicate products, returning
/// the positions (in input order) of the rows dropped.
pub fn sort_dedup(batch: &mut OfferBatch) -> Vec<usize> {
    // Each key is (product, input position) in one u64: sorting the keys orders
    // by product and, among equal products, by input order (so the last row
    // wins), without chasing rows through memory during the sort.
    let mut order: Vec<u64> = batch
        .rows
        .iter()
        .enumerate()
        .map(|(i, r)| (u64::from(r.product) << 32) | i as u64)
        .collect();
    order.sort_unstable();
    let product_of = |key: u64| (key >> 32) as ProductId;
    let mut dropped = Vec::new();
    let mut rows = Vec::with_capacity(batch.rows.len());
    for (k, &key) in order.iter().enumerate() {
        let i = key as u32 as usize;
        let next_same = order
            .get(k + 1)
            .is_some_and(|&n| product_of(n) == product_of(key));
        if next_same {
            dropped.push(i);
        } else {
            rows.push(batch.rows[i]);
        }
    }
    batch.rows = rows;
    dropped.sort_unstable();
    dropped
}

/// The whole index.
pub struct OfferIndex {
    world: ArcSwap<Vec<Arc<SupplierSnapshot>>>,
    /// Serialises writers so that two suppliers' feeds never lose each other's swap.
    writer: Mutex<()>,
    carriers: Box<[RwLock<Vec<Carriers>>]>,
    offers_total: AtomicU64,
}

impl std::fmt::Debug for OfferIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OfferIndex")
            .field("suppliers", &self.world.load().len())
            .field("offers", &self.offers_total())
            .finish()
    }
}

impl OfferIndex {
    /// An empty index for `suppliers` suppliers and `products` products.
    pub fn new(suppliers: usize, products: usize) -> Self {
        let per_shard = products.div_ceil(CARRIER_SHARDS);
        let carriers = (0..CARRIER_SHARDS)
            .map(|_| RwLock::new(vec![Carriers::new(); per_shard]))
            .collect();
        Self {
            world: ArcSwap::from_pointee(
                (0..suppliers)
                    .map(|_| Arc::new(SupplierSnapshot::default()))
                    .collect(),
            ),
            writer: Mutex::new(()),
            carriers,
            offers_total: AtomicU64::new(0),
        }
    }

    /// A consistent view for one request.
    pub fn view(&self) -> IndexView<'_> {
        IndexView {
            world: self.world.load_full(),
            index: self,
        }
    }

    /// Offers held, across suppliers.
    pub fn offers_total(&self) -> u64 {
        self.offers_total.load(Ordering::Relaxed)
    }

    /// Replaces all of a supplier's offers with the batch (sorted, deduplicated).
    pub fn apply_full(&self, supplier: SupplierId, batch: &OfferBatch, now_ms: i64) {
        let mut snap = SupplierSnapshot::from_batch(batch);
        snap.full_at_ms = now_ms;
        self.publish(supplier, batch, snap, now_ms);
    }

    /// Replaces or adds the batch's rows, keeping the supplier's other offers.
    pub fn apply_delta(&self, supplier: SupplierId, batch: &OfferBatch, now_ms: i64) {
        // Building the merge outside the writer lock would race a concurrent
        // full feed of the same supplier; merging is fast, so it stays inside.
        let _w = self.writer.lock();
        let current = Arc::clone(&self.world.load()[supplier as usize]);
        let mut snap = current.merged(batch);
        snap.full_at_ms = current.full_at_ms;
        self.publish_locked(supplier, batch, snap, now_ms);
    }

    fn publish(
        &self,
        supplier: SupplierId,
        batch: &OfferBatch,
        snap: SupplierSnapshot,
        now_ms: i64,
    ) {
        let _w = self.writer.lock();
        self.publish_locked(supplier, batch, snap, now_ms);
    }

    fn publish_locked(
        &self,
        supplier: SupplierId,
        batch: &OfferBatch,
        mut snap: SupplierSnapshot,
        now_ms: i64,
    ) {
        let world = self.world.load_full();
        let Some(old) = world.get(supplier as usize) else {
            return;
        };
        self.add_carriers(supplier, batch);
        snap.applied_at_ms = now_ms;
        let (old_len, new_len) = (old.len() as u64, snap.len() as u64);
        let mut next: Vec<Arc<SupplierSnapshot>> = world.as_ref().clone();
        next[supplier as usize] = Arc::new(snap);
        self.world.store(Arc::new(next));
        self.offers_total.fetch_add(new_len, Ordering::Relaxed);
        self.offers_total.fetch_sub(old_len, Ordering::Relaxed);
    }

    /// Records that `supplier` carries every product of the batch.
    fn add_carriers(&self, supplier: SupplierId, batch: &OfferBatch) {
        // Group by shard so that each shard's write lock is taken once per
        // feed, and only when something is actually new to it: a repeat of
        // yesterday's feed takes read locks only.
        let mut by_shard: Vec<Vec<ProductId>> = vec![Vec::new(); CARRIER_SHARDS];
        for r in &batch.rows {
            by_shard[r.product as usize % CARRIER_SHARDS].push(r.product);
        }
        for (shard, products) in by_shard.iter().enumerate() {
            if products.is_empty() {
                continue;
            }
            let lock = &self.carriers[shard];
            let missing = {
                let slots = lock.read();
                products.iter().any(|&p| {
                    slots
                        .get(p as usize / CARRIER_SHARDS)
                        .is_some_and(|c| !c.contains(&supplier))
                })
            };
            if missing {
                let mut slots = lock.write();
                for &p in products {
                    if let Some(c) = slots.get_mut(p as usize / CARRIER_SHARDS) {
                        if let Err(pos) = c.binary_search(&supplier) {
                            c.insert(pos, supplier);
                        }
                    }
                }
            }
        }
    }

    /// When each supplier's data was last applied (Unix ms; 0 = never).
    pub fn applied_at_ms(&self) -> Vec<i64> {
        self.world.load().iter().map(|s| s.applied_at_ms).collect()
    }
}

/// A consistent read of the index for one request.
pub struct IndexView<'a> {
    world: Arc<Vec<Arc<SupplierSnapshot>>>,
    index: &'a OfferIndex,
}

impl IndexView<'_> {
    /// Appends every offer for `product` to `out`, in supplier id order.
    pub fn offers_into<'v>(&'v self, product: ProductId, out: &mut Vec<OfferRef<'v>>) {
        let shard = &self.index.carriers[product as usize % CARRIER_SHARDS];
        let carriers: Carriers = match shard.read().get(product as usize / CARRIER_SHARDS) {
            Some(c) => c.clone(),
            None => return,
        };
        for supplier in carriers {
            let Some(snap) = self.world.get(supplier as usize) else {
                continue;
            };
            if let Some(i) = snap.find(product) {
                out.push(snap.offer(supplier, i));
            }
        }
    }

    /// Every offer for `product`.
    pub fn offers(&self, product: ProductId) -> Vec<OfferRef<'_>> {
        let mut out = Vec::new();
        self.offers_into(product, &mut out);
        out
    }

    /// One supplier's offer for `product`.
    pub fn offer(&self, supplier: SupplierId, product: ProductId) -> Option<OfferRef<'_>> {
        let snap = self.world.get(supplier as usize)?;
        snap.find(product).map(|i| snap.offer(supplier, i))
    }

    /// A supplier's snapshot as of this view.
    pub fn snapshot(&self, supplier: SupplierId) -> Option<&SupplierSnapshot> {
        self.world.get(supplier as usize).map(Arc::as_ref)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(rows: &[(ProductId, u32, CostUnits)]) -> OfferBatch {
        let mut b = OfferBatch::default();
        for &(p, q, c) in rows {
            b.push(p, q, c, 100, format!("S-{p}").as_bytes());
        }
        sort_dedup(&mut b);
        b
    }

    #[test]
    fn full_feed_replaces_and_delta_amends() {
        let idx = OfferIndex::new(2, 1000);
        idx.apply_full(0, &batch(&[(5, 1, 10), (700, 2, 20)]), 1);
        idx.apply_full(1, &batch(&[(5, 9, 11)]), 1);
        let v = idx.view();
        let offers = v.offers(5);
        assert_eq!(offers.len(), 2);
        assert_eq!(offers[0].supplier_sku, "S-5");
        assert_eq!(idx.offers_total(), 3);

        idx.apply_delta(0, &batch(&[(5, 0, 12), (6, 3, 30)]), 2);
        let v2 = idx.view();
        assert_eq!(v2.offer(0, 5).unwrap().qty, 0);
        assert_eq!(v2.offer(0, 6).unwrap().cost, 30);
        assert_eq!(v2.offer(0, 700).unwrap().qty, 2);
        // The old view still sees the old data.
        assert_eq!(v.offer(0, 5).unwrap().qty, 1);
        assert!(v.offer(0, 6).is_none());

        idx.apply_full(0, &batch(&[(6, 1, 1)]), 3);
        let v3 = idx.view();
        assert!(v3.offer(0, 5).is_none());
        assert_eq!(
            v3.offers(5).len(),
            1,
            "a carrier no longer offering is skipped"
        );
        assert_eq!(idx.offers_total(), 2);
    }

    #[test]
    fn sort_dedup_keeps_the_last_row_of_a_product() {
        let mut b = OfferBatch::default();
        b.push(3, 1, 1, 0, b"a");
        b.push(1, 1, 1, 0, b"b");
        b.push(3, 2, 2, 0, b"c");
        let dropped = sort_dedup(&mut b);
        assert_eq!(dropped, vec![0]);
        assert_eq!(
            b.rows.iter().map(|r| r.product).collect::<Vec<_>>(),
            vec![1, 3]
        );
        assert_eq!(b.rows[1].qty, 2);
    }

    #[test]
    fn out_of_range_ids_are_ignored_not_panics() {
        let idx = OfferIndex::new(1, 10);
        assert!(idx.view().offers(1_000_000).is_empty());
        assert!(idx.view().offer(9, 1).is_none());
        idx.apply_full(7, &batch(&[(1, 1, 1)]), 0);
        assert_eq!(idx.offers_total(), 0);
    }

    proptest::proptest! {
        /// Any sequence of full and delta feeds leaves the index equal to a
        /// simple model: full replaces the supplier's map, delta updates it.
        #[test]
        fn index_matches_a_model(ops in proptest::collection::vec(
            (0u16..3, proptest::prelude::any::<bool>(), proptest::collection::vec((0u32..64, 0u32..100), 0..20)),
            1..20,
        )) {
            let idx = OfferIndex::new(3, 64);
            let mut model: Vec<std::collections::BTreeMap<u32, u32>> = vec![Default::default(); 3];
            for (supplier, full, rows) in ops {
                let mut b = OfferBatch::default();
                for &(p, q) in &rows {
                    b.push(p, q, q, 1, b"x");
                }
                sort_dedup(&mut b);
                let m = &mut model[supplier as usize];
                if full {
                    m.clear();
                    idx.apply_full(supplier, &b, 1);
                } else {
                    idx.apply_delta(supplier, &b, 1);
                }
                for r in &b.rows {
                    m.insert(r.product, r.qty);
                }
            }
            let view = idx.view();
            for p in 0..64u32 {
                let got: Vec<(u16, u32)> = view.offers(p).iter().map(|o| (o.supplier, o.qty)).collect();
                let want: Vec<(u16, u32)> = (0..3u16)
                    .filter_map(|s| model[s as usize].get(&p).map(|&q| (s, q)))
                    .collect();
                proptest::prop_assert_eq!(got, want);
            }
            let total: usize = model.iter().map(|m| m.len()).sum();
            proptest::prop_assert_eq!(idx.offers_total(), total as u64);
        }
    }
}

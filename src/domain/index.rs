//! The offer index: every supplier's stock and price per product, in memory.
//!
//! Layout, and why:
//! - Each supplier's offers are one immutable `SupplierSnapshot`: one 20-byte
//!   row per offer, sorted by product id (searched) and holding everything
//!   about the offer, so a found offer costs one cache line plus its SKU
//!   (about 30 bytes an offer). A feed builds a new snapshot off to the side
//!   and swaps it in with one pointer store, so a reader sees a supplier's old
//!   feed or its new one, never a mix, and ingest never blocks a reader.
//! - Which suppliers carry a product is a compact table (`CarrierChunk`s of
//!   `CHUNK` products each, CSR: per product a start offset into one flat
//!   array of 4-byte entries, sorted by supplier). Each entry also holds a
//!   hint: the product's row among the supplier's rows of that chunk in its
//!   latest snapshot; the snapshot itself records where each chunk's rows
//!   begin (`chunk_start`), so a lookup usually goes straight to the row
//!   instead of searching, and a feed that adds or drops a row only moves the
//!   hints of its own chunk. A hint is only ever a guess: the reader checks the
//!   product id in the row it points at (in the reader's own snapshot) and
//!   searches when it does not match, so a stale hint costs time, never
//!   correctness.
//! - Snapshots and the carrier table hang off one `ArcSwap`ed `Published`. A
//!   reader takes it once per request (`IndexView`), so everything it reads,
//!   across suppliers and lines, comes from one consistent moment, with no
//!   lock anywhere on the read path. The carrier lists only grow, so they are
//!   a superset: a reader skips suppliers that no longer carry a product.
//!   A writer rebuilds only the chunks that gain a carrier and publishes them
//!   together with the snapshot that needs them.
//! - Data never goes backwards: every row carries its `as_of`, and a feed row
//!   or a real-time reading replaces a row only when it is at least as new
//!   (`apply_full`, `apply_delta`, `apply_realtime`). Rows that came from a
//!   real-time answer are marked in a per-snapshot bitmap, outside the rows,
//!   so the read path and the row layout stay as they were.

use std::marker::PhantomData;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwap;
use parking_lot::Mutex;

use super::catalog::ProductId;
use super::money::CostUnits;
use super::suppliers::SupplierId;

/// log2 of the products per carrier chunk.
const CHUNK_BITS: u32 = 12;
/// Products per carrier chunk: small enough that a feed adding one carrier
/// copies little, large enough that the chunk list stays short.
const CHUNK: usize = 1 << CHUNK_BITS;
/// A hint that points nowhere (a chunk has fewer rows than this).
const NO_HINT: u16 = u16::MAX;

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
    /// The numbers came from a real-time answer rather than a feed.
    pub realtime: bool,
}

/// A real-time reading of one existing offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RealtimeRow {
    /// What.
    pub product: ProductId,
    /// Units available.
    pub qty: u32,
    /// Unit cost; `None` keeps the row's cost (the supplier did not know the item).
    pub cost: Option<CostUnits>,
    /// When the supplier's data is from (Unix seconds).
    pub as_of_s: u32,
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

/// One offer, side by side in memory: checking a hint (`product`) and reading
/// the offer touch the same cache line.
#[derive(Debug, Clone, Copy)]
struct OfferRow {
    product: ProductId,
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
    /// Sorted by product, no duplicates.
    rows: Vec<OfferRow>,
    /// Where the rows of carrier chunk `c` begin (up to the last row's chunk).
    chunk_start: Vec<u32>,
    /// Supplier SKUs end to end; kept as a `String` so reading one is a slice,
    /// not a UTF-8 check per offer read.
    sku_bytes: String,
    /// Bit `i` set: row `i` holds a real-time reading. Empty for suppliers
    /// that never answered in real time.
    realtime_rows: Vec<u64>,
    /// The newest `as_of_s` of any row, so a feed can tell cheaply whether it
    /// may simply replace the snapshot.
    newest_as_of_s: u32,
}

impl SupplierSnapshot {
    /// Number of offers.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// True when the supplier offers nothing.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    fn sku(&self, i: usize) -> &str {
        let start = match i.checked_sub(1) {
            Some(prev) => self.rows[prev].sku_end as usize,
            None => 0,
        };
        let end = self.rows[i].sku_end as usize;
        // Every SKU ends on a char boundary: only whole `str`s are pushed.
        self.sku_bytes.get(start..end).unwrap_or("")
    }

    /// Position of `product`, trying `hint` (its row within its chunk) first.
    #[inline]
    fn locate(&self, product: ProductId, hint: u16) -> Option<usize> {
        if let Some(&start) = self.chunk_start.get(product as usize >> CHUNK_BITS) {
            let i = start as usize + usize::from(hint);
            if self.rows.get(i).is_some_and(|r| r.product == product) {
                return Some(i);
            }
        }
        self.find(product)
    }

    /// Fills `chunk_start` once the rows are final.
    fn index_chunks(&mut self) {
        self.chunk_start.clear();
        for (i, r) in self.rows.iter().enumerate() {
            let c = r.product as usize >> CHUNK_BITS;
            while self.chunk_start.len() <= c {
                self.chunk_start.push(i as u32);
            }
        }
        self.chunk_start.shrink_to_fit();
    }

    /// The hint for row `i`: its position among its chunk's rows.
    fn hint_of(&self, i: usize) -> u16 {
        let c = self.rows[i].product as usize >> CHUNK_BITS;
        self.chunk_start
            .get(c)
            .and_then(|&start| u16::try_from(i - start as usize).ok())
            .unwrap_or(NO_HINT)
    }

    fn find(&self, product: ProductId) -> Option<usize> {
        // Product ids are dense and a supplier's offers spread over them, so a
        // guess interpolated from the range's ends lands near the offer: a few
        // rounds of that touch far fewer cache lines than bisecting. Bisection
        // finishes the search and bounds the worst case.
        let p = self.rows.as_slice();
        let (mut lo, mut hi) = (0usize, p.len());
        for _ in 0..4 {
            if hi - lo <= 16 {
                break;
            }
            let (first, last) = (p[lo].product, p[hi - 1].product);
            if product < first || product > last {
                return None;
            }
            let offset = (u64::from(product - first) * (hi - lo - 1) as u64)
                .checked_div(u64::from(last - first))
                .unwrap_or(0);
            let g = lo + offset as usize;
            match p[g].product.cmp(&product) {
                std::cmp::Ordering::Equal => return Some(g),
                std::cmp::Ordering::Less => lo = g + 1,
                std::cmp::Ordering::Greater => hi = g,
            }
        }
        p[lo..hi]
            .binary_search_by_key(&product, |r| r.product)
            .ok()
            .map(|i| lo + i)
    }

    fn offer(&self, supplier: SupplierId, i: usize) -> OfferRef<'_> {
        let row = self.rows[i];
        OfferRef {
            supplier,
            product: row.product,
            qty: row.qty,
            cost: row.cost,
            as_of_s: row.as_of_s,
            supplier_sku: self.sku(i),
            realtime: self.is_realtime(i),
        }
    }

    #[inline]
    fn is_realtime(&self, i: usize) -> bool {
        self.realtime_rows
            .get(i / 64)
            .is_some_and(|w| (w >> (i % 64)) & 1 == 1)
    }

    fn mark_realtime(&mut self, i: usize) {
        if self.realtime_rows.len() <= i / 64 {
            self.realtime_rows.resize(i / 64 + 1, 0);
        }
        self.realtime_rows[i / 64] |= 1 << (i % 64);
    }

    fn with_capacity(n: usize, sku_bytes: usize) -> Self {
        Self {
            rows: Vec::with_capacity(n),
            sku_bytes: String::with_capacity(sku_bytes),
            ..Self::default()
        }
    }

    fn push(&mut self, product: ProductId, qty: u32, cost: CostUnits, as_of_s: u32, sku: &[u8]) {
        // A SKU that is not UTF-8 (never from `feeds`) reads back as "", as before.
        self.sku_bytes
            .push_str(std::str::from_utf8(sku).unwrap_or_default());
        self.rows.push(OfferRow {
            product,
            qty,
            cost,
            as_of_s,
            sku_end: self.sku_bytes.len() as u32,
        });
        self.newest_as_of_s = self.newest_as_of_s.max(as_of_s);
    }

    /// Appends row `i` of `other`, real-time mark included.
    fn push_from(&mut self, other: &SupplierSnapshot, i: usize) {
        let row = other.rows[i];
        self.push(
            row.product,
            row.qty,
            row.cost,
            row.as_of_s,
            other.sku(i).as_bytes(),
        );
        if other.is_realtime(i) {
            self.mark_realtime(self.rows.len() - 1);
        }
    }

    fn shrink(&mut self) {
        self.rows.shrink_to_fit();
        self.sku_bytes.shrink_to_fit();
        self.realtime_rows.shrink_to_fit();
    }

    /// A snapshot holding exactly the batch.
    fn from_batch(batch: &OfferBatch) -> Self {
        let mut s = Self::with_capacity(batch.rows.len(), batch.sku_bytes.len());
        // Feeds lay the SKUs out in row order; then the whole buffer is
        // checked as UTF-8 once and copied, instead of row by row.
        let contiguous = batch
            .rows
            .iter()
            .try_fold(0u32, |at, r| (r.sku_start == at).then(|| at + r.sku_len))
            == Some(batch.sku_bytes.len() as u32);
        let whole = contiguous
            .then(|| std::str::from_utf8(&batch.sku_bytes).ok())
            .flatten();
        match whole {
            Some(all) => {
                s.sku_bytes.push_str(all);
                s.rows.extend(batch.rows.iter().map(|r| OfferRow {
                    product: r.product,
                    qty: r.qty,
                    cost: r.cost,
                    as_of_s: r.as_of_s,
                    sku_end: r.sku_start + r.sku_len,
                }));
                s.newest_as_of_s = batch.rows.iter().map(|r| r.as_of_s).max().unwrap_or(0);
            }
            None => {
                for r in &batch.rows {
                    s.push(r.product, r.qty, r.cost, r.as_of_s, batch.sku(r));
                }
            }
        }
        s.index_chunks();
        s
    }

    /// This snapshot with the batch's rows replacing or adding to its own,
    /// except where its own row is newer. With `full`, the batch is all the
    /// supplier offers as of `feed_as_of_s`: rows it lacks are dropped unless
    /// they are newer than that.
    fn merged(&self, batch: &OfferBatch, full: Option<u32>) -> Self {
        let mut s = Self::with_capacity(
            self.len() + batch.rows.len(),
            self.sku_bytes.len() + batch.sku_bytes.len(),
        );
        let (mut i, mut j) = (0, 0);
        while i < self.len() || j < batch.rows.len() {
            let old = self.rows.get(i).map(|r| r.product);
            let new = batch.rows.get(j).map(|r| r.product);
            // A row only the old snapshot has stays, unless a full feed newer
            // than it says the supplier no longer offers it.
            let keep_old = |i: usize| full.is_none_or(|t| self.rows[i].as_of_s > t);
            match (old, new) {
                (Some(o), Some(n)) if o < n => {
                    if keep_old(i) {
                        s.push_from(self, i);
                    }
                    i += 1;
                }
                (Some(_), None) => {
                    if keep_old(i) {
                        s.push_from(self, i);
                    }
                    i += 1;
                }
                (o, Some(n)) => {
                    let r = &batch.rows[j];
                    if o == Some(n) && self.rows[i].as_of_s > r.as_of_s {
                        s.push_from(self, i);
                    } else {
                        s.push(r.product, r.qty, r.cost, r.as_of_s, batch.sku(r));
                    }
                    j += 1;
                    if o == Some(n) {
                        i += 1;
                    }
                }
                (None, None) => break,
            }
        }
        s.shrink();
        s.index_chunks();
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

/// A carrier entry: the supplier in the high half, its row hint in the low.
fn entry(supplier: SupplierId, hint: u16) -> u32 {
    (u32::from(supplier) << 16) | u32::from(hint)
}

fn entry_supplier(e: u32) -> SupplierId {
    (e >> 16) as SupplierId
}

fn entry_hint(e: u32) -> u16 {
    e as u16
}

/// Who carries each of `CHUNK` consecutive products (fewer in the last chunk).
///
/// The structure is immutable once published; only the hints inside entries
/// change (relaxed atomics, written by the one writer holding the lock).
#[derive(Debug)]
struct CarrierChunk {
    /// Product `k`'s entries are `entries[starts[k]..starts[k + 1]]`.
    starts: Box<[u32]>,
    /// Sorted by supplier within each product.
    entries: Box<[AtomicU32]>,
}

impl CarrierChunk {
    fn empty(products: usize) -> Self {
        Self {
            starts: vec![0; products + 1].into_boxed_slice(),
            entries: Box::default(),
        }
    }

    /// Products covered.
    fn products(&self) -> usize {
        self.starts.len().saturating_sub(1)
    }

    #[inline]
    fn entries_of(&self, k: usize) -> &[AtomicU32] {
        match (self.starts.get(k), self.starts.get(k + 1)) {
            (Some(&a), Some(&b)) => self.entries.get(a as usize..b as usize).unwrap_or(&[]),
            _ => &[],
        }
    }

    /// This chunk with `supplier` added to products `add` (sorted, distinct,
    /// none of them carried by it yet).
    fn with_carrier(&self, supplier: SupplierId, add: &[usize]) -> Self {
        let n = self.products();
        let mut starts = Vec::with_capacity(n + 1);
        let mut entries = Vec::with_capacity(self.entries.len() + add.len());
        let mut add = add.iter().copied().peekable();
        for k in 0..n {
            starts.push(entries.len() as u32);
            let mut pending = add.next_if_eq(&k).is_some();
            for e in self.entries_of(k) {
                let v = e.load(Ordering::Relaxed);
                if pending && entry_supplier(v) > supplier {
                    entries.push(AtomicU32::new(entry(supplier, NO_HINT)));
                    pending = false;
                }
                entries.push(AtomicU32::new(v));
            }
            if pending {
                entries.push(AtomicU32::new(entry(supplier, NO_HINT)));
            }
        }
        starts.push(entries.len() as u32);
        Self {
            starts: starts.into_boxed_slice(),
            entries: entries.into_boxed_slice(),
        }
    }
}

/// Everything readers see, published as one.
#[derive(Debug)]
struct Published {
    snaps: Vec<Arc<SupplierSnapshot>>,
    /// Chunk `c` covers products `c * CHUNK ..`.
    carriers: Arc<Vec<Arc<CarrierChunk>>>,
}

/// The whole index.
pub struct OfferIndex {
    world: ArcSwap<Published>,
    /// Serialises writers so that two suppliers' feeds never lose each other's
    /// swap, and so that only one writer at a time touches hints.
    writer: Mutex<()>,
    offers_total: AtomicU64,
}

impl std::fmt::Debug for OfferIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OfferIndex")
            .field("suppliers", &self.world.load().snaps.len())
            .field("offers", &self.offers_total())
            .finish()
    }
}

impl OfferIndex {
    /// An empty index for `suppliers` suppliers and `products` products.
    pub fn new(suppliers: usize, products: usize) -> Self {
        let carriers = (0..products.div_ceil(CHUNK))
            .map(|c| Arc::new(CarrierChunk::empty((products - c * CHUNK).min(CHUNK))))
            .collect();
        Self {
            world: ArcSwap::from_pointee(Published {
                snaps: (0..suppliers)
                    .map(|_| Arc::new(SupplierSnapshot::default()))
                    .collect(),
                carriers: Arc::new(carriers),
            }),
            writer: Mutex::new(()),
            offers_total: AtomicU64::new(0),
        }
    }

    /// A consistent view for one request.
    pub fn view(&self) -> IndexView<'_> {
        IndexView {
            world: self.world.load_full(),
            _index: PhantomData,
        }
    }

    /// Offers held, across suppliers.
    pub fn offers_total(&self) -> u64 {
        self.offers_total.load(Ordering::Relaxed)
    }

    /// Replaces all of a supplier's offers with the batch (sorted,
    /// deduplicated), keeping only current rows that are newer than the feed:
    /// a real-time reading taken after the feed's data stays.
    pub fn apply_full(&self, supplier: SupplierId, batch: &OfferBatch, now_ms: i64) {
        // The feed speaks for the moment of its newest row (its ingest time
        // when it has no rows).
        let feed_as_of_s = batch
            .rows
            .iter()
            .map(|r| r.as_of_s)
            .max()
            .unwrap_or_else(|| u32::try_from(now_ms / 1000).unwrap_or(u32::MAX));
        let oldest_row_s = batch.rows.iter().map(|r| r.as_of_s).min().unwrap_or(0);
        // The usual case, a feed newer than everything held, replaces the
        // snapshot without reading it.
        let fresh = SupplierSnapshot::from_batch(batch);
        let _w = self.writer.lock();
        let current = self.world.load().snaps.get(supplier as usize).cloned();
        let mut snap = match current {
            Some(c) if c.newest_as_of_s > oldest_row_s.min(feed_as_of_s) && !c.is_empty() => {
                c.merged(batch, Some(feed_as_of_s))
            }
            _ => fresh,
        };
        snap.full_at_ms = now_ms;
        self.publish_locked(supplier, batch, snap, now_ms);
    }

    /// Replaces or adds the batch's rows (except where the current row is
    /// newer), keeping the supplier's other offers.
    pub fn apply_delta(&self, supplier: SupplierId, batch: &OfferBatch, now_ms: i64) {
        // Building the merge outside the writer lock would race a concurrent
        // full feed of the same supplier; merging is fast, so it stays inside.
        let _w = self.writer.lock();
        let Some(current) = self.world.load().snaps.get(supplier as usize).cloned() else {
            return;
        };
        let mut snap = current.merged(batch, None);
        snap.full_at_ms = current.full_at_ms;
        self.publish_locked(supplier, batch, snap, now_ms);
    }

    /// Applies real-time readings (sorted by product) to the supplier's
    /// existing offers, each only where the offer's data is not newer; returns
    /// how many offers changed. Products the supplier no longer offers are
    /// skipped: a reading does not bring back an offer a feed removed. The
    /// feed times (`applied_at_ms`, `full_at_ms`) stay as they were.
    pub fn apply_realtime(&self, supplier: SupplierId, readings: &[RealtimeRow]) -> usize {
        let _w = self.writer.lock();
        let world = self.world.load_full();
        let Some(current) = world.snaps.get(supplier as usize) else {
            return 0;
        };
        let changes: Vec<(usize, &RealtimeRow)> = readings
            .iter()
            .filter_map(|r| {
                let i = current.find(r.product)?;
                let row = current.rows[i];
                let cost = r.cost.unwrap_or(row.cost);
                let same = row.qty == r.qty
                    && row.cost == cost
                    && row.as_of_s == r.as_of_s
                    && current.is_realtime(i);
                (r.as_of_s >= row.as_of_s && !same).then_some((i, r))
            })
            .collect();
        if changes.is_empty() {
            return 0;
        }
        // Copy-on-write: the rows keep their places, so the carrier table and
        // its hints stay valid as they are.
        let mut snap = SupplierSnapshot {
            applied_at_ms: current.applied_at_ms,
            full_at_ms: current.full_at_ms,
            rows: current.rows.clone(),
            chunk_start: current.chunk_start.clone(),
            sku_bytes: current.sku_bytes.clone(),
            realtime_rows: current.realtime_rows.clone(),
            newest_as_of_s: current.newest_as_of_s,
        };
        for &(i, r) in &changes {
            let row = &mut snap.rows[i];
            row.qty = r.qty;
            row.cost = r.cost.unwrap_or(row.cost);
            row.as_of_s = r.as_of_s;
            snap.newest_as_of_s = snap.newest_as_of_s.max(r.as_of_s);
            snap.mark_realtime(i);
        }
        let mut snaps = world.snaps.clone();
        snaps[supplier as usize] = Arc::new(snap);
        self.world.store(Arc::new(Published {
            snaps,
            carriers: Arc::clone(&world.carriers),
        }));
        changes.len()
    }

    /// Publishes `snap` as `supplier`'s; the caller holds `writer`.
    fn publish_locked(
        &self,
        supplier: SupplierId,
        batch: &OfferBatch,
        mut snap: SupplierSnapshot,
        now_ms: i64,
    ) {
        let world = self.world.load_full();
        let Some(old) = world.snaps.get(supplier as usize) else {
            return;
        };
        let carriers = Self::with_carriers(&world.carriers, supplier, batch)
            .unwrap_or_else(|| Arc::clone(&world.carriers));
        snap.applied_at_ms = now_ms;
        let (old_len, new_len) = (old.len() as u64, snap.len() as u64);
        let snap = Arc::new(snap);
        let mut snaps = world.snaps.clone();
        snaps[supplier as usize] = Arc::clone(&snap);
        self.world.store(Arc::new(Published {
            snaps,
            carriers: Arc::clone(&carriers),
        }));
        self.offers_total.fetch_add(new_len, Ordering::Relaxed);
        self.offers_total.fetch_sub(old_len, Ordering::Relaxed);
        // Point the hints at the rows just published. Readers already use
        // the new snapshot meanwhile; until this is done some of their hints
        // miss and they search, as they did before hints existed.
        Self::set_hints(&carriers, supplier, &snap);
    }

    /// The carrier table with `supplier` added to every product of the batch,
    /// or `None` when it already carries them all (a repeat of yesterday's
    /// feed reads the table and copies nothing).
    fn with_carriers(
        carriers: &Arc<Vec<Arc<CarrierChunk>>>,
        supplier: SupplierId,
        batch: &OfferBatch,
    ) -> Option<Arc<Vec<Arc<CarrierChunk>>>> {
        // (chunk, product within it) of every product new to the supplier.
        let mut missing: Vec<(usize, usize)> = Vec::new();
        for r in &batch.rows {
            let p = r.product as usize;
            let (c, k) = (p >> CHUNK_BITS, p & (CHUNK - 1));
            let Some(chunk) = carriers.get(c) else {
                continue;
            };
            if k < chunk.products()
                && !chunk
                    .entries_of(k)
                    .iter()
                    .any(|e| entry_supplier(e.load(Ordering::Relaxed)) == supplier)
            {
                missing.push((c, k));
            }
        }
        if missing.is_empty() {
            return None;
        }
        missing.sort_unstable();
        missing.dedup();
        let mut next: Vec<Arc<CarrierChunk>> = carriers.as_ref().clone();
        let mut ks = Vec::new();
        for group in missing.chunk_by(|a, b| a.0 == b.0) {
            let c = group[0].0;
            ks.clear();
            ks.extend(group.iter().map(|&(_, k)| k));
            next[c] = Arc::new(next[c].with_carrier(supplier, &ks));
        }
        Some(Arc::new(next))
    }

    /// Sets `supplier`'s hints to the positions of its rows in `snap`.
    fn set_hints(carriers: &[Arc<CarrierChunk>], supplier: SupplierId, snap: &SupplierSnapshot) {
        for (i, row) in snap.rows.iter().enumerate() {
            let p = row.product as usize;
            let Some(chunk) = carriers.get(p >> CHUNK_BITS) else {
                continue;
            };
            let want = entry(supplier, snap.hint_of(i));
            for e in chunk.entries_of(p & (CHUNK - 1)) {
                let v = e.load(Ordering::Relaxed);
                if entry_supplier(v) == supplier {
                    // Store only a change: an unchanged line stays shared in
                    // the readers' caches.
                    if v != want {
                        e.store(want, Ordering::Relaxed);
                    }
                    break;
                }
            }
        }
    }

    /// When each supplier's data was last applied (Unix ms; 0 = never).
    pub fn applied_at_ms(&self) -> Vec<i64> {
        self.world
            .load()
            .snaps
            .iter()
            .map(|s| s.applied_at_ms)
            .collect()
    }
}

/// A consistent read of the index for one request.
pub struct IndexView<'a> {
    world: Arc<Published>,
    _index: PhantomData<&'a OfferIndex>,
}

impl IndexView<'_> {
    /// The carrier entries of `product`.
    #[inline]
    fn carriers(&self, product: ProductId) -> &[AtomicU32] {
        let p = product as usize;
        match self.world.carriers.get(p >> CHUNK_BITS) {
            Some(chunk) => chunk.entries_of(p & (CHUNK - 1)),
            None => &[],
        }
    }

    /// Appends every offer for `product` to `out`, in supplier id order.
    pub fn offers_into<'v>(&'v self, product: ProductId, out: &mut Vec<OfferRef<'v>>) {
        let carriers = self.carriers(product);
        out.reserve(carriers.len());
        for e in carriers {
            let e = e.load(Ordering::Relaxed);
            let supplier = entry_supplier(e);
            let Some(snap) = self.world.snaps.get(supplier as usize) else {
                continue;
            };
            if let Some(i) = snap.locate(product, entry_hint(e)) {
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
        let snap = self.world.snaps.get(supplier as usize)?;
        let hint = self
            .carriers(product)
            .iter()
            .map(|e| e.load(Ordering::Relaxed))
            .find(|&e| entry_supplier(e) == supplier)
            .map_or(NO_HINT, entry_hint);
        snap.locate(product, hint).map(|i| snap.offer(supplier, i))
    }

    /// A supplier's snapshot as of this view.
    pub fn snapshot(&self, supplier: SupplierId) -> Option<&SupplierSnapshot> {
        self.world.snaps.get(supplier as usize).map(Arc::as_ref)
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

    #[test]
    fn stale_hints_fall_back_to_search() {
        let idx = OfferIndex::new(2, 10_000);
        // Supplier 0 carries 5 at row 0 and 9_000 at row 1.
        idx.apply_full(0, &batch(&[(5, 1, 10), (9_000, 2, 20)]), 1);
        let v1 = idx.view();
        // A delta shifts 5 and 9_000 to rows 1 and 3; another full feed
        // then drops 5, so its old hints point at other products' rows.
        idx.apply_delta(0, &batch(&[(1, 7, 7), (6_000, 8, 8)]), 2);
        let v2 = idx.view();
        assert_eq!(v2.offer(0, 5).unwrap().qty, 1);
        assert_eq!(v2.offers(9_000)[0].qty, 2);
        assert_eq!(v2.offers(6_000)[0].qty, 8);
        idx.apply_full(0, &batch(&[(9_000, 3, 30), (9_001, 4, 40)]), 3);
        let v3 = idx.view();
        assert!(v3.offers(5).is_empty());
        assert!(v3.offer(0, 5).is_none());
        assert_eq!(v3.offers(9_000)[0].qty, 3);
        assert_eq!(v3.offers(9_001)[0].supplier_sku, "S-9001");
        // Older views still read their own moment, whatever the hints say now.
        assert_eq!(v1.offers(5)[0].qty, 1);
        assert!(v1.offers(6_000).is_empty());
        assert_eq!(v2.offers(9_000)[0].qty, 2);
        assert_eq!(v2.offers(1)[0].qty, 7);
    }

    #[test]
    fn carriers_stay_in_supplier_order_across_chunks() {
        let n = 3 * CHUNK + 17;
        let idx = OfferIndex::new(4, n);
        let last = (n - 1) as ProductId;
        for s in [3u16, 1, 2, 0] {
            idx.apply_full(
                s,
                &batch(&[
                    (0, 1, u32::from(s)),
                    (CHUNK as ProductId, 1, 1),
                    (last, 1, 1),
                ]),
                1,
            );
        }
        let v = idx.view();
        for p in [0, CHUNK as ProductId, last] {
            let got: Vec<u16> = v.offers(p).iter().map(|o| o.supplier).collect();
            assert_eq!(got, vec![0, 1, 2, 3]);
        }
        assert!(v.offers(last + 1).is_empty());
    }

    fn reading(product: ProductId, qty: u32, cost: Option<CostUnits>, as_of_s: u32) -> RealtimeRow {
        RealtimeRow {
            product,
            qty,
            cost,
            as_of_s,
        }
    }

    fn dated(rows: &[(ProductId, u32, u32)]) -> OfferBatch {
        let mut b = OfferBatch::default();
        for &(p, q, as_of_s) in rows {
            b.push(p, q, 10, as_of_s, format!("S-{p}").as_bytes());
        }
        sort_dedup(&mut b);
        b
    }

    #[test]
    fn realtime_readings_update_existing_offers_unless_older() {
        let idx = OfferIndex::new(2, 100);
        idx.apply_full(0, &batch(&[(5, 1, 10), (6, 2, 20)]), 1_000);
        let before = idx.view();
        let applied = idx.apply_realtime(
            0,
            &[
                reading(5, 9, Some(11), 200),
                reading(6, 7, None, 50),
                reading(7, 3, Some(1), 300),
            ],
        );
        assert_eq!(applied, 1, "6 is older than its feed row, 7 is not offered");
        let v = idx.view();
        let o = v.offer(0, 5).unwrap();
        assert_eq!((o.qty, o.cost, o.as_of_s, o.realtime), (9, 11, 200, true));
        let o = v.offer(0, 6).unwrap();
        assert_eq!((o.qty, o.as_of_s, o.realtime), (2, 100, false));
        assert!(v.offer(0, 7).is_none());
        assert!(
            !before.offer(0, 5).unwrap().realtime,
            "old views keep their moment"
        );
        assert_eq!(idx.offers_total(), 2);
        assert_eq!(idx.applied_at_ms()[0], 1_000, "feed time unchanged");
        // The same reading again changes nothing; an unknown item keeps its cost.
        assert_eq!(idx.apply_realtime(0, &[reading(5, 9, Some(11), 200)]), 0);
        assert_eq!(idx.apply_realtime(0, &[reading(5, 0, None, 201)]), 1);
        let v = idx.view();
        let o = v.offer(0, 5).unwrap();
        assert_eq!((o.qty, o.cost), (0, 11));
    }

    #[test]
    fn feeds_never_overwrite_newer_readings() {
        let idx = OfferIndex::new(1, 100);
        idx.apply_full(0, &dated(&[(1, 1, 100), (2, 2, 100), (3, 3, 100)]), 0);
        idx.apply_realtime(0, &[reading(1, 50, None, 300), reading(2, 60, None, 150)]);
        // A full feed from 200: 1 keeps its newer reading, 2 takes the feed's,
        // 3 is gone (the feed no longer lists it), 4 arrives.
        idx.apply_full(0, &dated(&[(1, 11, 200), (2, 22, 200), (4, 44, 200)]), 0);
        let v = idx.view();
        let got: Vec<(ProductId, u32, bool)> = (1..5)
            .filter_map(|p| v.offer(0, p).map(|o| (p, o.qty, o.realtime)))
            .collect();
        assert_eq!(got, vec![(1, 50, true), (2, 22, false), (4, 44, false)]);
        // A reading newer than a feed that dropped its product stays.
        idx.apply_realtime(0, &[reading(4, 5, None, 500)]);
        idx.apply_full(0, &dated(&[(1, 1, 400)]), 0);
        let v = idx.view();
        assert_eq!(v.offer(0, 1).unwrap().qty, 1);
        assert_eq!(v.offer(0, 4).unwrap().qty, 5);
        assert!(v.offer(0, 2).is_none());
        // Deltas obey the same rule.
        idx.apply_delta(0, &dated(&[(4, 9, 450), (1, 9, 450)]), 0);
        let v = idx.view();
        assert_eq!(v.offer(0, 4).unwrap().qty, 5);
        assert_eq!(v.offer(0, 1).unwrap().qty, 9);
        assert_eq!(idx.offers_total(), 2);
    }

    proptest::proptest! {
        /// Feeds and real-time readings with arbitrary `as_of` never move an
        /// offer's data backwards: the index equals a model in which each
        /// offer holds the newest data (the later arrival on a tie), a full
        /// feed drops offers it lacks unless they are newer than the feed, and
        /// readings touch only offers that exist.
        #[test]
        fn data_never_goes_backwards(ops in proptest::collection::vec(
            (0u8..3, proptest::collection::vec((0u32..32, 0u32..100, 1u32..50), 0..12)),
            1..25,
        )) {
            let idx = OfferIndex::new(1, 32);
            // product -> (qty, as_of_s, realtime)
            let mut model: std::collections::BTreeMap<u32, (u32, u32, bool)> = Default::default();
            for (kind, rows) in ops {
                match kind {
                    0 | 1 => {
                        let b = dated(&rows.iter().map(|&(p, q, t)| (p, q, t)).collect::<Vec<_>>());
                        let newer = |old: Option<&(u32, u32, bool)>, t: u32| old.is_none_or(|o| t >= o.1);
                        if kind == 0 {
                            let feed_s = b.rows.iter().map(|r| r.as_of_s).max().unwrap_or(0);
                            model.retain(|p, o| o.1 > feed_s || b.rows.iter().any(|r| r.product == *p));
                            idx.apply_full(0, &b, 0);
                        } else {
                            idx.apply_delta(0, &b, 0);
                        }
                        for r in &b.rows {
                            if newer(model.get(&r.product), r.as_of_s) {
                                model.insert(r.product, (r.qty, r.as_of_s, false));
                            }
                        }
                    }
                    _ => {
                        let mut readings: Vec<RealtimeRow> = Vec::new();
                        for &(p, q, t) in &rows {
                            if readings.iter().all(|r| r.product != p) {
                                readings.push(reading(p, q, None, t));
                            }
                        }
                        idx.apply_realtime(0, &readings);
                        for r in &readings {
                            if let Some(o) = model.get_mut(&r.product) {
                                if r.as_of_s >= o.1 {
                                    *o = (r.qty, r.as_of_s, true);
                                }
                            }
                        }
                    }
                }
            }
            let view = idx.view();
            for p in 0..32u32 {
                let got = view.offer(0, p).map(|o| (o.qty, o.as_of_s, o.realtime));
                proptest::prop_assert_eq!(got, model.get(&p).copied(), "product {}", p);
                let listed = view.offers(p).len();
                proptest::prop_assert_eq!(listed, usize::from(model.contains_key(&p)));
            }
            proptest::prop_assert_eq!(idx.offers_total(), model.len() as u64);
        }
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
                    idx.apply_full(supplier, &b, 1_000);
                } else {
                    idx.apply_delta(supplier, &b, 1_000);
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

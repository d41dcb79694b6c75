//! Supplier feeds: parse the CSV, match rows to products, apply to the index.
//!
//! A feed is read as a stream (memory is bounded by its accepted rows, not its
//! bytes), checked row by row, and applied only when its rejected share is
//! within the threshold: otherwise it is refused whole and the supplier's
//! previous data stays in force. Parsing is the hot part of ingest, so a row
//! is handled as bytes with no allocation except the supplier SKU copied into
//! the batch.

use std::collections::HashMap;
use std::io::Read;
use std::sync::Arc;

use parking_lot::Mutex;
use rust_decimal::Decimal;

use super::catalog::{Catalog, KeyColumn, ProductId};
use super::index::{sort_dedup, NewOffer, OfferBatch, OfferIndex};
use super::money::parse_cost;
use super::suppliers::{FeedKind, SupplierId};
use crate::limits;

/// How far a row's `as_of` may lie ahead of the ingest time (clock skew)
/// before the row is rejected.
pub const AS_OF_AHEAD_S_MAX: u32 = 300;

/// Columns every feed must have.
pub const REQUIRED_COLUMNS: [&str; 3] = ["supplier_sku", "qty", "unit_cost"];

/// A rejected row: its line number (the header is line 1) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    /// 1-based line number.
    pub line: u64,
    /// What is wrong with it.
    pub message: String,
}

/// What an ingest did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IngestReport {
    /// Data rows read (the header not counted).
    pub rows_read: u64,
    /// Rows now in the index.
    pub rows_applied: u64,
    /// Rows rejected.
    pub rows_rejected: u64,
    /// The first rejected rows, up to `feeds.errors_reported_max`.
    pub errors: Vec<RowError>,
    /// Why the feed was refused whole, when it was; nothing was applied then.
    pub refused: Option<String>,
}

/// A feed that cannot be read at all.
#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    /// The bytes are not CSV we can read, or the source failed mid-way.
    #[error("feed unreadable: {0}")]
    Unreadable(String),
    /// A required column is missing from the header.
    #[error("feed header lacks required column `{0}`")]
    MissingColumn(&'static str),
    /// The feed has no header row.
    #[error("feed is empty: no header row")]
    Empty,
}

/// How feeds are judged.
#[derive(Debug, Clone)]
pub struct FeedRules {
    /// Refuse a feed whose rejected share exceeds this percentage.
    pub reject_threshold_pct: Decimal,
    /// Row errors kept in a report.
    pub errors_reported_max: usize,
    /// The merchant's currency; rows in another are rejected.
    pub currency: String,
}

impl Default for FeedRules {
    fn default() -> Self {
        Self {
            reject_threshold_pct: Decimal::from(5),
            errors_reported_max: 1000,
            currency: "USD".into(),
        }
    }
}

/// A supplier's mapping of its own codes to the merchant's products; overrides all matching.
#[derive(Debug, Default, Clone)]
pub struct Mapping {
    by_supplier_sku: HashMap<Box<[u8]>, ProductId>,
}

impl Mapping {
    /// Parses `supplier_id,supplier_sku,sku`, keeping rows for `supplier`.
    /// Rows naming unknown SKUs are returned as errors; the rest still map.
    pub fn from_csv(
        reader: impl Read,
        supplier: &str,
        catalog: &Catalog,
    ) -> Result<(Mapping, Vec<RowError>), FeedError> {
        let mut rdr = csv::ReaderBuilder::new().flexible(true).from_reader(reader);
        let header = rdr.byte_headers().map_err(unreadable)?.clone();
        let col = |name: &'static str| {
            header
                .iter()
                .position(|h| h.trim_ascii() == name.as_bytes())
                .ok_or(FeedError::MissingColumn(name))
        };
        let (c_sup, c_ssku, c_sku) = (col("supplier_id")?, col("supplier_sku")?, col("sku")?);
        let mut mapping = Mapping::default();
        let mut errors = Vec::new();
        let mut rec = csv::ByteRecord::new();
        while rdr.read_byte_record(&mut rec).map_err(unreadable)? {
            let line = rec.position().map_or(0, |p| p.line());
            let field = |c: usize| rec.get(c).unwrap_or_default().trim_ascii();
            if field(c_sup) != supplier.as_bytes() {
                continue;
            }
            let (ssku, sku) = (field(c_ssku), field(c_sku));
            match catalog.by_sku(sku) {
                Some(p) if !ssku.is_empty() => {
                    mapping.by_supplier_sku.insert(ssku.into(), p);
                }
                Some(_) => errors.push(RowError {
                    line,
                    message: "empty supplier_sku".into(),
                }),
                None => errors.push(RowError {
                    line,
                    message: format!("unknown sku `{}`", String::from_utf8_lossy(sku)),
                }),
            }
        }
        Ok((mapping, errors))
    }

    /// Number of mapped codes.
    pub fn len(&self) -> usize {
        self.by_supplier_sku.len()
    }

    /// True when nothing is mapped.
    pub fn is_empty(&self) -> bool {
        self.by_supplier_sku.is_empty()
    }

    fn get(&self, supplier_sku: &[u8]) -> Option<ProductId> {
        if self.by_supplier_sku.is_empty() {
            return None;
        }
        self.by_supplier_sku.get(supplier_sku).copied()
    }
}

fn unreadable(e: csv::Error) -> FeedError {
    FeedError::Unreadable(e.to_string())
}

/// Column positions of one feed.
struct Columns {
    supplier_sku: usize,
    qty: usize,
    unit_cost: usize,
    sku: Option<usize>,
    mpn: Option<usize>,
    ean: Option<usize>,
    currency: Option<usize>,
    as_of: Option<usize>,
}

impl Columns {
    fn from_header(header: &csv::ByteRecord) -> Result<Self, FeedError> {
        let find = |name: &str| {
            header
                .iter()
                .position(|h| h.trim_ascii().eq_ignore_ascii_case(name.as_bytes()))
        };
        let required = |name: &'static str| find(name).ok_or(FeedError::MissingColumn(name));
        Ok(Self {
            supplier_sku: required(REQUIRED_COLUMNS[0])?,
            qty: required(REQUIRED_COLUMNS[1])?,
            unit_cost: required(REQUIRED_COLUMNS[2])?,
            sku: find("sku"),
            mpn: find("mpn"),
            ean: find("ean"),
            currency: find("currency"),
            as_of: find("as_of"),
        })
    }
}

/// A parsed feed: the rows to apply and the report so far.
#[derive(Debug, Default)]
pub struct ParsedFeed {
    /// Accepted rows, sorted by product.
    pub batch: OfferBatch,
    /// Counts and errors.
    pub report: IngestReport,
}

/// Parses a feed. Bad rows become errors in the report; only an unreadable
/// feed is an `Err`.
pub fn parse_feed(
    reader: impl Read + Send,
    catalog: &Catalog,
    mapping: Option<&Mapping>,
    rules: &FeedRules,
    as_of_s: u32,
) -> Result<ParsedFeed, FeedError> {
    let mut rdr = csv::ReaderBuilder::new()
        .flexible(true)
        .buffer_capacity(256 * 1024)
        .from_reader(reader);
    let header = rdr.byte_headers().map_err(unreadable)?.clone();
    if header.is_empty() || header.iter().all(|h| h.trim_ascii().is_empty()) {
        return Err(FeedError::Empty);
    }
    let cols = Columns::from_header(&header)?;
    let mut out = ParsedFeed::default();
    let mut lines: Vec<u64> = Vec::new();
    let empty_mapping = Mapping::default();
    let mapping = mapping.unwrap_or(&empty_mapping);
    // Two stages on two threads: one reads CSV records, the other matches
    // and checks them, with a few chunks in flight between them (bounded
    // memory; buffers are recycled). Within a chunk the lookups run together,
    // column by column (`Catalog::match_batch`): they are independent, so
    // their cache misses in a large catalog overlap instead of queueing.
    std::thread::scope(|scope| -> Result<(), FeedError> {
        let (full_tx, full_rx) =
            std::sync::mpsc::sync_channel::<(Vec<csv::ByteRecord>, usize)>(PIPE_DEPTH);
        let (empty_tx, empty_rx) =
            std::sync::mpsc::sync_channel::<Vec<csv::ByteRecord>>(PIPE_DEPTH + 2);
        for _ in 0..PIPE_DEPTH + 1 {
            // Cannot fail: the channel has room for every buffer.
            let _ = empty_tx.send(vec![csv::ByteRecord::new(); ROWS_PER_MESSAGE]);
        }
        let reader = scope.spawn(move || -> Result<(), FeedError> {
            // A closed channel means the other stage stopped; nothing to do.
            while let Ok(mut records) = empty_rx.recv() {
                let mut n = 0;
                while n < ROWS_PER_MESSAGE
                    && rdr.read_byte_record(&mut records[n]).map_err(unreadable)?
                {
                    n += 1;
                }
                if full_tx.send((records, n)).is_err() || n < ROWS_PER_MESSAGE {
                    break;
                }
            }
            Ok(())
        });
        for (records, n) in full_rx {
            for records in records[..n].chunks(ROWS_PER_CHUNK) {
                let matches = match_chunk(records, &cols, catalog, mapping);
                for (record, &product) in records.iter().zip(&matches) {
                    out.report.rows_read += 1;
                    let line = record.position().map_or(0, |p| p.line());
                    match parse_row(record, &cols, rules, product, as_of_s) {
                        Ok((product, qty, cost, sku, row_as_of_s)) => {
                            out.batch.push(product, qty, cost, row_as_of_s, sku);
                            lines.push(line);
                        }
                        Err(message) => reject(&mut out.report, rules, line, message),
                    }
                }
            }
            let _ = empty_tx.send(records);
        }
        drop(empty_tx);
        reader
            .join()
            .map_err(|_| FeedError::Unreadable("feed reader stopped".into()))?
    })?;
    for pos in order_by_product(&mut out.batch) {
        let line = lines[pos];
        reject(
            &mut out.report,
            rules,
            line,
            "duplicate product: a later row names the same product".into(),
        );
    }
    out.report.errors.sort_by_key(|e| e.line);
    Ok(out)
}

/// Orders the batch by product and drops the earlier rows of a product (as
/// `sort_dedup` does), returning the input positions of the rows dropped in
/// ascending order. Product ids are dense, so rows are placed by id instead
/// of sorted; and the supplier SKUs are rewritten in the new row order, so
/// applying the batch reads them front to back.
fn order_by_product(batch: &mut OfferBatch) -> Vec<usize> {
    const NONE: u32 = u32::MAX;
    if batch.rows.len() >= NONE as usize {
        return sort_dedup(batch);
    }
    let products = batch
        .rows
        .iter()
        .map(|r| r.product as usize + 1)
        .max()
        .unwrap_or(0);
    // The position of each product's last row.
    let mut last = vec![NONE; products];
    let mut dropped = Vec::new();
    for (i, r) in batch.rows.iter().enumerate() {
        let at = &mut last[r.product as usize];
        if *at != NONE {
            dropped.push(*at as usize);
        }
        *at = i as u32;
    }
    dropped.sort_unstable();
    let mut rows = Vec::with_capacity(batch.rows.len() - dropped.len());
    let mut sku_bytes = Vec::with_capacity(batch.sku_bytes.len());
    // Rows are gathered a chunk at a time: first every row of the chunk is
    // read, then the first byte of every SKU, then they are copied, so the
    // cache misses of the chunk's rows (and then SKUs) overlap.
    let mut kept = last.iter().copied().filter(|&i| i != NONE).peekable();
    let mut chunk = [0u32; GATHER_CHUNK];
    while kept.peek().is_some() {
        let mut n = 0;
        for (slot, i) in chunk.iter_mut().zip(&mut kept) {
            *slot = i;
            n += 1;
        }
        let chunk = &chunk[..n];
        let mut touched = 0u64;
        for &i in chunk {
            touched ^= u64::from(batch.rows[i as usize].sku_start);
        }
        for &i in chunk {
            let r = &batch.rows[i as usize];
            if r.sku_len > 0 {
                touched ^= u64::from(batch.sku_bytes[r.sku_start as usize]);
            }
        }
        std::hint::black_box(touched);
        for &i in chunk {
            let r = batch.rows[i as usize];
            let start = r.sku_start as usize;
            rows.push(NewOffer {
                sku_start: sku_bytes.len() as u32,
                ..r
            });
            sku_bytes.extend_from_slice(&batch.sku_bytes[start..start + r.sku_len as usize]);
        }
    }
    batch.rows = rows;
    batch.sku_bytes = sku_bytes;
    dropped
}

/// Rows gathered together by `order_by_product`.
const GATHER_CHUNK: usize = 32;

/// Records handed from the reading stage to the matching stage at once.
const ROWS_PER_MESSAGE: usize = 512;
/// Messages in flight between the stages.
const PIPE_DEPTH: usize = 4;

/// Rows read and matched together by `parse_feed`.
const ROWS_PER_CHUNK: usize = 64;

/// The product each row names, by precedence: the supplier's mapping (by
/// `supplier_sku`), then `sku`, then `mpn`, then `ean`; the first that names
/// a product wins. Each column is looked up only for rows still unmatched.
fn match_chunk(
    records: &[csv::ByteRecord],
    cols: &Columns,
    catalog: &Catalog,
    mapping: &Mapping,
) -> [Option<ProductId>; ROWS_PER_CHUNK] {
    let mut found = [None; ROWS_PER_CHUNK];
    let found = &mut found[..records.len()];
    if !mapping.is_empty() {
        for (f, r) in found.iter_mut().zip(records) {
            *f = mapping.get(column(r, Some(cols.supplier_sku)));
        }
    }
    let mut keys: [&[u8]; ROWS_PER_CHUNK] = [&[]; ROWS_PER_CHUNK];
    let mut hits = [None; ROWS_PER_CHUNK];
    for (c, kind) in [
        (cols.sku, KeyColumn::Sku),
        (cols.mpn, KeyColumn::Mpn),
        (cols.ean, KeyColumn::Ean),
    ] {
        if c.is_none() {
            continue;
        }
        let keys = &mut keys[..records.len()];
        let mut wanted = false;
        for ((k, r), f) in keys.iter_mut().zip(records).zip(found.iter()) {
            // An empty key matches nothing: a row already matched skips the lookup.
            *k = if f.is_some() { &[] } else { column(r, c) };
            wanted |= !k.is_empty();
        }
        if !wanted {
            continue;
        }
        let hits = &mut hits[..records.len()];
        catalog.match_batch(kind, keys, hits);
        for (f, &h) in found.iter_mut().zip(hits.iter()) {
            *f = f.or(h);
        }
    }
    let mut out = [None; ROWS_PER_CHUNK];
    out[..records.len()].copy_from_slice(found);
    out
}

/// An optional column of a row, trimmed; empty when absent.
fn column(rec: &csv::ByteRecord, c: Option<usize>) -> &[u8] {
    c.and_then(|c| rec.get(c))
        .map(<[u8]>::trim_ascii)
        .unwrap_or_default()
}

fn reject(report: &mut IngestReport, rules: &FeedRules, line: u64, message: String) {
    report.rows_rejected += 1;
    if report.errors.len() < rules.errors_reported_max {
        report.errors.push(RowError { line, message });
    }
}

/// Checks and parses one row; `product` is what `match_chunk` found for it.
fn parse_row<'r>(
    rec: &'r csv::ByteRecord,
    cols: &Columns,
    rules: &FeedRules,
    product: Option<ProductId>,
    now_s: u32,
) -> Result<(ProductId, u32, u32, &'r [u8], u32), String> {
    let field = |c: usize, name: &str| {
        rec.get(c)
            .map(<[u8]>::trim_ascii)
            .ok_or_else(|| format!("missing column `{name}`"))
    };
    let ssku = field(cols.supplier_sku, "supplier_sku")?;
    if ssku.is_empty() {
        return Err("`supplier_sku` is empty".into());
    }
    // ASCII (the usual case) is UTF-8; only other bytes need the full check.
    if ssku.len() > limits::SKU_BYTES_MAX || !(ssku.is_ascii() || std::str::from_utf8(ssku).is_ok())
    {
        return Err(format!(
            "`supplier_sku` must be UTF-8 of at most {} bytes",
            limits::SKU_BYTES_MAX
        ));
    }
    let qty = parse_qty(field(cols.qty, "qty")?).map_err(|e| format!("`qty` {e}"))?;
    let cost =
        parse_cost(field(cols.unit_cost, "unit_cost")?).map_err(|e| format!("`unit_cost` {e}"))?;
    if let Some(c) = cols.currency {
        let cur = rec.get(c).unwrap_or_default().trim_ascii();
        if !cur.is_empty() && !cur.eq_ignore_ascii_case(rules.currency.as_bytes()) {
            return Err(format!(
                "`currency` {} is not the merchant's {}",
                String::from_utf8_lossy(cur),
                rules.currency
            ));
        }
    }
    let as_of_s = match cols.as_of.map(|c| column(rec, Some(c))) {
        Some(text) if !text.is_empty() => parse_as_of(text, now_s)?,
        _ => now_s,
    };
    match product {
        Some(p) => Ok((p, qty, cost, ssku, as_of_s)),
        None => {
            let key = |c: Option<usize>| column(rec, c);
            Err(unknown_product(
                ssku,
                key(cols.sku),
                key(cols.mpn),
                key(cols.ean),
            ))
        }
    }
}

/// A row's `as_of`: Unix seconds or RFC 3339; at most [`AS_OF_AHEAD_S_MAX`]
/// past `now_s` (clock skew), and then counted as `now_s`.
fn parse_as_of(text: &[u8], now_s: u32) -> Result<u32, String> {
    let shown = || String::from_utf8_lossy(text).into_owned();
    let s = if text.iter().all(u8::is_ascii_digit) {
        std::str::from_utf8(text)
            .ok()
            .and_then(|t| t.parse::<u32>().ok())
            .ok_or_else(|| format!("`as_of` `{}` is out of range", shown()))?
    } else {
        let t = std::str::from_utf8(text)
            .ok()
            .and_then(|t| {
                time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok()
            })
            .ok_or_else(|| format!("`as_of` `{}` is neither Unix seconds nor RFC 3339", shown()))?;
        u32::try_from(t.unix_timestamp())
            .map_err(|_| format!("`as_of` `{}` is out of range", shown()))?
    };
    if s > now_s.saturating_add(AS_OF_AHEAD_S_MAX) {
        return Err(format!("`as_of` `{}` is in the future", shown()));
    }
    Ok(s.min(now_s))
}

fn unknown_product(ssku: &[u8], sku: &[u8], mpn: &[u8], ean: &[u8]) -> String {
    let mut tried = Vec::new();
    for (name, v) in [("sku", sku), ("mpn", mpn), ("ean", ean)] {
        if !v.is_empty() {
            tried.push(format!("{name} `{}`", String::from_utf8_lossy(v)));
        }
    }
    if tried.is_empty() {
        format!(
            "unknown product: supplier_sku `{}` is not mapped and the row has no sku, mpn or ean",
            String::from_utf8_lossy(ssku)
        )
    } else {
        format!("unknown product: no catalog match for {}", tried.join(", "))
    }
}

/// Parses a stock quantity: a non-negative whole number that fits in 32 bits.
pub fn parse_qty(t: &[u8]) -> Result<u32, String> {
    let shown = || String::from_utf8_lossy(t).into_owned();
    if t.is_empty() {
        return Err("is empty".into());
    }
    if t[0] == b'-' {
        return Err(format!("`{}` is negative", shown()));
    }
    let digits = t.strip_prefix(b"+").unwrap_or(t);
    if digits.is_empty() || digits.len() > 10 {
        return Err(format!("`{}` is not a whole number of units", shown()));
    }
    let mut n: u64 = 0;
    for &b in digits {
        if !b.is_ascii_digit() {
            return Err(format!("`{}` is not a whole number of units", shown()));
        }
        n = n * 10 + u64::from(b - b'0');
    }
    u32::try_from(n).map_err(|_| format!("`{}` is too large", shown()))
}

/// Applies a parsed feed unless its rejected share is over the threshold.
/// Returns the final report (with `refused` set when nothing was applied).
pub fn apply_parsed(
    index: &OfferIndex,
    supplier: SupplierId,
    kind: FeedKind,
    mut parsed: ParsedFeed,
    rules: &FeedRules,
    now_ms: i64,
) -> IngestReport {
    let report = &mut parsed.report;
    if report.rows_read > 0 {
        let rejected = Decimal::from(report.rows_rejected) * Decimal::from(100);
        let allowed = rules.reject_threshold_pct * Decimal::from(report.rows_read);
        if rejected > allowed {
            report.refused = Some(format!(
                "{} of {} rows rejected, more than the {}% threshold; the previous data stays in force",
                report.rows_rejected, report.rows_read, rules.reject_threshold_pct
            ));
            return parsed.report;
        }
    }
    match kind {
        FeedKind::Full => index.apply_full(supplier, &parsed.batch, now_ms),
        FeedKind::Delta => index.apply_delta(supplier, &parsed.batch, now_ms),
    }
    report.rows_applied = parsed.batch.rows.len() as u64;
    parsed.report
}

/// Status of each supplier's feed, for `/readyz` and metrics.
#[derive(Debug, Clone, Default)]
pub struct FeedStatus {
    /// A load was attempted at least once.
    pub attempted: bool,
    /// When data was last applied (Unix ms), 0 = never.
    pub last_applied_ms: i64,
    /// Why the last attempt failed, when it did.
    pub last_error: Option<String>,
}

/// Per-supplier feed status, shared by the ingest paths and the HTTP endpoints.
#[derive(Debug, Default)]
pub struct FeedBoard {
    status: Mutex<Vec<FeedStatus>>,
}

impl FeedBoard {
    /// A board for `suppliers` suppliers.
    pub fn new(suppliers: usize) -> Arc<Self> {
        Arc::new(Self {
            status: Mutex::new(vec![FeedStatus::default(); suppliers]),
        })
    }

    /// Records an attempt's outcome.
    pub fn record(&self, supplier: SupplierId, now_ms: i64, outcome: Result<(), String>) {
        let mut status = self.status.lock();
        if let Some(s) = status.get_mut(supplier as usize) {
            s.attempted = true;
            match outcome {
                Ok(()) => {
                    s.last_applied_ms = now_ms;
                    s.last_error = None;
                }
                Err(e) => s.last_error = Some(e),
            }
        }
    }

    /// A copy of every supplier's status.
    pub fn snapshot(&self) -> Vec<FeedStatus> {
        self.status.lock().clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog() -> Catalog {
        let mut csv = String::from("sku,mpn,ean,name,weight_g,length_mm,width_mm,height_mm\n");
        for i in 0..100 {
            csv.push_str(&format!("SKU{i},MPN{i},EAN{i},P{i},100,10,10,10\n"));
        }
        Catalog::from_csv(csv.as_bytes()).unwrap().catalog
    }

    fn parse(feed: &str, cat: &Catalog) -> ParsedFeed {
        parse_feed(feed.as_bytes(), cat, None, &FeedRules::default(), 1).unwrap()
    }

    /// An `as_of` column dates each row (Unix seconds or RFC 3339); empty
    /// cells take the ingest time, and a date well in the future is rejected.
    #[test]
    fn as_of_column_dates_rows() {
        let cat = catalog();
        let now_s = 1_767_225_600;
        let feed = "sku,supplier_sku,qty,unit_cost,as_of\n\
                    SKU1,A,1,1.00,1767225000\n\
                    SKU2,B,2,1.00,2026-01-01T00:00:00Z\n\
                    SKU3,C,3,1.00,\n\
                    SKU4,D,4,1.00,1767225700\n\
                    SKU5,E,5,1.00,2027-01-01T00:00:00Z\n\
                    SKU6,F,6,1.00,yesterday\n";
        let parsed = parse_feed(feed.as_bytes(), &cat, None, &FeedRules::default(), now_s).unwrap();
        let dates: Vec<(u32, u32)> = parsed
            .batch
            .rows
            .iter()
            .map(|r| (r.qty, r.as_of_s))
            .collect();
        assert_eq!(
            dates,
            vec![
                (1, 1_767_225_000),
                (2, 1_767_225_600),
                (3, now_s),
                (4, now_s)
            ],
            "a little skew counts as now"
        );
        let lines: Vec<u64> = parsed.report.errors.iter().map(|e| e.line).collect();
        assert_eq!(lines, vec![6, 7]);
        assert!(parsed.report.errors[0].message.contains("future"));
        assert!(parsed.report.errors[1].message.contains("RFC 3339"));
    }

    #[test]
    fn matches_by_sku_then_mpn_then_ean_with_free_column_order() {
        let cat = catalog();
        let feed = "qty,extra,unit_cost,ean,supplier_sku,mpn,sku\n\
                    1,x,1.00,,A,,SKU1\n\
                    2,x,2.00,,B,MPN2,\n\
                    3,x,3.00,EAN3,C,,\n\
                    4,x,4.00,EAN9,D,MPN8,SKU7\n\
                    5,x,5.00,EAN4,E,,NOPE\n";
        let p = parse(feed, &cat);
        assert_eq!(p.report.rows_rejected, 0, "{:?}", p.report.errors);
        let got: Vec<(u32, u32)> = p.batch.rows.iter().map(|r| (r.product, r.qty)).collect();
        assert_eq!(got, vec![(1, 1), (2, 2), (3, 3), (4, 5), (7, 4)]);
    }

    #[test]
    fn mapping_overrides_every_column() {
        let cat = catalog();
        let (m, errs) = Mapping::from_csv(
            "supplier_id,supplier_sku,sku\nS1,A,SKU50\nS2,A,SKU60\nS1,Z,NOPE\n".as_bytes(),
            "S1",
            &cat,
        )
        .unwrap();
        assert_eq!(m.len(), 1);
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].line, 4);
        let p = parse_feed(
            "supplier_sku,sku,qty,unit_cost\nA,SKU1,1,1\n".as_bytes(),
            &cat,
            Some(&m),
            &FeedRules::default(),
            1,
        )
        .unwrap();
        assert_eq!(p.batch.rows[0].product, 50);
    }

    #[test]
    fn bad_rows_name_line_and_reason() {
        let cat = catalog();
        let feed = "supplier_sku,sku,qty,unit_cost,currency\n\
                    A,SKU1,1,1.00,USD\n\
                    B,SKU2,-1,1.00,\n\
                    C,SKU3,x,1.00,\n\
                    D,SKU4,1,1.0.0,\n\
                    E,NOPE,1,1.00,\n\
                    F,SKU5\n\
                    G,SKU6,1,1.00,EUR\n\
                    ,SKU7,1,1.00,\n\
                    H,SKU1,2,1.00,\n";
        let p = parse(feed, &cat);
        let errs: Vec<(u64, &str)> = p
            .report
            .errors
            .iter()
            .map(|e| (e.line, e.message.as_str()))
            .collect();
        assert_eq!(p.report.rows_read, 9);
        assert_eq!(p.report.rows_rejected, 8);
        assert_eq!(errs[0].0, 2, "the first SKU1 row is superseded by line 10");
        assert!(errs[0].1.contains("duplicate"));
        assert!(errs[1].1.contains("`qty`") && errs[1].1.contains("negative"));
        assert!(errs[2].1.contains("`qty`"));
        assert!(errs[3].1.contains("`unit_cost`"));
        assert!(errs[4].1.contains("unknown product") && errs[4].1.contains("NOPE"));
        assert!(errs[5].1.contains("missing column"));
        assert!(errs[6].1.contains("EUR"));
        assert!(errs[7].1.contains("supplier_sku"));
        assert_eq!(p.batch.rows.len(), 1);
        assert_eq!(p.batch.rows[0].qty, 2);
    }

    #[test]
    fn missing_required_column_refuses_the_feed() {
        let cat = catalog();
        let err = parse_feed(
            "supplier_sku,sku,qty\nA,SKU1,1\n".as_bytes(),
            &cat,
            None,
            &FeedRules::default(),
            1,
        )
        .unwrap_err();
        assert!(err.to_string().contains("unit_cost"));
        assert!(matches!(
            parse_feed("".as_bytes(), &cat, None, &FeedRules::default(), 1),
            Err(FeedError::Empty | FeedError::MissingColumn(_))
        ));
    }

    #[test]
    fn threshold_refuses_whole_and_keeps_previous_data() {
        let cat = catalog();
        let idx = OfferIndex::new(1, cat.len());
        let good = parse("supplier_sku,sku,qty,unit_cost\nA,SKU1,5,1\n", &cat);
        let r = apply_parsed(&idx, 0, FeedKind::Full, good, &FeedRules::default(), 1);
        assert_eq!(r.rows_applied, 1);
        let mut feed = String::from("supplier_sku,sku,qty,unit_cost\n");
        for i in 0..19 {
            feed.push_str(&format!("S{i},SKU{i},1,1\n"));
        }
        feed.push_str("BAD,SKU99,-1,1\n");
        // 1 of 20 = 5%: at the threshold, applied.
        let r = apply_parsed(
            &idx,
            0,
            FeedKind::Full,
            parse(&feed, &cat),
            &FeedRules::default(),
            2,
        );
        assert!(r.refused.is_none());
        assert_eq!(r.rows_applied, 19);
        feed.push_str("BAD2,SKU98,x,1\n");
        // 2 of 21 > 5%: refused, the 19-row feed stays.
        let r = apply_parsed(
            &idx,
            0,
            FeedKind::Full,
            parse(&feed, &cat),
            &FeedRules::default(),
            3,
        );
        assert!(r.refused.as_deref().unwrap().contains("threshold"));
        assert_eq!(r.rows_applied, 0);
        assert_eq!(idx.offers_total(), 19);
    }

    proptest::proptest! {
        /// Whatever bytes arrive, parsing never panics, and every row read is
        /// either accepted or rejected.
        #[test]
        fn arbitrary_bytes_never_panic(body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512)) {
            let cat = catalog();
            let mut feed = b"supplier_sku,sku,qty,unit_cost,currency\n".to_vec();
            feed.extend_from_slice(&body);
            if let Ok(p) = parse_feed(feed.as_slice(), &cat, None, &FeedRules::default(), 1) {
                proptest::prop_assert_eq!(p.report.rows_read, p.batch.rows.len() as u64 + p.report.rows_rejected);
            }
        }

        /// Rows built from valid parts are all accepted with the values written.
        #[test]
        fn valid_rows_are_accepted_exactly(rows in proptest::collection::vec((0u32..100, 0u32..1_000_000, 0u32..10_000_000), 1..50)) {
            let cat = catalog();
            let mut feed = String::from("unit_cost,qty,sku,supplier_sku\n");
            let mut last = std::collections::BTreeMap::new();
            for (i, (p, q, c)) in rows.iter().enumerate() {
                feed.push_str(&format!("{}.{:04},{q},SKU{p},S{i}\n", c / 10_000, c % 10_000));
                last.insert(*p, (*q, *c));
            }
            let parsed = parse_feed(feed.as_bytes(), &cat, None, &FeedRules::default(), 1).unwrap();
            let got: std::collections::BTreeMap<u32, (u32, u32)> =
                parsed.batch.rows.iter().map(|r| (r.product, (r.qty, r.cost))).collect();
            proptest::prop_assert_eq!(got, last);
            proptest::prop_assert_eq!(parsed.report.rows_rejected as usize, rows.len() - parsed.batch.rows.len());
        }
    }
}

//! The merchant's products: loaded once from `catalog.csv`, then read-only.
//!
//! Products get dense ids (`ProductId`, their row order) so that everything
//! downstream keys on a small integer instead of a string. Strings live in
//! arenas and the lookup tables hold only ids, which keeps a million-product
//! catalog small and its lookups one hash and one compare.

use super::feeds::RowError;
use crate::limits;

/// Dense product id: the product's position in the catalog.
pub type ProductId = u32;

/// Columns `catalog.csv` must have, in any order.
pub const CATALOG_COLUMNS: [&str; 8] = [
    "sku",
    "mpn",
    "ean",
    "name",
    "weight_g",
    "length_mm",
    "width_mm",
    "height_mm",
];

/// A catalog that cannot be used at all.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// The CSV could not be read.
    #[error("catalog: {0}")]
    Csv(#[from] csv::Error),
    /// A required column is missing from the header.
    #[error("catalog: header lacks column `{0}`")]
    MissingColumn(&'static str),
    /// No row could be used.
    #[error("catalog: no valid product rows ({rejected} rejected)")]
    Empty {
        /// Rows rejected.
        rejected: usize,
    },
}

/// One product, borrowed from the catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Product<'a> {
    /// Dense id.
    pub id: ProductId,
    /// The merchant's SKU.
    pub sku: &'a str,
    /// Manufacturer part number (may be empty).
    pub mpn: &'a str,
    /// EAN/GTIN (may be empty).
    pub ean: &'a str,
    /// Display name.
    pub name: &'a str,
    /// One unit's weight.
    pub weight_g: u32,
    /// One unit's dimensions, as given.
    pub length_mm: u32,
    /// See `length_mm`.
    pub width_mm: u32,
    /// See `length_mm`.
    pub height_mm: u32,
}

/// Strings stored end to end; `offsets[i]..offsets[i+1]` is string `i`.
#[derive(Debug, Default)]
struct StrArena {
    bytes: String,
    offsets: Vec<u32>,
}

impl StrArena {
    fn push(&mut self, s: &str) {
        if self.offsets.is_empty() {
            self.offsets.push(0);
        }
        self.bytes.push_str(s);
        self.offsets.push(self.bytes.len() as u32);
    }

    fn get(&self, i: usize) -> &str {
        match (self.offsets.get(i), self.offsets.get(i + 1)) {
            (Some(&a), Some(&b)) => &self.bytes[a as usize..b as usize],
            _ => "",
        }
    }
}

/// Which key column of the catalog a lookup uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyColumn {
    /// The merchant's SKU (`Catalog::by_sku`).
    Sku,
    /// Manufacturer part number (`Catalog::by_mpn`).
    Mpn,
    /// EAN/GTIN (`Catalog::by_ean`).
    Ean,
}

/// Keys up to this many bytes are compared in the per-product key array alone.
const INLINE_KEY_BYTES: usize = 16;

/// A slot's third word when it is empty: the id half is `u32::MAX`, never a product id.
const EMPTY: u64 = u64::MAX;

/// Keys looked up together in one round of `KeyIndex::get_batch`.
const BATCH: usize = 64;

/// A hash index from a string column to product ids, built so that a lookup
/// reads one place in memory.
///
/// `slots` is an open-addressing (linear probing) table; each slot is three
/// words: the key's `inline` form (the key itself when it has at most 16
/// bytes) and a third word holding the product id (low half) and a tag (high
/// half: 24 bits of the key's hash and its length, saturated at 255). The tag
/// rules out almost every other slot a probe passes; for a key of at most 16
/// bytes, tag (exact length) plus the two words are the key, so the lookup
/// never leaves the slot. Longer keys are confirmed against the column's
/// arena.
///
/// Memory: 24 bytes per slot, at a load of 2/3 once the catalog is loaded
/// (36 bytes per keyed product); at most 3/4 while it loads.
struct KeyIndex {
    slots: Vec<[u64; 3]>,
    /// Keyed products in `slots`.
    len: usize,
}

impl Default for KeyIndex {
    fn default() -> Self {
        Self::with_slots(16)
    }
}

/// A key as two words: with its length, they are the key (for up to 16
/// bytes). 8..=16 bytes: the first 8 and the last 8 (overlapping); 4..=7: the
/// first 4 and the last 4; 1..=3: the first, middle and last byte. Longer
/// keys: their first 16 bytes.
fn inline(key: &[u8]) -> [u64; 2] {
    let n = key.len();
    let word8 = |at: usize| u64::from_le_bytes(key[at..at + 8].try_into().unwrap_or([0; 8]));
    let word4 = |at: usize| {
        u64::from(u32::from_le_bytes(
            key[at..at + 4].try_into().unwrap_or([0; 4]),
        ))
    };
    if n >= INLINE_KEY_BYTES {
        [word8(0), word8(8)]
    } else if n >= 8 {
        [word8(0), word8(n - 8)]
    } else if n >= 4 {
        [word4(0) | (word4(n - 4) << 32), 0]
    } else if n > 0 {
        [
            u64::from(key[0]) | (u64::from(key[n / 2]) << 8) | (u64::from(key[n - 1]) << 16),
            0,
        ]
    } else {
        [0, 0]
    }
}

const K0: u64 = 0x243f_6a88_85a3_08d3;
const K1: u64 = 0x1319_8a2e_0370_7344;
const K2: u64 = 0xa409_3822_299f_31d0;
const K3: u64 = 0x082e_fa98_ec4e_6c89;

fn folded_mul(a: u64, b: u64) -> u64 {
    let full = u128::from(a) * u128::from(b);
    (full as u64) ^ ((full >> 64) as u64)
}

/// Hash of a key of at most 16 bytes, from its `inline` form and length.
fn hash_words(words: [u64; 2], len: usize) -> u64 {
    let h = folded_mul(words[0] ^ K0, K1);
    folded_mul(h ^ words[1] ^ K2, K3 ^ len as u64)
}

fn hash_key(key: &[u8]) -> u64 {
    if key.len() <= INLINE_KEY_BYTES {
        return hash_words(inline(key), key.len());
    }
    let mut h = K0 ^ key.len() as u64;
    let mut blocks = key.chunks_exact(INLINE_KEY_BYTES);
    for block in &mut blocks {
        let [a, b] = inline(block);
        h = folded_mul(h ^ a ^ K1, b ^ K2);
    }
    // The last partial block, read as the key's last 16 bytes.
    if !blocks.remainder().is_empty() {
        let [a, b] = inline(&key[key.len() - INLINE_KEY_BYTES..]);
        h = folded_mul(h ^ a ^ K1, b ^ K2);
    }
    folded_mul(h, K3)
}

/// The tag stored with a key: 24 hash bits and the length (saturated).
fn tag_of(hash: u64, len: usize) -> u32 {
    ((hash as u32) & 0xffff_ff00) | len.min(255) as u32
}

/// One key in flight in `get_batch`.
#[derive(Clone, Copy, Default)]
struct Probe {
    words: [u64; 2],
    tag: u32,
    home: usize,
}

impl KeyIndex {
    fn with_slots(slots: usize) -> Self {
        Self {
            slots: vec![[0, 0, EMPTY]; slots.max(2)],
            len: 0,
        }
    }

    /// A key's first slot: the hash's top 32 bits scaled to the table.
    fn home(&self, hash: u64) -> usize {
        (((hash >> 32) * self.slots.len() as u64) >> 32) as usize
    }

    fn next(&self, at: usize) -> usize {
        if at + 1 == self.slots.len() {
            0
        } else {
            at + 1
        }
    }

    /// Finds `key` (of `words` and `tag`) from slot `at` on: the product
    /// holding it, or the empty slot where it would go.
    fn find(
        &self,
        arena: &StrArena,
        mut at: usize,
        key: &[u8],
        words: [u64; 2],
        tag: u32,
    ) -> Result<ProductId, usize> {
        let inline = key.len() <= INLINE_KEY_BYTES;
        loop {
            let [w0, w1, meta] = self.slots[at];
            if meta == EMPTY {
                return Err(at);
            }
            let id = meta as u32;
            if (meta >> 32) as u32 == tag
                && (if inline {
                    // The tag matched, so the length did.
                    [w0, w1] == words
                } else {
                    arena.get(id as usize).as_bytes() == key
                })
            {
                return Ok(id);
            }
            at = self.next(at);
        }
    }

    fn get(&self, arena: &StrArena, key: &[u8]) -> Option<ProductId> {
        if key.is_empty() {
            return None;
        }
        let hash = hash_key(key);
        let tag = tag_of(hash, key.len());
        self.find(arena, self.home(hash), key, inline(key), tag)
            .ok()
    }

    /// Looks every key up (`out[i]` for `keys[i]`), in rounds of `BATCH` keys
    /// taken in passes, so that the cache misses of different keys overlap:
    /// every key is hashed, then every home slot read (independent loads,
    /// issued back to back), then every key found from its (now cached) slot.
    fn get_batch(&self, arena: &StrArena, keys: &[&[u8]], out: &mut [Option<ProductId>]) {
        assert_eq!(keys.len(), out.len(), "one output per key");
        let mut probes = [Probe::default(); BATCH];
        for (keys, out) in keys.chunks(BATCH).zip(out.chunks_mut(BATCH)) {
            let probes = &mut probes[..keys.len()];
            for (p, key) in probes.iter_mut().zip(keys) {
                p.words = inline(key);
                let hash = if key.len() <= INLINE_KEY_BYTES {
                    hash_words(p.words, key.len())
                } else {
                    hash_key(key)
                };
                p.tag = tag_of(hash, key.len());
                p.home = self.home(hash);
            }
            let mut touched = 0u64;
            for p in probes.iter() {
                touched ^= self.slots[p.home][2];
            }
            std::hint::black_box(touched);
            for ((p, key), out) in probes.iter().zip(keys).zip(out.iter_mut()) {
                *out = if key.is_empty() {
                    None
                } else {
                    self.find(arena, p.home, key, p.words, p.tag).ok()
                };
            }
        }
    }

    /// Adds `key` for product `id`; its bytes are already in `arena`. An
    /// empty key is not indexed; a key already taken keeps its product, which
    /// is returned as the error.
    fn insert(&mut self, arena: &StrArena, key: &str, id: ProductId) -> Result<(), ProductId> {
        let key = key.as_bytes();
        if key.is_empty() {
            return Ok(());
        }
        if (self.len + 1) * 4 > self.slots.len() * 3 {
            self.rebuild(arena, self.slots.len() * 2);
        }
        let hash = hash_key(key);
        let (words, tag) = (inline(key), tag_of(hash, key.len()));
        let at = match self.find(arena, self.home(hash), key, words, tag) {
            Ok(existing) => return Err(existing),
            Err(empty) => empty,
        };
        self.slots[at] = [words[0], words[1], (u64::from(tag) << 32) | u64::from(id)];
        self.len += 1;
        Ok(())
    }

    /// Moves every key into a table of `slots` slots.
    fn rebuild(&mut self, arena: &StrArena, slots: usize) {
        let mut new = Self::with_slots(slots);
        for &slot in &self.slots {
            let [w0, w1, meta] = slot;
            if meta == EMPTY {
                continue;
            }
            let len = (meta >> 32) as usize & 0xff;
            let hash = if len <= INLINE_KEY_BYTES {
                hash_words([w0, w1], len)
            } else {
                hash_key(arena.get(meta as u32 as usize).as_bytes())
            };
            let mut at = new.home(hash);
            while new.slots[at][2] != EMPTY {
                at = new.next(at);
            }
            new.slots[at] = slot;
        }
        new.len = self.len;
        *self = new;
    }

    /// Resizes to a load of 2/3, once every key is in.
    fn shrink_to_fit(&mut self, arena: &StrArena) {
        let slots = self.len + self.len / 2 + 1;
        if slots < self.slots.len() {
            self.rebuild(arena, slots);
        }
    }
}

/// The merchant's products.
#[derive(Default)]
pub struct Catalog {
    skus: StrArena,
    mpns: StrArena,
    eans: StrArena,
    names: StrArena,
    weight_g: Vec<u32>,
    dims_mm: Vec<[u32; 3]>,
    by_sku: KeyIndex,
    by_mpn: KeyIndex,
    by_ean: KeyIndex,
}

impl std::fmt::Debug for Catalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Catalog")
            .field("products", &self.len())
            .finish()
    }
}

/// A loaded catalog and the rows it turned away.
#[derive(Debug)]
pub struct CatalogLoad {
    /// The products accepted.
    pub catalog: Catalog,
    /// Rows rejected, with line numbers (header = line 1).
    pub rejected: Vec<RowError>,
}

impl Catalog {
    /// Parses `catalog.csv`. Bad rows are rejected with their line number and the rest loads.
    pub fn from_csv(reader: impl std::io::Read) -> Result<CatalogLoad, CatalogError> {
        let mut rdr = csv::ReaderBuilder::new().flexible(true).from_reader(reader);
        let header = rdr.byte_headers()?.clone();
        let mut col = [0usize; 8];
        for (slot, name) in col.iter_mut().zip(CATALOG_COLUMNS) {
            *slot = header
                .iter()
                .position(|h| h.trim_ascii() == name.as_bytes())
                .ok_or(CatalogError::MissingColumn(name))?;
        }
        let mut catalog = Catalog::default();
        let mut rejected = Vec::new();
        let mut record = csv::ByteRecord::new();
        while rdr.read_byte_record(&mut record)? {
            let line = record.position().map_or(0, |p| p.line());
            match catalog.push_row(&record, &col) {
                Ok(()) => {}
                Err(message) => rejected.push(RowError { line, message }),
            }
        }
        catalog.shrink_to_fit();
        if catalog.is_empty() {
            return Err(CatalogError::Empty {
                rejected: rejected.len(),
            });
        }
        Ok(CatalogLoad { catalog, rejected })
    }

    fn push_row(&mut self, record: &csv::ByteRecord, col: &[usize; 8]) -> Result<(), String> {
        let text = |i: usize| -> Result<&str, String> {
            let raw = record
                .get(col[i])
                .ok_or_else(|| format!("missing column `{}`", CATALOG_COLUMNS[i]))?;
            std::str::from_utf8(raw)
                .map(str::trim)
                .map_err(|_| format!("column `{}` is not UTF-8", CATALOG_COLUMNS[i]))
        };
        let number = |i: usize| -> Result<u32, String> {
            let s = text(i)?;
            s.parse::<u32>().map_err(|_| {
                format!(
                    "column `{}`: `{s}` is not a non-negative whole number",
                    CATALOG_COLUMNS[i]
                )
            })
        };
        let sku = text(0)?;
        if sku.is_empty() {
            return Err("column `sku` is empty".into());
        }
        if sku.len() > limits::SKU_BYTES_MAX {
            return Err(format!(
                "column `sku` is longer than {} bytes",
                limits::SKU_BYTES_MAX
            ));
        }
        let (mpn, ean, name) = (text(1)?, text(2)?, text(3)?);
        let weight_g = number(4)?;
        let dims = [number(5)?, number(6)?, number(7)?];
        if let Some(other) = self.by_sku.get(&self.skus, sku.as_bytes()) {
            return Err(format!(
                "duplicate sku `{sku}` (first at product {})",
                self.skus.get(other as usize)
            ));
        }
        let id = self.len() as ProductId;
        self.skus.push(sku);
        self.mpns.push(mpn);
        self.eans.push(ean);
        self.names.push(name);
        self.weight_g.push(weight_g);
        self.dims_mm.push(dims);
        // A duplicate sku was refused above. A duplicate mpn or ean keeps the
        // first product for it: matching by that column stays unambiguous.
        let _ = self.by_sku.insert(&self.skus, sku, id);
        let _ = self.by_mpn.insert(&self.mpns, mpn, id);
        let _ = self.by_ean.insert(&self.eans, ean, id);
        Ok(())
    }

    fn shrink_to_fit(&mut self) {
        for arena in [
            &mut self.skus,
            &mut self.mpns,
            &mut self.eans,
            &mut self.names,
        ] {
            arena.bytes.shrink_to_fit();
            arena.offsets.shrink_to_fit();
        }
        self.weight_g.shrink_to_fit();
        self.dims_mm.shrink_to_fit();
        self.by_sku.shrink_to_fit(&self.skus);
        self.by_mpn.shrink_to_fit(&self.mpns);
        self.by_ean.shrink_to_fit(&self.eans);
    }

    /// Number of products.
    pub fn len(&self) -> usize {
        self.weight_g.len()
    }

    /// True when there are no products.
    pub fn is_empty(&self) -> bool {
        self.weight_g.is_empty()
    }

    /// Looks a product up by the merchant's SKU.
    pub fn by_sku(&self, sku: &[u8]) -> Option<ProductId> {
        self.by_sku.get(&self.skus, sku)
    }

    /// Looks a product up by manufacturer part number.
    pub fn by_mpn(&self, mpn: &[u8]) -> Option<ProductId> {
        self.by_mpn.get(&self.mpns, mpn)
    }

    /// Looks a product up by EAN.
    pub fn by_ean(&self, ean: &[u8]) -> Option<ProductId> {
        self.by_ean.get(&self.eans, ean)
    }

    /// Looks many keys of one column up at once: `out[i]` is what
    /// `by_sku`/`by_mpn`/`by_ean` (by `column`) gives for `keys[i]`. Faster
    /// than one call per key in a large catalog, because the lookups' cache
    /// misses overlap.
    ///
    /// # Panics
    /// When `keys` and `out` differ in length.
    pub fn match_batch(&self, column: KeyColumn, keys: &[&[u8]], out: &mut [Option<ProductId>]) {
        let (index, arena) = match column {
            KeyColumn::Sku => (&self.by_sku, &self.skus),
            KeyColumn::Mpn => (&self.by_mpn, &self.mpns),
            KeyColumn::Ean => (&self.by_ean, &self.eans),
        };
        index.get_batch(arena, keys, out);
    }

    /// The SKU of a product ("" for an id out of range).
    pub fn sku(&self, id: ProductId) -> &str {
        self.skus.get(id as usize)
    }

    /// A product's weight in grams and its dimensions in millimetres, or
    /// `None` for an id out of range. Freight asks for these many times per
    /// quote; unlike [`Catalog::get`] this reads no text columns, whose
    /// cache misses would cost more than the answer.
    pub fn weight_and_dims(&self, id: ProductId) -> Option<(u32, [u32; 3])> {
        let i = id as usize;
        Some((*self.weight_g.get(i)?, *self.dims_mm.get(i)?))
    }

    /// A product by id.
    pub fn get(&self, id: ProductId) -> Option<Product<'_>> {
        let i = id as usize;
        let [length_mm, width_mm, height_mm] = *self.dims_mm.get(i)?;
        Some(Product {
            id,
            sku: self.skus.get(i),
            mpn: self.mpns.get(i),
            ean: self.eans.get(i),
            name: self.names.get(i),
            weight_g: self.weight_g[i],
            length_mm,
            width_mm,
            height_mm,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loads_products_and_finds_them_by_each_key() {
        let csv = "sku,mpn,ean,name,weight_g,length_mm,width_mm,height_mm\n\
                   A-1,M1,4006381333931,\"Widget, large\",1200,300,200,100\n\
                   A-2,M2,,Gadget,80,50,40,30\n";
        let load = Catalog::from_csv(csv.as_bytes()).unwrap();
        assert!(load.rejected.is_empty());
        let c = load.catalog;
        assert_eq!(c.len(), 2);
        assert_eq!(c.by_sku(b"A-2"), Some(1));
        assert_eq!(c.by_mpn(b"M1"), Some(0));
        assert_eq!(c.by_ean(b"4006381333931"), Some(0));
        assert_eq!(c.by_ean(b""), None);
        let p = c.get(0).unwrap();
        assert_eq!(p.name, "Widget, large");
        assert_eq!((p.weight_g, p.length_mm), (1200, 300));
        assert_eq!(c.weight_and_dims(1), Some((80, [50, 40, 30])));
        assert_eq!(c.weight_and_dims(2), None);
    }

    #[test]
    fn bad_rows_are_rejected_with_line_numbers_and_the_rest_loads() {
        let csv = "name,sku,mpn,ean,weight_g,length_mm,width_mm,height_mm\n\
                   ok,A,,,1,1,1,1\n\
                   neg,B,,,-5,1,1,1\n\
                   dup,A,,,1,1,1,1\n\
                   short,C\n\
                   ok2,D,,,2,2,2,2\n";
        let load = Catalog::from_csv(csv.as_bytes()).unwrap();
        assert_eq!(load.catalog.len(), 2);
        let lines: Vec<u64> = load.rejected.iter().map(|e| e.line).collect();
        assert_eq!(lines, vec![3, 4, 5]);
        assert!(load.rejected[0].message.contains("weight_g"));
        assert!(load.rejected[1].message.contains("duplicate sku"));
    }

    #[test]
    fn missing_column_is_named() {
        let err = Catalog::from_csv("sku,mpn\nA,B\n".as_bytes()).unwrap_err();
        assert!(err.to_string().contains("`ean`"), "{err}");
    }

    fn catalog_of(rows: &[(&str, &str, &str)]) -> Catalog {
        let mut csv = String::from("sku,mpn,ean,name,weight_g,length_mm,width_mm,height_mm\n");
        for (sku, mpn, ean) in rows {
            csv.push_str(&format!("{sku},{mpn},{ean},n,1,1,1,1\n"));
        }
        Catalog::from_csv(csv.as_bytes()).unwrap().catalog
    }

    fn batch(c: &Catalog, column: KeyColumn, keys: &[&[u8]]) -> Vec<Option<ProductId>> {
        let mut out = vec![Some(u32::MAX); keys.len()];
        c.match_batch(column, keys, &mut out);
        out
    }

    #[test]
    fn long_keys_are_confirmed_in_full() {
        let long_a = "PREFIX-0123456789-LONG-A";
        let long_b = "PREFIX-0123456789-LONG-B"; // same first 16 bytes and length
        let c = catalog_of(&[
            (long_a, "", ""),
            (long_b, "", ""),
            ("PREFIX-012345678", "", ""),
        ]);
        assert_eq!(c.by_sku(long_a.as_bytes()), Some(0));
        assert_eq!(c.by_sku(long_b.as_bytes()), Some(1));
        assert_eq!(c.by_sku(b"PREFIX-012345678"), Some(2));
        assert_eq!(c.by_sku(b"PREFIX-0123456789-LONG-C"), None);
        assert_eq!(c.by_sku(b"PREFIX-0123456789-LONG-"), None);
        let keys: [&[u8]; 4] = [
            long_b.as_bytes(),
            b"PREFIX-0123456789-LONG-C",
            long_a.as_bytes(),
            b"",
        ];
        assert_eq!(
            batch(&c, KeyColumn::Sku, &keys),
            vec![Some(1), None, Some(0), None]
        );
    }

    #[test]
    fn duplicate_mpn_or_ean_keeps_the_first_product_and_empty_keys_match_nothing() {
        let c = catalog_of(&[
            ("A", "M", "E"),
            ("B", "M", ""),
            ("C", "", "E"),
            ("D", "", ""),
        ]);
        assert_eq!(c.len(), 4);
        assert_eq!(c.by_mpn(b"M"), Some(0));
        assert_eq!(c.by_ean(b"E"), Some(0));
        assert_eq!(
            (c.by_sku(b""), c.by_mpn(b""), c.by_ean(b"")),
            (None, None, None)
        );
        assert_eq!(batch(&c, KeyColumn::Mpn, &[b"M", b""]), vec![Some(0), None]);
        assert_eq!(batch(&c, KeyColumn::Ean, &[b"", b"E"]), vec![None, Some(0)]);
    }

    #[test]
    fn keys_with_the_same_tag_and_home_slot_are_told_apart() {
        // Three keys of one length whose hashes share the tag (24 bits and
        // the length) and the home slot in a 4-slot table.
        let arena_of = |keys: &[&str]| {
            let mut a = StrArena::default();
            keys.iter().for_each(|k| a.push(k));
            a
        };
        let probe = KeyIndex::with_slots(4);
        let mut seen: std::collections::HashMap<(u32, usize), Vec<String>> = Default::default();
        let mut same = None;
        for i in 0u32.. {
            let key = format!("K{i:09}");
            let hash = hash_key(key.as_bytes());
            let group = seen
                .entry((tag_of(hash, key.len()), probe.home(hash)))
                .or_default();
            group.push(key);
            if group.len() == 3 {
                same = Some(group.clone());
                break;
            }
        }
        let same = same.unwrap();
        let (a, b, c) = (&same[0], &same[1], &same[2]);
        let arena = arena_of(&[a, b]);
        let mut index = KeyIndex::with_slots(4);
        index.insert(&arena, a, 0).unwrap();
        index.insert(&arena, b, 1).unwrap();
        assert_eq!(index.insert(&arena, b, 1), Err(1));
        assert_eq!(index.get(&arena, a.as_bytes()), Some(0));
        assert_eq!(index.get(&arena, b.as_bytes()), Some(1));
        assert_eq!(index.get(&arena, c.as_bytes()), None);
        let mut out = [None; 3];
        index.get_batch(
            &arena,
            &[c.as_bytes(), b.as_bytes(), a.as_bytes()],
            &mut out,
        );
        assert_eq!(out, [None, Some(1), Some(0)]);
    }

    #[test]
    fn a_table_that_grows_and_shrinks_keeps_every_key() {
        let mut arena = StrArena::default();
        let mut index = KeyIndex::default();
        let keys: Vec<String> = (0..5000)
            .map(|i| match i % 3 {
                0 => format!("{i}"),
                1 => format!("key-{i:05}"),
                _ => format!("a-rather-long-key-number-{i}"),
            })
            .collect();
        for (id, k) in keys.iter().enumerate() {
            arena.push(k);
            index.insert(&arena, k, id as ProductId).unwrap();
        }
        index.shrink_to_fit(&arena);
        for (id, k) in keys.iter().enumerate() {
            assert_eq!(
                index.get(&arena, k.as_bytes()),
                Some(id as ProductId),
                "{k}"
            );
        }
        assert_eq!(index.get(&arena, b"key-99999"), None);
    }

    proptest::proptest! {
        /// `match_batch` answers exactly what one `by_*` call per key does.
        #[test]
        fn match_batch_equals_single_lookups(
            products in proptest::collection::vec(("[A-C]{0,3}[0-9]{0,20}", "[a-b]{0,2}[0-9]{0,3}", "[0-9]{0,14}"), 1..60),
            extra in proptest::collection::vec("[A-Ca-b0-9]{0,24}", 0..100),
        ) {
            let mut csv = String::from("sku,mpn,ean,name,weight_g,length_mm,width_mm,height_mm\n");
            for (sku, mpn, ean) in &products {
                csv.push_str(&format!("{sku},{mpn},{ean},n,1,1,1,1\n"));
            }
            let Ok(load) = Catalog::from_csv(csv.as_bytes()) else { return Ok(()) };
            let c = load.catalog;
            let mut keys: Vec<&[u8]> = Vec::new();
            for (sku, mpn, ean) in &products {
                keys.extend([sku.as_bytes(), mpn.as_bytes(), ean.as_bytes()]);
            }
            keys.extend(extra.iter().map(|k| k.as_bytes()));
            for (column, single) in [
                (KeyColumn::Sku, Catalog::by_sku as fn(&Catalog, &[u8]) -> Option<ProductId>),
                (KeyColumn::Mpn, Catalog::by_mpn),
                (KeyColumn::Ean, Catalog::by_ean),
            ] {
                let want: Vec<_> = keys.iter().map(|k| single(&c, k)).collect();
                proptest::prop_assert_eq!(batch(&c, column, &keys), want);
            }
            for id in 0..c.len() as ProductId {
                let p = c.get(id).unwrap();
                proptest::prop_assert_eq!(c.by_sku(p.sku.as_bytes()), Some(id));
                if !p.mpn.is_empty() {
                    let first = c.by_mpn(p.mpn.as_bytes()).unwrap();
                    proptest::prop_assert!(first <= id);
                    proptest::prop_assert_eq!(c.get(first).unwrap().mpn, p.mpn);
                }
            }
        }
    }
}

//! The merchant's products: loaded once from `catalog.csv`, then read-only.
//!
//! Products get dense ids (`ProductId`, their row order) so that everything
//! downstream keys on a small integer instead of a string. Strings live in
//! arenas and the lookup tables hold only ids, which keeps a million-product
//! catalog small and its lookups one hash and one compare.

use std::hash::BuildHasher;

use hashbrown::HashTable;
use rustc_hash::FxBuildHasher;

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

/// A hash index from a string column to product ids; the strings stay in the arena.
#[derive(Default)]
struct KeyIndex {
    table: HashTable<ProductId>,
}

fn hash_key(key: &[u8]) -> u64 {
    FxBuildHasher.hash_one(key)
}

impl KeyIndex {
    fn get(&self, arena: &StrArena, key: &[u8]) -> Option<ProductId> {
        if key.is_empty() {
            return None;
        }
        self.table
            .find(hash_key(key), |&id| {
                arena.get(id as usize).as_bytes() == key
            })
            .copied()
    }

    /// Inserts unless the key is taken; returns the id already holding it.
    fn insert(&mut self, arena: &StrArena, key: &str, id: ProductId) -> Result<(), ProductId> {
        if key.is_empty() {
            return Ok(());
        }
        if let Some(existing) = self.get(arena, key.as_bytes()) {
            return Err(existing);
        }
        self.table
            .insert_unique(hash_key(key.as_bytes()), id, |&other| {
                hash_key(arena.get(other as usize).as_bytes())
            });
        Ok(())
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

    /// The SKU of a product ("" for an id out of range).
    pub fn sku(&self, id: ProductId) -> &str {
        self.skus.get(id as usize)
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
}

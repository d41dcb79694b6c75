//! This replica's copy of the database's counts, for the quote path.
//!
//! The database is the truth; this cache only has to be close. Every count
//! arrives with its stock row's `version` (bumped by every change), and a
//! count is applied only when its version is newer than the one the cache
//! has, so answers that arrive out of order — this replica's own
//! transactions, other replicas' notifications, the periodic full read —
//! never move a key backwards.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use dashmap::DashMap;

use crate::domain::ledger::{HoldsTable, KeyResolver, StockKey};

/// A stock row's count as of one version.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Count {
    /// The supplier's external id.
    pub supplier_id: String,
    /// The SKU.
    pub sku: String,
    /// Held plus allocated-not-reflected.
    pub counted: i64,
    /// The row's version when it had that count.
    pub version: i64,
}

/// What the cache knows of one key besides its count.
#[derive(Debug)]
struct Seen {
    version: i64,
    /// The refresh generation it was applied in.
    generation: u64,
    supplier_id: String,
    sku: String,
}

/// The cache: a [`HoldsTable`] the quote path reads, and versions.
pub struct HoldsCache {
    table: Arc<HoldsTable>,
    seen: DashMap<StockKey, Seen>,
    generation: AtomicU64,
    resolver: Arc<dyn KeyResolver>,
}

impl std::fmt::Debug for HoldsCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HoldsCache")
            .field("keys", &self.seen.len())
            .field("total", &self.table.total())
            .finish()
    }
}

impl HoldsCache {
    /// An empty cache resolving names with `resolver`.
    pub fn new(resolver: Arc<dyn KeyResolver>) -> Self {
        Self {
            table: Arc::new(HoldsTable::new()),
            seen: DashMap::new(),
            generation: AtomicU64::new(0),
            resolver,
        }
    }

    /// The table the quote path reads.
    pub fn table(&self) -> Arc<HoldsTable> {
        Arc::clone(&self.table)
    }

    /// Takes `count` if it is newer than what the cache has. Names this
    /// process does not know are skipped: nothing here quotes them.
    pub fn apply(&self, count: &Count) {
        let Some(key) = self.resolver.key(&count.supplier_id, &count.sku) else {
            return;
        };
        let generation = self.generation.load(Ordering::Acquire);
        let units = u32::try_from(count.counted.max(0)).unwrap_or(u32::MAX);
        // The entry's shard lock is held while the table changes, so two
        // counts for one key cannot interleave between check and set.
        match self.seen.entry(key) {
            dashmap::Entry::Occupied(mut e) => {
                if count.version > e.get().version {
                    self.table.set(key, units);
                    let s = e.get_mut();
                    s.version = count.version;
                    s.generation = generation;
                }
            }
            dashmap::Entry::Vacant(e) => {
                self.table.set(key, units);
                e.insert(Seen {
                    version: count.version,
                    generation,
                    supplier_id: count.supplier_id.clone(),
                    sku: count.sku.clone(),
                });
            }
        }
    }

    /// Starts a full refresh: returns its generation. Counts applied before
    /// this call have an older one.
    pub fn begin_refresh(&self) -> u64 {
        self.generation.fetch_add(1, Ordering::AcqRel) + 1
    }

    /// Keys the cache counts as non-zero that a full read (which returns only
    /// non-zero rows) did not return and that nothing has updated since the
    /// read began: their rows went to zero, or they must be asked for by name.
    pub fn missing_from(
        &self,
        generation: u64,
        returned: &HashSet<StockKey>,
    ) -> Vec<(String, String)> {
        self.seen
            .iter()
            .filter(|e| {
                e.generation < generation
                    && !returned.contains(e.key())
                    && crate::domain::ledger::HoldsView::counted(self.table.as_ref(), *e.key()) > 0
            })
            .map(|e| (e.supplier_id.clone(), e.sku.clone()))
            .collect()
    }

    /// The supplier of an external id, if this process knows it.
    pub fn supplier(&self, supplier_id: &str) -> Option<crate::domain::suppliers::SupplierId> {
        self.resolver.supplier(supplier_id)
    }

    /// The key of a name pair, if this process knows it.
    pub fn key(&self, supplier_id: &str, sku: &str) -> Option<StockKey> {
        self.resolver.key(supplier_id, sku)
    }
}

/// Largest NOTIFY payload PostgreSQL accepts is 8000 bytes; stay under it.
pub const PAYLOAD_BYTES_MAX: usize = 7_900;

/// Packs counts into NOTIFY payloads (JSON arrays of counts), each under
/// [`PAYLOAD_BYTES_MAX`]. A count too large for any payload on its own is
/// left out: the periodic full read brings it.
pub fn payloads(counts: &[Count]) -> Vec<String> {
    let mut out = Vec::new();
    let mut current: Vec<String> = Vec::new();
    let mut size = 2;
    for c in counts {
        let Ok(item) = serde_json::to_string(c) else {
            continue;
        };
        if item.len() + 2 > PAYLOAD_BYTES_MAX {
            continue;
        }
        if size + item.len() + 1 > PAYLOAD_BYTES_MAX {
            out.push(format!("[{}]", current.join(",")));
            current.clear();
            size = 2;
        }
        size += item.len() + 1;
        current.push(item);
    }
    if !current.is_empty() {
        out.push(format!("[{}]", current.join(",")));
    }
    out
}

/// Reads a payload; `None` for anything that is not one of ours.
pub fn parse_payload(payload: &str) -> Option<Vec<Count>> {
    serde_json::from_str(payload).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::catalog::ProductId;
    use crate::domain::ledger::HoldsView;
    use crate::domain::suppliers::SupplierId;

    /// Names "S<n>" and "P<n>" resolve to n.
    struct Names;
    impl KeyResolver for Names {
        fn product(&self, sku: &str) -> Option<ProductId> {
            sku.strip_prefix('P')?.parse().ok()
        }
        fn supplier(&self, supplier_id: &str) -> Option<SupplierId> {
            supplier_id.strip_prefix('S')?.parse().ok()
        }
    }

    fn count(s: u16, p: u32, counted: i64, version: i64) -> Count {
        Count {
            supplier_id: format!("S{s}"),
            sku: format!("P{p}"),
            counted,
            version,
        }
    }

    #[test]
    fn older_versions_never_overwrite_newer() {
        let cache = HoldsCache::new(Arc::new(Names));
        let key = StockKey {
            supplier: 1,
            product: 2,
        };
        cache.apply(&count(1, 2, 5, 3));
        cache.apply(&count(1, 2, 9, 2));
        assert_eq!(cache.table().counted(key), 5);
        cache.apply(&count(1, 2, 0, 4));
        assert_eq!(cache.table().counted(key), 0);
        cache.apply(&count(7, 7, 3, 1));
        cache.apply(&Count {
            sku: "unknown".into(),
            ..count(1, 1, 4, 1)
        });
        assert_eq!(cache.table().total(), 3, "unknown names are skipped");
    }

    #[test]
    fn a_refresh_finds_keys_it_did_not_see() {
        let cache = HoldsCache::new(Arc::new(Names));
        cache.apply(&count(1, 1, 5, 1));
        cache.apply(&count(1, 2, 5, 1));
        let generation = cache.begin_refresh();
        // Updated during the refresh: not stale, whatever the read said.
        cache.apply(&count(1, 2, 6, 2));
        let missing = cache.missing_from(generation, &HashSet::new());
        assert_eq!(missing, vec![("S1".to_string(), "P1".to_string())]);
    }

    #[test]
    fn payloads_stay_under_the_limit_and_round_trip() {
        let counts: Vec<Count> = (0..2_000).map(|i| count(1, i, 1, i64::from(i))).collect();
        let packed = payloads(&counts);
        assert!(packed.len() > 1);
        assert!(packed.iter().all(|p| p.len() <= PAYLOAD_BYTES_MAX));
        let back: Vec<Count> = packed
            .iter()
            .flat_map(|p| parse_payload(p).unwrap())
            .collect();
        assert_eq!(back, counts);
        let huge = Count {
            sku: "x".repeat(9_000),
            ..count(1, 1, 1, 1)
        };
        assert!(payloads(&[huge]).is_empty());
        assert!(parse_payload("not ours").is_none());
    }
}

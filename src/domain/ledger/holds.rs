//! What the ledger counts against supply, readable synchronously by the
//! quote path: units held plus units allocated and not yet reflected in a
//! newer full feed, per (supplier, product).
//!
//! [`HoldsTable`] is the one implementation both ledgers use: the embedded
//! ledger makes its atomic check-and-hold on it, and a PostgreSQL replica
//! keeps it as a local cache of the database's counts. It must never be
//! slower to read than the index it is subtracted from by much, so it is
//! sharded hash maps behind reader-writer locks and a global counter that
//! lets an idle ledger cost one atomic load per offer.

use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::RwLock;
use rustc_hash::FxHashMap;
use smallvec::SmallVec;

use super::StockKey;

/// Shards of the table: enough that writers on different keys rarely meet.
const SHARDS: usize = 64;
/// Keys of one `try_add` kept inline: baskets are mostly a few lines, and
/// every reserve passes through here.
const INLINE_KEYS: usize = 8;

/// Units counted against supply, per (supplier, product).
pub trait HoldsView: Send + Sync + std::fmt::Debug {
    /// Units of `key` that are held or allocated-not-yet-reflected.
    fn counted(&self, key: StockKey) -> u32;

    /// `supply` minus what is counted, never below zero: what a new order
    /// can still have.
    fn available(&self, key: StockKey, supply: u32) -> u32 {
        supply.saturating_sub(self.counted(key))
    }
}

/// A view with nothing counted: for a world that has no ledger.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoHolds;

impl HoldsView for NoHolds {
    fn counted(&self, _: StockKey) -> u32 {
        0
    }
}

/// Sharded counts per (supplier, product), with an all-or-nothing
/// conditional add over several keys.
#[derive(Debug)]
pub struct HoldsTable {
    shards: Box<[RwLock<FxHashMap<StockKey, u32>>]>,
    /// Sum of all counts; zero lets readers skip the shards entirely.
    total: AtomicU64,
}

impl Default for HoldsTable {
    fn default() -> Self {
        Self::new()
    }
}

/// A key that could not take its units in [`HoldsTable::try_add`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Short {
    /// The key.
    pub key: StockKey,
    /// Units asked for it (summed over the request).
    pub requested: u32,
    /// Units it had left: supply − counted, at least 0.
    pub available: u32,
}

impl HoldsTable {
    /// An empty table.
    pub fn new() -> Self {
        Self {
            shards: (0..SHARDS)
                .map(|_| RwLock::new(FxHashMap::default()))
                .collect(),
            total: AtomicU64::new(0),
        }
    }

    /// Which shard holds `key`.
    pub fn shard_of(key: StockKey) -> usize {
        // Products are dense ids, so neighbours spread over shards; the
        // supplier is mixed in so one product's suppliers do too.
        let h = (u64::from(key.product) ^ (u64::from(key.supplier) << 32))
            .wrapping_mul(0x9E37_79B9_7F4A_7C15);
        (h >> 58) as usize % SHARDS
    }

    /// Adds `wants` — (key, units, supply) — all or nothing: succeeds only if
    /// for every key `counted + units <= supply` (units of one key summed
    /// across entries; the smallest supply named for a key wins). Atomic
    /// against every other call on this table: the shards involved are
    /// locked together, in shard order so that callers never deadlock.
    pub fn try_add(&self, wants: &[(StockKey, u32, u32)]) -> Result<(), Vec<Short>> {
        let merged = merge(wants);
        let mut shard_ids: SmallVec<[usize; INLINE_KEYS]> =
            merged.iter().map(|(k, _, _)| Self::shard_of(*k)).collect();
        shard_ids.sort_unstable();
        shard_ids.dedup();
        let mut guards: SmallVec<[_; INLINE_KEYS]> =
            shard_ids.iter().map(|&s| self.shards[s].write()).collect();
        let guard_of = |key: StockKey| {
            shard_ids
                .binary_search(&Self::shard_of(key))
                .unwrap_or_default()
        };
        let mut shorts = Vec::new();
        for &(key, units, supply) in &merged {
            let counted = guards[guard_of(key)].get(&key).copied().unwrap_or(0);
            let available = supply.saturating_sub(counted);
            if units > available {
                shorts.push(Short {
                    key,
                    requested: units,
                    available,
                });
            }
        }
        if !shorts.is_empty() {
            return Err(shorts);
        }
        let mut added = 0u64;
        for &(key, units, _) in &merged {
            let g = &mut guards[guard_of(key)];
            *g.entry(key).or_insert(0) += units;
            added += u64::from(units);
        }
        self.total.fetch_add(added, Ordering::Relaxed);
        Ok(())
    }

    /// Adds units unconditionally (recovery, or mirroring another source of
    /// truth), saturating.
    pub fn add(&self, key: StockKey, units: u32) {
        if units == 0 {
            return;
        }
        let mut g = self.shards[Self::shard_of(key)].write();
        let c = g.entry(key).or_insert(0);
        let before = *c;
        *c = c.saturating_add(units);
        self.total
            .fetch_add(u64::from(*c - before), Ordering::Relaxed);
    }

    /// Removes units, never below zero.
    pub fn sub(&self, key: StockKey, units: u32) {
        if units == 0 {
            return;
        }
        let mut g = self.shards[Self::shard_of(key)].write();
        if let Some(c) = g.get_mut(&key) {
            let taken = (*c).min(units);
            *c -= taken;
            if *c == 0 {
                g.remove(&key);
            }
            self.total.fetch_sub(u64::from(taken), Ordering::Relaxed);
        }
    }

    /// Sets a key's count outright (a cache refreshed from elsewhere).
    pub fn set(&self, key: StockKey, units: u32) {
        let mut g = self.shards[Self::shard_of(key)].write();
        let before = if units == 0 {
            g.remove(&key).unwrap_or(0)
        } else {
            g.insert(key, units).unwrap_or(0)
        };
        if units >= before {
            self.total
                .fetch_add(u64::from(units - before), Ordering::Relaxed);
        } else {
            self.total
                .fetch_sub(u64::from(before - units), Ordering::Relaxed);
        }
    }

    /// Every non-zero count, in no particular order (for checks and tests).
    pub fn entries(&self) -> Vec<(StockKey, u32)> {
        self.shards
            .iter()
            .flat_map(|s| s.read().iter().map(|(k, v)| (*k, *v)).collect::<Vec<_>>())
            .collect()
    }

    /// Sum of all counts.
    pub fn total(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }

    /// Empties the table.
    pub fn clear(&self) {
        for s in self.shards.iter() {
            s.write().clear();
        }
        self.total.store(0, Ordering::Relaxed);
    }
}

impl HoldsView for HoldsTable {
    #[inline]
    fn counted(&self, key: StockKey) -> u32 {
        if self.total.load(Ordering::Relaxed) == 0 {
            return 0;
        }
        self.shards[Self::shard_of(key)]
            .read()
            .get(&key)
            .copied()
            .unwrap_or(0)
    }
}

/// Sums units per key and keeps the smallest supply named for it.
fn merge(wants: &[(StockKey, u32, u32)]) -> SmallVec<[(StockKey, u32, u32); INLINE_KEYS]> {
    let mut out: SmallVec<[(StockKey, u32, u32); INLINE_KEYS]> =
        SmallVec::with_capacity(wants.len());
    for &(key, units, supply) in wants {
        match out.iter_mut().find(|(k, _, _)| *k == key) {
            Some((_, u, s)) => {
                *u = u.saturating_add(units);
                *s = (*s).min(supply);
            }
            None => out.push((key, units, supply)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(supplier: u16, product: u32) -> StockKey {
        StockKey { supplier, product }
    }

    #[test]
    fn try_add_is_all_or_nothing() {
        let t = HoldsTable::new();
        t.try_add(&[(key(1, 1), 3, 5), (key(2, 9), 1, 1)]).unwrap();
        let err = t
            .try_add(&[(key(1, 1), 2, 5), (key(2, 9), 1, 1)])
            .unwrap_err();
        assert_eq!(
            err,
            vec![Short {
                key: key(2, 9),
                requested: 1,
                available: 0
            }]
        );
        assert_eq!(t.counted(key(1, 1)), 3, "nothing of a failed add stays");
        assert_eq!(t.total(), 4);
    }

    #[test]
    fn one_key_on_two_lines_is_summed() {
        let t = HoldsTable::new();
        let err = t
            .try_add(&[(key(1, 1), 3, 5), (key(1, 1), 3, 5)])
            .unwrap_err();
        assert_eq!(err[0].requested, 6);
        assert_eq!(err[0].available, 5);
        assert_eq!(t.total(), 0);
    }

    #[test]
    fn sub_and_set_keep_the_total() {
        let t = HoldsTable::new();
        t.add(key(0, 0), 4);
        t.sub(key(0, 0), 10);
        assert_eq!(t.total(), 0);
        t.set(key(3, 3), 7);
        t.set(key(3, 3), 2);
        assert_eq!((t.counted(key(3, 3)), t.total()), (2, 2));
        t.set(key(3, 3), 0);
        assert!(t.entries().is_empty());
    }

    #[test]
    fn racing_adds_for_the_last_units_never_exceed_supply() {
        let t = std::sync::Arc::new(HoldsTable::new());
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let t = std::sync::Arc::clone(&t);
                std::thread::spawn(move || {
                    (0..500)
                        .filter(|i| t.try_add(&[(key(1, *i % 3), 1, 100)]).is_ok())
                        .count()
                })
            })
            .collect();
        let won: usize = handles.into_iter().map(|h| h.join().unwrap()).sum();
        assert_eq!(won, 300);
        assert_eq!(t.total(), 300);
    }
}

//! The cache of real-time answers, per (supplier, supplier SKU).
//!
//! One moka cache across suppliers. An item the supplier knows lives for
//! `cache_ttl_ms`, an item it does not know (negative caching) for
//! `negative_ttl_ms`; writing an entry again (a refresh) restarts its clock.
//! Each entry counts its reads, which is what makes an item "hot" for
//! refresh-ahead.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::domain::realtime::ItemState;
use crate::domain::suppliers::SupplierId;

/// (supplier, its SKU).
pub(super) type CacheKey = (SupplierId, Arc<str>);

/// The cache itself.
pub(super) type ItemCache = moka::future::Cache<CacheKey, Arc<CachedItem>>;

/// One cached answer about one item.
#[derive(Debug)]
pub(super) struct CachedItem {
    /// What the supplier said.
    pub state: ItemState,
    /// The supplier's `as_of` (Unix seconds).
    pub as_of_s: u32,
    /// When it was cached (for refresh-ahead).
    pub stored: Instant,
    /// Reads since it was cached.
    hits: AtomicU32,
}

impl CachedItem {
    /// A fresh entry.
    pub fn new(state: ItemState, as_of_s: u32) -> Self {
        CachedItem {
            state,
            as_of_s,
            stored: Instant::now(),
            hits: AtomicU32::new(0),
        }
    }

    /// Counts a read; returns the reads so far, this one included.
    pub fn hit(&self) -> u32 {
        self.hits.fetch_add(1, Ordering::Relaxed).saturating_add(1)
    }
}

/// Known items for `ttl`, unknown ones for `negative_ttl`, from each write.
struct Lifetimes {
    ttl: Duration,
    negative_ttl: Duration,
}

impl Lifetimes {
    fn of(&self, item: &CachedItem) -> Duration {
        match item.state {
            ItemState::Known { .. } => self.ttl,
            ItemState::Unknown => self.negative_ttl,
        }
    }
}

impl moka::Expiry<CacheKey, Arc<CachedItem>> for Lifetimes {
    fn expire_after_create(
        &self,
        _key: &CacheKey,
        value: &Arc<CachedItem>,
        _created_at: std::time::Instant,
    ) -> Option<Duration> {
        Some(self.of(value))
    }

    fn expire_after_update(
        &self,
        _key: &CacheKey,
        value: &Arc<CachedItem>,
        _updated_at: std::time::Instant,
        _duration_until_expiry: Option<Duration>,
    ) -> Option<Duration> {
        Some(self.of(value))
    }
}

/// The cache, or `None` when caching is off (a TTL or the capacity is 0).
pub(super) fn build(ttl: Duration, negative_ttl: Duration, capacity: u64) -> Option<ItemCache> {
    if ttl.is_zero() || capacity == 0 {
        return None;
    }
    Some(
        moka::future::Cache::builder()
            .max_capacity(capacity)
            .expire_after(Lifetimes {
                ttl,
                // Zero would mean "never cache unknown items": an instant expiry.
                negative_ttl: negative_ttl.max(Duration::from_millis(1)),
            })
            .build(),
    )
}

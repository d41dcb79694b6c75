//! The real-time answers of one request, laid over the index.

use rustc_hash::FxHashMap;

use super::{AskOutcome, Freshness, ItemState, StockSource, SupplierAnswer};
use crate::domain::catalog::ProductId;
use crate::domain::index::{OfferRef, RealtimeRow};
use crate::domain::money::CostUnits;
use crate::domain::suppliers::SupplierId;

/// One real-time reading as the overlay keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Reading {
    available: u32,
    /// `None` for an item the supplier does not know: its cost stays the index's.
    cost: Option<CostUnits>,
    as_of_s: u32,
    source: StockSource,
}

/// What one request knows in real time: readings per (supplier, product)
/// and who answered. The default overlay is empty: every offer reads as the
/// index holds it.
#[derive(Debug, Clone, Default)]
pub struct Overlay {
    readings: FxHashMap<(SupplierId, ProductId), Reading>,
    freshness: Freshness,
}

/// An offer as one request sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeenOffer {
    /// Units available.
    pub available: u32,
    /// Unit cost.
    pub cost: CostUnits,
    /// Data time (Unix seconds).
    pub as_of_s: u32,
    /// Where the numbers came from.
    pub source: StockSource,
}

impl Overlay {
    /// The overlay of `answers`. An `as_of` later than `now_s` (a supplier
    /// whose clock runs ahead, or that lies) counts as `now_s`, so that no
    /// answer can claim to be newer than anything that arrives after it.
    pub fn from_answers(answers: &[SupplierAnswer], now_s: u32) -> Self {
        let mut overlay = Overlay::default();
        for a in answers {
            let f = &mut overlay.freshness;
            match a.outcome {
                AskOutcome::Answered => f.answered += 1,
                AskOutcome::Cached => f.cached += 1,
                AskOutcome::TimedOut => f.timed_out += 1,
                AskOutcome::Failed(_) => f.failed += 1,
            }
            for item in &a.items {
                let (available, cost) = match item.state {
                    ItemState::Known { available, cost } => (available, Some(cost)),
                    ItemState::Unknown => (0, None),
                };
                let reading = Reading {
                    available,
                    cost,
                    as_of_s: item.as_of_s.min(now_s),
                    source: if item.cached {
                        StockSource::CachedRealtime
                    } else {
                        StockSource::Realtime
                    },
                };
                overlay
                    .readings
                    .entry((a.supplier, item.product))
                    .and_modify(|r| {
                        if reading.as_of_s >= r.as_of_s {
                            *r = reading;
                        }
                    })
                    .or_insert(reading);
            }
        }
        let f = &mut overlay.freshness;
        f.queried = f.answered + f.timed_out + f.failed;
        overlay
    }

    /// Who was asked and how it went.
    pub fn freshness(&self) -> Freshness {
        self.freshness
    }

    /// True when it holds no reading.
    pub fn is_empty(&self) -> bool {
        self.readings.is_empty()
    }

    /// The offer as this request sees it: the real-time reading when there is
    /// one at least as new as the index's data, else the index's data (which
    /// itself may come from an earlier real-time answer).
    #[inline]
    pub fn see(&self, o: &OfferRef<'_>) -> SeenOffer {
        let indexed = SeenOffer {
            available: o.qty,
            cost: o.cost,
            as_of_s: o.as_of_s,
            source: if o.realtime {
                StockSource::CachedRealtime
            } else {
                StockSource::Feed
            },
        };
        if self.readings.is_empty() {
            return indexed;
        }
        match self.readings.get(&(o.supplier, o.product)) {
            Some(r) if r.as_of_s >= o.as_of_s => SeenOffer {
                available: r.available,
                cost: r.cost.unwrap_or(o.cost),
                as_of_s: r.as_of_s,
                source: r.source,
            },
            _ => indexed,
        }
    }

    /// The readings answered during this request, as index updates.
    pub(super) fn fresh_rows(&self) -> impl Iterator<Item = (SupplierId, RealtimeRow)> + '_ {
        self.readings
            .iter()
            .filter(|(_, r)| r.source == StockSource::Realtime)
            .map(|(&(supplier, product), r)| {
                (
                    supplier,
                    RealtimeRow {
                        product,
                        qty: r.available,
                        cost: r.cost,
                        as_of_s: r.as_of_s,
                    },
                )
            })
    }
}

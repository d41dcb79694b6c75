//! A supplier's recent answer times, for hedging after its observed p95.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;

/// Answers remembered.
const WINDOW: usize = 128;
/// The p95 is recomputed every this many answers (sorting 128 numbers per
/// answer would be waste; the tail moves slowly).
const RECOMPUTE_EVERY: u32 = 8;

struct Ring {
    micros: [u32; WINDOW],
    len: usize,
    next: usize,
    since_recompute: u32,
}

/// Recent successful answer times of one supplier.
pub(super) struct LatencyTracker {
    ring: Mutex<Ring>,
    /// The p95 in microseconds; 0 until computed.
    p95_us: AtomicU64,
}

impl LatencyTracker {
    pub fn new() -> Self {
        LatencyTracker {
            ring: Mutex::new(Ring {
                micros: [0; WINDOW],
                len: 0,
                next: 0,
                since_recompute: 0,
            }),
            p95_us: AtomicU64::new(0),
        }
    }

    /// Records one answer's time.
    pub fn record(&self, took: Duration) {
        let mut ring = self.ring.lock();
        let us = u32::try_from(took.as_micros()).unwrap_or(u32::MAX);
        let next = ring.next;
        ring.micros[next] = us;
        ring.next = (next + 1) % WINDOW;
        ring.len = (ring.len + 1).min(WINDOW);
        ring.since_recompute += 1;
        if ring.since_recompute >= RECOMPUTE_EVERY {
            ring.since_recompute = 0;
            let mut sorted: Vec<u32> = ring.micros[..ring.len].to_vec();
            sorted.sort_unstable();
            let at = (sorted.len() * 95).div_ceil(100).saturating_sub(1);
            self.p95_us.store(u64::from(sorted[at]), Ordering::Relaxed);
        }
    }

    /// Answers recorded (up to the window).
    pub fn samples(&self) -> usize {
        self.ring.lock().len
    }

    /// The p95 once at least `min_samples` answers were seen.
    pub fn p95(&self, min_samples: u32) -> Option<Duration> {
        let us = self.p95_us.load(Ordering::Relaxed);
        (us > 0 && self.samples() >= min_samples as usize).then(|| Duration::from_micros(us))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The p95 of 1..=120 ms is 114 ms, and needs enough samples first.
    #[test]
    fn p95_of_a_window() {
        let t = LatencyTracker::new();
        for ms in 1..=120u64 {
            t.record(Duration::from_millis(ms));
        }
        assert_eq!(t.p95(20), Some(Duration::from_millis(114)));
        assert_eq!(t.p95(121), None);
        // The window slides: 128 fast answers later, the tail is gone.
        for _ in 0..WINDOW {
            t.record(Duration::from_millis(2));
        }
        assert_eq!(t.p95(20), Some(Duration::from_millis(2)));
    }
}

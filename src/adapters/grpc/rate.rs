//! Per-client rate limits: one token bucket per caller (its key id, or its
//! IP address when auth is off), so that one noisy cart cannot take the
//! capacity every other cart shares.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::limits;

/// A client's bucket: tokens left and when they were counted.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Token buckets by client. Calls take one token; tokens refill at
/// `per_sec` up to `burst`.
#[derive(Debug)]
pub struct ClientRates {
    per_sec: f64,
    burst: f64,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl ClientRates {
    /// Buckets refilling at `per_sec` calls a second, holding up to `burst`.
    /// `None` when `per_sec` is 0 (no limit).
    pub fn new(per_sec: u32, burst: u32) -> Option<ClientRates> {
        (per_sec > 0).then(|| ClientRates {
            per_sec: f64::from(per_sec),
            burst: f64::from(burst.max(1)),
            buckets: Mutex::new(HashMap::new()),
        })
    }

    /// Takes a token for `client` at `now`; `Err(wait)` says how long until
    /// one is available.
    pub fn admit(&self, client: &str, now: Instant) -> Result<(), Duration> {
        let mut buckets = self.buckets.lock();
        if !buckets.contains_key(client) && buckets.len() >= limits::RATE_CLIENTS_TRACKED_MAX {
            self.forget_idle(&mut buckets, now);
        }
        let bucket = buckets.entry(client.to_owned()).or_insert(Bucket {
            tokens: self.burst,
            at: now,
        });
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.per_sec).min(self.burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64(
                (1.0 - bucket.tokens) / self.per_sec,
            ))
        }
    }

    /// The limit in calls per second, for messages.
    pub fn per_sec(&self) -> u32 {
        self.per_sec as u32
    }

    /// Drops buckets that have refilled (their clients were idle long enough
    /// that forgetting them changes nothing). If every tracked client is
    /// active, all are dropped: memory stays bounded, at the price of a fresh
    /// burst for everyone.
    fn forget_idle(&self, buckets: &mut HashMap<String, Bucket>, now: Instant) {
        let full_after = Duration::from_secs_f64(self.burst / self.per_sec);
        buckets.retain(|_, b| now.saturating_duration_since(b.at) < full_after);
        if buckets.len() >= limits::RATE_CLIENTS_TRACKED_MAX {
            buckets.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_gets_its_burst_then_the_refill_rate() {
        let rates = ClientRates::new(10, 3).unwrap();
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(rates.admit("a", t0).is_ok());
        }
        let wait = rates.admit("a", t0).unwrap_err();
        assert!(wait > Duration::from_millis(90) && wait <= Duration::from_millis(100));
        // Another client is not affected.
        assert!(rates.admit("b", t0).is_ok());
        // 100 ms later one token is back, and only one.
        let t1 = t0 + Duration::from_millis(100);
        assert!(rates.admit("a", t1).is_ok());
        assert!(rates.admit("a", t1).is_err());
        // Idle for long: the bucket holds no more than the burst.
        let t2 = t1 + Duration::from_secs(60);
        for _ in 0..3 {
            assert!(rates.admit("a", t2).is_ok());
        }
        assert!(rates.admit("a", t2).is_err());
    }

    #[test]
    fn zero_means_no_limit() {
        assert!(ClientRates::new(0, 10).is_none());
    }

    #[test]
    fn tracked_clients_stay_bounded() {
        let rates = ClientRates::new(1, 1).unwrap();
        let t0 = Instant::now();
        for i in 0..limits::RATE_CLIENTS_TRACKED_MAX + 10 {
            let _ = rates.admit(&format!("c{i}"), t0);
        }
        assert!(rates.buckets.lock().len() <= limits::RATE_CLIENTS_TRACKED_MAX);
    }
}

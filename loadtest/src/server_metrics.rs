//! Server-side latency from the server's own `/metrics`: the
//! `stockroute_grpc_request_seconds` histogram buckets scraped before and
//! after a measured phase; their difference is what the server saw in it,
//! free of client and network time.

use std::collections::BTreeMap;

use serde::Serialize;

/// The histogram's metric name.
const METRIC: &str = "stockroute_grpc_request_seconds_bucket";

/// Cumulative bucket counts per (rpc path, status): `(le seconds, count)`,
/// ascending, `+Inf` as infinity.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Buckets(pub BTreeMap<(String, String), Vec<(f64, u64)>>);

/// A scrape that could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ScrapeError {
    /// The HTTP request failed.
    #[error("cannot fetch {url}: {message}")]
    Fetch {
        /// The URL.
        url: String,
        /// Why.
        message: String,
    },
}

/// Reads the labels of a `{a="b",c="d"}` block.
fn labels(block: &str) -> BTreeMap<&str, &str> {
    let mut out = BTreeMap::new();
    let mut rest = block;
    while let Some(eq) = rest.find("=\"") {
        let key = rest[..eq].trim_start_matches(',').trim();
        let after = &rest[eq + 2..];
        let Some(end) = after.find('"') else { break };
        out.insert(key, &after[..end]);
        rest = &after[end + 1..];
    }
    out
}

impl Buckets {
    /// Parses Prometheus text; other metrics and malformed lines are skipped.
    pub fn parse(text: &str) -> Buckets {
        let mut map: BTreeMap<(String, String), Vec<(f64, u64)>> = BTreeMap::new();
        for line in text.lines() {
            let Some(rest) = line.strip_prefix(METRIC) else {
                continue;
            };
            let (Some(open), Some(close)) = (rest.find('{'), rest.rfind('}')) else {
                continue;
            };
            let l = labels(&rest[open + 1..close]);
            let (Some(rpc), Some(status), Some(le)) = (l.get("rpc"), l.get("status"), l.get("le"))
            else {
                continue;
            };
            let le = if *le == "+Inf" {
                f64::INFINITY
            } else {
                match le.parse::<f64>() {
                    Ok(v) => v,
                    Err(_) => continue,
                }
            };
            let Ok(count) = rest[close + 1..].trim().parse::<f64>() else {
                continue;
            };
            map.entry((rpc.to_string(), status.to_string()))
                .or_default()
                .push((le, count as u64));
        }
        for v in map.values_mut() {
            v.sort_by(|a, b| a.0.total_cmp(&b.0));
        }
        Buckets(map)
    }

    /// What happened between `earlier` and `self`, for one RPC path and
    /// status `OK` (or every status when `status` is `None`).
    pub fn delta(&self, earlier: &Buckets, rpc: &str, status: Option<&str>) -> Vec<(f64, u64)> {
        let mut out: Vec<(f64, u64)> = Vec::new();
        for ((r, s), now) in &self.0 {
            if r != rpc || status.is_some_and(|want| want != s) {
                continue;
            }
            let before = earlier.0.get(&(r.clone(), s.clone()));
            for (i, &(le, count)) in now.iter().enumerate() {
                let was = before
                    .and_then(|b| b.iter().find(|(l, _)| *l == le))
                    .map_or(0, |(_, c)| *c);
                let d = count.saturating_sub(was);
                if let Some(slot) = out.get_mut(i).filter(|(l, _)| *l == le) {
                    slot.1 += d;
                } else {
                    out.push((le, d));
                }
            }
        }
        out
    }
}

/// A quantile read off cumulative buckets.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct BucketQuantile {
    /// Calls counted.
    pub count: u64,
    /// The bucket bound the quantile lies under, ms: a guaranteed upper bound.
    pub le_ms: f64,
    /// Linear interpolation inside that bucket, ms: an estimate.
    pub estimate_ms: f64,
}

/// The `q` quantile (0 to 1) of cumulative `(le, count)` buckets.
pub fn quantile(buckets: &[(f64, u64)], q: f64) -> Option<BucketQuantile> {
    let total = buckets.last()?.1;
    if total == 0 {
        return None;
    }
    let rank = (q * total as f64).ceil().max(1.0) as u64;
    let mut lower = (0.0, 0u64);
    for &(le, count) in buckets {
        if count >= rank {
            let within = (rank - lower.1) as f64 / (count - lower.1).max(1) as f64;
            let upper = if le.is_finite() { le } else { lower.0 * 2.0 };
            return Some(BucketQuantile {
                count: total,
                le_ms: le * 1000.0,
                estimate_ms: (lower.0 + (upper - lower.0) * within) * 1000.0,
            });
        }
        lower = (le, count);
    }
    None
}

/// Fetches `url` (a `/metrics` endpoint).
pub async fn scrape(client: &reqwest::Client, url: &str) -> Result<Buckets, ScrapeError> {
    let fail = |message: String| ScrapeError::Fetch {
        url: url.to_owned(),
        message,
    };
    let response = client
        .get(url)
        .send()
        .await
        .map_err(|e| fail(e.to_string()))?;
    if !response.status().is_success() {
        return Err(fail(format!("HTTP {}", response.status())));
    }
    let text = response.text().await.map_err(|e| fail(e.to_string()))?;
    Ok(Buckets::parse(&text))
}

#[cfg(test)]
mod tests {
    use super::*;

    const RPC: &str = "stockroute.v1.Fulfillment/Quote";

    fn text(counts: [u64; 4]) -> String {
        format!(
            "# TYPE stockroute_grpc_request_seconds histogram\n\
             stockroute_grpc_request_seconds_bucket{{rpc=\"{RPC}\",status=\"OK\",le=\"0.001\"}} {}\n\
             stockroute_grpc_request_seconds_bucket{{rpc=\"{RPC}\",status=\"OK\",le=\"0.002\"}} {}\n\
             stockroute_grpc_request_seconds_bucket{{rpc=\"{RPC}\",status=\"OK\",le=\"0.005\"}} {}\n\
             stockroute_grpc_request_seconds_bucket{{rpc=\"{RPC}\",status=\"OK\",le=\"+Inf\"}} {}\n\
             stockroute_grpc_request_seconds_sum{{rpc=\"{RPC}\",status=\"OK\"}} 1.5\n\
             other_metric 3\n",
            counts[0], counts[1], counts[2], counts[3]
        )
    }

    #[test]
    fn the_difference_of_two_scrapes_gives_the_phase_quantiles() {
        let before = Buckets::parse(&text([100, 100, 100, 100]));
        let after = Buckets::parse(&text([1000, 1095, 1100, 1100]));
        let d = after.delta(&before, RPC, Some("OK"));
        assert_eq!(
            d,
            vec![
                (0.001, 900),
                (0.002, 995),
                (0.005, 1000),
                (f64::INFINITY, 1000)
            ]
        );
        let p50 = quantile(&d, 0.5).unwrap();
        assert_eq!(p50.le_ms, 1.0);
        assert!(p50.estimate_ms > 0.0 && p50.estimate_ms <= 1.0);
        let p99 = quantile(&d, 0.99).unwrap();
        assert_eq!(p99.le_ms, 2.0);
        assert!(p99.estimate_ms > 1.0 && p99.estimate_ms <= 2.0);
        let p999 = quantile(&d, 0.999).unwrap();
        assert_eq!(p999.le_ms, 5.0);
        assert!(quantile(&after.delta(&after, RPC, None), 0.5).is_none());
    }
}

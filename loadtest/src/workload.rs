//! The requests a scenario sends: operations drawn by weight, baskets with a
//! size distribution and Zipf-like SKU popularity, destinations from a
//! domestic/international mix. Deterministic for a seed.

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use stockroute::pb;

use crate::scenario::{Destination, Op, Scenario};

/// Draws indices by weight from a cumulative table.
#[derive(Debug, Clone)]
pub struct Weighted<T> {
    items: Vec<T>,
    cumulative: Vec<u64>,
}

impl<T: Clone> Weighted<T> {
    /// A table over `(item, weight)`; at least one weight must be positive.
    pub fn new(pairs: impl IntoIterator<Item = (T, u32)>) -> Weighted<T> {
        let mut items = Vec::new();
        let mut cumulative = Vec::new();
        let mut total = 0u64;
        for (item, w) in pairs {
            if w == 0 {
                continue;
            }
            total += u64::from(w);
            items.push(item);
            cumulative.push(total);
        }
        Weighted { items, cumulative }
    }

    /// One draw.
    pub fn draw(&self, rng: &mut SmallRng) -> T {
        let total = self.cumulative.last().copied().unwrap_or(1);
        let x = rng.random_range(0..total);
        let i = self.cumulative.partition_point(|&c| c <= x);
        self.items[i.min(self.items.len() - 1)].clone()
    }
}

/// Zipf-like product popularity over `n` products: the k-th most popular has
/// weight 1/k^s. Ranks map to product numbers through a fixed permutation so
/// that the popular products are spread over the catalog (and over the
/// index's chunks) rather than being its first few rows.
#[derive(Debug, Clone)]
pub struct Popularity {
    /// Cumulative weights by rank, normalised to 1.
    cdf: Vec<f64>,
    n: u64,
    stride: u64,
}

impl Popularity {
    /// The table for `n` products and exponent `s`.
    pub fn new(n: u32, s: f64) -> Popularity {
        let n = u64::from(n.max(1));
        let mut cdf = Vec::with_capacity(n as usize);
        let mut total = 0.0;
        for k in 1..=n {
            total += (k as f64).powf(-s);
            cdf.push(total);
        }
        for c in &mut cdf {
            *c /= total;
        }
        Popularity {
            cdf,
            n,
            stride: coprime_stride(n),
        }
    }

    /// A product number, 1 to n.
    pub fn draw(&self, rng: &mut SmallRng) -> u64 {
        let u: f64 = rng.random();
        let rank = self
            .cdf
            .partition_point(|&c| c <= u)
            .min(self.cdf.len() - 1) as u64;
        self.product_of_rank(rank)
    }

    /// The product number of a 0-based popularity rank.
    pub fn product_of_rank(&self, rank: u64) -> u64 {
        (rank.wrapping_mul(self.stride) % self.n) + 1
    }

    /// Share of draws that land on the `k` most popular products.
    #[cfg(test)]
    pub fn top_share(&self, k: usize) -> f64 {
        if k == 0 {
            return 0.0;
        }
        self.cdf[k.min(self.cdf.len()) - 1]
    }
}

/// A stride near n·0.618 that shares no factor with n, so `rank·stride mod n`
/// visits every product once.
fn coprime_stride(n: u64) -> u64 {
    if n <= 2 {
        return 1;
    }
    let mut s = ((n as f64) * 0.618_033_988_75) as u64 | 1;
    while gcd(s, n) != 1 {
        s += 1;
    }
    s
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// One request ready to send.
#[derive(Debug, Clone)]
pub enum Request {
    /// Health check of the named service ("" = the server as a whole).
    Health(String),
    /// A stock check.
    CheckStock(pb::CheckStockRequest),
    /// A quote.
    Quote(pb::QuoteRequest),
    /// A reservation flow, starting with this Reserve.
    Reserve {
        /// What happens after the hold: commit, release or nothing.
        then: AfterHold,
        /// The Reserve call.
        request: pb::ReserveRequest,
    },
    /// An allocation.
    Allocate(pb::AllocateRequest),
}

impl Request {
    /// The first RPC the request sends.
    pub fn first_rpc(&self) -> crate::scenario::Rpc {
        use crate::scenario::Rpc;
        match self {
            Request::Health(_) => Rpc::Health,
            Request::CheckStock(_) => Rpc::CheckStock,
            Request::Quote(_) => Rpc::Quote,
            Request::Reserve { .. } => Rpc::Reserve,
            Request::Allocate(_) => Rpc::Allocate,
        }
    }
}

/// What a reservation flow does after Reserve answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterHold {
    /// Commit the hold.
    Commit,
    /// Release it.
    Release,
    /// Leave it to expire.
    Expire,
}

/// Generates a scenario's requests.
#[derive(Debug, Clone)]
pub struct Workload {
    ops: Weighted<Op>,
    lines: Weighted<u32>,
    quantities: Weighted<u32>,
    popularity: Popularity,
    prefix: String,
    digits: usize,
    domestic_pct: f64,
    domestic: Vec<Destination>,
    international: Vec<Destination>,
    options: pb::QuoteOptions,
    hold_secs: u32,
    /// Makes idempotency keys unique across runs against one server.
    run_tag: String,
    rng: SmallRng,
    issued: u64,
}

impl Workload {
    /// The generator for `scenario`, seeded by `scenario.seed` and `stream`
    /// (one stream per worker or phase keeps them independent). `run_tag`
    /// goes into idempotency keys.
    pub fn new(scenario: &Scenario, stream: u64, run_tag: &str) -> Workload {
        Workload {
            ops: Weighted::new(scenario.mix.weighted()),
            lines: Weighted::new(scenario.basket.lines.iter().copied()),
            quantities: Weighted::new(scenario.basket.quantities.iter().copied()),
            popularity: Popularity::new(scenario.skus.products, scenario.skus.zipf_s),
            prefix: scenario.skus.prefix.clone(),
            digits: scenario.skus.digits,
            domestic_pct: scenario.ship_to.domestic_pct,
            domestic: scenario.ship_to.domestic.clone(),
            international: scenario.ship_to.international.clone(),
            options: pb::QuoteOptions {
                objective: scenario.objective(),
                allow_partial: scenario.quote.allow_partial,
                realtime_budget_ms: scenario.quote.realtime_budget_ms,
                ..Default::default()
            },
            hold_secs: scenario.holds.hold_secs,
            run_tag: run_tag.to_owned(),
            rng: SmallRng::seed_from_u64(
                scenario
                    .seed
                    .wrapping_mul(0x9E37_79B9_7F4A_7C15)
                    .wrapping_add(stream),
            ),
            issued: 0,
        }
    }

    /// An independent generator for worker `stream` of this one: its own
    /// random sequence and its own idempotency keys.
    pub fn fork(&self, stream: u64) -> Workload {
        let mut w = self.clone();
        let seed: u64 = self.rng.clone().random();
        w.rng = SmallRng::seed_from_u64(seed ^ stream.wrapping_mul(0xD1B5_4A32_D192_ED03));
        w.run_tag = format!("{}.{stream}", self.run_tag);
        w.issued = 0;
        w
    }

    /// The product number of a 0-based popularity rank.
    pub fn product_of_rank(&self, rank: u64) -> u64 {
        self.popularity.product_of_rank(rank)
    }

    /// The SKU text of a product number.
    pub fn sku(&self, product: u64) -> String {
        format!("{}{:0width$}", self.prefix, product, width = self.digits)
    }

    /// A basket of distinct SKUs.
    pub fn basket(&mut self) -> Vec<pb::BasketLine> {
        let want = self.lines.draw(&mut self.rng) as usize;
        let mut products: Vec<u64> = Vec::with_capacity(want);
        // Popular products repeat often; a bounded number of redraws keeps
        // the basket size exact without looping forever on tiny catalogs.
        let mut attempts = 0;
        while products.len() < want && attempts < want * 50 {
            attempts += 1;
            let p = self.popularity.draw(&mut self.rng);
            if !products.contains(&p) {
                products.push(p);
            }
        }
        products
            .into_iter()
            .map(|p| pb::BasketLine {
                sku: self.sku(p),
                quantity: self.quantities.draw(&mut self.rng),
            })
            .collect()
    }

    /// A destination from the mix.
    pub fn ship_to(&mut self) -> pb::Address {
        let domestic = self.rng.random_range(0.0..100.0) < self.domestic_pct;
        let list = if domestic {
            &self.domestic
        } else {
            &self.international
        };
        let d = &list[self.rng.random_range(0..list.len())];
        pb::Address {
            country_code: d.country_code.clone(),
            postal_code: d.postal_code.clone(),
            residential: d.residential,
        }
    }

    fn quote_request(&mut self) -> pb::QuoteRequest {
        pb::QuoteRequest {
            lines: self.basket(),
            ship_to: Some(self.ship_to()),
            options: Some(self.options.clone()),
        }
    }

    fn key(&mut self) -> String {
        self.issued += 1;
        format!("lt-{}-{}", self.run_tag, self.issued)
    }

    /// The next request of the mix.
    pub fn next_request(&mut self) -> Request {
        let op = self.ops.draw(&mut self.rng);
        self.request_for(op)
    }

    /// A request of the given operation.
    pub fn request_for(&mut self, op: Op) -> Request {
        match op {
            Op::Health => Request::Health(String::new()),
            Op::CheckStock => {
                let ship_to = self.ship_to();
                Request::CheckStock(pb::CheckStockRequest {
                    lines: self.basket(),
                    ship_to: Some(ship_to),
                    realtime_budget_ms: self.options.realtime_budget_ms,
                })
            }
            Op::Quote => Request::Quote(self.quote_request()),
            Op::ReserveCommit | Op::ReserveRelease | Op::ReserveExpire => {
                let then = match op {
                    Op::ReserveCommit => AfterHold::Commit,
                    Op::ReserveRelease => AfterHold::Release,
                    _ => AfterHold::Expire,
                };
                let basket = self.quote_request();
                Request::Reserve {
                    then,
                    request: pb::ReserveRequest {
                        idempotency_key: self.key(),
                        hold_seconds: self.hold_secs,
                        source: Some(pb::reserve_request::Source::Basket(basket)),
                    },
                }
            }
            Op::Allocate => {
                let basket = self.quote_request();
                let key = self.key();
                Request::Allocate(pb::AllocateRequest {
                    order_ref: format!("order-{key}"),
                    idempotency_key: key,
                    basket: Some(basket),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::Scenario;

    fn scenario(mix: &str, extra: &str) -> Scenario {
        Scenario::parse(
            &format!("name = \"t\"\nrate_per_s = 10\n[mix]\n{mix}\n{extra}"),
            "t",
        )
        .unwrap()
    }

    #[test]
    fn rank_permutation_visits_every_product_once() {
        for n in [1u32, 2, 3, 10, 97, 100, 1000] {
            let p = Popularity::new(n, 1.0);
            let mut seen: Vec<u64> = (0..u64::from(n)).map(|r| p.product_of_rank(r)).collect();
            seen.sort_unstable();
            assert_eq!(seen, (1..=u64::from(n)).collect::<Vec<_>>(), "n = {n}");
        }
    }

    #[test]
    fn zipf_draws_favour_the_popular_products() {
        let p = Popularity::new(10_000, 1.0);
        let mut rng = SmallRng::seed_from_u64(3);
        let top: std::collections::HashSet<u64> = (0..100).map(|r| p.product_of_rank(r)).collect();
        let draws = 50_000;
        let hits = (0..draws)
            .filter(|_| top.contains(&p.draw(&mut rng)))
            .count();
        let share = hits as f64 / f64::from(draws);
        let expected = p.top_share(100);
        // H(100)/H(10000) ≈ 0.53 for s = 1.
        assert!((expected - 0.53).abs() < 0.02, "{expected}");
        assert!((share - expected).abs() < 0.02, "{share} vs {expected}");
        let uniform = Popularity::new(10_000, 0.0);
        assert!((uniform.top_share(100) - 0.01).abs() < 1e-9);
    }

    #[test]
    fn baskets_have_the_drawn_size_distinct_skus_and_quantities() {
        let s = scenario(
            "quote = 1",
            "[basket]\nlines = [[5, 1]]\nquantities = [[2, 1]]\n[skus]\nproducts = 50\n",
        );
        let mut w = Workload::new(&s, 0, "x");
        for _ in 0..200 {
            let b = w.basket();
            assert_eq!(b.len(), 5);
            let mut skus: Vec<&str> = b.iter().map(|l| l.sku.as_str()).collect();
            skus.sort_unstable();
            skus.dedup();
            assert_eq!(skus.len(), 5);
            assert!(b.iter().all(|l| l.quantity == 2));
            assert!(b.iter().all(|l| l.sku.starts_with("SR-0000")));
        }
    }

    #[test]
    fn the_ship_to_mix_follows_the_share() {
        let s = scenario("quote = 1", "[ship_to]\ndomestic_pct = 70\n");
        let mut w = Workload::new(&s, 0, "x");
        let n = 20_000;
        let domestic = (0..n).filter(|_| w.ship_to().country_code == "US").count();
        let share = domestic as f64 / f64::from(n);
        assert!((share - 0.7).abs() < 0.02, "{share}");
    }

    #[test]
    fn the_same_seed_sends_the_same_requests() {
        let s = scenario("check_stock = 1", "");
        let a: Vec<String> = {
            let mut w = Workload::new(&s, 5, "x");
            (0..50).map(|_| format!("{:?}", w.next_request())).collect()
        };
        let b: Vec<String> = {
            let mut w = Workload::new(&s, 5, "x");
            (0..50).map(|_| format!("{:?}", w.next_request())).collect()
        };
        assert_eq!(a, b);
        let mut other = Workload::new(&s, 6, "x");
        let c: Vec<String> = (0..50)
            .map(|_| format!("{:?}", other.next_request()))
            .collect();
        assert_ne!(a, c);
    }

    #[test]
    fn reservation_keys_are_unique() {
        let s = scenario("reserve_commit = 1\nallocate = 1", "");
        let mut w = Workload::new(&s, 0, "run");
        let mut keys = std::collections::HashSet::new();
        for _ in 0..100 {
            let key = match w.next_request() {
                Request::Reserve { request, .. } => request.idempotency_key,
                Request::Allocate(a) => a.idempotency_key,
                other => panic!("unexpected {other:?}"),
            };
            assert!(keys.insert(key));
        }
    }
}

//! A closed-loop gRPC load generator for stockroute: `workers` connections
//! each send the next request as soon as the previous one answers, for a fixed
//! time, and the latency of every call goes into a histogram.
//!
//! This is the first cut of the harness; open-loop arrival rates (free of
//! coordinated omission), scenario files and reports build on it.

use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Parser, ValueEnum};
use hdrhistogram::Histogram;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use stockroute::pb;
use tonic::transport::Channel;

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Rpc {
    CheckStock,
    Quote,
}

#[derive(Debug, Parser)]
#[command(about = "Closed-loop load against a running stockroute")]
struct Args {
    /// Server address.
    #[arg(long, default_value = "127.0.0.1:50051")]
    addr: String,
    /// Which RPC to call.
    #[arg(long, value_enum, default_value = "quote")]
    rpc: Rpc,
    /// Concurrent callers.
    #[arg(long, default_value_t = 4)]
    workers: usize,
    /// How long to run, in seconds (at most 600).
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Lines per basket.
    #[arg(long, default_value_t = 3)]
    lines: u32,
    /// SKUs are drawn from SR-000001 to SR-<products>.
    #[arg(long, default_value_t = 100_000)]
    products: u32,
    /// Random seed for the baskets.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

#[derive(Default)]
struct Outcome {
    ok: u64,
    failed_precondition: u64,
    errors: u64,
}

fn basket(rng: &mut SmallRng, lines: u32, products: u32) -> Vec<pb::BasketLine> {
    (0..lines)
        .map(|_| pb::BasketLine {
            sku: format!("SR-{:06}", rng.random_range(1..=products.max(1))),
            quantity: rng.random_range(1..=3),
        })
        .collect()
}

async fn worker(
    channel: Channel,
    args: &Args,
    id: u64,
    until: Instant,
) -> (Histogram<u64>, Outcome) {
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("histogram bounds");
    let mut outcome = Outcome::default();
    let mut rng = SmallRng::seed_from_u64(args.seed.wrapping_add(id));
    let mut client = pb::fulfillment_client::FulfillmentClient::new(channel);
    let ship_to = Some(pb::Address {
        country_code: "US".into(),
        postal_code: "10001".into(),
        residential: false,
    });
    while Instant::now() < until {
        let lines = basket(&mut rng, args.lines, args.products);
        let started = Instant::now();
        let result = match args.rpc {
            Rpc::CheckStock => client
                .check_stock(pb::CheckStockRequest {
                    lines,
                    ship_to: ship_to.clone(),
                    realtime_budget_ms: 0,
                })
                .await
                .map(|_| ()),
            Rpc::Quote => client
                .quote(pb::QuoteRequest {
                    lines,
                    ship_to: ship_to.clone(),
                    options: Some(pb::QuoteOptions {
                        allow_partial: true,
                        ..Default::default()
                    }),
                })
                .await
                .map(|_| ()),
        };
        let _ = hist.record(started.elapsed().as_micros() as u64);
        match result {
            Ok(()) => outcome.ok += 1,
            Err(s) if s.code() == tonic::Code::FailedPrecondition => {
                outcome.failed_precondition += 1
            }
            Err(_) => outcome.errors += 1,
        }
    }
    (hist, outcome)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let seconds = args.seconds.min(600);
    let channel = Channel::from_shared(format!("http://{}", args.addr))
        .context("address")?
        .connect()
        .await
        .with_context(|| format!("cannot connect to {}", args.addr))?;
    let args = std::sync::Arc::new(args);
    let until = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let tasks: Vec<_> = (0..args.workers)
        .map(|i| {
            let (channel, args) = (channel.clone(), std::sync::Arc::clone(&args));
            tokio::spawn(async move { worker(channel, &args, i as u64, until).await })
        })
        .collect();
    let mut total = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    let mut outcome = Outcome::default();
    for t in tasks {
        let (h, o) = t.await?;
        total.add(&h)?;
        outcome.ok += o.ok;
        outcome.failed_precondition += o.failed_precondition;
        outcome.errors += o.errors;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let calls = total.len();
    println!(
        "{:?}: {calls} calls in {elapsed:.1} s = {:.0}/s with {} workers; ok {}, failed_precondition {}, errors {}",
        args.rpc,
        calls as f64 / elapsed,
        args.workers,
        outcome.ok,
        outcome.failed_precondition,
        outcome.errors
    );
    for q in [50.0, 90.0, 99.0, 99.9] {
        println!("  p{q:<5} {:>8} µs", total.value_at_percentile(q));
    }
    println!("  max    {:>8} µs", total.max());
    if outcome.errors > 0 {
        anyhow::bail!("{} calls failed", outcome.errors);
    }
    Ok(())
}

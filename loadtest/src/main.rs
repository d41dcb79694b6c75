//! `stockroute-loadtest`: offers gRPC load to stockroute and tells whether it
//! stayed within its latency budget.
//!
//! - `run SCENARIO`: the scenario's load (open loop at a constant arrival
//!   rate, or closed loop), warm-up then measured phases, repeated, each next
//!   to a baseline phase of the empty `grpc.health.v1.Health/Check` on the
//!   same server; invariants checked after; a JSON summary and an HTML report.
//! - `knee SCENARIO`: raises the rate until p99 breaks the budget, for the
//!   baseline and the scenario; `--verify` then checks the goals at half and
//!   1.5 times the knee.
//! - `instructions`: runs the instruction-count benchmarks under callgrind
//!   and compares them with the committed baseline.
//!
//! By default it writes a demo world and starts the `stockroute` binary next
//! to itself, pinned to core 0 while the generator runs on core 1.

mod callgrind;
mod cpu;
mod driver;
mod invariants;
mod knee;
mod report;
mod run;
mod scenario;
mod server_metrics;
mod stats;
mod summary;
mod workload;
mod world;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::driver::{Clients, Runner};
use crate::run::Session;
use crate::scenario::Scenario;
use crate::stats::Classifier;
use crate::summary::Summary;
use crate::world::{Freight, Target, World, WorldSpec};

#[derive(Parser)]
#[command(
    name = "stockroute-loadtest",
    about = "Load tests and latency budgets for stockroute"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a scenario at its configured load, next to the empty-RPC baseline.
    Run {
        /// Scenario file (TOML).
        scenario: PathBuf,
        #[command(flatten)]
        world: WorldArgs,
        #[command(flatten)]
        out: OutArgs,
        /// Skip the baseline phases.
        #[arg(long)]
        no_baseline: bool,
    },
    /// Find the highest rate within the latency budget (the knee).
    Knee {
        /// Scenario file (TOML).
        scenario: PathBuf,
        #[command(flatten)]
        world: WorldArgs,
        #[command(flatten)]
        out: OutArgs,
        /// Skip the baseline's knee.
        #[arg(long)]
        no_baseline: bool,
        /// Then run at half and 1.5 times the knee and judge the goals.
        #[arg(long)]
        verify: bool,
    },
    /// Instruction counts of the hot paths under callgrind, against a baseline.
    Instructions(callgrind::InstructionArgs),
}

#[derive(Clone, Copy, ValueEnum)]
enum FreightArg {
    /// The local rate tables.
    Tables,
    /// Fake FedEx and UPS APIs hosted by the generator.
    Live,
}

#[derive(Args)]
struct WorldArgs {
    /// Test a server already running at this address instead of starting one.
    #[arg(long, conflicts_with_all = ["in_process", "server_bin", "config"])]
    addr: Option<String>,
    /// With --addr: its /metrics URL, for server-side latency.
    #[arg(long, requires = "addr")]
    metrics_url: Option<String>,
    /// With --addr: its process id, for its CPU time.
    #[arg(long, requires = "addr")]
    server_pid: Option<u32>,
    /// Start the server inside this process instead of as a child.
    #[arg(long)]
    in_process: bool,
    /// The stockroute binary (default: the one next to this program).
    #[arg(long)]
    server_bin: Option<PathBuf>,
    /// Config for the started server (default: a demo world written with demo-data).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Demo world products.
    #[arg(long, default_value_t = 100_000)]
    products: u32,
    /// Demo world suppliers.
    #[arg(long, default_value_t = 120)]
    suppliers: u32,
    /// Freight prices of the started server.
    #[arg(long, value_enum, default_value = "tables")]
    freight: FreightArg,
    /// Also ask the real-time supplier gateways (default: stock from the feeds only).
    #[arg(long)]
    realtime: bool,
    /// With --freight live: each fake carrier answer's delay, ms.
    #[arg(long, default_value_t = 0)]
    carrier_latency_ms: u64,
    /// Do not pin the server and the generator to separate cores.
    #[arg(long)]
    no_pin: bool,
    /// Override the scenario's arrival rate (per second).
    #[arg(long)]
    rate: Option<f64>,
    /// Override the scenario's measured seconds per phase.
    #[arg(long)]
    measure_s: Option<f64>,
    /// Override the scenario's repeats.
    #[arg(long)]
    repeats: Option<u32>,
}

#[derive(Args)]
struct OutArgs {
    /// Directory for summary.json and report.html (default target/loadtest/<scenario>).
    #[arg(long)]
    out: Option<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Instructions(args) => match callgrind::run(&args) {
            Ok(true) => ExitCode::SUCCESS,
            Ok(false) => ExitCode::FAILURE,
            Err(e) => {
                eprintln!("loadtest: {e:#}");
                ExitCode::from(2)
            }
        },
        Command::Run {
            scenario,
            world,
            out,
            no_baseline,
        } => load(&scenario, &world, &out, |s| Box::pin(s.run(!no_baseline))),
        Command::Knee {
            scenario,
            world,
            out,
            no_baseline,
            verify,
        } => load(&scenario, &world, &out, move |s| {
            Box::pin(s.knee_study(!no_baseline, verify))
        }),
    }
}

type Study<'a> = std::pin::Pin<Box<dyn std::future::Future<Output = run::Measured> + 'a>>;

/// Sets up, runs `study`, reports; exit 0 when every check held, 1 when one
/// failed, 2 when the run itself could not be made.
fn load(
    scenario_path: &std::path::Path,
    args: &WorldArgs,
    out: &OutArgs,
    study: impl for<'a> FnOnce(&'a Session) -> Study<'a>,
) -> ExitCode {
    let outcome = (|| -> anyhow::Result<bool> {
        let mut scenario = Scenario::load(scenario_path)?;
        if let Some(r) = args.rate {
            scenario.rate_per_s = r;
        }
        if let Some(m) = args.measure_s {
            scenario.measure_s = m;
        }
        if let Some(r) = args.repeats {
            scenario.repeats = r.clamp(1, scenario::REPEATS_MAX);
        }
        // Pinned before the runtime exists, so that every thread inherits it.
        let remote = args.addr.is_some();
        let pinned = !remote && world::pin_generator(!args.no_pin)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .thread_name("lt-generator")
            .enable_all()
            .build()
            .context("generator runtime")?;
        runtime.block_on(async {
            let target = match (&args.addr, args.in_process) {
                (Some(addr), _) => Target::Remote {
                    addr: addr.clone(),
                    metrics_url: args.metrics_url.clone(),
                    pid: args.server_pid,
                },
                (None, true) => Target::InProcess,
                (None, false) => Target::Spawn {
                    bin: match &args.server_bin {
                        Some(b) => b.clone(),
                        None => world::sibling_server_bin().context(
                            "no stockroute binary next to this one: build it (cargo build --release -p stockroute) or pass --server-bin",
                        )?,
                    },
                },
            };
            let spec = WorldSpec {
                target,
                config: args.config.clone(),
                demo_products: args.products,
                demo_suppliers: args.suppliers,
                freight: match args.freight {
                    FreightArg::Tables => Freight::Tables,
                    FreightArg::Live => Freight::Live {
                        latency_ms: args.carrier_latency_ms,
                    },
                },
                pin: pinned,
                realtime: args.realtime,
            };
            let world = World::start(&spec).await?;
            let classifier =
                Classifier::new(&scenario.budget.answer_codes, &scenario.budget.shed_codes);
            let clients = Clients::connect(&world.grpc_addr, scenario.connections).await?;
            let runner = Runner::new(
                clients,
                classifier,
                world.cpu.clone(),
                world.metrics_url.clone(),
            );
            let started_unix_s = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            let session = Session {
                runner: runner.clone(),
                scenario: scenario.clone(),
                run_tag: format!("{started_unix_s}-{}", std::process::id()),
            };
            let measured = study(&session).await;
            let mut method = world.description.clone();
            method.push(format!("server CPU: {}", world.cpu.describe()));
            let stopped = world.stop().await;
            method.extend(describe_method(&scenario, pinned, args));
            let mut checks = measured.checks.clone();
            if let Err(e) = stopped {
                checks.push(invariants::Check::new("server stops cleanly", false, format!("{e:#}")));
            }
            let passed = checks.iter().all(|c| c.ok);
            let summary = Summary {
                scenario: scenario.name.clone(),
                command: std::env::args().collect::<Vec<_>>().join(" "),
                started_unix_s,
                method,
                phases: measured.phases.iter().map(|(_, p)| p.clone()).collect(),
                comparisons: measured.comparisons.clone(),
                knees: measured.knees.clone(),
                goals: measured.goals.clone(),
                checks,
                passed,
            };
            let timeline = runner.timeline().lock().map(|t| t.series()).unwrap_or_default();
            let dir = out.out.clone().unwrap_or_else(|| {
                PathBuf::from("target/loadtest").join(slug(&scenario.name))
            });
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            let json = serde_json::to_string_pretty(&summary).context("summary to JSON")?;
            std::fs::write(dir.join("summary.json"), json)
                .with_context(|| format!("cannot write {}", dir.join("summary.json").display()))?;
            std::fs::write(
                dir.join("report.html"),
                report::html(&summary, &measured.phases, &timeline),
            )
            .with_context(|| format!("cannot write {}", dir.join("report.html").display()))?;
            print_summary(&summary, &dir);
            Ok(passed)
        })
    })();
    match outcome {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("loadtest: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn slug(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect::<String>()
        .trim_matches('-')
        .to_owned()
}

fn describe_method(s: &Scenario, pinned: bool, args: &WorldArgs) -> Vec<String> {
    let mut m = Vec::new();
    m.push(format!(
        "machine: {} cores; generator {}",
        cpu::cores(),
        if pinned {
            "pinned to core 1 (taskset), the server to core 0"
        } else if args.addr.is_some() {
            "not pinned (remote server)"
        } else if args.no_pin {
            "not pinned (--no-pin): it shares the cores with the server"
        } else {
            "not pinned (needs taskset and 2 cores): it shares the cores with the server"
        }
    ));
    m.push(match s.mode {
        scenario::Mode::Open => format!(
            "open loop: constant arrival rate {} /s, latency from each call's intended start (corrected) and from its send (uncorrected)",
            s.rate_per_s
        ),
        scenario::Mode::Closed => format!(
            "closed loop: {} callers{}",
            s.workers,
            if s.rate_per_s > 0.0 {
                format!(", paced to {} /s in total, latency from the paced start", s.rate_per_s)
            } else {
                ", each sending when its previous call answered (corrected = uncorrected)".into()
            }
        ),
    });
    m.push(format!(
        "{} HTTP/2 connections; warm-up {} s then {} s measured, {} repeats; deadline {} ms per call",
        s.connections, s.warmup_s, s.measure_s, s.repeats, s.timeout_ms
    ));
    m.push(format!(
        "budget: p99 <= {} ms ({}), failed <= {}%, achieved >= {}% of offered",
        s.budget.p99_ms,
        if s.budget.rpc.is_empty() {
            "every RPC"
        } else {
            &s.budget.rpc
        },
        s.budget.error_pct_max,
        s.budget.achieved_pct_min
    ));
    m
}

fn print_summary(s: &Summary, dir: &std::path::Path) {
    println!("\n== {} ==", s.scenario);
    for m in &s.method {
        println!("  {m}");
    }
    for p in &s.phases {
        println!("  {}: {}", p.label, run::one_line(p));
    }
    for c in &s.comparisons {
        let per: Vec<String> = c
            .repeats
            .iter()
            .map(|r| format!("{:.3}", r.ratio))
            .collect();
        println!(
            "  {}: median ratio {:.3} (repeats {})",
            c.what,
            c.median_ratio,
            per.join(", ")
        );
    }
    for k in &s.knees {
        println!("  knee ({}): {:.0}/s", k.load, k.sustainable_per_s);
    }
    for g in &s.goals {
        println!(
            "  goal {}: {} — {}",
            if g.ok { "met" } else { "NOT met" },
            g.name,
            g.detail
        );
    }
    for c in &s.checks {
        println!(
            "  check {}: {} — {}",
            if c.ok { "ok" } else { "FAILED" },
            c.name,
            c.detail
        );
    }
    println!("  report: {}", dir.join("report.html").display());
    println!("{}", if s.passed { "PASSED" } else { "FAILED" });
}

//! The `stockroute` binary: serve, write the demo world, or ask for a quote.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use stockroute::config::Config;
use stockroute::demo::DemoParams;
use stockroute::{app, cli, load, telemetry};

/// How long the runtime may take to stop once the service has shut down.
const RUNTIME_STOP_MAX: Duration = Duration::from_secs(1);

#[derive(Parser)]
#[command(
    name = "stockroute",
    version,
    about = "Real-time stock and auto-fulfil quoting"
)]
struct Args {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the service (with no options: the built-in demo world, in memory).
    Serve {
        /// Config file (TOML); STOCKROUTE_* variables override it.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Serve the world in this directory (as written by `demo-data`).
        #[arg(long)]
        data: Option<PathBuf>,
        /// gRPC listen address.
        #[arg(long)]
        grpc_addr: Option<String>,
        /// HTTP listen address (/metrics, /healthz, /readyz).
        #[arg(long)]
        http_addr: Option<String>,
    },
    /// Write the demo world as files.
    DemoData {
        /// Directory to write.
        #[arg(long)]
        out: PathBuf,
        /// Number of suppliers.
        #[arg(long, default_value_t = 120)]
        suppliers: u32,
        /// Number of products.
        #[arg(long, default_value_t = 100_000)]
        products: u32,
        /// Random seed; the same seed writes the same world.
        #[arg(long, default_value_t = 42)]
        seed: u64,
    },
    /// Ask a running server for a quote and print the plan.
    Quote(cli::quote::QuoteArgs),
    /// Read a config as `serve` would (environment overrides included) and
    /// report what is wrong with it, without starting anything.
    CheckConfig {
        /// Config file (TOML).
        #[arg(long)]
        config: PathBuf,
    },
    /// Print the SHA-256 of an API key read from standard input, for
    /// `[[auth.keys]] sha256`; with --generate, make a new key and print it with
    /// its config entry.
    HashKey {
        /// Make a new random key instead of reading one.
        #[arg(long)]
        generate: bool,
        /// The caller's name for the printed entry (with --generate).
        #[arg(long, default_value = "my-client")]
        id: String,
        /// Roles for the printed entry: cart, orders, feeds (with --generate).
        #[arg(long = "role", default_value = "cart")]
        roles: Vec<String>,
    },
}

fn main() -> ExitCode {
    let args = Args::parse();
    let command = args.command.unwrap_or(Command::Serve {
        config: None,
        data: None,
        grpc_addr: None,
        http_addr: None,
    });
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("stockroute: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = match command {
        Command::Serve {
            config,
            data,
            grpc_addr,
            http_addr,
        } => runtime.block_on(serve(config, data, grpc_addr, http_addr)),
        Command::DemoData {
            out,
            suppliers,
            products,
            seed,
        } => {
            let params = DemoParams {
                suppliers,
                products,
                seed,
            };
            load::write_demo(&out, &params, &Config::default().data.freight_dir)
                .map(|()| println!("wrote the demo world (seed {seed}) to {}", out.display()))
                .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", out.display()))
        }
        Command::Quote(q) => runtime.block_on(cli::quote::run(q)),
        Command::CheckConfig { config } => Config::load(Some(&config))
            .map_err(anyhow::Error::from)
            .and_then(|c| app::check_config(&c))
            .map(|()| println!("{}: config OK", config.display())),
        Command::HashKey {
            generate,
            id,
            roles,
        } => cli::keys::hash_key(generate, &id, &roles),
    };
    // Tasks still running (a stuck client's connection) must not hold the exit.
    runtime.shutdown_timeout(RUNTIME_STOP_MAX);
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("stockroute: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(
    config_path: Option<PathBuf>,
    data: Option<PathBuf>,
    grpc_addr: Option<String>,
    http_addr: Option<String>,
) -> anyhow::Result<()> {
    // A world written by `demo-data` carries its own config.
    let config_path = config_path.or_else(|| {
        data.as_ref()
            .map(|d| d.join("stockroute.toml"))
            .filter(|p| p.exists())
    });
    let mut config = Config::load(config_path.as_deref())?;
    if let Some(d) = data {
        config.data.dir = Some(d);
    }
    if let Some(a) = grpc_addr {
        config.server.grpc_addr = a;
    }
    if let Some(a) = http_addr {
        config.server.http_addr = a;
    }
    telemetry::init_logging(&config.log);
    match &config.data.dir {
        Some(d) => tracing::info!(dir = %d.display(), "serving the world in a directory"),
        None => tracing::info!(
            suppliers = config.data.demo_suppliers,
            products = config.data.demo_products,
            seed = config.data.demo_seed,
            "serving the built-in demo world (in memory)"
        ),
    }
    let running = app::start(config).await?;
    shutdown_signal().await;
    // A second signal while shutting down means "now".
    tokio::select! {
        _ = running.shutdown() => {}
        _ = shutdown_signal() => tracing::warn!("second signal: exiting without waiting"),
    }
    Ok(())
}

/// SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

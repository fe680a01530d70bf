//! `cargo run -p warden-chaos -- --scenario <name> --seed <n> --duration <d>`:
//! runs a scenario again and again (seed, seed+1, ...) until the duration is
//! spent, checking every invariant after each round, and stops at the first
//! failure with the seed that reproduces it.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use warden_chaos::{Scenario, run_scenario};

// The `warden` binary's allocator, so an in-process Warden here behaves as
// the real one does.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Seeded chaos runs against an in-process Warden.
#[derive(Debug, Parser)]
#[command(name = "warden-chaos")]
struct Args {
    /// A scenario name from chaos/scenarios/ (e.g. `kill-actors`) or a path to a scenario file.
    #[arg(long)]
    scenario: String,
    /// Seed of the first round (default: the scenario's own).
    #[arg(long)]
    seed: Option<u64>,
    /// How long to keep running rounds, e.g. `10m`. Default: one round.
    #[arg(long, value_parser = humantime::parse_duration)]
    duration: Option<Duration>,
}

fn scenario_path(name: &str) -> PathBuf {
    let path = PathBuf::from(name);
    if path.exists() {
        return path;
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("scenarios")
        .join(format!("{name}.toml"))
}

fn main() -> ExitCode {
    let args = Args::parse();
    // Warden's own logs, quiet unless RUST_LOG asks (e.g. RUST_LOG=info).
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("error")),
        )
        .with_writer(std::io::stderr)
        .try_init();
    let mut scenario = match Scenario::from_file(&scenario_path(&args.scenario)) {
        Ok(scenario) => scenario,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the runtime: {error}");
            return ExitCode::from(1);
        }
    };
    let first_seed = args.seed.unwrap_or(scenario.seed);
    let started = tokio::time::Instant::now();
    let mut rounds = 0u64;
    let (mut faults, mut acked) = (0usize, 0usize);
    loop {
        scenario.seed = first_seed.wrapping_add(rounds);
        match runtime.block_on(run_scenario(&scenario)) {
            Ok(outcome) => {
                rounds += 1;
                faults += outcome.injected;
                acked += outcome.acked.len();
                println!(
                    "round {rounds} seed {}: ok ({})",
                    scenario.seed,
                    outcome.summary()
                );
            }
            Err(error) => {
                eprintln!(
                    "round {} seed {}: FAILED: {error}",
                    rounds + 1,
                    scenario.seed
                );
                eprintln!(
                    "reproduce with: cargo run -p warden-chaos -- --scenario {} --seed {}",
                    args.scenario, scenario.seed
                );
                return ExitCode::from(1);
            }
        }
        if args.duration.is_none_or(|d| started.elapsed() >= d) {
            break;
        }
    }
    println!(
        "{}: {rounds} round(s) in {:?}, {faults} faults injected, {acked} rows acknowledged, every invariant held",
        scenario.name,
        started.elapsed()
    );
    ExitCode::SUCCESS
}

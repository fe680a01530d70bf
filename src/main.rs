//! The `warden` binary: parses the command line, loads the configuration and
//! maps every failure to a clear message and an exit code (0 ok, 1 runtime
//! failure, 2 bad configuration or usage, 3 `incidents resolve` refused because
//! impact has not stopped).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use warden::app::{self, AppError};
use warden::audit::{TailOptions, tail_command};
use warden::settings::{self, ConfigSource, Settings};

// mimalloc instead of glibc malloc: a quarter of the wake consumer's CPU was
// in malloc/free, and with mimalloc the same bench delivers about twice the
// notices per second (docs/benchmarks.md, "Allocator").
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Watches your services, heals what it may, escalates the rest with the evidence gathered.
#[derive(Debug, Parser)]
#[command(name = "warden", version, about)]
struct Cli {
    /// Configuration file (TOML). Without it, the embedded config/default.toml is used.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run Warden until SIGTERM or SIGINT (a second signal forces exit).
    Run,
    /// Escalation by hand: undo what a tier changed.
    Escalation {
        #[command(subcommand)]
        command: EscalationCommand,
    },
    /// Validate the configuration: prints `config OK` and a summary, or every problem (exit 2).
    CheckConfig,
    /// Read the audit log.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Serve a small HTTP service that fails on demand (for tests and demos).
    DemoTarget {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8081")]
        listen: SocketAddr,
        /// File holding the mode (`ok`, `failing`, `hang`, `exit`), read at start and written on change.
        #[arg(long, value_name = "PATH")]
        state_file: Option<PathBuf>,
    },
    /// Pause, resume, stop or reset a running Warden, or bump its DR epoch (POST /api/control).
    Control {
        /// The command.
        #[arg(value_enum)]
        command: ControlArg,
        /// Why, recorded in the audit row.
        #[arg(long)]
        reason: Option<String>,
        /// Base URL of the API. Default: http://<service.api_listen> from the config.
        #[arg(long, value_name = "URL")]
        api: Option<String>,
        /// File holding the operator token. Default: $WARDEN_OPERATOR_TOKEN.
        #[arg(long, value_name = "FILE")]
        token_file: Option<PathBuf>,
    },
    /// The cluster as the running Warden sees it (a client of the HTTP API).
    Cluster {
        #[command(subcommand)]
        command: ClusterCommand,
    },
    /// List, read, annotate and resolve incidents (a client of the HTTP API).
    Incidents {
        /// The Warden API.
        #[arg(long, default_value = "http://127.0.0.1:9400", global = true)]
        api: String,
        /// File holding the operator token (else the WARDEN_OPERATOR_TOKEN variable).
        #[arg(long, value_name = "FILE", global = true)]
        token_file: Option<PathBuf>,
        #[command(subcommand)]
        command: IncidentsCommand,
    },
}

#[derive(Debug, Subcommand)]
enum ClusterCommand {
    /// Nodes, the active-node lease, and this node's lag behind the stream (GET /api/cluster).
    Status {
        /// Base URL of the API. Default: http://<service.api_listen> from the config.
        #[arg(long)]
        api: Option<String>,
        /// File holding the operator token. Default: $WARDEN_OPERATOR_TOKEN.
        #[arg(long)]
        token_file: Option<PathBuf>,
        /// Print the API's JSON as it is.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
enum IncidentsCommand {
    /// Every incident, newest first.
    List,
    /// One incident and its timeline.
    Show {
        /// The incident id (INC-YYYYMMDD-NNN).
        id: String,
    },
    /// Resolve an incident; refused (exit 3) while an affected probe is unhealthy.
    Resolve {
        /// The incident id.
        id: String,
        /// What was done, for the timeline and the postmortem.
        #[arg(long)]
        note: String,
        /// Resolve even though impact has not stopped.
        #[arg(long)]
        force: bool,
    },
    /// Add a note to an incident's timeline.
    Note {
        /// The incident id.
        id: String,
        /// The note.
        text: String,
        /// Who writes it.
        #[arg(long)]
        author: Option<String>,
    },
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum ControlArg {
    Pause,
    Resume,
    Stop,
    Reset,
    BumpEpoch,
}

impl ControlArg {
    fn wire(self) -> &'static str {
        match self {
            ControlArg::Pause => "pause",
            ControlArg::Resume => "resume",
            ControlArg::Stop => "stop",
            ControlArg::Reset => "reset",
            ControlArg::BumpEpoch => "bump_epoch",
        }
    }
}

#[derive(Debug, Subcommand)]
enum EscalationCommand {
    /// Revert the last patch a tier applied to a component (files restored
    /// byte for byte; a `reverted` entry is added to patch_history.jsonl).
    RollbackPatch {
        /// The component.
        component: String,
    },
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Print audit rows, optionally following new ones.
    Tail {
        /// Keep printing rows as they are appended, until interrupted.
        #[arg(long, short)]
        follow: bool,
        /// Only rows of this seam; a trailing `*` matches a prefix (`supervision.*`).
        #[arg(long)]
        seam: Option<String>,
        /// Start at this seq (inclusive) instead of the last rows.
        #[arg(long)]
        since: Option<u64>,
        /// How many of the last rows to show when --since is not given.
        #[arg(long, default_value_t = 20)]
        last: usize,
        /// Print raw JSON rows, one per line.
        #[arg(long)]
        json: bool,
        /// Read this state directory instead of the configured service.state_dir.
        #[arg(long, value_name = "DIR")]
        state_dir: Option<PathBuf>,
    },
}

const EXIT_RUNTIME: u8 = 1;
const EXIT_CONFIG: u8 = 2;

fn main() -> ExitCode {
    // Before anything is created: the state dir holds evidence and the old
    // content of patched files, and Warden usually runs as root.
    warden::files::set_private_umask();
    let cli = Cli::parse();
    let source = ConfigSource::from_arg(cli.config.clone());
    match cli.command {
        Command::CheckConfig => check_config(&source),
        Command::Run => run(&source),
        Command::Cluster {
            command:
                ClusterCommand::Status {
                    api,
                    token_file,
                    json,
                },
        } => cluster_status(&source, api, token_file, json),
        Command::DemoTarget { listen, state_file } => demo_target(listen, state_file),
        Command::Control {
            command,
            reason,
            api,
            token_file,
        } => control(&source, command, reason, api, token_file),
        Command::Audit {
            command:
                AuditCommand::Tail {
                    follow,
                    seam,
                    since,
                    last,
                    json,
                    state_dir,
                },
        } => {
            let dir = match state_dir {
                Some(dir) => dir,
                None => match load(&source) {
                    Ok(settings) => settings.service.state_dir,
                    Err(code) => return code,
                },
            };
            let options = TailOptions {
                follow,
                seam,
                since,
                json,
                last,
            };
            audit_tail(dir, options)
        }
        Command::Incidents {
            api,
            token_file,
            command,
        } => incidents(&api, token_file.as_deref(), command),
        Command::Escalation {
            command: EscalationCommand::RollbackPatch { component },
        } => rollback_patch(&source, &component),
    }
}

/// `warden escalation rollback-patch <component>`: works on the state dir's
/// files directly, so it also works while Warden is stopped.
fn rollback_patch(source: &ConfigSource, component: &str) -> ExitCode {
    let settings = match load(source) {
        Ok(settings) => settings,
        Err(code) => return code,
    };
    let reverted = warden::escalation::PatchHistory::open(&settings.service.state_dir)
        .and_then(|history| history.revert_last(component));
    match reverted {
        Ok(report) => {
            println!("reverted patch {} of {component}", report.reverted);
            for path in &report.restored {
                println!("  restored {}", path.display());
            }
            for path in &report.removed {
                println!("  removed {}", path.display());
            }
            for path in &report.drifted {
                println!(
                    "  note: {} had changed since the patch; restored anyway",
                    path.display()
                );
            }
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::from(EXIT_RUNTIME)
        }
    }
}

fn incidents(
    api: &str,
    token_file: Option<&std::path::Path>,
    command: IncidentsCommand,
) -> ExitCode {
    use warden::incidents::client::{self, Client, ClientError};
    let runtime = match runtime() {
        Ok(runtime) => runtime,
        Err(code) => return code,
    };
    let result: Result<String, ClientError> = runtime.block_on(async {
        let token = client::token(token_file, std::env::var(client::TOKEN_ENV).ok())?;
        let api = Client::new(api, token)?;
        match command {
            IncidentsCommand::List => api.list().await.map(|body| client::format_list(&body)),
            IncidentsCommand::Show { id } => {
                api.show(&id).await.map(|body| client::format_show(&body))
            }
            IncidentsCommand::Resolve { id, note, force } => api
                .resolve(&id, &note, force)
                .await
                .map(|_| format!("{id} resolved\n")),
            IncidentsCommand::Note { id, text, author } => api
                .note(&id, &text, author.as_deref())
                .await
                .map(|_| format!("note added to {id}\n")),
        }
    });
    match result {
        Ok(out) => {
            print!("{out}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::from(error.exit_code())
        }
    }
}

fn load(source: &ConfigSource) -> Result<Settings, ExitCode> {
    settings::load(source).map_err(|error| {
        eprintln!("error: {error}");
        for line in error
            .lines()
            .iter()
            .filter(|_| matches!(error, settings::SettingsError::Invalid(_)))
        {
            eprintln!("  {line}");
        }
        ExitCode::from(EXIT_CONFIG)
    })
}

fn check_config(source: &ConfigSource) -> ExitCode {
    match load(source) {
        Ok(settings) => {
            println!("config OK: {}", settings.summary());
            for warning in settings.service.token_file_warnings() {
                println!("warning: {warning}");
            }
            ExitCode::SUCCESS
        }
        Err(code) => code,
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|error| {
            eprintln!("error: cannot start the async runtime: {error}");
            ExitCode::from(EXIT_RUNTIME)
        })
}

fn run(source: &ConfigSource) -> ExitCode {
    let settings = match load(source) {
        Ok(settings) => settings,
        Err(code) => return code,
    };
    let runtime = match runtime() {
        Ok(runtime) => runtime,
        Err(code) => return code,
    };
    // Inside the runtime: the gRPC trace exporter needs a reactor.
    let result = runtime.block_on(async {
        let guard = match warden::telemetry::init(&settings.telemetry) {
            Ok(guard) => guard,
            Err(error) => return Err(error),
        };
        let result = app::run_source(source.clone(), app::shutdown_signal()).await;
        guard.shutdown().await;
        Ok(result)
    });
    let result = match result {
        Ok(result) => result,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(error = %error, "Warden stopped with an error.");
            eprintln!("error: {error}");
            match error {
                AppError::Secret { .. } | AppError::UnsafeListen(_) | AppError::Setup(_) => {
                    ExitCode::from(EXIT_CONFIG)
                }
                _ => ExitCode::from(EXIT_RUNTIME),
            }
        }
    }
}

fn audit_tail(dir: PathBuf, options: TailOptions) -> ExitCode {
    let runtime = match runtime() {
        Ok(runtime) => runtime,
        Err(code) => return code,
    };
    let result = runtime.block_on(async move {
        let mut out = std::io::stdout();
        let stop = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        tail_command(&dir.join("audit"), options, &mut out, stop).await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::from(EXIT_RUNTIME)
        }
    }
}

fn demo_target(listen: SocketAddr, state_file: Option<PathBuf>) -> ExitCode {
    let runtime = match runtime() {
        Ok(runtime) => runtime,
        Err(code) => return code,
    };
    let stop = async {
        let _ = first_signal().await;
        println!("demo-target stopping");
    };
    match runtime.block_on(warden::demo_target::serve(listen, state_file, stop)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(warden::demo_target::DemoError::Exit { code }) => {
            ExitCode::from(u8::try_from(code.rem_euclid(256)).unwrap_or(EXIT_RUNTIME))
        }
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::from(EXIT_RUNTIME)
        }
    }
}

/// `warden control <command>`: one authenticated call, the new state printed.
fn control(
    source: &ConfigSource,
    command: ControlArg,
    reason: Option<String>,
    api: Option<String>,
    token_file: Option<PathBuf>,
) -> ExitCode {
    let (base, token) = match api_target(source, api, token_file) {
        Ok(target) => target,
        Err(code) => return code,
    };
    let Some(token) = token else {
        eprintln!("error: no operator token: pass --token-file or set WARDEN_OPERATOR_TOKEN");
        return ExitCode::from(EXIT_CONFIG);
    };
    let runtime = match runtime() {
        Ok(runtime) => runtime,
        Err(code) => return code,
    };
    let body = serde_json::json!({ "command": command.wire(), "reason": reason });
    let result = runtime.block_on(async move {
        let response = reqwest::Client::new()
            .post(format!("{base}/api/control"))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .map_err(|error| format!("cannot reach {base}: {error}"))?;
        let status = response.status();
        let value: serde_json::Value = response
            .json()
            .await
            .map_err(|error| format!("unreadable answer ({status}): {error}"))?;
        if status.is_success() {
            Ok(value)
        } else {
            let message = value["error"]["message"].as_str().unwrap_or("no message");
            Err(format!("refused ({status}): {message}"))
        }
    });
    match result {
        Ok(value) => {
            let reasons: Vec<&str> = value["degradation_reasons"]
                .as_array()
                .map(|list| list.iter().filter_map(|r| r.as_str()).collect())
                .unwrap_or_default();
            let state = value["state"].as_str().unwrap_or("UNKNOWN");
            if reasons.is_empty() {
                println!("state: {state}");
            } else {
                println!("state: {state} ({})", reasons.join(", "));
            }
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(EXIT_RUNTIME)
        }
    }
}

/// The API's base URL (`--api`, else `service.api_listen` from the config)
/// and the operator token (`--token-file`, else `$WARDEN_OPERATOR_TOKEN`),
/// if there is one.
fn api_target(
    source: &ConfigSource,
    api: Option<String>,
    token_file: Option<PathBuf>,
) -> Result<(String, Option<String>), ExitCode> {
    let env = std::env::var(warden::incidents::client::TOKEN_ENV).ok();
    let token = match warden::incidents::client::token(token_file.as_deref(), env) {
        Ok(token) => token,
        Err(error) => {
            eprintln!("error: {error}");
            return Err(ExitCode::from(EXIT_CONFIG));
        }
    };
    let base = match api {
        Some(url) => url.trim_end_matches('/').to_owned(),
        None => {
            let settings = load(source)?;
            let mut addr = settings.service.api_listen;
            if addr.ip().is_unspecified() {
                addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
            }
            format!("http://{addr}")
        }
    };
    Ok((base, token))
}

/// `warden cluster status`: what `GET /api/cluster` says, in a few lines.
fn cluster_status(
    source: &ConfigSource,
    api: Option<String>,
    token_file: Option<PathBuf>,
    json: bool,
) -> ExitCode {
    let (base, token) = match api_target(source, api, token_file) {
        Ok(target) => target,
        Err(code) => return code,
    };
    let runtime = match runtime() {
        Ok(runtime) => runtime,
        Err(code) => return code,
    };
    let answer =
        warden::incidents::client::Client::new(&base, token).map_err(|error| error.to_string());
    let answer = match answer {
        Ok(client) => runtime
            .block_on(client.get("/api/cluster"))
            .map_err(|error| error.to_string()),
        Err(message) => Err(message),
    };
    match answer {
        Ok(value) if json => {
            println!("{value:#}");
            ExitCode::SUCCESS
        }
        Ok(value) => {
            print!("{}", warden::cluster::status_text(&value));
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(EXIT_RUNTIME)
        }
    }
}

/// SIGTERM or SIGINT (the demo target has no second-signal escalation: it stops at once).
async fn first_signal() -> std::io::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    Ok(())
}

//! `loom`: run the gateway, check a config, or count tokens.

mod guard_cmd;
mod tokens_cmd;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{ArgAction, Parser, Subcommand};
use loom_gateway::Gateway;
use loom_gateway::config::{ConfigError, LogFormat, LoomConfig};
use tracing::{error, info, warn};
use tracing_subscriber::EnvFilter;

// The request path allocates many small, short-lived buffers; mimalloc serves them with
// less CPU than glibc's malloc (measured with loom-bench, docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's switch for committing a whole arena up front (`mi_option_arena_eager_commit`).
const EAGER_COMMIT_VAR: &str = "MIMALLOC_ARENA_EAGER_COMMIT";

/// Runs this binary again with mimalloc committing memory as it is used, unless the
/// environment already says. mimalloc reserves its first arena before `main`, so only the
/// environment at start-up can change it; the cost is one `exec` (same process id). After
/// the first exact token count Loom then holds 31 MB instead of 50 MB (docs/benchmarks.md).
/// The same `exec` sets `CANDLE_NUM_THREADS=1` unless it is set: candle sizes its
/// element-wise thread pool from it once, and with one thread each embedding stays on its
/// `ai_gateway.embedder` worker, so `threads` bounds the cores embeddings use.
fn commit_memory_lazily() {
    use std::os::unix::process::CommandExt;
    if std::env::var_os(EAGER_COMMIT_VAR).is_some() {
        return;
    }
    let Ok(executable) = std::env::current_exe() else { return };
    let mut args = std::env::args_os();
    let mut command = std::process::Command::new(executable);
    if let Some(arg0) = args.next() {
        command.arg0(arg0);
    }
    // `exec` returns only when it failed; Loom then runs with mimalloc's defaults.
    if std::env::var_os("CANDLE_NUM_THREADS").is_none() {
        command.env("CANDLE_NUM_THREADS", "1");
    }
    let _failed = command.args(args).env(EAGER_COMMIT_VAR, "0").exec();
}

/// Loom, the AI gateway: every LLM provider behind one fast API.
#[derive(Parser)]
#[command(name = "loom", version)]
struct Cli {
    #[command(flatten)]
    files: ConfigFiles,
    #[command(subcommand)]
    command: Option<Command>,
}

/// The `--config` files of a command.
#[derive(clap::Args)]
struct ConfigFiles {
    /// Config file (default: $LOOM_CONFIG, else loom.yaml); repeat to lay files over each
    /// other in order: later keys win, maps merge, lists are replaced.
    #[arg(long, short, value_name = "FILE", action = ArgAction::Append)]
    config: Vec<PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// Validate the config, print a summary, and exit (non-zero on error).
    Check(ConfigFiles),
    /// Count the tokens of a text file, stdin, or a chat request (needs no config).
    Tokens(tokens_cmd::TokensArgs),
    /// Security checks: `loom guard eval FILE.jsonl` measures them on labelled data.
    Guard(guard_cmd::GuardArgs),
}

fn main() -> ExitCode {
    commit_memory_lazily();
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Tokens(args)) => tokens_cmd::run(&args),
        Some(Command::Guard(args)) => guard_cmd::run(&args),
        Some(Command::Check(files)) => {
            load_config(&config_paths(cli.files, files)).map_or_else(|code| code, |config| check(&config))
        }
        None => load_config(&config_paths(cli.files, ConfigFiles { config: Vec::new() }))
            .map_or_else(|code| code, run),
    }
}

/// The files to load: every `--config`, before the subcommand and after it, in order;
/// with none, `$LOOM_CONFIG`, else `loom.yaml`.
fn config_paths(before: ConfigFiles, after: ConfigFiles) -> Vec<PathBuf> {
    let mut paths = before.config;
    paths.extend(after.config);
    if paths.is_empty() {
        let default = std::env::var_os("LOOM_CONFIG").filter(|path| !path.is_empty());
        paths.push(default.map_or_else(|| PathBuf::from("loom.yaml"), PathBuf::from));
    }
    paths
}

fn load_config(paths: &[PathBuf]) -> Result<LoomConfig, ExitCode> {
    LoomConfig::load_files(paths).map_err(|error| {
        report_config_error(paths, &error);
        ExitCode::from(2)
    })
}

/// Prints each problem on its own line, naming the file it came from (all the files when
/// it cannot be told, e.g. a required key that none sets).
fn report_config_error(paths: &[PathBuf], error: &ConfigError) {
    let all: Vec<String> = paths.iter().map(|path| path.display().to_string()).collect();
    for problem in error.problems() {
        match problem {
            ConfigError::InFile { path, error } => {
                eprintln!("loom: invalid config {}: {error}", path.display())
            }
            ConfigError::Io { path, .. } => eprintln!("loom: invalid config {}: {problem}", path.display()),
            other => eprintln!("loom: invalid config {}: {other}", all.join(", ")),
        }
    }
}

fn check(config: &LoomConfig) -> ExitCode {
    // The Redis state backend is made inside a runtime (it connects lazily: nothing is
    // dialled here).
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("loom: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let _runtime = runtime.enter();
    if let Err(error) = Gateway::from_config(config) {
        eprintln!("loom: config is valid but the gateway cannot be built: {error}");
        return ExitCode::from(2);
    }
    let mut output = config.summary().to_string();
    for feature in config.inactive_features() {
        output.push_str(&format!("\nnote: {feature}"));
    }
    for warning in config.exposure_warnings() {
        output.push_str(&format!("\nwarning: {warning}"));
    }
    output.push_str("\nconfig OK");
    print_output(&output)
}

/// Prints a command's output; a reader that stopped early (`loom check | head`) is not
/// an error.
fn print_output(output: &str) -> ExitCode {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    match writeln!(stdout, "{output}").and_then(|()| stdout.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("loom: cannot write the output: {error}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(config: &LoomConfig) {
    let filter =
        EnvFilter::try_from_env("LOOM_LOG").unwrap_or_else(|_| EnvFilter::new(&config.logging.level));
    // The fmt subscriber writes to stdout.
    let ansi = use_colour(std::io::stdout().is_terminal(), std::env::var_os("NO_COLOR").as_deref());
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match config.logging.format {
        LogFormat::Json => builder.json().with_ansi(false).init(),
        LogFormat::Text => builder.with_ansi(ansi).init(),
    }
}

/// Whether text logs get ANSI colours: only on a terminal, and not when `NO_COLOR` is set
/// to a non-empty value (<https://no-color.org>); a log file or pipe gets plain text.
fn use_colour(terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    terminal && no_color.is_none_or(|value| value.is_empty())
}

fn run(config: LoomConfig) -> ExitCode {
    init_logging(&config);
    // Client connections are served on the gateway's worker threads (`server.workers`);
    // this runtime only accepts them and runs the admin server and the signal handlers.
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            error!(%error, "cannot start the async runtime");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        for feature in config.inactive_features() {
            warn!("{feature}");
        }
        let signals = ShutdownSignals::install();
        let gateway = match Gateway::from_config(&config) {
            Ok(gateway) => gateway,
            Err(error) => {
                error!(%error, "cannot build the gateway");
                return ExitCode::from(2);
            }
        };
        let running = match gateway.start().await {
            Ok(running) => running,
            Err(error) => {
                error!(%error, "cannot start");
                return ExitCode::FAILURE;
            }
        };
        if let Some(addr) = running.addr() {
            info!(%addr, "loom is serving the AI gateway");
        }
        if let Some(addr) = running.admin_addr() {
            info!(%addr, "admin server (GET /health, GET /metrics)");
        }
        signals.wait().await;
        info!(grace = ?config.server.shutdown_timeout, "shutting down: draining in-flight requests");
        running.shutdown().await;
        info!("stopped");
        ExitCode::SUCCESS
    })
}

/// SIGINT and SIGTERM handlers, installed before the listeners open so no signal
/// arriving during start-up skips the graceful drain.
struct ShutdownSignals {
    #[cfg(unix)]
    interrupt: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    terminate: Option<tokio::signal::unix::Signal>,
}

impl ShutdownSignals {
    fn install() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let install = |kind: SignalKind, name: &str| match signal(kind) {
                Ok(signal) => Some(signal),
                Err(error) => {
                    warn!(%error, "cannot listen for {name}");
                    None
                }
            };
            ShutdownSignals {
                interrupt: install(SignalKind::interrupt(), "SIGINT"),
                terminate: install(SignalKind::terminate(), "SIGTERM"),
            }
        }
        #[cfg(not(unix))]
        ShutdownSignals {}
    }

    /// Resolves on the first SIGINT or SIGTERM.
    async fn wait(mut self) {
        #[cfg(unix)]
        {
            async fn next(signal: &mut Option<tokio::signal::unix::Signal>) {
                match signal {
                    Some(signal) => {
                        signal.recv().await;
                    }
                    None => std::future::pending().await,
                }
            }
            tokio::select! {
                () = next(&mut self.interrupt) => {}
                () = next(&mut self.terminate) => {}
            }
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[cfg(test)]
mod tests {
    use std::ffi::OsStr;

    use super::use_colour;

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        assert!(use_colour(true, None));
        assert!(use_colour(true, Some(OsStr::new(""))), "an empty NO_COLOR does not count");
        assert!(!use_colour(true, Some(OsStr::new("1"))));
        assert!(!use_colour(false, None));
        assert!(!use_colour(false, Some(OsStr::new("1"))));
    }
}

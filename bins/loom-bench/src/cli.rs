//! Command-line arguments.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::load::Workload;

/// Measure Loom against a bare nginx reverse proxy and the mock upstream itself.
#[derive(Debug, Parser)]
#[command(name = "loom-bench", version)]
pub struct Cli {
    /// Internal subcommands (the benchmark runs when none is given).
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Benchmark options.
    #[command(flatten)]
    pub bench: BenchArgs,
}

/// Subcommands other than the benchmark itself.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run only the mock upstream (the benchmark starts itself this way as a child).
    Mock {
        /// Address to listen on; port 0 picks a free one.
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: SocketAddr,
    },
    /// Print the Loom config the benchmark runs Loom with (scripts/instructions.sh uses it).
    LoomConfig {
        /// Where Loom serves.
        #[arg(long)]
        listen: SocketAddr,
        /// Where Loom's admin server listens.
        #[arg(long)]
        admin: SocketAddr,
        /// The mock upstream.
        #[arg(long)]
        upstream: SocketAddr,
        /// Add a virtual key (`sk-bench`), one request limit and one token limit, in memory.
        #[arg(long)]
        guard: bool,
        /// With `--guard`: keep limits on the Redis at this address instead.
        #[arg(long, requires = "guard")]
        redis: Option<SocketAddr>,
        /// Turn the default security checks on (prompt-injection detection), no key or limit.
        #[arg(long, conflicts_with = "guard")]
        checks: bool,
        /// Turn the exact response cache on, no key, limit or check.
        #[arg(long, conflicts_with_all = ["guard", "checks"])]
        cache: bool,
    },
    /// Print the nginx config the benchmark runs nginx with (scripts/instructions.sh uses it).
    NginxConfig {
        /// Directory for nginx's pid file, logs and temp files.
        #[arg(long)]
        dir: PathBuf,
        /// Where nginx serves.
        #[arg(long)]
        listen: SocketAddr,
        /// The mock upstream.
        #[arg(long)]
        upstream: SocketAddr,
    },
    /// Run only the bare hyper proxy (the benchmark starts itself this way as a child).
    BareProxy {
        /// Address to listen on; port 0 picks a free one.
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: SocketAddr,
        /// The upstream to forward to.
        #[arg(long)]
        upstream: SocketAddr,
    },
}

/// Options of a benchmark run.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// Measured seconds of each saturation run (after a 1 s warm-up).
    #[arg(long, default_value_t = 10.0, value_parser = positive_secs)]
    pub duration: f64,
    /// Measured seconds of each fixed-rate run (after a 0.5 s warm-up).
    #[arg(long, default_value_t = 5.0, value_parser = positive_secs)]
    pub rate_duration: f64,
    /// Saturation rounds per workload, every target once per round; ratios are the median
    /// of the rounds' ratios, so one slow minute of one target does not decide them.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=20))]
    pub rounds: u32,
    /// Concurrent keep-alive connections in saturation runs.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub concurrency: u32,
    /// Requests per second of the fixed-rate (open-loop) runs; 0 skips them.
    #[arg(long, default_value_t = 500)]
    pub rate: u32,
    /// Run only one workload (`stream-usage` only runs this way).
    #[arg(long, value_enum)]
    pub only: Option<Workload>,
    /// Do not start nginx (Loom/nginx ratios are then not reported).
    #[arg(long)]
    pub skip_nginx: bool,
    /// Do not run the bare hyper proxy (Loom/hyper ratios are then not reported).
    #[arg(long)]
    pub skip_hyper: bool,
    /// Also measure Loom with a virtual key, one request limit and one token limit (see
    /// `loom-config --guard`): in memory (target `guard`) and on Redis (target `redis`, a
    /// redis-server child; skipped with a note when `--redis-bin` is not found).
    #[arg(long)]
    pub guard: bool,
    /// Also measure Loom with the default security checks on (prompt-injection detection:
    /// normalisation, rules and the learned stage on every request; see `loom-config
    /// --checks`), target `checks`.
    #[arg(long)]
    pub checks: bool,
    /// Also measure Loom with the exact response cache on (see `loom-config --cache`),
    /// target `cache`: every request is the same, so after the first each is a hit
    /// answered from memory, without the upstream; compared with nginx's req/s.
    #[arg(long)]
    pub cache: bool,
    /// The redis-server binary for `--guard` [default: `redis-server` on PATH].
    #[arg(long, default_value = "redis-server")]
    pub redis_bin: PathBuf,
    /// The release `loom` binary [default: `loom` next to this executable].
    #[arg(long)]
    pub loom_bin: Option<PathBuf>,
    /// The nginx binary [default: `nginx` on PATH].
    #[arg(long, default_value = "nginx")]
    pub nginx_bin: PathBuf,
    /// Print the results as one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
}

impl BenchArgs {
    /// The measured window of a saturation run.
    pub fn duration(&self) -> Duration {
        Duration::from_secs_f64(self.duration)
    }

    /// The measured window of a fixed-rate run.
    pub fn rate_duration(&self) -> Duration {
        Duration::from_secs_f64(self.rate_duration)
    }
}

fn positive_secs(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(secs) if secs > 0.0 && secs <= 3600.0 => Ok(secs),
        Ok(_) => Err("must be between 0 and 3600 seconds".to_owned()),
        Err(err) => Err(err.to_string()),
    }
}

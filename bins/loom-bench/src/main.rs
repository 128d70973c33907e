//! `loom-bench`: measure Loom against a bare nginx reverse proxy and the mock upstream.
//!
//! One run starts four servers on 127.0.0.1, each in its own process:
//!
//! - the fast mock OpenAI upstream from `loom-test-support` (`loom-bench mock`, a child
//!   of this binary, recording off, pre-serialized replies);
//! - nginx with a generated config: `proxy_pass` to the mock with upstream keep-alive,
//!   `proxy_buffering off`, one worker per core (skipped with `--skip-nginx`);
//! - a bare hyper proxy (`loom-bench bare-proxy`): Loom's worker threads, hyper server
//!   and upstream client, forwarding bytes with none of Loom's pipeline (skipped with
//!   `--skip-hyper`): what hyper and Tokio alone cost;
//! - the release `loom` binary with one `openai` provider pointing at the mock;
//! - with `--guard`, two more Looms: with a virtual key, one request limit and one token
//!   limit in memory (`guard`), and the same on a redis-server child (`redis`), compared
//!   with the plain Loom (issue 18's targets: 0.95x and 0.7x of its req/s);
//! - with `--checks`, a Loom with the default security checks on (`checks`, 0.9x of Loom);
//! - with `--cache`, a Loom with the exact response cache on (`cache`): the load repeats one
//!   request, so every measured request is a hit (issue 20's target: 2x nginx's req/s).
//!
//! It then loads each target (the mock directly, nginx, the bare proxy, Loom) with whole and with
//! streamed chat completions, in two modes: saturation (a closed loop over
//! `--concurrency` keep-alive connections for `--duration` seconds after a 1 s warm-up)
//! and fixed rate (an open loop at `--rate` requests/s for `--rate-duration` seconds,
//! latency measured from each request's scheduled send time). Loom's RSS is sampled
//! throughout, the CPU time each process spends per request is read from /proc, and
//! Loom's own `loom_ai_overhead_seconds` histogram is read from its admin server before and
//! after each fixed-rate run (what Loom says it added to those requests).
//! It prints one table (or `--json`) with req/s, p50/p99, CPU per request, the ratios
//! Loom/nginx, Loom/direct and Loom/hyper, the fixed-rate latencies, the RSS, and a verdict for
//! each target, then stops every child (also on Ctrl-C, SIGTERM or a panic).
//!
//! The Loom child inherits the environment, so `LOOM_...` overrides apply to it, e.g.
//! `LOOM_AI_GATEWAY__STREAMING__FLUSH_INTERVAL=1ms loom-bench --only stream`.
//!
//! ```sh
//! apt-get install -y nginx-light        # or nginx
//! cargo build --release -p loom -p loom-bench
//! target/release/loom-bench             # defaults: 64 connections, 10 s, 500 req/s, ~140 s
//! target/release/loom-bench --only stream --duration 5 --json
//! ```
//!
//! The load generator shares the machine with the servers it measures, so absolute
//! figures depend on the machine and its neighbours; compare the ratios.

mod bare_proxy;
mod child;
mod cli;
mod load;
mod loom_child;
mod mock;
mod nginx;
mod overhead;
mod procfs;
mod redis;
mod report;

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;

use crate::cli::{BenchArgs, Cli, Command};
use crate::load::Workload;
use crate::loom_child::{Guard, LoomChild};
use crate::overhead::OverheadHistogram;
use crate::redis::RedisChild;
use crate::report::{CpuUse, Machine, RateRow, Report, Rss, SaturationRow, TargetKind};

/// Warm-up before each saturation run.
const SATURATION_WARMUP: Duration = Duration::from_secs(1);
/// Warm-up before each fixed-rate run.
const RATE_WARMUP: Duration = Duration::from_millis(500);
/// How often Loom's RSS is sampled.
const RSS_PERIOD: Duration = Duration::from_millis(50);
/// Bytes in a MiB.
const MIB: f64 = 1024.0 * 1024.0;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Mock { listen }) => mock::serve(listen),
        Some(Command::BareProxy { listen, upstream }) => bare_proxy::serve(listen, upstream),
        Some(Command::NginxConfig { dir, listen, upstream }) => {
            print!("{}", nginx::config(&dir, listen, upstream, nginx::running_as_root()));
            ExitCode::SUCCESS
        }
        Some(Command::LoomConfig { listen, admin, upstream, guard, redis, checks, cache }) => {
            let guard = match (guard, redis, checks, cache) {
                (_, Some(redis), _, _) => Guard::Redis(redis),
                (true, None, _, _) => Guard::Memory,
                (false, None, true, _) => Guard::Checks,
                (false, None, false, true) => Guard::Cache,
                (false, None, false, false) => Guard::Off,
            };
            print!("{}", loom_child::config(listen, admin, upstream, guard));
            ExitCode::SUCCESS
        }
        None => match bench(&cli.bench) {
            Ok(report) => {
                if cli.bench.json {
                    match serde_json::to_string_pretty(&report) {
                        Ok(json) => println!("{json}"),
                        Err(err) => {
                            eprintln!("loom-bench: cannot serialize the report: {err}");
                            return ExitCode::FAILURE;
                        }
                    }
                } else {
                    print!("{}", report.table());
                }
                ExitCode::SUCCESS
            }
            Err(err) => {
                eprintln!("loom-bench: {err}");
                ExitCode::FAILURE
            }
        },
    }
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() -> std::io::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    tokio::select! {
        _ = interrupt.recv() => {}
        _ = terminate.recv() => {}
    }
    Ok(())
}

/// A server under load.
#[derive(Debug, Clone)]
struct Target {
    kind: TargetKind,
    addr: SocketAddr,
    /// The proxy's processes, whose CPU time is counted (empty for the mock itself).
    pids: Vec<u32>,
    /// A state backend the proxy uses (redis-server), whose CPU is counted as the proxy's
    /// and also on its own.
    backend_pid: Option<u32>,
    /// Loom's admin server, to read its own overhead histogram from.
    admin: Option<SocketAddr>,
}

/// Process ids whose CPU time each run reports.
#[derive(Debug, Clone, Copy)]
struct Pids {
    mock: u32,
    client: u32,
}

/// Start the servers, run every load, and stop the servers (guards drop on return).
fn bench(args: &BenchArgs) -> Result<Report, String> {
    let mut machine = Machine::detect();
    let self_exe = std::env::current_exe().map_err(|err| format!("cannot find this executable: {err}"))?;
    let loom_bin = match &args.loom_bin {
        Some(path) => path.clone(),
        None => loom_child::default_bin().map_err(|err| err.to_string())?,
    };
    let nginx_bin = if args.skip_nginx {
        None
    } else {
        let found = nginx::find(&args.nginx_bin);
        if found.is_none() {
            eprintln!(
                "loom-bench: {} not found; running without the nginx baseline: {}",
                args.nginx_bin.display(),
                nginx::INSTALL_HINT
            );
        }
        found
    };

    let mock = mock::spawn(&self_exe).map_err(|err| format!("mock upstream: {err}"))?;
    progress(format_args!("mock upstream on {} (pid {})", mock.addr, mock.guard.pid()));
    let nginx = if let Some(nginx_bin) = &nginx_bin {
        let nginx = nginx::spawn(nginx_bin, mock.addr).map_err(|err| format!("nginx: {err}"))?;
        progress(format_args!(
            "nginx on {} (pid {}, {} workers)",
            nginx.addr,
            nginx.guard.pid(),
            nginx.workers.len()
        ));
        Some(nginx)
    } else {
        None
    };
    let hyper = if args.skip_hyper {
        None
    } else {
        let hyper = bare_proxy::spawn(&self_exe, mock.addr).map_err(|err| format!("bare proxy: {err}"))?;
        progress(format_args!("bare hyper proxy on {} (pid {})", hyper.addr, hyper.guard.pid()));
        Some(hyper)
    };
    let loom = loom_child::spawn(&loom_bin, mock.addr, Guard::Off).map_err(|err| format!("loom: {err}"))?;
    progress(format_args!("loom on {} (pid {}, {})", loom.addr, loom.guard.pid(), loom_bin.display()));
    let mut notes = Vec::new();
    let guarded =
        if args.guard { Some(spawn_guarded(args, &loom_bin, mock.addr, &mut notes)?) } else { None };
    let checked = if args.checks {
        let loom = loom_child::spawn(&loom_bin, mock.addr, Guard::Checks)
            .map_err(|err| format!("loom with the security checks: {err}"))?;
        progress(format_args!("loom with the security checks on {} (pid {})", loom.addr, loom.guard.pid()));
        Some(loom)
    } else {
        None
    };
    let cached = if args.cache {
        let loom = loom_child::spawn(&loom_bin, mock.addr, Guard::Cache)
            .map_err(|err| format!("loom with the cache: {err}"))?;
        progress(format_args!("loom with the cache on {} (pid {})", loom.addr, loom.guard.pid()));
        Some(loom)
    } else {
        None
    };
    let mut targets = vec![Target {
        kind: TargetKind::Direct,
        addr: mock.addr,
        pids: Vec::new(),
        backend_pid: None,
        admin: None,
    }];
    if let Some(nginx) = &nginx {
        let mut pids = nginx.workers.clone();
        pids.push(nginx.guard.pid());
        targets.push(Target {
            kind: TargetKind::Nginx,
            addr: nginx.addr,
            pids,
            backend_pid: None,
            admin: None,
        });
    }
    if let Some(hyper) = &hyper {
        targets.push(Target {
            kind: TargetKind::Hyper,
            addr: hyper.addr,
            pids: vec![hyper.guard.pid()],
            backend_pid: None,
            admin: None,
        });
    }
    targets.push(Target {
        kind: TargetKind::Loom,
        addr: loom.addr,
        pids: vec![loom.guard.pid()],
        backend_pid: None,
        admin: Some(loom.admin),
    });
    if let Some(Guarded { memory, on_redis }) = &guarded {
        targets.push(Target {
            kind: TargetKind::Guard,
            addr: memory.addr,
            pids: vec![memory.guard.pid()],
            backend_pid: None,
            admin: Some(memory.admin),
        });
        if let Some((loom, redis)) = on_redis {
            // Redis works for this target: its CPU counts as the proxy's.
            targets.push(Target {
                kind: TargetKind::Redis,
                addr: loom.addr,
                pids: vec![loom.guard.pid(), redis.guard.pid()],
                backend_pid: Some(redis.guard.pid()),
                admin: Some(loom.admin),
            });
        }
    }
    if let Some(loom) = &checked {
        targets.push(Target {
            kind: TargetKind::Checks,
            addr: loom.addr,
            pids: vec![loom.guard.pid()],
            backend_pid: None,
            admin: Some(loom.admin),
        });
    }
    if let Some(loom) = &cached {
        targets.push(Target {
            kind: TargetKind::Cache,
            addr: loom.addr,
            pids: vec![loom.guard.pid()],
            backend_pid: None,
            admin: Some(loom.admin),
        });
    }
    let pids = Pids { mock: mock.guard.pid(), client: std::process::id() };
    let workloads: Vec<Workload> = match args.only {
        Some(workload) => vec![workload],
        None => vec![Workload::Whole, Workload::Stream],
    };

    let loom_pid = loom.guard.pid();
    let idle = procfs::rss_bytes(loom_pid).map_err(|err| format!("loom RSS: {err}"))?;
    let sampler = procfs::RssSampler::start(loom_pid, RSS_PERIOD);

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|err| format!("cannot start the runtime: {err}"))?;
    let (saturation, fixed_rate) = runtime.block_on(async {
        tokio::select! {
            result = run_loads(args, &targets, &workloads, pids) => result,
            signalled = shutdown_signal() => match signalled {
                Ok(()) => Err("interrupted; stopping the servers".to_owned()),
                Err(err) => Err(format!("cannot listen for signals: {err}")),
            },
        }
    })?;

    std::thread::sleep(Duration::from_millis(500));
    let after = procfs::rss_bytes(loom_pid).map_err(|err| format!("loom RSS: {err}"))?;
    let peak = sampler.max().max(idle).max(after);
    drop(sampler);
    let rss = Rss { idle_mib: idle as f64 / MIB, peak_mib: peak as f64 / MIB, after_mib: after as f64 / MIB };
    progress(format_args!("stopping the servers"));
    drop(cached);
    drop(checked);
    drop(guarded);
    drop(loom);
    drop(hyper);
    drop(nginx);
    drop(mock);
    machine.loadavg_after = report::loadavg();
    let mut report = Report::new(machine, args, saturation, fixed_rate, rss);
    report.notes = notes;
    Ok(report)
}

/// The Looms of `--guard`: with a key and limits in memory, and (when redis-server is
/// found; else a note says so) on a redis-server child.
struct Guarded {
    memory: LoomChild,
    /// Loom first: it stops before its Redis.
    on_redis: Option<(LoomChild, RedisChild)>,
}

fn spawn_guarded(
    args: &BenchArgs,
    loom_bin: &std::path::Path,
    upstream: SocketAddr,
    notes: &mut Vec<String>,
) -> Result<Guarded, String> {
    let memory = loom_child::spawn(loom_bin, upstream, Guard::Memory)
        .map_err(|err| format!("loom with a key and limits in memory: {err}"))?;
    progress(format_args!(
        "loom with a key and limits in memory on {} (pid {})",
        memory.addr,
        memory.guard.pid()
    ));
    let Some(redis_bin) = redis::find(&args.redis_bin) else {
        let note = format!(
            "{} not found: Loom with limits on Redis was not measured; {}",
            args.redis_bin.display(),
            redis::INSTALL_HINT
        );
        progress(format_args!("{note}"));
        notes.push(note);
        return Ok(Guarded { memory, on_redis: None });
    };
    let redis = redis::spawn(&redis_bin).map_err(|err| format!("redis-server: {err}"))?;
    progress(format_args!("redis-server on {} (pid {})", redis.addr, redis.guard.pid()));
    let loom = loom_child::spawn(loom_bin, upstream, Guard::Redis(redis.addr))
        .map_err(|err| format!("loom with a key and limits on Redis: {err}"))?;
    progress(format_args!("loom with a key and limits on Redis on {} (pid {})", loom.addr, loom.guard.pid()));
    Ok(Guarded { memory, on_redis: Some((loom, redis)) })
}

/// Every saturation run, then every fixed-rate run; each target in turn per workload,
/// so that a slower or noisier minute hits all targets alike.
async fn run_loads(
    args: &BenchArgs,
    targets: &[Target],
    workloads: &[Workload],
    pids: Pids,
) -> Result<(Vec<SaturationRow>, Vec<RateRow>), String> {
    for &workload in workloads {
        for target in targets {
            let probe_error = |err| format!("{} {}: {err}", target.kind.name(), workload.name());
            load::probe(target.addr, workload).await.map_err(probe_error)?;
            if target.kind == TargetKind::Cache {
                // The first answer was stored (or an earlier workload's was): this one is a hit.
                let status = load::probe(target.addr, workload).await.map_err(probe_error)?;
                if status.cache.as_deref() != Some("hit") {
                    return Err(probe_error(format!(
                        "a repeated request was not a cache hit (x-loom-cache: {})",
                        status.cache.as_deref().unwrap_or("none")
                    )));
                }
            }
        }
    }
    let mut saturation = Vec::new();
    for &workload in workloads {
        for round in 1..=args.rounds {
            for target in targets {
                saturation.push(saturate(args, target, workload, round, pids).await);
            }
        }
    }
    let mut fixed_rate = Vec::new();
    if args.rate > 0 {
        for &workload in workloads {
            for target in targets {
                progress(format_args!(
                    "fixed rate: {} {} ({} req/s, {:?})",
                    target.kind.name(),
                    workload.name(),
                    args.rate,
                    args.rate_duration()
                ));
                let before = read_overhead(target).await?;
                let outcome =
                    load::fixed_rate(target.addr, workload, args.rate, RATE_WARMUP, args.rate_duration())
                        .await;
                let overhead = read_overhead(target)
                    .await?
                    .zip(before)
                    .and_then(|(after, before)| after.since(&before).summary());
                fixed_rate.push(RateRow::new(target.kind, workload, args.rate, &outcome, overhead));
            }
        }
    }
    Ok((saturation, fixed_rate))
}

/// Loom's overhead histogram as it is now; `None` for the other targets.
async fn read_overhead(target: &Target) -> Result<Option<OverheadHistogram>, String> {
    match target.admin {
        Some(admin) => overhead::read(admin).await.map(Some).map_err(|err| format!("loom metrics: {err}")),
        None => Ok(None),
    }
}

/// One saturation run of `target`, with the CPU every process spent on it.
async fn saturate(
    args: &BenchArgs,
    target: &Target,
    workload: Workload,
    round: u32,
    pids: Pids,
) -> SaturationRow {
    let of_rounds =
        if args.rounds > 1 { format!(", round {round} of {}", args.rounds) } else { String::new() };
    progress(format_args!(
        "saturation: {} {} ({} connections, {:?}{of_rounds})",
        target.kind.name(),
        workload.name(),
        args.concurrency,
        args.duration()
    ));
    let cpu_before = cpu_use(target, pids);
    let outcome =
        load::saturate(target.addr, workload, args.concurrency, SATURATION_WARMUP, args.duration()).await;
    let cpu_after = cpu_use(target, pids);
    SaturationRow::new(target.kind, workload, round, &outcome, cpu_after.since(cpu_before))
}

/// The CPU time used so far by the target's proxy, the mock and this process.
fn cpu_use(target: &Target, pids: Pids) -> CpuUse {
    CpuUse {
        proxy: (!target.pids.is_empty()).then(|| procfs::total_cpu_time(&target.pids)),
        mock: procfs::total_cpu_time(&[pids.mock]),
        client: procfs::total_cpu_time(&[pids.client]),
        backend: target.backend_pid.map(|pid| procfs::total_cpu_time(&[pid])),
    }
}

fn progress(message: std::fmt::Arguments<'_>) {
    eprintln!("loom-bench: {message}");
}

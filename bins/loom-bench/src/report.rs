//! The results: ratios, verdicts against the targets, and the table or JSON output.

use std::fmt::Write as _;
use std::time::Duration;

use serde::Serialize;

use crate::load::{Outcome, Workload};
use crate::overhead::OverheadSummary;
use crate::procfs::CpuTime;

/// Loom's throughput must be at least this fraction of nginx's.
pub const MIN_RATIO_VS_NGINX: f64 = 0.8;
/// Loom's p99 at the fixed rate must be under this many milliseconds.
pub const MAX_P99_MS: f64 = 1.0;
/// Loom's peak RSS must be under this many MiB.
pub const MAX_RSS_MIB: f64 = 50.0;
/// Loom with a key and limits in memory must reach this fraction of plain Loom's throughput.
pub const MIN_GUARD_RATIO: f64 = 0.95;
/// Loom with a key and limits on Redis must reach this fraction of plain Loom's throughput.
pub const MIN_REDIS_RATIO: f64 = 0.7;
/// Loom with the default security checks on, against plain Loom (issue 19).
pub const MIN_CHECKS_RATIO: f64 = 0.9;
/// Loom answering every request from its exact cache, against nginx in front of the
/// upstream (issue 20).
pub const MIN_CACHE_RATIO_VS_NGINX: f64 = 2.0;

/// Which server a run measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TargetKind {
    /// The mock upstream, no proxy.
    Direct,
    /// nginx `proxy_pass` in front of the mock.
    Nginx,
    /// The bare hyper proxy (`loom-bench bare-proxy`) in front of the mock.
    Hyper,
    /// Loom in front of the mock.
    Loom,
    /// Loom with a virtual key, a request limit and a token limit, in memory (`--guard`).
    Guard,
    /// The same with the limits on Redis (`--guard`); its CPU includes redis-server's.
    Redis,
    /// Loom with the default security checks on (`--checks`).
    Checks,
    /// Loom with the exact response cache on, every measured request a hit (`--cache`).
    Cache,
}

impl TargetKind {
    /// The target's name in reports.
    pub fn name(self) -> &'static str {
        match self {
            TargetKind::Direct => "direct",
            TargetKind::Nginx => "nginx",
            TargetKind::Hyper => "hyper",
            TargetKind::Loom => "loom",
            TargetKind::Guard => "guard",
            TargetKind::Redis => "redis",
            TargetKind::Checks => "checks",
            TargetKind::Cache => "cache",
        }
    }
}

/// One saturation run.
#[derive(Debug, Clone, Serialize)]
pub struct SaturationRow {
    /// The server measured.
    pub target: TargetKind,
    /// The request kind.
    pub workload: Workload,
    /// Which round (from 1) of `--rounds`.
    pub round: u32,
    /// Successful requests per second.
    pub rps: f64,
    /// Median latency, ms.
    pub p50_ms: f64,
    /// 99th percentile latency, ms.
    pub p99_ms: f64,
    /// Failed requests in the window.
    pub errors: u64,
    /// The first failure, if any.
    pub first_error: Option<String>,
    /// CPU time per request of the proxy (Loom, or nginx's master and workers), µs.
    pub proxy_cpu_us: Option<f64>,
    /// The part of `proxy_cpu_us` spent in user space (the rest is the kernel's), µs.
    pub proxy_user_cpu_us: Option<f64>,
    /// CPU time per request of the mock upstream, µs.
    pub mock_cpu_us: Option<f64>,
    /// CPU time per request of the load generator itself, µs.
    pub client_cpu_us: Option<f64>,
    /// The part of `proxy_cpu_us` spent by its state backend (redis-server), µs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backend_cpu_us: Option<f64>,
}

/// CPU time used by each process, so far or (with [`CpuUse::since`]) during one run.
#[derive(Debug, Clone, Copy, Default)]
pub struct CpuUse {
    /// The proxy under test; `None` for the direct target.
    pub proxy: Option<CpuTime>,
    /// The mock upstream.
    pub mock: CpuTime,
    /// The load generator.
    pub client: CpuTime,
    /// The proxy's state backend (redis-server), also counted in `proxy`.
    pub backend: Option<CpuTime>,
}

impl CpuUse {
    /// The CPU time used since `before`.
    pub fn since(self, before: CpuUse) -> CpuUse {
        CpuUse {
            proxy: self.proxy.zip(before.proxy).map(|(after, before)| after.since(before)),
            mock: self.mock.since(before.mock),
            client: self.client.since(before.client),
            backend: self.backend.zip(before.backend).map(|(after, before)| after.since(before)),
        }
    }
}

impl SaturationRow {
    /// The row for `outcome`, with `cpu` spread over every completed request.
    pub fn new(
        target: TargetKind,
        workload: Workload,
        round: u32,
        outcome: &Outcome,
        cpu: CpuUse,
    ) -> SaturationRow {
        let per_request = |time: Duration| {
            (outcome.completed > 0).then(|| time.as_secs_f64() * 1e6 / outcome.completed as f64)
        };
        SaturationRow {
            target,
            workload,
            round,
            rps: outcome.throughput(),
            p50_ms: outcome.latency_ms(0.5),
            p99_ms: outcome.latency_ms(0.99),
            errors: outcome.errors,
            first_error: outcome.first_error.clone(),
            proxy_cpu_us: cpu.proxy.and_then(|time| per_request(time.total())),
            proxy_user_cpu_us: cpu.proxy.and_then(|time| per_request(time.user)),
            mock_cpu_us: per_request(cpu.mock.total()),
            client_cpu_us: per_request(cpu.client.total()),
            backend_cpu_us: cpu.backend.and_then(|time| per_request(time.total())),
        }
    }
}

/// One fixed-rate run.
#[derive(Debug, Clone, Serialize)]
pub struct RateRow {
    /// The server measured.
    pub target: TargetKind,
    /// The request kind.
    pub workload: Workload,
    /// Requests scheduled per second.
    pub rate: u32,
    /// Requests answered in the window.
    pub ok: u64,
    /// Median latency from the scheduled send time, ms.
    pub p50_ms: f64,
    /// 99th percentile latency from the scheduled send time, ms.
    pub p99_ms: f64,
    /// Largest latency, ms.
    pub max_ms: f64,
    /// Failed requests in the window.
    pub errors: u64,
    /// The first failure, if any.
    pub first_error: Option<String>,
    /// Loom's own overhead in the run, from its `loom_ai_overhead_seconds` (Loom only).
    pub loom_overhead: Option<OverheadSummary>,
}

impl RateRow {
    /// The row for `outcome` at `rate` requests/s, with Loom's account of its overhead.
    pub fn new(
        target: TargetKind,
        workload: Workload,
        rate: u32,
        outcome: &Outcome,
        loom_overhead: Option<OverheadSummary>,
    ) -> RateRow {
        RateRow {
            target,
            workload,
            rate,
            ok: outcome.ok,
            p50_ms: outcome.latency_ms(0.5),
            p99_ms: outcome.latency_ms(0.99),
            max_ms: outcome.max_ms(),
            errors: outcome.errors,
            first_error: outcome.first_error.clone(),
            loom_overhead,
        }
    }
}

/// Loom's throughput relative to the baselines for one workload.
#[derive(Debug, Clone, Serialize)]
pub struct Ratio {
    /// The request kind.
    pub workload: Workload,
    /// Loom req/s divided by nginx req/s (`None` without nginx).
    pub loom_over_nginx: Option<f64>,
    /// Loom req/s divided by the mock's own req/s.
    pub loom_over_direct: Option<f64>,
    /// Loom req/s divided by the bare hyper proxy's req/s (`None` if it was skipped).
    pub loom_over_hyper: Option<f64>,
    /// nginx CPU per request divided by Loom CPU per request (above 1: Loom is leaner).
    pub cpu_nginx_over_loom: Option<f64>,
    /// Loom's CPU per request, µs (the median of the rounds).
    pub loom_cpu_us: Option<f64>,
    /// The bare hyper proxy's CPU per request, µs (the median of the rounds).
    pub hyper_cpu_us: Option<f64>,
    /// The CPU per request at which Loom would reach [`MIN_RATIO_VS_NGINX`] of nginx's
    /// throughput, µs (the median of the rounds; see [`cpu_budget_us`]).
    pub loom_cpu_budget_us: Option<f64>,
    /// Req/s of Loom with a key and limits in memory divided by plain Loom's (`--guard`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub guard_over_loom: Option<f64>,
    /// Req/s of Loom with a key and limits on Redis divided by plain Loom's (`--guard`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redis_over_loom: Option<f64>,
    /// Req/s of Loom with the security checks divided by plain Loom's (`--checks`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checks_over_loom: Option<f64>,
    /// Req/s of Loom answering from its cache divided by nginx's (`--cache`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache_over_nginx: Option<f64>,
    /// Req/s of Loom answering from its cache divided by plain Loom's (`--cache`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache_over_loom: Option<f64>,
    /// The CPU per request of nginx and the mock behind it divided by that of Loom
    /// answering from its cache (`--cache`): the servers' side of `cache_over_nginx`,
    /// without the load generator's share of the cores.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_nginx_and_mock_over_cache: Option<f64>,
}

/// Reads one ratio of a [`Ratio`].
type RatioOf = fn(&Ratio) -> Option<f64>;

/// The proxy CPU per request, µs, at which `loom`'s run would have reached `share` of
/// `nginx`'s throughput, if the run stays CPU-bound: the CPU the three processes used
/// per second in Loom's run, spread over the wanted requests, less what the mock and
/// the load generator spent per request in that run. (`None` without CPU figures.)
pub fn cpu_budget_us(loom: &SaturationRow, nginx: &SaturationRow, share: f64) -> Option<f64> {
    let others = loom.mock_cpu_us? + loom.client_cpu_us?;
    let busy_us_per_second = loom.rps * (loom.proxy_cpu_us? + others);
    let wanted_rps = share * nginx.rps;
    (wanted_rps > 0.0).then(|| busy_us_per_second / wanted_rps - others)
}

/// Loom's resident memory over the run.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Rss {
    /// After start-up, before any load, MiB.
    pub idle_mib: f64,
    /// The largest value sampled during the load, MiB.
    pub peak_mib: f64,
    /// After the last load, MiB.
    pub after_mib: f64,
}

/// One target of the issue, met or not.
#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    /// What is required, in words.
    pub target: String,
    /// What was measured, in words.
    pub measured: String,
    /// `None` when it could not be measured in this run.
    pub met: Option<bool>,
}

/// The machine the run was on.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    /// Online CPUs.
    pub cpus: usize,
    /// The CPU model from /proc/cpuinfo.
    pub cpu_model: String,
    /// The 1, 5 and 15 minute load averages when the run started (others' work included).
    pub loadavg_before: String,
    /// The load averages when the run ended.
    pub loadavg_after: String,
}

impl Machine {
    /// Describe this machine.
    pub fn detect() -> Machine {
        let cpus = std::thread::available_parallelism().map_or(1, usize::from);
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find_map(|line| line.strip_prefix("model name"))
            .and_then(|rest| rest.split_once(':'))
            .map_or_else(|| "unknown".to_owned(), |(_, model)| model.trim().to_owned());
        let loadavg = loadavg();
        Machine { cpus, cpu_model, loadavg_before: loadavg.clone(), loadavg_after: loadavg }
    }
}

/// The first three fields of /proc/loadavg, or `unknown`.
pub fn loadavg() -> String {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let fields: Vec<&str> = text.split_whitespace().take(3).collect();
    if fields.len() == 3 { fields.join(" ") } else { "unknown".to_owned() }
}

/// Everything one run measured.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Where it ran.
    pub machine: Machine,
    /// Connections of the saturation runs.
    pub concurrency: u32,
    /// Measured seconds of each saturation run.
    pub duration_secs: f64,
    /// Saturation rounds per workload.
    pub rounds: u32,
    /// Requests per second of the fixed-rate runs (0: none).
    pub rate: u32,
    /// Measured seconds of each fixed-rate run.
    pub rate_duration_secs: f64,
    /// Saturation runs, in the order they ran.
    pub saturation: Vec<SaturationRow>,
    /// Fixed-rate runs, in the order they ran.
    pub fixed_rate: Vec<RateRow>,
    /// Loom's throughput ratios per workload.
    pub ratios: Vec<Ratio>,
    /// Loom's memory.
    pub loom_rss: Rss,
    /// The targets, met or not.
    pub verdicts: Vec<Verdict>,
    /// What was not measured, and why.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

impl Report {
    /// Compute ratios and verdicts from the measured rows.
    pub fn new(
        machine: Machine,
        args: &crate::cli::BenchArgs,
        saturation: Vec<SaturationRow>,
        fixed_rate: Vec<RateRow>,
        loom_rss: Rss,
    ) -> Report {
        let workloads: Vec<Workload> = <Workload as clap::ValueEnum>::value_variants()
            .iter()
            .copied()
            .filter(|workload| saturation.iter().any(|row| row.workload == *workload))
            .collect();
        let find = |target, workload, round| {
            saturation.iter().find(|row: &&SaturationRow| {
                row.target == target && row.workload == workload && row.round == round
            })
        };
        let rps = |target, workload, round| find(target, workload, round).map(|row| row.rps);
        let cpu = |target, workload, round| find(target, workload, round).and_then(|row| row.proxy_cpu_us);
        let rounds: Vec<u32> = {
            let mut rounds: Vec<u32> = saturation.iter().map(|row| row.round).collect();
            rounds.sort_unstable();
            rounds.dedup();
            rounds
        };
        // The median over the rounds of each round's ratio: the targets of one round ran
        // minutes apart, so their ratio is what the machine's changing load spoils least.
        let median_over_rounds =
            |per_round: &dyn Fn(u32) -> Option<f64>| median(rounds.iter().filter_map(|&r| per_round(r)));
        let ratios: Vec<Ratio> = workloads
            .iter()
            .map(|&workload| {
                let over = |other| {
                    median_over_rounds(&|round| {
                        ratio(rps(TargetKind::Loom, workload, round), rps(other, workload, round))
                    })
                };
                Ratio {
                    workload,
                    loom_over_nginx: over(TargetKind::Nginx),
                    loom_over_direct: over(TargetKind::Direct),
                    loom_over_hyper: over(TargetKind::Hyper),
                    cpu_nginx_over_loom: median_over_rounds(&|round| {
                        ratio(cpu(TargetKind::Nginx, workload, round), cpu(TargetKind::Loom, workload, round))
                    }),
                    loom_cpu_us: median_over_rounds(&|round| cpu(TargetKind::Loom, workload, round)),
                    hyper_cpu_us: median_over_rounds(&|round| cpu(TargetKind::Hyper, workload, round)),
                    loom_cpu_budget_us: median_over_rounds(&|round| {
                        let loom = find(TargetKind::Loom, workload, round)?;
                        cpu_budget_us(loom, find(TargetKind::Nginx, workload, round)?, MIN_RATIO_VS_NGINX)
                    }),
                    guard_over_loom: median_over_rounds(&|round| {
                        ratio(rps(TargetKind::Guard, workload, round), rps(TargetKind::Loom, workload, round))
                    }),
                    redis_over_loom: median_over_rounds(&|round| {
                        ratio(rps(TargetKind::Redis, workload, round), rps(TargetKind::Loom, workload, round))
                    }),
                    checks_over_loom: median_over_rounds(&|round| {
                        ratio(
                            rps(TargetKind::Checks, workload, round),
                            rps(TargetKind::Loom, workload, round),
                        )
                    }),
                    cache_over_nginx: median_over_rounds(&|round| {
                        ratio(
                            rps(TargetKind::Cache, workload, round),
                            rps(TargetKind::Nginx, workload, round),
                        )
                    }),
                    cache_over_loom: median_over_rounds(&|round| {
                        ratio(rps(TargetKind::Cache, workload, round), rps(TargetKind::Loom, workload, round))
                    }),
                    cpu_nginx_and_mock_over_cache: median_over_rounds(&|round| {
                        let nginx = find(TargetKind::Nginx, workload, round)?;
                        let proxying = nginx.proxy_cpu_us? + nginx.mock_cpu_us?;
                        ratio(Some(proxying), cpu(TargetKind::Cache, workload, round))
                    }),
                }
            })
            .collect();
        let mut verdicts = Vec::new();
        for ratio in &ratios {
            verdicts.push(Verdict {
                target: format!("{} throughput >= {MIN_RATIO_VS_NGINX:.1}x nginx", ratio.workload.name()),
                measured: format_ratio(ratio.loom_over_nginx),
                met: ratio.loom_over_nginx.map(|r| r >= MIN_RATIO_VS_NGINX),
            });
        }
        let guarded = |target: TargetKind| saturation.iter().any(|row| row.target == target);
        let guard_targets: [(TargetKind, &str, f64, RatioOf); 3] = [
            (TargetKind::Guard, "guard (memory)", MIN_GUARD_RATIO, |ratio| ratio.guard_over_loom),
            (TargetKind::Redis, "guard (Redis)", MIN_REDIS_RATIO, |ratio| ratio.redis_over_loom),
            (TargetKind::Checks, "checks", MIN_CHECKS_RATIO, |ratio| ratio.checks_over_loom),
        ];
        for (kind, name, minimum, measured) in guard_targets {
            if !guarded(kind) {
                continue;
            }
            for ratio in &ratios {
                verdicts.push(Verdict {
                    target: format!("{} {name} >= {minimum:.2}x loom", ratio.workload.name()),
                    measured: format_ratio(measured(ratio)),
                    met: measured(ratio).map(|r| r >= minimum),
                });
            }
        }
        if guarded(TargetKind::Cache) {
            for ratio in &ratios {
                verdicts.push(Verdict {
                    target: format!(
                        "{} cache hits >= {MIN_CACHE_RATIO_VS_NGINX:.1}x nginx",
                        ratio.workload.name()
                    ),
                    measured: format_ratio(ratio.cache_over_nginx),
                    met: ratio.cache_over_nginx.map(|r| r >= MIN_CACHE_RATIO_VS_NGINX),
                });
            }
        }
        for row in fixed_rate.iter().filter(|row| row.target == TargetKind::Loom) {
            verdicts.push(Verdict {
                target: format!("{} p99 < {MAX_P99_MS} ms at {} req/s", row.workload.name(), row.rate),
                measured: format!("{:.3} ms", row.p99_ms),
                met: Some(row.p99_ms < MAX_P99_MS && row.errors == 0),
            });
        }
        verdicts.push(Verdict {
            target: format!("peak RSS < {MAX_RSS_MIB} MiB"),
            measured: format!("{:.1} MiB", loom_rss.peak_mib),
            met: (loom_rss.peak_mib > 0.0).then_some(loom_rss.peak_mib < MAX_RSS_MIB),
        });
        Report {
            machine,
            concurrency: args.concurrency,
            duration_secs: args.duration,
            rounds: args.rounds,
            rate: args.rate,
            rate_duration_secs: args.rate_duration,
            saturation,
            fixed_rate,
            ratios,
            loom_rss,
            verdicts,
            notes: Vec::new(),
        }
    }

    /// The report as a human-readable table.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let fixed_rate = if self.rate == 0 {
            "off".to_owned()
        } else {
            format!("{} req/s, {} s", self.rate, self.rate_duration_secs)
        };
        let _ = writeln!(
            out,
            "loom-bench on {} CPUs ({}); saturation: {} connections, {} s; fixed rate: {fixed_rate}",
            self.machine.cpus, self.machine.cpu_model, self.concurrency, self.duration_secs,
        );
        let _ = writeln!(
            out,
            "load average before {}, after {}",
            self.machine.loadavg_before, self.machine.loadavg_after
        );
        let _ = writeln!(out);
        let _ = writeln!(out, "Saturation (closed loop)");
        // A round column only when there are rounds to tell apart.
        let round = |round: &dyn std::fmt::Display| {
            if self.rounds > 1 { format!("{round:>5} ") } else { String::new() }
        };
        let _ = writeln!(
            out,
            "{}{:<8} {:<8} {:>10} {:>9} {:>9} {:>8}   {:>10} {:>10} {:>10} {:>10}",
            round(&"round"),
            "target",
            "workload",
            "req/s",
            "p50 ms",
            "p99 ms",
            "errors",
            "proxy CPU",
            "proxy user",
            "mock CPU",
            "client CPU"
        );
        for row in &self.saturation {
            let _ = writeln!(
                out,
                "{}{:<8} {:<8} {:>10.0} {:>9.3} {:>9.3} {:>8}   {:>10} {:>10} {:>10} {:>10}",
                round(&row.round),
                row.target.name(),
                row.workload.name(),
                row.rps,
                row.p50_ms,
                row.p99_ms,
                row.errors,
                format_micros(row.proxy_cpu_us),
                format_micros(row.proxy_user_cpu_us),
                format_micros(row.mock_cpu_us),
                format_micros(row.client_cpu_us),
            );
        }
        let _ = writeln!(
            out,
            "(CPU: time per request, warm-up included, of each process; proxy user: the part of the proxy's in user space, the rest is the kernel's)"
        );
        if self.saturation.iter().any(|row| matches!(row.target, TargetKind::Guard | TargetKind::Redis)) {
            let _ = writeln!(
                out,
                "(guard: Loom with a virtual key, a request limit and a token limit, in memory; redis: the same on Redis, whose CPU counts as the proxy's)"
            );
        }
        if self.saturation.iter().any(|row| row.target == TargetKind::Checks) {
            let _ = writeln!(
                out,
                "(checks: Loom with the default security checks on: prompt-injection detection on every request)"
            );
        }
        if self.saturation.iter().any(|row| row.target == TargetKind::Cache) {
            let _ = writeln!(
                out,
                "(cache: Loom with the exact response cache on: every request the same, each after the first a hit answered from memory)"
            );
        }
        let backend: Vec<String> = self
            .saturation
            .iter()
            .filter_map(|row| {
                let cpu = row.backend_cpu_us?;
                let round = if self.rounds > 1 { format!(" {}", row.round) } else { String::new() };
                Some(format!("{}{round} {}", row.workload.name(), format_micros(Some(cpu))))
            })
            .collect();
        if !backend.is_empty() {
            let _ = writeln!(out, "(redis-server's part of redis's proxy CPU: {})", backend.join(", "));
        }
        if !self.fixed_rate.is_empty() {
            let _ = writeln!(out);
            let _ = writeln!(out, "Fixed rate (open loop, latency from the scheduled send time)");
            let _ = writeln!(
                out,
                "{:<8} {:<8} {:>7} {:>8} {:>9} {:>9} {:>9} {:>8}",
                "target", "workload", "req/s", "answered", "p50 ms", "p99 ms", "max ms", "errors"
            );
            for row in &self.fixed_rate {
                let _ = writeln!(
                    out,
                    "{:<8} {:<8} {:>7} {:>8} {:>9.3} {:>9.3} {:>9.3} {:>8}",
                    row.target.name(),
                    row.workload.name(),
                    row.rate,
                    row.ok,
                    row.p50_ms,
                    row.p99_ms,
                    row.max_ms,
                    row.errors
                );
            }
        }
        for row in &self.fixed_rate {
            if let Some(overhead) = &row.loom_overhead {
                let bound = |micros: Option<f64>| {
                    micros.map_or("above 1 s".to_owned(), |us| format!("<= {us:.0} µs"))
                };
                let which = match row.target {
                    TargetKind::Loom => String::new(),
                    other => format!(" ({})", other.name()),
                };
                let _ = writeln!(
                    out,
                    "Loom's own overhead{which}, {} at {} req/s (its loom_ai_overhead_seconds, {} requests): mean {:.1} µs, p50 {}, p99 {}",
                    row.workload.name(),
                    row.rate,
                    overhead.requests,
                    overhead.mean_us,
                    bound(overhead.p50_at_most_us),
                    bound(overhead.p99_at_most_us)
                );
            }
        }
        let _ = writeln!(out);
        if self.rounds > 1 {
            let _ =
                writeln!(out, "Ratios (saturation req/s; the median of the {} rounds' ratios)", self.rounds);
        } else {
            let _ = writeln!(out, "Ratios (saturation req/s)");
        }
        for ratio in &self.ratios {
            let _ = writeln!(
                out,
                "{:<8} loom/nginx {:>6}   loom/direct {:>6}   loom/hyper {:>6}   CPU per request nginx/loom {:>6}",
                ratio.workload.name(),
                format_ratio(ratio.loom_over_nginx),
                format_ratio(ratio.loom_over_direct),
                format_ratio(ratio.loom_over_hyper),
                format_ratio(ratio.cpu_nginx_over_loom)
            );
        }
        for ratio in &self.ratios {
            if ratio.guard_over_loom.is_some() || ratio.redis_over_loom.is_some() {
                let _ = writeln!(
                    out,
                    "{:<8} guard/loom {:>6}   redis/loom {:>6}",
                    ratio.workload.name(),
                    format_ratio(ratio.guard_over_loom),
                    format_ratio(ratio.redis_over_loom)
                );
            }
        }
        for ratio in &self.ratios {
            if let Some(checks) = ratio.checks_over_loom {
                let _ = writeln!(
                    out,
                    "{:<8} checks/loom {:>6}",
                    ratio.workload.name(),
                    format_ratio(Some(checks))
                );
            }
        }
        for ratio in &self.ratios {
            if ratio.cache_over_nginx.is_some() || ratio.cache_over_loom.is_some() {
                let _ = writeln!(
                    out,
                    "{:<8} cache/nginx {:>6}   cache/loom {:>6}   CPU per request (nginx + mock)/cache {:>6}",
                    ratio.workload.name(),
                    format_ratio(ratio.cache_over_nginx),
                    format_ratio(ratio.cache_over_loom),
                    format_ratio(ratio.cpu_nginx_and_mock_over_cache)
                );
            }
        }
        for ratio in &self.ratios {
            if let Some(budget) = ratio.loom_cpu_budget_us {
                let _ = writeln!(
                    out,
                    "{:<8} {MIN_RATIO_VS_NGINX:.1}x nginx needs Loom at {} CPU per request or less (Loom {}, bare hyper proxy {}; \
                     the mock's and generator's CPU per request as in Loom's run)",
                    ratio.workload.name(),
                    format_micros(Some(budget)),
                    format_micros(ratio.loom_cpu_us),
                    format_micros(ratio.hyper_cpu_us),
                );
            }
        }
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "Loom RSS: idle {:.1} MiB, peak {:.1} MiB, after {:.1} MiB",
            self.loom_rss.idle_mib, self.loom_rss.peak_mib, self.loom_rss.after_mib
        );
        let _ = writeln!(out);
        let _ = writeln!(out, "Targets");
        for verdict in &self.verdicts {
            let mark = match verdict.met {
                Some(true) => "MET ",
                Some(false) => "MISS",
                None => "n/a ",
            };
            let _ = writeln!(out, "  [{mark}] {:<38} measured {}", verdict.target, verdict.measured);
        }
        for (target, workload, error) in self.errors() {
            let _ = writeln!(out, "note: {target} {workload}: first error: {error}");
        }
        for note in &self.notes {
            let _ = writeln!(out, "note: {note}");
        }
        out
    }

    fn errors(&self) -> Vec<(&'static str, &'static str, &str)> {
        let saturation = self.saturation.iter().filter_map(|row| {
            row.first_error.as_deref().map(|error| (row.target.name(), row.workload.name(), error))
        });
        let rate = self.fixed_rate.iter().filter_map(|row| {
            row.first_error.as_deref().map(|error| (row.target.name(), row.workload.name(), error))
        });
        saturation.chain(rate).collect()
    }
}

/// The median of `values` (the mean of the middle two for an even count), `None` if empty.
pub fn median(values: impl Iterator<Item = f64>) -> Option<f64> {
    let mut values: Vec<f64> = values.collect();
    values.sort_by(f64::total_cmp);
    let middle = values.len() / 2;
    match values.len() {
        0 => None,
        len if len % 2 == 1 => Some(values[middle]),
        _ => Some((values[middle - 1] + values[middle]) / 2.0),
    }
}

/// `numerator / denominator` when both are known and the denominator is positive.
pub fn ratio(numerator: Option<f64>, denominator: Option<f64>) -> Option<f64> {
    match (numerator, denominator) {
        (Some(n), Some(d)) if d > 0.0 => Some(n / d),
        _ => None,
    }
}

/// A per-request CPU time as `12.3 µs`, or `-` when unknown.
pub fn format_micros(micros: Option<f64>) -> String {
    micros.map_or_else(|| "-".to_owned(), |us| format!("{us:.1} µs"))
}

/// A ratio as `0.83x`, or `-` when unknown.
pub fn format_ratio(ratio: Option<f64>) -> String {
    ratio.map_or_else(|| "-".to_owned(), |r| format!("{r:.2}x"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(target: TargetKind, workload: Workload, rps: f64) -> SaturationRow {
        SaturationRow {
            target,
            workload,
            round: 1,
            rps,
            p50_ms: 1.0,
            p99_ms: 2.0,
            errors: 0,
            first_error: None,
            proxy_cpu_us: (target != TargetKind::Direct).then_some(rps),
            proxy_user_cpu_us: None,
            mock_cpu_us: None,
            client_cpu_us: None,
            backend_cpu_us: None,
        }
    }

    fn args() -> crate::cli::BenchArgs {
        use clap::Parser;
        crate::cli::Cli::parse_from(["loom-bench"]).bench
    }

    fn machine() -> Machine {
        Machine {
            cpus: 2,
            cpu_model: "test".to_owned(),
            loadavg_before: "0.00 0.00 0.00".to_owned(),
            loadavg_after: "0.00 0.00 0.00".to_owned(),
        }
    }

    #[test]
    fn formats_ratios() {
        assert_eq!(format_ratio(Some(0.8349)), "0.83x");
        assert_eq!(format_ratio(Some(1.0)), "1.00x");
        assert_eq!(format_ratio(None), "-");
        assert_eq!(format_micros(Some(12.345)), "12.3 µs");
        assert_eq!(ratio(Some(1.0), Some(0.0)), None);
        assert_eq!(ratio(Some(1.0), None), None);
        assert_eq!(ratio(Some(3.0), Some(4.0)), Some(0.75));
    }

    #[test]
    fn proxy_cpu_is_split_into_user_space_and_the_kernel() {
        let outcome = Outcome {
            latency_us: hdrhistogram::Histogram::new(3).unwrap(),
            ok: 0,
            completed: 1_000,
            errors: 0,
            first_error: None,
            window: Duration::from_secs(1),
        };
        let proxy = CpuTime { user: Duration::from_millis(30), system: Duration::from_millis(20) };
        let mock = CpuTime { user: Duration::from_millis(10), system: Duration::ZERO };
        let cpu = CpuUse { proxy: Some(proxy), mock, client: CpuTime::default(), backend: None };
        let row = SaturationRow::new(TargetKind::Loom, Workload::Whole, 1, &outcome, cpu);
        assert_eq!(
            (row.proxy_cpu_us, row.proxy_user_cpu_us, row.mock_cpu_us),
            (Some(50.0), Some(30.0), Some(10.0))
        );
        let report = Report::new(machine(), &args(), vec![row], Vec::new(), Rss::default());
        let table = report.table();
        assert!(table.contains("   50.0 µs    30.0 µs    10.0 µs"), "{table}");
        assert!(table.contains("proxy user"), "{table}");
    }

    #[test]
    fn verdicts_compare_loom_with_nginx_per_workload() {
        let saturation = vec![
            row(TargetKind::Direct, Workload::Whole, 100.0),
            row(TargetKind::Nginx, Workload::Whole, 50.0),
            row(TargetKind::Hyper, Workload::Whole, 60.0),
            row(TargetKind::Loom, Workload::Whole, 45.0),
            row(TargetKind::Direct, Workload::Stream, 100.0),
            row(TargetKind::Nginx, Workload::Stream, 50.0),
            row(TargetKind::Loom, Workload::Stream, 30.0),
        ];
        let rss = Rss { idle_mib: 5.0, peak_mib: 20.0, after_mib: 10.0 };
        let report = Report::new(machine(), &args(), saturation, Vec::new(), rss);
        assert_eq!(report.ratios[0].loom_over_nginx, Some(0.9));
        assert_eq!(report.ratios[0].loom_over_direct, Some(0.45));
        assert_eq!(report.ratios[0].loom_over_hyper, Some(0.75));
        assert_eq!(report.ratios[1].loom_over_hyper, None, "no hyper row for streams");
        let met: Vec<Option<bool>> = report.verdicts.iter().map(|v| v.met).collect();
        assert_eq!(met, [Some(true), Some(false), Some(true)]);
        let table = report.table();
        assert_eq!(report.ratios[1].cpu_nginx_over_loom, Some(50.0 / 30.0));
        assert!(
            table.contains("whole    loom/nginx  0.90x   loom/direct  0.45x   loom/hyper  0.75x"),
            "{table}"
        );
        assert!(table.contains("hyper    whole            60"), "{table}");
        assert!(table.contains("[MISS] stream throughput >= 0.8x nginx"), "{table}");
    }

    #[test]
    fn with_rounds_the_ratio_is_the_median_of_the_rounds_ratios() {
        let in_round = |round, target, rps| SaturationRow { round, ..row(target, Workload::Whole, rps) };
        let saturation = vec![
            // Round 2 had a slow nginx minute: 1.5x alone, the median is still 0.8x.
            in_round(1, TargetKind::Nginx, 50.0),
            in_round(1, TargetKind::Loom, 35.0),
            in_round(2, TargetKind::Nginx, 20.0),
            in_round(2, TargetKind::Loom, 30.0),
            in_round(3, TargetKind::Nginx, 50.0),
            in_round(3, TargetKind::Loom, 40.0),
        ];
        let mut args = args();
        args.rounds = 3;
        let report = Report::new(machine(), &args, saturation, Vec::new(), Rss::default());
        assert_eq!(report.ratios[0].loom_over_nginx, Some(0.8));
        assert_eq!(report.verdicts[0].met, Some(true));
        let table = report.table();
        assert!(table.contains("    2 nginx    whole            20"), "{table}");
        assert!(table.contains("the median of the 3 rounds' ratios"), "{table}");
        assert_eq!(median([1.0, 4.0, 2.0, 3.0].into_iter()), Some(2.5));
        assert_eq!(median(std::iter::empty()), None);
    }

    #[test]
    fn the_cpu_budget_is_what_reaches_the_wanted_share_of_nginx() {
        let with_cpu = |target, rps, proxy: f64| SaturationRow {
            proxy_cpu_us: Some(proxy),
            mock_cpu_us: Some(20.0),
            client_cpu_us: Some(30.0),
            ..row(target, Workload::Whole, rps)
        };
        // Loom's run: 10 000 req/s x (50 + 20 + 30) µs = 1 s of CPU per second. At 0.8 x
        // 25 000 req/s that second buys 50 µs per request, 20 + 30 of it the others'.
        let (loom, nginx) =
            (with_cpu(TargetKind::Loom, 10_000.0, 50.0), with_cpu(TargetKind::Nginx, 25_000.0, 10.0));
        assert_eq!(cpu_budget_us(&loom, &nginx, 0.8), Some(0.0));
        let nginx = with_cpu(TargetKind::Nginx, 12_500.0, 10.0);
        assert_eq!(
            cpu_budget_us(&loom, &nginx, 0.8),
            Some(50.0),
            "at 0.8x already: the budget is what it uses"
        );
        assert_eq!(cpu_budget_us(&row(TargetKind::Loom, Workload::Whole, 1.0), &nginx, 0.8), None);

        let saturation = vec![loom, nginx, with_cpu(TargetKind::Hyper, 11_000.0, 40.0)];
        let report = Report::new(machine(), &args(), saturation, Vec::new(), Rss::default());
        let ratio = &report.ratios[0];
        assert_eq!(
            (ratio.loom_cpu_budget_us, ratio.loom_cpu_us, ratio.hyper_cpu_us),
            (Some(50.0), Some(50.0), Some(40.0))
        );
        let table = report.table();
        assert!(
            table.contains("whole    0.8x nginx needs Loom at 50.0 µs CPU per request or less (Loom 50.0 µs, bare hyper proxy 40.0 µs;"),
            "{table}"
        );
    }

    #[test]
    fn guarded_looms_are_compared_with_plain_loom() {
        let saturation = vec![
            row(TargetKind::Loom, Workload::Whole, 100.0),
            row(TargetKind::Guard, Workload::Whole, 96.0),
            SaturationRow { backend_cpu_us: Some(20.0), ..row(TargetKind::Redis, Workload::Whole, 60.0) },
        ];
        let report = Report::new(machine(), &args(), saturation, Vec::new(), Rss::default());
        assert_eq!(report.ratios[0].guard_over_loom, Some(0.96));
        assert_eq!(report.ratios[0].redis_over_loom, Some(0.6));
        let guard: Vec<(&str, &str, Option<bool>)> = report
            .verdicts
            .iter()
            .filter(|verdict| verdict.target.contains("guard"))
            .map(|verdict| (verdict.target.as_str(), verdict.measured.as_str(), verdict.met))
            .collect();
        assert_eq!(
            guard,
            [
                ("whole guard (memory) >= 0.95x loom", "0.96x", Some(true)),
                ("whole guard (Redis) >= 0.70x loom", "0.60x", Some(false)),
            ]
        );
        let table = report.table();
        assert!(table.contains("whole    guard/loom  0.96x   redis/loom  0.60x"), "{table}");
        assert!(table.contains("guard    whole            96"), "{table}");
        assert!(table.contains("(guard: Loom with a virtual key"), "{table}");
        assert!(table.contains("(redis-server's part of redis's proxy CPU: whole 20.0 µs)"), "{table}");
    }

    #[test]
    fn the_checked_loom_is_compared_with_plain_loom() {
        let saturation = vec![
            row(TargetKind::Loom, Workload::Whole, 100.0),
            row(TargetKind::Checks, Workload::Whole, 88.0),
        ];
        let report = Report::new(machine(), &args(), saturation, Vec::new(), Rss::default());
        assert_eq!(report.ratios[0].checks_over_loom, Some(0.88));
        assert_eq!((report.ratios[0].guard_over_loom, report.ratios[0].redis_over_loom), (None, None));
        let checks: Vec<(&str, &str, Option<bool>)> = report
            .verdicts
            .iter()
            .filter(|verdict| verdict.target.contains("checks"))
            .map(|verdict| (verdict.target.as_str(), verdict.measured.as_str(), verdict.met))
            .collect();
        assert_eq!(checks, [("whole checks >= 0.90x loom", "0.88x", Some(false))]);
        let table = report.table();
        assert!(table.contains("whole    checks/loom  0.88x"), "{table}");
        assert!(table.contains("(checks: Loom with the default security checks on"), "{table}");
        assert!(!table.contains("guard/loom"), "{table}");
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["ratios"][0]["checks_over_loom"], 0.88);
    }

    #[test]
    fn cache_hits_are_compared_with_nginx_and_plain_loom() {
        let saturation = vec![
            // nginx 10 µs and the mock 5 µs per request; a hit 5 µs, no mock.
            SaturationRow {
                proxy_cpu_us: Some(10.0),
                mock_cpu_us: Some(5.0),
                ..row(TargetKind::Nginx, Workload::Whole, 100.0)
            },
            row(TargetKind::Loom, Workload::Whole, 80.0),
            SaturationRow { proxy_cpu_us: Some(5.0), ..row(TargetKind::Cache, Workload::Whole, 240.0) },
            row(TargetKind::Nginx, Workload::Stream, 100.0),
            row(TargetKind::Loom, Workload::Stream, 90.0),
            row(TargetKind::Cache, Workload::Stream, 180.0),
        ];
        let report = Report::new(machine(), &args(), saturation, Vec::new(), Rss::default());
        assert_eq!(
            (report.ratios[0].cache_over_nginx, report.ratios[0].cache_over_loom),
            (Some(2.4), Some(3.0))
        );
        assert_eq!(
            (report.ratios[1].cache_over_nginx, report.ratios[1].cache_over_loom),
            (Some(1.8), Some(2.0))
        );
        assert_eq!(report.ratios[0].cpu_nginx_and_mock_over_cache, Some(3.0));
        assert_eq!(report.ratios[1].cpu_nginx_and_mock_over_cache, None, "no mock CPU for streams");
        let cache: Vec<(&str, &str, Option<bool>)> = report
            .verdicts
            .iter()
            .filter(|verdict| verdict.target.contains("cache"))
            .map(|verdict| (verdict.target.as_str(), verdict.measured.as_str(), verdict.met))
            .collect();
        assert_eq!(
            cache,
            [
                ("whole cache hits >= 2.0x nginx", "2.40x", Some(true)),
                ("stream cache hits >= 2.0x nginx", "1.80x", Some(false)),
            ]
        );
        let table = report.table();
        assert!(
            table.contains(
                "whole    cache/nginx  2.40x   cache/loom  3.00x   CPU per request (nginx + mock)/cache  3.00x"
            ),
            "{table}"
        );
        assert!(table.contains("stream   cache/nginx  1.80x   cache/loom  2.00x"), "{table}");
        assert!(table.contains("cache    whole           240"), "{table}");
        assert!(table.contains("(cache: Loom with the exact response cache on"), "{table}");
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["ratios"][0]["cache_over_nginx"], 2.4);
    }

    #[test]
    fn without_guard_the_report_and_its_json_are_unchanged() {
        let saturation = vec![row(TargetKind::Loom, Workload::Whole, 100.0)];
        let report = Report::new(machine(), &args(), saturation, Vec::new(), Rss::default());
        assert!(!report.verdicts.iter().any(|verdict| verdict.target.contains("guard")));
        let table = report.table();
        assert!(!table.contains("guard") && !table.contains("redis"), "{table}");
        let json = serde_json::to_value(&report).unwrap();
        assert!(json.get("notes").is_none());
        assert!(json["ratios"][0].get("guard_over_loom").is_none(), "{json}");
        assert!(json["ratios"][0].get("redis_over_loom").is_none(), "{json}");
        assert!(json["ratios"][0].get("cache_over_nginx").is_none(), "{json}");
        assert!(!table.contains("cache"), "{table}");
        assert!(json["saturation"][0].get("backend_cpu_us").is_none(), "{json}");
    }

    #[test]
    fn notes_say_what_was_not_measured() {
        let mut report = Report::new(machine(), &args(), Vec::new(), Vec::new(), Rss::default());
        report.notes.push("redis-server not found".to_owned());
        assert!(report.table().contains("note: redis-server not found\n"));
    }

    #[test]
    fn without_nginx_the_ratio_verdict_is_unknown() {
        let saturation = vec![
            row(TargetKind::Direct, Workload::Whole, 100.0),
            row(TargetKind::Loom, Workload::Whole, 45.0),
        ];
        let report = Report::new(machine(), &args(), saturation, Vec::new(), Rss::default());
        assert_eq!(report.ratios.len(), 1);
        assert_eq!(report.verdicts[0].met, None);
        assert_eq!(report.verdicts[1].met, None, "no RSS sample means no RSS verdict");
        assert!(report.table().contains("loom/nginx      -"));
    }
}

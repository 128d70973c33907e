//! Process figures from /proc: resident memory and CPU time.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

/// The resident set size of process `pid` in bytes (`VmRSS` of `/proc/PID/status`).
pub fn rss_bytes(pid: u32) -> io::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    parse_vm_rss(&status).ok_or_else(|| io::Error::other(format!("no VmRSS line for pid {pid}")))
}

fn parse_vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find_map(|line| line.strip_prefix("VmRSS:"))?;
    let kib: u64 = line.trim().strip_suffix("kB")?.trim().parse().ok()?;
    Some(kib * 1024)
}

/// Samples a process's RSS every few milliseconds on a thread and keeps the maximum.
#[derive(Debug)]
pub struct RssSampler {
    max: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl RssSampler {
    /// Start sampling `pid` every `period`.
    pub fn start(pid: u32, period: Duration) -> RssSampler {
        let max = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (max, stop) = (max.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    if let Ok(rss) = rss_bytes(pid) {
                        max.fetch_max(rss, Ordering::Relaxed);
                    }
                    std::thread::sleep(period);
                }
            })
        };
        RssSampler { max, stop, thread: Some(thread) }
    }

    /// The largest RSS seen so far, in bytes.
    pub fn max(&self) -> u64 {
        self.max.load(Ordering::Relaxed)
    }
}

impl Drop for RssSampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// CPU time a process has used so far (all threads), in user space and in the kernel.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CpuTime {
    /// Time in user space.
    pub user: Duration,
    /// Time in the kernel on the process's behalf (system calls, the network stack).
    pub system: Duration,
}

impl CpuTime {
    /// User plus system time.
    pub fn total(self) -> Duration {
        self.user + self.system
    }

    /// The time used since `before`.
    pub fn since(self, before: CpuTime) -> CpuTime {
        CpuTime {
            user: self.user.saturating_sub(before.user),
            system: self.system.saturating_sub(before.system),
        }
    }
}

impl std::iter::Sum for CpuTime {
    fn sum<I: Iterator<Item = CpuTime>>(times: I) -> CpuTime {
        times.fold(CpuTime::default(), |sum, time| CpuTime {
            user: sum.user + time.user,
            system: sum.system + time.system,
        })
    }
}

/// CPU time that process `pid` has used so far.
pub fn cpu_time(pid: u32) -> io::Result<CpuTime> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let (user, system) =
        parse_cpu_ticks(&stat).ok_or_else(|| io::Error::other(format!("bad /proc/{pid}/stat")))?;
    // SAFETY: sysconf(3) only reads a system constant.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let per_second = u64::try_from(per_second).ok().filter(|&hz| hz > 0).unwrap_or(100) as f64;
    let time = |ticks: u64| Duration::from_secs_f64(ticks as f64 / per_second);
    Ok(CpuTime { user: time(user), system: time(system) })
}

/// The CPU time of all of `pids` together (processes that are gone count as zero).
pub fn total_cpu_time(pids: &[u32]) -> CpuTime {
    pids.iter().filter_map(|&pid| cpu_time(pid).ok()).sum()
}

/// `(utime, stime)` in clock ticks from the text of `/proc/PID/stat`.
fn parse_cpu_ticks(stat: &str) -> Option<(u64, u64)> {
    // The command name (field 2) may contain spaces and parentheses; it ends at the last ')'.
    let (_, rest) = stat.rsplit_once(')')?;
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((utime, stime))
}

/// The direct children of process `pid` (e.g. nginx's workers).
pub fn children(pid: u32) -> io::Result<Vec<u32>> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))?;
    Ok(text.split_whitespace().filter_map(|child| child.parse().ok()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_vm_rss() {
        let status = "Name:\tloom\nVmPeak:\t  100 kB\nVmRSS:\t   12345 kB\nThreads:\t3\n";
        assert_eq!(parse_vm_rss(status), Some(12345 * 1024));
        assert_eq!(parse_vm_rss("Name:\tloom\n"), None);
    }

    #[test]
    fn reads_our_own_rss() {
        assert!(rss_bytes(std::process::id()).unwrap() > 0);
    }

    #[test]
    fn parses_cpu_ticks_after_the_command_name() {
        let stat = "5003 (a (b) c) R 4999 4999 31209 0 -1 4194304 99 0 0 0 7 3 0 0 20 0 1 0 189000";
        assert_eq!(parse_cpu_ticks(stat), Some((7, 3)));
        assert_eq!(parse_cpu_ticks("garbage"), None);
    }

    #[test]
    fn times_add_up_and_subtract_per_kind() {
        let ms = Duration::from_millis;
        let (a, b) = (CpuTime { user: ms(30), system: ms(10) }, CpuTime { user: ms(5), system: ms(20) });
        assert_eq!([a, b].into_iter().sum::<CpuTime>(), CpuTime { user: ms(35), system: ms(30) });
        assert_eq!(a.since(b), CpuTime { user: ms(25), system: Duration::ZERO });
        assert_eq!(a.total(), ms(40));
    }

    #[test]
    fn reads_our_own_cpu_time() {
        // Spin in user space until a clock tick of it shows: on a loaded machine a fixed
        // wall-clock spin may be descheduled for all of it.
        let started = std::time::Instant::now();
        while cpu_time(std::process::id()).unwrap().user == Duration::ZERO {
            assert!(started.elapsed() < Duration::from_secs(30), "no user CPU time after 30 s of spinning");
        }
    }
}

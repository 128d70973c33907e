//! Child processes that die with the benchmark: spawning, readiness, and cleanup.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

/// How long a child gets to exit after SIGTERM before it is SIGKILLed.
const TERM_GRACE: Duration = Duration::from_secs(3);

/// A running child process, in a process group of its own, that is stopped on drop.
///
/// Drop sends SIGTERM to the whole group (nginx's workers included), waits up to
/// [`TERM_GRACE`], then SIGKILLs the group. Children also get SIGTERM from the kernel
/// if the benchmark dies without running drops (`PR_SET_PDEATHSIG`).
#[derive(Debug)]
pub struct ChildGuard {
    name: &'static str,
    child: Child,
    exited: Option<ExitStatus>,
}

impl ChildGuard {
    /// Spawn `command` as `name` in a new process group that is stopped on drop.
    pub fn spawn(name: &'static str, mut command: Command) -> io::Result<ChildGuard> {
        command.process_group(0);
        // SAFETY: the closure runs between fork and exec and only calls prctl(2) and
        // getppid(2), both async-signal-safe; it touches no memory of the parent.
        unsafe {
            command.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                    return Err(io::Error::last_os_error());
                }
                // The parent may have died before prctl: then nobody would stop us.
                if libc::getppid() == 1 {
                    return Err(io::Error::other("parent exited during spawn"));
                }
                Ok(())
            });
        }
        let child = command.spawn().map_err(|err| io::Error::new(err.kind(), format!("{name}: {err}")))?;
        Ok(ChildGuard { name, child, exited: None })
    }

    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The underlying child (to take its pipes).
    pub fn child_mut(&mut self) -> &mut Child {
        &mut self.child
    }

    /// `Some(status)` if the child has exited.
    pub fn exit_status(&mut self) -> Option<ExitStatus> {
        if self.exited.is_none() {
            self.exited = self.child.try_wait().ok().flatten();
        }
        self.exited
    }

    /// Wait until `addr` accepts TCP connections, failing early if the child exits.
    pub fn wait_listening(&mut self, addr: SocketAddr, timeout: Duration) -> io::Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.exit_status() {
                return Err(io::Error::other(format!("{} exited during startup ({status})", self.name)));
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("{} did not listen on {addr} within {timeout:?}", self.name),
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn signal_group(&self, signal: libc::c_int) {
        let Ok(pgid) = libc::pid_t::try_from(self.child.id()) else { return };
        // SAFETY: kill(2) with a negative pid signals the process group we created
        // (process_group(0) makes the child's pid its group id); no memory is involved.
        unsafe {
            libc::kill(-pgid, signal);
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if self.exit_status().is_some() {
            // The leader is gone; stragglers in its group (nginx workers) may not be.
            self.signal_group(libc::SIGKILL);
            return;
        }
        self.signal_group(libc::SIGTERM);
        let deadline = Instant::now() + TERM_GRACE;
        while Instant::now() < deadline {
            if self.exit_status().is_some() {
                self.signal_group(libc::SIGKILL);
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        eprintln!("loom-bench: {} ignored SIGTERM for {TERM_GRACE:?}; killing it", self.name);
        self.signal_group(libc::SIGKILL);
        let _ = self.child.wait();
    }
}

/// The line prefix a server subcommand (`mock`, `bare-proxy`) prints before its address.
pub const LISTENING: &str = "listening on ";

/// Prints the line [`spawn_listening`] reads back.
pub fn print_listening(addr: SocketAddr) {
    println!("{LISTENING}{addr}");
}

/// Spawns `command` (a server subcommand, stdout piped here) as `name` and reads the
/// address it reports on its first line.
pub fn spawn_listening(name: &'static str, mut command: Command) -> io::Result<(ChildGuard, SocketAddr)> {
    command.stdout(std::process::Stdio::piped());
    let mut guard = ChildGuard::spawn(name, command)?;
    let stdout = guard
        .child_mut()
        .stdout
        .take()
        .ok_or_else(|| io::Error::other(format!("{name} stdout not piped")))?;
    let mut line = String::new();
    io::BufRead::read_line(&mut io::BufReader::new(stdout), &mut line)?;
    let addr = parse_listening(&line)
        .ok_or_else(|| io::Error::other(format!("{name} did not report its address: {line:?}")))?;
    Ok((guard, addr))
}

fn parse_listening(line: &str) -> Option<SocketAddr> {
    line.trim().strip_prefix(LISTENING)?.parse().ok()
}

/// A TCP port on 127.0.0.1 that was free a moment ago (for children that need a fixed port).
pub fn free_port() -> io::Result<SocketAddr> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    listener.local_addr()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_listening_line() {
        assert_eq!(parse_listening("listening on 127.0.0.1:4000\n"), Some(([127, 0, 0, 1], 4000).into()));
        assert_eq!(parse_listening("something else"), None);
    }
}

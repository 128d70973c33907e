//! The mock upstream: the `mock` subcommand, and starting it as a child process.

use std::io;
use std::net::SocketAddr;
use std::process::{Command, ExitCode, Stdio};

use loom_test_support::MockUpstream;

use crate::child::{ChildGuard, print_listening, spawn_listening};

/// Run the mock upstream on `listen` until SIGINT or SIGTERM (the `mock` subcommand).
pub fn serve(listen: SocketAddr) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("loom-bench mock: cannot start the runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let mock = match MockUpstream::start_on(listen, false).await {
            Ok(mock) => mock,
            Err(err) => {
                eprintln!("loom-bench mock: cannot listen on {listen}: {err}");
                return ExitCode::FAILURE;
            }
        };
        print_listening(mock.addr());
        if let Err(err) = crate::shutdown_signal().await {
            eprintln!("loom-bench mock: cannot wait for signals: {err}");
            return ExitCode::FAILURE;
        }
        mock.shutdown();
        ExitCode::SUCCESS
    })
}

/// A mock upstream running in a child process.
#[derive(Debug)]
pub struct MockChild {
    /// The child process (stopped on drop).
    pub guard: ChildGuard,
    /// Where the mock listens.
    pub addr: SocketAddr,
}

/// Start `self_exe mock` on an ephemeral port and read back its address.
pub fn spawn(self_exe: &std::path::Path) -> io::Result<MockChild> {
    let mut command = Command::new(self_exe);
    command.args(["mock", "--listen", "127.0.0.1:0"]).stdin(Stdio::null());
    let (guard, addr) = spawn_listening("mock upstream", command)?;
    Ok(MockChild { guard, addr })
}

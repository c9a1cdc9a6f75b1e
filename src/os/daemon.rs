//! `-d`: detach from the terminal (fork, setsid, fork, chdir /, stdio to
//! /dev/null) while the original process waits on a pipe and exits only
//! when the daemon reports: 0 once it serves, 1 with the error otherwise.
//! So `Type=forking` never races a missing pid file.

use std::io::{BufRead, Write};
use std::os::fd::OwnedFd;

use anyhow::Context;
use nix::fcntl::OFlag;
use nix::unistd::ForkResult;

use crate::exitcode;
use crate::os::sys;

/// The daemon's end of the pipe to the waiting original process.
pub struct Reporter(Option<std::fs::File>);

impl Reporter {
    /// Startup is complete: the original process exits 0.
    pub fn ready(&mut self) {
        if let Some(mut f) = self.0.take() {
            let _ = f.write_all(b"ok\n");
        }
    }

    /// Startup failed: the original process prints this and exits 1.
    pub fn failed(&mut self, message: &str) {
        if let Some(mut f) = self.0.take() {
            let _ = f.write_all(format!("error: {message}\n").as_bytes());
        }
    }

    /// In a worker: close our copy so that only the master holds the pipe.
    pub fn close(&mut self) {
        self.0 = None;
    }
}

/// Detaches. Returns only in the daemon; the original process waits for the
/// report and exits with its status.
pub fn detach() -> anyhow::Result<Reporter> {
    let (rx, tx) = nix::unistd::pipe2(OFlag::O_CLOEXEC).context("pipe")?;
    match sys::fork_detach().context("fork")? {
        ForkResult::Parent { child } => {
            drop(tx);
            let code = wait_for_report(rx);
            let _ = nix::sys::wait::waitpid(child, None);
            #[allow(clippy::exit)] // the original process ends here, with the daemon's verdict
            std::process::exit(code);
        }
        ForkResult::Child => {}
    }
    drop(rx);
    nix::unistd::setsid().context("setsid")?;
    // A second fork: the daemon is no session leader, so it can never
    // acquire a controlling terminal.
    match sys::fork_detach().context("fork")? {
        ForkResult::Parent { .. } => signal_hook::low_level::exit(exitcode::OK),
        ForkResult::Child => {}
    }
    nix::unistd::chdir("/").context("chdir /")?;
    let null = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
        .context("/dev/null")?;
    nix::unistd::dup2_stdin(&null).context("dup2")?;
    nix::unistd::dup2_stdout(&null).context("dup2")?;
    nix::unistd::dup2_stderr(&null).context("dup2")?;
    Ok(Reporter(Some(std::fs::File::from(tx))))
}

fn wait_for_report(rx: OwnedFd) -> i32 {
    // One line: the daemon's workers may hold the pipe open long after it.
    let mut text = String::new();
    let _ = std::io::BufReader::new(std::fs::File::from(rx)).read_line(&mut text);
    match text.lines().next() {
        Some("ok") => exitcode::OK,
        Some(line) => {
            eprintln!("preforkd: {}", line.strip_prefix("error: ").unwrap_or(line));
            exitcode::FAILURE
        }
        None => {
            eprintln!("preforkd: the daemon exited during startup (see the log)");
            exitcode::FAILURE
        }
    }
}

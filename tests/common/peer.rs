//! Real peers (issue 13 and PEERS.md): programs preforkd's users run next
//! to it (HAProxy, promtool, prometheus-nginx-exporter), found on `PATH`
//! by the harness' `tool` (or skipped), run in a process group of their own
//! and SIGKILLed by pid when the test ends, pass or fail.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;

/// A peer process; dropping it SIGKILLs its process group and reaps it.
pub struct Peer {
    pub child: Child,
}

impl Peer {
    /// Spawns `cmd` in a process group of its own, output to `log`.
    pub fn spawn(mut cmd: Command, log: &std::path::Path) -> Peer {
        let out = std::fs::File::create(log).expect("create the peer's log");
        cmd.process_group(0)
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out);
        Peer {
            child: super::spawn(&mut cmd),
        }
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = killpg(Pid::from_raw(self.child.id() as i32), Signal::SIGKILL);
        let _ = self.child.wait();
    }
}

/// GET `path` from `addr` with HTTP/1.0, everything up to the close; None
/// when nothing listens there (yet) or the answer does not come in time.
pub fn http_get(addr: SocketAddr, path: &str) -> Option<String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: t\r\n\r\n").as_bytes())
        .ok()?;
    let mut out = Vec::new();
    s.read_to_end(&mut out).ok()?;
    Some(String::from_utf8_lossy(&out).into_owned())
}

/// The value of the sample `name` (with its labels, as written) in
/// Prometheus text, or None when there is no such line.
pub fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

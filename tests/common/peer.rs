//! Real peers (issue 13 and PEERS.md): programs preforkd's users run next
//! to it (HAProxy, promtool, prometheus-nginx-exporter), found on `PATH`
//! by the harness' `tool` (or skipped), run in a process group of their own
//! and SIGKILLed by pid when the test ends, pass or fail.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
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

/// nginx with one `server` block (`{addr}` in it is the address), on a
/// socket the test bound (passed as fd 3 with `NGINX=3;`), killed with its
/// process group on drop.
pub struct Nginx {
    child: Child,
    _dir: super::TempDir,
}

impl Nginx {
    pub fn start(server: &str) -> (Nginx, SocketAddr) {
        let dir = super::TempDir::new();
        let d = dir.path().display().to_string();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let user = if nix::unistd::geteuid().is_root() {
            "user root root;"
        } else {
            ""
        };
        let conf = format!(
            r#"daemon off;
{user}
pid {d}/nginx.pid;
error_log {d}/error.log info;
worker_processes 1;
events {{ worker_connections 64; }}
http {{
  include /etc/nginx/mime.types;
  access_log off;
  sendfile on;
  client_body_temp_path {d}/body;
  proxy_temp_path {d}/proxy;
  fastcgi_temp_path {d}/fastcgi;
  uwsgi_temp_path {d}/uwsgi;
  scgi_temp_path {d}/scgi;
  server {{
    {server}
  }}
}}
"#,
            server = server.replace("{addr}", &addr.to_string())
        );
        std::fs::write(dir.path().join("nginx.conf"), conf).unwrap();
        let mut cmd = Command::new("nginx");
        cmd.arg("-p")
            .arg(format!("{d}/"))
            .arg("-c")
            .arg(format!("{d}/nginx.conf"))
            .arg("-e")
            .arg(format!("{d}/error.log"))
            .env("NGINX", "3;")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0);
        super::process::pass_as_fd_3(&mut cmd, listener.as_raw_fd());
        let child = super::process::unblocked_sigchld(|| cmd.spawn()).expect("spawn nginx");
        drop(listener);
        let mut nginx = Nginx { child, _dir: dir };
        super::wait_until(super::WAIT, "nginx to answer", || {
            if let Ok(Some(status)) = nginx.child.try_wait() {
                panic!(
                    "nginx exited with {status}: {}",
                    std::fs::read_to_string(format!("{d}/error.log")).unwrap_or_default()
                );
            }
            TcpStream::connect_timeout(&addr, Duration::from_secs(1))
                .ok()
                .map(|_| ())
        });
        (nginx, addr)
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = killpg(Pid::from_raw(self.child.id() as i32), Signal::SIGKILL);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

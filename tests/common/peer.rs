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

/// nginx in the foreground in a temp dir, on a socket the test bound and
/// hands over as fd 3 (`NGINX=3;`, how nginx passes sockets to a new
/// binary), so no port is guessed; killed with its process group on drop.
pub struct Nginx {
    child: Child,
    dir: super::TempDir,
}

impl Nginx {
    /// One `server` block (`{addr}` in it is the address) in an `http`
    /// block with the mime types, `sendfile on` and no access log.
    pub fn start(server: &str) -> (Nginx, SocketAddr) {
        Nginx::start_with(
            "include /etc/nginx/mime.types;\n  access_log off;\n  sendfile on;",
            server,
        )
    }

    /// `http` directives and one `server` block; `{addr}` is the address
    /// and `{dir}` nginx's temp dir (its prefix) in both.
    pub fn start_with(http: &str, server: &str) -> (Nginx, SocketAddr) {
        let dir = super::TempDir::new();
        let d = dir.path().display().to_string();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let fill = |text: &str| {
            text.replace("{addr}", &addr.to_string())
                .replace("{dir}", &d)
        };
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
  {http}
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
            http = fill(http),
            server = fill(server)
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
        let mut nginx = Nginx { child, dir };
        // The socket listens already (ours): nginx is up once its pid
        // file is written.
        let pid_file = nginx.dir.path().join("nginx.pid");
        super::wait_until(super::WAIT, "nginx to write its pid file", || {
            if let Ok(Some(status)) = nginx.child.try_wait() {
                panic!(
                    "nginx exited with {status}: {}",
                    std::fs::read_to_string(format!("{d}/error.log")).unwrap_or_default()
                );
            }
            pid_file.exists().then_some(())
        });
        (nginx, addr)
    }

    /// nginx's temp dir (`{dir}` in its config).
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = killpg(Pid::from_raw(self.child.id() as i32), Signal::SIGKILL);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

//! Listening sockets: bound by the master before it forks (CLOEXEC,
//! non-blocking, SO_REUSEADDR, IPV6_V6ONLY, the configured backlog), or
//! adopted from `LISTEN_FDS` the way systemd passes them. Accepting is the
//! worker's job.

use std::net::{SocketAddr, TcpListener};
use std::os::fd::{AsRawFd, OwnedFd};

use anyhow::{bail, Context};
use nix::sys::socket::{
    self, sockopt, AddressFamily, Backlog, SockFlag, SockType, SockaddrStorage,
};

use crate::sys;

/// How long the kernel holds a silent new connection before queueing it
/// for accept anyway (rounded up to SYN-ACK retransmissions).
const DEFER_ACCEPT_SECS: i32 = 1;

/// One listening socket and the address it is bound to.
#[derive(Debug)]
pub struct Listener {
    pub addr: SocketAddr,
    pub socket: TcpListener,
}

/// Binds a new listening socket.
pub fn bind(addr: SocketAddr, backlog: i32) -> anyhow::Result<Listener> {
    let family = match addr {
        SocketAddr::V4(_) => AddressFamily::Inet,
        SocketAddr::V6(_) => AddressFamily::Inet6,
    };
    let fd = socket::socket(
        family,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
        None,
    )
    .context("socket")?;
    socket::setsockopt(&fd, sockopt::ReuseAddr, &true).context("SO_REUSEADDR")?;
    if addr.is_ipv6() {
        // So that 0.0.0.0:P and [::]:P can both be listened on.
        socket::setsockopt(&fd, sockopt::Ipv6V6Only, &true).context("IPV6_V6ONLY")?;
    }
    let sockaddr = SockaddrStorage::from(addr);
    socket::bind(fd.as_raw_fd(), &sockaddr).map_err(std::io::Error::from)?;
    set_nodelay(&fd)?;
    // Hand us connections once their request has arrived (nginx's
    // `deferred`): the worker's first read after accept then finds it, and
    // a connection that never sends anything never occupies a worker.
    sys::set_defer_accept(&fd, DEFER_ACCEPT_SECS).context("TCP_DEFER_ACCEPT")?;
    let backlog = Backlog::new(backlog).unwrap_or(Backlog::MAXCONN);
    socket::listen(&fd, backlog).context("listen")?;
    Ok(Listener {
        addr,
        socket: TcpListener::from(fd),
    })
}

/// TCP_NODELAY on the listener: accepted sockets inherit it (Linux), so
/// answers are never held back by Nagle and no connection pays a
/// setsockopt of its own.
fn set_nodelay(fd: &OwnedFd) -> anyhow::Result<()> {
    socket::setsockopt(fd, sockopt::TcpNoDelay, &true).context("TCP_NODELAY")
}

/// Binds every address, or says which one failed and why, in one line.
pub fn bind_all(addrs: &[SocketAddr], backlog: i32) -> anyhow::Result<Vec<Listener>> {
    addrs
        .iter()
        .map(|&a| bind(a, backlog).with_context(|| format!("cannot listen on {a}")))
        .collect()
}

/// Sockets passed by systemd (or by an old master on upgrade): fds 3 and up,
/// `LISTEN_FDS=n`, for us only if `LISTEN_PID` is our pid. The variables are
/// removed so that workers and later children do not see them.
pub fn inherited() -> anyhow::Result<Vec<Listener>> {
    let pid = std::env::var("LISTEN_PID").ok();
    let fds = std::env::var("LISTEN_FDS").ok();
    for var in ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"] {
        std::env::remove_var(var);
    }
    let (Some(pid), Some(fds)) = (pid, fds) else {
        return Ok(Vec::new());
    };
    if pid.parse::<u32>().ok() != Some(std::process::id()) {
        return Ok(Vec::new());
    }
    let n: i32 = fds
        .parse()
        .ok()
        .filter(|n| (0..=1024).contains(n))
        .with_context(|| format!("invalid LISTEN_FDS={fds}"))?;
    let fds = sys::take_listen_fds(n).context("LISTEN_FDS names a descriptor that is not open")?;
    let mut out = Vec::new();
    for fd in fds {
        let raw = fd.as_raw_fd();
        out.push(adopt(fd).with_context(|| format!("inherited fd {raw}"))?);
    }
    Ok(out)
}

/// Checks that an inherited fd is a listening TCP socket and prepares it.
fn adopt(fd: OwnedFd) -> anyhow::Result<Listener> {
    let raw = fd.as_raw_fd();
    if !socket::getsockopt(&fd, sockopt::AcceptConn).context("not a socket")? {
        bail!("fd {raw} is not a listening socket");
    }
    let addr: SockaddrStorage = socket::getsockname(raw).context("getsockname")?;
    let addr = if let Some(v4) = addr.as_sockaddr_in() {
        SocketAddr::from((v4.ip(), v4.port()))
    } else if let Some(v6) = addr.as_sockaddr_in6() {
        SocketAddr::from((v6.ip(), v6.port()))
    } else {
        bail!("fd {raw} is not a TCP/IP socket");
    };
    set_nodelay(&fd)?;
    let socket = TcpListener::from(fd);
    socket.set_nonblocking(true).context("O_NONBLOCK")?;
    // The fds were passed without CLOEXEC; our own children must not keep them.
    nix::fcntl::fcntl(
        &socket,
        nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
    )
    .context("FD_CLOEXEC")?;
    Ok(Listener { addr, socket })
}

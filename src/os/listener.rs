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

use crate::os::sys;

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

/// The addresses of `wanted` that no socket in `have` is bound to.
pub fn missing(have: &[Listener], wanted: &[SocketAddr]) -> Vec<SocketAddr> {
    wanted
        .iter()
        .filter(|a| !have.iter().any(|l| l.addr == **a))
        .copied()
        .collect()
}

/// A reload's listener change: the sockets for `wanted`, in its order.
/// Sockets we have for those addresses are kept (never closed, so no
/// connection is refused), missing ones bound, the rest dropped; if any
/// bind fails, `have` is left as it was.
pub fn reconcile(
    have: &mut Vec<Listener>,
    wanted: &[SocketAddr],
    backlog: i32,
) -> anyhow::Result<()> {
    let mut fresh = bind_all(&missing(have, wanted), backlog)?;
    have.retain(|l| wanted.contains(&l.addr));
    have.append(&mut fresh);
    have.sort_by_key(|l| wanted.iter().position(|a| *a == l.addr));
    Ok(())
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
/// removed so that workers and later children do not see them. Call it
/// before anything opens a descriptor, or the numbers may be ours already.
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
    let fds = sys::take_listen_fds(n).context("LISTEN_FDS")?;
    let mut out = Vec::new();
    for fd in fds {
        let raw = fd.as_raw_fd();
        out.push(adopt(fd).with_context(|| format!("inherited fd {raw}"))?);
    }
    Ok(out)
}

/// Prepares an inherited listening socket (`sys` checked it listens).
fn adopt(fd: OwnedFd) -> anyhow::Result<Listener> {
    let raw = fd.as_raw_fd();
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

#[cfg(test)]
mod tests {
    use super::*;

    fn loopback() -> Listener {
        bind("127.0.0.1:0".parse().unwrap(), 16)
            .map(|mut l| {
                l.addr = l.socket.local_addr().unwrap();
                l
            })
            .unwrap()
    }

    #[test]
    fn reconcile_keeps_orders_and_drops() {
        let (a, b) = (loopback(), loopback());
        let (a_addr, b_addr) = (a.addr, b.addr);
        let b_fd = b.socket.as_raw_fd();
        let mut have = vec![a, b];
        reconcile(&mut have, &[b_addr], 16).unwrap();
        assert_eq!(have.len(), 1);
        assert_eq!(have[0].addr, b_addr);
        assert_eq!(
            have[0].socket.as_raw_fd(),
            b_fd,
            "a kept socket is the same socket"
        );
        assert_eq!(missing(&have, &[a_addr, b_addr]), vec![a_addr]);
    }

    #[test]
    fn reconcile_changes_nothing_when_a_bind_fails() {
        let a = loopback();
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let busy = taken.local_addr().unwrap();
        let a_addr = a.addr;
        let mut have = vec![a];
        assert!(reconcile(&mut have, &[busy], 16).is_err());
        assert_eq!(have.len(), 1);
        assert_eq!(have[0].addr, a_addr);
    }
}

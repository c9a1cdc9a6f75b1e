//! preforkd: a preforking HTTP/1.1 server. `main` picks the mode (`-h`,
//! `-V`, `-t`, run), fixes the startup order and maps failures to exit
//! statuses; the loop, signals and forking live in their own modules.

/// argv → `Args`.
mod cli;
/// TOML → validated `Config`, defaults, overrides, `file:line:col` errors.
mod config;
/// One client connection: buffers, pipelining, keep-alive, deadlines.
mod conn;
/// Exit statuses, in one place.
mod exitcode;
/// Sans-IO request parsing; `Reject` → status.
mod http;
/// Bind listening sockets, adopt `LISTEN_FDS`.
mod listener;
/// syslog / stderr logging that survives fork and a missing socket.
mod log;
/// Worker table, signals, reaping, respawn with backoff, shutdown.
mod master;
/// The pid file: atomic write, removal only if ours.
mod pidfile;
/// Precomputed response bytes with an in-place `Date`.
mod response;
/// Signal queue (counters + self-pipe) and the worker's flags.
mod signals;
/// Every `unsafe` block: fork, signal actions, fd adoption.
#[allow(unsafe_code)] // the one module allowed to; each block says why it is sound
mod sys;
/// One worker after fork: epoll, accept, connections, draining.
mod worker;

use std::io::Write;

use anyhow::Context;

fn main() {
    let code = run();
    #[allow(clippy::exit)] // the status must reach the shell; nothing is left to drop
    std::process::exit(code);
}

fn run() -> i32 {
    let args = match cli::parse(std::env::args_os().skip(1)) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("preforkd: {e}\n{}", cli::USAGE);
            return exitcode::USAGE;
        }
    };
    if args.help {
        return print(cli::USAGE);
    }
    if args.version {
        return print(&format!("preforkd {}\n", env!("CARGO_PKG_VERSION")));
    }
    let config = match config::load(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("preforkd: {e}");
            return exitcode::FAILURE;
        }
    };
    if args.test_config {
        let name = config
            .path
            .as_ref()
            .map_or("built-in defaults".to_owned(), |p| p.display().to_string());
        return print(&format!("preforkd: configuration {name} is ok\n"));
    }
    match serve(config) {
        Ok(code) => code,
        Err(e) => {
            let message = format!("{e:#}");
            ::log::error!("{message}");
            eprintln!("preforkd: {message}");
            exitcode::FAILURE
        }
    }
}

/// Startup in the order that makes failures clean: logs, sockets, pid file
/// (after bind, so it never names a master that could not listen), signal
/// handlers, then the workers.
fn serve(mut config: config::Config) -> anyhow::Result<i32> {
    log::init(&config.log);
    let mut listeners = listener::inherited()?;
    if listeners.is_empty() || config.listen_given {
        let missing: Vec<_> = config
            .listen
            .iter()
            .filter(|a| !listeners.iter().any(|l| l.addr == **a))
            .copied()
            .collect();
        if !listeners.is_empty() {
            // Inherited sockets stand for the addresses they are bound to;
            // bind only what the config names beyond them.
            listeners.retain(|l| config.listen.contains(&l.addr));
        }
        listeners.extend(listener::bind_all(&missing, config.backlog)?);
    } else {
        config.listen = listeners.iter().map(|l| l.addr).collect();
    }
    let pid_file = match &config.pid_file {
        Some(path) => Some(pidfile::PidFile::write(path, std::process::id())?),
        None => None,
    };
    let signals = signals::Signals::install().context("installing signal handlers")?;
    let mut master = master::Master::new(config, listeners, signals, pid_file);
    Ok(master.run())
}

fn print(text: &str) -> i32 {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => exitcode::OK,
        Err(_) => exitcode::FAILURE,
    }
}

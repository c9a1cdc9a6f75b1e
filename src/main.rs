//! preforkd: a preforking HTTP/1.1 server. `main` picks the mode (`-h`,
//! `-V`, `-t`, `-s`, run), fixes the startup order and maps failures to
//! exit statuses; the loop, signals and forking live in the library's
//! modules (`lib.rs`).

use std::io::Write;

use preforkd::obs::{log, scoreboard};
use preforkd::os::{daemon, exec, inbox, listener, pidfile, signals, sys};
use preforkd::{cli, config, control, exitcode, master};

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
            eprintln!("preforkd: {e}\n{}", cli::usage());
            return exitcode::USAGE;
        }
    };
    if args.help {
        return print(&cli::usage());
    }
    if args.version {
        return print(&format!("preforkd {}\n", env!("CARGO_PKG_VERSION")));
    }
    if let Some(action) = args.signal {
        return signal_master(action, &args);
    }
    let config = match config::load(args.config.as_deref(), &args.overrides) {
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
    match serve(config, args) {
        Ok(code) => code,
        Err(e) => {
            let message = format!("{e:#}");
            log::syslog_only(::log::Level::Error, &message);
            eprintln!("preforkd: {message}");
            exitcode::FAILURE
        }
    }
}

/// Runs the master: detaches first with `-d`, and reports a startup
/// failure to the waiting parent as well as to the log.
fn serve(config: config::Config, mut args: cli::Args) -> anyhow::Result<i32> {
    // Paths from the command line stay valid after `-d` moves to / and for
    // the new master of an upgrade, which gets these arguments again.
    let cwd = std::env::current_dir().context("current directory")?;
    args.config = config.path.as_ref().map(|p| cwd.join(p));
    args.overrides.pid_file = args.overrides.pid_file.as_ref().map(|p| cwd.join(p));
    let mut config = config;
    config.pid_file = config.pid_file.as_ref().map(|p| cwd.join(p));
    let exec = exec::Exec::current()?;
    let mut reporter = None;
    if args.daemon {
        if config.pid_file.is_none() {
            anyhow::bail!("-d needs a pid file: give -p PIDFILE or set pid_file");
        }
        reporter = Some(daemon::detach()?);
    }
    match start(config, args, exec, &mut reporter) {
        Ok(mut master) => Ok(master.run()),
        Err(e) => {
            if let Some(r) = reporter.as_mut() {
                r.failed(&format!("{e:#}"));
            }
            Err(e)
        }
    }
}

/// Startup in the order that makes failures clean: passed sockets before
/// anything opens a descriptor, logs, our own sockets, signal handlers
/// (before the pid file, so a reload sent as soon as it exists is not
/// fatal), the pid file (after bind, so it never names a master that could
/// not listen), the scoreboard; the master forks the workers when it runs.
fn start(
    mut config: config::Config,
    args: cli::Args,
    exec: exec::Exec,
    reporter: &mut Option<daemon::Reporter>,
) -> anyhow::Result<master::Master> {
    let mut listeners = listener::inherited()?;
    log::init(&config.log);
    let replaces = exec::old_master();
    for l in &listeners {
        if config.listen_given && !config.listen_addrs().contains(&l.addr) {
            ::log::info!(
                "serving inherited socket {} although the config does not list it",
                l.addr
            );
        }
    }
    if listeners.is_empty() || config.listen_given {
        // Inherited sockets stand for the addresses they are bound to;
        // bind only what the config names beyond them.
        let missing = listener::missing(&listeners, &config.listen_addrs());
        listeners.extend(listener::bind_all(&missing, config.backlog)?);
    } else {
        // Socket activation with no listen configured: the inherited
        // sockets are all we serve (the built-in default is not bound).
        config.listen = listeners
            .iter()
            .map(|l| config::Listen::plain(l.addr))
            .collect();
    }
    if config.user.is_some() && !nix::unistd::geteuid().is_root() {
        ::log::warn!(
            "user/group are set but preforkd is not running as root: workers keep uid {}",
            nix::unistd::geteuid()
        );
    }
    // A parent may have blocked signals (the mask survives exec): clear it,
    // or a blocked HUP or CHLD would never reach the master.
    nix::sys::signal::SigSet::empty()
        .thread_set_mask()
        .context("clearing the signal mask")?;
    let signals = signals::Signals::install().context("installing signal handlers")?;
    let inbox = inbox::Inbox::new().context("creating the worker pipe")?;
    let board = sys::map_scoreboard(scoreboard::CAPACITY).context("mapping the scoreboard")?;
    let totals = sys::map_totals().context("mapping the scoreboard totals")?;
    let pid_file = match &config.pid_file {
        Some(path) => Some(pidfile::PidFile::write(path, std::process::id())?),
        None => None,
    };
    // The new master of an upgrade takes the status socket over only once
    // it serves (the old one keeps answering `-s status` until then).
    let status_socket = match &pid_file {
        Some(p) if replaces.is_none() => match control::StatusSocket::bind(p.path_original()) {
            Ok(s) => Some(s),
            Err(e) => {
                p.remove();
                return Err(e).context("binding the status socket beside the pid file");
            }
        },
        _ => None,
    };
    Ok(master::Master::new(master::Startup {
        args,
        config,
        listeners,
        signals,
        inbox,
        pid_file,
        exec,
        replaces,
        scoreboard: scoreboard::Scoreboard::new(board, totals),
        status_socket,
        reporter: reporter.take(),
    }))
}

/// `-s ACTION`: needs only the pid file, never the rest of the config.
fn signal_master(action: signals::Action, args: &cli::Args) -> i32 {
    let wait = args.wait.unwrap_or(std::time::Duration::from_secs(30));
    let result = control::find_pid_file(args.overrides.pid_file.as_deref(), args.config.as_deref())
        .and_then(|pid_file| control::run(action, &pid_file, wait));
    match result {
        // The status report is output, not a message about the command.
        Ok(report) if action == signals::Action::Status => print(&report),
        Ok(message) => print(&format!("preforkd: {message}\n")),
        Err(e) => {
            eprintln!("preforkd: {e:#}");
            exitcode::FAILURE
        }
    }
}

fn print(text: &str) -> i32 {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => exitcode::OK,
        Err(_) => exitcode::FAILURE,
    }
}

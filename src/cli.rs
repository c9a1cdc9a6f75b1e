//! The command line: argv → [`Args`](crate::cli::Args). Knows nothing of files or defaults;
//! `config.rs` applies what is given here over the config file.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::PathBuf;

use std::time::Duration;

use crate::control::Action;
use crate::log::LogTarget;

pub const USAGE: &str = "\
usage: preforkd [-c FILE] [-l ADDR]... [-w N] [-p PIDFILE] [--log-target syslog|stderr|both] [-d] [-t] [-V] [-h]
       preforkd -s reload|stop|quit|reopen|upgrade|status [-c FILE | -p PIDFILE] [--wait SECONDS]
       preforkd -s maintenance on|off [-c FILE | -p PIDFILE]

A preforking HTTP/1.1 server: a master process binds the listening sockets
and supervises N worker processes that serve one configured response.

options:
  -c, --config FILE        config file (default: /etc/preforkd/preforkd.toml if it exists)
  -l, --listen ADDR        listen on ADDR (host:port, IPv4 or [IPv6]); repeatable;
                           replaces the config's listen list
  -w, --workers N          number of worker processes (N >= 1)
  -p, --pid-file PATH      write the master's pid to PATH
      --log-target TARGET  syslog, stderr or both
  -d, --daemon             detach; the command exits 0 once the server serves,
                           1 with the error otherwise (needs a pid file)
  -t, --test-config        check the configuration and exit (0 ok, 1 error)
  -s, --signal ACTION      tell the running master (named by the pid file) to
                           reload, stop (fast), quit (graceful), reopen (logs)
                           or upgrade (start the binary anew), or print its
                           status; reload and upgrade wait for the outcome
                           and exit 1 if it failed; maintenance on|off
                           switches every worker to [maintenance] and back
      --wait SECONDS       how long -s reload/upgrade wait (default 30)
  -V, --version            print the version and exit
  -h, --help               print this help and exit

signals to the master: HUP reload, USR2 upgrade, QUIT graceful stop,
TERM/INT fast stop, WINCH stop workers, TTIN/TTOU one worker more/fewer,
USR1 reopen logs
";

/// What the command line asks for.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Args {
    pub config: Option<PathBuf>,
    pub listen: Vec<SocketAddr>,
    pub workers: Option<usize>,
    pub pid_file: Option<PathBuf>,
    pub log_target: Option<LogTarget>,
    pub test_config: bool,
    pub signal: Option<Action>,
    pub daemon: bool,
    pub wait: Option<Duration>,
    pub version: bool,
    pub help: bool,
}

impl Args {
    /// The serving options as arguments again, for the new master of an
    /// upgrade: not `-d` (it is detached already), nor the one-shot modes.
    pub fn to_argv(&self) -> Vec<OsString> {
        let mut out: Vec<OsString> = Vec::new();
        if let Some(c) = &self.config {
            out.extend(["-c".into(), c.clone().into_os_string()]);
        }
        for l in &self.listen {
            out.extend(["-l".into(), l.to_string().into()]);
        }
        if let Some(w) = self.workers {
            out.extend(["-w".into(), w.to_string().into()]);
        }
        if let Some(p) = &self.pid_file {
            out.extend(["-p".into(), p.clone().into_os_string()]);
        }
        if let Some(t) = self.log_target {
            let name = match t {
                LogTarget::Syslog => "syslog",
                LogTarget::Stderr => "stderr",
                LogTarget::Both => "both",
            };
            out.extend(["--log-target".into(), name.into()]);
        }
        out
    }
}

/// Parses the arguments after the program name; the error is one line.
pub fn parse<I>(argv: I) -> Result<Args, String>
where
    I: IntoIterator,
    I::Item: Into<OsString>,
{
    use lexopt::prelude::*;
    let mut parser = lexopt::Parser::from_args(argv);
    let mut args = Args::default();
    while let Some(arg) = parser.next().map_err(|e| e.to_string())? {
        match arg {
            Short('c') | Long("config") => args.config = Some(value(&mut parser)?.into()),
            Short('l') | Long("listen") => {
                let v = string(&mut parser)?;
                let addr = v.parse().map_err(|_| {
                    format!("invalid listen address '{v}': expected host:port, IPv4 or [IPv6]")
                })?;
                args.listen.push(addr);
            }
            Short('w') | Long("workers") => {
                let v = string(&mut parser)?;
                match v.parse::<usize>() {
                    Ok(n) if (1..=crate::scoreboard::MAX_WORKERS).contains(&n) => {
                        args.workers = Some(n)
                    }
                    _ => {
                        return Err(format!(
                            "invalid worker count '{v}': expected an integer from 1 to {}",
                            crate::scoreboard::MAX_WORKERS
                        ))
                    }
                }
            }
            Short('p') | Long("pid-file") => args.pid_file = Some(value(&mut parser)?.into()),
            Long("log-target") => {
                let v = string(&mut parser)?;
                args.log_target = Some(v.parse().map_err(|()| {
                    format!("invalid log target '{v}': expected syslog, stderr or both")
                })?);
            }
            Short('t') | Long("test-config") => args.test_config = true,
            Short('d') | Long("daemon") => args.daemon = true,
            Short('s') | Long("signal") => {
                let v = string(&mut parser)?;
                args.signal = Some(if v == "maintenance" {
                    match string(&mut parser)?.as_str() {
                        "on" => Action::Maintenance(true),
                        "off" => Action::Maintenance(false),
                        w => {
                            return Err(format!("invalid '-s maintenance {w}': expected on or off"))
                        }
                    }
                } else {
                    v.parse().map_err(|()| {
                        format!("invalid signal action '{v}': expected reload, stop, quit, reopen, upgrade, status or maintenance on|off")
                    })?
                });
            }
            Long("wait") => {
                let v = string(&mut parser)?;
                match v.parse::<u64>() {
                    Ok(n) if n >= 1 => args.wait = Some(Duration::from_secs(n)),
                    _ => return Err(format!("invalid --wait '{v}': expected seconds >= 1")),
                }
            }
            Short('V') | Long("version") => args.version = true,
            Short('h') | Long("help") => args.help = true,
            _ => return Err(arg.unexpected().to_string()),
        }
    }
    Ok(args)
}

fn value(parser: &mut lexopt::Parser) -> Result<OsString, String> {
    parser.value().map_err(|e| e.to_string())
}

fn string(parser: &mut lexopt::Parser) -> Result<String, String> {
    value(parser)?
        .into_string()
        .map_err(|v| format!("invalid UTF-8 in argument {v:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<Args, String> {
        parse(args.iter().copied())
    }

    #[test]
    fn all_flags() {
        let a = p(&[
            "-c",
            "x.toml",
            "-l",
            "127.0.0.1:1",
            "--listen",
            "[::1]:2",
            "-w",
            "3",
            "-p",
            "pid",
            "--log-target",
            "both",
            "-t",
        ])
        .unwrap();
        assert_eq!(a.config, Some(PathBuf::from("x.toml")));
        assert_eq!(a.listen.len(), 2);
        assert_eq!(a.workers, Some(3));
        assert_eq!(a.pid_file, Some(PathBuf::from("pid")));
        assert_eq!(a.log_target, Some(LogTarget::Both));
        assert!(a.test_config);
        assert!(p(&["-V"]).unwrap().version);
        assert!(p(&["--help"]).unwrap().help);
        assert!(p(&["-w4"]).unwrap().workers == Some(4));
        let a = p(&["-s", "reload", "--wait", "5"]).unwrap();
        assert_eq!(a.signal, Some(Action::Reload));
        assert_eq!(a.wait, Some(Duration::from_secs(5)));
    }

    #[test]
    fn serving_options_round_trip_without_daemon() {
        let a = p(&[
            "-d",
            "-c",
            "/etc/p.toml",
            "-l",
            "127.0.0.1:1",
            "-l",
            "[::1]:2",
            "-w",
            "3",
            "-p",
            "/run/p.pid",
            "--log-target",
            "both",
        ])
        .unwrap();
        let again = parse(a.to_argv()).unwrap();
        assert_eq!(again, Args { daemon: false, ..a });
    }

    #[test]
    fn maintenance_takes_on_or_off() {
        assert_eq!(
            p(&["-s", "maintenance", "on", "-p", "x"]).unwrap().signal,
            Some(Action::Maintenance(true))
        );
        assert_eq!(
            p(&["--signal", "maintenance", "off"]).unwrap().signal,
            Some(Action::Maintenance(false))
        );
    }

    #[test]
    fn bad_flags() {
        for bad in [
            &["--nope"][..],
            &["-w", "0"],
            &["-w", "x"],
            &["-l", "localhost:1"],
            &["--log-target", "file"],
            &["-c"],
            &["stray"],
            &["-s", "restart"],
            &["-s", "maintenance"],
            &["-s", "maintenance", "maybe"],
            &["--wait", "0"],
        ] {
            assert!(p(bad).is_err(), "{bad:?}");
        }
    }
}

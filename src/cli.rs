//! The command line: argv → [`Args`](crate::cli::Args). Knows nothing of files or defaults:
//! what overrides the config file goes into a [`config::Overrides`], which
//! `config.rs` applies; the `-s` words and the signal help come from the
//! signal table in `signals.rs`.

use std::ffi::OsString;
use std::path::PathBuf;

use std::time::Duration;

use crate::config::Overrides;
use crate::obs::log::LogTarget;
use crate::os::signals::{self, Action, MAINTENANCE_WORD};

/// `--help` and the text after a usage error.
pub fn usage() -> String {
    let words: Vec<&str> = Action::words().collect();
    format!(
        "usage: preforkd [-c FILE] [-l ADDR]... [-w N] [-p PIDFILE] [--log-target syslog|stderr|both] [-d] [-t] [-V] [-h]
       preforkd -s {} [-c FILE | -p PIDFILE] [--wait SECONDS]
       preforkd -s {MAINTENANCE_WORD} on|off [-c FILE | -p PIDFILE]

{OPTIONS}
{}",
        words.join("|"),
        signals::help()
    )
}

const OPTIONS: &str = "\
A preforking HTTP/1.1 server: a master process binds the listening sockets
and supervises N worker processes that serve one configured response.

options:
  -c, --config FILE        config file (default: /etc/preforkd/preforkd.toml if it exists)
  -l, --listen ADDR        listen on ADDR (host:port, IPv4 or [IPv6]), with
                           flags after it ('127.0.0.1:8443 tls',
                           '127.0.0.1:8889 proxy_protocol'); repeatable;
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
";

/// What the command line asks for.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Args {
    pub config: Option<PathBuf>,
    /// `-l`, `-w`, `-p`, `--log-target`: applied over the config file.
    pub overrides: Overrides,
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
        let o = &self.overrides;
        for l in &o.listen {
            out.extend(["-l".into(), l.to_string().into()]);
        }
        if let Some(w) = o.workers {
            out.extend(["-w".into(), w.to_string().into()]);
        }
        if let Some(p) = &o.pid_file {
            out.extend(["-p".into(), p.clone().into_os_string()]);
        }
        if let Some(t) = o.log_target {
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
                let listen = v.parse().map_err(|e: String| format!("-l: {e}"))?;
                args.overrides.listen.push(listen);
            }
            Short('w') | Long("workers") => {
                let v = string(&mut parser)?;
                match v.parse::<usize>() {
                    Ok(n) if (1..=crate::obs::scoreboard::MAX_WORKERS).contains(&n) => {
                        args.overrides.workers = Some(n)
                    }
                    _ => {
                        return Err(format!(
                            "invalid worker count '{v}': expected an integer from 1 to {}",
                            crate::obs::scoreboard::MAX_WORKERS
                        ))
                    }
                }
            }
            Short('p') | Long("pid-file") => {
                args.overrides.pid_file = Some(value(&mut parser)?.into())
            }
            Long("log-target") => {
                let v = string(&mut parser)?;
                args.overrides.log_target = Some(v.parse().map_err(|()| {
                    format!("invalid log target '{v}': expected syslog, stderr or both")
                })?);
            }
            Short('t') | Long("test-config") => args.test_config = true,
            Short('d') | Long("daemon") => args.daemon = true,
            Short('s') | Long("signal") => {
                let v = string(&mut parser)?;
                args.signal = Some(if v == MAINTENANCE_WORD {
                    let w = string(&mut parser)?;
                    Action::maintenance(&w).ok_or_else(|| {
                        format!("invalid '-s {MAINTENANCE_WORD} {w}': expected on or off")
                    })?
                } else {
                    v.parse().map_err(|()| {
                        let words: Vec<&str> = Action::words().collect();
                        format!(
                            "invalid signal action '{v}': expected one of {} or {MAINTENANCE_WORD} on|off",
                            words.join(", ")
                        )
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
        assert_eq!(a.overrides.listen.len(), 2);
        assert!(!a.overrides.listen[0].tls);
        assert!(p(&["-l", "127.0.0.1:1 tls"]).unwrap().overrides.listen[0].tls);
        assert!(!a.overrides.listen[0].proxy_protocol);
        assert!(
            p(&["-l", "127.0.0.1:1 proxy_protocol"])
                .unwrap()
                .overrides
                .listen[0]
                .proxy_protocol
        );
        assert_eq!(a.overrides.workers, Some(3));
        assert_eq!(a.overrides.pid_file, Some(PathBuf::from("pid")));
        assert_eq!(a.overrides.log_target, Some(LogTarget::Both));
        assert!(a.test_config);
        assert!(p(&["-V"]).unwrap().version);
        assert!(p(&["--help"]).unwrap().help);
        assert!(p(&["-w4"]).unwrap().overrides.workers == Some(4));
        let a = p(&["-s", "reload", "--wait", "5"]).unwrap();
        assert_eq!(a.signal, Some(Action::Send(signals::Command::Reload)));
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
            "[::1]:2 tls",
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
            &["-l", "127.0.0.1:1 tsl"],
            &["-l", "127.0.0.1:1 proxy-protocol"],
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

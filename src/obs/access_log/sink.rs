//! Where access log lines go: a file written in whole buffers with
//! `O_APPEND`, or syslog datagrams (one a line, framed by `obs::rfc3164`),
//! with the reopening and reconnecting each needs.
//!
//! Leaves counting lost lines and logging episodes to `mod.rs`, creating
//! a missing file as root to `create.rs`.

use std::fs::File;
use std::io::{self, Write};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};

use super::config::Destination;
use super::create::open_file;
use crate::obs::log::LogConfig;
use crate::obs::rfc3164::Header;

/// Where the lines go, and what it takes to keep them going there.
pub(super) enum Sink {
    File {
        path: PathBuf,
        file: Option<File>,
        /// A reopen failed: keep writing to the file we have (nothing is
        /// lost) and try again at every write.
        reopen_due: bool,
        /// We said so once.
        reopen_warned: bool,
    },
    Syslog {
        socket_path: PathBuf,
        socket: Option<UnixDatagram>,
        /// `<PRI>` from the facility, `ident[pid]: `.
        header: Header,
    },
}

impl Sink {
    /// The sink for `destination`; a file that cannot be opened is
    /// retried at every write.
    pub(super) fn open(destination: &Destination, syslog: &LogConfig, pid: u32) -> Sink {
        match destination {
            Destination::File(path) => {
                let file = match open_file(path) {
                    Ok(f) => Some(f),
                    Err(e) => {
                        log::error!(
                            "access log: cannot open {}: {e}; lines are lost until it can be opened",
                            path.display()
                        );
                        None
                    }
                };
                Sink::File {
                    path: path.clone(),
                    file,
                    reopen_due: false,
                    reopen_warned: false,
                }
            }
            Destination::Syslog => {
                let header = Header::new(syslog.syslog_facility(), &syslog.ident, pid);
                Sink::Syslog {
                    socket_path: syslog.syslog_socket.clone(),
                    socket: connect_syslog(&syslog.syslog_socket),
                    header,
                }
            }
        }
    }

    /// Writes the start of a line: syslog's header (nothing for a file).
    pub(super) fn push_prefix(&self, buf: &mut Vec<u8>, timestamp: &[u8; 15]) {
        if let Sink::Syslog { header, .. } = self {
            header.push(buf, syslog::Severity::LOG_INFO, timestamp);
        }
    }

    /// USR1: open the file again at the next write, reconnect syslog now.
    pub(super) fn reopen_requested(&mut self) {
        match self {
            Sink::File {
                reopen_due,
                reopen_warned,
                ..
            } => {
                *reopen_due = true;
                *reopen_warned = false;
            }
            Sink::Syslog {
                socket_path,
                socket,
                ..
            } => *socket = connect_syslog(socket_path),
        }
    }

    /// Writes `buf` (whole lines); `torn`: the last write ended mid-line.
    /// On failure returns how many bytes went out.
    pub(super) fn write(&mut self, buf: &[u8], torn: bool) -> Result<(), (io::Error, usize)> {
        match self {
            Sink::File { file: Some(f), .. } => {
                if torn {
                    // The last write stopped mid-line: end that line first
                    // so this buffer's lines stay whole.
                    let _ = write_all_counted(f, b"\n");
                }
                write_all_counted(f, buf)
            }
            Sink::File { file: None, .. } => {
                Err((io::Error::new(io::ErrorKind::NotFound, "not open"), 0))
            }
            Sink::Syslog {
                socket_path,
                socket,
                ..
            } => send_lines(socket, socket_path, buf),
        }
    }

    /// After USR1 (or a failed open): open the path again; on failure keep
    /// the file we have and try again at the next write.
    pub(super) fn try_reopen(&mut self) {
        let Sink::File {
            path,
            file,
            reopen_due,
            reopen_warned,
        } = self
        else {
            return;
        };
        if !*reopen_due && file.is_some() {
            return;
        }
        // Unprivileged by now: what we create belongs to the workers' user.
        match open_file(path) {
            Ok(f) => {
                if *reopen_warned {
                    log::warn!("access log: opened {} again", path.display());
                }
                *file = Some(f);
                *reopen_due = false;
                *reopen_warned = false;
            }
            Err(e) => {
                if !*reopen_warned {
                    *reopen_warned = true;
                    let what = if file.is_some() {
                        "writing to the file open before"
                    } else {
                        "lines are lost until it can be opened"
                    };
                    log::error!("access log: cannot open {}: {e}; {what}", path.display());
                }
                *reopen_due = true;
            }
        }
    }

    /// The file, or syslog and its socket, for log lines.
    pub(super) fn name(&self) -> String {
        match self {
            Sink::File { path, .. } => path.display().to_string(),
            Sink::Syslog { socket_path, .. } => format!("syslog {}", socket_path.display()),
        }
    }
}

/// Writes `data` with as few `write`s as the kernel allows (one, for a
/// regular file opened `O_APPEND`: the whole buffer lands at the end in one
/// piece). On failure returns how many bytes were written.
fn write_all_counted(f: &mut File, data: &[u8]) -> Result<(), (io::Error, usize)> {
    let mut done = 0;
    while done < data.len() {
        match f.write(&data[done..]) {
            Ok(0) => return Err((io::ErrorKind::WriteZero.into(), done)),
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err((e, done)),
        }
    }
    Ok(())
}

/// Sends each line of `data` as one datagram (without its newline). A
/// socket gone (syslog restarted) is reconnected once.
fn send_lines(
    socket: &mut Option<UnixDatagram>,
    path: &Path,
    data: &[u8],
) -> Result<(), (io::Error, usize)> {
    let mut done = 0;
    let mut reconnected = false;
    let mut first_error = None;
    for line in data.split_inclusive(|&b| b == b'\n') {
        let body = line.strip_suffix(b"\n").unwrap_or(line);
        loop {
            let Some(s) = socket.as_ref() else {
                if !reconnected {
                    reconnected = true;
                    *socket = connect_syslog(path);
                    continue;
                }
                first_error.get_or_insert_with(|| io::Error::from(io::ErrorKind::NotConnected));
                break;
            };
            match s.send(body) {
                Ok(_) => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e)
                    if e.kind() == io::ErrorKind::WouldBlock
                        || e.raw_os_error() == Some(libc::ENOBUFS) =>
                {
                    // A reader that does not keep up: this line is lost.
                    first_error.get_or_insert(e);
                    break;
                }
                Err(e) => {
                    *socket = None;
                    if reconnected {
                        first_error.get_or_insert(e);
                        break;
                    }
                }
            }
        }
        if first_error.is_none() {
            done += line.len();
        } else {
            break;
        }
    }
    match first_error {
        None => Ok(()),
        Some(e) => Err((e, done)),
    }
}

fn connect_syslog(path: &Path) -> Option<UnixDatagram> {
    let s = UnixDatagram::unbound().ok()?;
    s.connect(path).ok()?;
    s.set_nonblocking(true).ok()?;
    Some(s)
}

//! The command line, run against the real binary: `-V`, `-h`, bad flags and
//! `-w 0` (usage, exit 2), and `-t` on a good config (exit 0, "ok"), on bad
//! ones (exit 1, `FILE:LINE:COL:` and the key: unknown key, `workers = 0`,
//! bad duration, bad listen address, wrong type) and on a missing file.
mod common;

use common::*;

const LONG_OPTIONS: [&str; 8] = [
    "--config",
    "--listen",
    "--workers",
    "--pid-file",
    "--log-target",
    "--test-config",
    "--version",
    "--help",
];

/// `write_file`, the path as text.
fn config_path(dir: &TempDir, name: &str, text: &str) -> String {
    write_file(dir, name, text).display().to_string()
}

/// Runs `-t -c` on `text`, expects exit 1 and one error line starting
/// `preforkd: FILE:LINE:COL: ` that names `key`; returns the message after
/// the position.
fn rejected(text: &str, line: usize, col: usize, key: &str) -> String {
    let dir = TempDir::new();
    let path = config_path(&dir, "bad.toml", text);
    let (code, out, err) = run_bin(&["-t", "-c", &path]);
    assert_eq!(code, 1, "exit status for {text:?}; stderr {err:?}");
    assert_eq!(out, "", "nothing on stdout for {text:?}");
    assert_eq!(err.lines().count(), 1, "one line on stderr: {err:?}");
    let prefix = format!("preforkd: {path}:{line}:{col}: ");
    let message = err
        .trim_end()
        .strip_prefix(&prefix)
        .unwrap_or_else(|| panic!("{err:?} does not start with {prefix:?}"))
        .to_owned();
    assert!(
        message.contains(key),
        "{message:?} does not name the key {key:?}"
    );
    message
}

#[test]
fn version_flag() {
    let want = format!("preforkd {}\n", env!("CARGO_PKG_VERSION"));
    for flag in ["-V", "--version"] {
        let (code, out, err) = run_bin(&[flag]);
        assert_eq!(code, 0, "{flag}: {err}");
        assert_eq!(out, want, "{flag}");
        assert_eq!(err, "", "{flag}");
    }
}

#[test]
fn help_flag_lists_every_long_option() {
    for flag in ["-h", "--help"] {
        let (code, out, err) = run_bin(&[flag]);
        assert_eq!(code, 0, "{flag}: {err}");
        assert!(out.starts_with("usage: preforkd "), "{out}");
        for option in LONG_OPTIONS {
            assert!(out.contains(option), "{flag}: {option} missing from\n{out}");
        }
        assert_eq!(err, "", "{flag}");
    }
}

#[test]
fn bad_flag_prints_usage_and_exits_2() {
    for args in [
        &["--no-such-flag"][..],
        &["-x"],
        &["stray"],
        &["-c"],
        &["-l", "localhost:80"],
        &["--log-target", "file"],
    ] {
        let (code, out, err) = run_bin(args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert_eq!(out, "", "{args:?}: nothing on stdout");
        assert!(err.starts_with("preforkd: "), "{args:?}: {err}");
        assert!(err.contains("\nusage: preforkd "), "{args:?}: {err}");
    }
    let (_, _, err) = run_bin(&["--no-such-flag"]);
    assert!(err.contains("--no-such-flag"), "names the flag: {err}");
}

#[test]
fn zero_workers_flag_exits_2() {
    for args in [&["-w", "0"][..], &["--workers", "0"], &["-w0"]] {
        let (code, out, err) = run_bin(args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert_eq!(out, "");
        assert!(err.contains("worker count '0'"), "{args:?}: {err}");
        assert!(err.contains("usage: preforkd "), "{args:?}: {err}");
    }
}

#[test]
fn test_config_accepts_a_good_file() {
    let dir = TempDir::new();
    let path = config_path(
        &dir,
        "good.toml",
        "listen = [\"127.0.0.1:8080\", \"[::1]:8080\"]\nworkers = 2\nshutdown_timeout = \"20s\"\n\
         drain_idle_grace = \"250ms\"\n[response]\nstatus = 404\nbody = \"nope\\n\"\n\
         [log]\nident = \"web\"\nfacility = \"local0\"\n",
    );
    for flag in ["-t", "--test-config"] {
        let (code, out, err) = run_bin(&[flag, "-c", &path]);
        assert_eq!(code, 0, "{flag}: {err}");
        assert_eq!(out, format!("preforkd: configuration {path} is ok\n"));
        assert_eq!(err, "");
    }
}

#[test]
fn test_config_unknown_key() {
    let m = rejected("workers = 2\n\nwokers = 3\n", 3, 1, "\"wokers\"");
    assert!(m.starts_with("unknown key \"wokers\""), "{m}");
    let m = rejected("[log]\nlevle = \"info\"\n", 2, 1, "\"levle\"");
    assert!(m.starts_with("unknown key \"levle\""), "{m}");
}

#[test]
fn test_config_zero_workers() {
    let m = rejected("\nworkers = 0\n", 2, 11, "workers");
    assert!(m.contains("from 1 to 1024"), "{m}");
}

#[test]
fn test_config_bad_duration() {
    let m = rejected(
        "workers = 1\nkeepalive_timeout = \"5x\"\n",
        2,
        21,
        "keepalive_timeout",
    );
    assert!(m.contains("invalid duration \"5x\""), "{m}");
    let m = rejected("shutdown_timeout = \"0s\"\n", 1, 20, "shutdown_timeout");
    assert!(m.contains("invalid duration \"0s\""), "{m}");
}

#[test]
fn test_config_bad_listen_address() {
    let m = rejected("listen = [\"localhost:80\"]\n", 1, 10, "listen");
    assert!(m.contains("\"localhost:80\""), "{m}");
    let m = rejected("listen = [\"127.0.0.1\"]\n", 1, 10, "listen");
    assert!(m.contains("\"127.0.0.1\""), "{m}");
}

#[test]
fn test_config_wrong_type() {
    let m = rejected("backlog = \"big\"\n", 1, 11, "backlog");
    assert!(m.contains("invalid type"), "{m}");
    let m = rejected("workers = 2\nlisten = \"127.0.0.1:80\"\n", 2, 10, "listen");
    assert!(m.contains("invalid type"), "{m}");
    let m = rejected("[response]\nstatus = \"ok\"\n", 2, 10, "response.status");
    assert!(m.contains("invalid type"), "{m}");
    let m = rejected("[log]\nlevel = 3\n", 2, 9, "log.level");
    assert!(m.contains("invalid type"), "{m}");
}

#[test]
fn test_config_wrong_type_in_a_multiline_array_names_the_key() {
    rejected(
        "listen = [\n    \"127.0.0.1:80\",\n    5,\n]\n",
        3,
        5,
        "listen",
    );
}

#[test]
fn test_config_missing_file() {
    let dir = TempDir::new();
    let path = dir.path().join("missing.toml").display().to_string();
    let (code, out, err) = run_bin(&["-t", "-c", &path]);
    assert_eq!(code, 1, "{err}");
    assert_eq!(out, "");
    assert_eq!(err.lines().count(), 1, "{err:?}");
    assert!(
        err.starts_with(&format!("preforkd: {path}: cannot read: ")),
        "{err:?}"
    );
    assert!(err.contains("No such file"), "{err:?}");
}

//! The man pages stay in step with the code: every long option of
//! `preforkd --help` is documented in preforkd(8) and every option
//! documented there exists; every config key the parser accepts (as its own
//! "unknown key" errors list them, per table) is documented in
//! preforkd.toml(5), and every key documented there is accepted.
#![allow(clippy::unwrap_used)] // a test fails loudly on the first surprise
mod common;

use std::collections::BTreeSet;

use common::*;

fn page(name: &str) -> String {
    std::fs::read_to_string(format!("{}/man/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

/// `--word` options in text, with roff's `\-\-` read as `--`.
fn long_options(text: &str) -> BTreeSet<String> {
    let text = text.replace("\\-", "-");
    let mut out = BTreeSet::new();
    for (i, _) in text.match_indices("--") {
        let name: String = text[i + 2..]
            .chars()
            .take_while(|c| c.is_ascii_lowercase() || *c == '-')
            .collect();
        if name.len() > 1 {
            out.insert(name);
        }
    }
    out
}

#[test]
fn every_long_option_is_in_preforkd_8_and_back() {
    let (code, help, _) = run_bin(&["--help"]);
    assert_eq!(code, 0);
    let in_help = long_options(&help);
    let in_page = long_options(&page("preforkd.8"));
    assert!(in_help.len() >= 10, "options found in --help: {in_help:?}");
    let missing: Vec<_> = in_help.difference(&in_page).collect();
    assert!(
        missing.is_empty(),
        "in --help but not in preforkd.8: {missing:?}"
    );
    let extra: Vec<_> = in_page.difference(&in_help).collect();
    assert!(
        extra.is_empty(),
        "in preforkd.8 but not in --help: {extra:?}"
    );
}

/// The keys the parser accepts in one table, from its own error message
/// for an unknown key there.
fn accepted_keys(table: Option<&str>) -> BTreeSet<String> {
    let dir = TempDir::new();
    let path = dir.path().join("probe.toml");
    let text = match table {
        Some(t) => format!("[{t}]\nno_such_key_here = 1\n"),
        None => "no_such_key_here = 1\n".to_owned(),
    };
    std::fs::write(&path, text).unwrap();
    let (code, _, err) = run_bin(&["-t", "-c", path.to_str().unwrap()]);
    assert_eq!(code, 1, "{err}");
    let list = err
        .split_once("expected one of")
        .unwrap_or_else(|| panic!("no key list in {err:?}"))
        .1;
    list.split('"')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

/// Keys documented in preforkd.toml(5): the first word of each `.TP`
/// heading, grouped by the `.SH` section they stand in.
fn documented_keys(section: &str) -> BTreeSet<String> {
    let text = page("preforkd.toml.5");
    let mut out = BTreeSet::new();
    let mut in_section = false;
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        if let Some(name) = line.strip_prefix(".SH ") {
            in_section = name.trim_matches('"') == section;
        } else if in_section && line == ".TP" {
            let heading = lines.next().unwrap_or("");
            if let Some(word) = heading
                .split_whitespace()
                .nth(1)
                .filter(|_| heading.starts_with(".B"))
            {
                out.insert(word.to_owned());
            }
        }
    }
    out
}

#[test]
fn every_config_key_is_in_preforkd_toml_5_and_back() {
    for (table, section) in [
        (None, "TOP-LEVEL KEYS"),
        (Some("response"), "[response]"),
        (Some("[route]"), "[[route]]"),
        (Some("maintenance"), "[maintenance]"),
        (Some("log"), "[log]"),
        (Some("access_log"), "[access_log]"),
        (Some("tls"), "[tls]"),
    ] {
        let mut accepted = accepted_keys(table);
        if table.is_none() {
            // The tables themselves have sections of their own.
            accepted.remove("response");
            accepted.remove("route");
            accepted.remove("maintenance");
            accepted.remove("log");
            accepted.remove("access_log");
            accepted.remove("tls");
        }
        let documented = documented_keys(section);
        assert!(!accepted.is_empty() && !documented.is_empty(), "{section}");
        assert_eq!(
            accepted, documented,
            "keys the parser accepts vs keys preforkd.toml(5) documents under {section}"
        );
    }
}

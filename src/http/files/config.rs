//! The validated keys of a `kind = "files"` route: [`FilesConfig`], built
//! from plain values ([`FilesKeys`]) by [`FilesConfig::from_keys`], with one
//! error per problem naming its key.
//!
//! Reading the TOML (and the `file:line:col` of a key) is the config
//! loader's job; this module only checks values. Its one look at the disk is
//! a `stat` of `root`, which must exist at `-t`, start and reload.

use std::fmt;
use std::path::{Path, PathBuf};

use super::target;
use super::{Dotfiles, Encoding};

/// The route's keys as written, before validation. Absent keys are `None`
/// (or empty, for `index`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FilesKeys {
    pub root: Option<String>,
    pub index: Vec<String>,
    /// `None`: the default list, [`Encoding::ALL`].
    pub precompressed: Option<Vec<String>>,
    pub cache_control: Option<String>,
    pub dotfiles: Option<String>,
    pub listing: Option<bool>,
    pub fallback: Option<String>,
}

/// A `kind = "files"` route, validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FilesConfig {
    /// Absolute, or relative to the working directory if the base was.
    pub root: PathBuf,
    /// File names tried, in order, for a path that names a directory.
    pub index: Vec<String>,
    /// Tried in this order, each if the client accepts it.
    pub precompressed: Vec<Encoding>,
    pub cache_control: Option<String>,
    pub dotfiles: Dotfiles,
    pub listing: bool,
    /// A path beneath root (starting with `/`), answered for a missing file.
    pub fallback: Option<String>,
}

/// A key's value is wrong; shown as `key: message`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyError {
    pub key: &'static str,
    pub message: String,
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

impl std::error::Error for KeyError {}

fn err(key: &'static str, message: impl Into<String>) -> KeyError {
    KeyError {
        key,
        message: message.into(),
    }
}

impl FilesConfig {
    /// Validates `keys`; a relative `root` is taken relative to `base_dir`
    /// (the configuration file's directory).
    pub fn from_keys(keys: FilesKeys, base_dir: &Path) -> Result<FilesConfig, KeyError> {
        let root = check_root(keys.root.as_deref(), base_dir)?;
        for name in &keys.index {
            check_index(name)?;
        }
        let precompressed = match keys.precompressed {
            None => Encoding::ALL.to_vec(),
            Some(names) => check_precompressed(&names)?,
        };
        if let Some(v) = &keys.cache_control {
            check_field_value(v).map_err(|m| err("cache_control", m))?;
        }
        let dotfiles = match keys.dotfiles.as_deref() {
            None | Some("deny") => Dotfiles::Deny,
            Some("allow") => Dotfiles::Allow,
            Some(other) => {
                return Err(err(
                    "dotfiles",
                    format!("{other:?} is neither \"deny\" nor \"allow\""),
                ))
            }
        };
        if let Some(f) = &keys.fallback {
            check_fallback(f)?;
        }
        Ok(FilesConfig {
            root,
            index: keys.index,
            precompressed,
            cache_control: keys.cache_control,
            dotfiles,
            listing: keys.listing.unwrap_or(false),
            fallback: keys.fallback,
        })
    }
}

fn check_root(root: Option<&str>, base_dir: &Path) -> Result<PathBuf, KeyError> {
    let root = match root {
        None => return Err(err("root", "missing (the directory to serve)")),
        Some("") => return Err(err("root", "empty")),
        Some(r) => base_dir.join(r),
    };
    match std::fs::metadata(&root) {
        Ok(m) if m.is_dir() => Ok(root),
        Ok(_) => Err(err(
            "root",
            format!("{} is not a directory", root.display()),
        )),
        Err(e) => Err(err("root", format!("{}: {e}", root.display()))),
    }
}

fn check_index(name: &str) -> Result<(), KeyError> {
    let bad = name.is_empty()
        || name == "."
        || name == ".."
        || name.contains('/')
        || name.chars().any(char::is_control);
    if bad {
        return Err(err(
            "index",
            format!("{name:?} is not a file name (no \"/\", not \".\" or \"..\")"),
        ));
    }
    Ok(())
}

fn check_precompressed(names: &[String]) -> Result<Vec<Encoding>, KeyError> {
    let mut out = Vec::new();
    for name in names {
        let Some(e) = Encoding::from_name(name) else {
            return Err(err(
                "precompressed",
                format!("unknown encoding {name:?} (known: \"br\", \"zstd\", \"gzip\")"),
            ));
        };
        if out.contains(&e) {
            return Err(err("precompressed", format!("{name:?} is listed twice")));
        }
        out.push(e);
    }
    Ok(out)
}

/// A field value we can put on a header line as it is (RFC 9110 5.5):
/// visible ASCII and spaces, no leading or trailing space.
fn check_field_value(v: &str) -> Result<(), String> {
    if v.is_empty() || v.starts_with([' ', '\t']) || v.ends_with([' ', '\t']) {
        return Err("empty, or space at either end".into());
    }
    if !v
        .bytes()
        .all(|b| b == b' ' || b == b'\t' || (0x21..0x7f).contains(&b))
    {
        return Err(format!("{v:?} holds a byte not allowed in a header"));
    }
    Ok(())
}

fn check_fallback(f: &str) -> Result<(), KeyError> {
    if !f.starts_with('/') {
        return Err(err("fallback", format!("{f:?} does not start with \"/\"")));
    }
    if f.contains(['?', '#']) {
        return Err(err(
            "fallback",
            format!("{f:?} is a path: no \"?\" or \"#\""),
        ));
    }
    // The fallback is looked up like a request path, so it must be one.
    match target::resolve(f.as_bytes(), Dotfiles::Allow) {
        Ok(t) if !t.is_dir_request() => Ok(()),
        Ok(_) => Err(err(
            "fallback",
            format!("{f:?} names a directory, not a file"),
        )),
        Err(_) => Err(err(
            "fallback",
            format!("{f:?} is not a path beneath root (\"..\", NUL, backslash or bad %-escape)"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::files::testdir::TestDir;

    fn keys(root: &str) -> FilesKeys {
        FilesKeys {
            root: Some(root.into()),
            ..FilesKeys::default()
        }
    }

    fn error(keys: FilesKeys, base: &Path) -> String {
        FilesConfig::from_keys(keys, base)
            .expect_err("invalid")
            .to_string()
    }

    #[test]
    fn defaults_and_relative_root() {
        let dir = TestDir::new("config");
        std::fs::create_dir(dir.path().join("www")).unwrap();
        let c = FilesConfig::from_keys(keys("www"), dir.path()).unwrap();
        assert_eq!(c.root, dir.path().join("www"));
        assert_eq!(c.precompressed, Encoding::ALL.to_vec());
        assert_eq!(c.dotfiles, Dotfiles::Deny);
        assert!(!c.listing);
        assert!(c.index.is_empty() && c.fallback.is_none() && c.cache_control.is_none());
        // An absolute root ignores the base.
        let abs = dir.path().join("www");
        let c = FilesConfig::from_keys(keys(abs.to_str().unwrap()), Path::new("/nowhere")).unwrap();
        assert_eq!(c.root, abs);
    }

    #[test]
    fn all_keys() {
        let dir = TestDir::new("config");
        let c = FilesConfig::from_keys(
            FilesKeys {
                root: Some(".".into()),
                index: vec!["index.html".into(), "index.htm".into()],
                precompressed: Some(vec!["gzip".into(), "br".into()]),
                cache_control: Some("max-age=3600, public".into()),
                dotfiles: Some("allow".into()),
                listing: Some(true),
                fallback: Some("/index.html".into()),
            },
            dir.path(),
        )
        .unwrap();
        assert_eq!(c.precompressed, vec![Encoding::Gzip, Encoding::Br]);
        assert_eq!(c.dotfiles, Dotfiles::Allow);
        assert!(c.listing);
        assert_eq!(c.fallback.as_deref(), Some("/index.html"));
        let none = FilesKeys {
            precompressed: Some(vec![]),
            ..keys(".")
        };
        let c = FilesConfig::from_keys(none, dir.path()).unwrap();
        assert!(c.precompressed.is_empty());
    }

    #[test]
    fn root_errors_name_the_key() {
        let dir = TestDir::new("config");
        dir.file("plain", b"x");
        let base = dir.path();
        assert_eq!(
            error(FilesKeys::default(), base),
            "root: missing (the directory to serve)"
        );
        let e = error(keys("absent"), base);
        assert!(
            e.starts_with("root: ") && e.contains("absent: No such file"),
            "{e}"
        );
        let e = error(keys("plain"), base);
        assert!(e.ends_with("plain is not a directory"), "{e}");
    }

    #[test]
    fn other_errors_name_the_key() {
        let dir = TestDir::new("config");
        let base = dir.path();
        let with = |f: &dyn Fn(&mut FilesKeys)| {
            let mut k = keys(".");
            f(&mut k);
            error(k, base)
        };
        let e = with(&|k| k.precompressed = Some(vec!["deflate".into()]));
        assert!(
            e.starts_with("precompressed: unknown encoding \"deflate\""),
            "{e}"
        );
        let e = with(&|k| k.precompressed = Some(vec!["br".into(), "br".into()]));
        assert_eq!(e, "precompressed: \"br\" is listed twice");
        let e = with(&|k| k.dotfiles = Some("hide".into()));
        assert_eq!(e, "dotfiles: \"hide\" is neither \"deny\" nor \"allow\"");
        for bad in ["index.html", "", "/../x", "/%00", "/a/", "/a?b"] {
            let e = with(&|k| k.fallback = Some(bad.into()));
            assert!(e.starts_with("fallback: "), "{bad}: {e}");
        }
        for bad in ["", "a/b", "..", "a\nb"] {
            let e = with(&|k| k.index = vec![bad.into()]);
            assert!(e.starts_with("index: "), "{bad:?}: {e}");
        }
        for bad in ["", " x", "a\r\nSet-Cookie: x", "é"] {
            let e = with(&|k| k.cache_control = Some(bad.into()));
            assert!(e.starts_with("cache_control: "), "{bad:?}: {e}");
        }
    }
}

//! What a files route does after each lookup, as a pure function of the
//! request's [`Target`], what [`Root::open`](super::open::Root::open) found
//! and the route's [`FilesConfig`], so that the caller's sequence (open,
//! maybe index files, maybe the listing or the fallback) has its decisions
//! in one tested place:
//!
//! - a file named with a trailing slash (`/a.txt/`) → 404, as a kernel
//!   lookup of `a.txt/` would say (ENOTDIR) and nginx does;
//! - a directory named without its slash → redirect to the slash form
//!   (nginx answers 301; relative links in the index resolve then);
//! - a directory with its slash → its `index` files in order, then the
//!   listing if `listing = true`, else 404. nginx answers 403 there; 404
//!   says less (and matches a denied dot file), while the redirect already
//!   admits that the directory exists, so nothing is gained by 403;
//! - missing → the `fallback` if configured (answered 200, for
//!   single-page apps), else 404. A refusal by `target.rs` (400, or 404 for
//!   a dot file) is answered as it is, never with the fallback, nor is a
//!   missing index file or a missing fallback itself;
//! - permission denied → 403; any other error → 500, to be logged.

use super::config::FilesConfig;
use super::open::{OpenError, Opened};
use super::target::Target;

/// The next thing to do for a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Serve the file just opened (through `decide`).
    Serve,
    /// Answer a redirect to the request path with `/` appended (the query
    /// kept); the caller builds the `Location`.
    RedirectToSlash,
    /// Open `index[i]` in the directory (`Target::join`).
    Index(usize),
    /// Answer the directory's listing.
    List,
    /// Look up the configured fallback path instead.
    Fallback,
    /// Answer this status.
    Refuse(u16),
}

/// Which lookup's result is being judged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lookup {
    /// The request's own target.
    Request,
    /// `index[i]` in the requested directory.
    Index(usize),
    /// The configured fallback.
    Fallback,
}

/// The step after `lookup` of `t` gave `found`.
pub fn after(
    lookup: Lookup,
    t: &Target,
    found: &Result<Opened, OpenError>,
    cfg: &FilesConfig,
) -> Step {
    match (lookup, found) {
        (Lookup::Request, Ok(Opened::File(..))) if t.is_dir_request() => Step::Refuse(404),
        (_, Ok(Opened::File(..))) => Step::Serve,
        (Lookup::Request, Ok(Opened::Directory(..))) if !t.is_dir_request() => {
            Step::RedirectToSlash
        }
        (Lookup::Request, Ok(Opened::Directory(..))) => next_index(0, cfg),
        // An index entry that is a directory is passed over, as a missing one.
        (Lookup::Index(i), Ok(Opened::Directory(..)) | Err(OpenError::NotFound)) => {
            next_index(i + 1, cfg)
        }
        (Lookup::Request, Err(OpenError::NotFound)) if cfg.fallback.is_some() => Step::Fallback,
        (_, Ok(Opened::Directory(..))) => Step::Refuse(404),
        (_, Err(e)) => Step::Refuse(e.status()),
    }
}

/// The index file to try from `i` on, then the listing or 404.
fn next_index(i: usize, cfg: &FilesConfig) -> Step {
    if i < cfg.index.len() {
        Step::Index(i)
    } else if cfg.listing {
        Step::List
    } else {
        Step::Refuse(404)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::files::open::Root;
    use crate::http::files::target::resolve;
    use crate::http::files::testdir::TestDir;
    use crate::http::files::Dotfiles;
    use nix::errno::Errno;

    fn cfg(index: &[&str], listing: bool, fallback: bool) -> FilesConfig {
        FilesConfig {
            root: "/".into(),
            index: index.iter().map(|s| s.to_string()).collect(),
            precompressed: vec![],
            cache_control: None,
            dotfiles: Dotfiles::Deny,
            listing,
            fallback: fallback.then(|| "/index.html".into()),
        }
    }

    /// Runs the whole sequence for `path` as a caller would; the steps
    /// taken, last one included.
    fn walk(root: &Root, path: &str, cfg: &FilesConfig) -> Vec<Step> {
        let t = resolve(path.as_bytes(), cfg.dotfiles).unwrap();
        let mut steps = vec![after(Lookup::Request, &t, &root.open(t.rel()), cfg)];
        loop {
            let step = match *steps.last().unwrap() {
                Step::Index(i) => {
                    let idx = t.join(&cfg.index[i]);
                    after(Lookup::Index(i), &idx, &root.open(idx.rel()), cfg)
                }
                Step::Fallback => {
                    let f = cfg.fallback.as_deref().unwrap();
                    let ft = resolve(f.as_bytes(), Dotfiles::Allow).unwrap();
                    after(Lookup::Fallback, &ft, &root.open(ft.rel()), cfg)
                }
                _ => return steps,
            };
            steps.push(step);
        }
    }

    #[test]
    fn sequences() {
        let d = TestDir::new("steps");
        d.files(&[
            ("index.html", b"spa"),
            ("a.txt", b"a"),
            ("docs/index.htm", b"docs"),
            ("empty/.keep", b""),
        ]);
        std::fs::create_dir_all(d.path().join("trap/index.html")).unwrap();
        let root = Root::new(d.path()).unwrap();
        let plain = cfg(&[], false, false);
        let full = cfg(&["index.html", "index.htm"], true, true);
        use Step::*;
        let cases: &[(&str, &FilesConfig, &[Step])] = &[
            ("/a.txt", &plain, &[Serve]),
            ("/a.txt/", &plain, &[Refuse(404)]),
            ("/docs", &plain, &[RedirectToSlash]),
            ("/docs/", &plain, &[Refuse(404)]),
            ("/docs/", &full, &[Index(0), Index(1), Serve]),
            ("/", &full, &[Index(0), Serve]),
            // Prefix `/x` and a request for `/x`: root without its slash.
            ("", &full, &[RedirectToSlash]),
            ("/empty/", &full, &[Index(0), Index(1), List]),
            // An index name that is a directory is skipped.
            ("/trap/", &full, &[Index(0), Index(1), List]),
            ("/missing", &plain, &[Refuse(404)]),
            ("/missing", &full, &[Fallback, Serve]),
            ("/missing/deeper/", &full, &[Fallback, Serve]),
        ];
        for (path, cfg, want) in cases {
            assert_eq!(walk(&root, path, cfg), *want, "{path}");
        }
        // A fallback that is missing too, or a directory: 404, no loop.
        std::fs::remove_file(d.path().join("index.html")).unwrap();
        assert_eq!(walk(&root, "/missing", &full), [Fallback, Refuse(404)]);
        std::fs::create_dir(d.path().join("index.html")).unwrap();
        assert_eq!(walk(&root, "/missing", &full), [Fallback, Refuse(404)]);
    }

    #[test]
    fn errors() {
        let t = resolve(b"x", Dotfiles::Deny).unwrap();
        let c = cfg(&["i"], true, true);
        let forbidden = Err(OpenError::Forbidden);
        let other = Err(OpenError::Other(Errno::EMFILE));
        assert_eq!(
            after(Lookup::Request, &t, &forbidden, &c),
            Step::Refuse(403)
        );
        assert_eq!(after(Lookup::Request, &t, &other, &c), Step::Refuse(500));
        assert_eq!(
            after(Lookup::Index(0), &t, &forbidden, &c),
            Step::Refuse(403)
        );
        let gone = Err(OpenError::NotFound);
        assert_eq!(after(Lookup::Fallback, &t, &gone, &c), Step::Refuse(404));
    }
}

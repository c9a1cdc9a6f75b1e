//! The simulated server's `kind = "files"` route and the directory it
//! serves: a tree made once per process beneath the temp directory (its
//! files, a subdirectory with an index, a dot file, a precompressed
//! sibling, a symlink that stays inside root and one that points to a
//! sibling `outside/secret` holding [`SECRET`]), the route over it, the
//! path fragments the request model builds file requests from, and what
//! the oracle accepts of a files answer. The checks themselves are the
//! oracle's (`oracle.rs`); sending the requests is the model's (`model.rs`).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::http::files::config::FilesConfig;
use crate::http::files::{Dotfiles, Encoding};
use crate::http::route::{Answer, Methods, PathMatch, RouteSpec};

/// The files route's prefix; the observer names its answers `/files/*`.
pub const PREFIX: &str = "/files/";

/// The route's name in an [`Exchange`](crate::obs::exchange::Exchange).
pub const ROUTE_NAME: &str = "/files/*";

/// The content of `outside/secret`, next to root: no answer may ever hold
/// these bytes (head or body), whatever the path asked for.
pub const SECRET: &[u8] = b"SIM-SECRET-outside-root-8f2c41d7";

/// The regular files beneath root and their contents. None of them is
/// empty (an empty body cannot be told from a HEAD answer's) or starts
/// like a status line.
pub const TREE: [(&str, &[u8]); 6] = [
    ("a.txt", b"alpha: a file at the top of root\n"),
    ("a.txt.gz", b"alpha, precompressed (not really gzip)\n"),
    ("dir/index.html", b"<p>the index of dir</p>\n"),
    ("dir/b.css", b"p { color: teal }\n"),
    ("dir/deep/c.txt", b"gamma: two levels down\n"),
    (".hidden", b"a dot file, denied\n"),
];

/// Symlinks beneath root: (name, target). `link-in` stays inside root;
/// `link-out` and `dir/up` lead out of it, to the secret.
pub const LINKS: [(&str, &str); 4] = [
    ("link-in", "a.txt"),
    ("dir/link-in", "../a.txt"),
    ("link-out", "../outside/secret"),
    ("dir/up", "../../outside"),
];

/// Statuses a files route may answer with (its route's 204 for OPTIONS
/// and 405 for other methods included); a 500 would mean the fixture or
/// the route broke.
pub const STATUSES: [u16; 11] = [200, 204, 206, 301, 304, 400, 403, 404, 405, 412, 416];

/// The directory holding root and `outside/`: made at first use, once per
/// process (property tests run on many threads; fuzz targets are one
/// process each), and left for the temp directory's cleaning.
pub fn base() -> &'static Path {
    static BASE: OnceLock<PathBuf> = OnceLock::new();
    BASE.get_or_init(|| {
        let base = std::env::temp_dir().join(format!("preforkd-sim-{}", std::process::id()));
        // A dead process of the same pid may have left one behind.
        let _ = std::fs::remove_dir_all(&base);
        make_tree(&base);
        base
    })
}

/// The files route's root.
pub fn root() -> PathBuf {
    base().join("root")
}

fn make_tree(base: &Path) {
    let root = base.join("root");
    let outside = base.join("outside");
    std::fs::create_dir_all(&outside).expect("create the sim's outside dir");
    std::fs::write(outside.join("secret"), SECRET).expect("write the sim's secret");
    for (rel, contents) in TREE {
        let p = root.join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("create the sim's root dirs");
        }
        std::fs::write(&p, contents).expect("write a sim file");
    }
    for (rel, to) in LINKS {
        std::os::unix::fs::symlink(to, root.join(rel)).expect("create a sim symlink");
    }
}

/// The files route of the simulated server: `GET` (and so `HEAD`) beneath
/// [`PREFIX`], `index.html` for directories, every precompressed encoding,
/// dot files denied, no listing.
pub fn route() -> RouteSpec {
    RouteSpec {
        path: PathMatch::Prefix(PREFIX.into()),
        host: None,
        methods: Methods::parse(["GET"]).expect("known methods"),
        answer: Answer::Files(FilesConfig {
            root: root(),
            index: vec!["index.html".into()],
            precompressed: Encoding::ALL.to_vec(),
            cache_control: None,
            dotfiles: Dotfiles::Deny,
            listing: false,
            fallback: None,
        }),
    }
}

/// Paths after [`PREFIX`] whose answer to a plain GET is known: (path,
/// status, the body of a 200). Symlinks inside root are followed, those
/// leading out are 404 (as if absent); a climb above root, NUL, a backslash and
/// overlong UTF-8 are 400, and a double encoding is a plain name.
pub const KNOWN: [(&str, u16, Option<&[u8]>); 20] = [
    ("a.txt", 200, Some(TREE[0].1)),
    ("dir/", 200, Some(TREE[2].1)),
    ("dir", 301, None),
    ("dir/b.css", 200, Some(TREE[3].1)),
    ("dir/deep/c.txt", 200, Some(TREE[4].1)),
    ("link-in", 200, Some(TREE[0].1)),
    ("dir/link-in", 200, Some(TREE[0].1)),
    ("dir/../a.txt", 200, Some(TREE[0].1)),
    ("dir/%2e%2e/a.txt", 200, Some(TREE[0].1)),
    ("dir%2fb.css", 200, Some(TREE[3].1)),
    ("link-out", 404, None),
    ("dir/up/secret", 404, None),
    (".hidden", 404, None),
    ("%252e%252e/a.txt", 404, None),
    ("../outside/secret", 400, None),
    ("%2e%2e/outside/secret", 400, None),
    ("dir/deep/../../../outside/secret", 400, None),
    ("a.txt%00", 400, None),
    ("%5c..%5ca.txt", 400, None),
    ("%c0%ae%c0%ae/outside/secret", 400, None),
];

/// The known answer to a GET of `path` (after [`PREFIX`]), if any.
pub fn known(path: &str) -> Option<(u16, Option<&'static [u8]>)> {
    KNOWN
        .iter()
        .find(|(p, ..)| *p == path)
        .map(|&(_, status, body)| (status, body))
}

/// What a generated file path is made of, one fragment per byte of a
/// model's (or a fuzzer's) choice: names that exist, and every way of
/// spelling a climb out of root that a request parser lets through
/// (`..`, `%2e`, `%2f`, `%00`, `%5c` for `\`, the overlong `%c0%ae`,
/// double encoding). A raw `\` is not among them: the parser refuses it
/// (400, close), which the raw-bytes tests cover.
pub const FRAGMENTS: [&str; 32] = [
    "a.txt",
    "a.txt.gz",
    "dir",
    "dir/",
    "index.html",
    "deep/",
    "c.txt",
    "link-in",
    "link-out",
    "up/",
    "outside/",
    "secret",
    ".hidden",
    "/",
    "//",
    ".",
    "./",
    "..",
    "../",
    "%2e",
    "%2e%2e",
    "%2E%2e/",
    "..%2f",
    "%2f",
    "%2F..%2F",
    "%00",
    "%5c",
    "..%5c",
    "%c0%ae",
    "%c0%ae%c0%ae/",
    "%252e%252e/",
    "?q=..%2f",
];

/// The path after [`PREFIX`] that `choices` pick from [`FRAGMENTS`]
/// (each modulo its length).
pub fn path_from(choices: &[u8]) -> String {
    choices
        .iter()
        .map(|&c| FRAGMENTS[usize::from(c) % FRAGMENTS.len()])
        .collect()
}

/// Whether `body` may be what a files answer sent with `status`: a 200 is
/// one whole file of [`TREE`], a 206 a piece of one, anything else our own
/// short text (a reason phrase and a newline).
pub fn body_ok(status: u16, body: &[u8]) -> bool {
    match status {
        200 => TREE.iter().any(|(_, c)| *c == body),
        206 => TREE.iter().any(|(_, c)| contains(c, body)),
        _ => body.len() < 64 && body.ends_with(b"\n") && !body.contains(&b'<'),
    }
}

/// `needle` occurs in `hay` (an empty needle does).
pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle)
}

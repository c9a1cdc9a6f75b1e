//! `listing = true`: an HTML index of a directory, for a request that names
//! it (with its trailing slash) when no index file answers.
//!
//! [`read_entries`] reads the names from a directory opened by
//! `open.rs` (through `/proc/self/fd`, which reopens that very directory,
//! not a path that could have changed; nix's `dir` module, not enabled in
//! this build, would do it without /proc). [`render`] makes the page: the
//! directories first, then files, each sorted by name; names HTML-escaped
//! in the text and percent-encoded in relative hrefs; dot files left out
//! unless `dotfiles = "allow"`; at most [`MAX_ENTRIES`], with a note when
//! there were more. Names that are not UTF-8 are left out: `target.rs`
//! refuses such paths, so their links could not work.
//!
//! A symlink is listed as a file whatever it points to (no `stat` through
//! it, which could look outside root); following its link to a directory
//! gets the caller's trailing-slash redirect.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;

use super::Dotfiles;

/// The most entries one listing shows.
pub const MAX_ENTRIES: usize = 10_000;

/// One name in a directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub name: String,
    pub is_dir: bool,
}

/// A directory's entries, at most [`MAX_ENTRIES`], in no order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Entries {
    pub entries: Vec<Entry>,
    /// There were more than [`MAX_ENTRIES`].
    pub truncated: bool,
}

/// Reads the entries of `dir` (an [`Opened::Directory`](super::open::Opened)).
pub fn read_entries(dir: &File, dotfiles: Dotfiles) -> io::Result<Entries> {
    let path = format!("/proc/self/fd/{}", dir.as_raw_fd());
    let mut out = Entries::default();
    for entry in std::fs::read_dir(path)? {
        let entry = entry?;
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        if !shown(&name, dotfiles) {
            continue;
        }
        if out.entries.len() == MAX_ENTRIES {
            out.truncated = true;
            break;
        }
        let is_dir = entry.file_type()?.is_dir();
        out.entries.push(Entry { name, is_dir });
    }
    Ok(out)
}

fn shown(name: &str, dotfiles: Dotfiles) -> bool {
    // `target.rs` refuses these names in a path: no link would work.
    let usable = !name.contains(|c: char| c.is_control() || c == '\\');
    usable && (dotfiles == Dotfiles::Allow || !name.starts_with('.') || name == ".well-known")
}

/// The page for the directory at `url_path` (the decoded request path,
/// ending in `/`, shown as the title). Sorts `list` in place.
pub fn render(url_path: &str, list: &mut Entries) -> Vec<u8> {
    list.entries
        .sort_by(|a, b| b.is_dir.cmp(&a.is_dir).then_with(|| a.name.cmp(&b.name)));
    let title = escape_html(url_path);
    let mut page = format!(
        "<!DOCTYPE html>\n<html>\n<head><meta charset=\"utf-8\"><title>Index of {title}</title></head>\n\
         <body>\n<h1>Index of {title}</h1>\n<ul>\n"
    );
    if url_path != "/" {
        page.push_str("<li><a href=\"../\">../</a></li>\n");
    }
    for e in &list.entries {
        let slash = if e.is_dir { "/" } else { "" };
        // `./` keeps a name with a colon from reading as a scheme.
        page.push_str(&format!(
            "<li><a href=\"./{}{slash}\">{}{slash}</a></li>\n",
            encode_href(&e.name),
            escape_html(&e.name),
        ));
    }
    page.push_str("</ul>\n");
    if list.truncated {
        page.push_str(&format!(
            "<p>Only the first {MAX_ENTRIES} entries are shown.</p>\n"
        ));
    }
    page.push_str("</body>\n</html>\n");
    page.into_bytes()
}

fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Percent-encodes every byte but RFC 3986's unreserved ones, so the href
/// is one path segment whatever the name holds (`/`, `?`, `#`, `%`, `:`).
fn encode_href(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::files::open::{Opened, Root};
    use crate::http::files::target;
    use crate::http::files::testdir::TestDir;

    fn entry(name: &str, is_dir: bool) -> Entry {
        Entry {
            name: name.into(),
            is_dir,
        }
    }

    #[test]
    fn renders_sorted_and_escaped() {
        let mut list = Entries {
            entries: vec![
                entry("b.txt", false),
                entry("<script>&\"'.html", false),
                entry("zdir", true),
                entry("a dir", true),
                entry("a:b?c#d%e", false),
                entry("café", false),
            ],
            truncated: false,
        };
        let page = String::from_utf8(render("/docs/<x>/", &mut list)).unwrap();
        assert!(
            page.contains("<title>Index of /docs/&lt;x&gt;/</title>"),
            "{page}"
        );
        let links: Vec<&str> = page.lines().filter(|l| l.starts_with("<li>")).collect();
        assert_eq!(
            links,
            [
                "<li><a href=\"../\">../</a></li>",
                "<li><a href=\"./a%20dir/\">a dir/</a></li>",
                "<li><a href=\"./zdir/\">zdir/</a></li>",
                "<li><a href=\"./%3Cscript%3E%26%22%27.html\">&lt;script&gt;&amp;&quot;&#39;.html</a></li>",
                "<li><a href=\"./a%3Ab%3Fc%23d%25e\">a:b?c#d%e</a></li>",
                "<li><a href=\"./b.txt\">b.txt</a></li>",
                "<li><a href=\"./caf%C3%A9\">café</a></li>",
            ]
        );
        assert!(!page.contains("Only the first"));
    }

    #[test]
    fn every_href_resolves_back_to_its_name() {
        for name in ["a:b?c#d%e", "x y", "%2e%2e", "..a", "é&<"] {
            let href = encode_href(name);
            let t = target::resolve(href.as_bytes(), Dotfiles::Allow).unwrap();
            assert_eq!(t.rel(), name);
        }
    }

    #[test]
    fn root_has_no_parent_link_and_truncation_says_so() {
        let mut list = Entries {
            entries: vec![],
            truncated: true,
        };
        let page = String::from_utf8(render("/", &mut list)).unwrap();
        assert!(!page.contains("../"), "{page}");
        assert!(page.contains("Only the first 10000 entries are shown."));
    }

    #[test]
    fn reads_a_directory_opened_beneath_root() {
        let d = TestDir::new("listing");
        d.files(&[
            ("root/sub/x", b""),
            ("root/a.txt", b""),
            ("root/.env", b""),
            ("root/.well-known/y", b""),
        ]);
        d.symlink("root/link", "sub");
        let root = Root::new(&d.path().join("root")).unwrap();
        let Ok(Opened::Directory(dir, _)) = root.open("") else {
            panic!("root is a directory");
        };
        let names = |dotfiles| {
            let mut l = read_entries(&dir, dotfiles).unwrap();
            l.entries.sort_by(|a, b| a.name.cmp(&b.name));
            l.entries
        };
        assert_eq!(
            names(Dotfiles::Deny),
            [
                entry(".well-known", true),
                entry("a.txt", false),
                entry("link", false),
                entry("sub", true)
            ]
        );
        assert_eq!(names(Dotfiles::Allow).len(), 5);
    }

    #[test]
    fn at_most_max_entries() {
        let d = TestDir::new("listing");
        std::fs::create_dir(d.path().join("big")).unwrap();
        for i in 0..=MAX_ENTRIES {
            std::fs::File::create(d.path().join(format!("big/{i}"))).unwrap();
        }
        let root = Root::new(d.path()).unwrap();
        let Ok(Opened::Directory(dir, _)) = root.open("big") else {
            panic!("big is a directory");
        };
        let l = read_entries(&dir, Dotfiles::Deny).unwrap();
        assert_eq!((l.entries.len(), l.truncated), (MAX_ENTRIES, true));
    }
}

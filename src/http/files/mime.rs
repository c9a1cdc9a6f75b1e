//! File name → `Content-Type`, from a built-in table of the common
//! extensions (matched case-insensitively, like nginx); anything else is
//! `application/octet-stream`. Configurable types are not here: a site
//! that needs more can name them once there is a key for it.
//!
//! Text types carry `; charset=utf-8`: without it a browser guesses
//! (windows-1252 for `text/plain`). JSON, SVG and the other `+xml`/`+json`
//! types carry none: JSON is UTF-8 by definition (RFC 8259 8.1, which
//! defines no charset parameter) and an XML document declares its own
//! encoding, which a charset parameter would override (RFC 7303 3.2).
//!
//! Where this table differs from nginx 1.22's `/etc/nginx/mime.types`
//! (Debian's nginx 1.22.1, with nginx's default `charset off`):
//! - charset: nginx sends no charset on any type; we send `charset=utf-8` on
//!   html, css, js/mjs, txt, md, csv, xml, ics, vtt.
//! - `js`: nginx `application/javascript`; we `text/javascript` (RFC 9239
//!   makes it the one type for JavaScript, the other obsolete).
//! - `xml`: both `text/xml`; we add the charset.
//! - `bmp`: nginx `image/x-ms-bmp`; we `image/bmp` (IANA).
//! - `ico`: both `image/x-icon` (what browsers expect; IANA has
//!   `image/vnd.microsoft.icon`).
//! - `m4a`: nginx `audio/x-m4a`; we `audio/mp4` (RFC 4337).
//! - `ttf`, `otf`: not in nginx (octet-stream); we `font/ttf`, `font/otf`
//!   (RFC 8081).
//! - Not in nginx's list at all (nginx: `application/octet-stream`), ours:
//!   `mjs` text/javascript, `map` application/json, `webmanifest`
//!   application/manifest+json, `md` text/markdown, `csv` text/csv, `ics`
//!   text/calendar, `vtt` text/vtt, `wav` audio/wav, `flac` audio/flac,
//!   `opus` audio/ogg, `oga` audio/ogg, `ogv` video/ogg, `gz`
//!   application/gzip, `tar` application/x-tar, `br` application/x-brotli,
//!   `zst` application/zstd.
//! - In nginx's list, not in ours (we send octet-stream): the legacy ones
//!   (`shtml`, `mml`, `jad`, `wml`, `htc`, `jng`, `wbmp`, `hqx`, `cco`,
//!   `jardiff`, `jnlp`, `run`, `pl`, `pm`, `prc`, `pdb`, `sea`, `swf`,
//!   `sit`, `tcl`, `tk`, `xpi`, `xspf`, `wmlc`, `kar`, `ra`, `mng`, `asx`,
//!   `asf`, `wmv`, `flv`, `jar`, `war`, `ear`, `der`, `pem`, `crt`, `ps`,
//!   `eps`, `ai`, `rtf`, `kml`, `kmz`, `rpm`, `rar`, `3gp`, `3gpp`, `ts`,
//!   `m4v`, `mid`, `midi`, `svgz`, `tif`, `tiff`).
//! - Same as nginx: html htm css gif jpeg jpg atom rss txt avif png svg webp
//!   woff woff2 json doc pdf xls ppt docx xlsx pptx odt ods odp odg eot
//!   m3u8 wasm 7z xhtml zip mp3 ogg mp4 mpeg mpg mov webm avi (and bin exe
//!   dll deb dmg iso img msi as octet-stream, which needs no entry).

/// What an unknown extension is sent as.
pub const DEFAULT: &str = "application/octet-stream";

/// (extension, type), extensions lower case; kept sorted for the binary search.
const TABLE: &[(&str, &str)] = &[
    ("7z", "application/x-7z-compressed"),
    ("atom", "application/atom+xml"),
    ("avi", "video/x-msvideo"),
    ("avif", "image/avif"),
    ("bmp", "image/bmp"),
    ("br", "application/x-brotli"),
    ("css", "text/css; charset=utf-8"),
    ("csv", "text/csv; charset=utf-8"),
    ("doc", "application/msword"),
    (
        "docx",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ),
    ("eot", "application/vnd.ms-fontobject"),
    ("flac", "audio/flac"),
    ("gif", "image/gif"),
    ("gz", "application/gzip"),
    ("htm", "text/html; charset=utf-8"),
    ("html", "text/html; charset=utf-8"),
    ("ico", "image/x-icon"),
    ("ics", "text/calendar; charset=utf-8"),
    ("jpeg", "image/jpeg"),
    ("jpg", "image/jpeg"),
    ("js", "text/javascript; charset=utf-8"),
    ("json", "application/json"),
    ("m3u8", "application/vnd.apple.mpegurl"),
    ("m4a", "audio/mp4"),
    ("map", "application/json"),
    ("md", "text/markdown; charset=utf-8"),
    ("mjs", "text/javascript; charset=utf-8"),
    ("mov", "video/quicktime"),
    ("mp3", "audio/mpeg"),
    ("mp4", "video/mp4"),
    ("mpeg", "video/mpeg"),
    ("mpg", "video/mpeg"),
    ("odg", "application/vnd.oasis.opendocument.graphics"),
    ("odp", "application/vnd.oasis.opendocument.presentation"),
    ("ods", "application/vnd.oasis.opendocument.spreadsheet"),
    ("odt", "application/vnd.oasis.opendocument.text"),
    ("oga", "audio/ogg"),
    ("ogg", "audio/ogg"),
    ("ogv", "video/ogg"),
    ("opus", "audio/ogg"),
    ("otf", "font/otf"),
    ("pdf", "application/pdf"),
    ("png", "image/png"),
    ("ppt", "application/vnd.ms-powerpoint"),
    (
        "pptx",
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    ),
    ("rss", "application/rss+xml"),
    ("svg", "image/svg+xml"),
    ("tar", "application/x-tar"),
    ("ttf", "font/ttf"),
    ("txt", "text/plain; charset=utf-8"),
    ("vtt", "text/vtt; charset=utf-8"),
    ("wasm", "application/wasm"),
    ("wav", "audio/wav"),
    ("webm", "video/webm"),
    ("webmanifest", "application/manifest+json"),
    ("webp", "image/webp"),
    ("woff", "font/woff"),
    ("woff2", "font/woff2"),
    ("xhtml", "application/xhtml+xml"),
    ("xls", "application/vnd.ms-excel"),
    (
        "xlsx",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ),
    ("xml", "text/xml; charset=utf-8"),
    ("zip", "application/zip"),
    ("zst", "application/zstd"),
];

/// The longest extension in [`TABLE`]; longer ones need no lookup.
const MAX_EXT: usize = 11;

/// The `Content-Type` of the file at `path` (a name or a `/`-separated
/// path), by the extension of its last segment. A name that only starts
/// with a dot (`.bashrc`) has no extension.
pub fn content_type(path: &str) -> &'static str {
    let name = path.rsplit('/').next().unwrap_or(path);
    let Some(dot) = name.rfind('.').filter(|&d| d > 0) else {
        return DEFAULT;
    };
    let ext = &name[dot + 1..];
    if ext.is_empty() || ext.len() > MAX_EXT {
        return DEFAULT;
    }
    let mut lower = [0u8; MAX_EXT];
    lower[..ext.len()].copy_from_slice(ext.as_bytes());
    lower[..ext.len()].make_ascii_lowercase();
    let lower = &lower[..ext.len()];
    TABLE
        .binary_search_by(|(e, _)| e.as_bytes().cmp(lower))
        .map_or(DEFAULT, |i| TABLE[i].1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_lower_case_and_bounded() {
        for pair in TABLE.windows(2) {
            assert!(pair[0].0 < pair[1].0, "{:?} before {:?}", pair[0], pair[1]);
        }
        for (ext, ty) in TABLE {
            assert_eq!(*ext, ext.to_ascii_lowercase());
            assert!(ext.len() <= MAX_EXT, "{ext}");
            // Text types say their charset; nothing else does.
            assert_eq!(
                ty.starts_with("text/"),
                ty.ends_with("; charset=utf-8"),
                "{ty}"
            );
        }
        assert_eq!(TABLE.iter().map(|(e, _)| e.len()).max(), Some(MAX_EXT));
    }

    #[test]
    fn lookups() {
        for (path, want) in [
            ("index.html", "text/html; charset=utf-8"),
            ("a/b/INDEX.HTML", "text/html; charset=utf-8"),
            ("app.js", "text/javascript; charset=utf-8"),
            ("mod.mjs", "text/javascript; charset=utf-8"),
            ("data.json", "application/json"),
            ("logo.svg", "image/svg+xml"),
            ("x.tar.gz", "application/gzip"),
            ("photo.JpG", "image/jpeg"),
            ("m.wasm", "application/wasm"),
            ("site.webmanifest", "application/manifest+json"),
            ("README", DEFAULT),
            (".bashrc", DEFAULT),
            ("dir.d/file", DEFAULT),
            ("trailing.", DEFAULT),
            ("x.unknownextension", DEFAULT),
            ("x.exe", DEFAULT),
            ("", DEFAULT),
            ("é.ünï", DEFAULT),
        ] {
            assert_eq!(content_type(path), want, "{path}");
        }
    }

    /// The differences the module doc lists, checked against nginx's file
    /// where it is installed (Debian's nginx-light puts it there).
    #[test]
    fn differences_from_nginx_are_the_documented_ones() {
        let Ok(text) = std::fs::read_to_string("/etc/nginx/mime.types") else {
            eprintln!("skipped: no /etc/nginx/mime.types");
            return;
        };
        let nginx = parse_nginx(&text);
        let differ: Vec<&str> = TABLE
            .iter()
            .filter(|(ext, ty)| {
                let bare = ty.split(';').next().unwrap_or(ty);
                nginx
                    .iter()
                    .find(|(e, _)| e == ext)
                    .map(|(_, t)| t.as_str())
                    != Some(bare)
            })
            .map(|(ext, _)| *ext)
            .collect();
        assert_eq!(
            differ,
            [
                "bmp",
                "br",
                "csv",
                "flac",
                "gz",
                "ics",
                "js",
                "m4a",
                "map",
                "md",
                "mjs",
                "oga",
                "ogv",
                "opus",
                "otf",
                "tar",
                "ttf",
                "vtt",
                "wav",
                "webmanifest",
                "zst"
            ]
        );
    }

    fn parse_nginx(text: &str) -> Vec<(String, String)> {
        let body = text.split_once('{').map_or("", |(_, b)| b);
        body.split(';')
            .filter_map(|stmt| {
                let mut words = stmt.split_whitespace();
                let ty = words.next()?.to_owned();
                Some(
                    words
                        .map(move |e| (e.to_owned(), ty.clone()))
                        .collect::<Vec<_>>(),
                )
            })
            .flatten()
            .collect()
    }
}

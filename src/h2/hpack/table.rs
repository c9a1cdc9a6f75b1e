//! HPACK's indexing tables (RFC 7541 §2.3): the static table (Appendix A)
//! and the dynamic table with its size accounting and eviction (§4).
//!
//! One allocation per dynamic entry (name and value side by side); the
//! table never holds more than its maximum size, which the decoder keeps at
//! or below what we advertised.

use std::collections::VecDeque;

/// RFC 7541 Appendix A; index 1 is `STATIC[0]`.
pub const STATIC: [(&[u8], &[u8]); 61] = [
    (b":authority", b""),
    (b":method", b"GET"),
    (b":method", b"POST"),
    (b":path", b"/"),
    (b":path", b"/index.html"),
    (b":scheme", b"http"),
    (b":scheme", b"https"),
    (b":status", b"200"),
    (b":status", b"204"),
    (b":status", b"206"),
    (b":status", b"304"),
    (b":status", b"400"),
    (b":status", b"404"),
    (b":status", b"500"),
    (b"accept-charset", b""),
    (b"accept-encoding", b"gzip, deflate"),
    (b"accept-language", b""),
    (b"accept-ranges", b""),
    (b"accept", b""),
    (b"access-control-allow-origin", b""),
    (b"age", b""),
    (b"allow", b""),
    (b"authorization", b""),
    (b"cache-control", b""),
    (b"content-disposition", b""),
    (b"content-encoding", b""),
    (b"content-language", b""),
    (b"content-length", b""),
    (b"content-location", b""),
    (b"content-range", b""),
    (b"content-type", b""),
    (b"cookie", b""),
    (b"date", b""),
    (b"etag", b""),
    (b"expect", b""),
    (b"expires", b""),
    (b"from", b""),
    (b"host", b""),
    (b"if-match", b""),
    (b"if-modified-since", b""),
    (b"if-none-match", b""),
    (b"if-range", b""),
    (b"if-unmodified-since", b""),
    (b"last-modified", b""),
    (b"link", b""),
    (b"location", b""),
    (b"max-forwards", b""),
    (b"proxy-authenticate", b""),
    (b"proxy-authorization", b""),
    (b"range", b""),
    (b"referer", b""),
    (b"refresh", b""),
    (b"retry-after", b""),
    (b"server", b""),
    (b"set-cookie", b""),
    (b"strict-transport-security", b""),
    (b"transfer-encoding", b""),
    (b"user-agent", b""),
    (b"vary", b""),
    (b"via", b""),
    (b"www-authenticate", b""),
];

/// An entry's size: its octets plus 32 (§4.1).
pub fn entry_size(name: &[u8], value: &[u8]) -> usize {
    name.len() + value.len() + 32
}

/// Where a field is in the static table: both name and value, or the name.
pub fn find_static(name: &[u8], value: &[u8]) -> Option<(usize, bool)> {
    let mut by_name = None;
    for (i, &(n, v)) in STATIC.iter().enumerate() {
        if n == name {
            if v == value {
                return Some((i + 1, true));
            }
            by_name.get_or_insert(i + 1);
        }
    }
    by_name.map(|i| (i, false))
}

struct Entry {
    bytes: Box<[u8]>,
    name_len: usize,
}

/// The dynamic table; newest entry first (index 62).
pub struct DynamicTable {
    entries: VecDeque<Entry>,
    size: usize,
    max_size: usize,
}

impl DynamicTable {
    pub fn new(max_size: usize) -> DynamicTable {
        DynamicTable {
            entries: VecDeque::new(),
            size: 0,
            max_size,
        }
    }

    pub fn size(&self) -> usize {
        self.size
    }

    pub fn max_size(&self) -> usize {
        self.max_size
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// A field by HPACK index (1-based over static then dynamic, §2.3.3).
    pub fn get(&self, index: usize) -> Option<(&[u8], &[u8])> {
        match index {
            0 => None,
            1..=61 => Some(STATIC[index - 1]),
            _ => {
                let e = self.entries.get(index - 62)?;
                Some(e.bytes.split_at(e.name_len))
            }
        }
    }

    /// Adds a field, evicting the oldest to make room; a field larger than
    /// the whole table empties it and is not added (§4.4).
    pub fn insert(&mut self, name: &[u8], value: &[u8]) {
        let size = entry_size(name, value);
        if size > self.max_size {
            self.entries.clear();
            self.size = 0;
            return;
        }
        self.evict_to(self.max_size - size);
        let mut bytes = Vec::with_capacity(name.len() + value.len());
        bytes.extend_from_slice(name);
        bytes.extend_from_slice(value);
        self.entries.push_front(Entry {
            bytes: bytes.into_boxed_slice(),
            name_len: name.len(),
        });
        self.size += size;
    }

    /// A dynamic table size update (§4.3, §6.3); the caller has checked it
    /// against the advertised limit.
    pub fn set_max_size(&mut self, max_size: usize) {
        self.max_size = max_size;
        self.evict_to(max_size);
    }

    fn evict_to(&mut self, target: usize) {
        while self.size > target {
            let Some(e) = self.entries.pop_back() else {
                break;
            };
            self.size -= entry_size(&e.bytes[..e.name_len], &e.bytes[e.name_len..]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn static_lookup() {
        assert_eq!(find_static(b":method", b"GET"), Some((2, true)));
        assert_eq!(find_static(b":status", b"418"), Some((8, false)));
        assert_eq!(find_static(b"www-authenticate", b""), Some((61, true)));
        assert_eq!(find_static(b"x-custom", b""), None);
        let t = DynamicTable::new(4096);
        assert_eq!(t.get(15), Some((&b"accept-charset"[..], &b""[..])));
        assert_eq!(t.get(0), None);
        assert_eq!(t.get(62), None);
    }

    #[test]
    fn eviction_and_resize() {
        let mut t = DynamicTable::new(100);
        t.insert(b"a", b"1"); // 34
        t.insert(b"b", b"2"); // 68
        t.insert(b"c", b"3"); // 102 > 100: "a" goes
        assert_eq!((t.len(), t.size()), (2, 68));
        assert_eq!(t.get(62), Some((&b"c"[..], &b"3"[..])));
        assert_eq!(t.get(63), Some((&b"b"[..], &b"2"[..])));
        t.set_max_size(40);
        assert_eq!((t.len(), t.size()), (1, 34));
        t.insert(&[b'x'; 10], b""); // 42 > 40: empties
        assert!(t.is_empty());
        t.set_max_size(0);
        t.insert(b"", b"");
        assert_eq!(t.size(), 0);
    }
}

//! HPACK (RFC 7541): the decoder of request header blocks and the encoder
//! of response header blocks.
//!
//! Written here rather than taken from a crate. Compared (`cargo info`,
//! sources): `hpack` 0.3 (unmaintained, `log` 0.3, a wrong static entry),
//! `fluke-hpack`/`loona-hpack` (its fork; `tracing`, `thiserror`, an
//! `assert!` on a too-large table size), `httlib-hpack`, `hpack_codec`
//! (`trackable`). None bounds the decoded header list while decoding, so a
//! bomb would be built in memory before we could refuse it.
//!
//! Bounds: the dynamic table never exceeds what we advertised (a size
//! update above it, or after the first field, is a
//! [`DecodeError`]); the decoded list stops storing fields once its size
//! passes the limit, and only counts the rest, so an indexed-field bomb
//! costs no memory. The decoder keeps decoding past the limit so that its
//! table stays in step with the peer's encoder (the stream gets a 431, the
//! connection lives). The encoder never uses the dynamic table, so a
//! response block can be computed once and sent on any connection.

pub mod huffman;
pub mod table;

use table::DynamicTable;

/// A header block that breaks RFC 7541; the connection ends with
/// COMPRESSION_ERROR (RFC 9113 §4.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeError {
    Truncated,
    IntegerOverflow,
    BadIndex,
    Huffman,
    /// A dynamic table size update above our SETTINGS_HEADER_TABLE_SIZE.
    TableSizeTooLarge,
    /// A dynamic table size update after a field (§4.2).
    TableSizeNotAtStart,
}

/// Decoded fields in one buffer, with the list's RFC size (each field's
/// octets plus 32, RFC 9113 §6.5.2) and its limit.
#[derive(Debug)]
pub struct HeaderList {
    buf: Vec<u8>,
    /// (start, name end, value end) in `buf`.
    fields: Vec<[u32; 3]>,
    size: usize,
    limit: usize,
}

impl HeaderList {
    pub fn new(limit: usize) -> HeaderList {
        HeaderList {
            buf: Vec::new(),
            fields: Vec::new(),
            size: 0,
            limit,
        }
    }

    pub fn clear(&mut self) {
        self.buf.clear();
        self.fields.clear();
        self.size = 0;
    }

    /// Adds a field if the list stays within its limit; past it, only the
    /// size grows.
    pub fn push(&mut self, name: &[u8], value: &[u8]) {
        self.size = self.size.saturating_add(table::entry_size(name, value));
        if self.size > self.limit {
            return;
        }
        let at = |n: usize| u32::try_from(n).expect("the limit keeps the list under 4 GiB");
        let start = self.buf.len();
        self.buf.extend_from_slice(name);
        let name_end = self.buf.len();
        self.buf.extend_from_slice(value);
        self.fields
            .push([at(start), at(name_end), at(self.buf.len())]);
    }

    /// The decoded list passed its limit (fields were dropped).
    pub fn is_too_large(&self) -> bool {
        self.size > self.limit
    }

    pub fn size(&self) -> usize {
        self.size
    }

    pub fn len(&self) -> usize {
        self.fields.len()
    }

    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    pub fn get(&self, i: usize) -> Option<(&[u8], &[u8])> {
        let [s, n, e] = *self.fields.get(i)?;
        let (s, n, e) = (s as usize, n as usize, e as usize);
        Some((&self.buf[s..n], &self.buf[n..e]))
    }

    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> + '_ {
        (0..self.fields.len()).filter_map(|i| self.get(i))
    }
}

/// The request-side decoder of one connection.
pub struct Decoder {
    table: DynamicTable,
    /// Our SETTINGS_HEADER_TABLE_SIZE: the most a size update may ask for.
    max_allowed: usize,
    /// One field's name and value while it is decoded.
    scratch: Vec<u8>,
}

impl Decoder {
    pub fn new(max_table_size: usize) -> Decoder {
        Decoder {
            table: DynamicTable::new(max_table_size),
            max_allowed: max_table_size,
            scratch: Vec::new(),
        }
    }

    pub fn table(&self) -> &DynamicTable {
        &self.table
    }

    /// Decodes a whole header block into `list` (which it does not clear).
    pub fn decode(&mut self, block: &[u8], list: &mut HeaderList) -> Result<(), DecodeError> {
        let mut rest = block;
        let mut at_start = true;
        while let Some(&first) = rest.first() {
            if first & 0x80 != 0 {
                let index = integer(&mut rest, 7)?;
                let (name, value) = self.table.get(index).ok_or(DecodeError::BadIndex)?;
                list.push(name, value);
            } else if first & 0xe0 == 0x20 {
                if !at_start {
                    return Err(DecodeError::TableSizeNotAtStart);
                }
                let size = integer(&mut rest, 5)?;
                if size > self.max_allowed {
                    return Err(DecodeError::TableSizeTooLarge);
                }
                self.table.set_max_size(size);
                continue;
            } else {
                // 01: with incremental indexing; 0000 / 0001: without / never.
                let indexing = first & 0x40 != 0;
                let prefix = if indexing { 6 } else { 4 };
                let index = integer(&mut rest, prefix)?;
                self.scratch.clear();
                if index == 0 {
                    string(&mut rest, &mut self.scratch)?;
                } else {
                    let (name, _) = self.table.get(index).ok_or(DecodeError::BadIndex)?;
                    self.scratch.extend_from_slice(name);
                }
                let name_len = self.scratch.len();
                string(&mut rest, &mut self.scratch)?;
                let (name, value) = self.scratch.split_at(name_len);
                list.push(name, value);
                if indexing {
                    self.table.insert(name, value);
                }
            }
            at_start = false;
        }
        Ok(())
    }
}

/// Reads an integer with an `prefix`-bit prefix (§5.1), advancing `rest`.
/// Values past u32 are refused: nothing legitimate needs them.
fn integer(rest: &mut &[u8], prefix: u32) -> Result<usize, DecodeError> {
    let (&first, mut tail) = rest.split_first().ok_or(DecodeError::Truncated)?;
    let mask = ((1u16 << prefix) - 1) as u8;
    let mut value = u64::from(first & mask);
    if value == u64::from(mask) {
        let mut shift = 0;
        loop {
            let (&b, t) = tail.split_first().ok_or(DecodeError::Truncated)?;
            tail = t;
            value += u64::from(b & 0x7f) << shift;
            if value > u64::from(u32::MAX) {
                return Err(DecodeError::IntegerOverflow);
            }
            if b & 0x80 == 0 {
                break;
            }
            shift += 7;
            if shift > 28 {
                return Err(DecodeError::IntegerOverflow);
            }
        }
    }
    *rest = tail;
    usize::try_from(value).map_err(|_| DecodeError::IntegerOverflow)
}

/// Reads a string literal (§5.2), appending its octets to `out`.
fn string(rest: &mut &[u8], out: &mut Vec<u8>) -> Result<(), DecodeError> {
    let huffman = rest.first().is_some_and(|b| b & 0x80 != 0);
    let len = integer(rest, 7)?;
    let (raw, tail) = rest.split_at_checked(len).ok_or(DecodeError::Truncated)?;
    *rest = tail;
    if huffman {
        huffman::decode(raw, out).map_err(|_| DecodeError::Huffman)
    } else {
        out.extend_from_slice(raw);
        Ok(())
    }
}

/// A dynamic table size update to 0: what a block starts with after the
/// peer changes SETTINGS_HEADER_TABLE_SIZE, so the peer's decoder knows our
/// (empty, unused) table fits (RFC 7541 §4.2).
pub const TABLE_SIZE_ZERO: u8 = 0x20;

/// Appends an integer with a `prefix`-bit prefix; `high` holds the bits
/// above the prefix in the first byte (§5.1).
pub fn encode_integer(out: &mut Vec<u8>, value: usize, prefix: u32, high: u8) {
    let mask = (1usize << prefix) - 1;
    if value < mask {
        out.push(high | value as u8);
        return;
    }
    out.push(high | mask as u8);
    let mut rest = value - mask;
    while rest >= 0x80 {
        out.push((rest as u8 & 0x7f) | 0x80);
        rest >>= 7;
    }
    out.push(rest as u8);
}

/// Appends a string literal, Huffman-coded when that is shorter.
pub fn encode_string(out: &mut Vec<u8>, s: &[u8]) {
    let coded = huffman::encoded_len(s);
    if coded < s.len() {
        encode_integer(out, coded, 7, 0x80);
        huffman::encode(s, out);
    } else {
        encode_integer(out, s.len(), 7, 0);
        out.extend_from_slice(s);
    }
}

/// Names whose values must never enter any table on the way (§7.1.3).
fn is_sensitive(name: &[u8]) -> bool {
    matches!(
        name,
        b"authorization" | b"proxy-authorization" | b"cookie" | b"set-cookie"
    )
}

/// Appends one field: static-indexed if the table has it whole, else a
/// literal without indexing (never-indexed for credentials), its name
/// indexed when the static table has the name. `name` must be lower-case.
pub fn encode_field(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    let never = is_sensitive(name);
    let high = if never { 0x10 } else { 0x00 };
    match table::find_static(name, value) {
        Some((index, true)) if !never => encode_integer(out, index, 7, 0x80),
        Some((index, _)) => {
            encode_integer(out, index, 4, high);
            encode_string(out, value);
        }
        None => {
            out.push(high);
            encode_string(out, name);
            encode_string(out, value);
        }
    }
}

/// Appends `:status` (indexed for the seven statuses the table has).
pub fn encode_status(out: &mut Vec<u8>, status: u16) {
    let mut digits = [0u8; 3];
    let mut n = status.min(999);
    for d in digits.iter_mut().rev() {
        *d = b'0' + (n % 10) as u8;
        n /= 10;
    }
    encode_field(out, b":status", &digits);
}

/// A whole response head: `:status` then the fields, as one block.
pub fn encode_response(out: &mut Vec<u8>, status: u16, headers: &[(&[u8], &[u8])]) {
    encode_status(out, status);
    for &(name, value) in headers {
        encode_field(out, name, value);
    }
}

#[cfg(test)]
mod tests;

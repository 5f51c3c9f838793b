//! Reading the few fields weir needs out of a JSON record without a full parser: the host's
//! router finds a record's grouping key with it (`weir::routing`), and
//! sliding-window-max reads the three fields of a trade (`sliding_window_max::scan`). Both
//! hand anything unusual to serde_json, so this crate only has to be exact about what it
//! accepts.
//!
//! Everything works a word (eight bytes) at a time where it can: records are short, too short
//! for memchr's vector set-up to pay natively, and in wasm every loop back-edge also checks the
//! CPU deadline and `memcmp` is a byte loop.
#![deny(missing_docs)]

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// The high bit of the lowest byte of `v` equal to `b` is set (higher ones may be wrong).
#[inline(always)]
fn bytes_equal(v: u64, b: u8) -> u64 {
    let x = v ^ (ONES * u64::from(b));
    x.wrapping_sub(ONES) & !x & HIGHS
}

/// The high bit of the lowest byte of `v` below `n` (n <= 128) is set (higher ones may be wrong).
#[inline(always)]
fn bytes_below(v: u64, n: u8) -> u64 {
    v.wrapping_sub(ONES * u64::from(n)) & !v & HIGHS
}

/// Eight bytes of text read as decimal digits: each byte's value as a digit (`b - b'0'`, by
/// xor, so meaningful only for digits), and the high bit of every byte that is not a digit.
/// Exact for every byte (no byte borrows from the next), so the first byte that is not a digit
/// is `not_digits.trailing_zeros() / 8`, and so is each one after it.
#[inline(always)]
pub fn digits(word: u64) -> (u64, u64) {
    let values = word ^ (ONES * u64::from(b'0'));
    let not_digits = ((values | HIGHS).wrapping_sub(ONES * 10) | values) & HIGHS;
    (values, not_digits)
}

/// The high bit of the lowest byte of `v` that would end or change a JSON string's bytes (a
/// quote, a backslash, a control byte) is set; none is set if there is none.
#[inline(always)]
fn string_specials(v: u64) -> u64 {
    bytes_equal(v, b'"') | bytes_equal(v, b'\\') | bytes_below(v, 0x20)
}

/// Eight bytes as a little-endian word.
#[inline(always)]
fn word(bytes: &[u8]) -> Option<u64> {
    let mut w = [0u8; 8];
    w.copy_from_slice(bytes.get(..8)?);
    Some(u64::from_le_bytes(w))
}

/// The eight bytes of `bytes` from `at` as a little-endian word, zero past its end, and how
/// many of them are the slice's (at most 8). Near the end it loads the slice's last eight bytes
/// and shifts, rather than copying byte by byte.
#[inline(always)]
pub fn word_at(bytes: &[u8], at: usize) -> (u64, usize) {
    if let Some(w) = bytes.get(at..).and_then(word) {
        return (w, 8);
    }
    let n = bytes.len().saturating_sub(at);
    if n == 0 {
        return (0, 0);
    }
    match bytes.len().checked_sub(8).and_then(|from| word(&bytes[from..])) {
        Some(last) => (last >> ((8 - n) * 8), n),
        None => {
            let mut w = [0u8; 8];
            w[..n].copy_from_slice(&bytes[at..]);
            (u64::from_le_bytes(w), n)
        }
    }
}

/// A mask of the low `n` bytes of a word (every byte from 8 on).
#[inline(always)]
pub fn low_bytes(n: usize) -> u64 {
    if n >= 8 { u64::MAX } else { (1u64 << (n * 8)) - 1 }
}

/// A position in JSON text.
#[derive(Clone, Copy, Debug)]
pub struct Cursor<'a> {
    data: &'a [u8],
    at: usize,
}

/// A string as it stands in the text, between its quotes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RawString<'a> {
    /// The bytes between the quotes, escapes not decoded.
    pub raw: &'a [u8],
    /// Whether it holds a backslash (so `raw` is not its text).
    pub escaped: bool,
    /// Whether it holds a byte below 0x20, which JSON does not allow in a string.
    pub control: bool,
    /// Whether every byte is ASCII (a `false` may be wrong, never a `true`).
    pub ascii: bool,
}

impl<'a> Cursor<'a> {
    /// At the start of `data`.
    #[inline]
    pub fn new(data: &'a [u8]) -> Self {
        Self { data, at: 0 }
    }

    /// Whether every byte has been read.
    #[inline]
    pub fn at_end(&self) -> bool {
        self.at >= self.data.len()
    }

    /// The byte at the cursor.
    #[inline(always)]
    pub fn peek(&self) -> Option<u8> {
        self.data.get(self.at).copied()
    }

    /// The byte at the cursor, moving past it.
    #[inline(always)]
    pub fn bump(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.at += 1;
        Some(b)
    }

    /// Move past `expected`, or `None` if another byte (or nothing) is there.
    #[inline(always)]
    pub fn eat(&mut self, expected: u8) -> Option<()> {
        (self.bump()? == expected).then_some(())
    }

    /// Move past JSON whitespace.
    #[inline(always)]
    pub fn whitespace(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.data.get(self.at) {
            self.at += 1;
        }
    }

    /// The text from the cursor on.
    #[inline(always)]
    pub fn rest(&self) -> &'a [u8] {
        self.data.get(self.at..).unwrap_or_default()
    }

    /// The eight bytes at the cursor ([`word_at`]): zero past the end of the text, and how many
    /// of them are the text's.
    #[inline(always)]
    pub fn peek_word(&self) -> (u64, usize) {
        word_at(self.data, self.at)
    }

    /// Move `n` bytes on.
    #[inline(always)]
    pub fn advance(&mut self, n: usize) {
        self.at += n;
    }

    /// How many bytes have been read.
    #[inline(always)]
    pub fn position(&self) -> usize {
        self.at
    }

    /// Move past `literal` if the text at the cursor starts with it.
    #[inline(always)]
    pub fn literal(&mut self, literal: &Literal) -> Option<()> {
        literal.starts(self.rest()).then(|| self.at += literal.len())
    }

    /// Whether the text from the cursor on is exactly `literal`, one of at most eight bytes
    /// (what ends a record: `}`, `}\n`).
    #[inline(always)]
    pub fn ends_with(&self, literal: &Literal) -> bool {
        // The rest of the text as a word, zero above it, is the literal's zero-padded bytes.
        let len = literal.len();
        len <= 8
            && self.data.len().checked_sub(self.at) == Some(len)
            && Some(self.peek_word().0) == word(&literal.bytes)
    }

    /// Move past the string at the cursor (which must start with its quote), escapes
    /// included; what it holds. `None` if it is not closed.
    #[inline(always)]
    pub fn string(&mut self) -> Option<RawString<'a>> {
        self.eat(b'"')?;
        let (data, start) = (self.data, self.at);
        let mut at = start;
        let (mut escaped, mut control, mut high) = (false, false, 0u64);
        loop {
            // A word at a time while the text has eight bytes left.
            while let Some(v) = data.get(at..).and_then(word) {
                let special = string_specials(v);
                if special == 0 {
                    high |= v & HIGHS;
                    at += 8;
                    continue;
                }
                let first = (special.trailing_zeros() / 8) as usize;
                high |= v & HIGHS & ((1u64 << (first * 8)) - 1);
                at += first;
                break;
            }
            let b = *data.get(at)?;
            at += 1;
            match b {
                b'"' => {
                    self.at = at;
                    return Some(RawString { raw: &data[start..at - 1], escaped, control, ascii: high == 0 });
                }
                b'\\' => {
                    escaped = true;
                    data.get(at)?;
                    at += 1;
                }
                b if b < 0x20 => control = true,
                b => high |= u64::from(b & 0x80),
            }
        }
    }
}

impl<'a> Cursor<'a> {
    /// The longest string [`string_of`](Self::string_of) reads: three words.
    pub const STRING_OF_MAX: usize = 24;

    /// [`string`](Self::string) for a string of `len` bytes (at most [`Self::STRING_OF_MAX`]), which a
    /// record of a known layout holds: when the byte after them closes it and none of them is
    /// a quote, a backslash or a control byte, its words are checked with no loop (in wasm,
    /// each turn of `string`'s checks the CPU deadline). `None` otherwise, the cursor left
    /// where it was for `string` to read what is there.
    #[inline(always)]
    pub fn string_of(&mut self, len: usize) -> Option<RawString<'a>> {
        let start = self.at + 1;
        if len > Self::STRING_OF_MAX || self.peek() != Some(b'"') || self.data.get(start + len) != Some(&b'"')
        {
            return None;
        }
        let body = &self.data[start..start + len];
        // Words covering the body: from its start, from 8 on, and one ending at its end
        // (overlapping the others); a body shorter than a word is read from the text with
        // the bytes after it taken as plain letters.
        let words = if len >= 8 {
            let end = word(&body[len - 8..])?;
            [word(body)?, if len > 16 { word(&body[8..])? } else { end }, end]
        } else {
            let keep = low_bytes(len);
            let v = self.data.get(start..).and_then(word)?;
            let v = (v & keep) | ((ONES * u64::from(b'a')) & !keep);
            [v; 3]
        };
        let (mut special, mut high) = (0, 0);
        for v in words {
            special |= string_specials(v);
            high |= v & HIGHS;
        }
        if special != 0 {
            return None;
        }
        self.at = start + len + 1;
        Some(RawString { raw: body, escaped: false, control: false, ascii: high == 0 })
    }

    /// Move past the string at the cursor, looking only for its end: its bytes between the
    /// quotes and whether it holds an escape. Cheaper than [`string`](Self::string), for
    /// strings that are skipped or only compared.
    #[inline]
    pub fn skip_string(&mut self) -> Option<(&'a [u8], bool)> {
        self.eat(b'"')?;
        let (data, start) = (self.data, self.at);
        let mut at = start;
        let mut escaped = false;
        loop {
            while let Some(v) = data.get(at..).and_then(word) {
                let special = bytes_equal(v, b'"') | bytes_equal(v, b'\\');
                if special == 0 {
                    at += 8;
                    continue;
                }
                at += (special.trailing_zeros() / 8) as usize;
                break;
            }
            match *data.get(at)? {
                b'"' => {
                    self.at = at + 1;
                    return Some((&data[start..at], escaped));
                }
                b'\\' => {
                    escaped = true;
                    data.get(at + 1)?;
                    at += 2;
                }
                _ => at += 1,
            }
        }
    }
}

/// A short run of text (at most [`Literal::MAX`] bytes) known in advance, such as what stands
/// between two values of a record (`", "TICKER": `), recognised a word at a time with no
/// loop and no call: in wasm a loop checks the CPU deadline on each turn and `memcmp` is a
/// call and a byte loop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Literal {
    /// The text, zero-padded.
    bytes: [u8; Literal::MAX],
    len: u8,
}

impl Literal {
    /// The longest literal.
    pub const MAX: usize = 24;

    /// `text` as a literal, if it has at most [`Literal::MAX`] bytes.
    pub fn new(text: &[u8]) -> Option<Self> {
        let mut bytes = [0u8; Self::MAX];
        bytes.get_mut(..text.len())?.copy_from_slice(text);
        Some(Self { bytes, len: text.len() as u8 })
    }

    /// Its length in bytes.
    #[inline]
    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    /// Whether it is empty.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Its text.
    #[inline]
    pub fn text(&self) -> &[u8] {
        &self.bytes[..self.len()]
    }

    /// Whether `text` starts with it: a word at a time, or, within a word of the end of
    /// `text`, by comparing the bytes.
    #[inline(always)]
    pub fn starts(&self, text: &[u8]) -> bool {
        let len = self.len();
        if len == 0 {
            return true;
        }
        if text.len() < len.next_multiple_of(8) {
            return text.get(..len) == Some(self.text());
        }
        self.word_matches(text, 0)
            && (len <= 8 || self.word_matches(text, 1))
            && (len <= 16 || self.word_matches(text, 2))
    }

    /// Whether word `i` of `text` holds the literal's bytes there (a function rather than a
    /// closure: LLVM left the closure a call in wasm).
    #[inline(always)]
    fn word_matches(&self, text: &[u8], i: usize) -> bool {
        let mask = low_bytes(self.len().saturating_sub(i * 8));
        let own = self.bytes.get(i * 8..).and_then(word).unwrap_or(0);
        text.get(i * 8..).and_then(word).is_some_and(|w| w & mask == own)
    }
}

/// A field name as it stands in a record, quotes included (`"PRICE"`), as a [`Literal`]: a key
/// is recognised by comparing a few words of the record, with no copy and no call.
#[derive(Clone, Debug)]
pub struct QuotedName {
    name: Vec<u8>,
    quoted: Vec<u8>,
    plain: bool,
    /// The quoted name as a [`Literal`], when it is short enough to be one.
    literal: Option<Literal>,
}

impl QuotedName {
    /// Prepare `name`.
    pub fn new(name: &[u8]) -> Self {
        let quoted: Vec<u8> = [b"\"", name, b"\""].concat();
        let plain = !name.iter().any(|&b| b == b'"' || b == b'\\' || b < 0x20);
        Self { name: name.to_vec(), literal: Literal::new(&quoted), quoted, plain }
    }

    /// The name.
    #[inline]
    pub fn name(&self) -> &[u8] {
        &self.name
    }

    /// Whether the name is written the same inside a JSON string (no quote, backslash or
    /// control character): only then can [`starts`](Self::starts) recognise it.
    #[inline]
    pub fn is_plain(&self) -> bool {
        self.plain
    }

    /// Length of the quoted name.
    #[inline]
    pub fn quoted_len(&self) -> usize {
        self.quoted.len()
    }

    /// Whether `text` starts with the quoted name, written plainly (always `false` for a name
    /// that is not [plain](Self::is_plain)).
    #[inline]
    pub fn starts(&self, text: &[u8]) -> bool {
        if !self.plain {
            return false;
        }
        match &self.literal {
            Some(literal) => literal.starts(text),
            None => text.starts_with(&self.quoted),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn string(text: &[u8]) -> Option<(RawString<'_>, usize)> {
        let mut c = Cursor::new(text);
        let s = c.string()?;
        Some((s, c.at))
    }

    #[test]
    fn strings_end_at_their_closing_quote_in_every_position() {
        for len in 0..40 {
            for at in 0..len {
                let mut text = vec![b'"'];
                text.extend(std::iter::repeat_n(b'a', len));
                text[1 + at] = b'"';
                text.extend_from_slice(b"tail of the record");
                let (s, end) = string(&text).unwrap();
                assert_eq!((s.raw.len(), end), (at, at + 2), "{len} {at}");
                assert!(!s.escaped && !s.control && s.ascii);
            }
        }
    }

    #[test]
    fn a_string_of_a_known_length_is_read_as_string_reads_it() {
        // Bodies of every length up to past the limit, plain or with one byte changed to each
        // kind `string` reports, read with every length expected, and with text after them
        // or none (a body near the end of the text has less than a word after it).
        let mut plain = 0;
        for len in 0..=Cursor::STRING_OF_MAX + 2 {
            for changed in std::iter::once(None).chain((0..len).map(Some)) {
                for byte in [b'"', b'\\', 0x01, 0xc3] {
                    for tail in [&b""[..], b", \"TICKER\": \"AMZN\"}", "\u{e9}\"\\\u{1}".as_bytes()] {
                        let mut text = vec![b'"'];
                        text.extend((0..len).map(|i| b'A' + (i % 26) as u8));
                        if let Some(at) = changed {
                            text[1 + at] = byte;
                        }
                        text.push(b'"');
                        text.extend_from_slice(tail);
                        for expected in 0..=Cursor::STRING_OF_MAX + 2 {
                            let mut c = Cursor::new(&text);
                            match c.string_of(expected) {
                                Some(s) => {
                                    assert_eq!(Some((s, c.at)), string(&text), "{text:?} {expected}");
                                    plain += 1;
                                }
                                None => assert_eq!(c.at, 0, "left where it was"),
                            }
                        }
                        let mut c = Cursor::new(&text);
                        // Read with no loop: a body of plain or non-ASCII bytes with the
                        // length expected, up to the limit, and a word's worth of text from its
                        // start (a short body at the very end of the text is not).
                        let fast = (changed.is_none() || byte == 0xc3)
                            && len <= Cursor::STRING_OF_MAX
                            && text.len() > len.max(8);
                        assert_eq!(c.string_of(len).is_some(), fast, "{text:?}");
                    }
                }
            }
        }
        assert!(plain > 0);
    }

    #[test]
    fn escapes_control_bytes_and_non_ascii_are_reported() {
        let (s, _) = string(br#""abcdefghij\"klm" x"#).unwrap();
        assert_eq!((s.raw, s.escaped), (&br#"abcdefghij\"klm"#[..], true));
        let (s, _) = string(b"\"abcdefghij\x01k\"").unwrap();
        assert!(s.control && !s.escaped);
        let (s, _) = string("\"abcdefghijé\" ".as_bytes()).unwrap();
        assert!(!s.ascii);
        let (s, _) = string(b"\"abc\" \xff\xff\xff\xff\xff\xff").unwrap();
        assert!(s.ascii, "bytes after the string do not count");
        assert_eq!(string(br#""never closed"#), None);
        assert_eq!(string(br#""ends in an escape\"#), None);
    }

    #[test]
    fn skipping_a_string_finds_the_same_end() {
        for text in [&br#""plain" x"#[..], br#""a\"b\\" x"#, br#""abcdefghijklmnopq\"rstu" x"#, b"\"\x01\" x"]
        {
            let (mut a, mut b) = (Cursor::new(text), Cursor::new(text));
            let full = a.string().unwrap();
            let (raw, escaped) = b.skip_string().unwrap();
            assert_eq!((raw, escaped, b.at), (full.raw, full.escaped, a.at));
        }
        assert_eq!(Cursor::new(br#""open"#).skip_string(), None);
    }

    #[test]
    fn names_are_recognised_only_where_they_stand_plainly() {
        let ticker = QuotedName::new(b"TICKER");
        assert!(ticker.starts(br#""TICKER": "AMZN", "PRICE": 1}"#));
        assert!(ticker.starts(br#""TICKER":1}"#), "short text takes the slow compare");
        assert!(!ticker.starts(br#""TICKERS": "AMZN"}"#));
        assert!(!ticker.starts(br#""TICKE": "AMZN", "PRICE": 1}"#));
        let long = QuotedName::new(b"A_VERY_LONG_FIELD_NAME");
        assert!(long.starts(br#""A_VERY_LONG_FIELD_NAME": 1}"#));
        assert!(!long.starts(br#""A_VERY_LONG_FIELD_NAMF": 1}"#));
        let backslash = QuotedName::new(b"\\");
        assert!(!backslash.is_plain());
        assert!(!backslash.starts(br#""\": 1, "more": 2}"#), "an escaped quote, not the name");
    }

    #[test]
    fn a_literal_matches_exactly_its_text_near_the_end_too() {
        for text in [&b""[..], b"}", b", \"PRICE\": ", b"{\"EVENT_TIME\": \"", b"123456789012345678901234"] {
            let lit = Literal::new(text).unwrap();
            assert_eq!(lit.len(), text.len());
            let padded = [text, b"42.17, \"more\": 1}"].concat();
            assert!(lit.starts(&padded), "{:?}", String::from_utf8_lossy(text));
            assert!(lit.starts(text), "exactly the text, too short for whole words");
            for i in 0..text.len() {
                let mut other = padded.clone();
                other[i] ^= 0x20;
                assert!(!lit.starts(&other), "{:?} with byte {i} changed", String::from_utf8_lossy(text));
                assert!(!lit.starts(&text[..i]), "cut at {i}");
            }
        }
        assert_eq!(Literal::new(&[b' '; 25]), None);
    }

    #[test]
    fn a_record_ends_with_a_literal_only_if_nothing_else_follows() {
        let end = Literal::new(b"}\n").unwrap();
        let record = b"{\"PRICE\": 42.17}\n";
        let at = |n: usize| {
            let mut c = Cursor::new(record);
            c.advance(n);
            c
        };
        assert!(at(record.len() - 2).ends_with(&end));
        assert!(!at(record.len() - 3).ends_with(&end));
        assert!(!at(record.len() - 1).ends_with(&end));
        assert!(!at(record.len() - 2).ends_with(&Literal::new(b"]\n").unwrap()));
        assert!(at(record.len()).ends_with(&Literal::new(b"").unwrap()));
        // Shorter than a word: compared byte by byte.
        let mut short = Cursor::new(b"1}");
        short.advance(1);
        assert!(short.ends_with(&Literal::new(b"}").unwrap()));
        assert!(!short.ends_with(&Literal::new(b")").unwrap()));
        // What follows the cursor, not what precedes it.
        let mut c = Cursor::new(b"{\"A\": 1} }");
        c.advance(9);
        assert!(c.ends_with(&Literal::new(b"}").unwrap()));
        let mut c = Cursor::new(b"{\"A\": 1} }");
        c.advance(7);
        assert!(!c.ends_with(&Literal::new(b"}").unwrap()));
    }
}

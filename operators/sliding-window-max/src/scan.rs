//! The fast path for reading a trade: a scanner for records shaped like the reference
//! application's (one flat JSON object with exactly the three fields, plain strings, a plain
//! decimal price), which covers every record a typical producer writes. Anything else (another
//! field, an escape, an exponent, a number too long to be exact, whitespace or bytes JSON does
//! not allow, a duplicate) is not judged here: the scanner says `None` and the record goes
//! through serde_json ([`crate::trade`]), so values and refusals are serde_json's by
//! construction. Measured: decoding was about half of the whole path's CPU (BENCHMARKS.md).

use crate::trade::Fields;

/// The three fields of a trade as they appear in the record, the price already a number.
#[derive(Debug, PartialEq)]
pub struct Scanned<'a> {
    /// The event time's text (printable ASCII, not yet parsed).
    pub time: &'a [u8],
    /// The ticker (UTF-8, no escapes, not empty).
    pub ticker: &'a str,
    /// The price, exactly as serde_json computes it for the same text.
    pub price: f64,
}

/// `10^k` for the exponents where dividing by it gives serde_json's result exactly: the same
/// literals serde_json's table holds, each exactly representable.
const POW10: [f64; 19] =
    [1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18];

/// Bytes of a word, for the word-at-a-time tests below. In wasm every loop back-edge also
/// checks the CPU deadline, and a call to `memcmp` is a byte loop: eight bytes per iteration
/// is most of what this module gains there.
const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// The high bit of the lowest byte of `v` equal to `b` is set (higher ones may be wrong).
#[inline]
fn bytes_equal(v: u64, b: u8) -> u64 {
    let x = v ^ (ONES * u64::from(b));
    x.wrapping_sub(ONES) & !x & HIGHS
}

/// The high bit of the lowest byte of `v` below `n` (n <= 128) is set (higher ones may be wrong).
#[inline]
fn bytes_below(v: u64, n: u8) -> u64 {
    v.wrapping_sub(ONES * u64::from(n)) & !v & HIGHS
}

/// A field name as it appears in a record, quotes included (`"PRICE"`), packed into words:
/// a key is recognised by comparing one or two words of the record, with no copy and no call.
#[derive(Debug)]
struct Name {
    quoted: Vec<u8>,
    /// The first two words of `quoted`, zero-padded, and the masks of their bytes in use.
    words: [u64; 2],
    masks: [u64; 2],
}

impl Name {
    fn new(name: &str) -> Self {
        let quoted: Vec<u8> = [b"\"", name.as_bytes(), b"\""].concat();
        let mut words = [0u64; 2];
        let mut masks = [0u64; 2];
        for (i, chunk) in quoted.chunks(8).take(2).enumerate() {
            let mut w = [0u8; 8];
            w[..chunk.len()].copy_from_slice(chunk);
            words[i] = u64::from_le_bytes(w);
            masks[i] = if chunk.len() == 8 { u64::MAX } else { (1u64 << (chunk.len() * 8)) - 1 };
        }
        Self { quoted, words, masks }
    }

    /// Whether `data` starts with this quoted name.
    #[inline]
    fn starts(&self, data: &[u8]) -> bool {
        let n = self.quoted.len();
        if n <= 16
            && let Some(bytes) = data.get(..16)
            && let (Ok(a), Ok(b)) = (<[u8; 8]>::try_from(&bytes[..8]), <[u8; 8]>::try_from(&bytes[8..]))
        {
            return u64::from_le_bytes(a) & self.masks[0] == self.words[0]
                && u64::from_le_bytes(b) & self.masks[1] == self.words[1];
        }
        data.get(..n) == Some(&self.quoted[..])
    }
}

/// The fast path, set up for the configured field names.
#[derive(Debug)]
pub struct Scanner {
    time: Name,
    ticker: Name,
    price: Name,
    /// Whether every name is written the same inside a JSON string (no quote, backslash or
    /// control character): only then can keys be recognised by their bytes.
    plain: bool,
}

impl Scanner {
    /// A scanner for `fields`.
    pub fn new(fields: &Fields) -> Self {
        let plain = [&fields.time, &fields.ticker, &fields.price]
            .iter()
            .all(|name| !name.bytes().any(|b| b == b'"' || b == b'\\' || b < 0x20));
        Self {
            time: Name::new(&fields.time),
            ticker: Name::new(&fields.ticker),
            price: Name::new(&fields.price),
            plain,
        }
    }

    /// Scan `data` as a trade; `None` means: let serde_json decide.
    pub fn trade<'a>(&self, data: &'a [u8]) -> Option<Scanned<'a>> {
        if !self.plain {
            return None;
        }
        let mut s = Cursor { data, at: 0 };
        s.whitespace();
        s.eat(b'{')?;
        let (mut time, mut ticker, mut price) = (None, None, None);
        loop {
            s.whitespace();
            let rest = s.data.get(s.at..)?;
            let field = [&self.time, &self.ticker, &self.price].into_iter().position(|n| n.starts(rest))?;
            s.at += [&self.time, &self.ticker, &self.price][field].quoted.len();
            s.whitespace();
            s.eat(b':')?;
            s.whitespace();
            if field == 0 && time.is_none() {
                // Printable ASCII only: anything else is for jiff's messages through serde_json.
                let (text, ascii) = s.plain_string()?;
                if !ascii {
                    return None;
                }
                time = Some(text);
            } else if field == 1 && ticker.is_none() {
                let (text, _) = s.plain_string()?;
                ticker = Some(std::str::from_utf8(text).ok().filter(|t| !t.is_empty())?);
            } else if field == 2 && price.is_none() {
                price = Some(s.number()?);
            } else {
                return None;
            }
            s.whitespace();
            match s.next()? {
                b',' => continue,
                b'}' => break,
                _ => return None,
            }
        }
        s.whitespace();
        if s.at != data.len() {
            return None;
        }
        Some(Scanned { time: time?, ticker: ticker?, price: price? })
    }
}

struct Cursor<'a> {
    data: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    #[inline]
    fn next(&mut self) -> Option<u8> {
        let b = *self.data.get(self.at)?;
        self.at += 1;
        Some(b)
    }

    #[inline]
    fn eat(&mut self, expected: u8) -> Option<()> {
        (self.next()? == expected).then_some(())
    }

    #[inline]
    fn whitespace(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.data.get(self.at) {
            self.at += 1;
        }
    }

    /// A string without escapes or control characters: its bytes (not checked for UTF-8), and
    /// whether they are all ASCII (a `false` may be wrong, never a `true`).
    #[inline]
    fn plain_string(&mut self) -> Option<(&'a [u8], bool)> {
        self.eat(b'"')?;
        let start = self.at;
        let mut high = 0u64;
        while let Some(chunk) = self.data.get(self.at..self.at + 8) {
            let v = u64::from_le_bytes(chunk.try_into().ok()?);
            let special = bytes_equal(v, b'"') | bytes_equal(v, b'\\') | bytes_below(v, 0x20);
            if special == 0 {
                high |= v & HIGHS;
                self.at += 8;
                continue;
            }
            let first = (special.trailing_zeros() / 8) as usize;
            // The bytes before the first special one are plain; the rest of the word is not
            // looked at (its high bits may be wrong, and are not counted).
            high |= v & HIGHS & ((1u64 << (first * 8)) - 1);
            self.at += first;
            return match self.next()? {
                b'"' => Some((&self.data[start..self.at - 1], high == 0)),
                _ => None,
            };
        }
        loop {
            match self.next()? {
                b'"' => return Some((&self.data[start..self.at - 1], high == 0)),
                b'\\' | 0..0x20 => return None,
                b => high |= u64::from(b & 0x80),
            }
        }
    }
    /// A number written `-?(0|[1-9][0-9]*)(\.[0-9]+)?` with at most 18 digits in all: its
    /// value as serde_json computes it (the digits as an integer, converted to f64, divided by
    /// the power of ten of the fraction's length: one correctly rounded operation).
    #[inline]
    fn number(&mut self) -> Option<f64> {
        let negative = self.data.get(self.at) == Some(&b'-');
        if negative {
            self.at += 1;
        }
        let (mut digits, mut significand, mut fraction) = (0u32, 0u64, None::<u32>);
        let first = self.at;
        while let Some(&b) = self.data.get(self.at) {
            match b {
                b'0'..=b'9' => {
                    if self.at == first + 1 && self.data[first] == b'0' {
                        return None; // a leading zero: invalid JSON, serde_json says so
                    }
                    significand = significand * 10 + u64::from(b - b'0');
                    digits += 1;
                    if let Some(f) = &mut fraction {
                        *f += 1;
                    }
                }
                b'.' if fraction.is_none() && self.at > first => fraction = Some(0),
                b',' | b'}' | b' ' | b'\t' | b'\n' | b'\r' => break,
                _ => return None,
            }
            self.at += 1;
            if digits > 18 {
                return None;
            }
        }
        if digits == 0 || fraction == Some(0) {
            return None;
        }
        let value = match fraction {
            // serde_json reads an integer as u64, or as i64 when negative (then converts it,
            // which rounds symmetrically), except "-0", which it reads as -0.0.
            None if negative => -(significand as f64),
            None => significand as f64,
            Some(k) => {
                let v = significand as f64 / POW10[k as usize];
                if negative { -v } else { v }
            }
        };
        Some(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(data: &[u8]) -> Option<Scanned<'_>> {
        let fields = Fields { time: "EVENT_TIME".into(), ticker: "TICKER".into(), price: "PRICE".into() };
        Scanner::new(&fields).trade(data)
    }

    #[test]
    fn the_reference_trade_takes_the_fast_path() {
        let data = br#"{"EVENT_TIME": "2026-11-25T10:00:00.123", "TICKER": "AMZN", "PRICE": 42.17}"#;
        assert_eq!(
            scan(data),
            Some(Scanned { time: b"2026-11-25T10:00:00.123", ticker: "AMZN", price: 42.17 })
        );
        let reordered = b" {\"PRICE\":-7,\n\"TICKER\":\"\xc3\xa9\",\"EVENT_TIME\":\"x\"}\t";
        assert_eq!(scan(reordered), Some(Scanned { time: b"x", ticker: "é", price: -7.0 }));
        // Long names and values cross word boundaries.
        let long =
            br#"{"EVENT_TIME":"2026-11-25T10:00:00.123456789Z","TICKER":"ABCDEFGHIJKLMNOPQRS","PRICE":1}"#;
        assert_eq!(scan(long).map(|s| s.ticker), Some("ABCDEFGHIJKLMNOPQRS"));
    }

    #[test]
    fn names_json_must_escape_are_left_to_serde_json() {
        let fields = Fields { time: "T".into(), ticker: "\\".into(), price: "P".into() };
        // `"\"` is not a key named `\` but the start of a string with an escaped quote: this
        // is not JSON, and must not be read as a ticker.
        let data = br#"{"T": "x", "\": "A", "P": 1}"#;
        assert_eq!(Scanner::new(&fields).trade(data), None);
    }

    #[test]
    fn anything_unusual_is_left_to_serde_json() {
        for data in [
            &br#"{"EVENT_TIME": "t", "TICKER": "A", "PRICE": 1, "X": 1}"#[..],
            br#"{"EVENT_TIME": "t", "TICKER": "A\u0042", "PRICE": 1}"#,
            br#"{"EVENT_TIME": "t", "TICKER": "A", "PRICE": 1e3}"#,
            br#"{"EVENT_TIME": "t", "TICKER": "A", "PRICE": 01}"#,
            br#"{"EVENT_TIME": "t", "TICKER": "A", "PRICE": 1.}"#,
            br#"{"EVENT_TIME": "t", "TICKER": "A", "PRICE": 1234567890.123456789}"#,
            br#"{"EVENT_TIME": "t", "TICKER": "A", "PRICE": "1"}"#,
            br#"{"EVENT_TIME": 17, "TICKER": "A", "PRICE": 1}"#,
            br#"{"EVENT_TIME": "t", "TICKER": "", "PRICE": 1}"#,
            br#"{"EVENT_TIME": "t", "TICKER": "A", "TICKER": "B", "PRICE": 1}"#,
            br#"{"TICKER": "A", "PRICE": 1}"#,
            br#"{"EVENT_TIME": "t", "TICKER": "A", "PRICE": 1} x"#,
            br#"{"EVENT_TIME": "t", "TICKER": "A", "PRICE": 1,}"#,
            b"{\"EVENT_TIME\": \"t\", \"TICKER\": \"\xff\", \"PRICE\": 1}",
            b"{\"EVENT_TIME\": \"t\x01\", \"TICKER\": \"A\", \"PRICE\": 1}",
            b"{\"EVENT_TIME\": \"t\", \"TICKER\": \"A\", \"PRICE\": 1\x0c}",
            b"{\"EVENT_TIME\": \"2026-11-25T10:00:0\x01.000\", \"TICKER\": \"A\", \"PRICE\": 1}",
            b"{\"EVENT_TIME\": \"2026-11-25T10:00:00.000\", \"TICKER\": \"ABCDEFGHIJ\\KL\", \"PRICE\": 1}",
            "{\"EVENT_TIME\": \"2026-11-25T10:00:00.00é\", \"TICKER\": \"A\", \"PRICE\": 1}".as_bytes(),
        ] {
            assert_eq!(scan(data), None, "{}", String::from_utf8_lossy(data));
        }
    }
}

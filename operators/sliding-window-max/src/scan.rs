//! The fast path for reading a trade: a scanner for records shaped like the reference
//! application's (one flat JSON object with exactly the three fields, plain strings, a plain
//! decimal price), which covers every record a typical producer writes. Anything else (another
//! field, an escape, an exponent, a number too long to be exact, whitespace or bytes JSON does
//! not allow, a duplicate) is not judged here: the scanner says `None` and the record goes
//! through serde_json ([`crate::trade`]), so values and refusals are serde_json's by
//! construction. The cursor, the word-at-a-time string skip and the name match are
//! `weir-json`'s, shared with the host's router. Measured: decoding was about half of the
//! whole path's CPU (BENCHMARKS.md).

use std::cell::RefCell;

use weir_json::{Cursor, Literal, QuotedName, digits, low_bytes};

use crate::config::Fields;

/// The three fields of a trade as they appear in the record, the price already a number.
#[derive(Debug, PartialEq)]
pub struct Scanned<'a> {
    /// The event time's text (printable ASCII, not yet parsed).
    pub time: &'a [u8],
    /// The ticker (UTF-8, no escapes, not empty), as bytes: checking UTF-8 is skipped when
    /// every byte is ASCII, which the string scan already knows.
    pub ticker: &'a [u8],
    /// The price, exactly as serde_json computes it for the same text.
    pub price: f64,
}

/// `10^k` for the exponents where dividing by it gives serde_json's result exactly: the same
/// literals serde_json's table holds, each exactly representable.
const POW10: [f64; 19] =
    [1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18];

/// The fast path, set up for the configured field names.
#[derive(Debug)]
pub struct Scanner {
    names: [QuotedName; 3],
    /// Whether every name is written the same inside a JSON string: only then can keys be
    /// recognised by their bytes.
    plain: bool,
    /// The layout of the last record the general scan read, tried first.
    shape: RefCell<Option<Shape>>,
}

/// One of the three values, as the scan reads it.
enum Value<'a> {
    Time(&'a [u8]),
    Ticker(&'a [u8]),
    Price(f64),
}

/// The three values, as far as read.
#[derive(Default)]
struct Parts<'a> {
    time: Option<&'a [u8]>,
    ticker: Option<&'a [u8]>,
    price: Option<f64>,
}

impl<'a> Parts<'a> {
    /// Take `value`; `None` if its field was already given.
    #[inline]
    fn set(&mut self, value: Value<'a>) -> Option<()> {
        match value {
            Value::Time(t) if self.time.is_none() => self.time = Some(t),
            Value::Ticker(t) if self.ticker.is_none() => self.ticker = Some(t),
            Value::Price(p) if self.price.is_none() => self.price = Some(p),
            _ => return None,
        }
        Some(())
    }

    fn scanned(self) -> Option<Scanned<'a>> {
        Some(Scanned { time: self.time?, ticker: self.ticker?, price: self.price? })
    }
}

/// Where each of a record's three values stands, in order: (field, start, end).
type Spans = [(usize, usize, usize); 3];

/// A record's layout: which field each value is, in order, and the text between them
/// (`{"EVENT_TIME": `, `, "TICKER": `, `, "PRICE": `, `}`). A producer writes every record the
/// same way, so after the first, a record is read by matching that text a word at a time and
/// reading the three values, with no search for names or whitespace: in wasm each of those
/// loops checks the CPU deadline on every turn. A record that does not match takes the general
/// scan, which learns its layout in turn. Reading one value after a literal is exactly what the
/// general scan does after the same text, so both give the same result.
#[derive(Clone, Copy, Debug)]
struct Shape {
    /// The field (0 time, 1 ticker, 2 price) of the first, second and third value.
    order: [usize; 3],
    /// The text before each value.
    before: [Literal; 3],
    /// The text after the last value, to the end of the record.
    after: Literal,
    /// The length of each value's text in the record it was learned from (between the quotes
    /// for a string): a string of the same length is read with no loop.
    lens: [usize; 3],
}

impl Shape {
    /// The layout of `data`, whose values (in order: field, start, end) the general scan found;
    /// `None` if some text between them is too long to be a [`Literal`].
    fn of(data: &[u8], values: Spans) -> Option<Self> {
        let [(f0, s0, e0), (f1, s1, e1), (f2, s2, e2)] = values;
        let lit = |from: usize, to: usize| data.get(from..to).and_then(Literal::new);
        let after = lit(e2, data.len()).filter(|l| l.len() <= 8)?;
        // A string's text is between its quotes.
        let len = |field: usize, start: usize, end: usize| {
            (end - start).saturating_sub(if field < 2 { 2 } else { 0 })
        };
        Some(Self {
            order: [f0, f1, f2],
            before: [lit(0, s0)?, lit(e0, s1)?, lit(e1, s2)?],
            after,
            lens: [len(f0, s0, e0), len(f1, s1, e1), len(f2, s2, e2)],
        })
    }

    /// `data` read with this layout, or `None` if it does not have it.
    #[inline(always)]
    fn trade<'a>(&self, data: &'a [u8]) -> Option<Scanned<'a>> {
        let mut c = Cursor::new(data);
        let mut parts = Parts::default();
        // Three calls rather than a loop over three: one loop fewer checking the deadline.
        c.literal(&self.before[0])?;
        parts.set(value(self.order[0], &mut c, self.lens[0])?)?;
        c.literal(&self.before[1])?;
        parts.set(value(self.order[1], &mut c, self.lens[1])?)?;
        c.literal(&self.before[2])?;
        parts.set(value(self.order[2], &mut c, self.lens[2])?)?;
        if !c.ends_with(&self.after) {
            return None;
        }
        parts.scanned()
    }
}

/// The value of `field` at the cursor, if the fast path reads it (see the module's doc); a
/// string of `len` bytes is read with no loop (`usize::MAX`: no length expected).
#[inline(always)]
fn value<'a>(field: usize, c: &mut Cursor<'a>, len: usize) -> Option<Value<'a>> {
    let string = |c: &mut Cursor<'a>| c.string_of(len).or_else(|| c.string());
    Some(match field {
        0 => {
            // Printable ASCII only: anything else is for jiff's messages through serde_json.
            let s = string(c).filter(|s| !s.escaped && !s.control && s.ascii)?;
            Value::Time(s.raw)
        }
        1 => {
            let s = string(c).filter(|s| !s.escaped && !s.control)?;
            let utf8 = s.ascii || std::str::from_utf8(s.raw).is_ok();
            Value::Ticker(Some(s.raw).filter(|t| utf8 && !t.is_empty())?)
        }
        _ => Value::Price(number(c)?),
    })
}

impl Scanner {
    /// A scanner for `fields`.
    pub fn new(fields: &Fields) -> Self {
        let names = [&fields.time, &fields.ticker, &fields.price].map(|n| QuotedName::new(n.as_bytes()));
        let plain = names.iter().all(QuotedName::is_plain);
        Self { names, plain, shape: RefCell::new(None) }
    }

    /// Scan `data` as a trade; `None` means: let serde_json decide.
    #[inline(always)]
    pub fn trade<'a>(&self, data: &'a [u8]) -> Option<Scanned<'a>> {
        if !self.plain {
            return None;
        }
        if let Some(shape) = &*self.shape.borrow()
            && let Some(scanned) = shape.trade(data)
        {
            return Some(scanned);
        }
        let (scanned, values) = self.general(data)?;
        *self.shape.borrow_mut() = Shape::of(data, values);
        Some(scanned)
    }

    /// Any layout: fields in any order, whitespace anywhere JSON allows it. The values found,
    /// with where each stands (field, start, end).
    fn general<'a>(&self, data: &'a [u8]) -> Option<(Scanned<'a>, Spans)> {
        let mut c = Cursor::new(data);
        c.whitespace();
        c.eat(b'{')?;
        let mut parts = Parts::default();
        let mut values: Spans = [(0, 0, 0); 3];
        let mut n = 0;
        loop {
            c.whitespace();
            let field = self.names.iter().position(|name| name.starts(c.rest()))?;
            c.advance(self.names[field].quoted_len());
            c.whitespace();
            c.eat(b':')?;
            c.whitespace();
            let start = c.position();
            parts.set(value(field, &mut c, usize::MAX)?)?;
            // At most three values: a fourth repeats a field, which `set` refused.
            *values.get_mut(n)? = (field, start, c.position());
            n += 1;
            c.whitespace();
            match c.bump()? {
                b',' => continue,
                b'}' => break,
                _ => return None,
            }
        }
        c.whitespace();
        if !c.at_end() {
            return None;
        }
        Some((parts.scanned()?, values))
    }
}

/// A number written `-?(0|[1-9][0-9]*)(\.[0-9]+)?` with at most 18 digits in all: its value as
/// serde_json computes it (the digits as an integer, converted to f64, divided by the power of
/// ten of the fraction's length: one correctly rounded operation). One that fits in a word (a
/// price such as `463.86`) is read a word at a time ([`short_number`]); a longer one by the
/// byte loop ([`long_number`]), which defines what is taken.
#[inline(always)]
fn number(c: &mut Cursor<'_>) -> Option<f64> {
    let negative = c.peek() == Some(b'-');
    if negative {
        c.advance(1);
    }
    let (significand, fraction) = match short_number(c.peek_word()) {
        Short::Number { significand, fraction, len } => {
            c.advance(len);
            (significand, fraction)
        }
        Short::Refused => return None,
        Short::Longer => long_number(c)?,
    };
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

/// What [`short_number`] made of a word.
#[derive(Debug, PartialEq)]
enum Short {
    /// A number of `len` bytes, its digits as an integer and the fraction's length.
    Number { significand: u64, fraction: Option<u32>, len: usize },
    /// Not a number the fast path takes ([`long_number`] would say the same).
    Refused,
    /// It may go on past the word: for [`long_number`].
    Longer,
}

/// The number at the start of `word` (eight bytes of text, `len` of them the text's, see
/// `Cursor::peek_word`), without a loop: the digits found by masks, the `.` taken out, the
/// digits converted to an integer by three multiplications. The same judgement as
/// [`long_number`]'s wherever the number ends within the word.
#[inline(always)]
fn short_number((word, len): (u64, usize)) -> Short {
    // Bytes past the text read as zero bytes: not digits, and not a `.` either.
    let (x, ends) = digits(word);
    let int = (ends.trailing_zeros() / 8) as usize;
    if int == 8 {
        return Short::Longer;
    }
    // A leading zero before another digit is invalid JSON (serde_json says so).
    if int == 0 || (int > 1 && x & 0xff == 0) {
        return Short::Refused;
    }
    let byte_at = |i: usize| (word >> (i * 8)) as u8;
    let (packed, fraction, end) = if byte_at(int) == b'.' {
        if int + 1 >= 8 {
            return Short::Longer;
        }
        // The text after the `.`, the bytes shifted in from above 0xff: not digits.
        let shift = (int + 1) * 8;
        let (after, after_ends) = digits((word >> shift) | (u64::MAX << (64 - shift)));
        let f = (after_ends.trailing_zeros() / 8) as usize;
        if int + 1 + f >= 8 {
            return Short::Longer;
        }
        if f == 0 {
            return Short::Refused;
        }
        let packed = (x & low_bytes(int)) | ((after & low_bytes(f)) << (int * 8));
        (packed, Some(f as u32), int + 1 + f)
    } else {
        (x & low_bytes(int), None, int)
    };
    // What may follow a number here; the end of the text too.
    if end < len && !matches!(byte_at(end), b',' | b'}' | b' ' | b'\t' | b'\n' | b'\r') {
        return Short::Refused;
    }
    // At most seven digits, the first in the lowest byte: move them to the top so that the
    // word reads as eight digits with leading zeros, then add pairs, fours and eights.
    let n = end - usize::from(fraction.is_some());
    let v = packed << ((8 - n) * 8);
    let v = (v * 10).wrapping_add(v >> 8) & 0x00ff_00ff_00ff_00ff;
    let v = (v * 100).wrapping_add(v >> 16) & 0x0000_ffff_0000_ffff;
    let v = (v * 10_000).wrapping_add(v >> 32) & 0xffff_ffff;
    Short::Number { significand: v, fraction, len: end }
}

/// The byte loop for a number that does not fit in a word: its digits as an integer and the
/// fraction's length, the cursor moved past it.
fn long_number(c: &mut Cursor<'_>) -> Option<(u64, Option<u32>)> {
    let text = c.rest();
    let (mut digits, mut significand, mut fraction) = (0u32, 0u64, None::<u32>);
    let mut len = 0;
    while let Some(&b) = text.get(len) {
        match b {
            b'0'..=b'9' => {
                if len == 1 && text[0] == b'0' {
                    return None; // a leading zero: invalid JSON, serde_json says so
                }
                significand = significand * 10 + u64::from(b - b'0');
                digits += 1;
                if let Some(f) = &mut fraction {
                    *f += 1;
                }
            }
            b'.' if fraction.is_none() && len > 0 => fraction = Some(0),
            b',' | b'}' | b' ' | b'\t' | b'\n' | b'\r' => break,
            _ => return None,
        }
        len += 1;
        if digits > 18 {
            return None;
        }
    }
    if digits == 0 || fraction == Some(0) {
        return None;
    }
    c.advance(len);
    Some((significand, fraction))
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
            Some(Scanned { time: b"2026-11-25T10:00:00.123", ticker: b"AMZN", price: 42.17 })
        );
        let reordered = b" {\"PRICE\":-7,\n\"TICKER\":\"\xc3\xa9\",\"EVENT_TIME\":\"x\"}\t";
        assert_eq!(scan(reordered), Some(Scanned { time: b"x", ticker: "é".as_bytes(), price: -7.0 }));
        // Long names and values cross word boundaries.
        let long =
            br#"{"EVENT_TIME":"2026-11-25T10:00:00.123456789Z","TICKER":"ABCDEFGHIJKLMNOPQRS","PRICE":1}"#;
        assert_eq!(scan(long).map(|s| s.ticker), Some(&b"ABCDEFGHIJKLMNOPQRS"[..]));
    }

    /// What the word-at-a-time path makes of the number at `at` in `data`, as the byte loop
    /// would say it: `None` when it leaves the number to the loop.
    fn short_at(data: &[u8], at: usize) -> Option<Option<(u64, Option<u32>, usize)>> {
        let mut c = Cursor::new(data);
        c.advance(at);
        match short_number(c.peek_word()) {
            Short::Number { significand, fraction, len } => Some(Some((significand, fraction, len))),
            Short::Refused => Some(None),
            Short::Longer => None,
        }
    }

    fn long_at(data: &[u8], at: usize) -> Option<(u64, Option<u32>, usize)> {
        let mut c = Cursor::new(data);
        c.advance(at);
        let (significand, fraction) = long_number(&mut c)?;
        Some((significand, fraction, c.position() - at))
    }

    #[test]
    fn a_short_number_is_read_a_word_at_a_time_as_the_byte_loop_reads_it() {
        for (text, expected) in [
            ("463.86}", Some((46386, Some(2), 6))),
            ("42.17", Some((4217, Some(2), 5))),
            ("7,", Some((7, None, 1))),
            ("0", Some((0, None, 1))),
            ("0.5 ", Some((5, Some(1), 3))),
            ("1234567}", Some((1234567, None, 7))),
            ("123456.7", Some((1234567, Some(1), 8))),
            ("1234.5678}", Some((12345678, Some(4), 9))),
            ("12345678.9", Some((123456789, Some(1), 10))),
            ("01", None),
            ("1.", None),
            (".5", None),
            ("1e5", None),
            ("1.2.3", None),
            ("", None),
        ] {
            assert_eq!(long_at(text.as_bytes(), 0), expected, "{text:?}");
            // Alone, and where the word is loaded from the end of a longer text.
            for data in [text.to_string(), format!("{{\"PRICE\": {text}")] {
                let at = data.len() - text.len();
                if let Some(short) = short_at(data.as_bytes(), at) {
                    assert_eq!(short, expected, "{data:?}");
                }
            }
        }
        assert_eq!(short_at(b"463.86}", 0), Some(Some((46386, Some(2), 6))), "the fast path took it");
        assert_eq!(short_at(b"12345678", 0), None, "eight digits may go on");
    }

    proptest::proptest! {
        #[test]
        fn the_word_at_a_time_number_agrees_with_the_byte_loop(
            text in "[-0-9.,} eE\n\r\t\"x]{0,12}",
            prefix in 0usize..10,
        ) {
            let data = format!("{}{text}", "{".repeat(prefix));
            if let Some(short) = short_at(data.as_bytes(), prefix) {
                proptest::prop_assert_eq!(short, long_at(data.as_bytes(), prefix), "{:?}", data);
            }
        }
    }

    #[test]
    fn a_layout_learned_keeps_the_length_of_each_value() {
        let fields = Fields { time: "EVENT_TIME".into(), ticker: "TICKER".into(), price: "PRICE".into() };
        let scanner = Scanner::new(&fields);
        let data = br#"{"EVENT_TIME": "2026-11-25T10:00:00.123", "TICKER": "AMZN", "PRICE": 42.17}"#;
        assert!(scanner.trade(data).is_some());
        let shape = scanner.shape.borrow().expect("a layout learned");
        assert_eq!(
            (shape.order, shape.lens),
            ([0, 1, 2], [23, 4, 5]),
            "strings' lengths between their quotes"
        );
        // A ticker of another length takes the string loop: the same values.
        let other = br#"{"EVENT_TIME": "2026-11-25T10:00:00.124", "TICKER": "GOOGL", "PRICE": 7}"#;
        assert_eq!(
            scanner.trade(other),
            Some(Scanned { time: b"2026-11-25T10:00:00.124", ticker: b"GOOGL", price: 7.0 })
        );
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

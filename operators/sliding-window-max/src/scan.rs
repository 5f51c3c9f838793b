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
    pub time: &'a str,
    /// The ticker (UTF-8, no escapes, not empty).
    pub ticker: &'a str,
    /// The price, exactly as serde_json computes it for the same text.
    pub price: f64,
}

/// `10^k` for the exponents where dividing by it gives serde_json's result exactly: the same
/// literals serde_json's table holds, each exactly representable.
const POW10: [f64; 19] =
    [1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18];

/// Scan `data` as a trade with `fields`; `None` means: let serde_json decide.
pub fn trade<'a>(data: &'a [u8], fields: &Fields) -> Option<Scanned<'a>> {
    let mut s = Cursor { data, at: 0 };
    s.whitespace();
    s.eat(b'{')?;
    let (mut time, mut ticker, mut price) = (None, None, None);
    loop {
        s.whitespace();
        let name = s.plain_string()?;
        s.whitespace();
        s.eat(b':')?;
        s.whitespace();
        if name == fields.time.as_bytes() && time.is_none() {
            let text = s.plain_string()?;
            // Printable ASCII only: anything else is for jiff's messages through serde_json.
            if !text.iter().all(|b| (0x20..0x7f).contains(b)) {
                return None;
            }
            time = Some(std::str::from_utf8(text).ok()?);
        } else if name == fields.ticker.as_bytes() && ticker.is_none() {
            let text = s.plain_string()?;
            ticker = Some(std::str::from_utf8(text).ok().filter(|t| !t.is_empty())?);
        } else if name == fields.price.as_bytes() && price.is_none() {
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

    /// A string without escapes or control characters; its bytes (not checked for UTF-8).
    #[inline]
    fn plain_string(&mut self) -> Option<&'a [u8]> {
        self.eat(b'"')?;
        let start = self.at;
        loop {
            match self.next()? {
                b'"' => return Some(&self.data[start..self.at - 1]),
                b'\\' | 0..0x20 => return None,
                _ => {}
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

    fn fields() -> Fields {
        Fields { time: "EVENT_TIME".into(), ticker: "TICKER".into(), price: "PRICE".into() }
    }

    #[test]
    fn the_reference_trade_takes_the_fast_path() {
        let data = br#"{"EVENT_TIME": "2026-11-25T10:00:00.123", "TICKER": "AMZN", "PRICE": 42.17}"#;
        assert_eq!(
            trade(data, &fields()),
            Some(Scanned { time: "2026-11-25T10:00:00.123", ticker: "AMZN", price: 42.17 })
        );
        let reordered = b" {\"PRICE\":-7,\n\"TICKER\":\"\xc3\xa9\",\"EVENT_TIME\":\"x\"}\t";
        assert_eq!(trade(reordered, &fields()), Some(Scanned { time: "x", ticker: "é", price: -7.0 }));
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
        ] {
            assert_eq!(trade(data, &fields()), None, "{}", String::from_utf8_lossy(data));
        }
    }
}

//! Reading a trade out of a record's JSON without allocating: the field names come from the
//! settings, so a `DeserializeSeed` walks the object and keeps only the three fields it needs.
//!
//! Event times are parsed by jiff. Consecutive trades almost always fall in the same minute, so
//! the epoch time of the last minute seen is kept, and a time written as
//! `YYYY-MM-DDTHH:MM:SS[.fff…][Z]` in that same minute only needs its seconds and fraction
//! read; anything else goes to jiff.

use std::borrow::Cow;
use std::cell::Cell;
use std::fmt;

use jiff::Timestamp;
use jiff::civil::Time;
use jiff::fmt::temporal::{Pieces, PiecesOffset};
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, Visitor};

use crate::config::Fields;

/// The fields of one trade. `ticker` borrows from the record unless it had escapes.
#[derive(Debug, PartialEq)]
pub struct Trade<'a> {
    /// Event time, ms since the Unix epoch (None when the field is absent).
    pub time_ms: Option<i64>,
    pub ticker: Cow<'a, str>,
    pub price: f64,
}

/// Parses trades with the configured field names, remembering the last minute seen.
#[derive(Debug)]
pub struct TradeParser {
    fields: Fields,
    /// The fast path for records shaped like the reference trades.
    scanner: crate::scan::Scanner,
    /// `YYYY-MM-DDTHH:MM` of the last event time that took the slow path, and its epoch ms.
    minute: Cell<Option<([u8; 16], i64)>>,
}

impl TradeParser {
    pub fn new(fields: Fields) -> Self {
        Self { scanner: crate::scan::Scanner::new(&fields), fields, minute: Cell::new(None) }
    }

    /// Parse `data` as a trade. The error says what is missing or malformed, in words fit
    /// for a dead-letter record. Records shaped like the reference trades take the scanner
    /// ([`crate::scan`]); everything else, and every refusal, is serde_json's.
    pub fn parse<'a>(&self, data: &'a [u8]) -> Result<Trade<'a>, String> {
        if let Some(scanned) = self.scanner.trade(data)
            && let Ok(time_ms) = self.time_bytes(scanned.time)
        {
            return Ok(Trade {
                time_ms: Some(time_ms),
                ticker: Cow::Borrowed(scanned.ticker),
                price: scanned.price,
            });
        }
        self.parse_with_serde(data)
    }

    /// [`parse`](Self::parse) through serde_json only.
    pub fn parse_with_serde<'a>(&self, data: &'a [u8]) -> Result<Trade<'a>, String> {
        let fields = &self.fields;
        let mut de = serde_json::Deserializer::from_slice(data);
        let parsed = TradeSeed(self).deserialize(&mut de).map_err(|e| e.to_string())?;
        de.end().map_err(|e| e.to_string())?;
        let Parsed { time_ms, ticker, price } = parsed;
        let ticker = ticker.ok_or_else(|| format!("missing field {:?}", fields.ticker))?;
        if ticker.is_empty() {
            return Err(format!("field {:?} is empty", fields.ticker));
        }
        let price = price.ok_or_else(|| format!("missing field {:?}", fields.price))?;
        Ok(Trade { time_ms, ticker, price })
    }

    /// An event time as ms since the Unix epoch; see [`parse_time`].
    pub fn time(&self, text: &str) -> Result<i64, String> {
        self.time_bytes(text.as_bytes())
    }

    /// [`time`](Self::time) of text not yet checked to be UTF-8: the same minute as the last
    /// one needs no check (its prefix was), anything else is checked, then parsed.
    pub fn time_bytes(&self, b: &[u8]) -> Result<i64, String> {
        if let Some(((prefix, rest), (cached, minute_ms))) =
            b.split_first_chunk::<16>().zip(self.minute.get())
            && *prefix == cached
            && let Some(offset) = seconds_and_fraction(rest)
        {
            return Ok(minute_ms + offset);
        }
        let text = std::str::from_utf8(b).map_err(|e| format!("the time is not UTF-8: {e}"))?;
        let ms = parse_time(text)?;
        // Remember this minute when the text has the plain layout and the time is after 1970
        // (so that adding the seconds rounds as jiff does).
        if let Some((prefix, rest)) = b.split_first_chunk::<16>()
            && let Some(offset) = seconds_and_fraction(rest)
            && ms - offset >= 0
        {
            self.minute.set(Some((*prefix, ms - offset)));
        }
        Ok(ms)
    }
}

/// `:SS`, then optionally `.` and 1 to 9 digits, then optionally `Z`: the ms into the minute.
fn seconds_and_fraction(rest: &[u8]) -> Option<i64> {
    let digit = |c: u8| c.is_ascii_digit().then(|| i64::from(c - b'0'));
    let (&[colon, s1, s2], rest) = rest.split_first_chunk::<3>()?;
    if colon != b':' {
        return None;
    }
    let seconds = digit(s1)? * 10 + digit(s2)?;
    if seconds > 59 {
        return None;
    }
    let rest = rest.strip_suffix(b"Z").unwrap_or(rest);
    let mut millis = 0;
    match rest.split_first() {
        None => {}
        Some((b'.', fraction)) if (1..=9).contains(&fraction.len()) => {
            for (i, &c) in fraction.iter().enumerate() {
                let d = digit(c)?;
                if i < 3 {
                    millis += d * [100, 10, 1][i];
                }
            }
        }
        Some(_) => return None,
    }
    Some(seconds * 1000 + millis)
}

/// Parse an ISO-8601 date-time with or without offset (no offset means UTC; 0 to 9 fraction
/// digits) into ms since the Unix epoch.
pub fn parse_time(text: &str) -> Result<i64, String> {
    let bad = |e: &dyn fmt::Display| {
        format!("{text:?} is not an ISO-8601 date-time such as 2026-11-25T10:00:00.123 ({e})")
    };
    let pieces = Pieces::parse(text).map_err(|e| bad(&e))?;
    let time = pieces.time().unwrap_or(Time::midnight());
    let offset = match pieces.offset() {
        Some(PiecesOffset::Numeric(n)) => n.offset(),
        // None, `Z`, and RFC 9557's "-00:00" (UTC, local offset unknown).
        _ => jiff::tz::Offset::UTC,
    };
    let ts: Timestamp = offset.to_timestamp(pieces.date().to_datetime(time)).map_err(|e| bad(&e))?;
    Ok(ts.as_millisecond())
}

struct Parsed<'a> {
    time_ms: Option<i64>,
    ticker: Option<Cow<'a, str>>,
    price: Option<f64>,
}

struct TradeSeed<'p>(&'p TradeParser);

impl<'de> DeserializeSeed<'de> for TradeSeed<'_> {
    type Value = Parsed<'de>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for TradeSeed<'_> {
    type Value = Parsed<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object with a trade")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = Parsed { time_ms: None, ticker: None, price: None };
        let fields = &self.0.fields;
        // A field given twice is refused, as serde_json refuses it for a struct: the host routes
        // a record by the first ticker, so taking another would file it under the wrong key.
        let duplicate = |name: &str| de::Error::custom(format_args!("duplicate field {name:?}"));
        while let Some(field) = map.next_key_seed(FieldSeed(fields))? {
            match field {
                Field::Time if out.time_ms.is_some() => return Err(duplicate(&fields.time)),
                Field::Ticker if out.ticker.is_some() => return Err(duplicate(&fields.ticker)),
                Field::Price if out.price.is_some() => return Err(duplicate(&fields.price)),
                Field::Time => out.time_ms = Some(map.next_value_seed(TimeSeed(self.0))?),
                Field::Ticker => out.ticker = Some(map.next_value_seed(TickerSeed(&fields.ticker))?),
                Field::Price => out.price = Some(map.next_value_seed(PriceSeed(&fields.price))?),
                Field::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(out)
    }
}

enum Field {
    Time,
    Ticker,
    Price,
    Other,
}

struct FieldSeed<'f>(&'f Fields);

impl<'de> DeserializeSeed<'de> for FieldSeed<'_> {
    type Value = Field;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Field, D::Error> {
        d.deserialize_str(self)
    }
}

impl Visitor<'_> for FieldSeed<'_> {
    type Value = Field;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a field name")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Field, E> {
        Ok(if v == self.0.time {
            Field::Time
        } else if v == self.0.ticker {
            Field::Ticker
        } else if v == self.0.price {
            Field::Price
        } else {
            Field::Other
        })
    }
}

/// Event time: an ISO-8601 string or a number of epoch milliseconds.
struct TimeSeed<'p>(&'p TradeParser);

impl<'de> DeserializeSeed<'de> for TimeSeed<'_> {
    type Value = i64;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<i64, D::Error> {
        d.deserialize_any(self)
    }
}

impl Visitor<'_> for TimeSeed<'_> {
    type Value = i64;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "field {:?} as an ISO-8601 date-time string or epoch milliseconds", self.0.fields.time)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<i64, E> {
        self.0.time(v).map_err(|e| E::custom(format!("field {:?}: {e}", self.0.fields.time)))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<i64, E> {
        Ok(v)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<i64, E> {
        i64::try_from(v)
            .map_err(|_| E::custom(format!("field {:?}: {v} is out of range", self.0.fields.time)))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<i64, E> {
        if v.is_finite() && v.abs() < 9.0e15 {
            Ok(v.floor() as i64)
        } else {
            Err(E::custom(format!("field {:?}: {v} is out of range", self.0.fields.time)))
        }
    }
}

struct TickerSeed<'f>(&'f str);

impl<'de> DeserializeSeed<'de> for TickerSeed<'_> {
    type Value = Cow<'de, str>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for TickerSeed<'_> {
    type Value = Cow<'de, str>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "field {:?} as a string", self.0)
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_string()))
    }
}

struct PriceSeed<'f>(&'f str);

impl<'de> DeserializeSeed<'de> for PriceSeed<'_> {
    type Value = f64;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<f64, D::Error> {
        d.deserialize_f64(self)
    }
}

impl Visitor<'_> for PriceSeed<'_> {
    type Value = f64;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "field {:?} as a number", self.0)
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<f64, E> {
        Ok(v)
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<f64, E> {
        Ok(v as f64)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<f64, E> {
        Ok(v as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields() -> Fields {
        Fields { time: "EVENT_TIME".into(), ticker: "TICKER".into(), price: "PRICE".into() }
    }

    #[test]
    fn reference_trade_parses_without_copying_the_ticker() {
        let data = br#"{"EVENT_TIME": "2026-11-25T10:00:00.123", "TICKER": "AMZN", "PRICE": 42.17, "X": [1, {"y": 2}]}"#;
        let t = TradeParser::new(fields()).parse(data).unwrap();
        assert_eq!(t.time_ms, Some(1_795_600_800_123));
        assert!(matches!(t.ticker, Cow::Borrowed("AMZN")));
        assert_eq!(t.price, 42.17);
    }

    #[test]
    fn time_formats() {
        let base = 1_795_600_800_000;
        for (text, ms) in [
            ("2026-11-25T10:00:00", base),
            ("2026-11-25T10:00:00.1", base + 100),
            ("2026-11-25T10:00:00.123456789", base + 123),
            ("2026-11-25T10:00:00.123Z", base + 123),
            ("2026-11-25T11:00:00.5+01:00", base + 500),
            ("2026-11-25T05:00:00-05:00", base),
            ("2026-11-25 10:00:00.250", base + 250),
        ] {
            assert_eq!(parse_time(text), Ok(ms), "{text}");
        }
        let t = TradeParser::new(fields())
            .parse(br#"{"EVENT_TIME": 1795600800123, "TICKER": "A", "PRICE": 1}"#)
            .unwrap();
        assert_eq!((t.time_ms, t.price), (Some(base + 123), 1.0));
    }

    #[test]
    fn the_same_minute_shortcut_agrees_with_jiff() {
        let parser = TradeParser::new(fields());
        let mut texts = vec![];
        for minute in ["2026-11-25T10:00", "2026-11-25T10:01", "1999-12-31T23:59", "2026-11-25 10:01"] {
            for rest in [
                ":00",
                ":07.5",
                ":59.999999999",
                ":30.1Z",
                ":30.123+01:00",
                ":60",
                ":5",
                ":05.",
                ":05.1234567890",
                ":05x",
            ] {
                texts.push(format!("{minute}{rest}"));
            }
        }
        for _ in 0..2 {
            for text in &texts {
                assert_eq!(parser.time(text), parse_time(text), "{text}");
            }
        }
        assert!(parser.minute.get().is_some(), "the cache was used");
    }

    #[test]
    fn bad_trades_say_what_is_wrong() {
        let err = |d: &[u8]| TradeParser::new(fields()).parse(d).unwrap_err();
        assert!(
            err(br#"{"EVENT_TIME": "yesterday", "TICKER": "A", "PRICE": 1}"#)
                .contains("\"yesterday\" is not an ISO-8601")
        );
        assert!(err(br#"{"EVENT_TIME": 1, "PRICE": 1}"#).contains("missing field \"TICKER\""));
        assert!(err(br#"{"EVENT_TIME": 1, "TICKER": "A"}"#).contains("missing field \"PRICE\""));
        assert!(err(br#"{"EVENT_TIME": 1, "TICKER": "A", "PRICE": "12"}"#).contains("as a number"));
        assert!(err(br#"{"EVENT_TIME": 1, "TICKER": "", "PRICE": 1}"#).contains("is empty"));
        assert!(err(b"not json").contains("expected"));
        assert!(err(br#"[1, 2]"#).contains("a JSON object"));
        assert!(err(br#"{"TICKER": "A", "PRICE": 1} trailing"#).contains("trailing"));
        assert!(err(br#"{"TICKER": "A", "PRICE": 1, "TICKER": "B"}"#).contains("duplicate field \"TICKER\""));
    }
}

//! Reading a trade out of a record's JSON without allocating: the field names come from the
//! settings, so a `DeserializeSeed` walks the object and keeps only the three fields it needs.
//! Event times are read by [`crate::event_time`].

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, Visitor};

use crate::config::Fields;
use crate::event_time::EventTimes;

/// The fields of one trade. `ticker` borrows from the record unless it had escapes.
#[derive(Debug, PartialEq)]
pub struct Trade<'a> {
    /// Event time, ms since the Unix epoch (None when the field is absent).
    pub time_ms: Option<i64>,
    /// The ticker's text as bytes (always UTF-8): looked up by its bytes, it is turned into a
    /// `str` only when it is a new key.
    pub ticker: Cow<'a, [u8]>,
    pub price: f64,
}

/// Parses trades with the configured field names, remembering the last minute seen.
#[derive(Debug)]
pub struct TradeParser {
    fields: Fields,
    /// The fast path for records shaped like the reference trades.
    scanner: crate::scan::Scanner,
    /// Event times, with the last minute seen remembered.
    times: EventTimes,
}

impl TradeParser {
    pub fn new(fields: Fields) -> Self {
        Self { scanner: crate::scan::Scanner::new(&fields), fields, times: EventTimes::default() }
    }

    /// Parse `data` as a trade. The error says what is missing or malformed, in words fit
    /// for a dead-letter record. Records shaped like the reference trades take the scanner
    /// ([`crate::scan`]); everything else, and every refusal, is serde_json's.
    #[inline(always)]
    pub fn parse<'a>(&self, data: &'a [u8]) -> Result<Trade<'a>, String> {
        if let Some((time_ms, ticker, price)) = self.scan(data) {
            return Ok(Trade { time_ms: Some(time_ms), ticker: Cow::Borrowed(ticker), price });
        }
        self.parse_with_serde(data)
    }

    /// The scanner's path alone: event time, ticker and price of a record shaped like the
    /// reference trades, or None for any other (which [`parse_with_serde`](Self::parse_with_serde)
    /// reads or refuses). Plain values rather than a [`Trade`]: in wasm, the `Result` of a
    /// `Trade` was built and moved through the stack in memory on every record.
    #[inline(always)]
    pub fn scan<'a>(&self, data: &'a [u8]) -> Option<(i64, &'a [u8], f64)> {
        let scanned = self.scanner.trade(data)?;
        let time_ms = self.times.parse_bytes(scanned.time).ok()?;
        Some((time_ms, scanned.ticker, scanned.price))
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
        let ticker = match ticker {
            Cow::Borrowed(t) => Cow::Borrowed(t.as_bytes()),
            Cow::Owned(t) => Cow::Owned(t.into_bytes()),
        };
        Ok(Trade { time_ms, ticker, price })
    }
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
        self.0.times.parse(v).map_err(|e| E::custom(format!("field {:?}: {e}", self.0.fields.time)))
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
        assert!(matches!(t.ticker, Cow::Borrowed(b"AMZN")));
        assert_eq!(t.price, 42.17);
    }

    #[test]
    fn an_event_time_in_epoch_milliseconds_is_taken_as_is() {
        let base = 1_795_600_800_000;
        let t = TradeParser::new(fields())
            .parse(br#"{"EVENT_TIME": 1795600800123, "TICKER": "A", "PRICE": 1}"#)
            .unwrap();
        assert_eq!((t.time_ms, t.price), (Some(base + 123), 1.0));
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

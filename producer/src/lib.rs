//! The stock-trade generator: random-walk prices for a set of tickers, written as the JSON
//! records the reference application reads
//! (`{"EVENT_TIME": "2026-11-25T10:00:00.123", "TICKER": "AMZN", "PRICE": 42.17}`).
//!
//! The generator is deterministic for a given [`GeneratorConfig`] (seed included), so tests and
//! benchmarks can produce the same stream twice. Event times advance by a fixed step per trade
//! (1 ms by default, as in the benchmark workload), independent of the wall clock; pacing to a
//! wall-clock rate is the caller's business (see [`Pacer`]).

use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// The tickers of the reference application.
pub const DEFAULT_TICKERS: [&str; 5] = ["AMZN", "GOOG", "AZRE", "ORCL", "BABA"];

/// Which tickers trades are for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Tickers {
    /// AMZN, GOOG, AZRE, ORCL, BABA.
    Default,
    /// `n` synthetic tickers: `T0000`, `T0001`, ...
    Synthetic(usize),
    /// These names.
    List(Vec<String>),
}

impl Tickers {
    /// The ticker names.
    pub fn names(&self) -> Vec<String> {
        match self {
            Tickers::Default => DEFAULT_TICKERS.iter().map(|s| s.to_string()).collect(),
            Tickers::Synthetic(n) => (0..*n).map(|i| format!("T{i:04}")).collect(),
            Tickers::List(names) => names.clone(),
        }
    }
}

impl std::str::FromStr for Tickers {
    type Err = String;

    /// `default`, a number of synthetic tickers, or a comma-separated list of names.
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if s.is_empty() || s == "default" {
            return Ok(Tickers::Default);
        }
        if let Ok(n) = s.parse::<usize>() {
            return if n == 0 { Err("need at least one ticker".into()) } else { Ok(Tickers::Synthetic(n)) };
        }
        let names: Vec<String> = s.split(',').map(|t| t.trim().to_string()).collect();
        if names.iter().any(|n| n.is_empty() || n.len() > 256) {
            return Err(format!("{s:?}: ticker names must be 1 to 256 characters (they are partition keys)"));
        }
        Ok(Tickers::List(names))
    }
}

/// How to generate trades.
#[derive(Clone, Debug)]
pub struct GeneratorConfig {
    /// Which tickers.
    pub tickers: Tickers,
    /// Seed of the random walk and the ticker choice.
    pub seed: u64,
    /// Event time of the first trade, ms since the Unix epoch.
    pub start_time_ms: i64,
    /// Event time between consecutive trades, ms.
    pub step_ms: i64,
}

impl Default for GeneratorConfig {
    fn default() -> Self {
        Self { tickers: Tickers::Default, seed: 42, start_time_ms: 1_795_600_800_000, step_ms: 1 }
    }
}

/// One generated trade.
#[derive(Clone, Debug, PartialEq)]
pub struct Trade<'a> {
    /// Event time, ms since the Unix epoch.
    pub time_ms: i64,
    /// The ticker, also the record's partition key.
    pub ticker: &'a str,
    /// Price, rounded to cents.
    pub price: f64,
}

/// Errors building a generator.
#[derive(Debug, thiserror::Error)]
pub enum GeneratorError {
    /// A list of tickers with nothing in it.
    #[error("no tickers to generate trades for")]
    NoTickers,
}

/// An endless, deterministic stream of trades.
#[derive(Debug)]
pub struct TradeGenerator {
    rng: SmallRng,
    tickers: Vec<String>,
    prices: Vec<f64>,
    next_time_ms: i64,
    step_ms: i64,
}

impl TradeGenerator {
    /// A generator for `config`.
    pub fn new(config: &GeneratorConfig) -> Result<Self, GeneratorError> {
        let tickers = config.tickers.names();
        if tickers.is_empty() {
            return Err(GeneratorError::NoTickers);
        }
        let mut rng = SmallRng::seed_from_u64(config.seed);
        let prices =
            tickers.iter().map(|_| (rng.random_range(20.0..500.0f64) * 100.0).round() / 100.0).collect();
        Ok(Self { rng, tickers, prices, next_time_ms: config.start_time_ms, step_ms: config.step_ms })
    }

    /// Advance the walk: (ticker index, event time, price) of the next trade.
    fn step(&mut self) -> (usize, i64, f64) {
        let i = self.rng.random_range(0..self.tickers.len());
        let factor = 1.0 + self.rng.random_range(-0.005..0.005f64);
        let price = ((self.prices[i] * factor) * 100.0).round().max(1.0) / 100.0;
        self.prices[i] = price;
        let time_ms = self.next_time_ms;
        self.next_time_ms += self.step_ms;
        (i, time_ms, price)
    }

    /// The next trade: a random ticker whose price moves by up to ±0.5%, never below one cent.
    pub fn next_trade(&mut self) -> Trade<'_> {
        let (i, time_ms, price) = self.step();
        Trade { time_ms, ticker: &self.tickers[i], price }
    }

    /// Append the next trade as one JSON object (no newline) to `buf`; returns its ticker.
    pub fn write_next(&mut self, buf: &mut Vec<u8>) -> &str {
        let (i, time_ms, price) = self.step();
        write_trade(buf, time_ms, &self.tickers[i], price);
        &self.tickers[i]
    }

    /// Event time the next trade will carry.
    pub fn next_time_ms(&self) -> i64 {
        self.next_time_ms
    }
}

/// Write a trade as the reference application's JSON: `EVENT_TIME` in UTC without offset and
/// with milliseconds, as Python's `isoformat(timespec="milliseconds")` writes it.
pub fn write_trade(buf: &mut Vec<u8>, time_ms: i64, ticker: &str, price: f64) {
    use std::io::Write;
    let time = jiff::Timestamp::from_millisecond(time_ms)
        .map(|t| t.to_zoned(jiff::tz::TimeZone::UTC).datetime())
        .unwrap_or_default();
    // Writes into a Vec cannot fail.
    let _ = write!(buf, "{{\"EVENT_TIME\": \"{time:.3}\", \"TICKER\": ");
    let _ = serde_json::to_writer(&mut *buf, ticker);
    let _ = write!(buf, ", \"PRICE\": {price}}}");
}

/// Spaces work out to a wall-clock rate: call [`Pacer::wait`] before each item, or
/// [`Pacer::due`] to learn how many items are due now.
#[derive(Debug)]
pub struct Pacer {
    start: Instant,
    per_second: f64,
    sent: u64,
}

impl Pacer {
    /// A pacer for `per_second` items per second (0 or less: no pacing).
    pub fn new(per_second: f64) -> Self {
        Self { start: Instant::now(), per_second, sent: 0 }
    }

    /// How many items may go now, at most `max`; counts them as sent.
    pub fn due(&mut self, max: u64) -> u64 {
        if self.per_second <= 0.0 {
            self.sent += max;
            return max;
        }
        let allowed = (self.start.elapsed().as_secs_f64() * self.per_second) as u64;
        let n = allowed.saturating_sub(self.sent).min(max);
        self.sent += n;
        n
    }

    /// How long until the next item is due.
    pub fn until_next(&self) -> Duration {
        if self.per_second <= 0.0 {
            return Duration::ZERO;
        }
        let at = Duration::from_secs_f64((self.sent + 1) as f64 / self.per_second);
        at.saturating_sub(self.start.elapsed())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_stream_and_the_json_is_the_reference_shape() {
        let config = GeneratorConfig::default();
        let (mut a, mut b) = (TradeGenerator::new(&config).unwrap(), TradeGenerator::new(&config).unwrap());
        let (mut x, mut y) = (Vec::new(), Vec::new());
        for _ in 0..1000 {
            a.write_next(&mut x);
            b.write_next(&mut y);
        }
        assert_eq!(x, y);
        let mut one = Vec::new();
        write_trade(&mut one, 1_795_600_800_123, "AMZN", 42.17);
        assert_eq!(
            String::from_utf8(one).unwrap(),
            r#"{"EVENT_TIME": "2026-11-25T10:00:00.123", "TICKER": "AMZN", "PRICE": 42.17}"#
        );
    }

    #[test]
    fn trades_step_in_event_time_and_cover_every_ticker() {
        let config = GeneratorConfig { tickers: Tickers::Synthetic(3), step_ms: 5, ..Default::default() };
        let mut g = TradeGenerator::new(&config).unwrap();
        let mut seen = std::collections::BTreeSet::new();
        for i in 0..300 {
            let t = g.next_trade();
            assert_eq!(t.time_ms, config.start_time_ms + 5 * i);
            assert!(t.price >= 0.01);
            seen.insert(t.ticker.to_string());
        }
        assert_eq!(seen.into_iter().collect::<Vec<_>>(), vec!["T0000", "T0001", "T0002"]);
    }

    #[test]
    fn ticker_specs_parse() {
        assert_eq!("default".parse::<Tickers>(), Ok(Tickers::Default));
        assert_eq!("1000".parse::<Tickers>(), Ok(Tickers::Synthetic(1000)));
        assert_eq!("AMZN, GOOG".parse::<Tickers>(), Ok(Tickers::List(vec!["AMZN".into(), "GOOG".into()])));
        assert!("0".parse::<Tickers>().is_err());
        assert!("A,,B".parse::<Tickers>().is_err());
    }
}

//! The result record, one per (ticker, window) that saw a trade:
//! `{"TICKER":…,"WINDOW_START":…,"WINDOW_END":…,"MAX_PRICE":…,"TRADES":…}`, byte for byte what
//! serde_json writes for it (a test holds the two together), written by hand: the ticker is
//! quoted once per key and the window's times once per window, so a result is five appends, a
//! float and an integer. serde_json's string serializer alone was 4.3% of `weir run`'s samples
//! (BENCHMARKS.md, issue 26).

use weir_operator::Output;

use crate::panes::Aggregate;

/// A time as RFC 3339 UTC with millisecond precision.
pub fn timestamp(ms: i64) -> String {
    match jiff::Timestamp::from_millisecond(ms) {
        Ok(ts) => format!("{ts:.3}"),
        Err(_) => ms.to_string(),
    }
}

/// `ticker` as a JSON string, quotes included (once per key).
pub fn quoted(ticker: &str) -> Box<str> {
    // Serialising a string into a String cannot fail.
    serde_json::to_string(ticker).unwrap_or_default().into()
}

/// What every result of one window repeats, formatted once per window rather than once per result:
/// `,"WINDOW_START":"…","WINDOW_END":"…","MAX_PRICE":`.
#[derive(Debug, Default)]
pub struct WindowText {
    end: Option<i64>,
    middle: String,
}

impl WindowText {
    fn get(&mut self, start: i64, end: i64) -> &str {
        if self.end != Some(end) {
            self.end = Some(end);
            // Times are digits, `-`, `:`, `.`, `T` and `Z`: nothing JSON escapes.
            self.middle = format!(
                ",\"WINDOW_START\":\"{}\",\"WINDOW_END\":\"{}\",\"MAX_PRICE\":",
                timestamp(start),
                timestamp(end)
            );
        }
        &self.middle
    }

    /// Emit `agg`, the result of window `[start, end)` for the key `ticker` (`quoted` as
    /// [`quoted`] gives it).
    pub fn emit(
        &mut self,
        out: &mut Output,
        ticker: &str,
        quoted: &str,
        start: i64,
        end: i64,
        agg: Aggregate,
    ) {
        let Aggregate { max, count: trades } = agg;
        let middle = self.get(start, end);
        out.emit_with(ticker, |buf| {
            buf.extend_from_slice(b"{\"TICKER\":");
            buf.extend_from_slice(quoted.as_bytes());
            buf.extend_from_slice(middle.as_bytes());
            if max.is_finite() {
                buf.extend_from_slice(zmij::Buffer::new().format_finite(max).as_bytes());
            } else {
                buf.extend_from_slice(b"null");
            }
            buf.extend_from_slice(b",\"TRADES\":");
            buf.extend_from_slice(itoa::Buffer::new().format(trades).as_bytes());
            buf.push(b'}');
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The result as serde_json writes it.
    #[derive(serde::Serialize)]
    #[serde(rename_all = "SCREAMING_SNAKE_CASE")]
    struct WindowResult<'a> {
        ticker: &'a str,
        window_start: &'a str,
        window_end: &'a str,
        max_price: f64,
        trades: u64,
    }

    #[test]
    fn a_result_is_what_serde_json_writes() {
        let mut text = WindowText::default();
        let end = 1_795_600_860_000;
        for (ticker, max, trades) in [
            ("AMZN", 42.17, 3),
            ("A\"B\\C\u{1}é", 0.1, 1),
            ("X", 42.0, u64::MAX),
            ("Y", 1e21, 0),
            ("Z", -0.0, 7),
            ("W", f64::INFINITY, 7),
            ("V", 123_456_789.123_456_79, 7),
        ] {
            let mut out = Output::default();
            text.emit(&mut out, ticker, &quoted(ticker), end - 60_000, end, Aggregate { max, count: trades });
            let start_text = timestamp(end - 60_000);
            let end_text = timestamp(end);
            let expected = serde_json::to_string(&WindowResult {
                ticker,
                window_start: &start_text,
                window_end: &end_text,
                max_price: max,
                trades,
            })
            .unwrap();
            let written = out.iter().next().map(|(_, data)| String::from_utf8_lossy(data).into_owned());
            assert_eq!(written.as_deref(), Some(expected.as_str()));
        }
    }
}

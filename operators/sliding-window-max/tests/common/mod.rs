//! Helpers shared by the operator's tests: trades in, window results out.

#![allow(dead_code, unused_imports)]

use sliding_window_max::SlidingWindowMax;
pub use weir_operator::{Harness, Lateness};

/// 2026-11-25T10:00:00Z in ms.
pub const T0: i64 = 1_795_600_800_000;

/// One window result, parsed back from the operator's JSON.
#[derive(Clone, Debug, PartialEq, PartialOrd)]
pub struct WindowResult {
    pub ticker: String,
    pub start: i64,
    pub end: i64,
    pub max: f64,
    pub trades: u64,
}

pub fn trade(ticker: &str, time_ms: i64, price: f64) -> Vec<u8> {
    format!(r#"{{"EVENT_TIME": {time_ms}, "TICKER": "{ticker}", "PRICE": {price}}}"#).into_bytes()
}

/// A harness that processes every record as a batch of its own, so that each record moves
/// the watermark before the next (tests say "watermark now ..." after each push).
pub fn harness(settings: &[(&str, &str)]) -> Harness<SlidingWindowMax> {
    Harness::new(settings).expect("settings are valid").with_batch_size(1)
}

fn millis(v: &serde_json::Value) -> i64 {
    let text = v.as_str().expect("a time string");
    assert!(text.ends_with('Z') && text.len() == 24, "not RFC 3339 UTC with ms: {text}");
    text.parse::<jiff::Timestamp>().expect("a timestamp").as_millisecond()
}

/// Parse every output record.
pub fn results(h: &Harness<SlidingWindowMax>) -> Vec<WindowResult> {
    h.output()
        .iter()
        .map(|(key, data)| {
            let v: serde_json::Value = serde_json::from_slice(data).expect("output is JSON");
            let r = WindowResult {
                ticker: v["TICKER"].as_str().expect("TICKER").to_string(),
                start: millis(&v["WINDOW_START"]),
                end: millis(&v["WINDOW_END"]),
                max: v["MAX_PRICE"].as_f64().expect("MAX_PRICE"),
                trades: v["TRADES"].as_u64().expect("TRADES"),
            };
            assert_eq!(key, r.ticker, "partition key is the ticker");
            r
        })
        .collect()
}

pub fn w(ticker: &str, start_s: i64, end_s: i64, max: f64, trades: u64) -> WindowResult {
    WindowResult { ticker: ticker.into(), start: T0 + start_s * 1000, end: T0 + end_s * 1000, max, trades }
}

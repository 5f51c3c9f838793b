//! sliding-window-max's trade reader: the fast path (the scanner, falling back to serde_json)
//! must give exactly what serde_json alone gives, value for value (prices bit for bit) and
//! refusal for refusal, and neither may panic, on any bytes.

#![no_main]

use libfuzzer_sys::fuzz_target;
use sliding_window_max::trade::{Fields, TradeParser};

fuzz_target!(|data: &[u8]| {
    let parser =
        TradeParser::new(Fields { time: "EVENT_TIME".into(), ticker: "TICKER".into(), price: "PRICE".into() });
    let outcome = |parsed: Result<sliding_window_max::trade::Trade<'_>, String>| {
        parsed.map(|t| (t.time_ms, t.ticker.into_owned(), t.price.to_bits()))
    };
    let fast = outcome(parser.parse(data));
    let serde = outcome(parser.parse_with_serde(data));
    assert_eq!(fast, serde, "on {:?}", String::from_utf8_lossy(data));
});

//! Property test: reading a trade with the fast path (the scanner, falling back to serde_json)
//! gives exactly what serde_json alone gives, value for value (prices bit for bit) and refusal
//! for refusal (the same message), on generated valid and malformed records: whitespace, field
//! order, duplicates, extra fields, escapes, exponents, long and huge numbers, leading zeros,
//! control characters, non-UTF-8 bytes, truncation and random damage.

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use sliding_window_max::config::Fields;
use sliding_window_max::trade::TradeParser;

fn parser() -> TradeParser {
    TradeParser::new(Fields { time: "EVENT_TIME".into(), ticker: "TICKER".into(), price: "PRICE".into() })
}

/// What a parse gave, comparable: (time, ticker, price bits) or the message.
fn outcome(
    parsed: Result<sliding_window_max::trade::Trade<'_>, String>,
) -> Result<(Option<i64>, String, u64), String> {
    parsed.map(|t| {
        (t.time_ms, String::from_utf8(t.ticker.into_owned()).expect("a ticker is UTF-8"), t.price.to_bits())
    })
}

fn time_text() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => (0u32..60, 0u32..60, 0u32..1000).prop_map(|(m, s, ms)| format!("\"2026-11-25T10:{m:02}:{s:02}.{ms:03}\"")),
        1 => (0u32..60).prop_map(|s| format!("\"2026-11-25T10:00:{s:02}Z\"")),
        1 => Just("\"2026-11-25T10:00:00+02:00\"".to_string()),
        1 => Just("\"yesterday\"".to_string()),
        1 => Just("\"2026-11-25T10:00:61\"".to_string()),
        1 => any::<i64>().prop_map(|n| n.to_string()),
        1 => Just("\"2026-11-25T10:00:00\\u002e5\"".to_string()),
        1 => Just("null".to_string()),
    ]
}

fn ticker_text() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => "[A-Z]{1,5}".prop_map(|t| format!("\"{t}\"")),
        1 => Just("\"\"".to_string()),
        1 => Just("\"A\\u0042\"".to_string()),
        1 => Just("\"\\q\"".to_string()),
        1 => Just("\"é\u{1F600}\"".to_string()),
        1 => Just("\"A\tB\"".to_string()),
        1 => Just("17".to_string()),
        1 => "[A-Z]{300}".prop_map(|t| format!("\"{t}\"")),
        // Escapes, control characters, quotes and non-ASCII beyond the first eight bytes.
        2 => ("[A-Z]{7,17}", prop_oneof![Just("\\u0041"), Just("\t"), Just("\\\""), Just("é"), Just("\u{7f}")], "[A-Z]{0,9}")
            .prop_map(|(a, mid, b)| format!("\"{a}{mid}{b}\"")),
    ]
}

fn price_text() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => (0u64..100_000, 0u32..100).prop_map(|(a, b)| format!("{a}.{b:02}")),
        2 => (any::<bool>(), "[0-9]{1,22}", proptest::option::of("[0-9]{1,22}")).prop_map(|(neg, int, frac)| {
            format!("{}{int}{}", if neg { "-" } else { "" }, frac.map(|f| format!(".{f}")).unwrap_or_default())
        }),
        1 => any::<f64>().prop_map(|f| f.to_string()),
        1 => (1u32..9, -400i32..400).prop_map(|(m, e)| format!("{m}.5e{e}")),
        1 => Just("1.".to_string()),
        1 => Just("-".to_string()),
        1 => Just("\"42\"".to_string()),
        1 => Just("NaN".to_string()),
        1 => Just("-0.0".to_string()),
    ]
}

fn whitespace() -> impl Strategy<Value = String> {
    prop_oneof![
        12 => Just(String::new()),
        4 => Just(" ".to_string()),
        2 => Just("\n\t ".to_string()),
        1 => Just("\u{a0}".to_string()), // not JSON whitespace
    ]
}

/// A record: the three fields (some missing, some twice, maybe an extra one), shuffled, with
/// whitespace around, then maybe damaged.
fn record() -> impl Strategy<Value = Vec<u8>> {
    let fields = (
        proptest::option::weighted(0.95, time_text()),
        proptest::option::weighted(0.95, ticker_text()),
        proptest::option::weighted(0.95, price_text()),
        proptest::option::weighted(
            0.1,
            prop_oneof![Just("\"X\": [1, {\"a\": \"}\"}]"), Just("\"PRICE\": 1"), Just("\"TICKER\": \"B\"")],
        ),
        any::<u64>(),
        prop::collection::vec(whitespace(), 8),
    );
    let damage = prop_oneof![
        15 => Just(None),
        1 => (any::<prop::sample::Index>(), any::<u8>()).prop_map(Some),
    ];
    let truncate = proptest::option::weighted(0.05, any::<prop::sample::Index>());
    (fields, damage, truncate).prop_map(|((time, ticker, price, extra, order, ws), damage, truncate)| {
        let mut entries: Vec<String> = [
            time.map(|t| format!("\"EVENT_TIME\"{}:{}{t}", ws[0], ws[1])),
            ticker.map(|t| format!("\"TICKER\":{}{t}", ws[2])),
            price.map(|p| format!("\"PRICE\"{}:{p}{}", ws[3], ws[4])),
            extra.map(str::to_string),
        ]
        .into_iter()
        .flatten()
        .collect();
        // A deterministic shuffle from the generated number.
        let mut seed = order;
        for i in (1..entries.len()).rev() {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            entries.swap(i, (seed >> 33) as usize % (i + 1));
        }
        let mut bytes = format!("{}{{{}{}}}{}", ws[5], ws[6], entries.join(","), ws[7]).into_bytes();
        if let Some((at, byte)) = damage {
            let i = at.index(bytes.len());
            bytes[i] = byte;
        }
        if let Some(at) = truncate {
            bytes.truncate(at.index(bytes.len()));
        }
        bytes
    })
}

/// Records as one producer writes them: one layout (field order, whitespace, what ends the
/// record), values drawn anew for each, some damaged, some with another layout. The scanner
/// learns a layout from one record and reads the next ones by it.
fn stream() -> impl Strategy<Value = Vec<Vec<u8>>> {
    let layout = (any::<u64>(), prop::collection::vec(whitespace(), 8), prop_oneof![Just(""), Just("\n")]);
    let values = (
        time_text(),
        ticker_text(),
        price_text(),
        proptest::option::weighted(0.1, (any::<prop::sample::Index>(), any::<u8>())),
    );
    (layout, prop::collection::vec(values, 1..12), prop::collection::vec(record(), 2)).prop_map(
        |((order, ws, end), values, others)| {
            let mut records: Vec<Vec<u8>> = values
                .into_iter()
                .map(|(time, ticker, price, damage)| {
                    let mut entries = [
                        format!("\"EVENT_TIME\"{}:{}{time}", ws[0], ws[1]),
                        format!("\"TICKER\":{}{ticker}", ws[2]),
                        format!("\"PRICE\"{}:{price}{}", ws[3], ws[4]),
                    ];
                    entries.swap(0, (order % 3) as usize);
                    entries.swap(1, 1 + (order / 3 % 2) as usize);
                    let mut bytes =
                        format!("{}{{{}{}}}{}{end}", ws[5], ws[6], entries.join(","), ws[7]).into_bytes();
                    if let Some((at, byte)) = damage {
                        let i = at.index(bytes.len());
                        bytes[i] = byte;
                    }
                    bytes
                })
                .collect();
            // Another layout in the middle and at the end.
            let [a, b] = <[Vec<u8>; 2]>::try_from(others).unwrap_or_default();
            records.insert(records.len() / 2, a);
            records.push(b);
            records
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 20_000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn the_fast_path_reads_and_refuses_exactly_as_serde_json(data in record()) {
        let (fast, slow) = (parser(), parser());
        prop_assert_eq!(outcome(fast.parse(&data)), outcome(slow.parse_with_serde(&data)), "{}", String::from_utf8_lossy(&data));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 5_000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn records_read_by_a_learned_layout_are_read_and_refused_as_serde_json_does(records in stream()) {
        let (fast, slow) = (parser(), parser());
        for data in &records {
            prop_assert_eq!(outcome(fast.parse(data)), outcome(slow.parse_with_serde(data)), "{}", String::from_utf8_lossy(data));
        }
    }
}

#[test]
fn the_generated_records_are_often_read_often_refused_and_often_scanned() {
    // The property above is only worth something if each kind of input occurs often.
    let fields = Fields { time: "EVENT_TIME".into(), ticker: "TICKER".into(), price: "PRICE".into() };
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let (mut read, mut refused, mut scanned) = (0, 0, 0);
    for _ in 0..2_000 {
        let data = record().new_tree(&mut runner).unwrap().current();
        match parser().parse_with_serde(&data) {
            Ok(_) => read += 1,
            Err(_) => refused += 1,
        }
        if sliding_window_max::scan::Scanner::new(&fields).trade(&data).is_some() {
            scanned += 1;
        }
    }
    assert!(
        read > 300 && refused > 300 && scanned > 200,
        "{read} read, {refused} refused, {scanned} scanned"
    );
}

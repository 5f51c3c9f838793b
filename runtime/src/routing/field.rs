//! A JSON field's value found without parsing the record: the grouping key of a record
//! grouped by a field ([`Field`]), and the same found faster in a stream whose records share a
//! layout ([`FieldReader`]: what the source's routing uses).

use std::borrow::Cow;
use std::ops::Range;

use weir_json::{Cursor, Literal, QuotedName};

/// The value of the top-level field `field` of the JSON object in `data` (the first, if it is
/// given twice), without parsing the rest: a few hundred nanoseconds of serde_json per record
/// would be a large share of the whole path, and the key needs only the bytes up to the field.
/// `None` when `data` is not an object, lacks the field, or is malformed before it.
pub fn json_field<'a>(data: &'a [u8], field: &[u8]) -> Option<Cow<'a, [u8]>> {
    Field::new(field).value(data)
}

/// A field name prepared for [`json_field`]: a key is recognised by one or two word compares
/// of the record instead of being decoded and compared (with strings skipped a word at a time,
/// routing went from 102 to 52 ns per trade: the throughput bench's routing row).
#[derive(Clone, Debug)]
pub struct Field {
    name: QuotedName,
}

impl Field {
    /// Prepare `name`.
    pub fn new(name: &[u8]) -> Self {
        Self { name: QuotedName::new(name) }
    }

    /// This field's value in the JSON object `data`: see [`json_field`].
    pub fn value<'a>(&self, data: &'a [u8]) -> Option<Cow<'a, [u8]>> {
        self.find(data, None)
    }

    /// [`value`](Self::value), noting in `trace` where the values before it and its own value
    /// lie, and whether they are strings.
    #[inline]
    fn find<'a>(&self, data: &'a [u8], mut trace: Option<&mut Trace>) -> Option<Cow<'a, [u8]>> {
        let mut c = Cursor::new(data);
        c.whitespace();
        c.eat(b'{')?;
        c.whitespace();
        if c.peek()? == b'}' {
            return None;
        }
        loop {
            let found = if self.name.starts(c.rest()) {
                c.advance(self.name.quoted_len());
                true
            } else {
                // Another key, or this one written with escapes.
                let (raw, escaped) = c.skip_string()?;
                escaped && decoded(raw, escaped)?.as_ref() == self.name.name()
            };
            c.whitespace();
            c.eat(b':')?;
            c.whitespace();
            let string = c.peek()? == b'"';
            let start = c.position();
            if found {
                return if string {
                    let (raw, escaped) = c.skip_string()?;
                    if let Some(trace) = trace {
                        trace.value = (!escaped).then_some(start..c.position());
                    }
                    decoded(raw, escaped)
                } else {
                    skip_value(&mut c).map(Cow::Borrowed)
                };
            }
            skip_value(&mut c)?;
            if let Some(trace) = trace.as_deref_mut() {
                trace.before.push(start..c.position());
                trace.strings &= string;
            }
            c.whitespace();
            match c.bump()? {
                b',' => c.whitespace(),
                _ => return None,
            }
        }
    }
}

/// Where a field and the string values before it were found in one record.
#[derive(Clone, Debug, Default)]
struct Trace {
    /// Each value before the field's, quotes included.
    before: Vec<Range<usize>>,
    /// Whether they were all strings.
    strings: bool,
    /// The field's value, quotes included, if it is a string without escapes.
    value: Option<Range<usize>>,
}

/// One step of reading a record of a learned layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    /// Text that stands here in every record of the layout: structure and the names of other
    /// fields.
    Text(Literal),
    /// A string value of another field, any text.
    Skip,
}

/// [`Field`] with the layout of the last record it read: the text around the string values
/// before the field's. A record with that same text there has the field's value at the same
/// place in its structure (every decision the general scan takes depends only on that text and
/// on where each string ends, which the replay finds as the scan does), so its value
/// is read by matching a few words and skipping a few strings; any other record is scanned in
/// full, and its layout learned. With it, routing adds 20-40 ns a trade to building a source's
/// batches (the throughput bench's routing row, 1,000 tickers, several runs; the step's
/// routing it replaced, each owner found by the full scan and each record copied a second
/// time, measured 53-65 ns).
#[derive(Clone, Debug)]
pub struct FieldReader {
    field: Field,
    /// The steps up to the field's value (whose opening quote is where they end); empty when
    /// no layout is learned (a learned one starts with the text holding `{`).
    layout: Vec<Step>,
    /// Where the last record scanned had its values (kept for its buffer).
    trace: Trace,
}

impl FieldReader {
    /// Read field `name`.
    pub fn new(name: &[u8]) -> Self {
        Self { field: Field::new(name), layout: Vec::new(), trace: Trace::default() }
    }

    /// The field's value in the JSON object `data`, as [`Field::value`] finds it.
    #[inline]
    pub fn value<'a>(&mut self, data: &'a [u8]) -> Option<Cow<'a, [u8]>> {
        if !self.layout.is_empty()
            && let Some(value) = self.replay(data)
        {
            return Some(Cow::Borrowed(value));
        }
        self.trace.before.clear();
        self.trace.strings = true;
        self.trace.value = None;
        let value = self.field.find(data, Some(&mut self.trace));
        self.learn(data);
        value
    }

    /// The value of a record of the learned layout; `None` if `data` is not one.
    #[inline(always)]
    fn replay<'a>(&self, data: &'a [u8]) -> Option<&'a [u8]> {
        let mut c = Cursor::new(data);
        for step in &self.layout {
            match step {
                Step::Text(text) => c.literal(text)?,
                Step::Skip => {
                    c.skip_string()?;
                }
            }
        }
        let (raw, escaped) = c.skip_string()?;
        (!escaped).then_some(raw)
    }

    /// Learn the layout of `data`, if the field's value and every value before it are strings,
    /// the field's without escapes.
    fn learn(&mut self, data: &[u8]) {
        let trace = &self.trace;
        self.layout.clear();
        let Some(value) = trace.value.as_ref().filter(|_| trace.strings) else { return };
        let mut text_from = 0;
        for string in trace.before.iter().chain([value]) {
            // Pieces of at most `Literal::MAX` bytes, each a literal.
            let pieces = data[text_from..string.start].chunks(Literal::MAX).filter_map(Literal::new);
            self.layout.extend(pieces.map(Step::Text));
            self.layout.push(Step::Skip);
            text_from = string.end;
        }
        // The last skip is the field's value, which `replay` reads.
        self.layout.pop();
    }
}

/// A string's text: borrowed unless it has escapes, which serde_json decodes (so exactly as an
/// operator reading the record with it sees them).
fn decoded(raw: &[u8], escaped: bool) -> Option<Cow<'_, [u8]>> {
    if !escaped {
        return Some(Cow::Borrowed(raw));
    }
    let quoted: Vec<u8> = [b"\"", raw, b"\""].concat();
    let text: String = serde_json::from_slice(&quoted).ok()?;
    Some(Cow::Owned(text.into_bytes()))
}

/// Skip the value at the cursor; its text. Nested objects and arrays are skipped by depth,
/// strings by their quotes, anything else up to the next delimiter.
fn skip_value<'a>(c: &mut Cursor<'a>) -> Option<&'a [u8]> {
    let start = c.rest();
    match c.peek()? {
        b'"' => {
            c.skip_string()?;
        }
        b'{' | b'[' => {
            let mut depth = 0usize;
            loop {
                match c.peek()? {
                    b'"' => {
                        c.skip_string()?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => depth -= 1,
                    _ => {}
                }
                c.advance(1);
                if depth == 0 {
                    break;
                }
            }
        }
        _ => {
            while !matches!(c.peek(), None | Some(b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r')) {
                c.advance(1);
            }
            if c.rest().len() == start.len() {
                return None;
            }
        }
    }
    Some(&start[..start.len() - c.rest().len()])
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn field(data: &str, name: &str) -> Option<String> {
        json_field(data.as_bytes(), name.as_bytes()).map(|v| String::from_utf8_lossy(&v).into_owned())
    }

    #[test]
    fn the_field_of_a_trade_is_found_wherever_it_is() {
        let trade = r#"{"EVENT_TIME": "2026-11-25T10:00:00.123", "TICKER": "AMZN", "PRICE": 42.17}"#;
        assert_eq!(field(trade, "TICKER").as_deref(), Some("AMZN"));
        assert_eq!(field(trade, "PRICE").as_deref(), Some("42.17"));
        assert_eq!(field(trade, "EVENT_TIME").as_deref(), Some("2026-11-25T10:00:00.123"));
        assert_eq!(field(trade, "VOLUME"), None);
        let nested = r#" { "A" : {"TICKER": "no", "x": [1, "]}", {"y": "\""}]}, "TICKER":"yes" } "#;
        assert_eq!(field(nested, "TICKER").as_deref(), Some("yes"));
        assert_eq!(field(r#"{"TICKER": "A\u0042\"C", "P": 1}"#, "TICKER").as_deref(), Some("AB\"C"));
        assert_eq!(field(r#"{"T\u0049CKER": "X"}"#, "TICKER").as_deref(), Some("X"));
        assert_eq!(field(r#"{"TICKER": 17, "P": 1}"#, "TICKER").as_deref(), Some("17"));
        assert_eq!(field(r#"{"TICKER": {"a": [1]}}"#, "TICKER").as_deref(), Some(r#"{"a": [1]}"#));
        assert_eq!(field(r#"{"TICKER": "A", "TICKER": "B"}"#, "TICKER").as_deref(), Some("A"));
        // A name that JSON must escape is matched by its decoded text only.
        assert_eq!(field(r#"{"\"": 1, "\\": 2}"#, "\\").as_deref(), Some("2"));
    }

    #[test]
    fn records_without_the_field_have_no_key() {
        for data in [
            "",
            "not json",
            "[1, 2]",
            "{}",
            r#"{"TICKER" "A"}"#,
            r#"{"TICKER": "unterminated"#,
            r#""TICKER""#,
        ] {
            assert_eq!(field(data, "TICKER"), None, "{data}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2_000, failure_persistence: None, ..ProptestConfig::default() })]

        /// For any JSON object serde_json reads, the scanner finds the same value of a field
        /// (the first, where serde_json's map keeps the last, so only objects without
        /// duplicates are compared).
        #[test]
        fn the_scanner_agrees_with_serde_json(
            entries in prop::collection::btree_map("[A-Za-z_\"\\\\é]{0,6}", any_json(), 0..6),
            pick in 0usize..6,
            pretty in any::<bool>(),
        ) {
            let object = serde_json::Value::Object(entries.clone().into_iter().collect());
            let text = if pretty { serde_json::to_string_pretty(&object) } else { serde_json::to_string(&object) }.unwrap();
            let Some(name) = entries.keys().nth(pick % entries.len().max(1)).cloned() else { return Ok(()) };
            let expected = match &entries[&name] {
                serde_json::Value::String(s) => s.clone().into_bytes(),
                other => serde_json::to_vec(other).unwrap(),
            };
            let found = json_field(text.as_bytes(), name.as_bytes()).map(|v| v.into_owned());
            if pretty && !matches!(entries[&name], serde_json::Value::String(_)) {
                // Pretty-printed nested values keep their own layout: compare as JSON.
                let found: serde_json::Value = serde_json::from_slice(&found.unwrap()).unwrap();
                prop_assert_eq!(&found, &entries[&name]);
            } else {
                prop_assert_eq!(found, Some(expected));
            }
        }
    }

    /// Records sharing a layout, some damaged or escaped, other layouts among them.
    fn stream() -> impl Strategy<Value = Vec<String>> {
        let time = "[0-9:T.\"\\\\-]{0,24}";
        let ticker = prop_oneof![8 => "[A-Z]{1,6}", 1 => "[A-Z\"\\\\é]{0,4}"];
        let trade = (time, ticker, any::<u32>(), 0u8..12).prop_map(|(t, k, p, shape)| {
            let k = serde_json::to_string(&k).unwrap();
            let t = serde_json::to_string(&t).unwrap();
            match shape {
                0 => format!(r#"{{"TICKER": {k}, "EVENT_TIME": {t}, "PRICE": {p}}}"#),
                1 => format!(r#"{{"EVENT_TIME":{t},"TICKER":{k},"PRICE":{p}}}"#),
                2 => format!(r#"{{"EVENT_TIME": {p}, "TICKER": {k}}}"#),
                3 => format!(r#"{{"EVENT_TIME": {t}, "TICKER": "unterminated"#),
                4 => format!(r#"{{"EVENT_TIME": {t}, "TICKER": {p}}}"#),
                5 => format!(r#"{{"EVENT_TIME": {t}, "TICKERS": {k}, "TICKER": "B"}}"#),
                6 => format!(r#"{{"EVENT_TIME": {t}, "T\u0049CKER": {k}}}"#),
                7 => format!(r#"{{"A_VERY_LONG_FIELD_NAME_OF_THIRTY_BYTES": {t}, "TICKER": {k}}}"#),
                _ => format!(r#"{{"EVENT_TIME": {t}, "TICKER": {k}, "PRICE": {p}}}"#),
            }
        });
        prop::collection::vec(trade, 1..40)
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 500, failure_persistence: None, ..ProptestConfig::default() })]

        /// Through a stream of records, the reader that learns layouts finds what the scan of
        /// each record alone finds, value for value and absence for absence.
        #[test]
        fn the_learned_layout_finds_what_the_scan_finds(records in stream()) {
            let mut reader = FieldReader::new(b"TICKER");
            let field = Field::new(b"TICKER");
            for record in &records {
                let expected = field.value(record.as_bytes()).map(Cow::into_owned);
                prop_assert_eq!(reader.value(record.as_bytes()).map(Cow::into_owned), expected, "{}", record);
            }
        }
    }

    #[test]
    fn a_layout_is_learned_from_a_record_and_used_for_the_next() {
        let mut reader = FieldReader::new(b"TICKER");
        let first = br#"{"EVENT_TIME": "2026-11-25T10:00:00.123", "TICKER": "AMZN", "PRICE": 42.17}"#;
        assert_eq!(reader.value(first).as_deref(), Some(&b"AMZN"[..]));
        assert!(!reader.layout.is_empty(), "learned");
        let next = br#"{"EVENT_TIME": "2026-11-25T10:00:00.9", "TICKER": "MSFT", "PRICE": 1}"#;
        assert_eq!(reader.replay(next), Some(&b"MSFT"[..]));
        // Another layout is not replayed, but scanned (and learned).
        let other = br#"{"TICKER": "AAPL", "EVENT_TIME": "2026-11-25T10:00:00.123"}"#;
        assert_eq!(reader.replay(other), None);
        assert_eq!(reader.value(other).as_deref(), Some(&b"AAPL"[..]));
        // A value before the field that is not a string: nothing learned.
        assert_eq!(reader.value(br#"{"N": 1, "TICKER": "X"}"#).as_deref(), Some(&b"X"[..]));
        assert!(reader.layout.is_empty(), "nothing learned");
    }

    fn any_json() -> impl Strategy<Value = serde_json::Value> {
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::Bool),
            any::<i64>().prop_map(|n| serde_json::json!(n)),
            // Binary fractions: they read back exactly (comparisons re-read pretty output).
            (-1_000_000_000i64..1_000_000_000).prop_map(|n| serde_json::json!(n as f64 / 8.0)),
            "[ -~é\u{1F600}\"\\\\]{0,8}".prop_map(serde_json::Value::String),
        ];
        leaf.prop_recursive(3, 16, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::Array),
                prop::collection::btree_map("[a-z\"]{0,4}", inner, 0..4)
                    .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
            ]
        })
    }
}

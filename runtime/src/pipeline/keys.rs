//! Routing by grouping key: a record's key (its partition key, or a field of its JSON object),
//! the key group the key hashes into, and which instance owns which key groups.
//!
//! Keys hash (XXH3, a fixed and specified function, so the same in every build and release)
//! into [`KEY_GROUPS`] groups, as Flink's "max parallelism"; instance `i` of `p` owns the
//! contiguous groups `g` with `g * p / KEY_GROUPS == i`. State is moved per key group, so a
//! different parallelism, a swap, a checkpoint and a lease all move it the same way.

use std::borrow::Cow;
use std::ops::Range;

use weir_contract::{Grouping, OwnedBatch, Record};

/// The number of key groups: the most instances a job can ever run on.
pub const KEY_GROUPS: u32 = 4096;

/// The key group of a grouping key.
#[inline]
pub fn key_group(key: &[u8]) -> u32 {
    (xxhash_rust::xxh3::xxh3_64(key) % u64::from(KEY_GROUPS)) as u32
}

/// The instance, of `parallelism`, that owns key group `group`.
#[inline]
pub fn owner(group: u32, parallelism: usize) -> usize {
    (group as usize * parallelism) / KEY_GROUPS as usize
}

/// The key groups instance `instance` of `parallelism` owns.
pub fn groups_of(instance: usize, parallelism: usize) -> Range<u32> {
    let start = |i: usize| (i * KEY_GROUPS as usize).div_ceil(parallelism) as u32;
    start(instance)..start(instance + 1)
}

/// Finds the instance that owns each record's grouping key.
#[derive(Clone, Debug)]
pub struct Router {
    grouping: Grouping,
    /// The field, prepared, when records are grouped by a JSON field.
    field: Option<Field>,
    parallelism: usize,
}

impl Router {
    /// Route by `grouping` to `parallelism` instances (at least 1).
    pub fn new(grouping: Grouping, parallelism: usize) -> Self {
        let field = match &grouping {
            Grouping::JsonField(name) => Some(Field::new(name.as_bytes())),
            Grouping::PartitionKey => None,
        };
        Self { grouping, field, parallelism: parallelism.max(1) }
    }

    /// How many instances records are spread over.
    pub fn parallelism(&self) -> usize {
        self.parallelism
    }

    /// The instance that owns `record`'s grouping key.
    #[inline]
    pub fn instance_of(&self, record: &Record<'_>) -> usize {
        if self.parallelism == 1 {
            return 0;
        }
        owner(key_group(&grouping_key(&self.grouping, record)), self.parallelism)
    }

    /// The instance that owns each record of `batch`, into `owners` (cleared first).
    pub fn owners(&self, batch: &OwnedBatch, owners: &mut Vec<u16>) {
        owners.clear();
        owners.extend(batch.packed().map(|(key_len, record, _)| {
            let (key, data) = record.split_at(key_len as usize);
            let key = match &self.field {
                None => Cow::Borrowed(key),
                Some(field) => field.value(data).unwrap_or(Cow::Borrowed(b"")),
            };
            owner(key_group(&key), self.parallelism) as u16
        }));
    }
}

/// The grouping key of `record`: its partition key, or the value of a top-level field of its
/// JSON object (a string's text with escapes decoded, any other value's JSON text), or empty
/// when the record is not a JSON object or lacks the field.
pub fn grouping_key<'a>(grouping: &Grouping, record: &Record<'a>) -> Cow<'a, [u8]> {
    match grouping {
        Grouping::PartitionKey => Cow::Borrowed(record.partition_key.as_bytes()),
        Grouping::JsonField(field) => json_field(record.data, field.as_bytes()).unwrap_or(Cow::Borrowed(b"")),
    }
}

/// The value of the top-level field `field` of the JSON object in `data` (the first, if it is
/// given twice), without parsing the rest: a few hundred nanoseconds of serde_json per record
/// would be a large share of the whole path, and the key needs only the bytes up to the field.
/// `None` when `data` is not an object, lacks the field, or is malformed before it.
pub fn json_field<'a>(data: &'a [u8], field: &[u8]) -> Option<Cow<'a, [u8]>> {
    Field::new(field).value(data)
}

/// A field name prepared for [`json_field`]: quoted and packed into words, so that a key is
/// recognised with one or two word compares instead of being decoded and compared (with the
/// word-at-a-time string skip, routing went from 102 to 52 ns per trade: the throughput
/// bench's routing row).
#[derive(Clone, Debug)]
pub struct Field {
    name: Vec<u8>,
    /// Whether the name is written the same inside a JSON string (no quote, backslash or
    /// control character): only then can a key be recognised by its bytes.
    plain: bool,
    quoted: Vec<u8>,
    words: [u64; 2],
    masks: [u64; 2],
}

impl Field {
    /// Prepare `name`.
    pub fn new(name: &[u8]) -> Self {
        let quoted: Vec<u8> = [b"\"", name, b"\""].concat();
        let (mut words, mut masks) = ([0u64; 2], [0u64; 2]);
        for (i, chunk) in quoted.chunks(8).take(2).enumerate() {
            let mut w = [0u8; 8];
            w[..chunk.len()].copy_from_slice(chunk);
            words[i] = u64::from_le_bytes(w);
            masks[i] = if chunk.len() == 8 { u64::MAX } else { (1u64 << (chunk.len() * 8)) - 1 };
        }
        let plain = !name.iter().any(|&b| b == b'"' || b == b'\\' || b < 0x20);
        Self { name: name.to_vec(), plain, quoted, words, masks }
    }

    /// Whether `data` starts with the quoted name, written plainly.
    #[inline]
    fn starts(&self, data: &[u8]) -> bool {
        if !self.plain {
            return false;
        }
        if self.quoted.len() <= 16
            && let Some(bytes) = data.get(..16)
        {
            let mut a = [0u8; 8];
            let mut b = [0u8; 8];
            a.copy_from_slice(&bytes[..8]);
            b.copy_from_slice(&bytes[8..]);
            return u64::from_le_bytes(a) & self.masks[0] == self.words[0]
                && u64::from_le_bytes(b) & self.masks[1] == self.words[1];
        }
        data.get(..self.quoted.len()) == Some(&self.quoted[..])
    }

    /// This field's value in the JSON object `data`: see [`json_field`].
    pub fn value<'a>(&self, data: &'a [u8]) -> Option<Cow<'a, [u8]>> {
        let mut s = Scanner { data, at: 0 };
        s.whitespace();
        s.eat(b'{')?;
        s.whitespace();
        if s.peek()? == b'}' {
            return None;
        }
        loop {
            let found = if self.starts(&data[s.at..]) {
                s.at += self.quoted.len();
                true
            } else {
                // Another key, or this one written with escapes.
                matches!(s.string()?, Cow::Owned(decoded) if decoded == self.name)
            };
            s.whitespace();
            s.eat(b':')?;
            s.whitespace();
            if found {
                return if s.peek()? == b'"' { s.string() } else { s.skip_value().map(Cow::Borrowed) };
            }
            s.skip_value()?;
            s.whitespace();
            match s.next()? {
                b',' => s.whitespace(),
                _ => return None,
            }
        }
    }
}

/// A cursor over JSON text that skips what it does not need.
struct Scanner<'a> {
    data: &'a [u8],
    at: usize,
}

impl<'a> Scanner<'a> {
    #[inline]
    fn peek(&self) -> Option<u8> {
        self.data.get(self.at).copied()
    }

    #[inline]
    fn next(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.at += 1;
        Some(b)
    }

    #[inline]
    fn eat(&mut self, expected: u8) -> Option<()> {
        (self.next()? == expected).then_some(())
    }

    #[inline]
    fn whitespace(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    /// A string at the cursor: its text, borrowed unless it has escapes (decoded by serde_json,
    /// so exactly as an operator reading the record with it sees them).
    fn string(&mut self) -> Option<Cow<'a, [u8]>> {
        let start = self.at;
        self.eat(b'"')?;
        let mut escaped = false;
        loop {
            self.at += quote_or_backslash(&self.data[self.at..])? + 1;
            if self.data[self.at - 1] == b'"' {
                break;
            }
            escaped = true;
            self.at += 1;
        }
        let raw = &self.data[start..self.at];
        if !escaped {
            return Some(Cow::Borrowed(&raw[1..raw.len() - 1]));
        }
        let text: String = serde_json::from_slice(raw).ok()?;
        Some(Cow::Owned(text.into_bytes()))
    }

    /// Skip the value at the cursor; its text. Nested objects and arrays are skipped by depth,
    /// strings by their quotes, anything else up to the next delimiter.
    fn skip_value(&mut self) -> Option<&'a [u8]> {
        let start = self.at;
        match self.peek()? {
            b'"' => {
                self.string()?;
            }
            b'{' | b'[' => {
                let mut depth = 0usize;
                loop {
                    match self.peek()? {
                        b'"' => {
                            self.string()?;
                            continue;
                        }
                        b'{' | b'[' => depth += 1,
                        b'}' | b']' => depth -= 1,
                        _ => {}
                    }
                    self.at += 1;
                    if depth == 0 {
                        break;
                    }
                }
            }
            _ => {
                while !matches!(self.peek(), None | Some(b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r')) {
                    self.at += 1;
                }
                if self.at == start {
                    return None;
                }
            }
        }
        Some(&self.data[start..self.at])
    }
}

/// The index of the first `"` or `\\` in `bytes`, a word at a time: strings in records are
/// short, too short for memchr's vector set-up to pay (measured: 1.5x slower here).
#[inline]
fn quote_or_backslash(bytes: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let zero_byte = |x: u64| x.wrapping_sub(ONES) & !x & HIGHS;
    let mut at = 0;
    while let Some(chunk) = bytes.get(at..at + 8) {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let v = u64::from_le_bytes(word);
        let found = zero_byte(v ^ (ONES * u64::from(b'"'))) | zero_byte(v ^ (ONES * u64::from(b'\\')));
        if found != 0 {
            return Some(at + (found.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    bytes[at..].iter().position(|&b| b == b'"' || b == b'\\').map(|i| at + i)
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
    fn quotes_and_backslashes_are_found_in_every_position() {
        for len in 0..40 {
            for at in 0..len {
                for special in [b'"', b'\\'] {
                    let mut bytes = vec![b'a'; len];
                    bytes[at] = special;
                    if at + 1 < len {
                        bytes[at + 1] = b'"';
                    }
                    assert_eq!(quote_or_backslash(&bytes), Some(at), "{len} {at}");
                }
            }
            assert_eq!(quote_or_backslash(&vec![b'a'; len]), None);
        }
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

    #[test]
    fn key_groups_are_spread_evenly_and_owned_by_exactly_one_instance() {
        for parallelism in [1, 2, 3, 7, 64, 4096] {
            let mut next = 0;
            for instance in 0..parallelism {
                let groups = groups_of(instance, parallelism);
                assert_eq!(groups.start, next, "contiguous");
                assert!(groups.clone().all(|g| owner(g, parallelism) == instance));
                assert!(groups.len().abs_diff(KEY_GROUPS as usize / parallelism) <= 1);
                next = groups.end;
            }
            assert_eq!(next, KEY_GROUPS);
        }
        let mut per_instance = [0usize; 3];
        for i in 0..3000 {
            per_instance[owner(key_group(format!("TICKER{i}").as_bytes()), 3)] += 1;
        }
        assert!(per_instance.iter().all(|&n| (800..1200).contains(&n)), "{per_instance:?}");
        // Fixed function: these never change (state is stored per key group).
        assert_eq!(key_group(b"AMZN"), key_group(b"AMZN"));
        assert_eq!(key_group(b""), (xxhash_rust::xxh3::xxh3_64(b"") % 4096) as u32);
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

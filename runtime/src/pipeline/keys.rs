//! Routing by grouping key: a record's key (its partition key, or a field of its JSON object),
//! the key group the key hashes into, and which instance owns which key groups.
//!
//! Keys hash (XXH3, a fixed and specified function, so the same in every build and release)
//! into [`KEY_GROUPS`] groups, as Flink's "max parallelism"; instance `i` of `p` owns the
//! contiguous groups `g` with `g * p / KEY_GROUPS == i`. State is moved per key group, so a
//! different parallelism, a swap, a checkpoint and a lease all move it the same way.

use std::borrow::Cow;
use std::ops::Range;

use weir_contract::{Grouping, OwnedBatch};
use weir_json::{Cursor, QuotedName};

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
        Self { field, parallelism: parallelism.max(1) }
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
            if found {
                return if c.peek()? == b'"' {
                    let (raw, escaped) = c.skip_string()?;
                    decoded(raw, escaped)
                } else {
                    skip_value(&mut c).map(Cow::Borrowed)
                };
            }
            skip_value(&mut c)?;
            c.whitespace();
            match c.bump()? {
                b',' => c.whitespace(),
                _ => return None,
            }
        }
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

//! `builtin:rekey`: each record goes out unchanged with a named top-level JSON field's value as
//! its partition key (`--set key-field=TICKER`). Stateless. It is the shuffle in front of a
//! keyed job when the producer's partition key is not the grouping key: weir routes by grouping
//! key inside one process, but several processes share a stream by shard, so every record of a
//! key must be on one shard first:
//!
//! ```text
//! weir run --operator builtin:rekey --set key-field=TICKER --source kinesis://raw --sink kinesis://by-ticker
//! ```
//!
//! The field's value is used as the key when it is a string (its text) or a number (as
//! written); a record that is not a JSON object, lacks the field, or has it empty, null, an
//! array or an object is refused, with the reason, to the dead-letter destination. A key
//! Kinesis cannot take (over 256 characters) is refused by weir's sink the same way.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, Visitor};
use weir_operator::{Batch, Error, Operator, Output, Settings};

/// The operator: the field to key by.
#[derive(Debug)]
pub struct Rekey {
    field: String,
}

impl Operator for Rekey {
    fn init(settings: &Settings) -> Result<Self, Error> {
        settings.check_known(&["key-field"])?;
        match settings.get("key-field") {
            Some(field) if !field.is_empty() => Ok(Self { field: field.to_string() }),
            _ => Err(Error::new(
                "rekey needs key-field=NAME: the top-level JSON field whose value becomes each record's partition key (--set key-field=TICKER)",
            )),
        }
    }

    fn process(&mut self, batch: &Batch<'_>, out: &mut Output) -> Result<(), Error> {
        for record in batch.records() {
            match key_of(record.data, &self.field) {
                Ok(key) => out.emit(&key, record.data),
                Err(reason) => out.reject(record.index, reason),
            }
        }
        Ok(())
    }
}

/// The value of the top-level field `field` of the JSON object in `data`, as a partition key.
pub fn key_of<'a>(data: &'a [u8], field: &str) -> Result<Cow<'a, str>, String> {
    let mut de = serde_json::Deserializer::from_slice(data);
    let found = FieldSeed(field).deserialize(&mut de).map_err(|e| format!("not a JSON object: {e}"))?;
    match found {
        Some(key) if key.is_empty() => Err(format!("field {field:?} is empty")),
        Some(key) => Ok(key),
        None => Err(format!("missing field {field:?}, or it is not a string or a number")),
    }
}

/// Finds one field of an object, skipping the others without building them.
struct FieldSeed<'f>(&'f str);

impl<'de> DeserializeSeed<'de> for FieldSeed<'_> {
    type Value = Option<Cow<'de, str>>;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for FieldSeed<'_> {
    type Value = Option<Cow<'de, str>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut found = None;
        while let Some(name) = map.next_key::<Cow<'de, str>>()? {
            if name == self.0 && found.is_none() {
                found = map.next_value::<KeyValue<'de>>()?.0;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(found)
    }
}

/// A field's value as a key: a string's text, a number as written; None for anything else.
struct KeyValue<'de>(Option<Cow<'de, str>>);

impl<'de> de::Deserialize<'de> for KeyValue<'de> {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(KeyVisitor).map(KeyValue)
    }
}

struct KeyVisitor;

impl<'de> Visitor<'de> for KeyVisitor {
    type Value = Option<Cow<'de, str>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string or a number")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Some(Cow::Borrowed(v)))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Some(Cow::Owned(v.to_string())))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Some(Cow::Owned(v.to_string())))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Some(Cow::Owned(v.to_string())))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Some(Cow::Owned(v.to_string())))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(None)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(None)
    }
}

weir_operator::export_operator!(Rekey);

#[cfg(test)]
mod tests {
    use weir_operator::Harness;

    use super::*;

    #[test]
    fn records_go_out_unchanged_keyed_by_the_field_and_others_are_refused_with_the_reason() {
        let mut h = Harness::<Rekey>::new(&[("key-field", "TICKER")]).unwrap();
        let good = br#"{"EVENT_TIME": "t", "TICKER": "AMZN", "PRICE": 1}"#;
        h.push("uuid-1", good)
            .push("uuid-2", br#"{"TICKER": 7}"#)
            .push("uuid-3", br#"{"TICKER": "A\u0042"}"#)
            .push("uuid-4", b"{}")
            .push("uuid-5", br#"{"TICKER": ""}"#)
            .push("uuid-6", br#"{"TICKER": [1]}"#)
            .push("uuid-7", b"not json");
        h.end_input().unwrap();
        let keys: Vec<String> = h.output_strings().into_iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["AMZN", "7", "AB"]);
        assert_eq!(h.output_strings()[0].1.as_bytes(), good, "the record goes out unchanged");
        let reasons: Vec<&str> = h.dead_letters().iter().map(|d| d.reason.as_str()).collect();
        assert_eq!(reasons.len(), 4, "{reasons:?}");
        assert!(reasons[0].contains("missing field \"TICKER\""), "{reasons:?}");
        assert!(reasons[1].contains("is empty"), "{reasons:?}");
        assert!(reasons[2].contains("missing field"), "{reasons:?}");
        assert!(reasons[3].starts_with("not a JSON object"), "{reasons:?}");
    }

    #[test]
    fn the_field_must_be_named() {
        let error = Harness::<Rekey>::new(&[]).err().unwrap();
        assert!(error.message().contains("rekey needs key-field=NAME"), "{error}");
    }
}

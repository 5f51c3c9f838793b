//! The keyed state format, through the SDK's versioned codec (serde + postcard behind a format
//! byte), so that a later version of the operator can read what this one wrote (live swaps
//! carry state across) and refuse what it cannot:
//!
//! - instance entry (key `""`): `(max_event_time, watermark)`;
//! - ticker entry: `(closed_through, [(start, max, count), ...])`, where every window of the key
//!   ending at or before `closed_through` has been emitted.
//!
//! Format 1 was a hand-written little-endian layout; format 2 is this one.

use serde::Serialize;
use weir_operator::{Error, codec};

use crate::panes::Pane;

const FORMAT: u8 = 2;

/// Append the instance entry's state to `buf`.
pub fn encode_instance(max_event_time: i64, watermark: i64, buf: &mut Vec<u8>) -> Result<(), Error> {
    codec::encode_into(FORMAT, &(max_event_time, watermark), buf)
}

/// Append a ticker's state to `buf`, the panes serialised straight from the iterator.
pub fn encode_key<'a, I>(closed_through: i64, panes: I, buf: &mut Vec<u8>) -> Result<(), Error>
where
    I: ExactSizeIterator<Item = &'a Pane> + Clone,
{
    codec::encode_into(FORMAT, &(closed_through, PaneSeq(panes)), buf)
}

/// Panes serialised as a sequence of `(start, max, count)` without collecting them first.
struct PaneSeq<I>(I);

impl<'a, I: ExactSizeIterator<Item = &'a Pane> + Clone> Serialize for PaneSeq<I> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.clone().map(|p| (p.start, p.max, p.count)))
    }
}

pub fn decode_instance(bytes: &[u8]) -> Result<(i64, i64), Error> {
    codec::decode(FORMAT, bytes)
}

/// A ticker's state, checked as this operator writes it: panes in strictly increasing order of
/// start, each with at least one trade and a maximum that is a number, and trade counts whose
/// sum fits (state from elsewhere, damaged or crafted, is refused rather than trusted: the
/// fuzz target `restore` found counts that overflowed the window's total).
pub fn decode_key(bytes: &[u8]) -> Result<(i64, Vec<Pane>), Error> {
    let (closed_through, PaneVec(panes)): (i64, PaneVec) = codec::decode(FORMAT, bytes)?;
    let mut total: u64 = 0;
    let mut previous: Option<i64> = None;
    for &Pane { start, max, count, .. } in &panes {
        if previous.is_some_and(|p| p >= start) {
            return Err(Error::new(format!("panes are out of order at start {start}")));
        }
        if count == 0 || max.is_nan() {
            return Err(Error::new(format!(
                "the pane at start {start} has {count} trades and maximum {max}"
            )));
        }
        total =
            total.checked_add(count).ok_or_else(|| Error::new("the panes' trade counts add up past 2^64"))?;
        previous = Some(start);
    }
    Ok((closed_through, panes))
}

/// Panes read from their `(start, max, count)` sequence straight into the `Vec` a key keeps:
/// one allocation per key (a restore reads every key while the swap waits).
struct PaneVec(Vec<Pane>);

impl<'de> serde::Deserialize<'de> for PaneVec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = PaneVec;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a sequence of (start, max, count)")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<PaneVec, A::Error> {
                // A length from the bytes is not trusted for the allocation: capped.
                let mut panes = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
                while let Some((start, max, count)) = seq.next_element::<(i64, f64, u64)>()? {
                    panes.push(Pane::new(start, max, count));
                }
                Ok(PaneVec(panes))
            }
        }
        d.deserialize_seq(Visit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_corruption() {
        let panes = [Pane::new(10, 1.5, 3), Pane::new(20, -2.0, 1)];
        let mut bytes = Vec::new();
        encode_key(5, panes.iter(), &mut bytes).unwrap();
        assert_eq!(decode_key(&bytes).unwrap(), (5, panes.to_vec()));
        let mut instance = Vec::new();
        encode_instance(7, 6, &mut instance).unwrap();
        assert_eq!(decode_instance(&instance).unwrap(), (7, 6));
        assert!(decode_key(&bytes[..bytes.len() - 1]).unwrap_err().message().contains("cannot be read"));
        let mut v1 = bytes.clone();
        v1[0] = 1;
        assert!(decode_key(&v1).unwrap_err().message().contains("format 1 is not known"));
    }

    #[test]
    fn panes_no_instance_could_have_written_are_refused() {
        let refused = |panes: &[Pane]| {
            let mut bytes = Vec::new();
            encode_key(5, panes.iter(), &mut bytes).unwrap();
            decode_key(&bytes).unwrap_err().message().to_string()
        };
        let huge = [Pane::new(10, 1.0, u64::MAX), Pane::new(20, 1.0, 2)];
        assert!(refused(&huge).contains("add up past"));
        assert!(refused(&[Pane::new(20, 1.0, 1), Pane::new(10, 1.0, 1)]).contains("out of order"));
        assert!(refused(&[Pane::new(10, 1.0, 0)]).contains("0 trades"));
        assert!(refused(&[Pane::new(10, f64::NAN, 1)]).contains("maximum NaN"));
    }
}

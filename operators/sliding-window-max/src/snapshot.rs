//! The keyed state format, through the SDK's versioned codec (serde + postcard behind a format
//! byte), so that a later version of the operator can read what this one wrote (live swaps
//! carry state across) and refuse what it cannot:
//!
//! - instance entry (key `""`): `(max_event_time, watermark)`;
//! - ticker entry: `(closed_through, [(start, max, count), ...])`, where every window of the key
//!   ending at or before `closed_through` has been emitted.
//!
//! Format 1 was a hand-written little-endian layout; format 2 is this one. A ticker's entry,
//! the bulk of a snapshot, is written and read by hand ([`crate::varint`]), byte for byte what
//! postcard writes and reads for it: the snapshot and the restore are a swap's whole pause.

use weir_operator::{Error, codec};

use crate::panes::Pane;
use crate::varint::{self, ReadError, Reader};

const FORMAT: u8 = 2;

/// Append the instance entry's state to `buf`.
pub fn encode_instance(max_event_time: i64, watermark: i64, buf: &mut Vec<u8>) -> Result<(), Error> {
    codec::encode_into(FORMAT, &(max_event_time, watermark), buf)
}

/// Append a ticker's state to `buf`: the format byte, then `closed_through` and the panes as
/// postcard writes `(i64, [(i64, f64, u64)])`.
pub fn encode_key<'a, I>(closed_through: i64, panes: I, buf: &mut Vec<u8>)
where
    I: ExactSizeIterator<Item = &'a Pane>,
{
    buf.reserve(1 + 10 + 5 + panes.len() * (10 + 8 + 10));
    buf.push(FORMAT);
    varint::put_signed(buf, closed_through);
    varint::put(buf, panes.len() as u64);
    for pane in panes {
        varint::put_signed(buf, pane.start);
        buf.extend_from_slice(&pane.max.to_le_bytes());
        varint::put(buf, pane.count);
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
    let body = codec::payload(FORMAT, bytes)?;
    let unreadable = |e: ReadError| Error::new(format!("state cannot be read: {e}"));
    let mut r = Reader::new(body);
    let closed_through = r.signed().map_err(unreadable)?;
    let len = r.varint().map_err(unreadable)?;
    // A length from the bytes is not trusted for the allocation: each pane takes 10 bytes at least.
    let mut panes = Vec::with_capacity((len as usize).min(r.rest().len() / 10));
    let mut total: u64 = 0;
    let mut previous: Option<i64> = None;
    for _ in 0..len {
        let start = r.signed().map_err(unreadable)?;
        let max = r.f64().map_err(unreadable)?;
        let count = r.varint().map_err(unreadable)?;
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
        panes.push(Pane::new(start, max, count));
    }
    if !r.rest().is_empty() {
        return Err(Error::new(format!("{} unexpected bytes after the state", r.rest().len())));
    }
    Ok((closed_through, panes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_corruption() {
        let panes = [Pane::new(10, 1.5, 3), Pane::new(20, -2.0, 1)];
        let mut bytes = Vec::new();
        encode_key(5, panes.iter(), &mut bytes);
        assert_eq!(decode_key(&bytes).unwrap(), (5, panes.to_vec()));
        let mut instance = Vec::new();
        encode_instance(7, 6, &mut instance).unwrap();
        assert_eq!(decode_instance(&instance).unwrap(), (7, 6));
        assert!(decode_key(&bytes[..bytes.len() - 1]).unwrap_err().message().contains("cannot be read"));
        let longer = [&bytes[..], &[0]].concat();
        assert!(decode_key(&longer).unwrap_err().message().contains("1 unexpected bytes after the state"));
        let mut v1 = bytes.clone();
        v1[0] = 1;
        assert!(decode_key(&v1).unwrap_err().message().contains("format 1 is not known"));
    }

    /// Panes as postcard writes them, through the SDK's codec (format 2 before it was written
    /// by hand).
    fn postcard_bytes(closed_through: i64, panes: &[Pane]) -> Vec<u8> {
        let tuples: Vec<(i64, f64, u64)> = panes.iter().map(|p| (p.start, p.max, p.count)).collect();
        codec::encode(FORMAT, &(closed_through, tuples)).unwrap()
    }

    proptest::proptest! {
        #[test]
        fn a_key_is_written_and_read_as_postcard_writes_and_reads_it(
            closed_through: i64,
            raw in proptest::collection::vec((-1i64 << 50..1 << 50, -1e9f64..1e9, 1u64..1 << 40), 0..12),
        ) {
            let mut panes: Vec<Pane> = raw.iter().map(|&(s, m, c)| Pane::new(s, m, c)).collect();
            panes.sort_by_key(|p| p.start);
            panes.dedup_by_key(|p| p.start);
            let mut ours = Vec::new();
            encode_key(closed_through, panes.iter(), &mut ours);
            let theirs = postcard_bytes(closed_through, &panes);
            proptest::prop_assert_eq!(&ours, &theirs);
            proptest::prop_assert_eq!(decode_key(&theirs).unwrap(), (closed_through, panes));
        }

        #[test]
        fn damaged_bytes_are_refused_where_postcard_refuses_them(
            closed_through: i64,
            start in -1i64 << 50..1 << 50,
            cut in 0usize..40,
            flip in 0usize..40,
        ) {
            let panes = [Pane::new(start, 1.5, 3), Pane::new(start + 10, 2.5, 1 << 20)];
            let mut bytes = postcard_bytes(closed_through, &panes);
            let at = flip % bytes.len();
            bytes[at] ^= 0x80;
            bytes.truncate(cut.max(1).min(bytes.len()));
            type Postcard = (i64, Vec<(i64, f64, u64)>);
            if let Ok((closed, tuples)) = codec::decode::<Postcard>(FORMAT, &bytes) {
                // What postcard reads, ours reads the same, or refuses for what it checks beyond.
                if let Ok((ours_closed, ours)) = decode_key(&bytes) {
                    proptest::prop_assert_eq!(ours_closed, closed);
                    let ours: Vec<_> = ours.iter().map(|p| (p.start, p.max, p.count)).collect();
                    proptest::prop_assert_eq!(ours, tuples);
                }
            } else {
                proptest::prop_assert!(decode_key(&bytes).is_err());
            }
        }
    }

    #[test]
    fn panes_no_instance_could_have_written_are_refused() {
        let refused = |panes: &[Pane]| {
            let mut bytes = Vec::new();
            encode_key(5, panes.iter(), &mut bytes);
            decode_key(&bytes).unwrap_err().message().to_string()
        };
        let huge = [Pane::new(10, 1.0, u64::MAX), Pane::new(20, 1.0, 2)];
        assert!(refused(&huge).contains("add up past"));
        assert!(refused(&[Pane::new(20, 1.0, 1), Pane::new(10, 1.0, 1)]).contains("out of order"));
        assert!(refused(&[Pane::new(10, 1.0, 0)]).contains("0 trades"));
        assert!(refused(&[Pane::new(10, f64::NAN, 1)]).contains("maximum NaN"));
    }
}

//! postcard's integer encoding, written and read by hand for the state format's hot part (a key's
//! panes, [`crate::snapshot`]): LEB128 varints, signed values zigzagged first, the same bytes
//! postcard writes and the same refusals when reading. A varint is moved eight bytes at a time
//! and its 7-bit groups spread or gathered by masks, with no loop: in wasm a loop is a
//! CPU-deadline check per byte, and postcard's varint reader, a loop behind a call, was the
//! largest part of a restore (BENCHMARKS.md, issue 26).

use weir_json::{low_bytes, word_at};

/// The high bit of every byte: in a varint, set on each byte but the last.
const CONTINUATION: u64 = 0x8080_8080_8080_8080;

/// The low 56 bits of `value` as eight 7-bit groups, one per byte (high bits clear): 28-bit
/// halves, then 14-bit quarters, then 7-bit eighths.
#[inline(always)]
fn spread(value: u64) -> u64 {
    let mut x = value & 0x00ff_ffff_ffff_ffff;
    x = (x & 0x0000_0000_0fff_ffff) | ((x & 0x00ff_ffff_f000_0000) << 4);
    x = (x & 0x0000_3fff_0000_3fff) | ((x & 0x0fff_c000_0fff_c000) << 2);
    (x & 0x007f_007f_007f_007f) | ((x & 0x3f80_3f80_3f80_3f80) << 1)
}

/// The inverse of [`spread`]: the 7-bit groups of eight bytes (their high bits ignored) as one
/// 56-bit number.
#[inline(always)]
fn gather(word: u64) -> u64 {
    let mut x = word & 0x7f7f_7f7f_7f7f_7f7f;
    x = (x & 0x007f_007f_007f_007f) | ((x & 0x7f00_7f00_7f00_7f00) >> 1);
    x = (x & 0x0000_3fff_0000_3fff) | ((x & 0x3fff_0000_3fff_0000) >> 2);
    (x & 0x0000_0000_0fff_ffff) | ((x & 0x0fff_ffff_0000_0000) >> 4)
}

/// Append `value` as a varint to `buf`.
#[inline(always)]
pub fn put(buf: &mut Vec<u8>, value: u64) {
    // Eight bytes stored at once (a copy of fixed size is a store; of variable size, a call),
    // then those beyond the varint dropped.
    let at = buf.len();
    if value >> 56 == 0 {
        // One byte per 7 bits, at least one.
        let len = (64 - (value | 1).leading_zeros()).div_ceil(7);
        buf.extend_from_slice(&(spread(value) | (CONTINUATION & low_bytes(len as usize - 1))).to_le_bytes());
        buf.truncate(at + len as usize);
    } else {
        // Nine or ten bytes: the first eight all continue; the top 8 bits follow in one or two.
        buf.extend_from_slice(&(spread(value) | CONTINUATION).to_le_bytes());
        let high = value >> 56;
        if high < 0x80 {
            buf.push(high as u8);
        } else {
            buf.extend_from_slice(&[high as u8 | 0x80, (high >> 7) as u8]);
        }
    }
}

/// Append `value` zigzagged, as postcard writes a signed integer.
#[inline(always)]
pub fn put_signed(buf: &mut Vec<u8>, value: i64) {
    put(buf, ((value << 1) ^ (value >> 63)) as u64);
}

/// Why bytes could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadError {
    /// The bytes end inside a value.
    Truncated,
    /// A varint of more than ten bytes, or one whose value does not fit 64 bits.
    TooLong,
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Truncated => "the bytes end inside a value",
            Self::TooLong => "an integer longer than 64 bits",
        })
    }
}

/// Reads values from a byte slice, front to back.
pub struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, at: 0 }
    }

    /// Bytes not read yet.
    pub fn rest(&self) -> &'a [u8] {
        self.bytes.get(self.at..).unwrap_or_default()
    }

    /// The next varint.
    #[inline(always)]
    pub fn varint(&mut self) -> Result<u64, ReadError> {
        // Zeros past the slice's end end a varint as the end does.
        let (word, available) = word_at(self.bytes, self.at);
        // The first byte without a continuation bit ends the varint.
        let ends = !word & CONTINUATION;
        if ends != 0 {
            let len = (ends.trailing_zeros() / 8 + 1) as usize;
            if len > available {
                return Err(ReadError::Truncated);
            }
            self.at += len;
            return Ok(gather(word & low_bytes(len)));
        }
        if available < 8 {
            return Err(ReadError::Truncated);
        }
        // Eight bytes that all continue: the top 8 bits follow in one byte or two.
        self.at += 8;
        let low = gather(word);
        let ninth = *self.bytes.get(self.at).ok_or(ReadError::Truncated)?;
        self.at += 1;
        if ninth & 0x80 == 0 {
            return Ok(low | u64::from(ninth) << 56);
        }
        let tenth = *self.bytes.get(self.at).ok_or(ReadError::Truncated)?;
        self.at += 1;
        // The tenth byte holds the 64th bit only (and so no continuation bit).
        if tenth > 1 {
            return Err(ReadError::TooLong);
        }
        Ok(low | u64::from(ninth & 0x7f) << 56 | u64::from(tenth) << 63)
    }

    /// The next zigzagged varint, as postcard writes a signed integer.
    #[inline(always)]
    pub fn signed(&mut self) -> Result<i64, ReadError> {
        let n = self.varint()?;
        Ok((n >> 1) as i64 ^ -((n & 1) as i64))
    }

    /// The next eight bytes as a little-endian f64, as postcard writes one.
    #[inline(always)]
    pub fn f64(&mut self) -> Result<f64, ReadError> {
        let b = self.bytes.get(self.at..).and_then(|b| b.first_chunk::<8>()).ok_or(ReadError::Truncated)?;
        self.at += 8;
        Ok(f64::from_le_bytes(*b))
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use weir_operator::codec;

    use super::*;

    /// postcard's bytes for `value` (through the SDK's codec, behind its format byte).
    fn postcard<T: serde::Serialize>(value: &T) -> Vec<u8> {
        codec::encode(0, value).unwrap()[1..].to_vec()
    }

    fn edges() -> Vec<u64> {
        let mut values = vec![0, 1, 0x7f, 0x80, 0x3fff, 0x4000, u64::MAX, u64::MAX - 1];
        for bits in [7, 14, 21, 28, 35, 42, 49, 55, 56, 57, 63] {
            values.extend([(1u64 << bits) - 1, 1 << bits, (1 << bits) + 1]);
        }
        values
    }

    fn written(value: u64) -> Vec<u8> {
        let mut buf = vec![9];
        put(&mut buf, value);
        buf[1..].to_vec()
    }

    fn read_all(bytes: &[u8]) -> Result<(u64, usize), ReadError> {
        let mut r = Reader::new(bytes);
        let value = r.varint()?;
        Ok((value, bytes.len() - r.rest().len()))
    }

    #[test]
    fn edge_values_are_written_and_read_as_postcard_does() {
        for value in edges() {
            assert_eq!(written(value), postcard(&value), "{value}");
            let signed = value as i64;
            let mut buf = Vec::new();
            put_signed(&mut buf, signed);
            assert_eq!(buf, postcard(&signed), "{signed}");
            // Read alone (the byte-by-byte path) and followed by other bytes (eight at a time).
            let mut padded = buf.clone();
            padded.extend_from_slice(&[0xff; 12]);
            for bytes in [&buf[..], &padded[..]] {
                let mut r = Reader::new(bytes);
                assert_eq!(r.signed(), Ok(signed));
                assert_eq!(r.rest().len(), bytes.len() - buf.len());
            }
        }
    }

    #[test]
    fn what_postcard_refuses_is_refused() {
        assert_eq!(read_all(&[]), Err(ReadError::Truncated));
        assert_eq!(read_all(&[0x80; 5]), Err(ReadError::Truncated));
        assert_eq!(read_all(&[0x80; 11]), Err(ReadError::TooLong));
        let mut past_64_bits = vec![0xff; 9];
        past_64_bits.push(0x02);
        assert_eq!(read_all(&past_64_bits), Err(ReadError::TooLong));
        assert!(codec::decode::<u64>(0, &[&[0u8][..], &past_64_bits].concat()).is_err());
    }

    #[test]
    fn values_read_one_after_another_up_to_the_end_then_truncated() {
        let values = [300u64, u64::MAX, 0, 1 << 56, 5];
        let mut buf = Vec::new();
        for v in values {
            put(&mut buf, v);
        }
        let mut r = Reader::new(&buf);
        for v in values {
            assert_eq!(r.varint(), Ok(v));
        }
        assert!(r.rest().is_empty());
        assert_eq!(r.varint(), Err(ReadError::Truncated));
        assert_eq!(r.f64(), Err(ReadError::Truncated));
        // A varint cut short by the end of the bytes, at every length.
        for cut in 1..buf.len() {
            let mut r = Reader::new(&buf[..cut]);
            let read = std::iter::from_fn(|| r.varint().ok()).count();
            assert!(read < values.len(), "cut at {cut}");
            assert_eq!(r.varint(), Err(ReadError::Truncated), "cut at {cut}");
        }
    }

    proptest! {
        #[test]
        fn any_value_round_trips_as_postcard_writes_it(value: u64, signed: i64, tail in proptest::collection::vec(any::<u8>(), 0..12)) {
            prop_assert_eq!(written(value), postcard(&value));
            let mut buf = Vec::new();
            put_signed(&mut buf, signed);
            prop_assert_eq!(&buf, &postcard(&signed));
            let len = buf.len();
            buf.extend_from_slice(&tail);
            let mut r = Reader::new(&buf);
            prop_assert_eq!(r.signed(), Ok(signed));
            prop_assert_eq!(r.rest(), &tail[..]);
            prop_assert_eq!(read_all(&written(value)), Ok((value, written(value).len())));
            prop_assert!(len <= 10);
        }

        #[test]
        fn any_bytes_read_as_postcard_reads_them(bytes in proptest::collection::vec(any::<u8>(), 0..40)) {
            // Varint after varint to the end, or to the first refusal, in step with postcard.
            let mut ours = Reader::new(&bytes);
            let mut theirs = &bytes[..];
            loop {
                match (ours.varint(), postcard::take_from_bytes::<u64>(theirs)) {
                    (Ok(value), Ok((expected, rest))) => {
                        prop_assert_eq!(value, expected);
                        prop_assert_eq!(ours.rest(), rest);
                        theirs = rest;
                    }
                    (Err(_), Err(_)) => break,
                    (ours, theirs) => prop_assert!(false, "ours {:?}, postcard's {:?}", ours, theirs),
                }
            }
        }
    }
}

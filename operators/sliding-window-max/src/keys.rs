//! Tickers to key ids, looked up by the ticker's bytes as they stand in the record (its UTF-8
//! is checked once, when the key is new). A ticker of at most 16 bytes (nearly every one) is
//! packed into two words, which hash and compare inline; longer ones are looked up by their
//! bytes. In wasm, comparing byte strings is a call to `memcmp` (a byte loop, each iteration
//! checking the CPU deadline) and checking UTF-8 another: 4.5% and 3.5% of `weir run`'s samples
//! before this map (BENCHMARKS.md, issue 26).

use rustc_hash::FxHashMap;

/// A ticker of at most 16 bytes, zero-padded. A ticker never holds a zero byte (JSON strings
/// cannot hold control characters unescaped, and an escaped one is not read as bytes), so the
/// padding cannot make two tickers equal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Packed(u64, u64);

impl Packed {
    /// `t` packed, if it has at most 16 bytes: loads of fixed size only, no loop and no call.
    #[inline(always)]
    fn of(t: &[u8]) -> Option<Self> {
        let n = t.len();
        let u32_at =
            |i: usize| t.get(i..i + 4).map_or(0, |b| u64::from(u32::from_le_bytes([b[0], b[1], b[2], b[3]])));
        let u64_at = |i: usize| {
            t.get(i..i + 8)
                .map_or(0, |b| u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]))
        };
        Some(match n {
            0 => Self(0, 0),
            1..=3 => {
                let (first, middle, last) = (u64::from(t[0]), u64::from(t[n / 2]), u64::from(t[n - 1]));
                Self(first | middle << (n / 2 * 8) | last << ((n - 1) * 8), 0)
            }
            // Two overlapping loads: the bytes they share are the same in both.
            4..=8 => Self(u32_at(0) | u32_at(n - 4) << ((n - 4) * 8), 0),
            9..=16 => Self(u64_at(0), u64_at(n - 8) >> ((16 - n) * 8)),
            _ => return None,
        })
    }
}

/// Ticker bytes to key id.
#[derive(Debug, Default)]
pub struct KeyIndex {
    short: FxHashMap<Packed, u32>,
    long: FxHashMap<Box<[u8]>, u32>,
}

impl KeyIndex {
    /// The id of `ticker`, if it has one.
    #[inline(always)]
    pub fn get(&self, ticker: &[u8]) -> Option<u32> {
        match Packed::of(ticker) {
            Some(p) => self.short.get(&p).copied(),
            None => self.long.get(ticker).copied(),
        }
    }

    /// Room for `more` tickers.
    pub fn reserve(&mut self, more: usize) {
        self.short.reserve(more);
    }

    /// Give `ticker` the id `id`.
    pub fn insert(&mut self, ticker: &[u8], id: u32) {
        match Packed::of(ticker) {
            Some(p) => self.short.insert(p, id),
            None => self.long.insert(ticker.into(), id),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_length_packs_to_its_own_key() {
        let text = b"ABCDEFGHIJKLMNOPQRSTU";
        let mut index = KeyIndex::default();
        for n in 0..=text.len() {
            index.insert(&text[..n], n as u32);
        }
        for n in 0..=text.len() {
            assert_eq!(index.get(&text[..n]), Some(n as u32), "length {n}");
            // The same length, one byte changed anywhere: another key.
            for i in 0..n {
                let mut other = text[..n].to_vec();
                other[i] = b'z';
                assert_eq!(index.get(&other), None, "length {n}, byte {i} changed");
            }
        }
        assert_eq!(Packed::of(b"AB"), Some(Packed(u64::from_le_bytes(*b"AB\0\0\0\0\0\0"), 0)));
        assert_eq!(
            Packed::of(b"ABCDEFGHIJ"),
            Some(Packed(u64::from_le_bytes(*b"ABCDEFGH"), u64::from_le_bytes(*b"IJ\0\0\0\0\0\0")))
        );
        assert_eq!(Packed::of(b"ABCDE"), Some(Packed(u64::from_le_bytes(*b"ABCDE\0\0\0"), 0)));
    }
}

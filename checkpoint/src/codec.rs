//! The bytes of a checkpoint, one object:
//!
//! ```text
//! "WEIRCKPT" FORMAT(u8)
//! meta length (u32 LE) | meta (JSON: positions, lineage, operator; readable with `strings`)
//! entries n (u32 LE) | n key lengths (u32 LE) | n state lengths (u32 LE)
//! state bytes length (u64 LE) | keys and states back to back
//! xxh3-64 of everything before (u64 LE)
//! ```
//!
//! Decoding checks the magic, the format, every length against what is left and the checksum
//! before it trusts anything, and the state's columns ([`KeyedStates::check`]): a torn or
//! damaged object is refused, never half restored.

use weir_contract::KeyedStates;
use xxhash_rust::xxh3::xxh3_64;

use super::{Checkpoint, Meta};

/// The first bytes of every checkpoint.
pub const MAGIC: &[u8; 8] = b"WEIRCKPT";
/// The layout written; a reader refuses any other.
pub const FORMAT: u8 = 1;

/// The bytes of `checkpoint`.
pub fn encode(checkpoint: &Checkpoint) -> Vec<u8> {
    let state = &checkpoint.state;
    // Serialising plain data with string keys cannot fail.
    let meta = serde_json::to_vec(&checkpoint.meta).unwrap_or_default();
    let mut out = Vec::with_capacity(9 + 4 + meta.len() + 4 + 8 * state.len() + 8 + state.bytes.len() + 8);
    out.extend_from_slice(MAGIC);
    out.push(FORMAT);
    out.extend_from_slice(&(meta.len() as u32).to_le_bytes());
    out.extend_from_slice(&meta);
    out.extend_from_slice(&(state.len() as u32).to_le_bytes());
    for len in state.key_lens.iter().chain(&state.state_lens) {
        out.extend_from_slice(&len.to_le_bytes());
    }
    out.extend_from_slice(&(state.bytes.len() as u64).to_le_bytes());
    out.extend_from_slice(&state.bytes);
    let sum = xxh3_64(&out);
    out.extend_from_slice(&sum.to_le_bytes());
    out
}

/// The checkpoint in `bytes`, or why it cannot be one.
pub fn decode(bytes: &[u8]) -> Result<Checkpoint, String> {
    let body_len = bytes.len().checked_sub(8).ok_or("it is too short")?;
    let (body, sum) = bytes.split_at(body_len);
    if body.len() < MAGIC.len() + 1 || &body[..MAGIC.len()] != MAGIC {
        return Err("it does not start with WEIRCKPT".into());
    }
    if body[MAGIC.len()] != FORMAT {
        return Err(format!(
            "it is in format {}, and this weir reads format {FORMAT} (was it written by another version of weir?)",
            body[MAGIC.len()]
        ));
    }
    if u64::from_le_bytes(sum.try_into().map_err(|_| "no checksum")?) != xxh3_64(body) {
        return Err("its checksum does not match: the object is damaged or was cut short".into());
    }
    let mut reader = Reader { rest: &body[MAGIC.len() + 1..] };
    let meta_len = reader.u32()? as usize;
    let meta: Meta =
        serde_json::from_slice(reader.take(meta_len)?).map_err(|e| format!("its metadata: {e}"))?;
    let entries = reader.u32()? as usize;
    if entries.saturating_mul(8) > reader.rest.len() {
        return Err(format!("it claims {entries} state entries, more than its length holds"));
    }
    let key_lens = (0..entries).map(|_| reader.u32()).collect::<Result<Vec<_>, _>>()?;
    let state_lens = (0..entries).map(|_| reader.u32()).collect::<Result<Vec<_>, _>>()?;
    let bytes_len = usize::try_from(reader.u64()?).map_err(|_| "its state is too large")?;
    let state_bytes = reader.take(bytes_len)?.to_vec();
    if !reader.rest.is_empty() {
        return Err(format!("{} bytes follow the state", reader.rest.len()));
    }
    let state = KeyedStates { bytes: state_bytes, key_lens, state_lens };
    state.check().map_err(|e| format!("its state: {e}"))?;
    Ok(Checkpoint { meta, state })
}

struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if n > self.rest.len() {
            return Err(format!("it ends {} bytes early", n - self.rest.len()));
        }
        let (taken, rest) = self.rest.split_at(n);
        self.rest = rest;
        Ok(taken)
    }

    fn u32(&mut self) -> Result<u32, String> {
        let bytes = self.take(4)?;
        Ok(u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
    }

    fn u64(&mut self) -> Result<u64, String> {
        let (low, high) = (self.u32()?, self.u32()?);
        Ok(u64::from(low) | (u64::from(high) << 32))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sample;

    #[test]
    fn a_checkpoint_reads_back_as_written() {
        let checkpoint = sample();
        assert_eq!(decode(&encode(&checkpoint)).unwrap(), checkpoint);
    }

    #[test]
    fn every_damaged_or_shortened_copy_is_refused() {
        let bytes = encode(&sample());
        for cut in 0..bytes.len() {
            assert!(decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        for i in 0..bytes.len() {
            let mut damaged = bytes.clone();
            damaged[i] ^= 0x20;
            assert!(decode(&damaged).is_err(), "byte {i} flipped");
        }
    }

    #[test]
    fn another_format_is_refused_by_name() {
        let mut bytes = encode(&sample());
        bytes[8] = 9;
        assert!(decode(&bytes).unwrap_err().contains("format 9"));
    }
}

//! The keyed state format: little-endian fields behind a format version byte, so that a later
//! version of the operator can read what this one wrote (live swaps carry state across).
//!
//! - instance entry (key `""`): `1u8, max_event_time i64, watermark i64`
//! - ticker entry: `1u8, closed_through i64, n u32, n × (start i64, max f64, count u64)`, where
//!   every window of the key ending at or before `closed_through` has been emitted

use crate::panes::Pane;

const FORMAT: u8 = 1;

pub fn encode_instance(max_event_time: i64, watermark: i64) -> Vec<u8> {
    let mut b = Vec::with_capacity(17);
    b.push(FORMAT);
    b.extend_from_slice(&max_event_time.to_le_bytes());
    b.extend_from_slice(&watermark.to_le_bytes());
    b
}

pub fn encode_key<'a>(closed_through: i64, panes: impl ExactSizeIterator<Item = &'a Pane>) -> Vec<u8> {
    let mut b = Vec::with_capacity(13 + panes.len() * 24);
    b.push(FORMAT);
    b.extend_from_slice(&closed_through.to_le_bytes());
    b.extend_from_slice(&(panes.len() as u32).to_le_bytes());
    for p in panes {
        b.extend_from_slice(&p.start.to_le_bytes());
        b.extend_from_slice(&p.max.to_le_bytes());
        b.extend_from_slice(&p.count.to_le_bytes());
    }
    b
}

/// Reads fixed-size fields, failing with a message on short input.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let (head, rest) = self.0.split_at_checked(N).ok_or("state is truncated")?;
        self.0 = rest;
        head.try_into().map_err(|_| "state is truncated".to_string())
    }
    fn version(&mut self) -> Result<(), String> {
        match self.take::<1>()?[0] {
            FORMAT => Ok(()),
            v => Err(format!("state format {v} is not known to this version (it reads format {FORMAT})")),
        }
    }
    fn i64(&mut self) -> Result<i64, String> {
        self.take().map(i64::from_le_bytes)
    }
    fn end(&self) -> Result<(), String> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(format!("{} unexpected bytes after the state", self.0.len()))
        }
    }
}

pub fn decode_instance(bytes: &[u8]) -> Result<(i64, i64), String> {
    let mut r = Reader(bytes);
    r.version()?;
    let v = (r.i64()?, r.i64()?);
    r.end()?;
    Ok(v)
}

pub fn decode_key(bytes: &[u8]) -> Result<(i64, Vec<Pane>), String> {
    let mut r = Reader(bytes);
    r.version()?;
    let closed_through = r.i64()?;
    let n = u32::from_le_bytes(r.take()?) as usize;
    if n > bytes.len() / 24 {
        return Err(format!("state claims {n} panes in {} bytes", bytes.len()));
    }
    let mut panes = Vec::with_capacity(n);
    for _ in 0..n {
        let start = r.i64()?;
        let max = f64::from_le_bytes(r.take()?);
        let count = u64::from_le_bytes(r.take()?);
        panes.push(Pane::new(start, max, count));
    }
    r.end()?;
    Ok((closed_through, panes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_corruption() {
        let panes = [Pane::new(10, 1.5, 3), Pane::new(20, -2.0, 1)];
        let bytes = encode_key(5, panes.iter());
        assert_eq!(decode_key(&bytes).unwrap(), (5, panes.to_vec()));
        assert_eq!(decode_instance(&encode_instance(7, 6)).unwrap(), (7, 6));
        assert!(decode_key(&bytes[..bytes.len() - 1]).unwrap_err().contains("truncated"));
        let mut v2 = bytes.clone();
        v2[0] = 2;
        assert!(decode_key(&v2).unwrap_err().contains("format 2 is not known"));
    }
}

//! Operator state as bytes: any serde type, in postcard's compact format, behind one format
//! version byte, so that a later version of an operator can tell what an earlier one wrote
//! (live swaps and checkpoints carry state across versions) and refuse what it cannot read.
//!
//! ```
//! use weir_operator::codec;
//! let bytes = codec::encode(1, &(42i64, vec![1.5f64])).unwrap();
//! let back: (i64, Vec<f64>) = codec::decode(1, &bytes).unwrap();
//! assert_eq!(back, (42, vec![1.5]));
//! assert!(codec::decode::<(i64, Vec<f64>)>(2, &bytes).is_err());
//! ```

use serde::{Deserialize, Serialize};

use crate::Error;

/// `value` encoded behind the format version byte `format`.
pub fn encode<T: Serialize + ?Sized>(format: u8, value: &T) -> Result<Vec<u8>, Error> {
    postcard::to_extend(value, vec![format]).map_err(|e| Error::new(format!("cannot encode state: {e}")))
}

/// Encode `value` behind the format byte `format`, appended to `buf` (for
/// [`KeyedStates::push_with`](crate::KeyedStates::push_with)).
pub fn encode_into<T: Serialize + ?Sized>(format: u8, value: &T, buf: &mut Vec<u8>) -> Result<(), Error> {
    buf.push(format);
    postcard::serialize_with_flavor(value, Append(buf))
        .map_err(|e| Error::new(format!("cannot encode state: {e}")))
}

/// A postcard output that appends to a borrowed buffer.
struct Append<'a>(&'a mut Vec<u8>);

impl postcard::ser_flavors::Flavor for Append<'_> {
    type Output = ();

    // Inlined so that a fixed-size write (an f64's eight bytes) is a store, not a call to
    // memcpy (in wasm: a host libcall for `memory.copy`).
    #[inline(always)]
    fn try_push(&mut self, data: u8) -> postcard::Result<()> {
        self.0.push(data);
        Ok(())
    }

    #[inline(always)]
    fn try_extend(&mut self, data: &[u8]) -> postcard::Result<()> {
        self.0.extend_from_slice(data);
        Ok(())
    }

    fn finalize(self) -> postcard::Result<()> {
        Ok(())
    }
}

/// The value [`encode`] wrote with format `format`. Another format byte, truncated bytes or
/// bytes left over are errors that say which.
pub fn decode<'a, T: Deserialize<'a>>(format: u8, bytes: &'a [u8]) -> Result<T, Error> {
    match postcard::take_from_bytes(payload(format, bytes)?) {
        Ok((value, [])) => Ok(value),
        Ok((_, rest)) => Err(Error::new(format!("{} unexpected bytes after the state", rest.len()))),
        Err(e) => Err(Error::new(format!("state cannot be read: {e}"))),
    }
}

/// The bytes after the format byte, if that byte is `format` (an error that says which byte it
/// is, otherwise): for an operator that reads some of its state by hand behind the same byte.
pub fn payload(format: u8, bytes: &[u8]) -> Result<&[u8], Error> {
    match bytes.split_first() {
        None => Err(Error::new("state is empty (no format byte)")),
        Some((&found, body)) if found == format => Ok(body),
        Some((&found, _)) => Err(Error::new(format!(
            "state format {found} is not known to this version (it reads format {format})"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_round_trips_and_damage_is_named() {
        let bytes = encode(3, &("AMZN", 7u64, -1.5f64)).unwrap();
        assert_eq!(bytes[0], 3);
        assert_eq!(decode::<(String, u64, f64)>(3, &bytes).unwrap(), ("AMZN".into(), 7, -1.5));
        let err = decode::<(String, u64, f64)>(4, &bytes).unwrap_err();
        assert!(err.message().contains("format 3 is not known"), "{err}");
        let err = decode::<(String, u64, f64)>(3, &bytes[..bytes.len() - 1]).unwrap_err();
        assert!(err.message().contains("cannot be read"), "{err}");
        let mut long = bytes.clone();
        long.push(0);
        assert!(decode::<(String, u64, f64)>(3, &long).unwrap_err().message().contains("1 unexpected"));
        assert!(decode::<u8>(1, &[]).unwrap_err().message().contains("empty"));
        let mut appended = vec![0xaa];
        encode_into(3, &("AMZN", 7u64, -1.5f64), &mut appended).unwrap();
        assert_eq!(appended[1..], bytes[..], "encode_into appends what encode returns");
    }
}

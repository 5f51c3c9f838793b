//! Keyed state: how state leaves and re-enters an operator, one entry per grouping key, packed
//! like a batch (one byte buffer, a column of key lengths and one of state lengths), so that a
//! snapshot of thousands of keys crosses the wasm boundary as three copies.

use crate::Error;

/// The key of the entry that holds instance-wide state (a watermark, say). The host gives it to
/// every instance, so after a change of parallelism `restore` may see several.
pub const INSTANCE_KEY: &str = "";

/// One entry of [`KeyedStates`], borrowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct StateEntry<'a> {
    /// The grouping key, or [`INSTANCE_KEY`].
    pub key: &'a str,
    /// The encoded state.
    pub state: &'a [u8],
}

impl StateEntry<'_> {
    /// Whether this is an instance-wide entry.
    pub fn is_instance_wide(&self) -> bool {
        self.key == INSTANCE_KEY
    }
}

/// An operator's state, one entry per grouping key; its fields are the contract's
/// `keyed-states`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyedStates {
    /// Keys and states, back to back.
    pub bytes: Vec<u8>,
    /// Per entry: key length.
    pub key_lens: Vec<u32>,
    /// Per entry: state length.
    pub state_lens: Vec<u32>,
}

impl KeyedStates {
    /// Add the state of `key`.
    #[inline]
    pub fn push(&mut self, key: &str, state: &[u8]) {
        let written: Result<(), std::convert::Infallible> = self.push_with(key, |buf| {
            buf.extend_from_slice(state);
            Ok(())
        });
        let Ok(()) = written;
    }

    /// Add the state of `key`, which `write` appends to the buffer it is given: encode straight
    /// into the snapshot, with no intermediate allocation.
    #[inline]
    pub fn push_with<E>(
        &mut self,
        key: &str,
        write: impl FnOnce(&mut Vec<u8>) -> Result<(), E>,
    ) -> Result<(), E> {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(key.as_bytes());
        let state_start = self.bytes.len();
        if let Err(e) = write(&mut self.bytes) {
            self.bytes.truncate(start);
            return Err(e);
        }
        self.key_lens.push(key.len() as u32);
        self.state_lens.push((self.bytes.len() - state_start) as u32);
        Ok(())
    }

    /// Add every entry of `other`.
    pub fn append(&mut self, other: &KeyedStates) {
        self.bytes.extend_from_slice(&other.bytes);
        self.key_lens.extend_from_slice(&other.key_lens);
        self.state_lens.extend_from_slice(&other.state_lens);
    }

    /// Add one entry.
    pub fn push_entry(&mut self, entry: StateEntry<'_>) {
        self.push(entry.key, entry.state);
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.key_lens.len()
    }

    /// Whether there is no entry.
    pub fn is_empty(&self) -> bool {
        self.key_lens.is_empty()
    }

    /// Number of entries that belong to a grouping key (not instance-wide).
    pub fn keys(&self) -> usize {
        self.key_lens.iter().filter(|&&len| len > 0).count()
    }

    /// Check what came over the wire: equally long columns, lengths adding up to `bytes`, UTF-8
    /// keys.
    pub fn check(&self) -> Result<(), Error> {
        if self.key_lens.len() != self.state_lens.len() {
            return Err(Error::new(format!(
                "state columns differ in length: {} keys, {} states",
                self.key_lens.len(),
                self.state_lens.len()
            )));
        }
        let mut at = 0usize;
        for (i, (&key_len, &state_len)) in self.key_lens.iter().zip(&self.state_lens).enumerate() {
            let key_end = at + key_len as usize;
            let end = key_end + state_len as usize;
            let Some(key) = self.bytes.get(at..key_end).filter(|_| end <= self.bytes.len()) else {
                return Err(Error::new(format!("state entry {i}: lengths run past the state's bytes")));
            };
            // ASCII first: inline, where `from_utf8` is a call (in wasm, per key of a restore).
            if !key.is_ascii() && std::str::from_utf8(key).is_err() {
                return Err(Error::new(format!("state entry {i}: key is not UTF-8")));
            }
            at = end;
        }
        if at != self.bytes.len() {
            return Err(Error::new(format!(
                "state has {} bytes but its entries account for {at}",
                self.bytes.len()
            )));
        }
        Ok(())
    }

    /// The entries, in order. A key that is not UTF-8 or lengths that run past the bytes (only
    /// possible in state that did not pass [`check`](Self::check)) read as empty.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = StateEntry<'_>> + '_ {
        let mut at = 0usize;
        self.key_lens.iter().zip(&self.state_lens).map(move |(&key_len, &state_len)| {
            let key_end = at + key_len as usize;
            let end = key_end + state_len as usize;
            let key = self.bytes.get(at..key_end).unwrap_or_default();
            let state = self.bytes.get(key_end..end).unwrap_or_default();
            at = end;
            StateEntry { key: std::str::from_utf8(key).unwrap_or_default(), state }
        })
    }

    /// The entries, sorted by key then state (for comparisons in tests).
    pub fn sorted(&self) -> Vec<StateEntry<'_>> {
        let mut entries: Vec<_> = self.iter().collect();
        entries.sort_unstable();
        entries
    }
}

impl<'a> FromIterator<StateEntry<'a>> for KeyedStates {
    fn from_iter<I: IntoIterator<Item = StateEntry<'a>>>(entries: I) -> Self {
        let mut states = KeyedStates::default();
        for entry in entries {
            states.push_entry(entry);
        }
        states
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_read_back_in_order_and_a_failed_write_leaves_nothing() {
        let mut s = KeyedStates::default();
        s.push("", &[9]);
        s.push("AMZN", b"max");
        let failed: Result<(), &str> = s.push_with("GOOG", |buf| {
            buf.extend_from_slice(b"half");
            Err("encoder failed")
        });
        assert!(failed.is_err());
        s.push("GOOG", b"");
        assert!(s.check().is_ok());
        let got: Vec<_> = s.iter().map(|e| (e.key, e.state)).collect();
        assert_eq!(got, vec![("", &[9u8][..]), ("AMZN", &b"max"[..]), ("GOOG", &b""[..])]);
        assert_eq!((s.len(), s.keys()), (3, 2));
        assert!(s.iter().next().is_some_and(|e| e.is_instance_wide()));
    }

    #[test]
    fn inconsistent_state_is_refused() {
        let bad = |bytes: &[u8], key_lens: &[u32], state_lens: &[u32]| {
            KeyedStates {
                bytes: bytes.to_vec(),
                key_lens: key_lens.to_vec(),
                state_lens: state_lens.to_vec(),
            }
            .check()
            .unwrap_err()
            .message()
            .to_string()
        };
        assert!(bad(b"abc", &[2], &[5]).contains("run past"));
        assert!(bad(b"abc", &[1], &[1]).contains("account for 2"));
        assert!(bad(&[0xff], &[1], &[0]).contains("not UTF-8"));
        assert!(bad(b"ab", &[1], &[]).contains("columns differ"));
    }
}

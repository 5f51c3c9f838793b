//! Keyed state: how state leaves and re-enters an operator.

/// The key of the entry that holds instance-wide state (a watermark, say). It is empty, which
/// no Kinesis partition key can be, and the host gives it to every instance that receives any
/// key of the snapshot.
pub const INSTANCE_KEY: &str = "";

/// The state of one partition key, in a format of the operator's choice.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct KeyedState {
    /// The partition key, or [`INSTANCE_KEY`].
    pub key: String,
    /// The encoded state.
    pub state: Vec<u8>,
}

impl KeyedState {
    /// An entry for `key`.
    pub fn new(key: impl Into<String>, state: Vec<u8>) -> Self {
        Self { key: key.into(), state }
    }

    /// Whether this is the instance-wide entry.
    pub fn is_instance_wide(&self) -> bool {
        self.key == INSTANCE_KEY
    }
}

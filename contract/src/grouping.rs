//! The grouping key: what an operator's state and results belong to, and so what the host
//! routes records by.

use std::fmt;

/// Which key the host routes records by: all records of one grouping key reach the same
/// instance, in the order of their shard.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub enum Grouping {
    /// The record's partition key: stateless operators, and state per partition key.
    #[default]
    PartitionKey,
    /// The value of this top-level field of the record's JSON object: a string's text (escapes
    /// decoded), any other value's JSON text. A record that is not a JSON object or lacks the
    /// field has the empty key.
    JsonField(String),
}

/// `partition key` or `JSON field "TICKER"`.
impl fmt::Display for Grouping {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Grouping::PartitionKey => f.write_str("partition key"),
            Grouping::JsonField(field) => write!(f, "JSON field {field:?}"),
        }
    }
}

//! What can go wrong talking to Kinesis, as variants a caller can match; each message names the
//! stream or endpoint involved and what to do.

use crate::aws::Stream;
use crate::writer::{MAX_KEY_CHARS, MAX_RECORD_BYTES};

/// Kinesis refused, could not be reached, or was given something it cannot take.
#[derive(Debug, thiserror::Error)]
pub enum KinesisError {
    /// The stream does not exist (at this endpoint, in this region).
    #[error(
        "stream {stream} does not exist at {endpoint}: create it, or check the name and the region (--region, AWS_REGION)"
    )]
    StreamNotFound {
        /// The stream.
        stream: Stream,
        /// Where the request went.
        endpoint: String,
    },
    /// The credentials were refused or lack a permission.
    #[error(
        "access to stream {stream} was denied at {endpoint} ({detail}): the credentials need {action} on it; check them and their permissions"
    )]
    AccessDenied {
        /// The stream.
        stream: Stream,
        /// Where the request went.
        endpoint: String,
        /// The permission the refused request needs, as IAM names it (`kinesis:GetRecords`).
        action: String,
        /// What Kinesis said.
        detail: String,
    },
    /// No credentials were found in the default chain.
    #[error(
        "no AWS credentials for stream {stream}: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE, or run with a role ({detail})"
    )]
    NoCredentials {
        /// The stream.
        stream: Stream,
        /// What the credential chain said.
        detail: String,
    },
    /// No region is configured.
    #[error("no AWS region for stream {stream}: pass --region or set AWS_REGION")]
    NoRegion {
        /// The stream.
        stream: Stream,
    },
    /// The endpoint could not be reached (connection refused, timeout).
    #[error(
        "cannot reach Kinesis at {endpoint} for stream {stream}: {detail}; check the endpoint (AWS_ENDPOINT_URL_KINESIS) and the network"
    )]
    Unreachable {
        /// The stream.
        stream: Stream,
        /// Where the request went.
        endpoint: String,
        /// The error and its causes.
        detail: String,
    },
    /// Kinesis answered with an error not covered above.
    #[error("Kinesis refused a request for stream {stream} at {endpoint}: {code} {message}")]
    Refused {
        /// The stream.
        stream: Stream,
        /// Where the request went.
        endpoint: String,
        /// The error code, such as `InvalidArgumentException`.
        code: String,
        /// Kinesis's message.
        message: String,
    },
    /// The request failed in another way.
    #[error("request for stream {stream} at {endpoint} failed: {detail}")]
    Failed {
        /// The stream.
        stream: Stream,
        /// Where the request went.
        endpoint: String,
        /// The error and its causes.
        detail: String,
    },
    /// ListShards described a shard without a usable hash key range.
    #[error("Kinesis at {endpoint} described shard {shard} of {stream} without a valid hash key range")]
    BadShard {
        /// The stream.
        stream: Stream,
        /// Where the request went.
        endpoint: String,
        /// The shard.
        shard: String,
    },
    /// GetShardIterator answered without an iterator.
    #[error("Kinesis at {endpoint} gave no iterator for shard {shard} of {stream}")]
    NoIterator {
        /// The stream.
        stream: Stream,
        /// Where the request went.
        endpoint: String,
        /// The shard.
        shard: String,
    },
    /// An enhanced fan-out consumer did not become ACTIVE in time.
    #[error(
        "consumer {consumer} of stream {stream} did not become ACTIVE within {waited:?}: look at it with `aws kinesis describe-stream-consumer`, or choose another --efo-consumer name"
    )]
    ConsumerNotActive {
        /// The stream.
        stream: Stream,
        /// The consumer's name.
        consumer: String,
        /// How long weir waited.
        waited: std::time::Duration,
    },
    /// A record's partition key is empty or too long.
    #[error(
        "cannot write a record with a partition key of {chars} characters; Kinesis needs 1 to {MAX_KEY_CHARS}"
    )]
    KeyLength {
        /// The key's length in characters.
        chars: usize,
    },
    /// A record is larger than Kinesis takes.
    #[error(
        "cannot write a record of {bytes} bytes for key {key:?}; Kinesis takes at most {MAX_RECORD_BYTES}"
    )]
    RecordTooLarge {
        /// The record's partition key.
        key: String,
        /// Its size, key included.
        bytes: usize,
    },
    /// A task of the writer or reader panicked or was cancelled.
    #[error("a Kinesis task stopped: {0}")]
    Task(#[from] tokio::task::JoinError),
}

impl weir_aws::Transient for KinesisError {
    /// Unreachable, throttled or busy: worth trying again. A missing stream, a refusal of the
    /// credentials or of the request, or a record Kinesis cannot take is not.
    fn is_transient(&self) -> bool {
        match self {
            KinesisError::Unreachable { .. } => true,
            KinesisError::Refused { code, .. } => weir_aws::is_transient_code(code),
            _ => false,
        }
    }
}

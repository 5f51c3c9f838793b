//! The Kinesis client on weir's AWS layer (`weir-aws`: configuration, endpoints such as
//! `AWS_ENDPOINT_URL_KINESIS`, retries), and SDK errors turned into [`KinesisError`]s by their
//! type and error code.

use aws_config::SdkConfig;
use aws_credential_types::provider::error::CredentialsError;
use aws_sdk_kinesis::error::{ProvideErrorMetadata, SdkError};
use weir_aws::{cause, describe, endpoint_override, one_line, regional_endpoint};

use crate::KinesisError;

/// How long one attempt of a Kinesis call may wait for its answer.
pub const ATTEMPT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// A Kinesis stream, by name or by ARN, as `kinesis://NAME` or `arn:aws:kinesis:...` gave it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stream(pub String);

impl Stream {
    /// The name, for requests by name (None when given as an ARN).
    pub fn name(&self) -> Option<String> {
        (!self.0.starts_with("arn:")).then(|| self.0.clone())
    }

    /// The ARN, for requests by ARN.
    pub fn arn(&self) -> Option<String> {
        self.0.starts_with("arn:").then(|| self.0.clone())
    }
}

impl std::fmt::Display for Stream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0.starts_with("arn:") { f.write_str(&self.0) } else { write!(f, "kinesis://{}", self.0) }
    }
}

/// A Kinesis client with what its errors need to say: where requests go, and whether a region
/// is set at all.
#[derive(Clone, Debug)]
pub struct Kinesis {
    /// The SDK client.
    pub client: aws_sdk_kinesis::Client,
    /// Where requests go, for messages.
    pub endpoint: String,
    has_region: bool,
}

impl Kinesis {
    /// A client from the shared configuration, with the SDK's own retries off: weir's read and
    /// write loops retry every call themselves ([`weir_aws::retry`]), so a throttle is retried
    /// once, with weir's backoff, and counted once (in `weir_aws_retries_total{service="kinesis"}`
    /// and `weir_read_throttles_total` or `weir_sink_retries_total`), not hidden under up to
    /// three SDK attempts.
    ///
    /// Each attempt of a call has [`ATTEMPT_TIMEOUT`] to be answered (the SDK sets none), so
    /// that a call sent on a connection that went silent (a half-open one, a NAT that forgot
    /// it) fails and is retried instead of waiting forever; PutRecords has longer
    /// ([`crate::writer::WRITE_ATTEMPT_TIMEOUT`]: its retry may write twice). A subscription's
    /// events come after its answer, and are watched by the subscriber's own inactivity
    /// deadline.
    pub fn new(config: &SdkConfig) -> Self {
        let timeouts = aws_sdk_kinesis::config::timeout::TimeoutConfig::builder()
            .operation_attempt_timeout(ATTEMPT_TIMEOUT)
            .build();
        let config_without_retries = aws_sdk_kinesis::config::Builder::from(config)
            .retry_config(aws_sdk_kinesis::config::retry::RetryConfig::disabled())
            .timeout_config(timeouts)
            .build();
        Self::with_client(aws_sdk_kinesis::Client::from_conf(config_without_retries), config)
    }

    /// `client`, described by `config`.
    pub fn with_client(client: aws_sdk_kinesis::Client, config: &SdkConfig) -> Self {
        let endpoint =
            endpoint_override(config, "KINESIS").unwrap_or_else(|| regional_endpoint(config, "Kinesis"));
        Self { client, endpoint, has_region: config.region().is_some() }
    }

    /// Refuse to send requests about `stream` without a region (the SDK would fail each one
    /// with a less helpful message).
    pub fn check_region(&self, stream: &Stream) -> Result<(), KinesisError> {
        if self.has_region { Ok(()) } else { Err(KinesisError::NoRegion { stream: stream.clone() }) }
    }

    /// What went wrong with a request about `stream`.
    pub fn error<E, R>(&self, error: &SdkError<E, R>, stream: &Stream) -> KinesisError
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug + 'static,
    {
        let (stream, endpoint) = (stream.clone(), self.endpoint.clone());
        let detail = describe(error);
        if let SdkError::ServiceError(service) = error {
            let e = service.err();
            let message = e.message().unwrap_or("no detail").to_string();
            return match e.code() {
                Some("ResourceNotFoundException") => KinesisError::StreamNotFound { stream, endpoint },
                Some("AccessDeniedException" | "UnrecognizedClientException") => {
                    let action = format!("kinesis:{}", weir_aws::operation::<E>());
                    KinesisError::AccessDenied { stream, endpoint, action, detail: message }
                }
                code => KinesisError::Refused {
                    stream,
                    endpoint,
                    code: code.unwrap_or("error").to_string(),
                    message,
                },
            };
        }
        if let Some(credentials) = cause::<CredentialsError>(error) {
            return KinesisError::NoCredentials { stream, detail: one_line(&credentials.to_string()) };
        }
        match error {
            SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) | SdkError::ResponseError(_) => {
                KinesisError::Unreachable { stream, endpoint, detail }
            }
            _ => KinesisError::Failed { stream, endpoint, detail },
        }
    }
}

// Last in the file, with the tests: tools that read the code take all that follows as test code.
#[cfg(test)]
impl Kinesis {
    /// A client with no credentials, region or endpoint, for unit tests that never call it.
    pub(crate) fn offline() -> Self {
        Self::new(&SdkConfig::builder().behavior_version(aws_config::BehaviorVersion::latest()).build())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_sdk_makes_one_attempt_per_call_so_weirs_loops_retry_and_count_each_failure() {
        let kinesis = Kinesis::offline();
        let retry = kinesis.client.config().retry_config().expect("a retry configuration");
        assert_eq!(retry.max_attempts(), 1);
    }
}

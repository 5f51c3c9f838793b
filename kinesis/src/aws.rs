//! AWS access, the AWS way: credentials from the SDK's default chain (environment, profile,
//! instance or task role), the region from the usual places or `--region`, endpoints from
//! `AWS_ENDPOINT_URL` / `AWS_ENDPOINT_URL_KINESIS` (so one binary serves AWS and emulators); and
//! SDK errors turned into [`KinesisError`]s by their type and error code.

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::provider::error::CredentialsError;
use aws_sdk_kinesis::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

use crate::KinesisError;

/// Load the shared AWS configuration, overriding the region if `region` is given.
pub async fn config(region: Option<&str>) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(region) = region {
        loader = loader.region(Region::new(region.to_string()));
    }
    loader.load().await
}

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
    /// write loops retry every call themselves ([`crate::retry`]), so a throttle is retried
    /// once, with weir's backoff, and counted once (in `weir_read_throttles_total` or
    /// `weir_sink_retries_total`), not hidden under up to three SDK attempts.
    pub fn new(config: &SdkConfig) -> Self {
        let config_without_retries = aws_sdk_kinesis::config::Builder::from(config)
            .retry_config(aws_sdk_kinesis::config::retry::RetryConfig::disabled())
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
                    KinesisError::AccessDenied { stream, endpoint, detail: message }
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
            SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) => {
                KinesisError::Unreachable { stream, endpoint, detail }
            }
            _ => KinesisError::Failed { stream, endpoint, detail },
        }
    }
}

/// Where requests to `service` (`KINESIS`, `S3`) go when not to AWS's regional endpoint:
/// `AWS_ENDPOINT_URL_<SERVICE>`, else `AWS_ENDPOINT_URL`, else the shared configuration's.
pub fn endpoint_override(config: &SdkConfig, service: &str) -> Option<String> {
    std::env::var(format!("AWS_ENDPOINT_URL_{service}"))
        .or_else(|_| std::env::var("AWS_ENDPOINT_URL"))
        .ok()
        .or_else(|| config.endpoint_url().map(str::to_string))
}

/// The regional endpoint of `service` (such as `S3`), in words for messages.
pub fn regional_endpoint(config: &SdkConfig, service: &str) -> String {
    let region = config.region().map_or("(no region)".to_string(), |r| r.to_string());
    format!("the {service} endpoint of region {region}")
}

/// The first error of type `T` in `error`'s chain of causes.
pub fn cause<'a, T: std::error::Error + 'static>(
    error: &'a (dyn std::error::Error + 'static),
) -> Option<&'a T> {
    let mut next = Some(error);
    while let Some(e) = next {
        if let Some(found) = e.downcast_ref::<T>() {
            return Some(found);
        }
        next = e.source();
    }
    None
}

/// An SDK error with its causes (the SDK's own `DisplayErrorContext`), on one line: the causes
/// name credential and connection problems, and an error message should be one line.
pub fn describe(error: &(dyn std::error::Error + 'static)) -> String {
    one_line(&DisplayErrorContext(error).to_string())
}

/// `text` with every run of whitespace, line breaks included, made one space.
pub fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Whether a failed request is worth retrying: throttling, a busy or unreachable service.
pub fn is_transient<E, R>(error: &SdkError<E, R>) -> bool
where
    E: ProvideErrorMetadata,
{
    match error {
        SdkError::ServiceError(service) => {
            is_throttling(service.err().code())
                || matches!(service.err().code(), Some("InternalFailure" | "ServiceUnavailable"))
        }
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) | SdkError::ResponseError(_) => true,
        _ => false,
    }
}

/// Whether an error code says the call was refused for throughput.
pub fn is_throttling(code: Option<&str>) -> bool {
    matches!(
        code,
        Some(
            "ProvisionedThroughputExceededException"
                | "LimitExceededException"
                | "ThrottlingException"
                | "KMSThrottlingException"
        )
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_sdk_makes_one_attempt_per_call_so_weirs_loops_retry_and_count_each_failure() {
        let config = aws_config::SdkConfig::builder().behavior_version(BehaviorVersion::latest()).build();
        let kinesis = Kinesis::new(&config);
        let retry = kinesis.client.config().retry_config().expect("a retry configuration");
        assert_eq!(retry.max_attempts(), 1);
    }
}

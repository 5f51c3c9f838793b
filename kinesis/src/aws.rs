//! AWS access, the AWS way: credentials from the SDK's default chain (environment, profile,
//! instance or task role), the region from the usual places or `--region`, endpoints from
//! `AWS_ENDPOINT_URL` / `AWS_ENDPOINT_URL_KINESIS` (so one binary serves AWS and emulators), and
//! SDK errors turned into one line that names the stream or endpoint and the fix.

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_kinesis::error::SdkError;

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

/// Where Kinesis requests go, for messages.
pub fn kinesis_endpoint(config: &SdkConfig) -> String {
    std::env::var("AWS_ENDPOINT_URL_KINESIS")
        .or_else(|_| std::env::var("AWS_ENDPOINT_URL"))
        .ok()
        .or_else(|| config.endpoint_url().map(str::to_string))
        .unwrap_or_else(|| {
            let region = config.region().map_or("(no region)".to_string(), |r| r.to_string());
            format!("the Kinesis endpoint of region {region}")
        })
}

/// An error and its causes on one line, `: `-separated: the SDK names credential and
/// connection problems only in the causes.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut chain = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        chain.push_str(": ");
        chain.push_str(&cause.to_string());
        source = cause.source();
    }
    chain
}

/// One line saying what went wrong with a request about `stream`, and what to do.
pub fn explain<E, R>(error: &SdkError<E, R>, stream: &Stream, endpoint: &str) -> String
where
    E: aws_sdk_kinesis::error::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    // The whole chain of causes, where credential and connection problems are named.
    let chain = error_chain(error);
    if let SdkError::ServiceError(service) = error {
        let e = service.err();
        return match e.code() {
            Some("ResourceNotFoundException") => format!(
                "stream {stream} does not exist at {endpoint}: create it, or check the name and the region (--region, AWS_REGION)"
            ),
            Some("AccessDeniedException") | Some("UnrecognizedClientException") => format!(
                "access to stream {stream} was denied at {endpoint} ({}): check the credentials and their permissions",
                e.message().unwrap_or("no detail")
            ),
            code => format!(
                "Kinesis refused a request for stream {stream} at {endpoint}: {} {}",
                code.unwrap_or("error"),
                e.message().unwrap_or("")
            ),
        };
    }
    if chain.contains("credentials") || chain.contains("Credentials") {
        return format!(
            "no AWS credentials for stream {stream}: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE, or run with a role ({chain})"
        );
    }
    if chain.contains("region") && !chain.contains("endpoint") {
        return format!("no AWS region for stream {stream}: pass --region or set AWS_REGION ({chain})");
    }
    match error {
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) => format!(
            "cannot reach Kinesis at {endpoint} for stream {stream}: {chain}; check the endpoint (AWS_ENDPOINT_URL_KINESIS) and the network"
        ),
        _ => format!("request for stream {stream} at {endpoint} failed: {chain}"),
    }
}

/// Whether a failed request is worth retrying: throttling, a busy or unreachable service.
pub fn is_transient<E, R>(error: &SdkError<E, R>) -> bool
where
    E: aws_sdk_kinesis::error::ProvideErrorMetadata,
{
    match error {
        SdkError::ServiceError(service) => matches!(
            service.err().code(),
            Some(
                "ProvisionedThroughputExceededException"
                    | "LimitExceededException"
                    | "ThrottlingException"
                    | "InternalFailure"
                    | "ServiceUnavailable"
                    | "KMSThrottlingException"
            )
        ),
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) | SdkError::ResponseError(_) => true,
        _ => false,
    }
}

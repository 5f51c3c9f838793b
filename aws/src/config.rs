//! The shared AWS configuration and where each service's requests go.

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::provider::SharedCredentialsProvider;

/// Load the shared AWS configuration, overriding the region if `region` is given.
pub async fn config(region: Option<&str>) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(region) = region {
        loader = loader.region(Region::new(region.to_string()));
    }
    loader.load().await
}

/// The shared configuration with the credentials of `role_arn`, assumed (and renewed before
/// they expire) with the default chain's credentials: for a command that writes with one role
/// and signs with another, as the pipeline's publish step does (`weir deploy --role-arn`).
pub async fn config_as(region: Option<&str>, role_arn: Option<&str>) -> SdkConfig {
    let base = config(region).await;
    let Some(role_arn) = role_arn else { return base };
    let provider = aws_config::sts::AssumeRoleProvider::builder(role_arn)
        .session_name("weir")
        .configure(&base)
        .build()
        .await;
    base.into_builder().credentials_provider(SharedCredentialsProvider::new(provider)).build()
}

/// Where requests to `service` (`KINESIS`, `S3`, `DYNAMODB`) go when not to AWS's regional
/// endpoint: `AWS_ENDPOINT_URL_<SERVICE>`, else `AWS_ENDPOINT_URL`, else the shared
/// configuration's.
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

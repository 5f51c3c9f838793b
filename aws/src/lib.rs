//! weir's AWS layer, under every Kinesis, S3, DynamoDB and KMS call the runtime, the producer and
//! the tools make:
//!
//! - [`config`]: the shared configuration from the SDK's default chain (environment, profile,
//!   instance or task role), the region from the usual places or `--region`, and endpoints from
//!   `AWS_ENDPOINT_URL` / `AWS_ENDPOINT_URL_<SERVICE>`, so one binary serves AWS and emulators;
//! - [`errors`]: what an SDK error says, on one line, and the one [`Transient`] classification
//!   (worth trying again or not) every error type of weir's AWS paths implements;
//! - [`retry`]: the one retry mechanism, backon's exponential backoff with jitter, used through
//!   [`retry::retry`] (a call tried again while its error is transient) or [`retry::Backoff`]
//!   (for the loops that change the request between attempts), each retry counted per
//!   [`Service`].
//!
//! Every client weir builds has the SDK's own retries off: a throttle is retried once, by weir,
//! with weir's backoff, and counted once, not hidden under up to three SDK attempts.

pub mod config;
pub mod errors;
pub mod retry;

pub use aws_config::SdkConfig;
pub use config::{config, config_as, endpoint_override, regional_endpoint};
pub use errors::{Transient, cause, describe, is_throttling, is_transient_code, one_line, operation};
pub use retry::{Backoff, Policy, Service, retry, retry_with};

//! Enhanced fan-out consumers: found by name on a stream or registered, waited for until
//! ACTIVE ([`Consumer::register`]), and deregistered on request ([`Consumer::deregister`]).
//! A consumer is what SubscribeToShard reads as; each has its own 2 MB/s per shard.

use std::time::Duration;

use aws_sdk_kinesis::error::ProvideErrorMetadata;
use aws_sdk_kinesis::types::ConsumerStatus;
use weir_aws::{Policy, Service};

use crate::KinesisError;
use crate::aws::{Kinesis, Stream};

/// Calls of registration are tried this many times (200 ms apart, up to 5 s) before the
/// failure is reported: it runs at start, where a clear error beats waiting.
const CALL_RETRY: Policy = Policy::forever(Duration::from_millis(200), Duration::from_secs(5)).attempts(6);
/// How often a consumer being created or deleted is looked at again.
const STATUS_POLL: Duration = Duration::from_millis(250);
/// How long a consumer may take to become ACTIVE (or to go, when it is being deleted) before
/// weir gives up. AWS takes seconds; a minute more is a fault worth reporting.
pub const ACTIVATION_TIMEOUT: Duration = Duration::from_secs(120);

/// A registered, ACTIVE consumer of a stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Consumer {
    /// Its name, unique per stream.
    pub name: String,
    /// Its ARN: what SubscribeToShard is called with.
    pub arn: String,
    /// The stream's ARN.
    pub stream_arn: String,
}

/// What DescribeStreamConsumer said of a name.
enum Found {
    Missing,
    Present { arn: String, status: ConsumerStatus },
}

impl Consumer {
    /// The consumer `name` of `stream`: reused if it exists, registered if not, and in either
    /// case returned once ACTIVE. A consumer being deleted is waited out and registered again.
    pub async fn register(kinesis: &Kinesis, stream: &Stream, name: &str) -> Result<Self, KinesisError> {
        kinesis.check_region(stream)?;
        let stream_arn = stream_arn(kinesis, stream).await?;
        let deadline = tokio::time::Instant::now() + ACTIVATION_TIMEOUT;
        let mut registered = false;
        loop {
            match describe(kinesis, stream, &stream_arn, name).await? {
                Found::Present { arn, status: ConsumerStatus::Active } => {
                    if registered {
                        tracing::info!(stream = %stream, "registered consumer {name} ({arn})");
                    } else {
                        tracing::info!(stream = %stream, "reading as the existing consumer {name} ({arn})");
                    }
                    return Ok(Self { name: name.to_string(), arn, stream_arn });
                }
                Found::Present { .. } => {}
                Found::Missing => {
                    let call = kinesis
                        .client
                        .register_stream_consumer()
                        .stream_arn(&stream_arn)
                        .consumer_name(name)
                        .send()
                        .await;
                    match call {
                        Ok(_) => registered = true,
                        // Registered by someone else meanwhile, or the old one is still going.
                        Err(e) if e.code() == Some("ResourceInUseException") => {}
                        Err(e) if weir_aws::Transient::is_transient(&e) => {}
                        Err(e) => return Err(kinesis.error(&e, stream)),
                    }
                }
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(KinesisError::ConsumerNotActive {
                    stream: stream.clone(),
                    consumer: name.to_string(),
                    waited: ACTIVATION_TIMEOUT,
                });
            }
            tokio::time::sleep(STATUS_POLL).await;
        }
    }

    /// Deregister the consumer (its subscriptions end). Done when it is gone or going.
    pub async fn deregister(&self, kinesis: &Kinesis, stream: &Stream) -> Result<(), KinesisError> {
        let what = format!("deregister consumer {} of {stream}", self.name);
        let call = weir_aws::retry(Service::Kinesis, CALL_RETRY, &what, || async {
            let call = kinesis.client.deregister_stream_consumer().consumer_arn(&self.arn).send().await;
            call.map_err(|e| kinesis.error(&e, stream))
        })
        .await;
        match call {
            Ok(_) | Err(KinesisError::StreamNotFound { .. }) => {
                tracing::info!(stream = %stream, "deregistered consumer {} ({})", self.name, self.arn);
                Ok(())
            }
            Err(e) => Err(e),
        }
    }
}

/// The stream's ARN (given, or from DescribeStreamSummary).
async fn stream_arn(kinesis: &Kinesis, stream: &Stream) -> Result<String, KinesisError> {
    if let Some(arn) = stream.arn() {
        return Ok(arn);
    }
    let what = format!("describe {stream}");
    let summary = weir_aws::retry(Service::Kinesis, CALL_RETRY, &what, || async {
        let call = kinesis.client.describe_stream_summary().set_stream_name(stream.name()).send().await;
        call.map_err(|e| kinesis.error(&e, stream))
    })
    .await?;
    Ok(summary.stream_description_summary.map(|s| s.stream_arn).unwrap_or_default())
}

async fn describe(
    kinesis: &Kinesis,
    stream: &Stream,
    stream_arn: &str,
    name: &str,
) -> Result<Found, KinesisError> {
    let what = format!("describe consumer {name} of {stream}");
    let call = weir_aws::retry(Service::Kinesis, CALL_RETRY, &what, || async {
        let call =
            kinesis.client.describe_stream_consumer().stream_arn(stream_arn).consumer_name(name).send().await;
        match call {
            Ok(reply) => Ok(reply
                .consumer_description
                .map(|c| Found::Present { arn: c.consumer_arn, status: c.consumer_status })),
            Err(e) if e.code() == Some("ResourceNotFoundException") => Ok(Some(Found::Missing)),
            Err(e) => Err(kinesis.error(&e, stream)),
        }
    })
    .await?;
    Ok(call.unwrap_or(Found::Missing))
}

//! `weir_aws_retries_total{service}`: calls to Kinesis, S3, DynamoDB and KMS tried again by weir's
//! one retry mechanism (`weir_aws::retry`), read from its per-process counters at each scrape.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use weir_aws::Service;
use weir_aws::retry::retries;

/// The collector of `weir_aws_retries_total`.
#[derive(Debug)]
pub struct AwsRetries;

impl Collector for AwsRetries {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let counter = ConstCounter::new(0u64);
        let mut family = encoder.encode_descriptor(
            "weir_aws_retries",
            "Calls to an AWS service tried again after a transient failure (throttled, busy, unreachable)",
            None,
            counter.metric_type(),
        )?;
        for service in Service::ALL {
            let labels = [("service", service.name())];
            ConstCounter::new(retries(service)).encode(family.encode_family(&labels)?)?;
        }
        Ok(())
    }
}

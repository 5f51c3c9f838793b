//! Metrics as CloudWatch Embedded Metric Format (EMF) lines: one JSON object per
//! `--stats-interval`, written to standard error, which the awslogs driver of an ECS task (or
//! the CloudWatch agent) sends to CloudWatch Logs, where each line becomes metrics with no
//! agent or API call from weir.
//!
//! A line carries the `_aws` metadata (timestamp, namespace, one dimension set, the metric
//! definitions), the dimension values, and one value per metric. Counters are the increase
//! since the previous line (CloudWatch sums them per period); gauges (`ShardsReading`,
//! `MillisBehindLatest`: the furthest-behind shard, `CheckpointAge`: seconds since the last
//! checkpoint, left out before the first) are the value now. In a lease group a second
//! directive publishes `LeasesHeld` per worker (dimensions `Source` and `Worker`).

use serde_json::{Map, Value, json};

use super::Snapshot;

/// The CloudWatch namespace of weir's metrics.
pub const NAMESPACE: &str = "weir";

/// Writes EMF lines for one running weir.
#[derive(Clone, Debug)]
pub struct EmfFormat {
    /// Dimension names and values, such as `("Source", "kinesis://trades")`.
    pub dimensions: Vec<(String, String)>,
    /// In a lease group, this worker's id: `LeasesHeld` is then published per worker too.
    pub worker: Option<String>,
}

/// A metric: its EMF name, unit, and value from the snapshots (`now`, `before`); None leaves
/// it out of the line (a checkpoint age before the first checkpoint).
struct Definition {
    name: &'static str,
    unit: &'static str,
    value: fn(&Snapshot, &Snapshot) -> Option<f64>,
}

fn delta(now: u64, before: u64) -> Option<f64> {
    Some(now.saturating_sub(before) as f64)
}

/// A counter's increase since the last line.
macro_rules! counter {
    ($name:literal, $field:ident) => {
        Definition { name: $name, unit: "Count", value: |n, b| delta(n.$field, b.$field) }
    };
}

const METRICS: &[Definition] = &[
    counter!("RecordsIn", records_in),
    counter!("RecordsOut", records_out),
    counter!("DeadLetters", dead_letters),
    counter!("OperatorRestarts", operator_restarts),
    counter!("OperatorSwaps", operator_swaps),
    counter!("OperatorRollbacks", operator_rollbacks),
    counter!("VersionsRefused", versions_refused),
    counter!("ReadThrottles", read_throttles),
    counter!("SinkRecords", sink_records),
    counter!("SinkRetries", sink_retries),
    Definition { name: "ShardsReading", unit: "Count", value: |n, _| Some(n.shards_reading as f64) },
    counter!("Resubscriptions", resubscriptions),
    Definition {
        name: "MillisBehindLatest",
        unit: "Milliseconds",
        value: |n, _| Some(n.furthest_behind.as_ref().map_or(0.0, |(_, ms)| *ms as f64)),
    },
    counter!("Checkpoints", checkpoints),
    counter!("CheckpointFailures", checkpoint_failures),
    Definition {
        name: "CheckpointAge",
        unit: "Seconds",
        value: |n, _| n.checkpoint_age_ms.map(|ms| ms as f64 / 1e3),
    },
    counter!("LeasesTaken", leases_taken),
    counter!("LeasesStolen", leases_stolen),
    counter!("LeasesLost", leases_lost),
    counter!("ShadowRecordsCompared", shadow_compared),
    counter!("ShadowDifferences", shadow_differences),
];

/// The metric published per worker too (dimensions Source and Worker), in a lease group.
const PER_WORKER: Definition =
    Definition { name: "LeasesHeld", unit: "Count", value: |n, _| Some(n.leases_held as f64) };

impl EmfFormat {
    /// The EMF line for the interval from `before` to `now`, stamped `timestamp_ms`.
    pub fn line(&self, now: &Snapshot, before: &Snapshot, timestamp_ms: i64) -> String {
        let dimension_names: Vec<&str> = self.dimensions.iter().map(|(k, _)| k.as_str()).collect();
        let values: Vec<(&Definition, f64)> =
            METRICS.iter().filter_map(|m| (m.value)(now, before).map(|v| (m, v))).collect();
        let definitions = |metrics: &[&Definition]| -> Vec<Value> {
            metrics.iter().map(|m| json!({ "Name": m.name, "Unit": m.unit })).collect()
        };
        let shared: Vec<&Definition> = values.iter().map(|(m, _)| *m).collect();
        let mut directives = vec![json!({
            "Namespace": NAMESPACE,
            "Dimensions": [dimension_names],
            "Metrics": definitions(&shared),
        })];
        let mut line = Map::new();
        if let Some(worker) = &self.worker {
            let mut names = dimension_names.clone();
            names.push("Worker");
            directives.push(json!({
                "Namespace": NAMESPACE,
                "Dimensions": [names],
                "Metrics": definitions(&[&PER_WORKER]),
            }));
            line.insert("Worker".into(), Value::String(worker.clone()));
            line.insert(PER_WORKER.name.into(), json!((PER_WORKER.value)(now, before)));
        }
        line.insert("_aws".into(), json!({ "Timestamp": timestamp_ms, "CloudWatchMetrics": directives }));
        for (name, value) in &self.dimensions {
            line.insert(name.clone(), Value::String(value.clone()));
        }
        for (metric, value) in values {
            line.insert(metric.name.into(), json!(value));
        }
        Value::Object(line).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_has_the_metadata_the_dimensions_and_the_increase_of_each_counter() {
        let format =
            EmfFormat { dimensions: vec![("Source".into(), "kinesis://trades".into())], worker: None };
        let before = Snapshot { records_in: 100, dead_letters: 1, ..Snapshot::default() };
        let now = Snapshot {
            records_in: 350,
            dead_letters: 1,
            shards_reading: 4,
            furthest_behind: Some(("shard-1".into(), 1200)),
            ..Snapshot::default()
        };
        let line: Value = serde_json::from_str(&format.line(&now, &before, 1_795_600_800_000)).unwrap();
        let aws = &line["_aws"];
        assert_eq!(aws["Timestamp"], 1_795_600_800_000i64);
        let directive = &aws["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], "weir");
        assert_eq!(directive["Dimensions"], json!([["Source"]]));
        assert_eq!(line["Source"], "kinesis://trades");
        assert_eq!(
            directive["Metrics"].as_array().unwrap().len(),
            METRICS.len() - 1,
            "no checkpoint age yet"
        );
        assert!(line.get("CheckpointAge").is_none());
        assert_eq!(aws["CloudWatchMetrics"].as_array().unwrap().len(), 1, "no worker, no second directive");
        assert_eq!(line["RecordsIn"], 250.0);
        assert_eq!(line["DeadLetters"], 0.0);
        assert_eq!(line["ShardsReading"], 4.0);
        assert_eq!(line["MillisBehindLatest"], 1200.0);
    }

    #[test]
    fn a_lease_worker_publishes_leases_held_per_worker_and_the_checkpoint_age_once_there_is_one() {
        let format = EmfFormat {
            dimensions: vec![("Source".into(), "kinesis://trades".into())],
            worker: Some("worker-a".into()),
        };
        let before = Snapshot { leases_stolen: 1, checkpoints: 4, ..Snapshot::default() };
        let now = Snapshot {
            leases_held: 3,
            leases_stolen: 2,
            checkpoints: 6,
            checkpoint_failures: 1,
            checkpoint_age_ms: Some(2_500),
            ..Snapshot::default()
        };
        let line: Value = serde_json::from_str(&format.line(&now, &before, 0)).unwrap();
        let directives = line["_aws"]["CloudWatchMetrics"].as_array().unwrap();
        assert_eq!(directives[0]["Metrics"].as_array().unwrap().len(), METRICS.len());
        assert_eq!(directives[1]["Dimensions"], json!([["Source", "Worker"]]));
        assert_eq!(directives[1]["Metrics"], json!([{ "Name": "LeasesHeld", "Unit": "Count" }]));
        assert_eq!(line["Worker"], "worker-a");
        assert_eq!(line["LeasesHeld"], 3.0);
        assert_eq!(line["LeasesStolen"], 1.0);
        assert_eq!(line["Checkpoints"], 2.0);
        assert_eq!(line["CheckpointFailures"], 1.0);
        assert_eq!(line["CheckpointAge"], 2.5);
    }
}

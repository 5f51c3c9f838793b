//! Metrics as CloudWatch Embedded Metric Format (EMF) lines: one JSON object per
//! `--stats-interval`, written to standard error, which the awslogs driver of an ECS task (or
//! the CloudWatch agent) sends to CloudWatch Logs, where each line becomes metrics with no
//! agent or API call from weir.
//!
//! A line carries the `_aws` metadata (timestamp, namespace, one dimension set, the metric
//! definitions), the dimension values, and one value per metric. Counters are the increase
//! since the previous line (CloudWatch sums them per period); gauges (`ShardsReading`,
//! `MillisBehindLatest`: the furthest-behind shard) are the value now.

use serde_json::{Map, Value, json};

use super::Snapshot;

/// The CloudWatch namespace of weir's metrics.
pub const NAMESPACE: &str = "weir";

/// Writes EMF lines for one running weir.
#[derive(Clone, Debug)]
pub struct EmfFormat {
    /// Dimension names and values, such as `("Source", "kinesis://trades")`.
    pub dimensions: Vec<(String, String)>,
}

/// A metric: its EMF name, unit, and value from the snapshots (`now`, `before`).
struct Definition {
    name: &'static str,
    unit: &'static str,
    value: fn(&Snapshot, &Snapshot) -> f64,
}

fn delta(now: u64, before: u64) -> f64 {
    now.saturating_sub(before) as f64
}

const METRICS: &[Definition] = &[
    Definition { name: "RecordsIn", unit: "Count", value: |n, b| delta(n.records_in, b.records_in) },
    Definition { name: "RecordsOut", unit: "Count", value: |n, b| delta(n.records_out, b.records_out) },
    Definition { name: "DeadLetters", unit: "Count", value: |n, b| delta(n.dead_letters, b.dead_letters) },
    Definition {
        name: "OperatorRestarts",
        unit: "Count",
        value: |n, b| delta(n.operator_restarts, b.operator_restarts),
    },
    Definition {
        name: "OperatorSwaps",
        unit: "Count",
        value: |n, b| delta(n.operator_swaps, b.operator_swaps),
    },
    Definition {
        name: "OperatorRollbacks",
        unit: "Count",
        value: |n, b| delta(n.operator_rollbacks, b.operator_rollbacks),
    },
    Definition {
        name: "VersionsRefused",
        unit: "Count",
        value: |n, b| delta(n.versions_refused, b.versions_refused),
    },
    Definition {
        name: "ReadThrottles",
        unit: "Count",
        value: |n, b| delta(n.read_throttles, b.read_throttles),
    },
    Definition { name: "SinkRecords", unit: "Count", value: |n, b| delta(n.sink_records, b.sink_records) },
    Definition { name: "SinkRetries", unit: "Count", value: |n, b| delta(n.sink_retries, b.sink_retries) },
    Definition { name: "ShardsReading", unit: "Count", value: |n, _| n.shards_reading as f64 },
    Definition {
        name: "Resubscriptions",
        unit: "Count",
        value: |n, b| delta(n.resubscriptions, b.resubscriptions),
    },
    Definition {
        name: "MillisBehindLatest",
        unit: "Milliseconds",
        value: |n, _| n.furthest_behind.as_ref().map_or(0.0, |(_, ms)| *ms as f64),
    },
];

impl EmfFormat {
    /// The EMF line for the interval from `before` to `now`, stamped `timestamp_ms`.
    pub fn line(&self, now: &Snapshot, before: &Snapshot, timestamp_ms: i64) -> String {
        let dimension_names: Vec<&str> = self.dimensions.iter().map(|(k, _)| k.as_str()).collect();
        let definitions: Vec<Value> =
            METRICS.iter().map(|m| json!({ "Name": m.name, "Unit": m.unit })).collect();
        let mut line = Map::new();
        line.insert(
            "_aws".into(),
            json!({
                "Timestamp": timestamp_ms,
                "CloudWatchMetrics": [{
                    "Namespace": NAMESPACE,
                    "Dimensions": [dimension_names],
                    "Metrics": definitions,
                }],
            }),
        );
        for (name, value) in &self.dimensions {
            line.insert(name.clone(), Value::String(value.clone()));
        }
        for metric in METRICS {
            line.insert(metric.name.into(), json!((metric.value)(now, before)));
        }
        Value::Object(line).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_has_the_metadata_the_dimensions_and_the_increase_of_each_counter() {
        let format = EmfFormat { dimensions: vec![("Source".into(), "kinesis://trades".into())] };
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
        assert_eq!(directive["Metrics"].as_array().unwrap().len(), METRICS.len());
        assert_eq!(line["RecordsIn"], 250.0);
        assert_eq!(line["DeadLetters"], 0.0);
        assert_eq!(line["ShardsReading"], 4.0);
        assert_eq!(line["MillisBehindLatest"], 1200.0);
    }
}

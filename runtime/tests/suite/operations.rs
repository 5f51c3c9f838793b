//! What a platform team running weir in a container reads and sets: every option from the
//! environment, JSON log lines, and metrics as CloudWatch Embedded Metric Format lines, each
//! through the `weir` binary.

use crate::util;

use util::*;
use weir_producer::Tickers;

#[test]
fn a_run_configured_only_by_environment_variables_equals_the_native_operator() {
    let dir = tempfile::tempdir().unwrap();
    let input = trade_lines(20_000, Tickers::Synthetic(20));
    std::fs::write(dir.path().join("trades.jsonl"), &input).unwrap();
    let out = weir()
        .current_dir(dir.path())
        .env("WEIR_SOURCE", "trades.jsonl")
        .env("WEIR_SINK", "out.jsonl")
        .env("WEIR_DEAD_LETTER", "dead.jsonl")
        .env("WEIR_SET", "window=30s,slide=5s")
        .env("WEIR_BATCH_SIZE", "100")
        .arg("run")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let results = std::fs::read_to_string(dir.path().join("out.jsonl")).unwrap();
    let expected = native_per_ticker(&input, &[("window", "30s"), ("slide", "5s")]);
    assert!(!expected.is_empty());
    assert_eq!(per_ticker(results.lines()), expected);
    assert!(dir.path().join("dead.jsonl").exists(), "WEIR_DEAD_LETTER was used");
}

#[test]
fn json_logs_are_one_object_per_line_with_level_time_and_message() {
    let out = weir()
        .env("WEIR_LOG_FORMAT", "json")
        .env("WEIR_LOG", "info")
        .args(["run", "--count", "2000", "--rate", "0"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert!(lines.len() >= 2, "the operator load and the end are logged: {stderr}");
    for line in lines {
        let object: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert_eq!(object["level"], "INFO", "{line}");
        assert!(object["timestamp"].as_str().is_some_and(|t| t.starts_with("20")), "{line}");
        assert!(object["fields"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{line}");
    }
    let text = weir().args(["run", "--count", "10", "--rate", "0"]).env("WEIR_LOG", "info").output().unwrap();
    let text = String::from_utf8_lossy(&text.stderr);
    assert!(text.lines().all(|l| !l.starts_with('{')), "text by default: {text}");
    assert!(!text.contains('\u{1b}'), "no colour codes when standard error is not a terminal: {text}");
}

/// Check `line` against the Embedded Metric Format specification's required structure; the
/// metric values by name.
fn emf_values(line: &serde_json::Value) -> std::collections::BTreeMap<String, f64> {
    let aws = line["_aws"].as_object().expect("an _aws member");
    assert!(aws["Timestamp"].as_i64().is_some_and(|t| t > 1_700_000_000_000), "Timestamp in ms: {line}");
    let directives = aws["CloudWatchMetrics"].as_array().expect("CloudWatchMetrics is an array");
    assert!(!directives.is_empty());
    let mut values = std::collections::BTreeMap::new();
    for directive in directives {
        assert!(directive["Namespace"].as_str().is_some_and(|n| !n.is_empty()), "{directive}");
        for set in directive["Dimensions"].as_array().expect("Dimensions is an array") {
            let set = set.as_array().expect("a dimension set is an array");
            assert!(set.len() <= 30);
            for name in set {
                let name = name.as_str().expect("dimension names are strings");
                assert!(line[name].is_string(), "dimension {name} has a string value: {line}");
            }
        }
        let metrics = directive["Metrics"].as_array().expect("Metrics is an array");
        assert!(!metrics.is_empty() && metrics.len() <= 100);
        for metric in metrics {
            let name = metric["Name"].as_str().expect("every metric has a Name");
            let value = line[name].as_f64().unwrap_or_else(|| panic!("metric {name} has a number: {line}"));
            values.insert(name.to_string(), value);
        }
    }
    values
}

#[test]
fn emf_lines_meet_the_format_and_count_every_record_once() {
    let dir = tempfile::tempdir().unwrap();
    let input = trade_lines(30_000, Tickers::Default);
    let mut with_bad = input.clone();
    with_bad.extend_from_slice(b"not a trade\n");
    std::fs::write(dir.path().join("trades.jsonl"), &with_bad).unwrap();
    let out = weir()
        .current_dir(dir.path())
        .env("WEIR_LOG", "warn")
        .args(["run", "--source", "trades.jsonl", "--sink", "out.jsonl", "--dead-letter", "dead.jsonl"])
        .args(["--metrics-format", "emf", "--stats-interval", "20ms"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<serde_json::Value> = stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not an EMF line ({e}): {l}")))
        .collect();
    assert!(!lines.is_empty(), "at least the final report");
    let (mut records_in, mut records_out, mut dead) = (0.0, 0.0, 0.0);
    for line in &lines {
        let values = emf_values(line);
        assert_eq!(line["_aws"]["CloudWatchMetrics"][0]["Namespace"], "weir");
        assert_eq!(line["Source"], "trades.jsonl");
        records_in += values["RecordsIn"];
        records_out += values["RecordsOut"];
        dead += values["DeadLetters"];
    }
    let written = std::fs::read_to_string(dir.path().join("out.jsonl")).unwrap().lines().count();
    assert_eq!(records_in, 30_001.0, "every record counted once over {} lines", lines.len());
    assert_eq!(records_out, written as f64);
    assert_eq!(dead, 1.0);
}

#[test]
fn a_lease_workers_emf_lines_carry_its_leases_per_worker_and_its_checkpoints() {
    use util::kinesis::{create_stream, endpoint, produce};
    let (trades, results) = (create_stream("emf-trades", 2), create_stream("emf-results", 1));
    produce(&endpoint(), &trades, 2_000, 5, T0);
    let mut group = util::leases::LeaseGroup::new(endpoint(), trades, results);
    let out = group
        .run()
        .args(["--start-position", "trim-horizon", "--until-idle", "3s", "--checkpoint-interval", "500ms"])
        .args(["--metrics-format", "emf", "--stats-interval", "200ms"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<serde_json::Value> = stderr.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    let values: Vec<_> = lines.iter().map(emf_values).collect();
    let sum = |name: &str| values.iter().map(|v| v.get(name).copied().unwrap_or(0.0)).sum::<f64>();
    assert!(lines.iter().all(|l| l["Worker"] == "w1"), "every line names the worker");
    assert!(values.iter().any(|v| v.get("LeasesHeld") == Some(&2.0)), "both shards held at some point");
    assert_eq!(sum("LeasesTaken"), 2.0, "each shard's lease taken once");
    assert_eq!(sum("LeasesStolen") + sum("LeasesLost"), 0.0);
    assert!(sum("Checkpoints") >= 1.0, "checkpoints counted");
    assert_eq!(sum("CheckpointFailures"), 0.0);
    let ages: Vec<f64> = values.iter().filter_map(|v| v.get("CheckpointAge").copied()).collect();
    assert!(
        !ages.is_empty() && ages.iter().all(|a| *a < 60.0),
        "an age once there is a checkpoint: {ages:?}"
    );
    assert!(
        values.first().is_some_and(|v| !v.contains_key("CheckpointAge")),
        "none before the first checkpoint"
    );
}

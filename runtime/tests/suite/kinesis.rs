//! weir against a Kinesis emulator speaking the wire protocol (ferrokinesis, started by
//! `scripts/with-emulators`, which `scripts/test` uses): results written with `--sink
//! kinesis://`, read back with `weir tail`, and the one-line errors for a missing stream, an
//! unreachable endpoint and missing credentials.

use crate::util;

use std::collections::BTreeMap;
use std::process::Command;

use util::kinesis::*;
use util::*;

#[test]
fn results_written_to_kinesis_read_back_equal_the_native_operator_key_by_key_in_order() {
    let stream = create_stream("results", 3);
    let dir = tempfile::tempdir().unwrap();
    let input = trade_lines(40_000, weir_producer::Tickers::Synthetic(40));
    std::fs::write(dir.path().join("trades.jsonl"), &input).unwrap();
    let out = weir()
        .current_dir(dir.path())
        .args(["run", "--source", "trades.jsonl", "--sink", &format!("kinesis://{stream}")])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let expected = native_by_key(&input);
    let total: usize = expected.values().map(Vec::len).sum();
    let records = tail(&stream, &[]);
    assert_eq!(records.len(), total, "every result is in the stream exactly once");
    let mut got: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut shard_of: BTreeMap<String, String> = BTreeMap::new();
    for r in &records {
        let key = r["partition_key"].as_str().unwrap().to_string();
        let shard = r["shard_id"].as_str().unwrap().to_string();
        assert_eq!(
            shard_of.entry(key.clone()).or_insert_with(|| shard.clone()),
            &shard,
            "a key stays in one shard"
        );
        got.entry(key).or_default().push(r["data"].as_str().unwrap().to_string());
    }
    assert_eq!(got, expected, "per key, the same results in the same order");
    assert!(
        shard_of.values().collect::<std::collections::BTreeSet<_>>().len() > 1,
        "keys spread over shards"
    );

    assert_eq!(tail(&stream, &["--limit", "7"]).len(), 7);
}

/// What a command that failed printed: exit code 1 and exactly one line on standard error.
fn one_line_error(out: &std::process::Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
    stderr
}

#[test]
fn a_missing_stream_is_one_line_naming_it() {
    let _ = endpoint();
    let out = weir().args(["run", "--count", "10", "--sink", "kinesis://no-such-stream"]).output().unwrap();
    let stderr = one_line_error(&out);
    assert!(
        stderr.contains("stream kinesis://no-such-stream does not exist at http://127.0.0.1:"),
        "{stderr}"
    );
    let out = weir().args(["tail", "kinesis://no-such-stream"]).output().unwrap();
    assert!(one_line_error(&out).contains("does not exist"));
}

#[test]
fn an_unreachable_endpoint_is_one_line_naming_it() {
    let out = weir()
        .env("AWS_ENDPOINT_URL_KINESIS", "http://127.0.0.1:9")
        .args(["run", "--count", "10", "--sink", "kinesis://anything"])
        .output()
        .unwrap();
    let stderr = one_line_error(&out);
    assert!(
        stderr.contains("cannot reach Kinesis at http://127.0.0.1:9 for stream kinesis://anything"),
        "{stderr}"
    );
}

#[test]
fn missing_credentials_are_one_line_with_the_fix() {
    let _ = endpoint();
    let mut cmd: Command = weir();
    without_aws_credentials(&mut cmd);
    let out = cmd.args(["run", "--count", "10", "--sink", "kinesis://anything"]).output().unwrap();
    let stderr = one_line_error(&out);
    assert!(stderr.contains("no AWS credentials for stream kinesis://anything"), "{stderr}");
}

#[test]
fn a_missing_region_is_one_line_with_the_fix() {
    let _ = endpoint();
    let mut cmd: Command = weir();
    without_aws_credentials(&mut cmd).env_remove("AWS_REGION").env_remove("AWS_DEFAULT_REGION");
    let out = cmd.args(["run", "--count", "10", "--sink", "kinesis://anything"]).output().unwrap();
    let stderr = one_line_error(&out);
    assert!(
        stderr.contains("no AWS region for stream kinesis://anything: pass --region or set AWS_REGION"),
        "{stderr}"
    );
}

#[test]
fn generated_trades_written_into_a_throttled_stream_arrive_once_each_and_in_order_per_key() {
    let endpoint = throttled_endpoint();
    let stream = create_stream_at(&endpoint, "throttled", 1);
    // The fixture operator echoes every trade, so 20,000 trades are 20,000 records to write:
    // far more than the 1,000 records/s a shard takes.
    let out = weir()
        .env("AWS_ENDPOINT_URL_KINESIS", &endpoint)
        .env("WEIR_LOG", "weir=debug")
        .args(["run", "--count", "20000", "--rate", "0", "--operator"])
        .arg(component("test_fixture"))
        .args(["--sink", &format!("kinesis://{stream}")])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("PutRecords entries retried"), "the emulator throttled some writes: {stderr}");

    let records = tail_at(&endpoint, &stream, &[]);
    // The fixture also emits one count per key at the end of the input.
    let trades: Vec<&serde_json::Value> =
        records.iter().filter(|r| !r["data"].as_str().unwrap().starts_with("count=")).collect();
    assert_eq!(trades.len(), 20_000, "every record written once");
    let mut last: BTreeMap<String, String> = BTreeMap::new();
    for r in trades {
        let key = r["partition_key"].as_str().unwrap().to_string();
        let trade: serde_json::Value = serde_json::from_str(r["data"].as_str().unwrap()).unwrap();
        let time = trade["EVENT_TIME"].as_str().unwrap().to_string();
        if let Some(previous) = last.insert(key.clone(), time.clone()) {
            assert!(previous < time, "{key}: {time} came after {previous}");
        }
    }
}

//! weir against a Kinesis emulator speaking the wire protocol (ferrokinesis, started by
//! `scripts/with-emulators`, which `scripts/test` uses): results written with `--sink
//! kinesis://`, read back with `weir tail`, and the one-line errors for a missing stream, an
//! unreachable endpoint and missing credentials.

mod util;

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

#[test]
fn a_missing_stream_is_one_line_naming_it() {
    let _ = endpoint();
    let out = weir().args(["run", "--count", "10", "--sink", "kinesis://no-such-stream"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("stream kinesis://no-such-stream does not exist at http://127.0.0.1:"),
        "{stderr}"
    );
    let out = weir().args(["tail", "kinesis://no-such-stream"]).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not exist"));
}

#[test]
fn an_unreachable_endpoint_is_one_line_naming_it() {
    let out = weir()
        .env("AWS_ENDPOINT_URL_KINESIS", "http://127.0.0.1:9")
        .args(["run", "--count", "10", "--sink", "kinesis://anything"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cannot reach Kinesis at http://127.0.0.1:9 for stream kinesis://anything"),
        "{stderr}"
    );
}

#[test]
fn missing_credentials_are_one_line_with_the_fix() {
    let _ = endpoint();
    let mut cmd: Command = weir();
    cmd.env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_PROFILE")
        .env("AWS_CONFIG_FILE", "/nonexistent/weir-test-config")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/weir-test-credentials")
        .env("AWS_EC2_METADATA_DISABLED", "true");
    let out = cmd.args(["run", "--count", "10", "--sink", "kinesis://anything"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no AWS credentials for stream kinesis://anything"), "{stderr}");
}

#[test]
fn under_throttling_nothing_is_lost_and_each_key_keeps_its_order() {
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

//! Bad input through the binaries: a catalogue of records weir cannot make a result of (and a
//! result the Kinesis sink cannot take) mixed into a stream of good trades, read with
//! `--dead-letter` a Kinesis stream, an S3 prefix or a file. Each bad record is dead-lettered
//! exactly once, with its reason, its shard and sequence number, and the record; the good
//! trades give the native operator's
//! windows; the run goes on to its end.

use crate::util;

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_kinesis::primitives::Blob;
use util::kinesis::*;
use util::process::Weir;
use util::*;

const OUT_OF_ORDERNESS: &str = "out-of-orderness=10s";

fn time(ms: i64) -> String {
    format!("{:.3}", jiff::Timestamp::from_millisecond(ms).unwrap()).trim_end_matches('Z').to_string()
}

fn trade_json(time_ms: i64, ticker: &str, price: &str) -> Vec<u8> {
    format!(r#"{{"EVENT_TIME": "{}", "TICKER": "{ticker}", "PRICE": {price}}}"#, time(time_ms)).into_bytes()
}

/// The catalogue: (partition key, record, what its dead letter's reason says).
fn catalogue() -> Vec<(String, Vec<u8>, &'static str)> {
    let now = T0 + 3_000;
    let mut big = b"{\"EVENT_TIME\": ".to_vec();
    big.resize((1 << 20) - 3, b'x');
    vec![
        ("bad-1".into(), br#"{"EVENT_TIME": "2026-11-25T10:00:03.000", "TICKER": "AMZN", "#.to_vec(), "EOF"),
        (
            "bad-2".into(),
            br#"{"EVENT_TIME": "2026-11-25T10:00:03.000", "TICKER": "AMZN"}"#.to_vec(),
            "missing field \"PRICE\"",
        ),
        ("bad-3".into(), trade_json(now, "AMZN", "\"abc\""), "invalid type"),
        ("bad-4".into(), trade_json(now, "AMZN", "NaN"), "expected value"),
        ("bad-5".into(), trade_json(now, "AMZN", "1e999"), "out of range"),
        ("bad-6".into(), trade_json(now, "AMZN", "-5"), "is not a price"),
        ("bad-7".into(), trade_json(now, "", "5"), "is empty"),
        ("big".into(), big, "expected value"),
        ("bad-9".into(), vec![0xff, 0xfe, b'{', 0x00, 0x80], "expected value"),
        ("bad-10".into(), trade_json(221_845_392_000_000, "AMZN", "5"), "ahead of processing time"),
        ("bad-11".into(), trade_json(0, "AMZN", "5"), "late"),
        ("bad-12".into(), trade_json(T0 - 120_000, "AMZN", "5"), "late"),
    ]
}

/// A trade whose result the Kinesis sink cannot write: its ticker, the result's partition key,
/// has 300 characters (Kinesis takes 1 to 256).
fn long_ticker() -> String {
    "L".repeat(300)
}

/// Where the dead letters go, and how to read them back.
enum Destination {
    Kinesis(String),
    S3 { bucket: String },
    File(tempfile::TempDir),
}

impl Destination {
    fn location(&self) -> String {
        match self {
            Destination::Kinesis(stream) => format!("kinesis://{stream}"),
            Destination::S3 { bucket } => format!("s3://{bucket}/weir/dead-letters"),
            Destination::File(dir) => dir.path().join("dead.jsonl").display().to_string(),
        }
    }

    fn read(&self, endpoint: &str) -> Vec<serde_json::Value> {
        let lines: Vec<Vec<u8>> = match self {
            Destination::Kinesis(stream) => tail_at(endpoint, stream, &[])
                .into_iter()
                .map(|r| r["data"].as_str().unwrap().as_bytes().to_vec())
                .collect(),
            Destination::S3 { bucket } => {
                let rt = runtime();
                let client = util::s3::client(&rt);
                let listed = rt
                    .block_on(client.list_objects_v2().bucket(bucket).prefix("weir/dead-letters/").send())
                    .unwrap();
                let mut lines = Vec::new();
                for object in listed.contents() {
                    let got = rt
                        .block_on(client.get_object().bucket(bucket).key(object.key().unwrap()).send())
                        .unwrap();
                    let bytes = rt.block_on(got.body.collect()).unwrap().into_bytes();
                    lines.extend(bytes.split(|&b| b == b'\n').filter(|l| !l.is_empty()).map(<[u8]>::to_vec));
                }
                lines
            }
            Destination::File(dir) => std::fs::read(dir.path().join("dead.jsonl"))
                .unwrap()
                .split(|&b| b == b'\n')
                .filter(|l| !l.is_empty())
                .map(<[u8]>::to_vec)
                .collect(),
        };
        lines.iter().map(|l| serde_json::from_slice(l).unwrap()).collect()
    }
}

fn every_bad_record_is_dead_lettered_once_with_its_reason(destination: Destination) {
    let endpoint = endpoint();
    let trades = create_stream("catalogue-trades", 1);
    let results = create_stream("catalogue-results", 1);
    // Good trades first, so a watermark exists when the catalogue comes.
    let mut input = produce_keyed(&endpoint, &trades, 2_000, 5, T0, "ticker");
    let mut cmd = weir();
    cmd.env("AWS_ENDPOINT_URL_KINESIS", &endpoint).arg("run");
    cmd.args(["--source", &format!("kinesis://{trades}"), "--start-position", "trim-horizon"])
        .args(["--sink", &format!("kinesis://{results}"), "--set", OUT_OF_ORDERNESS])
        .args(["--dead-letter", &destination.location(), "--until-idle", "5s"]);
    let mut weir = Weir::start(cmd);
    weir.wait_for_metric(
        "weir_records_in_total{shard=\"shardId-000000000000\"}",
        |n| n >= 2_000.0,
        Duration::from_secs(60),
    );

    // The catalogue, the long ticker's trade, then more good trades: the run goes on.
    let rt = runtime();
    let client = client_at(&rt, &endpoint);
    let long = trade_json(T0 + 2_500, &long_ticker(), "7");
    let mut sequence_numbers = BTreeMap::new();
    for (key, data) in
        catalogue().into_iter().map(|(k, d, _)| (k, d)).chain([("long".to_string(), long.clone())])
    {
        let put = client.put_record().stream_name(&trades).partition_key(&key).data(Blob::new(data)).send();
        sequence_numbers.insert(key, rt.block_on(put).unwrap().sequence_number().to_string());
    }
    input.extend_from_slice(&long);
    input.push(b'\n');
    input.extend(produce_keyed(&endpoint, &trades, 2_000, 5, T0 + 3_000, "ticker"));
    let (status, log) = weir.wait(Duration::from_secs(120));
    assert!(status.success(), "{log}");

    // The good trades' windows, window for window.
    let mut expected = native_by_key_with(&input, &[("out-of-orderness", "10s")]);
    let long_results = expected.remove(&long_ticker()).expect("the long ticker has a window");
    assert_same_results(&by_key(&tail_at(&endpoint, &results, &[])), &expected);

    // Every bad record once, with its reason and its bytes; the long ticker's result too.
    let letters = destination.read(&endpoint);
    let mut by_reason: BTreeMap<&str, usize> = BTreeMap::new();
    for (key, data, reason) in catalogue() {
        let found: Vec<&serde_json::Value> =
            letters.iter().filter(|l| l["partition_key"] == key.as_str()).collect();
        assert_eq!(found.len(), 1, "{key} should be dead-lettered once: {found:?}");
        let letter = found[0];
        assert!(letter["reason"].as_str().unwrap().contains(reason), "{key}: {reason:?} not in {letter}");
        assert_eq!(letter["shard_id"], "shardId-000000000000");
        assert_eq!(letter["sequence_number"], sequence_numbers[&key].as_str(), "{key}: {letter}");
        assert!(letter["arrival_time_ms"].as_i64().unwrap() > 0, "{letter}");
        let kept = match (letter["data"].as_str(), letter["data_base64"].as_str()) {
            (Some(text), None) => text.as_bytes().to_vec(),
            (None, Some(b64)) => {
                use base64::Engine as _;
                base64::engine::general_purpose::STANDARD.decode(b64).unwrap()
            }
            other => panic!("{key}: data or data_base64, not {other:?}"),
        };
        if letter["data_truncated"] == true {
            assert_eq!(letter["data_bytes"], data.len(), "{key}");
            assert!(data.starts_with(&kept), "{key}: the kept bytes are the record's first");
        } else {
            assert_eq!(kept, data, "{key}: the record as it was");
        }
        *by_reason.entry(reason).or_default() += 1;
    }
    let refused: Vec<&serde_json::Value> =
        letters.iter().filter(|l| l["reason"].as_str().unwrap().contains("sink cannot write")).collect();
    assert_eq!(refused.len(), long_results.len(), "{refused:?}");
    assert_eq!(refused[0]["partition_key"], long_ticker().as_str());
    assert_eq!(letters.len(), catalogue().len() + long_results.len(), "nothing else: {letters:#?}");
}

#[test]
fn bad_records_and_unwritable_results_go_to_a_kinesis_dead_letter_stream_once_each() {
    let stream = create_stream("dead-letters", 1);
    every_bad_record_is_dead_lettered_once_with_its_reason(Destination::Kinesis(stream));
}

#[test]
fn bad_records_and_unwritable_results_go_to_s3_in_batches_once_each() {
    let bucket = util::s3::bucket(&runtime(), "dead-letters");
    every_bad_record_is_dead_lettered_once_with_its_reason(Destination::S3 { bucket });
}

#[test]
fn bad_records_and_unwritable_results_go_to_a_file_once_each() {
    every_bad_record_is_dead_lettered_once_with_its_reason(Destination::File(tempfile::tempdir().unwrap()));
}

#[test]
fn a_dead_letter_bucket_that_does_not_exist_is_refused_before_anything_runs() {
    let out = weir()
        .env("AWS_ENDPOINT_URL_S3", util::s3::s3_endpoint())
        .args(["run", "--source", "-", "--dead-letter", "s3://no-such-bucket-for-weir/dead"])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("bucket no-such-bucket-for-weir does not exist"), "{stderr}");
}

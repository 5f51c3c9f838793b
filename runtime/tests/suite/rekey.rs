//! Kinesis as the shuffle: trades written with random partition keys into 4 shards go through
//! `weir run --operator builtin:rekey --set key-field=TICKER` into a second stream, keyed by
//! ticker, so every ticker's trades are on one shard; the keyed job over that stream gives the
//! native operator's windows. The keyed job over the raw stream says its keys are on several
//! shards (`weir_keys_on_several_shards_total`); over the re-keyed one it does not. Against ferrokinesis (written before read), through the
//! binaries.

use crate::util;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use std::time::Instant;

use util::kinesis::*;
use util::process::{Weir, total, value};
use util::*;

fn rekey(args: &[&str]) {
    let mut cmd = weir();
    cmd.env("AWS_ENDPOINT_URL_KINESIS", endpoint()).arg("run").args(args);
    cmd.args(["--start-position", "trim-horizon", "--until-idle", "2s"]);
    let (status, log) = Weir::start(cmd).wait(Duration::from_secs(120));
    assert!(status.success(), "{log}");
}

/// The keyed job (sliding-window-max, allowing for the disorder random keys leave) over
/// `source` into `results`, to the end; how many grouping keys it found on several shards once
/// it had read all `records`.
fn keyed_job(source: &str, results: &str, records: f64) -> f64 {
    let mut cmd = weir();
    cmd.env("AWS_ENDPOINT_URL_KINESIS", endpoint()).arg("run");
    cmd.args(["--source", &format!("kinesis://{source}"), "--sink", &format!("kinesis://{results}")]).args([
        "--set",
        "out-of-orderness=60s",
        "--start-position",
        "trim-horizon",
        "--until-idle",
        "3s",
    ]);
    let mut weir = Weir::start(cmd);
    let deadline = Instant::now() + Duration::from_secs(60);
    let spread = loop {
        let text = weir.metrics();
        if total(&text, "weir_records_in_total") >= records {
            break value(&text, "weir_keys_on_several_shards_total").unwrap_or(0.0);
        }
        assert!(Instant::now() < deadline, "never read {records} records:\n{text}");
        std::thread::sleep(Duration::from_millis(20));
    };
    let (status, log) = weir.wait(Duration::from_secs(60));
    assert!(status.success(), "{log}");
    spread
}

#[test]
fn rekey_puts_every_ticker_on_one_shard_and_the_keyed_job_behind_it_gives_the_native_windows() {
    let (raw, by_ticker, results) =
        (create_stream("raw", 4), create_stream("by-ticker", 4), create_stream("rekeyed-results", 1));
    let input = produce_keyed(&endpoint(), &raw, 6_000, 30, T0, "random");
    let spread = keyed_job(&raw, &create_stream("raw-results", 1), 6_000.0);
    assert!(spread >= 1.0, "random keys put tickers on several shards, and weir says so: {spread}");

    rekey(&[
        "--source",
        &format!("kinesis://{raw}"),
        "--sink",
        &format!("kinesis://{by_ticker}"),
        "--operator",
        "builtin:rekey",
        "--set",
        "key-field=TICKER",
        "--parallelism",
        "2",
    ]);
    let rekeyed = tail(&by_ticker, &[]);
    assert_eq!(rekeyed.len(), 6_000, "every trade once");
    let mut shards_of: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for record in &rekeyed {
        let trade: serde_json::Value = serde_json::from_str(record["data"].as_str().unwrap()).unwrap();
        let ticker = trade["TICKER"].as_str().unwrap();
        assert_eq!(record["partition_key"], ticker, "keyed by its ticker: {record}");
        shards_of
            .entry(ticker.to_string())
            .or_default()
            .insert(record["shard_id"].as_str().unwrap().to_string());
    }
    assert_eq!(shards_of.len(), 30);
    assert!(shards_of.values().all(|s| s.len() == 1), "each ticker on one shard: {shards_of:?}");

    // Random keys lost the order across tickers' shards: the keyed job allows for it.
    assert_eq!(keyed_job(&by_ticker, &results, 6_000.0), 0.0, "no ticker on two shards any more");
    let expected = native_by_key_with(&input, &[("out-of-orderness", "60s")]);
    assert_same_results(&by_key(&tail(&results, &[])), &expected);
}

//! Helpers for tests against the Kinesis emulators that `scripts/with-emulators` starts:
//! endpoints, streams with unique names, resharding, the producer binary, `weir tail`.

use std::collections::BTreeMap;
use std::process::Command;

use aws_sdk_kinesis::Client;

use super::weir;

/// The main emulator (ferrokinesis).
pub fn endpoint() -> String {
    env_endpoint("AWS_ENDPOINT_URL_KINESIS", "the Kinesis emulator")
}

/// ferrokinesis with AWS-like limits (`--enforce-limits`).
pub fn throttled_endpoint() -> String {
    env_endpoint("WEIR_TEST_THROTTLED_KINESIS", "a throttling Kinesis emulator")
}

/// ferrokinesis whose shard iterators expire after 1 s.
pub fn short_ttl_endpoint() -> String {
    env_endpoint("WEIR_TEST_SHORT_TTL_KINESIS", "a Kinesis emulator with short-lived iterators")
}

/// kinesis-local, the second, independent implementation.
pub fn kinesis_local_endpoint() -> String {
    env_endpoint("WEIR_TEST_KINESIS_LOCAL", "kinesis-local")
}

fn env_endpoint(var: &str, what: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| {
        panic!("{var} is not set: run these tests through scripts/test or scripts/with-emulators, which start {what}")
    })
}

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Runtime::new().unwrap()
}

/// A client for the emulator at `endpoint`.
pub fn client_at(rt: &tokio::runtime::Runtime, endpoint: &str) -> Client {
    rt.block_on(async {
        let config = weir_aws::config(None).await;
        Client::from_conf(aws_sdk_kinesis::config::Builder::from(&config).endpoint_url(endpoint).build())
    })
}

/// A new stream on the main emulator with a name unique to this test run.
pub fn create_stream(prefix: &str, shards: i32) -> String {
    create_stream_at(&endpoint(), prefix, shards)
}

pub fn create_stream_at(endpoint: &str, prefix: &str, shards: i32) -> String {
    let name = format!("{prefix}-{}-{}", std::process::id(), rand_suffix());
    let rt = runtime();
    let client = client_at(&rt, endpoint);
    rt.block_on(async {
        client.create_stream().stream_name(&name).shard_count(shards).send().await.unwrap();
        wait_active(&client, &name).await;
    });
    name
}

pub async fn wait_active(client: &Client, stream: &str) {
    loop {
        let d = client.describe_stream_summary().stream_name(stream).send().await.unwrap();
        if d.stream_description_summary().map(|s| s.stream_status().as_str()) == Some("ACTIVE") {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// Open shards: (id, first hash key, last hash key), in id order.
pub async fn open_shards(client: &Client, stream: &str) -> Vec<(String, u128, u128)> {
    let shards = client.list_shards().stream_name(stream).send().await.unwrap();
    let mut open: Vec<(String, u128, u128)> = shards
        .shards()
        .iter()
        .filter(|s| s.sequence_number_range().and_then(|r| r.ending_sequence_number()).is_none())
        .map(|s| {
            let r = s.hash_key_range().unwrap();
            (
                s.shard_id().to_string(),
                r.starting_hash_key().parse().unwrap(),
                r.ending_hash_key().parse().unwrap(),
            )
        })
        .collect();
    open.sort();
    open
}

fn rand_suffix() -> u64 {
    use std::time::{SystemTime, UNIX_EPOCH};
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64 % 1_000_000_007).unwrap_or(0)
}

/// What the native operator makes of `input`, per key, in order.
pub fn native_by_key(input: &[u8]) -> BTreeMap<String, Vec<String>> {
    native_by_key_with(input, &[])
}

/// The same, with operator settings.
pub fn native_by_key_with(input: &[u8], settings: &[(&str, &str)]) -> BTreeMap<String, Vec<String>> {
    let mut by_key: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (key, data) in super::native_results(input, settings) {
        by_key.entry(key).or_default().push(data);
    }
    by_key
}

/// Records as `weir tail` prints them, per partition key, in order.
pub fn by_key(records: &[serde_json::Value]) -> BTreeMap<String, Vec<String>> {
    let mut by_key: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for r in records {
        let key = r["partition_key"].as_str().unwrap().to_string();
        by_key.entry(key).or_default().push(r["data"].as_str().unwrap().to_string());
    }
    by_key
}

pub fn tail(stream: &str, extra: &[&str]) -> Vec<serde_json::Value> {
    tail_at(&endpoint(), stream, extra)
}

pub fn tail_at(endpoint: &str, stream: &str, extra: &[&str]) -> Vec<serde_json::Value> {
    tail_as(|cmd| cmd.env("AWS_ENDPOINT_URL_KINESIS", endpoint), stream, extra)
}

/// `weir tail` of `stream`, its command set up by `setup` (endpoint, credentials).
pub fn tail_as(
    setup: impl FnOnce(&mut Command) -> &mut Command,
    stream: &str,
    extra: &[&str],
) -> Vec<serde_json::Value> {
    let mut cmd = weir();
    let out = setup(&mut cmd).args(["tail", &format!("kinesis://{stream}")]).args(extra).output().unwrap();
    assert!(out.status.success(), "weir tail failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// The `weir-producer` binary, built beside `weir` (scripts/test builds the whole workspace).
pub fn producer() -> Command {
    let path = std::path::Path::new(env!("CARGO_BIN_EXE_weir")).with_file_name("weir-producer");
    assert!(
        path.exists(),
        "{} is missing: build it first (cargo build -p weir-producer, or run scripts/test)",
        path.display()
    );
    Command::new(path)
}

/// Produce `count` trades of `tickers` tickers, event times from `start_ms`, with the producer
/// into `stream` at `endpoint`; returns the same trades as JSON lines (the producer's own output
/// to `-` with the same arguments), for the native reference.
pub fn produce(endpoint: &str, stream: &str, count: u64, tickers: u32, start_ms: i64) -> Vec<u8> {
    produce_keyed(endpoint, stream, count, tickers, start_ms, "ticker")
}

/// The same, with the producer's `--partition-key` (`ticker`, `random` or `constant`).
pub fn produce_keyed(
    endpoint: &str,
    stream: &str,
    count: u64,
    tickers: u32,
    start_ms: i64,
    partition_key: &str,
) -> Vec<u8> {
    produce_with(endpoint, stream, count, tickers, start_ms, partition_key, &[])
}

/// The same, with more producer arguments (`--step 20ms`).
pub fn produce_with(
    endpoint: &str,
    stream: &str,
    count: u64,
    tickers: u32,
    start_ms: i64,
    partition_key: &str,
    extra: &[&str],
) -> Vec<u8> {
    let sink = format!("kinesis://{stream}");
    let to_stream = |cmd: &mut Command| {
        cmd.env("AWS_ENDPOINT_URL_KINESIS", endpoint).args([
            "--sink",
            &sink,
            "--partition-key",
            partition_key,
        ]);
    };
    produce_as(to_stream, count, tickers, start_ms, extra)
}

/// Produce `count` trades of `tickers` tickers from `start_ms` with the producer set up by
/// `to_stream` (its sink, endpoint and credentials); the same trades as JSON lines.
pub fn produce_as(
    to_stream: impl FnOnce(&mut Command),
    count: u64,
    tickers: u32,
    start_ms: i64,
    extra: &[&str],
) -> Vec<u8> {
    let start = jiff::Timestamp::from_millisecond(start_ms).unwrap().to_string();
    let args = |cmd: &mut Command| {
        cmd.args(["--rate", "0", "--count", &count.to_string(), "--tickers", &tickers.to_string()])
            .args(["--start-time", &start])
            .args(extra);
    };
    let mut producing = producer();
    args(&mut producing);
    to_stream(&mut producing);
    let out = producing.output().unwrap();
    assert!(out.status.success(), "weir-producer failed: {}", String::from_utf8_lossy(&out.stderr));
    let mut to_stdout = producer();
    args(&mut to_stdout);
    let out = to_stdout.output().unwrap();
    assert!(out.status.success(), "weir-producer failed: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

/// Assert two per-key result maps are equal; on a difference, say where (not the whole maps).
pub fn assert_same_results(got: &BTreeMap<String, Vec<String>>, expected: &BTreeMap<String, Vec<String>>) {
    let count = |m: &BTreeMap<String, Vec<String>>| m.values().map(Vec::len).sum::<usize>();
    for (key, want) in expected {
        let have = got.get(key).map(Vec::as_slice).unwrap_or_default();
        if have != want.as_slice() {
            let at = have.iter().zip(want).position(|(a, b)| a != b).unwrap_or(have.len().min(want.len()));
            panic!(
                "key {key}: {} results, expected {}; first difference at #{at}: got {:?}, expected {:?} \
                 ({} results in all, expected {})",
                have.len(),
                want.len(),
                have.get(at),
                want.get(at),
                count(got),
                count(expected)
            );
        }
    }
    let extra: Vec<&String> = got.keys().filter(|k| !expected.contains_key(*k)).collect();
    assert!(extra.is_empty(), "results for keys the reference has none for: {extra:?}");
}

/// Split `shard` of `stream` in the middle of its hash range.
pub async fn split_in_half(client: &Client, stream: &str, shard: &str) {
    let (_, start, end) = open_shards(client, stream)
        .await
        .into_iter()
        .find(|(id, _, _)| id == shard)
        .expect("the shard is open");
    let middle = start + (end - start) / 2 + 1;
    client
        .split_shard()
        .stream_name(stream)
        .shard_to_split(shard)
        .new_starting_hash_key(middle.to_string())
        .send()
        .await
        .unwrap();
    wait_active(client, stream).await;
}

/// Merge the last two adjacent open shards of `stream` (by hash range); their ids.
pub async fn merge_last_adjacent(client: &Client, stream: &str) -> (String, String) {
    let mut open = open_shards(client, stream).await;
    open.sort_by_key(|(_, start, _)| *start);
    let (a, b) = open
        .windows(2)
        .filter(|w| w[0].2.checked_add(1) == Some(w[1].1))
        .map(|w| (w[0].0.clone(), w[1].0.clone()))
        .next_back()
        .expect("two adjacent open shards");
    client
        .merge_shards()
        .stream_name(stream)
        .shard_to_merge(&a)
        .adjacent_shard_to_merge(&b)
        .send()
        .await
        .unwrap();
    wait_active(client, stream).await;
    (a, b)
}

/// How often each (ticker, window end) was read.
pub type Counts = BTreeMap<(String, i64), usize>;

/// Results per ticker, each once, in the order first read; and how often each was read.
pub fn deduplicated(results: &[serde_json::Value]) -> (BTreeMap<String, Vec<String>>, Counts) {
    let mut once: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut counts: BTreeMap<(String, i64), usize> = BTreeMap::new();
    for record in results {
        let data = record["data"].as_str().unwrap();
        let result: serde_json::Value = serde_json::from_str(data).unwrap();
        let ticker = result["TICKER"].as_str().unwrap().to_string();
        let end: jiff::Timestamp = result["WINDOW_END"].as_str().unwrap().parse().unwrap();
        let count = counts.entry((ticker.clone(), end.as_millisecond())).or_default();
        *count += 1;
        if *count == 1 {
            once.entry(ticker).or_default().push(data.to_string());
        }
    }
    (once, counts)
}

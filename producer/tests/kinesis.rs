//! `weir-producer --sink kinesis://` against the Kinesis emulator that scripts/test starts:
//! every trade arrives once, keyed by ticker, in order per ticker, with a summary line.

use std::collections::BTreeMap;
use std::process::Command;

use aws_sdk_kinesis::Client;
use aws_sdk_kinesis::types::ShardIteratorType;

async fn client() -> Client {
    assert!(
        std::env::var("AWS_ENDPOINT_URL_KINESIS").is_ok(),
        "AWS_ENDPOINT_URL_KINESIS is not set: run through scripts/test or scripts/with-emulators"
    );
    Client::new(&weir_aws::config(None).await)
}

/// Every record of every shard: (partition key, data).
async fn read_all(client: &Client, stream: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let shards = client.list_shards().stream_name(stream).send().await.unwrap();
    for shard in shards.shards() {
        let mut iterator = client
            .get_shard_iterator()
            .stream_name(stream)
            .shard_id(shard.shard_id())
            .shard_iterator_type(ShardIteratorType::TrimHorizon)
            .send()
            .await
            .unwrap()
            .shard_iterator()
            .map(str::to_string);
        while let Some(it) = iterator {
            let reply = client.get_records().shard_iterator(it).send().await.unwrap();
            for r in reply.records() {
                let data = String::from_utf8(r.data().as_ref().to_vec()).unwrap();
                out.push((r.partition_key().unwrap_or_default().to_string(), data));
            }
            if reply.records().is_empty() && reply.millis_behind_latest().unwrap_or(0) == 0 {
                break;
            }
            iterator = reply.next_shard_iterator().map(str::to_string);
        }
    }
    out
}

#[test]
fn trades_go_to_the_stream_keyed_by_ticker_in_order_with_a_summary() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    // Unique across runs against the same emulator, not only across processes of one run.
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let stream = format!("producer-{}-{nanos}", std::process::id());
    let client = rt.block_on(client());
    rt.block_on(async { client.create_stream().stream_name(&stream).shard_count(2).send().await.unwrap() });

    let out = Command::new(env!("CARGO_BIN_EXE_weir-producer"))
        .args(["--count", "3000", "--rate", "0", "--tickers", "7", "--sink", &format!("kinesis://{stream}")])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains(&format!("sent 3000 trades to kinesis://{stream} in ")), "{stderr}");

    let records = rt.block_on(read_all(&client, &stream));
    assert_eq!(records.len(), 3000);
    let mut last: BTreeMap<String, String> = BTreeMap::new();
    for (key, data) in &records {
        let trade: serde_json::Value = serde_json::from_str(data).unwrap();
        assert_eq!(trade["TICKER"].as_str(), Some(key.as_str()), "partition key = ticker");
        let time = trade["EVENT_TIME"].as_str().unwrap().to_string();
        if let Some(previous) = last.insert(key.clone(), time.clone()) {
            assert!(previous < time, "{key}: {time} after {previous}");
        }
    }
    assert_eq!(last.len(), 7);
}

#[test]
fn a_missing_stream_is_refused_before_anything_is_generated() {
    let _ = tokio::runtime::Runtime::new().unwrap().block_on(client());
    let out = Command::new(env!("CARGO_BIN_EXE_weir-producer"))
        .args(["--count", "10", "--sink", "kinesis://not-there"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("stream kinesis://not-there does not exist"));
}

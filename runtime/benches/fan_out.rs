//! Enhanced fan-out against polling, on one emulator (ferrokinesis), in one run:
//!
//! 1. **Latency**: the `weir` binary reading a 4-shard stream from latest, by polling and
//!    through a consumer, one after the other, with the test fixture operator (it echoes every
//!    record) writing to standard output, while the bench puts one trade at a time (40 a second,
//!    each with an id): from PutRecord answered to the trade's echo on weir's output, p50 and
//!    p99. Emulated push is itself a loop: ferrokinesis looks for new records every 200 ms.
//! 2. **Drain**: a backlog of trades (1,000 tickers) in 8 shards read from trim-horizon by weir's
//!    pipeline through a consumer, and by a bare SubscribeToShard loop (every shard
//!    concurrently, no processing), in interleaved rounds: the time until every record has been
//!    received, and the ratio.
//! 3. **CPU per record**: the process CPU time of weir's pipeline draining the same backlog
//!    through a consumer and by polling (GetRecords), in the same rounds.
//!
//! `scripts/with-emulators cargo bench --profile dev -p weir --bench fan_out`
//! (`WEIR_BENCH_RECORDS`, default 1,000,000; `WEIR_BENCH_ROUNDS`, default 3;
//! `WEIR_BENCH_LATENCY_RECORDS`, default 800). Prints a Markdown table.

mod common;

use std::collections::HashMap;
use std::io::BufRead;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_kinesis::Client;
use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::{ShardIteratorType, StartingPosition, SubscribeToShardEventStream};
use common::kinesis::{create, kinesis, produce, wait_for, weir_drain};
use common::{cpu_time, env, median};
use weir::artifact::{Artifact, BUILT_OPERATORS_DIR};
use weir::operator::{Limits, OperatorEngine};
use weir_kinesis::{Consumer, FanOut, Stream};

const SHARDS: i32 = 8;
const LATENCY_SHARDS: i32 = 4;

fn main() {
    if std::env::var("AWS_ENDPOINT_URL_KINESIS").is_err() {
        eprintln!("AWS_ENDPOINT_URL_KINESIS is not set: run under scripts/with-emulators");
        std::process::exit(2);
    }
    let records = env("WEIR_BENCH_RECORDS", 1_000_000) as u64;
    let rounds = env("WEIR_BENCH_ROUNDS", 3);
    let latency_records = env("WEIR_BENCH_LATENCY_RECORDS", 800);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    let client = rt.block_on(async { Client::new(&weir_aws::config(None).await) });

    let (poll_latency, poll_samples) = latency(&rt, &client, latency_records, None);
    let (push_latency, push_samples) = latency(&rt, &client, latency_records, Some("bench-latency"));

    let engine = OperatorEngine::new(Limits::default(), None).expect("engine");
    let loaded = engine.load(Artifact::embedded_default(), &[]).expect("operator");
    let trades = rt.block_on(create(&client, "bench-efo", SHARDS));
    let filled = Instant::now();
    rt.block_on(produce(&client, &trades, records, None));
    eprintln!("filled {trades} with {records} trades in {:.1} s", filled.elapsed().as_secs_f64());
    let consumer = rt.block_on(async {
        Consumer::register(&kinesis(&client).await, &Stream(trades.clone()), "bench").await.expect("consumer")
    });
    let (mut bare, mut push, mut push_cpu, mut poll, mut poll_cpu) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        bare.push(rt.block_on(bare_subscribe_drain(&client, &trades, &consumer.arn, records)));
        let fan_out = FanOut::new(consumer.arn.clone());
        let cpu = cpu_time();
        push.push(rt.block_on(weir_drain(&client, &trades, records, loaded.clone(), Some(fan_out))));
        push_cpu.push((cpu_time() - cpu).as_secs_f64());
        let cpu = cpu_time();
        poll.push(rt.block_on(weir_drain(&client, &trades, records, loaded.clone(), None)));
        poll_cpu.push((cpu_time() - cpu).as_secs_f64());
        eprintln!(
            "round {round}: bare subscribe {:.2} s, weir through a consumer {:.2} s ({:.2} s CPU), weir polling {:.2} s ({:.2} s CPU)",
            bare[round], push[round], push_cpu[round], poll[round], poll_cpu[round]
        );
    }
    let (bare, push, push_cpu, poll, poll_cpu) =
        (median(bare), median(push), median(push_cpu), median(poll), median(poll_cpu));
    let per_record = |cpu: f64| cpu * 1e9 / records as f64;

    println!("| measure | figure |");
    println!("| --- | --- |");
    println!(
        "| latency, PutRecord answered to the echo on weir's output, {LATENCY_SHARDS} shards, 40 trades/s: polling (200 ms), p50 / p99 over {poll_samples} | {} / {} |",
        ms(poll_latency.0),
        ms(poll_latency.1)
    );
    println!(
        "| same, through a consumer, p50 / p99 over {push_samples} | {} / {} |",
        ms(push_latency.0),
        ms(push_latency.1)
    );
    println!(
        "| drain {records} trades, {SHARDS} shards: bare SubscribeToShard loop | {bare:.2} s ({:.0} records/s) |",
        records as f64 / bare
    );
    println!(
        "| same backlog, weir through a consumer (source -> wasm operator -> Kinesis sink) | {push:.2} s ({:.0} records/s) |",
        records as f64 / push
    );
    println!("| weir through a consumer / bare subscribe loop (speed) | {:.2}x |", bare / push);
    println!("| same backlog, weir polling | {poll:.2} s ({:.0} records/s) |", records as f64 / poll);
    println!(
        "| weir's CPU per record: through a consumer / polling | {:.0} ns / {:.0} ns ({:.2}x) |",
        per_record(push_cpu),
        per_record(poll_cpu),
        push_cpu / poll_cpu
    );
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1e3)
}

/// Seconds until a bare loop has received `records` records through `consumer`: a
/// subscription per shard from trim-horizon, made again after the last continuation when one
/// ends.
async fn bare_subscribe_drain(client: &Client, stream: &str, consumer: &str, records: u64) -> f64 {
    let started = Instant::now();
    let received = Arc::new(AtomicU64::new(0));
    let shards = client.list_shards().stream_name(stream).send().await.expect("list");
    let mut tasks = tokio::task::JoinSet::new();
    for shard in shards.shards() {
        let (client, consumer, shard, received) =
            (client.clone(), consumer.to_string(), shard.shard_id().to_string(), received.clone());
        tasks.spawn(async move {
            let mut position =
                StartingPosition::builder().r#type(ShardIteratorType::TrimHorizon).build().expect("position");
            loop {
                let reply = client
                    .subscribe_to_shard()
                    .consumer_arn(&consumer)
                    .shard_id(&shard)
                    .starting_position(position.clone())
                    .send()
                    .await;
                let Ok(mut reply) = reply else {
                    // The last subscription to the shard is under a second old.
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                };
                while let Ok(Some(SubscribeToShardEventStream::SubscribeToShardEvent(event))) =
                    reply.event_stream.recv().await
                {
                    received.fetch_add(event.records.len() as u64, Relaxed);
                    position = StartingPosition::builder()
                        .r#type(ShardIteratorType::AfterSequenceNumber)
                        .sequence_number(event.continuation_sequence_number)
                        .build()
                        .expect("position");
                }
            }
        });
    }
    let took = wait_for(&received, records, started).await;
    tasks.abort_all();
    took
}

/// p50 and p99 from PutRecord answered to the echo on the output of the `weir` binary reading
/// a new stream from latest (through `consumer` if given), over `count` trades put one at a
/// time, 40 a second; and how many echoes came (ferrokinesis may lose a record written while
/// it is read).
fn latency(
    rt: &tokio::runtime::Runtime,
    client: &Client,
    count: usize,
    consumer: Option<&str>,
) -> ((Duration, Duration), usize) {
    let trades = rt.block_on(create(client, "bench-latency", LATENCY_SHARDS));
    let port =
        std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("free port").port();
    let addr = format!("127.0.0.1:{port}");
    let fixture = std::path::Path::new(BUILT_OPERATORS_DIR).join("test_fixture.wasm");
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_weir"));
    cmd.args(["run", "--source", &format!("kinesis://{trades}"), "--sink", "-"])
        .args(["--operator", fixture.to_str().expect("a path"), "--metrics-addr", &addr])
        .env("WEIR_LOG", "warn")
        .stdout(std::process::Stdio::piped());
    if let Some(consumer) = consumer {
        cmd.args(["--efo-consumer", consumer]);
    }
    let mut weir = cmd.spawn().expect("weir binary");
    let echoes: Arc<Mutex<HashMap<u64, Instant>>> = Arc::default();
    let stdout = weir.stdout.take().expect("stdout");
    let seen = echoes.clone();
    let reader = std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            let at = Instant::now();
            let id = serde_json::from_str::<serde_json::Value>(&line).ok().and_then(|v| v["ID"].as_u64());
            if let Some(id) = id {
                seen.lock().expect("echoes").insert(id, at);
            }
        }
    });
    // Every shard read (and subscribed to), so that what is put now is read.
    let ready = if consumer.is_some() { "weir_subscription_events_total" } else { "weir_shards_reading" };
    let started = Instant::now();
    while scrape_value(&addr, ready).unwrap_or(0.0) < f64::from(LATENCY_SHARDS) {
        assert!(started.elapsed() < Duration::from_secs(60), "weir did not start reading");
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut answered = Vec::with_capacity(count);
    rt.block_on(async {
        let mut ticks = tokio::time::interval(Duration::from_millis(25));
        for id in 0..count as u64 {
            ticks.tick().await;
            let trade = format!(
                r#"{{"EVENT_TIME": "{}", "TICKER": "T{}", "PRICE": 1.0, "ID": {id}}}"#,
                jiff::Timestamp::now(),
                id % 50
            );
            client
                .put_record()
                .stream_name(&trades)
                .partition_key(format!("T{}", id % 50))
                .data(Blob::new(trade))
                .send()
                .await
                .expect("put");
            answered.push(Instant::now());
        }
    });
    std::thread::sleep(Duration::from_secs(2));
    let _ = weir.kill();
    let _ = weir.wait();
    let _ = reader.join();
    let echoes = echoes.lock().expect("echoes");
    let mut latencies: Vec<Duration> = answered
        .iter()
        .enumerate()
        .filter_map(|(id, at)| echoes.get(&(id as u64)).map(|echo| echo.saturating_duration_since(*at)))
        .collect();
    latencies.sort();
    assert!(!latencies.is_empty(), "no echo came back");
    let at = |q: f64| latencies[((q * latencies.len() as f64).ceil() as usize).clamp(1, latencies.len()) - 1];
    ((at(0.50), at(0.99)), latencies.len())
}

/// One series of the metrics weir serves at `addr`, if it answers.
fn scrape_value(addr: &str, name: &str) -> Option<f64> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).ok()?;
    stream.write_all(b"GET /metrics HTTP/1.1\r\nHost: weir\r\nConnection: close\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    response.lines().find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
}

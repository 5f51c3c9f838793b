//! What checkpoints cost, on the reference workload (trades 1 ms apart, 1,000 tickers, window
//! 60 s, slide 10 s):
//!
//! - one checkpoint of 1,000 tickers' window state and 8 shards' positions: the snapshot of
//!   the instances (on the pipeline's thread, the only part that stops the data), the
//!   encoding, the write to a directory (synced) and, under `scripts/with-emulators`, to S3;
//!   and its size;
//! - the whole `weir run` path (JSON lines in memory -> operator -> discarding sink) with no
//!   checkpoints, with one every 10 s and one every 1 s, in records per CPU-second, in one run
//!   so the ratios compare like with like;
//! - under `scripts/with-emulators`: recovery, from the start of `weir run --checkpoint` after
//!   a SIGKILL to its first record processed (`weir_records_in_total` above 0, polled every
//!   2 ms), the compiled cache warm.
//!
//! `scripts/with-emulators cargo bench --profile dev -p weir --bench checkpoint` (without the
//! emulators, the S3 write and recovery are left out; records per whole-path run:
//! `WEIR_BENCH_RECORDS`, default 40,000,000, so that a run lasts about 10 s and the 10 s
//! interval fires). Prints Markdown for BENCHMARKS.md.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::{T0, env, median};

use weir::artifact::Artifact;
use weir::checkpoint::{Checkpoint, CheckpointStore, Meta, PointerStore, ShardProgress, codec, operator_ref};
use weir::metrics::Metrics;
use weir::operator::{Limits, OperatorEngine};
use weir::pipeline::Checkpoints;
use weir::pipeline::instances::Instances;
use weir_operator::OwnedBatch;

/// Instances of the default operator fed `n` trades, as a checkpoint would find them.
fn warm_instances(
    engine: &OperatorEngine,
    rt: &tokio::runtime::Runtime,
    parallelism: usize,
    n: usize,
) -> Instances {
    let loaded = engine.load(Artifact::embedded_default(), &[]).expect("operator");
    let metrics = Metrics::default();
    let mut instances =
        Instances::new(loaded, parallelism, (64, Default::default()), &Default::default(), &metrics)
            .expect("instances");
    let input = common::reference_lines(n);
    // The watermark moves as the host moves it: to the latest event time of the batch before.
    let mut watermark = weir_operator::NO_WATERMARK;
    for chunk in input.split(|&b| b == b'\n').filter(|l| !l.is_empty()).collect::<Vec<_>>().chunks(1024) {
        let mut batch = OwnedBatch::new("shardId-000000000000");
        batch.watermark_ms = watermark;
        for line in chunk {
            batch.push("", line, 0);
        }
        instances.route(batch, false, None);
        let (done, _) = rt.block_on(instances.settle()).expect("step");
        for d in done {
            watermark = watermark.max(d.processed.output.event_time_ms.unwrap_or(watermark));
        }
    }
    instances
}

/// A checkpoint of `state` with 8 shards at realistic (56-digit) sequence numbers.
fn checkpoint(state: weir_contract::KeyedStates, loaded: &weir::operator::LoadedOperator) -> Checkpoint {
    let shards: BTreeMap<String, ShardProgress> = (0..8)
        .map(|i| {
            let progress = ShardProgress {
                after: Some(format!("4963385849765382347589743659204938574639200{i:013}")),
                started_at_ms: T0,
                event_time_ms: Some(T0 + 60_000),
                ..ShardProgress::default()
            };
            (format!("shardId-{i:012}"), progress)
        })
        .collect();
    Checkpoint {
        meta: Meta {
            id: 1,
            taken_at: jiff::Timestamp::now(),
            source: "kinesis://trades".into(),
            operator: operator_ref(loaded),
            parallelism: 1,
            shards,
            watermark_ms: T0 + 60_000,
            records_out: 1_000_000,
        },
        state,
    }
}

fn one_checkpoint(engine: &OperatorEngine, rt: &tokio::runtime::Runtime) {
    let rounds = 20;
    println!("One checkpoint: 1,000 tickers after 1,000,000 trades, 8 shards (median of {rounds}):\n");
    println!("| step | time |");
    println!("|---|---|");
    let mut instances = warm_instances(engine, rt, 1, 1_000_000);
    let loaded = instances.loaded().clone();
    let (mut snap, mut enc, mut dir_write, mut s3_write) = (vec![], vec![], vec![], vec![]);
    let dir = tempfile::tempdir().expect("dir");
    let mut store = PointerStore::dir(dir.path()).expect("store");
    let mut s3 = std::env::var("AWS_ENDPOINT_URL_S3").is_ok().then(|| {
        rt.block_on(async {
            let bucket = format!("bench-checkpoints-{}", std::process::id());
            let config = weir_aws::config(None).await;
            let client = aws_sdk_s3::Client::from_conf(
                aws_sdk_s3::config::Builder::from(&config).force_path_style(true).build(),
            );
            client.create_bucket().bucket(&bucket).send().await.expect("bucket");
            PointerStore::s3(&bucket, "checkpoints", None).await
        })
    });
    let mut size = 0;
    for id in 1..=rounds {
        let t = Instant::now();
        let state = instances.snapshot().expect("snapshot");
        snap.push(t.elapsed().as_secs_f64());
        let mut c = checkpoint(state, &loaded);
        c.meta.id = id;
        let t = Instant::now();
        size = codec::encode(&c).len();
        enc.push(t.elapsed().as_secs_f64());
        let t = Instant::now();
        rt.block_on(store.write(&c)).expect("write");
        dir_write.push(t.elapsed().as_secs_f64());
        if let Some(s3) = &mut s3 {
            let t = Instant::now();
            rt.block_on(s3.write(&c)).expect("write to S3");
            s3_write.push(t.elapsed().as_secs_f64());
        }
    }
    let ms = |v: Vec<f64>| format!("{:.3} ms", median(v) * 1e3);
    println!(
        "| snapshot of the instance (the data path's pause, with the tick a cut gives every instance first; the tick is not timed here) | {} |",
        ms(snap)
    );
    println!("| encoding | {} |", ms(enc));
    println!(
        "| write to a directory (encoding, file synced, pointer renamed and synced) | {} |",
        ms(dir_write)
    );
    if !s3_write.is_empty() {
        println!("| write to S3 (moto: object, conditional pointer, prune) | {} |", ms(s3_write));
    }
    println!("| size | {:.1} KB |", size as f64 / 1e3);
}

/// Records per CPU-second of the whole path with a checkpoint every `interval` (None: none);
/// and the checkpoints taken.
fn whole_path(engine: &OperatorEngine, input: &[u8], interval: Option<Duration>) -> (f64, u64) {
    let dir = tempfile::tempdir().expect("dir");
    let checkpoints = interval.map(|interval| Checkpoints {
        store: Box::new(PointerStore::dir(dir.path()).expect("store")),
        interval,
        source: "bench".into(),
        restored: None,
    });
    let run = common::whole_path(engine, input, 1024, 1, checkpoints);
    (run.records / run.cpu.as_secs_f64(), run.metrics.checkpoints.completed.get())
}

fn with_intervals(engine: &OperatorEngine) {
    let n = env("WEIR_BENCH_RECORDS", 40_000_000);
    let rounds = env("WEIR_BENCH_ROUNDS", 3);
    let input = common::reference_lines(n);
    let (mut none, mut ten, mut one, mut taken) = (vec![], vec![], vec![], (0, 0));
    for _ in 0..rounds {
        none.push(whole_path(engine, &input, None).0);
        let (rate, count) = whole_path(engine, &input, Some(Duration::from_secs(10)));
        ten.push(rate);
        taken.0 = count;
        let (rate, count) = whole_path(engine, &input, Some(Duration::from_secs(1)));
        one.push(rate);
        taken.1 = count;
    }
    let (none, ten, one) = (median(none), median(ten), median(one));
    println!(
        "\nWhole path, {n} trades of 1,000 tickers, one instance, median of {rounds} runs interleaved:\n"
    );
    println!("| checkpoints | records per CPU-second | vs none | checkpoints taken |");
    println!("|---|---|---|---|");
    println!("| none | {:.2} M | 1.00x | 0 |", none / 1e6);
    println!("| every 10 s | {:.2} M | {:.3}x | {} |", ten / 1e6, ten / none, taken.0);
    println!("| every 1 s | {:.2} M | {:.3}x | {} |", one / 1e6, one / none, taken.1);
}

/// `GET /metrics` at `addr`: the value of `series`, if weir answers.
fn metric(addr: &str, series: &str) -> Option<f64> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).ok()?;
    stream.write_all(b"GET /metrics HTTP/1.1\r\nHost: weir\r\nConnection: close\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    response.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.trim().parse().ok())
}

fn wait_for(addr: &str, series: &str, ready: impl Fn(f64) -> bool, child: &mut std::process::Child) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !metric(addr, series).is_some_and(&ready) {
        assert!(child.try_wait().expect("status").is_none(), "weir exited");
        assert!(Instant::now() < deadline, "{series} never got there");
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Under the emulators: 8 shards fed 2,000 trades/s; `weir run --checkpoint` killed with
/// SIGKILL once it has checkpointed, then started again: the time from the start to its first
/// record processed, with the compiled cache warm; and what its checkpoints cost in place.
fn recovery() {
    let endpoint = std::env::var("AWS_ENDPOINT_URL_KINESIS").expect("under scripts/with-emulators");
    let weir_bin = std::path::PathBuf::from(env!("CARGO_BIN_EXE_weir"));
    let tool = |name: &str| std::process::Command::new(weir_bin.with_file_name(name));
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    let client = rt.block_on(async {
        let config = weir_aws::config(None).await;
        aws_sdk_kinesis::Client::from_conf(
            aws_sdk_kinesis::config::Builder::from(&config).endpoint_url(&endpoint).build(),
        )
    });
    let name = |prefix: &str| format!("{prefix}-{}", std::process::id());
    let (trades, results) = (name("recovery-trades"), name("recovery-results"));
    rt.block_on(async {
        for (stream, shards) in [(&trades, 8), (&results, 2)] {
            client.create_stream().stream_name(stream).shard_count(shards).send().await.expect("create");
            while client
                .describe_stream_summary()
                .stream_name(stream)
                .send()
                .await
                .expect("describe")
                .stream_description_summary()
                .map(|s| s.stream_status().as_str().to_string())
                != Some("ACTIVE".into())
            {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    });
    let mut producer = tool("weir-producer")
        .args([
            "--sink",
            &format!("kinesis://{trades}"),
            "--rate",
            "2000",
            "--duration",
            "10m",
            "--tickers",
            "1000",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("producer");
    let (dir, cache) = (tempfile::tempdir().expect("dir"), tempfile::tempdir().expect("cache"));
    let addr = {
        let port =
            std::net::TcpListener::bind("127.0.0.1:0").expect("port").local_addr().expect("addr").port();
        format!("127.0.0.1:{port}")
    };
    let start = || {
        tool("weir")
            .args([
                "run",
                "--source",
                &format!("kinesis://{trades}"),
                "--sink",
                &format!("kinesis://{results}"),
            ])
            .args(["--checkpoint", dir.path().to_str().expect("path"), "--checkpoint-interval", "1s"])
            .args(["--cache-dir", cache.path().to_str().expect("path"), "--metrics-addr", &addr])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("weir")
    };
    let (mut took, mut durations, mut sizes) = (Vec::new(), Vec::new(), Vec::new());
    let mut child = start();
    for _ in 0..5 {
        wait_for(&addr, "weir_checkpoints_total", |n| n >= 3.0, &mut child);
        let sum = metric(&addr, "weir_checkpoint_duration_seconds_sum").unwrap_or(0.0);
        let count = metric(&addr, "weir_checkpoint_duration_seconds_count").unwrap_or(1.0);
        durations.push(sum / count);
        sizes.push(metric(&addr, "weir_checkpoint_size_bytes").unwrap_or(0.0));
        child.kill().expect("kill");
        child.wait().expect("wait");
        let started = Instant::now();
        child = start();
        wait_for(&addr, "weir_records_in_total{shard=\"shardId-000000000000\"}", |n| n > 0.0, &mut child);
        took.push(started.elapsed().as_secs_f64());
    }
    let _ = child.kill();
    let _ = child.wait();
    let _ = producer.kill();
    let _ = producer.wait();
    println!(
        "\nRecovery, 8 shards, 1,000 tickers, 2,000 trades/s, checkpoint every 1 s (median of 5 kills):\n"
    );
    println!("| what | figure |");
    println!("|---|---|");
    println!(
        "| start after SIGKILL to the first record processed (compiled cache warm) | {:.0} ms |",
        median(took) * 1e3
    );
    println!(
        "| checkpoint duration, cut to complete (sink acknowledged, file synced), mean of each run, median of the 5 | {:.1} ms |",
        median(durations) * 1e3
    );
    println!("| checkpoint size | {:.1} KB |", median(sizes) / 1e3);
}

fn main() {
    let engine = OperatorEngine::new(Limits::default(), None).expect("engine");
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    let only = std::env::var("WEIR_BENCH_ONLY").unwrap_or_default();
    if only.is_empty() || only == "one" {
        one_checkpoint(&engine, &rt);
    }
    if only.is_empty() || only == "whole" {
        with_intervals(&engine);
    }
    if (only.is_empty() || only == "recovery") && std::env::var("AWS_ENDPOINT_URL_KINESIS").is_ok() {
        recovery();
    }
}

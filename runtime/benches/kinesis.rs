//! weir against a Kinesis emulator (ferrokinesis), three figures for BENCHMARKS.md:
//!
//! 1. **Drain**: a stream of 8 shards pre-filled with trades of 1,000 tickers, read from
//!    trim-horizon by weir (Kinesis source -> sliding-window-max in wasm -> Kinesis sink) and by
//!    a bare GetRecords loop (every shard concurrently, no processing), in interleaved rounds;
//!    the time until every record has been received, and the ratio.
//! 2. **Steady state**: the `weir` binary reading a fresh 8-shard stream while the producer
//!    writes at a steady rate: the added latency, from a GetRecords reply to the first
//!    PutRecords call carrying a result of it (weir's own histogram, scraped from
//!    `--metrics-addr`), and the peak resident set (VmHWM).
//! 3. **Peak memory draining**: the resident set of the `weir` binary draining the pre-filled
//!    stream at full speed, with the compiled cache cold and warm.
//!
//! `scripts/with-emulators cargo bench --profile dev -p weir --bench kinesis`
//! (`WEIR_BENCH_RECORDS`, default 200,000; `WEIR_BENCH_ROUNDS`, default 3;
//! `WEIR_BENCH_LATENCY_SECS`, default 20; `WEIR_BENCH_PARALLELISM`, default the available cores,
//! as `weir run`; `WEIR_BENCH_ONLY=drain` or `steady` for one part alone; `WEIR_BENCH_SINK=discard`
//! drops weir's results in the drain instead of writing them to a second stream).
//! Prints a Markdown table.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use aws_sdk_kinesis::Client;
use aws_sdk_kinesis::types::ShardIteratorType;
use common::kinesis::{TICKERS, create, percentiles, produce, scrape, series, wait_for, weir_drain};
use common::median;
use weir::artifact::Artifact;
use weir::operator::{Limits, OperatorEngine};

const SHARDS: i32 = 8;

fn env(name: &str, default: u64) -> u64 {
    common::env(name, default as usize) as u64
}

fn main() {
    if std::env::var("AWS_ENDPOINT_URL_KINESIS").is_err() {
        eprintln!("AWS_ENDPOINT_URL_KINESIS is not set: run under scripts/with-emulators");
        std::process::exit(2);
    }
    let records = env("WEIR_BENCH_RECORDS", 200_000);
    let rounds = env("WEIR_BENCH_ROUNDS", 3);
    let latency_secs = env("WEIR_BENCH_LATENCY_SECS", 20);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    let client = rt.block_on(async { Client::new(&weir_aws::config(None).await) });
    let engine = OperatorEngine::new(Limits::default(), None).expect("engine");
    let loaded = engine.load(Artifact::embedded_default(), &[]).expect("operator");

    let only = std::env::var("WEIR_BENCH_ONLY").unwrap_or_default();
    if only == "steady" {
        let cache = tempfile::tempdir().expect("cache dir");
        let steady = steady_state(&rt, &client, cache.path(), 5_000, latency_secs);
        let (p50, p99, samples) = percentiles(&steady.metrics);
        println!(
            "steady: p50 {p50}, p99 {p99} over {samples}; peak RSS {:.1} MB",
            steady.peak_rss as f64 / 1e6
        );
        return;
    }
    let trades = rt.block_on(create(&client, "bench-trades", SHARDS));
    let fill_started = Instant::now();
    rt.block_on(produce(&client, &trades, records, None));
    eprintln!("filled {trades} with {records} trades in {:.1} s", fill_started.elapsed().as_secs_f64());

    let (mut bare, mut weir) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        bare.push(rt.block_on(bare_drain(&client, &trades, records)));
        weir.push(rt.block_on(weir_drain(&client, &trades, records, loaded.clone(), None)));
        eprintln!("round {round}: bare {:.2} s, weir {:.2} s", bare[round as usize], weir[round as usize]);
    }
    let (bare_s, weir_s) = (median(bare), median(weir));
    if only == "drain" {
        println!("weir / bare loop (speed): {:.2}x", bare_s / weir_s);
        return;
    }

    // Cold: the operator compiled in the process; warm: loaded from the compiled cache.
    let cache = tempfile::tempdir().expect("cache dir");
    let rss_cold =
        weir_binary_peak_rss(&trades, &rt.block_on(create(&client, "bench-rss-cold", 1)), cache.path());
    let rss_warm =
        weir_binary_peak_rss(&trades, &rt.block_on(create(&client, "bench-rss-warm", 1)), cache.path());

    let rate = 5_000;
    let steady = steady_state(&rt, &client, cache.path(), rate, latency_secs);
    let (p50, p99, samples) = percentiles(&steady.metrics);

    println!("| measure | figure |");
    println!("| --- | --- |");
    println!(
        "| drain {records} trades, {SHARDS} shards, {TICKERS} tickers: bare GetRecords loop | {:.2} s ({:.0} records/s) |",
        bare_s,
        records as f64 / bare_s
    );
    println!(
        "| same stream, weir run (source -> wasm operator -> Kinesis sink) | {:.2} s ({:.0} records/s) |",
        weir_s,
        records as f64 / weir_s
    );
    println!("| weir / bare loop (speed) | {:.2}x |", bare_s / weir_s);
    println!(
        "| steady {rate} trades/s for {latency_secs} s, added latency over {samples} results: p50 | {p50} |"
    );
    println!("| added latency p99 | {p99} |");
    println!("| weir binary peak RSS at that steady rate | {:.1} MB |", steady.peak_rss as f64 / 1e6);
    println!(
        "| weir binary peak RSS draining {SHARDS} shards, {TICKERS} tickers: compiled cache warm | {:.1} MB |",
        rss_warm as f64 / 1e6
    );
    println!("| same, cache cold (the operator compiled in the process) | {:.1} MB |", rss_cold as f64 / 1e6);
}

/// Seconds until a bare loop over every shard has received `records` records.
async fn bare_drain(client: &Client, stream: &str, records: u64) -> f64 {
    let started = Instant::now();
    let received = Arc::new(AtomicU64::new(0));
    let shards = client.list_shards().stream_name(stream).send().await.expect("list");
    let mut tasks = tokio::task::JoinSet::new();
    for shard in shards.shards() {
        let (client, stream, shard, received) =
            (client.clone(), stream.to_string(), shard.shard_id().to_string(), received.clone());
        tasks.spawn(async move {
            let mut iterator = client
                .get_shard_iterator()
                .stream_name(&stream)
                .shard_id(&shard)
                .shard_iterator_type(ShardIteratorType::TrimHorizon)
                .send()
                .await
                .expect("iterator")
                .shard_iterator;
            while let Some(current) = iterator {
                let reply =
                    client.get_records().shard_iterator(current).limit(10_000).send().await.expect("get");
                received.fetch_add(reply.records().len() as u64, Relaxed);
                if reply.records().is_empty() && reply.millis_behind_latest().unwrap_or(0) == 0 {
                    break;
                }
                iterator = reply.next_shard_iterator;
            }
        });
    }
    wait_for(&received, records, started).await
}

struct Steady {
    metrics: String,
    peak_rss: u64,
}

/// The `weir` binary reading a fresh stream from latest while `rate` trades/s are written for
/// `secs` s: its metrics at the end, and its peak resident set.
fn steady_state(
    rt: &tokio::runtime::Runtime,
    client: &Client,
    cache: &std::path::Path,
    rate: u64,
    secs: u64,
) -> Steady {
    let trades = rt.block_on(create(client, "bench-steady", SHARDS));
    let out = rt.block_on(create(client, "bench-steady-out", 2));
    let port =
        std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("free port").port();
    let addr = format!("127.0.0.1:{port}");
    let mut weir = std::process::Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(["run", "--source", &format!("kinesis://{trades}"), "--sink", &format!("kinesis://{out}")])
        .args(["--metrics-addr", &addr])
        .env("WEIR_LOG", "warn")
        .env("WEIR_CACHE_DIR", cache)
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("weir binary");
    let watcher = RssWatcher::start(weir.id());
    // Wait until every shard has an operator, so the rate is what weir sees.
    let started = Instant::now();
    while series(&scrape(&addr), "weir_shards_reading") != Some(SHARDS as f64) {
        assert!(started.elapsed() < Duration::from_secs(60), "weir did not start reading");
        std::thread::sleep(Duration::from_millis(20));
    }
    rt.block_on(produce(client, &trades, rate * secs, Some(rate as f64)));
    // Long enough for the last windows the watermark passed to be written.
    std::thread::sleep(Duration::from_secs(2));
    // A figure only from a weir that ran throughout and wrote results (a scrape can come back
    // empty: it is tried again).
    let metrics = (0..50)
        .map(|_| scrape(&addr))
        .inspect(|m| {
            if m.is_empty() {
                std::thread::sleep(Duration::from_millis(100))
            }
        })
        .find(|m| !m.is_empty());
    assert!(matches!(weir.try_wait(), Ok(None)), "weir stopped during the steady run");
    let metrics = metrics.expect("weir's metrics endpoint did not answer");
    let written = series(&metrics, "weir_sink_records_total").unwrap_or(0.0);
    assert!(written > 0.0, "weir wrote no results in the steady run");
    let _ = weir.kill();
    let _ = weir.wait();
    Steady { metrics, peak_rss: watcher.stop() }
}

/// Peak resident memory (VmHWM) of the `weir` binary draining `trades` into `out`.
fn weir_binary_peak_rss(trades: &str, out: &str, cache: &std::path::Path) -> u64 {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(["run", "--source", &format!("kinesis://{trades}"), "--start-position", "trim-horizon"])
        .args(["--sink", &format!("kinesis://{out}"), "--until-idle", "1s"])
        .env("WEIR_LOG", "warn")
        .env("WEIR_CACHE_DIR", cache)
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("weir binary");
    let watcher = RssWatcher::start(child.id());
    child.wait().expect("weir");
    watcher.stop()
}

/// Polls a process's VmHWM (its peak resident set so far) every 10 ms until stopped or gone.
struct RssWatcher {
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<u64>,
}

impl RssWatcher {
    fn start(pid: u32) -> Self {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut peak = 0;
            while !flag.load(Relaxed) {
                let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else { break };
                let hwm = status
                    .lines()
                    .find_map(|l| l.strip_prefix("VmHWM:"))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok());
                peak = peak.max(hwm.unwrap_or(0) * 1024);
                std::thread::sleep(Duration::from_millis(10));
            }
            peak
        });
        Self { stop, thread }
    }

    fn stop(self) -> u64 {
        self.stop.store(true, Relaxed);
        self.thread.join().unwrap_or(0)
    }
}

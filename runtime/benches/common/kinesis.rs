//! What the benches against a Kinesis emulator share: streams, trades put into them, and one
//! drain of a stream by weir's pipeline (polling, or through a consumer).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use aws_sdk_kinesis::Client;
use weir::metrics::Metrics;
use weir::operator::LoadedOperator;
use weir::pipeline::{Pipeline, PipelineOptions};
use weir::sink::{DeadLetterWriter, FileSink, KinesisSink, Outgoing, Sink};
use weir::source::{KinesisSource, Source};
use weir_kinesis::{FanOut, Kinesis, ReadOptions, StartPosition, Stream};
use weir_operator::Output;
use weir_producer::{GeneratorConfig, Pacer, Tickers, TradeGenerator};

/// Tickers of the trades put.
pub const TICKERS: usize = 1_000;

/// A new stream of `shards` shards, named `prefix` and a unique suffix, once ACTIVE.
pub async fn create(client: &Client, prefix: &str, shards: i32) -> String {
    let name = format!("{prefix}-{}-{}", std::process::id(), rand_suffix());
    client.create_stream().stream_name(&name).shard_count(shards).send().await.expect("create stream");
    loop {
        let d = client.describe_stream_summary().stream_name(&name).send().await.expect("describe");
        if d.stream_description_summary().map(|s| s.stream_status().as_str()) == Some("ACTIVE") {
            return name;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Put `count` trades of [`TICKERS`] tickers, as fast as the stream takes them or at `rate`.
pub async fn produce(client: &Client, stream: &str, count: u64, rate: Option<f64>) {
    let sink = KinesisSink::connect(kinesis(client).await, Stream(stream.to_string())).await.expect("sink");
    let (tx, rx) = tokio::sync::mpsc::channel::<Outgoing>(4);
    let writer = tokio::spawn(sink.run(rx));
    let config = GeneratorConfig {
        tickers: Tickers::Synthetic(TICKERS),
        seed: 7,
        start_time_ms: weir::clock::now_ms(),
        step_ms: 1,
    };
    let mut generator = TradeGenerator::new(&config).expect("generator");
    let mut pacer = rate.map(Pacer::new);
    let mut sent = 0;
    let mut line = Vec::new();
    while sent < count {
        let due = match &mut pacer {
            Some(p) => p.due((count - sent).min(500)),
            None => (count - sent).min(500),
        };
        if due == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
            continue;
        }
        let mut out = Output::default();
        for _ in 0..due {
            line.clear();
            let ticker = generator.write_next(&mut line).to_string();
            out.emit(&ticker, &line);
        }
        sent += due;
        tx.send(out.into()).await.expect("sink running");
    }
    drop(tx);
    writer.await.expect("writer").expect("put");
}

/// Seconds from `started` until `counter` reaches `target`.
pub async fn wait_for(counter: &AtomicU64, target: u64, started: Instant) -> f64 {
    while counter.load(Relaxed) < target {
        assert!(started.elapsed() < Duration::from_secs(600), "stalled at {}", counter.load(Relaxed));
        tokio::time::sleep(Duration::from_micros(500)).await;
    }
    started.elapsed().as_secs_f64()
}

/// How weir reads: from `start`, polling or through `fan_out`, ending after `until_idle`.
pub fn source_options(
    start: StartPosition,
    until_idle: Option<Duration>,
    fan_out: Option<FanOut>,
) -> ReadOptions {
    ReadOptions {
        start,
        poll_interval: Duration::from_millis(200),
        discovery_interval: Duration::from_secs(10),
        until_idle,
        resume: Default::default(),
        only: None,
        fan_out,
    }
}

/// weir's client wrapper around `client`.
pub async fn kinesis(client: &Client) -> Kinesis {
    Kinesis::with_client(client.clone(), &weir_aws::config(None).await)
}

/// Seconds until weir's pipeline (Kinesis source, `loaded`, Kinesis sink) has taken in
/// `records` records of `stream` from trim-horizon, polling or through `fan_out`.
pub async fn weir_drain(
    client: &Client,
    stream: &str,
    records: u64,
    loaded: LoadedOperator,
    fan_out: Option<FanOut>,
) -> f64 {
    // WEIR_BENCH_SINK=discard: results dropped rather than written to a second stream, to tell
    // reading from writing apart on a machine whose cores the emulator shares.
    let discard = std::env::var("WEIR_BENCH_SINK").is_ok_and(|v| v == "discard");
    let out = if discard { None } else { Some(create(client, "bench-out", 1).await) };
    let started = Instant::now();
    let metrics = Arc::new(Metrics::default());
    let options = source_options(StartPosition::TrimHorizon, Some(Duration::from_millis(500)), fan_out);
    let source = KinesisSource::connect(
        kinesis(client).await,
        Stream(stream.to_string()),
        options,
        1024,
        metrics.clone(),
    )
    .await
    .expect("source");
    let sink = match out {
        None => Sink::File(FileSink::new(tokio::io::sink(), "discarded results")),
        Some(out) => {
            Sink::Kinesis(KinesisSink::connect(kinesis(client).await, Stream(out)).await.expect("sink"))
        }
    };
    let dead_letters = DeadLetterWriter::new(Box::new(std::io::sink()), "dead letters");
    let pipeline = Pipeline::new(Source::Kinesis(Box::new(source)), loaded, sink, dead_letters)
        .metrics(metrics.clone())
        .options(PipelineOptions {
            // As `weir run` does: one instance per available core (WEIR_BENCH_PARALLELISM).
            parallelism: super::env(
                "WEIR_BENCH_PARALLELISM",
                std::thread::available_parallelism().map_or(1, |n| n.get()),
            ),
            stats_interval: Duration::from_secs(3600),
            ..PipelineOptions::default()
        });
    let run = tokio::spawn(pipeline.run(std::future::pending()));
    while metrics.snapshot().records_in < records {
        assert!(started.elapsed() < Duration::from_secs(600), "weir stalled");
        tokio::time::sleep(Duration::from_micros(500)).await;
    }
    let took = started.elapsed().as_secs_f64();
    run.await.expect("pipeline task").expect("pipeline");
    took
}

/// Nanoseconds since the epoch: a suffix no other stream of the run has.
pub fn rand_suffix() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0)
}

/// `GET /metrics` at `addr`, the body (empty while nothing answers).
pub fn scrape(addr: &str) -> String {
    use std::io::{Read, Write};
    let Ok(mut stream) = std::net::TcpStream::connect(addr) else { return String::new() };
    let _ = stream.write_all(b"GET /metrics HTTP/1.1\r\nHost: weir\r\nConnection: close\r\n\r\n");
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    response.split_once("\r\n\r\n").map(|(_, body)| body.to_string()).unwrap_or_default()
}

pub fn series(text: &str, name: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
}

/// p50 and p99 of `weir_added_latency_seconds` as "<= bound" strings, and the sample count.
pub fn percentiles(text: &str) -> (String, String, u64) {
    let buckets: Vec<(f64, u64)> = text
        .lines()
        .filter_map(|l| l.strip_prefix("weir_added_latency_seconds_bucket{le=\""))
        .filter_map(|l| {
            let (le, count) = l.split_once("\"} ")?;
            let le = if le == "+Inf" { f64::INFINITY } else { le.parse().ok()? };
            Some((le, count.trim().parse().ok()?))
        })
        .collect();
    let total = buckets.last().map_or(0, |b| b.1);
    let at = |q: f64| {
        let rank = (q * total as f64).ceil() as u64;
        let index = buckets.iter().position(|(_, c)| *c >= rank.max(1)).unwrap_or(0);
        let upper = buckets[index].0;
        let lower = index.checked_sub(1).map_or(0.0, |i| buckets[i].0);
        format!("{:.1}-{:.1} ms", lower * 1e3, upper * 1e3)
    };
    if total == 0 {
        return ("no samples".into(), "no samples".into(), 0);
    }
    (at(0.50), at(0.99), total)
}

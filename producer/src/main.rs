//! `weir-producer`: generated stock trades as JSON lines on stdout, or into a Kinesis stream.

use std::io::{BufWriter, Write};
use std::time::{Duration, Instant};

use std::io::IsTerminal;
use std::sync::atomic::Ordering::Relaxed;

use anyhow::{Context, Result};
use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use weir_aws as aws;
use weir_kinesis::{Kinesis, KinesisWriter, Stream};
use weir_producer::{GeneratorConfig, Pacer, Tickers, TradeGenerator};

/// Generate stock trades (random-walk prices), for example
/// `{"EVENT_TIME": "2026-11-25T10:00:00.123", "TICKER": "AMZN", "PRICE": 42.17}`, as JSON
/// lines on standard output or into a Kinesis stream (partition key: the ticker, or see
/// --partition-key).
///
/// Event times start at the current time (or --start-time) and advance by --step per trade,
/// independent of the wall clock; --rate paces the output in wall-clock time.
#[derive(Parser, Debug)]
#[command(version, about, long_about)]
struct Args {
    /// Trades per second of wall-clock time; 0 writes as fast as possible.
    #[arg(long, default_value_t = 1000.0)]
    rate: f64,
    /// Stop after this many trades.
    #[arg(long, conflicts_with = "duration")]
    count: Option<u64>,
    /// Stop after this much wall-clock time, such as 30s or 5m.
    #[arg(long, value_parser = parse_duration)]
    duration: Option<Duration>,
    /// `default` (AMZN, GOOG, AZRE, ORCL, BABA), a number N of synthetic tickers, or a
    /// comma-separated list of names.
    #[arg(long, default_value = "default")]
    tickers: Tickers,
    /// Seed of the random walk: the same seed gives the same trades.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Event time of the first trade (RFC 3339, such as 2026-11-25T10:00:00Z); default: now.
    #[arg(long)]
    start_time: Option<jiff::Timestamp>,
    /// Event time between consecutive trades, such as 1ms.
    #[arg(long, default_value = "1ms", value_parser = parse_duration)]
    step: Duration,
    /// Where trades go: `-` (standard output) or `kinesis://STREAM` (or a stream ARN), written
    /// in batched PutRecords calls that back off when the stream throttles. AWS credentials,
    /// region and endpoint come from the usual places (AWS_PROFILE, AWS_REGION,
    /// AWS_ENDPOINT_URL_KINESIS, ...).
    #[arg(long, default_value = "-", value_name = "LOCATION")]
    sink: String,
    /// The AWS region, for a Kinesis sink.
    #[arg(long)]
    region: Option<String>,
    /// The partition key of each record written to Kinesis: `ticker`, `random` (a fresh random
    /// key per trade, as producers that spread load do) or `constant` (one key for every
    /// trade, as the original application's producer did: everything lands on one shard).
    #[arg(long, value_enum, default_value = "ticker")]
    partition_key: PartitionKey,
}

/// How records are keyed in the stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum PartitionKey {
    /// The trade's ticker.
    Ticker,
    /// A random key per trade.
    Random,
    /// The same key for every trade.
    Constant,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let d: jiff::SignedDuration =
        s.parse().map_err(|e| format!("{e}; write a duration such as 30s or 1ms"))?;
    Duration::try_from(d).map_err(|e| e.to_string())
}

fn main() -> Result<()> {
    let args = Args::parse();
    let config = GeneratorConfig {
        tickers: args.tickers.clone(),
        seed: args.seed,
        start_time_ms: args.start_time.unwrap_or_else(jiff::Timestamp::now).as_millisecond(),
        step_ms: args.step.as_millis() as i64,
    };
    let generator = TradeGenerator::new(&config)?;
    let stream = match args.sink.as_str() {
        "-" => None,
        s if s.starts_with("arn:") => Some(s.to_string()),
        s => match s.strip_prefix("kinesis://") {
            Some(name) if !name.is_empty() => Some(name.to_string()),
            _ => anyhow::bail!("--sink {s:?}: write - for standard output or kinesis://STREAM"),
        },
    };
    match stream {
        None => to_stdout(&args, generator),
        Some(stream) => {
            tokio::runtime::Runtime::new()?.block_on(to_kinesis(&args, generator, Stream(stream)))
        }
    }
}

/// Whether the run is over: the count reached or the duration passed.
fn done(args: &Args, sent: u64, started: Instant) -> bool {
    args.count.is_some_and(|c| sent >= c) || args.duration.is_some_and(|d| started.elapsed() >= d)
}

async fn to_kinesis(args: &Args, mut generator: TradeGenerator, stream: Stream) -> Result<()> {
    let config = aws::config(args.region.as_deref()).await;
    let sink = KinesisWriter::connect(Kinesis::new(&config), stream.clone()).await?;
    let stats = sink.stats();
    // A few batches in flight at most: the writer's own queue does the buffering.
    let (tx, rx) = tokio::sync::mpsc::channel::<Vec<(String, Vec<u8>)>>(4);
    let writer = tokio::spawn(sink.run(rx));
    let progress = if std::io::stderr().is_terminal() {
        let bar = match args.count {
            Some(n) => ProgressBar::new(n),
            None => ProgressBar::new_spinner(),
        };
        bar.set_style(
            ProgressStyle::with_template("{spinner} {pos}/{len} trades sent [{elapsed}] {per_sec} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar
    } else {
        ProgressBar::hidden()
    };
    let mut pacer = Pacer::new(args.rate);
    let started = Instant::now();
    let mut queued: u64 = 0;
    let mut line = Vec::with_capacity(128);
    while !done(args, queued, started) {
        let room = args.count.map_or(500, |c| (c - queued).min(500));
        let due = pacer.due(room);
        if due == 0 {
            tokio::time::sleep(pacer.until_next().max(Duration::from_millis(1))).await;
            progress.set_position(stats.records.load(Relaxed));
            continue;
        }
        let mut batch = Vec::with_capacity(due as usize);
        for _ in 0..due {
            line.clear();
            let ticker = generator.write_next(&mut line);
            let key = match args.partition_key {
                PartitionKey::Ticker => ticker.to_string(),
                PartitionKey::Random => format!("{:032x}", rand::random::<u128>()),
                PartitionKey::Constant => "trades".to_string(),
            };
            batch.push((key, line.clone()));
        }
        queued += due;
        if tx.send(batch).await.is_err() {
            break;
        }
        progress.set_position(stats.records.load(Relaxed));
    }
    drop(tx);
    writer.await.context("the Kinesis writer stopped")??;
    progress.finish_and_clear();
    let elapsed = started.elapsed().as_secs_f64();
    let sent = stats.records.load(Relaxed);
    eprintln!(
        "sent {sent} trades to {stream} in {elapsed:.1} s ({:.0}/s), {} retried entries",
        sent as f64 / elapsed.max(1e-9),
        stats.retries.load(Relaxed)
    );
    Ok(())
}

fn to_stdout(args: &Args, mut generator: TradeGenerator) -> Result<()> {
    let mut out = BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    let mut pacer = Pacer::new(args.rate);
    let started = Instant::now();
    let mut sent: u64 = 0;
    let mut line = Vec::with_capacity(128);
    while !done(args, sent, started) {
        let room = args.count.map_or(1024, |c| (c - sent).min(1024));
        let due = pacer.due(room);
        if due == 0 {
            out.flush().context("writing to standard output")?;
            std::thread::sleep(pacer.until_next().max(Duration::from_micros(100)));
            continue;
        }
        for _ in 0..due {
            line.clear();
            generator.write_next(&mut line);
            line.push(b'\n');
            match out.write_all(&line) {
                Ok(()) => {}
                // A closed pipe (`| head`) is a normal way to stop.
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(()),
                Err(e) => return Err(e).context("writing to standard output"),
            }
        }
        sent += due;
    }
    match out.flush() {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e).context("writing to standard output"),
        _ => Ok(()),
    }
}

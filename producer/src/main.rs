//! `weir-producer`: write generated stock trades as JSON lines.

use std::io::{BufWriter, Write};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Parser;
use weir_producer::{GeneratorConfig, Pacer, Tickers, TradeGenerator};

/// Generate stock trades (random-walk prices) as JSON lines on standard output, for example
/// `{"EVENT_TIME": "2026-11-25T10:00:00.123", "TICKER": "AMZN", "PRICE": 42.17}`.
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
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let d: jiff::SignedDuration =
        s.parse().map_err(|e| format!("{e}; write a duration such as 30s or 1ms"))?;
    Duration::try_from(d).map_err(|e| e.to_string())
}

fn main() -> Result<()> {
    let args = Args::parse();
    let config = GeneratorConfig {
        tickers: args.tickers,
        seed: args.seed,
        start_time_ms: args.start_time.unwrap_or_else(jiff::Timestamp::now).as_millisecond(),
        step_ms: args.step.as_millis() as i64,
    };
    let mut generator = TradeGenerator::new(&config)?;
    let mut out = BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    let mut pacer = Pacer::new(args.rate);
    let started = Instant::now();
    let mut sent: u64 = 0;
    let mut line = Vec::with_capacity(128);
    loop {
        if args.count.is_some_and(|c| sent >= c) || args.duration.is_some_and(|d| started.elapsed() >= d) {
            break;
        }
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

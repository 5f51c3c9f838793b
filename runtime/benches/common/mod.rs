//! What the CPU-measuring benches share: process CPU time, medians, settings from the
//! environment, and one run of the whole `weir run` path over JSON lines in memory.

#![allow(dead_code)]

pub mod kinesis;

use std::sync::Arc;
use std::time::{Duration, Instant};

use weir::artifact::Artifact;
use weir::deployment::Versions;
use weir::metrics::Metrics;
use weir::operator::{LoadedOperator, OperatorEngine, Runner};
use weir::pipeline::{Checkpoints, Pipeline, PipelineOptions};
use weir::sink::{DeadLetterWriter, FileSink, Sink};
use weir::source::{FileSource, Source};
use weir_operator::OwnedBatch;
use weir_producer::{GeneratorConfig, Tickers, TradeGenerator};

/// 2026-11-25T10:00:00Z, where generated trades start.
pub const T0: i64 = 1_795_600_800_000;

/// `n` reference trades as JSON lines: 1,000 tickers, 1 ms apart, seed 1.
pub fn reference_lines(n: usize) -> Vec<u8> {
    let config =
        GeneratorConfig { tickers: Tickers::Synthetic(1000), seed: 1, start_time_ms: T0, step_ms: 1 };
    let mut generator = TradeGenerator::new(&config).expect("generator");
    let mut lines = Vec::with_capacity(n * 80);
    for _ in 0..n {
        generator.write_next(&mut lines);
        lines.push(b'\n');
    }
    lines
}

/// User + system CPU time of this process so far (Linux: /proc/self/stat, in clock ticks).
pub fn cpu_time() -> Duration {
    // Fields 14 and 15 of stat (utime, stime) are at 11 and 12 after the command name.
    self_stat_time(11, 12)
}

/// User + system CPU time of this process's children that ended and were waited for.
pub fn children_cpu_time() -> Duration {
    // Fields 16 and 17 of stat (cutime, cstime) are at 13 and 14 after the command name.
    self_stat_time(13, 14)
}

/// The sum of two clock-tick fields of /proc/self/stat (counted after the command name).
fn self_stat_time(user: usize, system: usize) -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map(|(_, s)| s).unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    Duration::from_millis((ticks(user) + ticks(system)) * 10)
}

pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

pub fn env(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// What one run of the whole path did.
pub struct WholePath {
    /// Records read.
    pub records: f64,
    /// CPU time of the process (all threads) during the run.
    pub cpu: Duration,
    /// Wall-clock time of the run.
    pub wall: Duration,
    /// Its metrics at the end.
    pub metrics: Arc<Metrics>,
}

/// `lines` (JSON lines in memory) -> file source -> the default operator at `parallelism` ->
/// a discarding sink, in batches of `batch`, with `checkpoints` if given.
pub fn whole_path(
    engine: &OperatorEngine,
    lines: &[u8],
    batch: usize,
    parallelism: usize,
    checkpoints: Option<Checkpoints>,
) -> WholePath {
    let loaded = engine.load(Artifact::embedded_default(), &[]).expect("load");
    whole_path_of(loaded, lines, batch, parallelism, checkpoints)
}

/// [`whole_path`] with an operator already loaded (or versions, with a candidate).
pub fn whole_path_of(
    loaded: impl Into<Versions>,
    lines: &[u8],
    batch: usize,
    parallelism: usize,
    checkpoints: Option<Checkpoints>,
) -> WholePath {
    // The runtime weir run makes for this many instances.
    let rt = weir::pipeline::runtime(parallelism).expect("runtime");
    let source = Source::File(FileSource::new(std::io::Cursor::new(lines.to_vec()), "bench", batch));
    let sink = Sink::File(FileSink::new(tokio::io::sink(), "sink"));
    let dead = DeadLetterWriter::new(Box::new(std::io::sink()), "dead");
    let metrics = Arc::new(Metrics::default());
    let options = PipelineOptions {
        parallelism,
        tick_interval: Duration::from_secs(1),
        stats_interval: Duration::from_secs(3600),
        ..PipelineOptions::default()
    };
    let (cpu0, wall0) = (cpu_time(), Instant::now());
    let run = Pipeline::new(source, loaded, sink, dead)
        .metrics(metrics.clone())
        .options(options)
        .checkpoints(checkpoints)
        .run(std::future::pending());
    rt.block_on(run).expect("pipeline");
    let (cpu, wall) = (cpu_time() - cpu0, wall0.elapsed());
    WholePath { records: metrics.snapshot().records_in as f64, cpu, wall, metrics }
}

/// An instance of `loaded` (sliding-window-max in some language) holding window state for
/// 1,000 tickers: half a minute of reference trades processed, 30 batches of 1,000.
pub fn runner_with_state(loaded: LoadedOperator) -> Runner {
    let mut runner = Runner::new(loaded, "instance 0", Default::default()).expect("instance");
    let config =
        GeneratorConfig { tickers: Tickers::Synthetic(1_000), seed: 3, start_time_ms: T0, step_ms: 1 };
    let mut generator = TradeGenerator::new(&config).expect("generator");
    let mut line = Vec::new();
    for _ in 0..30 {
        let mut batch = OwnedBatch::new("shard-0");
        for _ in 0..1_000 {
            line.clear();
            let ticker = generator.write_next(&mut line).to_string();
            batch.push(&ticker, &line, 0);
        }
        runner.process(&mut batch).expect("process");
    }
    assert_eq!(runner.snapshot().expect("snapshot").keys(), 1_000, "every ticker holds state");
    runner
}

/// One swap of [`swap_pauses`]: making the new instance and tearing the old one down, which
/// `Instances::swap` does off the instance's thread, and the pause itself (the old instance's
/// snapshot, the new one's restore).
pub struct Swap {
    pub made: Duration,
    /// The part of the pause the old instance's snapshot took (the rest is the restore).
    pub snapshotted: Duration,
    pub paused: Duration,
    pub dropped: Duration,
}

/// `swaps` switches of `runner` between its operator and `other`, carrying the state, timed as
/// `Instances::swap` does them.
pub fn swap_pauses(mut runner: Runner, other: LoadedOperator, swaps: usize) -> Vec<Swap> {
    let mut next = other;
    let mut timed = Vec::with_capacity(swaps);
    for _ in 0..swaps {
        let making = Instant::now();
        let instance = next.instantiate().expect("instance");
        let made = making.elapsed();
        let started = Instant::now();
        let state = runner.snapshot().expect("snapshot");
        let snapshotted = started.elapsed();
        let replacement = Runner::restored(next, instance, "instance 0", state).expect("restore");
        let paused = started.elapsed();
        let old = std::mem::replace(&mut runner, replacement);
        next = old.loaded().clone();
        let dropping = Instant::now();
        drop(old);
        timed.push(Swap { made, snapshotted, paused, dropped: dropping.elapsed() });
    }
    timed
}

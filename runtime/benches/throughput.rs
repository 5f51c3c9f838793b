//! Throughput on the reference workload (DESIGN.md): trades 1 ms apart, random-walk prices,
//! window 60 s, slide 10 s, 1,000 tickers and 5 tickers.
//!
//! Measures, in one run so the ratios compare like with like:
//! - the operator alone, native (the crate called directly) and wasm (the component in the
//!   host, one call per batch), at several batch sizes;
//! - the whole `weir run` path: JSON lines in memory -> file source -> operator -> sink
//!   (discarding), in records per CPU-second (user + system time of the process, all threads).
//!
//! `cargo bench --profile dev -p weir --bench throughput` (records: `WEIR_BENCH_RECORDS`,
//! default 10,000,000). Prints a Markdown table for BENCHMARKS.md.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sliding_window_max::SlidingWindowMax;
use weir::artifact::Artifact;
use weir::metrics::Metrics;
use weir::operator::{Limits, OperatorEngine, ShardOperator};
use weir::pipeline::{self, PipelineOptions};
use weir::sink::{DeadLetterWriter, FileSink};
use weir::source::{FileSource, Source};
use weir_operator::{Operator, Output, OwnedBatch, Settings};
use weir_producer::{GeneratorConfig, Tickers, TradeGenerator};

const T0: i64 = 1_795_600_800_000;

/// User + system CPU time of this process so far (Linux: /proc/self/stat, in clock ticks).
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map(|(_, s)| s).unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    // Fields 14 and 15 of stat (utime, stime) are at 11 and 12 after the command name.
    Duration::from_millis((ticks(11) + ticks(12)) * 10)
}

struct Workload {
    name: &'static str,
    lines: Vec<u8>,
    records: Vec<(String, std::ops::Range<usize>)>,
}

fn workload(name: &'static str, tickers: Tickers, n: usize) -> Workload {
    let config = GeneratorConfig { tickers, seed: 1, start_time_ms: T0, step_ms: 1 };
    let mut g = TradeGenerator::new(&config).expect("generator");
    let mut lines = Vec::with_capacity(n * 80);
    let mut records = Vec::with_capacity(n);
    for _ in 0..n {
        let start = lines.len();
        let key = g.write_next(&mut lines).to_string();
        records.push((key, start..lines.len()));
        lines.push(b'\n');
    }
    Workload { name, lines, records }
}

fn batches(w: &Workload, size: usize) -> Vec<OwnedBatch> {
    w.records
        .chunks(size)
        .map(|chunk| {
            let mut b = OwnedBatch::new("shard-0");
            for (key, range) in chunk {
                b.push(key, &w.lines[range.clone()], T0);
            }
            b
        })
        .collect()
}

fn native(w: &Workload, size: usize) -> (f64, usize) {
    let batches = batches(w, size);
    let mut op = SlidingWindowMax::init(&Settings::default()).expect("init");
    let mut out = Output::default();
    let mut outputs = 0;
    let start = Instant::now();
    for b in &batches {
        op.process(&b.view(), &mut out).expect("process");
        outputs += out.len();
        out.clear();
    }
    op.finish(0, &mut out).expect("finish");
    outputs += out.len();
    (w.records.len() as f64 / start.elapsed().as_secs_f64(), outputs)
}

fn wasm(engine: &OperatorEngine, w: &Workload, size: usize) -> (f64, usize) {
    let mut batches = batches(w, size);
    let loaded = engine.load(Artifact::embedded_default(), &[]).expect("load");
    let mut instance = loaded.instantiate().expect("instance");
    let mut outputs = 0;
    let start = Instant::now();
    for b in &mut batches {
        outputs += instance.process(b).expect("process").len();
    }
    outputs += instance.finish(0).expect("finish").len();
    (w.records.len() as f64 / start.elapsed().as_secs_f64(), outputs)
}

fn whole_path(engine: &OperatorEngine, w: &Workload, size: usize) -> (f64, f64) {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    let loaded = engine.load(Artifact::embedded_default(), &[]).expect("load");
    let operator = ShardOperator::new(loaded, "bench", Vec::new()).expect("operator");
    let input = std::io::Cursor::new(w.lines.clone());
    let source = Source::File(FileSource::new(input, "bench", size));
    let sink = FileSink::new(tokio::io::sink(), "sink");
    let dead = DeadLetterWriter::new(Box::new(std::io::sink()), "dead");
    let metrics = Arc::new(Metrics::default());
    let options =
        PipelineOptions { tick_interval: Duration::from_secs(1), stats_interval: Duration::from_secs(3600) };
    let (cpu0, wall0) = (cpu_time(), Instant::now());
    rt.block_on(pipeline::run(
        source,
        operator,
        sink,
        dead,
        metrics.clone(),
        options,
        std::future::pending(),
    ))
    .expect("pipeline");
    let (cpu, wall) = (cpu_time() - cpu0, wall0.elapsed());
    let n = metrics.snapshot().records_in as f64;
    assert_eq!(n as usize, w.records.len());
    (n / cpu.as_secs_f64(), n / wall.as_secs_f64())
}

fn main() {
    let n: usize =
        std::env::var("WEIR_BENCH_RECORDS").ok().and_then(|v| v.parse().ok()).unwrap_or(10_000_000);
    let engine = OperatorEngine::new(Limits::default(), None).expect("engine");
    println!("records per workload: {n}\n");
    println!(
        "| workload | batch | native rec/s | wasm rec/s | wasm / native | whole path rec/s per CPU-s | whole path rec/s wall |"
    );
    println!("|---|---|---|---|---|---|---|");
    for (name, tickers) in [("1,000 tickers", Tickers::Synthetic(1000)), ("5 tickers", Tickers::Default)] {
        let w = workload(name, tickers, n);
        for size in [256, 1024, 4096] {
            let (native_rate, native_out) = native(&w, size);
            let (wasm_rate, wasm_out) = wasm(&engine, &w, size);
            assert_eq!(native_out, wasm_out, "native and wasm produced different numbers of results");
            let (per_cpu, per_wall) =
                if size == 1024 { whole_path(&engine, &w, size) } else { (f64::NAN, f64::NAN) };
            let fmt = |v: f64| if v.is_nan() { "-".to_string() } else { format!("{:.2} M", v / 1e6) };
            println!(
                "| {} | {size} | {} | {} | {:.2}x | {} | {} |",
                w.name,
                fmt(native_rate),
                fmt(wasm_rate),
                wasm_rate / native_rate,
                fmt(per_cpu),
                fmt(per_wall)
            );
        }
    }
}

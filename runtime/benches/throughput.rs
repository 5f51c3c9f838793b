//! Throughput on the reference workload: trades 1 ms apart, random-walk prices,
//! window 60 s, slide 10 s, 1,000 tickers and 5 tickers.
//!
//! Measures, in one run so the ratios compare like with like:
//! - the operator alone, native (the crate called directly) and wasm (the component in the
//!   host, one call per batch), at several batch sizes;
//! - the whole `weir run` path: JSON lines in memory -> file source -> operator -> sink
//!   (discarding), in records per CPU-second (user + system time of the process, all threads),
//!   with one instance and with two (wall-clock rates too, and their ratio);
//! - the `weir` binary on the trades as a file with one instance, two, and two processes side
//!   by side on half the trades each: the ceiling two cores allow, and how close a second
//!   instance comes to it;
//! - routing alone: what finding each record's instance by its TICKER field adds to putting
//!   it into a source's batch, in ns per record, beside the whole path's ns per record;
//! - the watermark's work per step (`WEIR_BENCH_ONLY=watermark`): a step's event times folded
//!   in, a caught-up read, the step's end recorded, the watermark computed, with 8 and 1,000
//!   shards, beside what a step of the whole path costs.
//!
//! `cargo bench --profile dev -p weir --bench throughput` (records: `WEIR_BENCH_RECORDS`,
//! default 10,000,000; `WEIR_BENCH_ONLY=native`, `whole`, `ceiling`, `routing`, `source` or `watermark` runs only
//! that, for profiling; `WEIR_BENCH_COMPARE=a.wasm,b.wasm` compares builds of
//! sliding-window-max, operator alone, against the native crate as it is now).
//! Prints a Markdown table for BENCHMARKS.md.

mod common;

use std::time::{Duration, Instant};

use common::{T0, env, median};

use sliding_window_max::SlidingWindowMax;
use weir::artifact::Artifact;
use weir::operator::{Limits, LoadedOperator, OperatorEngine};
use weir::routing::Router;
use weir::source::Batcher;
use weir_operator::{Grouping, Operator, Output, OwnedBatch, Settings};
use weir_producer::{GeneratorConfig, Tickers, TradeGenerator};

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
    let mut batches = batches(w, size);
    let mut op = SlidingWindowMax::init(&Settings::default()).expect("init");
    let mut out = Output::default();
    let mut outputs = 0;
    // As the host does for one shard: the watermark is the latest event time reported.
    let mut watermark = weir_operator::NO_WATERMARK;
    let start = Instant::now();
    for b in &mut batches {
        b.watermark_ms = watermark;
        op.process(&b.view(), &mut out).expect("process");
        watermark = watermark.max(out.event_time_ms.unwrap_or(watermark));
        outputs += out.len();
        out.clear();
    }
    op.finish(0, &mut out).expect("finish");
    outputs += out.len();
    (w.records.len() as f64 / start.elapsed().as_secs_f64(), outputs)
}

fn wasm(engine: &OperatorEngine, w: &Workload, size: usize) -> (f64, usize) {
    wasm_of(&engine.load(Artifact::embedded_default(), &[]).expect("load"), w, size)
}

/// [`wasm`] with the operator `loaded`.
fn wasm_of(loaded: &LoadedOperator, w: &Workload, size: usize) -> (f64, usize) {
    let mut batches = batches(w, size);
    let mut instance = loaded.instantiate().expect("instance");
    let mut outputs = 0;
    let mut watermark = weir_operator::NO_WATERMARK;
    let start = Instant::now();
    for b in &mut batches {
        b.watermark_ms = watermark;
        let out = instance.process(b).expect("process");
        watermark = watermark.max(out.event_time_ms.unwrap_or(watermark));
        outputs += out.len();
    }
    outputs += instance.finish(0).expect("finish").len();
    (w.records.len() as f64 / start.elapsed().as_secs_f64(), outputs)
}

/// `weir run` processes side by side, each `(parallelism, file)` over its file into a file
/// beside it (`.out`, written through the page cache, as /dev/null is not): CPU of all of
/// them (user + system) and wall-clock time until the last ends.
fn weir_runs(runs: &[(usize, &std::path::Path)]) -> (Duration, Duration) {
    let (cpu0, wall0) = (common::children_cpu_time(), Instant::now());
    let children: Vec<_> = runs
        .iter()
        .map(|(parallelism, file)| {
            std::process::Command::new(env!("CARGO_BIN_EXE_weir"))
                .args(["run", "--parallelism", &parallelism.to_string(), "--source"])
                .arg(file)
                .arg("--sink")
                .arg(file.with_extension("out"))
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .expect("weir")
        })
        .collect();
    for mut child in children {
        assert!(child.wait().expect("wait").success(), "weir run failed");
    }
    (common::children_cpu_time() - cpu0, wall0.elapsed())
}

/// The results a run wrote next to `file`, sorted (instances interleave their results).
fn results(file: &std::path::Path) -> Vec<Vec<u8>> {
    let out = std::fs::read(file.with_extension("out")).expect("results");
    let mut lines: Vec<Vec<u8>> =
        out.split(|&b| b == b'\n').filter(|l| !l.is_empty()).map(<[u8]>::to_vec).collect();
    lines.sort_unstable();
    lines
}

/// The `weir` binary on the workload as a file: one instance, two, and two processes of one
/// instance side by side, each on half the trades (independent runs: every ticker is in both
/// halves, their results are not merged). The last is what two cores allow with nothing shared
/// between the two, the ceiling a second instance is measured against. Per run, records per
/// CPU-second and per wall-clock second; two instances' results must be one instance's.
fn against_ceiling(w: &Workload, dir: &std::path::Path) -> [(f64, f64); 3] {
    let middle = w.records[w.records.len() / 2].1.start;
    let files = [("all", &w.lines[..]), ("first", &w.lines[..middle]), ("second", &w.lines[middle..])].map(
        |(name, lines)| {
            let path = dir.join(format!("{name}.jsonl"));
            std::fs::write(&path, lines).expect("write trades");
            path
        },
    );
    // The compiled cache warmed first, as a running job's is.
    weir_runs(&[(1, &files[1])]);
    let n = w.records.len() as f64;
    let rate = |(cpu, wall): (Duration, Duration)| (n / cpu.as_secs_f64(), n / wall.as_secs_f64());
    let one = rate(weir_runs(&[(1, &files[0])]));
    let by_one = results(&files[0]);
    let two = rate(weir_runs(&[(2, &files[0])]));
    assert!(!by_one.is_empty(), "one instance wrote no results");
    assert!(by_one == results(&files[0]), "two instances wrote other results than one");
    // The halves are not checked against the whole: a window spanning the split is in both.
    [one, two, rate(weir_runs(&[(1, &files[1]), (1, &files[2])]))]
}

/// The table of [`against_ceiling`] for each workload, medians of `rounds`.
fn ceiling_table(workloads: &[Workload], rounds: usize) {
    let m = |v: f64| format!("{:.2} M", v / 1e6);
    println!(
        "\nThe weir binary, trades from a file, results to a file (compiled cache warm): one instance, two (its results checked against one's), and two processes of one instance side by side on half the trades each (the ceiling):\n"
    );
    println!(
        "| workload | 1 instance, per CPU-s | 2 instances, per CPU-s | 2 halves, per CPU-s | 1 instance, per s | 2 instances, per s | 2 halves, per s | 2 / 1 wall-clock | 2 halves / 1 | 2 instances / 2 halves |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    let dir = tempfile::tempdir().expect("temporary directory");
    for w in workloads {
        let runs: Vec<[(f64, f64); 3]> = (0..rounds).map(|_| against_ceiling(w, dir.path())).collect();
        let cpu = |i: usize| median(runs.iter().map(|r| r[i].0).collect());
        let wall = |i: usize| median(runs.iter().map(|r| r[i].1).collect());
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {:.2}x | {:.2}x | {:.2}x |",
            w.name,
            m(cpu(0)),
            m(cpu(1)),
            m(cpu(2)),
            m(wall(0)),
            m(wall(1)),
            m(wall(2)),
            wall(1) / wall(0),
            wall(2) / wall(0),
            wall(1) / wall(2)
        );
    }
}

/// Records per CPU-second (all threads) and per wall-clock second of the whole path with
/// `parallelism` instances.
fn whole_path(engine: &OperatorEngine, w: &Workload, size: usize, parallelism: usize) -> (f64, f64) {
    let run = common::whole_path(engine, &w.lines, size, parallelism, None);
    assert_eq!(run.records as usize, w.records.len());
    (run.records / run.cpu.as_secs_f64(), run.records / run.wall.as_secs_f64())
}

/// Nanoseconds per record that routing adds where records are read: lines put into a
/// source's batches for 2 instances (each record's TICKER found and hashed, the record copied
/// into its owner's sub-batch) against batches for one (copied, not read), same run.
fn routing(w: &Workload, size: usize) -> f64 {
    let batching = |parallelism: usize| {
        let router = Router::new(Grouping::JsonField("TICKER".into()), parallelism);
        let mut batcher = Batcher::new(&router, "shard-0");
        let start = Instant::now();
        for (_, range) in &w.records {
            batcher.push("", &w.lines[range.clone()], T0, None);
            if batcher.len() == size {
                std::hint::black_box(batcher.take());
            }
        }
        std::hint::black_box(batcher.take());
        start.elapsed()
    };
    let one = batching(1);
    let two = batching(2);
    (two.as_secs_f64() - one.as_secs_f64()).max(0.0) * 1e9 / w.records.len() as f64
}

/// CPU nanoseconds per record of the file source alone, one instance: JSON lines in memory
/// split into lines and put into batches of `size`, each batch sent down a channel and dropped.
/// The lines are read four times over, so that the process's CPU clock (10 ms ticks) counts a
/// few hundred ms.
fn file_source(w: &Workload, size: usize) -> f64 {
    use weir::source::{FileSource, Source, SourceEvent};
    const TIMES: usize = 4;
    let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
    let lines: std::sync::Arc<[u8]> = w.lines.as_slice().into();
    let cpu0 = common::cpu_time();
    let records = rt.block_on(async move {
        let mut records = 0;
        for _ in 0..TIMES {
            let (tx, mut rx) = tokio::sync::mpsc::channel(8);
            let source = Source::File(FileSource::new(std::io::Cursor::new(lines.clone()), "bench", size));
            let router = Router::new(Grouping::JsonField("TICKER".into()), 1);
            let reading = tokio::spawn(source.run(tx, router));
            while let Some(event) = rx.recv().await {
                if let SourceEvent::Batch { batch, .. } = event {
                    records += batch.len();
                }
            }
            reading.await.expect("source task").expect("source");
        }
        records
    });
    assert_eq!(records, TIMES * w.records.len(), "every line became a record");
    (common::cpu_time() - cpu0).as_secs_f64() * 1e9 / records as f64
}

/// Nanoseconds of the watermark's work per step with `shards` shards being read: a full step's
/// batches (each from the next shard in turn) folded in, one caught-up read, the collection of
/// their results recorded and the watermark computed.
fn watermark_step(shards: usize) -> f64 {
    use weir::pipeline::watermark::Watermarks;
    let names: Vec<String> = (0..shards).map(|i| format!("shardId-{i:012}")).collect();
    let mut w = Watermarks::new();
    for name in &names {
        w.started(name, &[], Some(weir_kinesis::HashRange::ALL));
    }
    let steps = 200_000;
    let start = Instant::now();
    let mut shard = 0;
    for step in 0..steps {
        let sent = Instant::now();
        for _ in 0..weir::pipeline::STEP_BATCHES {
            w.observe(&names[shard], T0 + step as i64);
            shard = (shard + 1) % shards;
        }
        w.caught_up(&names[shard], sent);
        w.collected(Instant::now());
        std::hint::black_box(w.current());
    }
    start.elapsed().as_secs_f64() * 1e9 / steps as f64
}

/// `WEIR_BENCH_COMPARE=a.wasm,b.wasm,...`: each component (a build of sliding-window-max) and
/// the native operator alone on 1,000 and 5 tickers, batch 1,024, rounds interleaved, CPU limit
/// on and off, then the whole path (one instance, limit on) per CPU-second: what a change to the
/// operator or its build flags buys, measured in one run.
fn compare(files: &str, n: usize, rounds: usize) {
    let limited = OperatorEngine::new(Limits::default(), None).expect("engine");
    let unlimited =
        OperatorEngine::new(Limits { max_call_time: None, ..Limits::default() }, None).expect("engine");
    let files: Vec<&str> = files.split(',').collect();
    // Each build compiled once per engine, not once per round.
    let loaded: Vec<[LoadedOperator; 2]> = files
        .iter()
        .map(|f| {
            let artifact = Artifact::from_file(std::path::Path::new(f)).expect("component");
            [&limited, &unlimited].map(|engine| engine.load(artifact.clone(), &[]).expect("load"))
        })
        .collect();
    println!("{n} records, median of {rounds} rounds, batch 1,024, M records/s (x native)\n");
    println!(
        "| workload | native | {} |",
        files.iter().flat_map(|f| [f.to_string(), format!("{f}, no limit")]).collect::<Vec<_>>().join(" | ")
    );
    println!("|---|---|{}", "---|".repeat(files.len() * 2));
    for (name, tickers) in [("1,000 tickers", Tickers::Synthetic(1000)), ("5 tickers", Tickers::Default)] {
        let w = workload(name, tickers, n);
        let mut native_rates = Vec::new();
        let mut rates = vec![Vec::new(); files.len() * 2];
        for _ in 0..rounds {
            let (rate, expected) = native(&w, 1024);
            native_rates.push(rate);
            for (i, (f, builds)) in files.iter().zip(&loaded).enumerate() {
                for (j, build) in builds.iter().enumerate() {
                    let (rate, outputs) = wasm_of(build, &w, 1024);
                    assert_eq!(outputs, expected, "{f}: outputs differ in number from native");
                    rates[i * 2 + j].push(rate);
                }
            }
        }
        let native_rate = median(native_rates);
        let cells: Vec<String> = rates
            .into_iter()
            .map(|r| {
                let r = median(r);
                format!("{:.2} ({:.2}x)", r / 1e6, r / native_rate)
            })
            .collect();
        println!("| {name} | {:.2} | {} |", native_rate / 1e6, cells.join(" | "));
        // The whole path (one instance, CPU limit on) with each build, in M records per CPU-second.
        let mut whole = vec![Vec::new(); files.len()];
        for _ in 0..rounds {
            for (i, [build, _]) in loaded.iter().enumerate() {
                let run = common::whole_path_of(build.clone(), &w.lines, 1024, 1, None);
                whole[i].push(run.records / run.cpu.as_secs_f64());
            }
        }
        let cells: Vec<String> = whole.into_iter().map(|r| format!("{:.2}", median(r) / 1e6)).collect();
        println!("| {name}, whole path per CPU-s | | {} |", cells.join(" | | "));
    }
}

fn main() {
    let n = env("WEIR_BENCH_RECORDS", 10_000_000);
    if let Ok(files) = std::env::var("WEIR_BENCH_COMPARE") {
        compare(&files, n, env("WEIR_BENCH_ROUNDS", 5).max(1));
        return;
    }
    if std::env::var("WEIR_BENCH_ONLY").as_deref() == Ok("watermark") {
        let w = workload("1,000 tickers", Tickers::Synthetic(1000), n);
        let engine = OperatorEngine::new(Limits::default(), None).expect("engine");
        let (rate, _) = whole_path(&engine, &w, 1024, 1);
        let step_ns = 1e9 / rate * (1024 * weir::pipeline::STEP_BATCHES) as f64;
        println!(
            "whole path, 1,000 tickers, batch 1024: {:.2} M records per CPU-second, {:.0} us per full step",
            rate / 1e6,
            step_ns / 1e3
        );
        println!("\n| shards | watermark, ns per step | share of a full step |\n|---|---|---|");
        for shards in [8, 1000] {
            let ns = watermark_step(shards);
            println!("| {shards} | {ns:.0} | {:.3}% |", ns / step_ns * 100.0);
        }
        return;
    }
    let rounds = env("WEIR_BENCH_ROUNDS", 3).max(1);
    if std::env::var("WEIR_BENCH_ONLY").as_deref() == Ok("native") {
        let w = workload("1,000 tickers", Tickers::Synthetic(1000), n);
        let (rate, _) = native(&w, 1024);
        println!("native, 1,000 tickers, batch 1024: {:.2} M records/s", rate / 1e6);
        return;
    }
    if std::env::var("WEIR_BENCH_ONLY").as_deref() == Ok("routing") {
        let w = workload("1,000 tickers", Tickers::Synthetic(1000), n);
        println!("routing, 1,000 tickers, batch 1024: {:.0} ns per record", routing(&w, 1024));
        return;
    }
    if std::env::var("WEIR_BENCH_ONLY").as_deref() == Ok("source") {
        let w = workload("1,000 tickers", Tickers::Synthetic(1000), n);
        let ns = median((0..rounds).map(|_| file_source(&w, 1024)).collect());
        println!("file source alone, 1,000 tickers, batch 1024: {ns:.1} CPU-ns per record");
        return;
    }
    if std::env::var("WEIR_BENCH_ONLY").as_deref() == Ok("ceiling") {
        ceiling_table(&[workload("1,000 tickers", Tickers::Synthetic(1000), n)], rounds);
        return;
    }
    if std::env::var("WEIR_BENCH_ONLY").as_deref() == Ok("whole") {
        let w = workload("1,000 tickers", Tickers::Synthetic(1000), n);
        let engine = OperatorEngine::new(Limits::default(), None).expect("engine");
        let parallelism = env("WEIR_BENCH_PARALLELISM", 1);
        let (rate, _) = whole_path(&engine, &w, 1024, parallelism);
        println!(
            "whole path, 1,000 tickers, batch 1024, parallelism {parallelism}: {:.2} M records per CPU-second",
            rate / 1e6
        );
        return;
    }
    let limited = OperatorEngine::new(Limits::default(), None).expect("engine");
    let unlimited =
        OperatorEngine::new(Limits { max_call_time: None, ..Limits::default() }, None).expect("engine");
    let m = |v: f64| format!("{:.2} M", v / 1e6);
    println!("{n} records per workload, median of {rounds} rounds, runs interleaved\n");
    println!("Operator alone (records/s on one core):\n");
    println!("| workload | batch | native | wasm | wasm / native | wasm, no CPU limit | no limit / native |");
    println!("|---|---|---|---|---|---|---|");
    let workloads = [("1,000 tickers", Tickers::Synthetic(1000)), ("5 tickers", Tickers::Default)];
    let workloads: Vec<Workload> = workloads.into_iter().map(|(name, t)| workload(name, t, n)).collect();
    for w in &workloads {
        for size in [256, 1024, 4096] {
            let (mut a, mut b, mut c) = (Vec::new(), Vec::new(), Vec::new());
            for _ in 0..rounds {
                let (native_rate, native_out) = native(w, size);
                let (wasm_rate, wasm_out) = wasm(&limited, w, size);
                let (free_rate, free_out) = wasm(&unlimited, w, size);
                assert_eq!((native_out, native_out), (wasm_out, free_out), "outputs differ in number");
                a.push(native_rate);
                b.push(wasm_rate);
                c.push(free_rate);
            }
            let (a, b, c) = (median(a), median(b), median(c));
            println!(
                "| {} | {size} | {} | {} | {:.2}x | {} | {:.2}x |",
                w.name,
                m(a),
                m(b),
                b / a,
                m(c),
                c / a
            );
        }
    }
    println!("\nWhole path, JSON lines in memory to output lines, batch 1,024:\n");
    println!(
        "| workload | 1 instance, per CPU-s | CPU limit off | 2 instances, per CPU-s | 1 instance, per s | 2 instances, per s | 2 / 1 wall-clock |"
    );
    println!("|---|---|---|---|---|---|---|");
    for w in &workloads {
        let (mut on, mut off, mut two, mut wall1, mut wall2) = (vec![], vec![], vec![], vec![], vec![]);
        for _ in 0..rounds {
            let (cpu, wall) = whole_path(&limited, w, 1024, 1);
            on.push(cpu);
            wall1.push(wall);
            off.push(whole_path(&unlimited, w, 1024, 1).0);
            let (cpu, wall) = whole_path(&limited, w, 1024, 2);
            two.push(cpu);
            wall2.push(wall);
        }
        let (wall1, wall2) = (median(wall1), median(wall2));
        println!(
            "| {} | {} | {} | {} | {} | {} | {:.2}x |",
            w.name,
            m(median(on)),
            m(median(off)),
            m(median(two)),
            m(wall1),
            m(wall2),
            wall2 / wall1
        );
    }
    ceiling_table(&workloads, rounds);
    println!("\nRouting alone (2 instances, by TICKER), one thread, batch 1,024:\n");
    println!("| workload | routing, ns per record | whole path (1 instance), ns per CPU-record | share |");
    println!("|---|---|---|---|");
    for w in &workloads {
        let ns = median((0..rounds).map(|_| routing(w, 1024)).collect());
        let whole = 1e9 / median((0..rounds).map(|_| whole_path(&limited, w, 1024, 1).0).collect());
        println!("| {} | {ns:.0} | {whole:.0} | {:.0}% |", w.name, ns / whole * 100.0);
    }
}

//! Operators in Python and JavaScript beside Rust: sliding-window-max written in each
//! (`operators/sliding-window-max{,-py,-js}`), on the reference workload (trades 1 ms apart,
//! random-walk prices, window 60 s, slide 10 s), 1,000 tickers, in one run so the ratios
//! compare like with like:
//! - the whole `weir run` path (JSON lines in memory -> file source -> operator -> discarding
//!   sink), one instance, in trades per CPU-second of the process and per wall-clock second;
//! - compiling the component (cold, no cache) and loading it from the compiled cache (warm);
//! - instantiating it (what a start, a restart and each instance of a swap pay), the median of
//!   9, and the resident memory each instance adds (RSS over 8 more instances);
//! - a live swap with 1,000 tickers' window state: the pause of each instance (snapshot,
//!   then a new instance restored from it), the median of 50, and the resident memory an
//!   instance holding that state adds;
//! - the component's size;
//! - and, for a stateless operator's cost, the test fixture of each language on the same
//!   path: every record echoed unchanged (with a count per partition key, one key here).
//!
//! The Python and JavaScript components are built by `scripts/build-components`:
//!
//! `WEIR_TEST_COMPONENTS="$(scripts/build-components)" cargo bench --profile dev -p weir --bench languages`
//! (trades: `WEIR_BENCH_RECORDS`, default 200,000). Prints a Markdown table for BENCHMARKS.md.

mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::{WholePath, env, median, reference_lines, runner_with_state, swap_pauses, whole_path_of};

use weir::artifact::{Artifact, BUILT_OPERATORS_DIR};
use weir::operator::{CacheOutcome, CompiledCache, Limits, OperatorEngine};

/// Resident memory of this process (Linux: /proc/self/statm, pages of 4 KiB).
fn rss_bytes() -> f64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: f64 = statm.split_whitespace().nth(1).and_then(|v| v.parse().ok()).unwrap_or(0.0);
    pages * 4096.0
}

/// Operator `operator` (`sliding_window_max`, `test_fixture`) in language `name`.
fn artifact(operator: &str, name: &str) -> Artifact {
    if name == "rust" {
        if operator == "sliding_window_max" {
            return Artifact::embedded_default();
        }
        let path = PathBuf::from(BUILT_OPERATORS_DIR).join(format!("{operator}.wasm"));
        return Artifact::from_file(&path).expect("built by the build script");
    }
    let dir = std::env::var_os("WEIR_TEST_COMPONENTS")
        .expect("WEIR_TEST_COMPONENTS: run with WEIR_TEST_COMPONENTS=\"$(scripts/build-components)\"");
    Artifact::from_file(&PathBuf::from(dir).join(format!("{operator}_{name}.wasm"))).expect("built")
}

fn main() {
    let records = env("WEIR_BENCH_RECORDS", 200_000);
    let lines = reference_lines(records);
    let cache_dir = tempfile::tempdir().expect("a cache folder");
    println!(
        "| sliding-window-max | trades per CPU-second | trades/s (wall) | vs Rust (CPU) | compile, cold | load, warm | instantiate (median of 9) | RSS per instance | swap pause, 1,000 keys (median of 50) | RSS with 1,000 keys | component |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    let mut rust_rate = None;
    for (name, language) in [("rust", "Rust"), ("py", "Python"), ("js", "JavaScript")] {
        // One engine and an empty cache: the first load compiles (and stores), the second
        // loads what the first stored.
        let engine = OperatorEngine::new(Limits::default(), Some(CompiledCache::new(cache_dir.path())))
            .expect("engine");
        let started = Instant::now();
        let first = engine.load(artifact("sliding_window_max", name), &[]).expect("compiles");
        let compile = started.elapsed();
        assert_eq!(first.cache_outcome(), CacheOutcome::Compiled, "{language}: compiled cold");
        let started = Instant::now();
        let loaded = engine.load(artifact("sliding_window_max", name), &[]).expect("loads");
        let load = started.elapsed();
        assert_eq!(loaded.cache_outcome(), CacheOutcome::Hit, "{language}: loaded warm");
        let starts: Vec<f64> = (0..9)
            .map(|_| {
                let started = Instant::now();
                let instance = loaded.instantiate().expect("instantiates");
                let took = started.elapsed().as_secs_f64();
                drop(instance);
                took
            })
            .collect();
        let before = rss_bytes();
        let kept: Vec<_> = (0..8).map(|_| loaded.instantiate().expect("instantiates")).collect();
        let per_instance = (rss_bytes() - before) / kept.len() as f64;
        drop(kept);
        let before = rss_bytes();
        let holding = runner_with_state(loaded.clone());
        let with_state = rss_bytes() - before;
        let swap =
            median(swap_pauses(holding, loaded.clone(), 50).iter().map(|s| s.paused.as_secs_f64()).collect());
        let size = loaded.artifact().bytes.len() as f64;
        let run = whole_path_of(loaded, &lines, 1024, 1, None);
        assert_eq!(run.records as usize, records, "{language}: every trade read");
        println!(
            "| {language} | {} | {:.1} s | {:.1} ms | {:.1} ms | {:.1} MB | {:.2} ms | {:.1} MB | {:.1} MB |",
            rates(&run, &mut rust_rate),
            compile.as_secs_f64(),
            ms(load),
            median(starts) * 1e3,
            per_instance / 1e6,
            swap * 1e3,
            with_state / 1e6,
            size / 1e6,
        );
    }
    println!("\n{records} trades, 1,000 tickers, batches of 1,024, one instance, the CPU limit on.\n");
    println!("| echo (test fixture) | records per CPU-second | records/s (wall) | vs Rust (CPU) |");
    println!("| --- | --- | --- | --- |");
    let mut rust_rate = None;
    for (name, language) in [("rust", "Rust"), ("py", "Python"), ("js", "JavaScript")] {
        let engine = OperatorEngine::new(Limits::default(), None).expect("engine");
        let loaded = engine.load(artifact("test_fixture", name), &[]).expect("loads");
        let run = whole_path_of(loaded, &lines, 1024, 1, None);
        assert_eq!(run.records as usize, records, "{language}: every record read");
        let out = run.metrics.snapshot().records_out as usize;
        assert!(out >= records, "{language}: every record echoed ({out} out of {records})");
        println!("| {language} | {} |", rates(&run, &mut rust_rate));
    }
}

/// Records per CPU-second and per second of `run`, and the first against `rust` (the first
/// row's rate, remembered).
fn rates(run: &WholePath, rust: &mut Option<f64>) -> String {
    let rate = run.records / run.cpu.as_secs_f64().max(1e-9);
    let rust = *rust.get_or_insert(rate);
    let wall = run.records / run.wall.as_secs_f64().max(1e-9);
    format!("{:.0} k | {:.0} k | {:.3}x", rate / 1e3, wall / 1e3, rate / rust)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

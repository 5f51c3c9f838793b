//! Operators in Python and JavaScript beside Rust: sliding-window-max written in each
//! (`operators/sliding-window-max{,-py,-js}`), on the reference workload (trades 1 ms apart,
//! random-walk prices, window 60 s, slide 10 s), 1,000 tickers, in one run so the ratios
//! compare like with like:
//! - the whole `weir run` path (JSON lines in memory -> file source -> operator -> discarding
//!   sink), one instance, in trades per CPU-second of the process and per wall-clock second;
//! - compiling the component (cold, no cache) and loading it from the compiled cache (warm);
//! - instantiating it (what a start, a restart and each instance of a swap pay), the median of
//!   9, and the resident memory each instance adds (RSS over 8 more instances);
//! - the component's size.
//!
//! The Python and JavaScript components are built by `scripts/build-components`:
//!
//! `WEIR_TEST_COMPONENTS="$(scripts/build-components)" cargo bench --profile dev -p weir --bench languages`
//! (trades: `WEIR_BENCH_RECORDS`, default 200,000). Prints a Markdown table for BENCHMARKS.md.

mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::{env, median, reference_lines, whole_path_of};

use weir::artifact::Artifact;
use weir::operator::{CacheOutcome, CompiledCache, Limits, OperatorEngine};

/// Resident memory of this process (Linux: /proc/self/statm, pages of 4 KiB).
fn rss_bytes() -> f64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: f64 = statm.split_whitespace().nth(1).and_then(|v| v.parse().ok()).unwrap_or(0.0);
    pages * 4096.0
}

fn artifact(name: &str) -> Artifact {
    if name == "rust" {
        return Artifact::embedded_default();
    }
    let dir = std::env::var_os("WEIR_TEST_COMPONENTS")
        .expect("WEIR_TEST_COMPONENTS: run with WEIR_TEST_COMPONENTS=\"$(scripts/build-components)\"");
    Artifact::from_file(&PathBuf::from(dir).join(format!("sliding_window_max_{name}.wasm"))).expect("built")
}

fn main() {
    let records = env("WEIR_BENCH_RECORDS", 200_000);
    let lines = reference_lines(records);
    let cache_dir = tempfile::tempdir().expect("a cache folder");
    println!(
        "| sliding-window-max | trades per CPU-second | trades/s (wall) | vs Rust (CPU) | compile, cold | load, warm | instantiate (median of 9) | RSS per instance | component |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    let mut rust_rate = None;
    for (name, language) in [("rust", "Rust"), ("py", "Python"), ("js", "JavaScript")] {
        // One engine and an empty cache: the first load compiles (and stores), the second
        // loads what the first stored.
        let engine = OperatorEngine::new(Limits::default(), Some(CompiledCache::new(cache_dir.path())))
            .expect("engine");
        let started = Instant::now();
        let first = engine.load(artifact(name), &[]).expect("compiles");
        let compile = started.elapsed();
        assert_eq!(first.cache_outcome(), CacheOutcome::Compiled, "{language}: compiled cold");
        let started = Instant::now();
        let loaded = engine.load(artifact(name), &[]).expect("loads");
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
        let size = loaded.artifact().bytes.len() as f64;
        let run = whole_path_of(loaded, &lines, 1024, 1, None);
        assert_eq!(run.records as usize, records, "{language}: every trade read");
        let rate = run.records / run.cpu.as_secs_f64().max(1e-9);
        let rust = *rust_rate.get_or_insert(rate);
        println!(
            "| {language} | {:.0} k | {:.0} k | {:.3}x | {:.1} s | {:.1} ms | {:.1} ms | {:.1} MB | {:.1} MB |",
            rate / 1e3,
            run.records / run.wall.as_secs_f64().max(1e-9) / 1e3,
            rate / rust,
            compile.as_secs_f64(),
            ms(load),
            median(starts) * 1e3,
            per_instance / 1e6,
            size / 1e6,
        );
    }
    println!("\n{records} trades, 1,000 tickers, batches of 1,024, one instance, the CPU limit on.");
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

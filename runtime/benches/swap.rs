//! Operator versions: how long a live swap pauses an instance, and how long `weir run` takes
//! from start to its first processed record with the operator in S3.
//!
//! 1. **Swap pause**: one instance holding 1,000 tickers of sliding-window-max state (60 s
//!    windows sliding by 10 s, half a minute of trades), switched between two versions 400
//!    times; each pause is the old instance's snapshot and the new one's restore, as `weir run`
//!    measures it (timed apart in rows of their own, as are the making of the new instance
//!    before the pause and the old one's teardown after it). Instances from a pool of slots, as
//!    `weir run` makes them, and allocated on demand (`--instance-slots off`), in alternating
//!    rounds of 400 swaps.
//! 2. **Cold start**: the `weir` binary with `--operator s3://BUCKET/PREFIX` (moto), from spawn
//!    to the first record on standard output (the echo fixture, one line on stdin), with the
//!    compiled cache cold and warm; and for sliding-window-max, spawn to exit on a one-trade
//!    file (the window is emitted at the end of input).
//!
//! `scripts/with-emulators cargo bench --profile dev -p weir --bench swap` (`WEIR_BENCH_ROUNDS`,
//! default 20 starts per case). Prints a Markdown table. `WEIR_BENCH_COMPARE=a.wasm,b.wasm`
//! compares the swap pause of builds of sliding-window-max instead (rounds of `WEIR_BENCH_SWAPS`
//! swaps, default 400).

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use weir::artifact::{Artifact, BUILT_OPERATORS_DIR};
use weir::operator::{InstancePool, Limits, OperatorEngine};

mod common;

fn main() {
    let rounds: usize = std::env::var("WEIR_BENCH_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(20);
    if let Ok(files) = std::env::var("WEIR_BENCH_COMPARE") {
        compare(&files, rounds);
        return;
    }
    // Rounds of each allocation alternated, as this machine's speed drifts within minutes.
    let (mut pooled, mut on_demand) = (Vec::new(), Vec::new());
    for _ in 0..4 {
        on_demand.extend(swap_pauses(Artifact::embedded_default(), 400, None));
        pooled.extend(swap_pauses(Artifact::embedded_default(), 400, Some(POOL_SLOTS)));
    }
    println!("| measure, 1,000 keys of window state, {} swaps each | p50 / p99 / max |", pooled.len());
    println!("| --- | --- |");
    type Part = fn(&common::Swap) -> Duration;
    for (what, part) in [
        ("swap pause per instance", (|s| s.paused) as Part),
        ("of which the old instance's snapshot", |s| s.snapshotted),
        ("of which the new instance's restore", |s| s.paused - s.snapshotted),
        ("making the new instance (before the pause)", |s| s.made),
        ("tearing the old instance down (after it)", |s| s.dropped),
    ] {
        for (allocation, swaps) in [
            ("instances from a pool, as `weir run` makes them", &pooled),
            ("allocated on demand", &on_demand),
        ] {
            let mut times: Vec<Duration> = swaps.iter().map(part).collect();
            times.sort();
            let at = |q: f64| ms(percentile(&times, q));
            println!("| {what}, {allocation} | {:.3} / {:.3} / {:.3} ms |", at(0.5), at(0.99), at(1.0));
        }
    }
    if std::env::var("AWS_ENDPOINT_URL_S3").is_err() {
        eprintln!("AWS_ENDPOINT_URL_S3 is not set: cold starts skipped (run under scripts/with-emulators)");
        return;
    }
    let bucket = create_bucket();
    for (name, prefix) in [("test_fixture", "fixture"), ("sliding_window_max", "max")] {
        let file = format!("{BUILT_OPERATORS_DIR}/{name}.wasm");
        let out =
            weir().args(["deploy", &file, &format!("s3://{bucket}/{prefix}")]).output().expect("deploy");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    let scratch = tempfile::tempdir().expect("scratch");
    let input = scratch.path().join("one-trade.jsonl");
    std::fs::write(&input, r#"{"EVENT_TIME": "2026-11-25T10:00:00.123", "TICKER": "AMZN", "PRICE": 42.17}"#)
        .expect("input");
    let warm_cache = scratch.path().join("warm-cache");
    let (fixture, max) = (format!("s3://{bucket}/fixture"), format!("s3://{bucket}/max"));
    // Warm the shared cache once for each operator.
    start_to_echo(&fixture, Some(&warm_cache));
    start_to_exit(&max, &input, Some(&warm_cache));
    for (case, warm) in [("cache cold", None), ("cache warm", Some(warm_cache.as_path()))] {
        let echo = median((0..rounds).map(|_| start_to_echo(&fixture, warm)).collect());
        let max = median((0..rounds).map(|_| start_to_exit(&max, &input, warm)).collect());
        println!(
            "| start to first record, echo fixture from S3, {case} (median of {rounds}) | {:.0} ms |",
            ms(echo)
        );
        println!(
            "| start to exit, sliding-window-max from S3, one trade, {case} (median of {rounds}) | {:.0} ms |",
            ms(max)
        );
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// The `q` quantile of `sorted`.
fn percentile(sorted: &[Duration], q: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// `WEIR_BENCH_COMPARE=a.wasm,b.wasm`: the swap pause of each build of sliding-window-max, in
/// `rounds` interleaved rounds of 400 swaps each.
fn compare(files: &str, rounds: usize) {
    let files: Vec<&str> = files.split(',').collect();
    let mut pauses = vec![Vec::new(); files.len()];
    for _ in 0..rounds {
        for (i, f) in files.iter().enumerate() {
            let artifact = Artifact::from_file(std::path::Path::new(f)).expect("component");
            pauses[i].extend(
                swap_pauses(artifact, common::env("WEIR_BENCH_SWAPS", 400), Some(POOL_SLOTS))
                    .iter()
                    .map(|s| s.paused),
            );
        }
    }
    println!("| build | swaps | p50 | p99 | max |\n|---|---|---|---|---|");
    for (f, mut p) in files.iter().zip(pauses) {
        p.sort();
        let at = |q: f64| ms(percentile(&p, q));
        println!("| {f} | {} | {:.3} ms | {:.3} ms | {:.3} ms |", p.len(), at(0.5), at(0.99), at(1.0));
    }
}

/// Instance slots for one instance swapped back and forth (`weir run --parallelism 1` reserves
/// eight).
const POOL_SLOTS: usize = 8;

/// `swaps` switches of an instance of `artifact` holding 1,000 tickers of state, its instances
/// from a pool of `slots` (None: allocated on demand).
fn swap_pauses(artifact: Artifact, swaps: usize, slots: Option<usize>) -> Vec<common::Swap> {
    let engine = match slots {
        Some(slots) => OperatorEngine::pooled(Limits::default(), None, InstancePool::with_slots(slots)),
        None => OperatorEngine::new(Limits::default(), None),
    }
    .expect("engine");
    // A pool that could not be reserved falls back to on demand: its rows would be mislabelled.
    assert_eq!(engine.pool().is_some(), slots.is_some(), "the instance slots were reserved");
    let (a, b) =
        (engine.load(artifact.clone(), &[]).expect("load"), engine.load(artifact, &[]).expect("load"));
    common::swap_pauses(common::runner_with_state(a), b, swaps)
}

fn weir() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_weir"));
    cmd.env("WEIR_LOG", "warn");
    cmd
}

fn create_bucket() -> String {
    let name = format!("bench-swap-{}", std::process::id());
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let config = weir_aws::config(None).await;
        let s3 = aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(&config).force_path_style(true).build(),
        );
        s3.create_bucket().bucket(&name).send().await.expect("bucket");
    });
    name
}

/// Where a start keeps compiled operators: `warm` when given (shared by every warm start,
/// so all but the first find the operator compiled), else a fresh, empty folder.
fn cache_dir(warm: Option<&std::path::Path>) -> (Option<tempfile::TempDir>, std::path::PathBuf) {
    match warm {
        Some(path) => (None, path.to_path_buf()),
        None => {
            let fresh = tempfile::tempdir().expect("cache");
            let path = fresh.path().to_path_buf();
            (Some(fresh), path)
        }
    }
}

fn start_to_echo(operator: &str, warm: Option<&std::path::Path>) -> Duration {
    let (_fresh, cache) = cache_dir(warm);
    let started = Instant::now();
    let mut child = weir()
        .env("WEIR_CACHE_DIR", &cache)
        .args(["run", "--operator", operator, "--source", "-", "--sink", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("weir");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(b"hello\n").expect("write");
    let mut first = String::new();
    BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut first).expect("read");
    let took = started.elapsed();
    assert_eq!(first, "hello\n");
    drop(stdin);
    child.wait().expect("wait");
    took
}

fn start_to_exit(operator: &str, input: &std::path::Path, warm: Option<&std::path::Path>) -> Duration {
    let (_fresh, cache) = cache_dir(warm);
    let started = Instant::now();
    let out = weir()
        .env("WEIR_CACHE_DIR", &cache)
        .args(["run", "--operator", operator, "--source"])
        .arg(input)
        .args(["--sink", "-"])
        .output()
        .expect("weir");
    let took = started.elapsed();
    assert!(out.status.success() && !out.stdout.is_empty(), "{}", String::from_utf8_lossy(&out.stderr));
    took
}

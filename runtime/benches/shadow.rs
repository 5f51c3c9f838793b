//! Shadow deploys: what a candidate running beside the live version costs.
//!
//! 1. **The live path with and without a candidate**, in one run: the reference workload (JSON
//!    lines in memory -> file source -> sliding-window-max, one instance -> a discarding sink),
//!    alone and with an identical candidate shadowing it (its own thread, every sub-batch and
//!    tick copied to it, outputs compared). Live records per wall-second and per CPU-second of
//!    the process (the candidate's thread included), and how far the candidate had got when
//!    the live path ended.
//! 2. **The comparison alone**, in ns per output record: outputs alike (the common case, one
//!    comparison of the buffers) and outputs that differ in every record's data (grouped by
//!    key, compared in order, differences counted and sampled).
//! 3. **Added latency** (under `scripts/with-emulators`): the `weir` binary reading a fresh
//!    8-shard stream (ferrokinesis) while the producer writes 5,000 trades/s for
//!    `WEIR_BENCH_LATENCY_SECS` (20), the operator from S3 (moto), without and with an identical
//!    candidate published before the start: weir's `weir_added_latency_seconds`, p50 and p99.
//!
//! `scripts/with-emulators cargo bench --profile dev -p weir --bench shadow`
//! (`WEIR_BENCH_RECORDS`, default 2,000,000; `WEIR_BENCH_ROUNDS`, default 3). Prints a Markdown
//! table for BENCHMARKS.md.

mod common;

use std::sync::Arc;
use std::time::Instant;

use common::kinesis::{create, percentiles, produce, rand_suffix, scrape, series};
use common::{env, median, reference_lines, whole_path_of};
use weir::artifact::Artifact;
use weir::deployment::shadow::{Candidate, Evidence};
use weir::deployment::{DiffDestination, Shadowed, Tally, Versions};
use weir::metrics::Metrics;
use weir::operator::{Limits, OperatorEngine};
use weir::pipeline::shadow::compare;
use weir_operator::Output;

fn main() {
    let records = env("WEIR_BENCH_RECORDS", 2_000_000);
    let rounds = env("WEIR_BENCH_ROUNDS", 3);
    let lines = reference_lines(records);
    let engine = OperatorEngine::new(Limits::default(), None).expect("engine");
    let load = || engine.load(Artifact::embedded_default(), &[]).expect("load");

    let (mut alone, mut shadowed, mut lag) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds {
        let run = whole_path_of(load(), &lines, 500, 1, None);
        alone.push((run.records / run.wall.as_secs_f64(), run.records / run.cpu.as_secs_f64()));

        let metrics = Metrics::default();
        let tally = Arc::new(Tally::new(1, "bench", metrics.shadow.clone(), DiffDestination::Log));
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        let candidate = Shadowed { loaded: load(), candidate: Box::new(candidate()), tally: tally.clone() };
        tx.try_send(Some(candidate)).expect("offer");
        drop(tx);
        let versions = Versions::from(load()).with_candidates(rx);
        let run = whole_path_of(versions, &lines, 500, 1, None);
        let evidence = tally.snapshot();
        assert!(evidence.stopped.is_none(), "the candidate stopped: {:?}", evidence.stopped);
        assert_eq!(evidence.total_differences(), 0, "an identical candidate differs");
        shadowed.push((run.records / run.wall.as_secs_f64(), run.records / run.cpu.as_secs_f64()));
        lag.push(evidence.records_compared as f64 / run.records);
    }
    let rate =
        |v: &[(f64, f64)], i: usize| median(v.iter().map(|r| if i == 0 { r.0 } else { r.1 }).collect());
    println!("| measure | alone | with a candidate | ratio |");
    println!("| --- | --- | --- | --- |");
    for (i, what) in [(0, "live records per wall-second"), (1, "records per CPU-second (all threads)")] {
        let (a, s) = (rate(&alone, i), rate(&shadowed, i));
        println!("| {what}, median of {rounds} | {:.2} M | {:.2} M | {:.2}x |", a / 1e6, s / 1e6, s / a);
    }
    println!(
        "| records the candidate had compared when the live path ended | | {:.0}% | |",
        median(lag) * 100.0
    );

    let (same, differing) = outputs(1_000);
    for (case, candidate) in [("alike", &same), ("every record's data differs", &differing)] {
        let n = 2_000;
        let started = Instant::now();
        let mut found = Evidence::default();
        for _ in 0..n {
            compare(&same, candidate, &|| "bench".into(), &mut found);
        }
        let per = started.elapsed().as_secs_f64() * 1e9 / (n * same.len()) as f64;
        println!("| comparison per output record, outputs {case} | | {per:.1} ns | |");
    }

    if std::env::var("AWS_ENDPOINT_URL_KINESIS").is_err() || std::env::var("AWS_ENDPOINT_URL_S3").is_err() {
        eprintln!(
            "AWS_ENDPOINT_URL_KINESIS or _S3 is not set: the added latency is skipped (run under scripts/with-emulators)"
        );
        return;
    }
    let secs = env("WEIR_BENCH_LATENCY_SECS", 20) as u64;
    let mut latency = Vec::new();
    for shadowed in [false, true] {
        let (p50, p99, samples) = percentiles(&steady(shadowed, secs));
        latency.push(format!("{p50} / {p99} ({samples} results)"));
    }
    println!(
        "| added latency p50 / p99, 5,000 trades/s for {secs} s from 8 shards | {} | {} | |",
        latency[0], latency[1]
    );
}

/// weir's metrics after reading a fresh stream while 5,000 trades/s are written for `secs`,
/// the operator deployed to S3 and, if `shadowed`, an identical candidate beside it.
fn steady(shadowed: bool, secs: u64) -> String {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    let (client, s3) = rt.block_on(async {
        let config = weir_aws::config(None).await;
        let s3 = aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(&config).force_path_style(true).build(),
        );
        (aws_sdk_kinesis::Client::new(&config), s3)
    });
    let bucket = format!("bench-shadow-{}-{}", std::process::id(), rand_suffix());
    rt.block_on(s3.create_bucket().bucket(&bucket).send()).expect("bucket");
    let target = format!("s3://{bucket}/max");
    let scratch = tempfile::tempdir().expect("scratch");
    let component = format!("{}/sliding_window_max.wasm", weir::artifact::BUILT_OPERATORS_DIR);
    let copy = scratch.path().join("candidate.wasm");
    let mut bytes = std::fs::read(&component).expect("component");
    bytes.extend(b"\x00\x0c\x09weir-testv2");
    std::fs::write(&copy, bytes).expect("candidate");
    let deploy = |args: &[&str]| {
        let out = weir_binary().arg("deploy").args(args).output().expect("deploy");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    };
    deploy(&[&component, &target]);
    if shadowed {
        deploy(&["--candidate", copy.to_str().expect("path"), &target]);
    }
    let trades = rt.block_on(create(&client, "bench-shadow", 8));
    let out = rt.block_on(create(&client, "bench-shadow-out", 2));
    let addr =
        std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("port").to_string();
    let mut weir = weir_binary()
        .args(["run", "--source", &format!("kinesis://{trades}"), "--sink", &format!("kinesis://{out}")])
        .args(["--operator", &target, "--metrics-addr", &addr])
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("weir binary");
    let started = Instant::now();
    let wanted = if shadowed { 1.0 } else { 0.0 };
    while series(&scrape(&addr), "weir_shards_reading") != Some(8.0)
        || series(&scrape(&addr), "weir_shadow_instances").is_none_or(|n| n < wanted)
    {
        assert!(started.elapsed() < std::time::Duration::from_secs(60), "weir did not start");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    rt.block_on(produce(&client, &trades, 5_000 * secs, Some(5_000.0)));
    std::thread::sleep(std::time::Duration::from_secs(2));
    let metrics = scrape(&addr);
    let _ = weir.kill();
    let _ = weir.wait();
    if shadowed {
        assert_eq!(series(&metrics, "weir_shadow_stopped_total"), Some(0.0), "the candidate stopped");
    }
    metrics
}

fn weir_binary() -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_weir"));
    cmd.env("WEIR_LOG", "warn");
    cmd
}

fn candidate() -> Candidate {
    let deployment = weir::deployment::Deployment {
        digest: weir::artifact::Digest::of(b"bench"),
        size: 0,
        contract: weir_contract::CONTRACT.to_string(),
        name: None,
        version: None,
        deployed_at: jiff::Timestamp::now(),
        settings: Default::default(),
        rollback_of: None,
        grouping: None,
        sequence: 1,
        signature: None,
    };
    Candidate { deployment, promote_after: None, expect_differences: false }
}

/// `n` window results over 100 tickers, and the same with each price changed.
fn outputs(n: usize) -> (Output, Output) {
    let (mut same, mut other) = (Output::default(), Output::default());
    for i in 0..n {
        let ticker = format!("T{:04}", i % 100);
        let record = |price: f64| {
            format!(
                r#"{{"TICKER":"{ticker}","WINDOW_START":"2026-11-25T10:00:00.000Z","WINDOW_END":"2026-11-25T10:01:00.000Z","MAX_PRICE":{price},"TRADES":{i}}}"#
            )
        };
        same.emit(&ticker, record(42.17).as_bytes());
        other.emit(&ticker, record(42.18).as_bytes());
    }
    (same, other)
}

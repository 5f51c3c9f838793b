//! The lag a rolling restart adds to a lease group, through the binaries against kinesis-local
//! (Kinesis) and moto (DynamoDB, S3): three `weir run --lease-table` workers share an 8-shard
//! stream while the producer writes at a steady rate; every 25 ms each live worker's
//! `weir_records_in_total` (per shard) is scraped, and for each shard the longest time in which
//! no worker read a record of it is kept (kinesis-local reports MillisBehindLatest as 0, so the
//! lag is measured as this gap: records keep arriving every few milliseconds, so a shard
//! nobody reads falls behind by the gap). A quiet phase gives each shard's usual gap (the poll
//! interval); then every worker in turn is stopped with SIGTERM and a new one started in its
//! place. For each shard, the longest gap while restarting less the longest in the quiet phase
//! is the lag the restart added; and for each stop, the time from SIGTERM until every shard is
//! held by a live worker again.
//!
//! `cargo build -p weir-producer && scripts/with-emulators cargo bench --profile dev -p weir --bench handover`
//! (`WEIR_BENCH_RATE`, trades per second, default 400; `WEIR_BENCH_QUIET_SECS`, default 20).

#[path = "../tests/suite/util/mod.rs"]
mod util;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use util::kinesis::{create_stream_at, kinesis_local_endpoint, producer};
use util::leases::LeaseGroup;
use util::process::{Weir, scrape, value};

const SHARDS: usize = 8;
const WORKERS: usize = 3;

/// A child process killed when this is dropped (also when the bench panics).
struct Stopped(std::process::Child);

impl Drop for Stopped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// The longest time (ms) no worker read a record of a shard, per phase (0: quiet, 1: restarts).
type Lags = Arc<Mutex<[BTreeMap<String, f64>; 2]>>;

/// A worker with the defaults (failover 10 s, checkpoints every 10 s), one instance.
fn worker(group: &mut LeaseGroup) -> Weir {
    let mut cmd = group.run();
    cmd.args(["--parallelism", "1"]);
    Weir::start(cmd)
}

/// Leases held by the live workers whose metrics answer, and how many answered.
fn held(addresses: &[String]) -> (f64, usize) {
    let bodies: Vec<String> = addresses.iter().filter_map(|a| scrape(a)).collect();
    (bodies.iter().filter_map(|b| value(b, "weir_leases_held")).sum(), bodies.len())
}

/// Wait until the `expected` workers at `addresses` hold every shard; how long it took.
fn wait_held(addresses: &Mutex<Vec<String>>, expected: usize) -> Duration {
    let started = Instant::now();
    loop {
        let now: Vec<String> = addresses.lock().unwrap().clone();
        let (leases, answered) = held(&now);
        if leases == SHARDS as f64 && answered == expected {
            return started.elapsed();
        }
        assert!(started.elapsed() < Duration::from_secs(120), "leases not held within 2 minutes");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn main() {
    let rate = env("WEIR_BENCH_RATE", 400);
    let quiet = Duration::from_secs(env("WEIR_BENCH_QUIET_SECS", 20));
    let endpoint = kinesis_local_endpoint();
    let trades = create_stream_at(&endpoint, "handover", SHARDS as i32);
    let results = create_stream_at(&endpoint, "handover-out", 1);
    let mut group = LeaseGroup::new(endpoint.clone(), trades.clone(), results);

    // The producer runs for the whole bench: long enough for the quiet phase, the restarts
    // and their settling.
    let writing = producer()
        .env("AWS_ENDPOINT_URL_KINESIS", &endpoint)
        .args(["--rate", &rate.to_string(), "--duration", &format!("{}s", quiet.as_secs() * 2 + 120)])
        .args(["--tickers", "64", "--partition-key", "ticker", "--sink", &format!("kinesis://{trades}")])
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("weir-producer");
    let writing = Stopped(writing);

    let mut live: Vec<Weir> = (0..WORKERS).map(|_| worker(&mut group)).collect();
    let addresses: Arc<Mutex<Vec<String>>> =
        Arc::new(Mutex::new(live.iter().map(|w| w.metrics_addr().to_string()).collect()));
    wait_held(&addresses, WORKERS);
    // Let the first takes and the catch-up from the stream's start pass.
    std::thread::sleep(Duration::from_secs(5));

    let lags: Lags = Arc::default();
    let phase = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let sampler = std::thread::spawn({
        let (lags, phase, done, addresses) = (lags.clone(), phase.clone(), done.clone(), addresses.clone());
        move || {
            // Each worker's count per shard at its last scrape (kept after it stops), and per
            // shard the total over workers and when it last grew.
            let mut counts: BTreeMap<(String, String), f64> = BTreeMap::new();
            let mut grew: BTreeMap<String, (f64, Instant)> = BTreeMap::new();
            while !done.load(Ordering::Relaxed) {
                let now: Vec<String> = addresses.lock().unwrap().clone();
                for addr in &now {
                    let Some(body) = scrape(addr) else { continue };
                    for line in body.lines() {
                        let Some(rest) = line.strip_prefix("weir_records_in_total{shard=\"") else {
                            continue;
                        };
                        let Some((shard, count)) = rest.split_once("\"} ") else { continue };
                        let Ok(count) = count.trim().parse::<f64>() else { continue };
                        counts.insert((addr.clone(), shard.to_string()), count);
                    }
                }
                let at = Instant::now();
                let mut totals: BTreeMap<&str, f64> = BTreeMap::new();
                for ((_, shard), count) in &counts {
                    *totals.entry(shard).or_default() += count;
                }
                let mut lags = lags.lock().unwrap();
                let seen = &mut lags[phase.load(Ordering::Relaxed)];
                for (shard, total) in totals {
                    let (last, since) = grew.entry(shard.to_string()).or_insert((total, at));
                    if total > *last {
                        let gap = at.duration_since(*since).as_secs_f64() * 1e3;
                        let max = seen.entry(shard.to_string()).or_insert(0.0);
                        *max = max.max(gap);
                        (*last, *since) = (total, at);
                    }
                }
                drop(lags);
                std::thread::sleep(Duration::from_millis(25));
            }
        }
    });

    std::thread::sleep(quiet);
    phase.store(1, Ordering::Relaxed);
    let mut handovers = Vec::new();
    for _ in 0..WORKERS {
        let mut old = live.remove(0);
        addresses.lock().unwrap().retain(|a| a != old.metrics_addr());
        let stopped = Instant::now();
        old.signal("TERM");
        let (status, log) = old.wait(Duration::from_secs(60));
        assert!(status.success(), "a stopped worker exits 0:\n{log}");
        let took = stopped.elapsed() + wait_held(&addresses, WORKERS - 1);
        let new = worker(&mut group);
        addresses.lock().unwrap().push(new.metrics_addr().to_string());
        live.push(new);
        let rebalanced = wait_held(&addresses, WORKERS);
        handovers.push((took, rebalanced));
    }
    // The new workers' first reads, and the lag they found, are in the restart phase.
    std::thread::sleep(quiet);
    done.store(true, Ordering::Relaxed);
    sampler.join().expect("sampler");
    drop(writing);
    for worker in live {
        worker.kill();
    }

    let [before, during] = &*lags.lock().unwrap();
    println!(
        "| shard | longest unread, quiet ({} s) | longest unread, rolling restart | added lag |",
        quiet.as_secs()
    );
    println!("|---|---|---|---|");
    let mut most_added: f64 = 0.0;
    for (shard, during) in during {
        let before = before.get(shard).copied().unwrap_or(0.0);
        let added = (during - before).max(0.0);
        most_added = most_added.max(added);
        println!("| {shard} | {before:.0} ms | {during:.0} ms | {added:.0} ms |");
    }
    println!();
    println!("| stop | SIGTERM until the others hold every shard | a new worker until it holds its share |");
    println!("|---|---|---|");
    for (i, (took, rebalanced)) in handovers.iter().enumerate() {
        println!("| {} | {:.2} s | {:.2} s |", i + 1, took.as_secs_f64(), rebalanced.as_secs_f64());
    }
    println!();
    println!("most lag a rolling restart added to any shard: {:.2} s ({rate} trades/s)", most_added / 1e3);
}

//! The lease group at scale, in one process against the DynamoDB emulator (moto): 1,000
//! shards' rows, 20 workers ([`weir::lease::Worker`]: the lease loop and the term loop `weir run
//! --lease-table` runs, with terms that read nothing and hand their leases back), then
//! workers leaving, joining and one crashing. For each phase: the time until every shard is
//! held by a live worker and none holds more than ceil(shards / workers) + 1; and in a quiet
//! minute, the lease table requests per second (writes, reads, rows scanned) that keep the
//! group going, from which BENCHMARKS.md projects the DynamoDB cost.
//!
//! `scripts/with-emulators cargo bench --profile dev -p weir --bench leases`
//! (`WEIR_BENCH_SHARDS`, `WEIR_BENCH_WORKERS`, `WEIR_BENCH_QUIET_SECS` change the sizes).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use prometheus_client::registry::Registry;
use weir::lease::worker::{TermEnd, Terms, WorkerError};
use weir::lease::{Coordinator, CoordinatorOptions, Lease, LeaseTable, Worker};
use weir::metrics::LeaseMetrics;
use weir::pipeline::Ending;
use weir_kinesis::{HashRange, ShardInfo};

const FAILOVER: Duration = Duration::from_secs(10);
const SOURCE: &str = "kinesis://simulated";
const CHECKPOINTS: &str = "s3://simulated/checkpoints";

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// One simulated worker: the real lease group worker, its terms reading nothing.
struct Simulated {
    coordinator: Arc<Coordinator>,
    stop: tokio::sync::oneshot::Sender<()>,
    run: tokio::task::JoinHandle<Result<Ending, WorkerError>>,
}

/// Terms that read nothing: each waits for the leases to change and hands back.
struct HandBack;

#[async_trait::async_trait]
impl Terms for HandBack {
    async fn run(&mut self, _: &[Lease], _: &[Lease], end: TermEnd) -> Result<Ending, WorkerError> {
        end.await;
        Ok(Ending::Stopped)
    }
}

async fn start_worker(table: &LeaseTable, id: String) -> Simulated {
    let metrics = LeaseMetrics::register(&mut Registry::default());
    let options = CoordinatorOptions::new(id, FAILOVER);
    let worker = Worker::join(Arc::new(table.clone()), SOURCE, CHECKPOINTS, None, options, None, metrics)
        .await
        .expect("join");
    let coordinator = worker.coordinator().clone();
    let (stop, stopped) = tokio::sync::oneshot::channel();
    let run = tokio::spawn(async move {
        let stopping = async move {
            let _ = stopped.await;
        };
        worker.run(&mut HandBack, stopping).await
    });
    Simulated { coordinator, stop, run }
}

impl Simulated {
    /// Stop as on SIGTERM: the last term ends, the leases are given up, the worker leaves.
    async fn stop(self) {
        let _ = self.stop.send(());
        self.run.await.expect("worker task").expect("worker");
    }
}

/// Seconds until every shard is held by a live member (not one of `dead`), each holding at
/// least the floor of an even share and at most its ceiling + 1 (the suite's `wait_balanced`).
async fn converged(observer: &LeaseTable, shards: usize, since: Instant, dead: &[String]) -> f64 {
    loop {
        let (group, leases) = (observer.group().await.unwrap(), observer.leases().await.unwrap());
        let mut held: BTreeMap<&str, usize> =
            group.workers.keys().filter(|w| !dead.contains(w)).map(|w| (w.as_str(), 0)).collect();
        let mut orphans = 0;
        for lease in &leases {
            match lease.owner.as_deref().and_then(|o| held.get_mut(o)) {
                Some(count) => *count += 1,
                None => orphans += 1,
            }
        }
        let members = held.len().max(1);
        let (floor, ceiling) = (shards / members, shards.div_ceil(members) + 1);
        if orphans == 0 && held.values().all(|&h| (floor..=ceiling).contains(&h)) {
            return since.elapsed().as_secs_f64();
        }
        let most = held.values().max().copied().unwrap_or(0);
        let least = held.values().min().copied().unwrap_or(0);
        eprintln!(
            "{:>6.1} s: {orphans} shards not held, the most any worker holds {most}, the least {least}",
            since.elapsed().as_secs_f64()
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

fn shards(n: usize) -> Vec<ShardInfo> {
    let step = u128::MAX / n as u128;
    (0..n)
        .map(|i| ShardInfo {
            id: format!("shardId-{i:012}"),
            parents: vec![],
            hash_range: HashRange {
                start: step * i as u128,
                end: if i + 1 == n { u128::MAX } else { step * (i as u128 + 1) - 1 },
            },
            closed: false,
        })
        .collect()
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    if std::env::var("AWS_ENDPOINT_URL_DYNAMODB").is_err() {
        eprintln!("run under scripts/with-emulators (needs the DynamoDB emulator)");
        return;
    }
    let n_shards = env("WEIR_BENCH_SHARDS", 1000) as usize;
    let n_workers = env("WEIR_BENCH_WORKERS", 20) as usize;
    if n_workers < 6 {
        eprintln!(
            "WEIR_BENCH_WORKERS={n_workers}: the bench stops five workers and needs at least one left to hold the shards (6 or more)"
        );
        return;
    }
    let quiet = Duration::from_secs(env("WEIR_BENCH_QUIET_SECS", 60));
    let name = format!("weir-bench-leases-{}", std::process::id());
    let table = LeaseTable::connect(&name, None).await;
    table.open(SOURCE, CHECKPOINTS).await.expect("open");
    let observer = LeaseTable::connect(&name, None).await;
    let rows = shards(n_shards);
    let adding = Instant::now();
    let mut adds = tokio::task::JoinSet::new();
    for chunk in rows.chunks(n_shards.div_ceil(8)) {
        let (table, chunk) = (table.clone(), chunk.to_vec());
        adds.spawn(async move { table.add(&chunk).await.expect("add rows") });
    }
    let added: usize = adds.join_all().await.into_iter().sum();
    println!("{added} rows added in {:.1} s", adding.elapsed().as_secs_f64());
    let scanning = Instant::now();
    observer.leases().await.expect("scan");
    println!(
        "one scan of every row: {:.0} ms (the emulator's speed)",
        scanning.elapsed().as_secs_f64() * 1e3
    );

    println!(
        "\n| phase | workers | converged in | scans of the table | lease writes |\n|---|---|---|---|---|"
    );
    let calls = table.calls();
    let counts = || (calls.scanned.load(Relaxed) / n_shards as u64, calls.writes.load(Relaxed));
    let phase = |what: &str, workers: usize, t: f64, start: (u64, u64)| {
        let now = counts();
        println!("| {what} | {workers} | {t:.1} s | {} | {} |", now.0 - start.0, now.1 - start.1);
    };
    let start = counts();
    let since = Instant::now();
    let mut workers = Vec::new();
    for i in 0..n_workers {
        workers.push(start_worker(&table, format!("worker-{i:02}")).await);
    }
    let t = converged(&observer, n_shards, since, &[]).await;
    phase(&format!("{n_workers} workers start together"), n_workers, t, start);

    // A quiet stretch: what it costs to keep the group going.
    let before = (calls.writes.load(Relaxed), calls.reads.load(Relaxed), calls.scanned.load(Relaxed));
    let quiet_since = Instant::now();
    tokio::time::sleep(quiet).await;
    let secs = quiet_since.elapsed().as_secs_f64();
    let rate = |now: u64, then: u64| (now - then) as f64 / secs;
    let (writes, reads, scanned) = (
        rate(calls.writes.load(Relaxed), before.0),
        rate(calls.reads.load(Relaxed), before.1),
        rate(calls.scanned.load(Relaxed), before.2),
    );
    let group_bytes = observer.group().await.map(|g| g.workers.len() * 60 + 120).unwrap_or(0);

    let (since, start) = (Instant::now(), counts());
    for worker in workers.drain(..5) {
        worker.stop().await;
    }
    let t = converged(&observer, n_shards, since, &[]).await;
    phase("5 stop gracefully (SIGTERM)", workers.len(), t, start);

    let (since, start) = (Instant::now(), counts());
    for i in 0..3 {
        workers.push(start_worker(&table, format!("joined-{i}")).await);
    }
    let t = converged(&observer, n_shards, since, &[]).await;
    phase("3 join", workers.len(), t, start);

    let (since, start) = (Instant::now(), counts());
    let crashed = workers.remove(0);
    crashed.run.abort();
    let t = converged(&observer, n_shards, since, &[crashed.coordinator.worker().to_string()]).await;
    phase(&format!("1 crashes (no release; failover {FAILOVER:?})"), workers.len(), t, start);

    println!(
        "\nQuiet {:.0} s, {n_workers} workers, {n_shards} shards: {writes:.2} writes/s, {reads:.2} reads/s (GetItem and Scan requests), {scanned:.1} rows scanned/s; group row about {group_bytes} bytes",
        secs
    );
    for worker in workers {
        worker.stop().await;
    }
}

//! Random schedules through the binaries: trades in order per ticker written to kinesis-local
//! (which stores a put at once, so records written while weir reads are all read) while
//! weir reads them, with splits, merges and producer pauses between waves. One process:
//! partition keys by ticker or at random, one instance or three. A lease group: three workers
//! (moto for the table and the S3 checkpoints), one of them SIGKILLed at a random wave. Whatever
//! the schedule, no trade is dead-lettered and the results (once per window, where a worker was
//! killed) equal the native operator's, window for window, with no out-of-orderness allowed.
//! A seed reproduces a schedule: `WEIR_EVENT_TIME_SEEDS=7,8 cargo test --test
//! event_time_schedules` (through `scripts/with-emulators`); with `WEIR_TEST_LOGS=DIR` the
//! lease-group schedule keeps there every worker's log, the input and the results.

use crate::util;

use std::time::Duration;

use aws_sdk_kinesis::Client;
use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::PutRecordsRequestEntry;
use util::kinesis::*;
use util::leases::LeaseGroup;
use util::process::Weir;
use util::*;

/// SplitMix64: a schedule is its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Streams deleted when the schedule ends, however it ends: kinesis-local counts their shards
/// against its account limit.
struct Streams {
    endpoint: String,
    names: Vec<String>,
}

impl Drop for Streams {
    fn drop(&mut self) {
        let rt = runtime();
        let client = client_at(&rt, &self.endpoint);
        for name in &self.names {
            let _ =
                rt.block_on(client.delete_stream().stream_name(name).enforce_consumer_deletion(true).send());
        }
    }
}

/// What happens between two waves of trades.
#[derive(Clone, Copy, Debug)]
enum Action {
    /// The producer pauses this long: every shard is read empty several times over (longer
    /// than the 5 s after which weir before 2026-12-02 took a silent shard for idle).
    Pause(Duration),
    Split,
    Merge,
    Nothing,
}

/// A schedule: how the stream is keyed and read, and what happens between waves.
#[derive(Debug)]
struct Schedule {
    shards: i32,
    random_keys: bool,
    parallelism: u32,
    actions: Vec<Action>,
}

const TICKERS: usize = 8;
const WAVES: usize = 5;
const TRADES_PER_WAVE: i64 = 240;
/// Event time between two trades: a wave spans 48 s, so windows fire throughout.
const STEP_MS: i64 = 200;

impl Schedule {
    fn of(seed: u64) -> Self {
        let mut rng = Rng(seed);
        let shards = 2 + rng.below(3) as i32;
        let random_keys = rng.below(2) == 0;
        let parallelism = if rng.below(2) == 0 { 1 } else { 3 };
        let actions = (1..WAVES)
            .map(|_| match rng.below(4) {
                0 => Action::Pause(Duration::from_millis(5_500 + rng.below(1_500))),
                1 => Action::Split,
                2 => Action::Merge,
                _ => Action::Nothing,
            })
            .collect();
        Schedule { shards, random_keys, parallelism, actions }
    }
}

/// Write `count` trades from trade number `first`, in order, one PutRecords call at a time (so
/// every trade is stored before any later one is written); the same trades as JSON lines.
async fn put_wave(client: &Client, stream: &str, rng: &mut Rng, random_keys: bool, first: i64) -> Vec<u8> {
    let mut lines = Vec::new();
    let mut entries = Vec::new();
    for n in first..first + TRADES_PER_WAVE {
        let ticker = format!("T{:02}", rng.below(TICKERS as u64));
        let data = trade(&ticker, T0 + n * STEP_MS, 10.0 + rng.below(1_000) as f64 / 100.0);
        lines.extend_from_slice(&data);
        lines.push(b'\n');
        let key = if random_keys { format!("k{}", rng.next()) } else { ticker };
        entries.push(
            PutRecordsRequestEntry::builder().partition_key(key).data(Blob::new(data)).build().unwrap(),
        );
    }
    for chunk in entries.chunks(80) {
        let out =
            client.put_records().stream_name(stream).set_records(Some(chunk.to_vec())).send().await.unwrap();
        assert_eq!(out.failed_record_count(), Some(0), "kinesis-local refused records");
    }
    lines
}

/// Write the schedule's waves into `stream`, with its actions between them; `after_wave(n)` runs
/// after wave `n` is written. The trades as JSON lines, in the order written.
fn produce_schedule(
    endpoint: &str,
    stream: &str,
    seed: u64,
    schedule: &Schedule,
    mut after_wave: impl FnMut(usize),
) -> Vec<u8> {
    let rt = runtime();
    let client = client_at(&rt, endpoint);
    let mut rng = Rng(seed ^ 0x5EED);
    let mut input = Vec::new();
    for wave in 0..WAVES {
        let first = wave as i64 * TRADES_PER_WAVE;
        input.extend(rt.block_on(put_wave(&client, stream, &mut rng, schedule.random_keys, first)));
        after_wave(wave);
        rt.block_on(async {
            match schedule.actions.get(wave).copied().unwrap_or(Action::Nothing) {
                Action::Pause(pause) => tokio::time::sleep(pause).await,
                Action::Split => {
                    let open = open_shards(&client, stream).await;
                    let (shard, _, _) = &open[rng.below(open.len() as u64) as usize];
                    split_in_half(&client, stream, shard).await;
                }
                Action::Merge if open_shards(&client, stream).await.len() > 1 => {
                    merge_last_adjacent(&client, stream).await;
                }
                Action::Merge | Action::Nothing => {}
            }
        });
    }
    input
}

/// Run one schedule; panics naming the seed if a trade was dead-lettered or a window differs.
fn run_schedule(seed: u64) {
    let schedule = Schedule::of(seed);
    eprintln!("seed {seed}: {schedule:?}");
    let endpoint = kinesis_local_endpoint();
    let stream = create_stream_at(&endpoint, &format!("schedule-{seed}"), schedule.shards);
    let _streams = Streams { endpoint: endpoint.clone(), names: vec![stream.clone()] };
    let dir = tempfile::tempdir().unwrap();
    let dead = dir.path().join("dead.jsonl");
    let mut cmd = weir();
    cmd.env("AWS_ENDPOINT_URL_KINESIS", &endpoint)
        .env("WEIR_LOG", "weir=info")
        .args(["run", "--source", &format!("kinesis://{stream}"), "--start-position", "trim-horizon"])
        .args(["--sink", "-", "--dead-letter", dead.to_str().unwrap()])
        .args(["--parallelism", &schedule.parallelism.to_string()])
        .args(["--shard-discovery-interval", "200ms", "--until-idle", "10s"]);
    let mut weir = Weir::start(cmd);
    weir.wait_for_line("reading shard shardId-000000000000", Duration::from_secs(30));

    let input = produce_schedule(&endpoint, &stream, seed, &schedule, |_| {});
    let (status, results, log) = weir.finish();
    assert!(status.success(), "seed {seed}: weir failed\n{log}");
    let dead = std::fs::read_to_string(&dead).unwrap_or_default();
    assert!(dead.is_empty(), "seed {seed} ({schedule:?}): trades dead-lettered:\n{dead}");
    let expected = native_by_key(&input);
    let windows: usize = expected.values().map(Vec::len).sum();
    eprintln!("seed {seed}: {windows} windows expected");
    assert_same_results(&per_ticker(results.iter().map(String::as_str)), &expected);
}

/// The seeds to run: `WEIR_EVENT_TIME_SEEDS` (comma-separated), or `default`.
fn seeds(default: &[u64]) -> Vec<u64> {
    match std::env::var("WEIR_EVENT_TIME_SEEDS") {
        Ok(list) => list.split(',').filter_map(|s| s.trim().parse().ok()).collect(),
        Err(_) => default.to_vec(),
    }
}

#[test]
fn random_schedules_of_reshards_and_pauses_make_no_trade_late_and_every_window_whole() {
    for seed in seeds(&[1, 2, 3, 4]) {
        run_schedule(seed);
    }
}

/// Run one schedule on a lease group of three workers, one killed after a random wave.
fn run_lease_schedule(seed: u64) {
    // Partition keys must be the grouping key in a lease group; shards enough for three.
    let schedule = Schedule::of(seed);
    let schedule = Schedule { random_keys: false, shards: schedule.shards + 3, ..schedule };
    let kill_after = Rng(seed ^ 0x4B11).below(WAVES as u64 - 1) as usize;
    eprintln!("seed {seed}, lease group, worker 2 killed after wave {kill_after}: {schedule:?}");
    let endpoint = kinesis_local_endpoint();
    let trades = create_stream_at(&endpoint, &format!("lease-schedule-{seed}"), schedule.shards);
    let results = create_stream_at(&endpoint, &format!("lease-schedule-{seed}-max"), 1);
    let _streams = Streams { endpoint: endpoint.clone(), names: vec![trades.clone(), results.clone()] };
    let mut job = LeaseGroup::new(endpoint.clone(), trades.clone(), results.clone());
    let worker = |job: &mut LeaseGroup, extra: &[&str]| {
        let mut cmd = job.run();
        cmd.env("WEIR_LOG", std::env::var("WEIR_TEST_WORKER_LOG").unwrap_or_else(|_| "weir=info".into()))
            .args(["--start-position", "trim-horizon", "--checkpoint-interval", "1s"])
            .args(["--failover-time", "4s", "--shard-discovery-interval", "200ms"])
            .args(["--parallelism", &schedule.parallelism.to_string()])
            .args(extra);
        Weir::start(cmd)
    };
    let mut workers = vec![worker(&mut job, &[]), worker(&mut job, &[]), worker(&mut job, &[])];
    for w in &mut workers {
        w.wait_for_line("joined the lease group", Duration::from_secs(60));
    }
    let mut logs = Vec::new();
    let input = produce_schedule(&endpoint, &trades, seed, &schedule, |wave| {
        if wave == kill_after {
            logs.push(workers.remove(1).kill());
        }
    });
    // The killed worker's shards are taken over (after the failover time) before the others
    // stop: a worker with --until-idle does not wait for the leases of a silent one.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let out = job.try_leases();
        let rows = LeaseGroup::rows(&out);
        let held_by_w2 = rows.iter().any(|r| r["owner"] == "w2" && r["state"] != "finished");
        if out.status.success() && !rows.is_empty() && !held_by_w2 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "seed {seed}: w2's shards were not taken over: {rows:#?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // The others stop; one reads what is left to the end and flushes.
    for mut w in workers {
        w.signal("TERM");
        let (status, log) = w.wait(Duration::from_secs(60));
        assert!(status.success(), "seed {seed}: a stopped worker exits 0\n{log}");
        logs.push(log);
    }
    let (status, log) = worker(&mut job, &["--until-idle", "3s"]).wait(Duration::from_secs(180));
    assert!(status.success(), "seed {seed}: the last worker failed\n{log}");
    logs.push(log);
    if let Ok(dir) = std::env::var("WEIR_TEST_LOGS") {
        for (i, log) in logs.iter().enumerate() {
            let _ = std::fs::write(format!("{dir}/seed-{seed}-{i}.log"), log);
        }
        let _ = std::fs::write(format!("{dir}/seed-{seed}-input.jsonl"), &input);
    }
    let records = tail_at(&endpoint, &results, &[]);
    if let Ok(dir) = std::env::var("WEIR_TEST_LOGS") {
        let lines: Vec<String> = records.iter().map(|r| r.to_string()).collect();
        let _ = std::fs::write(format!("{dir}/seed-{seed}-results.jsonl"), lines.join("\n"));
    }
    let dead = util::process::dead_letters(logs.iter().map(String::as_str));
    assert!(dead.is_empty(), "seed {seed} ({schedule:?}): trades dead-lettered: {dead:#?}");
    let (once, _) = deduplicated(&records);
    assert_same_results(&once, &native_by_key(&input));
}

#[test]
fn random_schedules_on_a_lease_group_with_a_kill_make_no_trade_late_and_every_window_whole() {
    for seed in seeds(&[11, 12]) {
        run_lease_schedule(seed);
    }
}

//! Several workers on one stream (`weir run --lease-table`), through the binaries, against
//! kinesis-local (which stores a record as soon as it is put, so the producer can run while
//! the workers read; see ARCHITECTURE.md, Tests) and moto for DynamoDB and S3.
//!
//! Three workers share eight shards while trades keep arriving: they balance; a SIGKILLed
//! worker's shards are read again by the others from its last checkpoint; a rolling SIGTERM
//! restart of every worker hands every lease over with its checkpoint and repeats nothing; a
//! split and a merge move state to the children whichever worker read the parents. The
//! results, without repeats, equal the native operator's window for window, and a window comes
//! out twice only if the killed worker had emitted it.

use crate::util;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use util::kinesis::*;
use util::leases::LeaseGroup;
use util::process::{Weir, total};
use util::*;

const TICKERS: u32 = 24;
const SHARDS: usize = 8;
/// Short, so that the test does not wait long for the killed worker's leases.
const FAILOVER: &str = "4s";
const FAILOVER_TIME: Duration = Duration::from_secs(4);

fn settings() -> [(&'static str, &'static str); 1] {
    [("out-of-orderness", "30s")]
}

/// A lease group's workers as these tests run them.
impl LeaseGroup {
    /// A worker reading from trim-horizon, checkpointing every second, `FAILOVER`.
    fn worker(&mut self, extra: &[&str]) -> Weir {
        let mut cmd = self.run();
        cmd.env("WEIR_LOG", "weir=info")
            .args(["--start-position", "trim-horizon", "--set", "out-of-orderness=30s"])
            .args(["--checkpoint-interval", "1s", "--failover-time", FAILOVER])
            .args(["--parallelism", "2"])
            .args(extra);
        Weir::start(cmd)
    }

    /// Wait until every shard that can be read is read by one of `workers`, at least
    /// floor(shards / workers) and at most ceil(shards / workers) + 1 each; the held counts.
    fn wait_balanced(&self, workers: &mut [&mut Weir], within: Duration) -> Vec<f64> {
        let deadline = Instant::now() + within;
        loop {
            // Until the first worker has made the table, there is none.
            let out = self.try_leases();
            let rows = Self::rows(&out);
            let readable =
                rows.iter().filter(|r| r["state"] != "finished" && r["state"] != "waiting").count();
            let held: Vec<f64> = workers.iter_mut().map(|w| w.metric("weir_leases_held")).collect();
            let floor = (readable / workers.len()) as f64;
            let ceiling = readable.div_ceil(workers.len()) as f64 + 1.0;
            let reading = rows.iter().filter(|r| r["state"] == "reading").count();
            if out.status.success()
                && readable > 0
                && reading == readable
                && held.iter().sum::<f64>() == readable as f64
                && held.iter().all(|&h| (floor..=ceiling).contains(&h))
            {
                return held;
            }
            assert!(
                Instant::now() < deadline,
                "not balanced within {within:?}: held {held:?}, rows {rows:#?}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// 1,000 trades (20 ms apart, keyed by ticker) into `stream`, its first shard split in half,
/// then 1,000 more: the trades as JSON lines.
fn around_a_split(endpoint: &str, stream: &str) -> Vec<u8> {
    let step = ["--step", "20ms"];
    let mut input = produce_with(endpoint, stream, 1_000, TICKERS, T0, "ticker", &step);
    let rt = runtime();
    rt.block_on(split_in_half(&client_at(&rt, endpoint), stream, "shardId-000000000000"));
    input.extend(produce_with(endpoint, stream, 1_000, TICKERS, T0 + 20_000, "ticker", &step));
    input
}

/// The checkpoint object a `weir leases --json` row names ("" if none).
fn checkpoint_of(row: &serde_json::Value) -> String {
    row["checkpoint"].as_str().unwrap_or_default().to_string()
}

/// Produce `count` trades from `start_ms` on a thread (20 ms of event time apart); joined for
/// the trades as JSON lines.
fn producing(endpoint: &str, stream: &str, count: u64, start_ms: i64) -> std::thread::JoinHandle<Vec<u8>> {
    let (at, stream) = (endpoint.to_string(), stream.to_string());
    std::thread::spawn(move || {
        produce_with(&at, &stream, count, TICKERS, start_ms, "ticker", &["--step", "20ms"])
    })
}

/// The shard of `stream` a ticker (its partition key) goes to, among the open shards now.
fn shard_of(shards: &[(String, u128, u128)], ticker: &str) -> String {
    let hash = weir_kinesis::shards::hash_key(ticker);
    shards.iter().find(|(_, start, end)| *start <= hash && hash <= *end).unwrap().0.clone()
}

#[test]
fn three_workers_share_eight_shards_through_a_kill_a_rolling_restart_a_split_and_a_merge() {
    let endpoint = kinesis_local_endpoint();
    let trades = create_stream_at(&endpoint, "trades", SHARDS as i32);
    let results = create_stream_at(&endpoint, "results", 1);
    let mut job = LeaseGroup::new(endpoint.clone(), trades.clone(), results.clone());
    let (mut input, mut logs) = (Vec::new(), Vec::new());
    // Each wave is 1,500 trades, 30 s of event time.
    let wave = |n: i64| T0 + n * 1_500 * 20;

    // Three workers, trades arriving: every shard read, at most ceil(8/3)+1 = 4 each.
    let producer = producing(&endpoint, &trades, 1_500, wave(0));
    let (mut a, mut b, mut c) = (job.worker(&[]), job.worker(&[]), job.worker(&[]));
    let held = job.wait_balanced(&mut [&mut a, &mut b, &mut c], Duration::from_secs(60));
    let mut live = vec![a, c];
    assert!(held.iter().all(|&h| h >= 1.0), "every worker reads: {held:?}");
    // The first worker made the table, billed on demand.
    let rt = runtime();
    let dynamodb = aws_sdk_dynamodb::Client::new(&rt.block_on(weir_aws::config(None)));
    let described = rt.block_on(dynamodb.describe_table().table_name(&job.table).send()).unwrap();
    let billing = described.table().and_then(|t| t.billing_mode_summary()).and_then(|b| b.billing_mode());
    assert_eq!(billing, Some(&aws_sdk_dynamodb::types::BillingMode::PayPerRequest));
    input.extend(producer.join().unwrap());

    // SIGKILL one worker while trades arrive: the other two read its shards again, from its
    // last checkpoint, within the failover time plus 5 s.
    let producer = producing(&endpoint, &trades, 1_500, wave(1));
    let client = client_at(&rt, &endpoint);
    b.wait_for_metric("weir_checkpoints_total", |n| n >= 2.0, Duration::from_secs(30));
    let victim_shards: BTreeSet<String> = job
        .leases()
        .iter()
        .filter(|r| r["owner"] == "w2")
        .map(|r| r["shard"].as_str().unwrap().to_string())
        .collect();
    assert!(!victim_shards.is_empty(), "w2 held shards before the kill");
    let at_kill = rt.block_on(open_shards(&client, &trades));
    logs.push(b.kill());
    let killed_at = Instant::now();
    let mut refs: Vec<&mut Weir> = live.iter_mut().collect();
    job.wait_balanced(&mut refs, FAILOVER_TIME + Duration::from_secs(5));
    let took = killed_at.elapsed();
    let stolen: f64 = live.iter_mut().map(|w| w.metric("weir_leases_stolen_total")).sum();
    assert!(stolen >= victim_shards.len() as f64, "the survivors took {stolen} leases from w2");
    input.extend(producer.join().unwrap());
    // Every trade the killed worker could have emitted a window for came before this.
    let before_kill = wave(2);

    // A new worker joins; then a rolling restart: each worker in turn stops with SIGTERM
    // (exit 0, its leases given up with a final checkpoint) and a new one takes its place.
    let producer = producing(&endpoint, &trades, 1_500, wave(2));
    live.push(job.worker(&[]));
    let mut refs: Vec<&mut Weir> = live.iter_mut().collect();
    job.wait_balanced(&mut refs, Duration::from_secs(60));
    for _ in 0..3 {
        let mut old = live.remove(0);
        old.signal("TERM");
        let (status, log) = old.wait(Duration::from_secs(60));
        assert!(status.success(), "a stopped worker exits 0:\n{log}");
        logs.push(log);
        live.push(job.worker(&[]));
        let mut refs: Vec<&mut Weir> = live.iter_mut().collect();
        job.wait_balanced(&mut refs, Duration::from_secs(60));
    }
    input.extend(producer.join().unwrap());

    // A split and a merge while the workers read: the children wait for their parents, then
    // start with their keys' state from the parents' checkpoints.
    let producer = producing(&endpoint, &trades, 1_500, wave(3));
    rt.block_on(split_in_half(&client, &trades, "shardId-000000000000"));
    rt.block_on(merge_last_adjacent(&client, &trades));
    input.extend(producer.join().unwrap());
    let mut refs: Vec<&mut Weir> = live.iter_mut().collect();
    job.wait_balanced(&mut refs, Duration::from_secs(90));

    // The workers stop; one reads what is left to the end and flushes.
    for mut worker in live {
        worker.signal("TERM");
        let (status, log) = worker.wait(Duration::from_secs(60));
        assert!(status.success(), "{log}");
        logs.push(log);
    }
    let last = job.worker(&["--until-idle", "3s"]);
    let (status, log) = last.wait(Duration::from_secs(180));
    assert!(status.success(), "{log}");
    logs.push(log);

    // No trade was late (dead letters go to standard error): each worker's watermark waited
    // for every shard it read, those it took over included.
    let dead = util::process::dead_letters(logs.iter().map(String::as_str));
    assert!(dead.is_empty(), "dead letters: {dead:?}");

    // Without repeats, the native results; a window came out twice only if the killed worker
    // had emitted it (a ticker of its shards, ending before the kill), and at most twice.
    let results = tail_at(&endpoint, &results, &[]);
    let (once, counts) = deduplicated(&results);
    assert_same_results(&once, &native_per_ticker(&input, &settings()));
    for ((ticker, end), count) in counts.into_iter().filter(|(_, c)| *c > 1) {
        let shard = shard_of(&at_kill, &ticker);
        assert!(
            victim_shards.contains(&shard) && end <= before_kill && count == 2,
            "{ticker} window ending {end} came out {count} times, but only windows of the killed worker's shards {victim_shards:?} ending by {before_kill} may come out twice (its shards were taken over in {took:?})"
        );
    }
    // Every lease names a checkpoint object that is still there (old ones are deleted only
    // once no lease names them).
    let s3 = util::s3::client(&rt);
    for row in job.leases() {
        let Some(object) = row["checkpoint"].as_str() else { continue };
        let (bucket, key) = object.trim_start_matches("s3://").split_once('/').unwrap();
        let head = rt.block_on(s3.head_object().bucket(bucket).key(key).send());
        assert!(head.is_ok(), "shard {} names {object}, which is gone", row["shard"]);
    }
}

#[test]
fn three_workers_subscribe_through_one_consumer_to_the_shards_they_hold_and_take_a_killed_ones_over() {
    // Enhanced fan-out in a lease group: each worker subscribes to the shards it holds, as the
    // consumer they share, and cancels the subscriptions of the shards it gives up.
    // kinesis-local allows one subscription per consumer and shard, so a shard read by two
    // workers at once would show as refusals that never end.
    let endpoint = kinesis_local_endpoint();
    let trades = create_stream_at(&endpoint, "efo-trades", 4);
    let results = create_stream_at(&endpoint, "efo-results", 1);
    let mut job = LeaseGroup::new(endpoint.clone(), trades.clone(), results.clone());
    let efo = ["--efo-consumer", "group"];
    let wave = |n: i64| T0 + n * 1_500 * 20;

    let producer = producing(&endpoint, &trades, 1_500, wave(0));
    let mut workers = vec![job.worker(&efo), job.worker(&efo), job.worker(&efo)];
    let held = job.wait_balanced(&mut workers.iter_mut().collect::<Vec<_>>(), Duration::from_secs(60));
    // Every shard is subscribed to by the worker that holds it, and by no other.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let counts: Vec<(f64, f64)> = workers
            .iter_mut()
            .map(|w| (w.metric("weir_subscriptions_active"), w.metric("weir_leases_held")))
            .collect();
        if counts.iter().all(|(active, held)| active == held) {
            break;
        }
        assert!(Instant::now() < deadline, "subscriptions (active, leases held) per worker: {counts:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
    let mut input = producer.join().unwrap();

    // The worker killed is the one holding the most leases (two of the four), so the most move.
    let holder = (0..workers.len()).max_by(|&i, &j| held[i].total_cmp(&held[j])).unwrap_or(0);
    let mut killed = workers.remove(holder);
    let producer = producing(&endpoint, &trades, 1_500, wave(1));
    killed.wait_for_metric("weir_checkpoints_total", |n| n >= 2.0, Duration::from_secs(30));
    let mut logs = vec![killed.kill()];
    job.wait_balanced(&mut workers.iter_mut().collect::<Vec<_>>(), FAILOVER_TIME + Duration::from_secs(10));
    input.extend(producer.join().unwrap());
    for mut worker in workers {
        worker.signal("TERM");
        let (status, log) = worker.wait(Duration::from_secs(60));
        assert!(status.success(), "{log}");
        logs.push(log);
    }
    let (status, log) =
        job.worker(&[&efo[..], &["--until-idle", "3s"]].concat()).wait(Duration::from_secs(120));
    assert!(status.success(), "{log}");
    logs.push(log);

    let dead = util::process::dead_letters(logs.iter().map(String::as_str));
    assert!(dead.is_empty(), "dead letters: {dead:?}");
    let (once, counts) = deduplicated(&tail_at(&endpoint, &results, &[]));
    assert_same_results(&once, &native_per_ticker(&input, &settings()));
    let thrice: Vec<_> = counts.iter().filter(|&(_, &c)| c > 2).collect();
    assert!(thrice.is_empty(), "only the killed worker's uncovered windows come out again: {thrice:?}");
}

#[test]
fn a_lone_worker_reads_a_split_shard_then_its_children_and_flushes_only_at_the_end() {
    // Trades before and after a split: the parent's windows go on on the children. The only
    // shard of the first term is the parent, so its end is that term's end of input; the
    // windows pending then belong to the children's term, and come out once, whole.
    let endpoint = kinesis_local_endpoint();
    let (trades, results) =
        (create_stream_at(&endpoint, "split", 1), create_stream_at(&endpoint, "results", 1));
    let input = around_a_split(&endpoint, &trades);

    let mut job = LeaseGroup::new(endpoint.clone(), trades, results.clone());
    let (status, log) = job.worker(&["--until-idle", "3s"]).wait(Duration::from_secs(120));
    assert!(status.success(), "{log}");
    let results = tail_at(&endpoint, &results, &[]);
    let (once, counts) = deduplicated(&results);
    assert_same_results(&once, &native_per_ticker(&input, &settings()));
    let repeated: Vec<_> = counts.iter().filter(|&(_, &c)| c > 1).collect();
    assert!(repeated.is_empty(), "{repeated:?}");
    let finished = job.leases().iter().filter(|r| r["state"] == "finished").count();
    assert_eq!(finished, 1, "the parent's lease is finished");
}

/// `weir run` over `source` (ferrokinesis) until every shard is idle: its status and log.
fn run_until_idle(args: &[&str]) -> (std::process::ExitStatus, String) {
    let out = weir()
        .env("AWS_ENDPOINT_URL_KINESIS", endpoint())
        .args(["run", "--start-position", "trim-horizon", "--until-idle", "3s"])
        .args(args)
        .output()
        .unwrap();
    (out.status, String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn a_stream_keyed_at_random_is_refused_by_a_lease_group_and_read_right_after_rekey() {
    let (raw, keyed, results) =
        (create_stream("raw", 4), create_stream("by-ticker", 4), create_stream("results", 1));
    let input = produce_keyed(&endpoint(), &raw, 4_000, TICKERS, T0, "random");
    let bucket = util::s3::bucket(&runtime(), "rekeyed");
    let group = |source: &str, table: &str| {
        vec![
            "--source".to_string(),
            format!("kinesis://{source}"),
            "--sink".to_string(),
            format!("kinesis://{results}"),
            "--checkpoint".to_string(),
            format!("s3://{bucket}/{table}"),
            "--lease-table".to_string(),
            format!("{table}-leases"),
        ]
    };

    // Workers read whole shards: records whose partition key is not the ticker are refused.
    let args = group(&raw, &raw);
    let (status, log) = run_until_idle(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(status.code(), Some(1), "{log}");
    let error = log.lines().find(|l| l.starts_with("error:")).expect("an error line");
    assert!(error.contains("builtin:rekey") && error.contains("partition key"), "{error}");

    // Kinesis as the shuffle: rekey by TICKER into a second stream, then three workers.
    let (status, log) = run_until_idle(&[
        "--operator",
        "builtin:rekey",
        "--set",
        "key-field=TICKER",
        "--source",
        &format!("kinesis://{raw}"),
        "--sink",
        &format!("kinesis://{keyed}"),
    ]);
    assert!(status.success(), "{log}");
    let args = group(&keyed, &keyed);
    let workers: Vec<_> = (0..3)
        .map(|i| {
            let mut cmd = weir();
            cmd.env("AWS_ENDPOINT_URL_KINESIS", endpoint())
                .args(["run", "--start-position", "trim-horizon", "--until-idle", "3s"])
                .args(&args)
                // No worker dies here: a failover time well above a loaded machine's stalls, so
                // that a late renewal is not taken for a dead worker (its shard read again from
                // an older checkpoint would repeat windows, as at-least-once allows).
                .args(["--worker-id", &format!("r{i}"), "--failover-time", "20s"])
                .args(["--checkpoint-interval", "1s"]);
            Weir::start(cmd)
        })
        .collect();
    for worker in workers {
        let (status, log) = worker.wait(Duration::from_secs(120));
        assert!(status.success(), "{log}");
    }
    let results = tail(&results, &[]);
    let (once, counts) = deduplicated(&results);
    assert_same_results(&once, &native_per_ticker(&input, &[]));
    let repeated: Vec<_> = counts.iter().filter(|&(_, &c)| c > 1).collect();
    assert!(repeated.is_empty(), "{repeated:?}");
}

#[test]
fn a_paused_worker_loses_its_leases_and_cannot_record_a_checkpoint_over_the_new_owners() {
    let (trades, results) = (create_stream("paused", 2), create_stream("results", 1));
    produce(&endpoint(), &trades, 2_000, TICKERS, T0);
    let mut job = LeaseGroup::new(endpoint(), trades, results);
    let mut first = job.worker(&[]);
    job.wait_balanced(&mut [&mut first], Duration::from_secs(60));
    first.wait_for_metric("weir_checkpoints_total", |n| n >= 1.0, Duration::from_secs(30));

    // Paused past the failover time (as by a long stall or a partition): the second worker
    // finds it silent, removes it from the group and takes its leases.
    first.signal("STOP");
    let mut second = job.worker(&[]);
    job.wait_balanced(&mut [&mut second], FAILOVER_TIME + Duration::from_secs(10));
    let taken: Vec<(String, u64)> = job
        .leases()
        .iter()
        .map(|r| (r["shard"].as_str().unwrap().to_string(), r["counter"].as_u64().unwrap()))
        .collect();
    assert_eq!(second.metric("weir_leases_stolen_total"), 2.0);

    // The new owner has recorded its own checkpoints; paused in turn, it writes no more, so
    // any checkpoint the first worker managed to record would stay in the table to be seen.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !job.leases().iter().all(|r| checkpoint_of(r).contains("/workers/w2/")) {
        assert!(Instant::now() < deadline, "w2 recorded no checkpoint: {:#?}", job.leases());
        std::thread::sleep(Duration::from_millis(200));
    }
    second.signal("STOP");
    let recorded: Vec<String> = job.leases().iter().map(checkpoint_of).collect();

    // Woken, it finds its leases gone: counted as lost, and no lease it had names its
    // checkpoint again unless it took the lease anew (a higher counter).
    first.signal("CONT");
    first.wait_for_metric("weir_leases_lost_total", |n| n >= 2.0, Duration::from_secs(30));
    let rows = job.leases();
    for row in &rows {
        let shard = row["shard"].as_str().unwrap();
        let (_, counter_then) = taken.iter().find(|(s, _)| s == shard).unwrap();
        if row["owner"] == "w1" {
            assert!(row["counter"].as_u64().unwrap() > *counter_then, "{row}");
        }
    }
    let now: Vec<String> = rows.iter().map(checkpoint_of).collect();
    assert_eq!(now, recorded, "the first worker recorded a checkpoint over the new owner's");
    second.signal("CONT");
}

#[test]
fn a_lease_taken_over_refuses_its_old_owners_checkpoint_release_and_take() {
    use weir::lease::LeaseTable;
    use weir_kinesis::{HashRange, ShardInfo};
    let rt = runtime();
    rt.block_on(async {
        let name = format!("fencing-{}-{}", std::process::id(), jiff::Timestamp::now().as_nanosecond());
        let table = LeaseTable::connect(&name, None).await;
        table.open("kinesis://fencing", "s3://bucket/prefix").await.unwrap();
        let shard = ShardInfo {
            id: "shardId-000000000000".into(),
            parents: vec![],
            hash_range: HashRange::ALL,
            closed: false,
        };
        assert_eq!(table.add(std::slice::from_ref(&shard)).await.unwrap(), 1);
        assert_eq!(table.add(&[shard]).await.unwrap(), 0, "an existing row is left as it is");
        let now = jiff::Timestamp::now();

        let free = table.leases().await.unwrap().remove(0);
        let a = table.take(&free, "a").await.unwrap().expect("a takes the free lease");
        assert!(
            table
                .record_checkpoint(&free.shard, "a", a, "workers/a/1.ckpt", Some("1"), None, now)
                .await
                .unwrap()
        );

        // a goes silent; b takes the lease over.
        let held_by_a = table.leases().await.unwrap().remove(0);
        let b = table.take(&held_by_a, "b").await.unwrap().expect("b takes it from a");
        assert_eq!(b, a + 1, "every take moves the counter");
        assert!(table.take(&held_by_a, "c").await.unwrap().is_none(), "a take on a stale read fails");

        // a wakes: none of its writes lands.
        let refused =
            table.record_checkpoint(&free.shard, "a", a, "workers/a/2.ckpt", Some("2"), None, now).await;
        assert!(!refused.unwrap(), "a records no checkpoint over b's lease");
        assert!(!table.release(&free.shard, "a", a, false).await.unwrap(), "a cannot release b's lease");
        let row = table.leases().await.unwrap().remove(0);
        assert_eq!(
            (row.owner.as_deref(), row.counter, row.checkpoint.as_deref(), row.position.as_deref()),
            (Some("b"), b, Some("workers/a/1.ckpt"), Some("1"))
        );
    });
}

/// A worker whose leases have all gone (its shard read to its end, the children held by
/// another worker) and whose next term holds only a shard nobody has checkpointed numbers its
/// checkpoints on from its last. Numbering them from 1 again overwrote the object the finished
/// shard's lease names, and the children went on without the keys it handed them on (a
/// ticker's first windows lost; found by the event-time schedules, seed 5).
#[test]
fn a_term_that_starts_from_nothing_keeps_the_checkpoint_a_finished_shard_hands_on() {
    use weir::lease::LeaseTable;
    let endpoint = kinesis_local_endpoint();
    let (trades, results) =
        (create_stream_at(&endpoint, "handed-on", 2), create_stream_at(&endpoint, "results", 1));
    let input = around_a_split(&endpoint, &trades);
    let rt = runtime();
    let client = client_at(&rt, &endpoint);

    // Another worker (this test, through the table) holds every shard but the parent, and
    // renews until told to leave.
    let mut job = LeaseGroup::new(endpoint.clone(), trades.clone(), results.clone());
    let table = rt.block_on(job.open_table());
    rt.block_on(async {
        let config = weir_aws::config(None).await;
        let kinesis = weir_kinesis::Kinesis::with_client(client.clone(), &config);
        let shards =
            weir_kinesis::shards::list_shards(&kinesis, &weir_kinesis::Stream(trades.clone())).await.unwrap();
        table.add(&shards).await.unwrap();
        table.join("other", 1).await.unwrap();
        for lease in table.leases().await.unwrap() {
            if lease.shard != "shardId-000000000000" {
                table.take(&lease, "other").await.unwrap().expect("the other worker takes it");
            }
        }
    });
    let leaving = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let renewing = std::thread::spawn({
        let (leaving, name) = (leaving.clone(), job.table.clone());
        move || {
            let rt = runtime();
            let table = rt.block_on(LeaseTable::connect(&name, None));
            for heartbeat in 2.. {
                if leaving.load(std::sync::atomic::Ordering::Relaxed) {
                    break;
                }
                rt.block_on(table.renew("other", heartbeat)).unwrap();
                std::thread::sleep(Duration::from_millis(500));
            }
            rt.block_on(table.leave("other")).unwrap();
        }
    });

    // The worker's first term reads the parent to its end and hands it on.
    let mut worker = job.worker(&[]);
    let parent_finished = |job: &LeaseGroup| {
        job.leases().iter().any(|r| r["shard"] == "shardId-000000000000" && r["state"] == "finished")
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while !parent_finished(&job) {
        assert!(Instant::now() < deadline, "the parent was not finished: {}", worker.log());
        std::thread::sleep(Duration::from_millis(200));
    }
    // The other worker gives up the open shard: the worker's next term holds only it, never
    // checkpointed, and writes as many checkpoints again as it had.
    let written = worker.metric("weir_checkpoints_total");
    rt.block_on(async {
        let open = table.leases().await.unwrap().into_iter().find(|l| l.shard == "shardId-000000000001");
        let open = open.expect("the open shard's lease");
        assert!(table.release(&open.shard, "other", open.counter, false).await.unwrap());
        // As a worker does after a change: the others look at the table again.
        table.bump().await.unwrap();
    });
    worker.wait_for_metric("weir_checkpoints_total", |n| n > 2.0 * written, Duration::from_secs(60));
    // The other worker leaves: the children are read with the keys their parent handed on.
    leaving.store(true, std::sync::atomic::Ordering::Relaxed);
    renewing.join().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while total(&worker.metrics(), "weir_records_in_total") < 2_000.0 {
        assert!(Instant::now() < deadline, "not every trade was read: {}", worker.log());
        std::thread::sleep(Duration::from_millis(200));
    }
    // Stopped, it hands its pending windows on in its last checkpoint; a worker reading what
    // is left to the end writes them.
    worker.signal("TERM");
    let (status, log) = worker.wait(Duration::from_secs(60));
    assert!(status.success(), "{log}");
    let (status, log) = job.worker(&["--until-idle", "3s"]).wait(Duration::from_secs(120));
    assert!(status.success(), "{log}");
    let (once, _) = deduplicated(&tail_at(&endpoint, &results, &[]));
    assert_same_results(&once, &native_per_ticker(&input, &settings()));
}

/// A worker run with --until-idle reads the whole stream before it ends, even while a worker
/// that went silent still counts in the group: the free leases beyond its share are taken once
/// the silent one is removed (after the failover time), not left unread.
#[test]
#[ignore = "the wait after a term's end of input was reverted: a worker that flushed and then started another term wrote windows again (three copies in a_stream_keyed_at_random_..., fresh-clone CI of d1da14e); run with --ignored once the term loop waits without re-flushing"]
fn a_worker_with_until_idle_does_not_end_while_a_free_lease_waits_for_a_silent_worker_to_go() {
    let (trades, results) = (create_stream("silent", 2), create_stream("results", 1));
    let input = produce(&endpoint(), &trades, 2_000, TICKERS, T0);
    let mut job = LeaseGroup::new(endpoint(), trades, results.clone());
    // A worker that joined and went silent at once: until it is removed, the next worker's
    // share is one of the two shards.
    runtime().block_on(async { job.open_table().await.join("silent", 1).await.unwrap() });
    let (status, log) = job.worker(&["--until-idle", "1s"]).wait(Duration::from_secs(120));
    assert!(status.success(), "{log}");
    let (once, _) = deduplicated(&tail(&results, &[]));
    assert_same_results(&once, &native_per_ticker(&input, &settings()));
}

#[test]
fn two_workers_each_shadow_their_own_shards_and_their_evidence_is_summed() {
    let endpoint = kinesis_local_endpoint();
    let trades = create_stream_at(&endpoint, "shadow-trades", 4);
    let results = create_stream_at(&endpoint, "shadow-results", 1);
    let mut job = LeaseGroup::new(endpoint.clone(), trades.clone(), results.clone());
    let dir = tempfile::tempdir().unwrap();
    let target = crate::swap::target("leased-shadow");
    let v1 = component("sliding_window_max");
    crate::swap::deploy(&v1, &target, &[]);
    let v2 = crate::swap::same_code_new_digest(&v1, dir.path());
    let published = util::s3::weir_s3(&["deploy", "--candidate", v2.to_str().unwrap(), &target]);
    assert!(published.status.success(), "{}", util::process::failed(&published));

    let operator = ["--operator", target.as_str(), "--watch-interval", "100ms"];
    let producer = producing(&endpoint, &trades, 1_500, T0);
    let (mut a, mut b) = (job.worker(&operator), job.worker(&operator));
    job.wait_balanced(&mut [&mut a, &mut b], Duration::from_secs(60));
    producer.join().unwrap();
    let mut compared = 0.0;
    for worker in [&mut a, &mut b] {
        // Each compares the records of the shards it holds, and finds no difference.
        worker.wait_for_metric("weir_shadow_records_compared_total", |n| n > 0.0, Duration::from_secs(60));
        let metrics = worker.metrics();
        assert_eq!(total(&metrics, "weir_shadow_differences_total"), 0.0, "{metrics}");
        compared += total(&metrics, "weir_shadow_records_compared_total");
    }
    for mut worker in [a, b] {
        worker.signal("TERM");
        let (status, log) = worker.wait(Duration::from_secs(60));
        assert!(status.success(), "{log}");
    }
    let status = util::process::ok(&util::s3::weir_s3(&["shadow", "status", &target]));
    assert!(status.contains("evidence of 2 weirs"), "{status}");
    assert!(status.contains("  w1: ") && status.contains("  w2: "), "each worker's own line:\n{status}");
    let summed: f64 = status
        .split("evidence of 2 weirs: ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0.0);
    assert!(summed >= compared, "the status sums both workers ({compared} while they ran):\n{status}");
}

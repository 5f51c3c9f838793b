//! Stopping and going on with `--checkpoint` (polling, and through enhanced fan-out), through the binaries, against kinesis-local
//! (which stores a record as soon as it is put; see ARCHITECTURE.md, Tests) and moto for S3:
//! trades produced in waves into 4 shards while `weir run --checkpoint-interval 1s` runs and is
//! stopped at a random moment of each wave, then started again (with another parallelism each
//! time, so the state is restored by key group). After the last run has read everything:
//!
//! - the results, without repeats, equal the native operator's over the same trades, window
//!   for window;
//! - after SIGKILL, a result appears again only if its window had not fired by the last
//!   checkpoint before a kill (its end after that checkpoint's watermark less the allowed
//!   out-of-orderness): nothing a checkpoint covered is produced twice;
//! - after SIGTERM (a graceful stop: finish, write, checkpoint), no result appears twice.

use crate::util;

use std::time::Duration;

use util::kinesis::*;
use util::process::Weir;
use util::*;

const TICKERS: u32 = 20;
const WAVE: u64 = 3_000;
/// Event time between trades: a wave spans 60 s, so windows fire during every run.
const STEP_MS: i64 = 20;
/// Enough for the producer's disorder between tickers (it keeps order per ticker only).
const OUT_OF_ORDERNESS_MS: i64 = 30_000;

fn settings() -> [(&'static str, &'static str); 1] {
    [("out-of-orderness", "30s")]
}

/// Where the checkpoints go.
enum Store {
    Dir(tempfile::TempDir),
    S3 { bucket: String },
}

impl Store {
    fn location(&self) -> String {
        match self {
            Store::Dir(dir) => dir.path().display().to_string(),
            Store::S3 { bucket } => format!("s3://{bucket}/weir/checkpoints"),
        }
    }

    /// The pointer to the newest checkpoint (`LATEST`), as weir wrote it.
    fn pointer(&self) -> Option<serde_json::Value> {
        let bytes = match self {
            Store::Dir(dir) => std::fs::read(dir.path().join("LATEST")).ok()?,
            Store::S3 { bucket } => {
                let rt = runtime();
                let client = util::s3::client(&rt);
                let got =
                    rt.block_on(client.get_object().bucket(bucket).key("weir/checkpoints/LATEST").send());
                rt.block_on(got.ok()?.body.collect()).unwrap().into_bytes().to_vec()
            }
        };
        Some(serde_json::from_slice(&bytes).unwrap())
    }
}

/// A small random number generator for the stop moments (xorshift), seeded from the clock; the
/// seed is in every failure message.
struct Moments(u64);

impl Moments {
    fn new() -> Self {
        let nanos =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
        Self(u64::from(nanos) | 1)
    }

    fn next_ms(&mut self, below: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % below
    }
}

fn start(
    endpoint: &str,
    trades: &str,
    results: &str,
    store: &Store,
    parallelism: usize,
    extra: &[&str],
) -> Weir {
    let mut cmd = weir();
    cmd.env("AWS_ENDPOINT_URL_KINESIS", endpoint).env("WEIR_LOG", "weir=info").arg("run");
    cmd.args(["--source", &format!("kinesis://{trades}"), "--start-position", "trim-horizon"])
        .args(["--sink", &format!("kinesis://{results}"), "--set", "out-of-orderness=30s"])
        .args(["--checkpoint", &store.location(), "--checkpoint-interval", "1s"])
        .args(["--parallelism", &parallelism.to_string()])
        .args(extra);
    Weir::start(cmd)
}

/// What a series of stops and restarts left.
struct Outcome {
    /// The results, as `weir tail` read them back.
    results: Vec<serde_json::Value>,
    /// The trades produced.
    input: Vec<u8>,
    /// Per stop, the window end up to which the last checkpoint before it covered the windows
    /// (None: no checkpoint yet).
    covered: Vec<Option<i64>>,
    /// The seed of the stop moments.
    seed: u64,
}

/// Produce `stops` waves, stopping weir with `signal` once in each; then let a last run read
/// to the end. Every run gets `extra` arguments.
fn stop_and_go_on(signal: &str, store: &Store, stops: usize, extra: &[&str]) -> Outcome {
    let endpoint = kinesis_local_endpoint();
    let trades = create_stream_at(&endpoint, "trades", 4);
    let results = create_stream_at(&endpoint, "results", 1);
    let mut moments = Moments::new();
    let seed = moments.0;
    let mut input = Vec::new();
    let mut covered = Vec::new();
    for wave in 0..stops {
        let mut weir = start(&endpoint, &trades, &results, store, wave % 3 + 1, extra);
        let start_ms = T0 + wave as i64 * WAVE as i64 * STEP_MS;
        let (at, stream) = (endpoint.clone(), trades.clone());
        let producer = std::thread::spawn(move || {
            produce_with(&at, &stream, WAVE, TICKERS, start_ms, "ticker", &["--step", "20ms"])
        });
        // A random moment while the wave is being written and read.
        std::thread::sleep(Duration::from_millis(500 + moments.next_ms(2_000)));
        if signal == "KILL" {
            weir.kill();
        } else {
            weir.signal(signal);
            let (status, log) = weir.wait(Duration::from_secs(60));
            assert!(status.success(), "a stop by SIG{signal} should exit 0 (seed {seed}):\n{log}");
        }
        // A checkpoint taken before any event time was seen (a busy machine can take one that
        // early) has no watermark (null, or the smallest i64): it covers no window, as no
        // checkpoint does.
        let watermark = store.pointer().and_then(|p| p["watermark_ms"].as_i64());
        covered.push(watermark.and_then(|w| w.checked_sub(OUT_OF_ORDERNESS_MS)));
        input.extend(producer.join().unwrap());
    }
    // Killed before its first checkpoint every time (a random moment on a busy machine), weir
    // starts over, which the check of repeated windows allows for.
    let resumable = store.pointer().is_some();
    let weir = start(&endpoint, &trades, &results, store, 2, &[extra, &["--until-idle", "3s"]].concat());
    let (status, log) = weir.wait(Duration::from_secs(120));
    assert!(status.success(), "seed {seed}:\n{log}");
    if resumable {
        assert!(log.contains("going on from checkpoint"), "the last run should resume (seed {seed}):\n{log}");
    }
    Outcome { results: tail_at(&endpoint, &results, &[]), input, covered, seed }
}

fn killed(times: usize, store: Store, extra: &[&str]) {
    let Outcome { results, input, covered, seed } = stop_and_go_on("KILL", &store, times, extra);
    let (once, counts) = deduplicated(&results);
    assert_same_results(&once, &native_per_ticker(&input, &settings()));
    for ((ticker, end), count) in &counts {
        // Each kill may repeat a window its last checkpoint had not covered, once.
        let uncovered = covered.iter().filter(|c| c.is_none_or(|through| *end > through)).count();
        assert!(
            count - 1 <= uncovered,
            "{ticker} window ending {end} was produced {count} times, but only {uncovered} kills came before a checkpoint covered it (checkpoints covered windows through {covered:?}; seed {seed})"
        );
    }
}

fn stopped_gracefully(store: Store) {
    let Outcome { results, input, covered, seed } = stop_and_go_on("TERM", &store, 3, &[]);
    assert!(covered.iter().all(Option::is_some), "every graceful stop writes a checkpoint: {covered:?}");
    let (once, counts) = deduplicated(&results);
    assert_same_results(&once, &native_per_ticker(&input, &settings()));
    let repeated: Vec<_> = counts.iter().filter(|&(_, &c)| c > 1).collect();
    assert!(repeated.is_empty(), "SIGTERM restarts repeated results (seed {seed}): {repeated:?}");
}

#[test]
fn killed_five_times_with_checkpoints_in_a_directory_nothing_is_lost_and_only_uncovered_windows_repeat() {
    killed(5, Store::Dir(tempfile::tempdir().unwrap()), &[]);
}

#[test]
fn killed_five_times_with_checkpoints_in_s3_nothing_is_lost_and_only_uncovered_windows_repeat() {
    let bucket = util::s3::bucket(&runtime(), "checkpoints");
    killed(5, Store::S3 { bucket }, &[]);
}

#[test]
fn killed_three_times_reading_through_fan_out_nothing_is_lost_and_only_uncovered_windows_repeat() {
    // Each run subscribes again from the checkpoint's positions, as the consumer "recovery";
    // kinesis-local may still hold the killed run's subscriptions for a moment (in use).
    killed(3, Store::Dir(tempfile::tempdir().unwrap()), &["--efo-consumer", "recovery"]);
}

#[test]
fn stopped_by_sigterm_three_times_with_checkpoints_in_a_directory_nothing_repeats() {
    stopped_gracefully(Store::Dir(tempfile::tempdir().unwrap()));
}

#[test]
fn stopped_by_sigterm_three_times_with_checkpoints_in_s3_nothing_repeats() {
    let bucket = util::s3::bucket(&runtime(), "checkpoints");
    stopped_gracefully(Store::S3 { bucket });
}

/// `weir run` over `trades` (ferrokinesis) into `results` with checkpoints in `dir`, reading
/// to the end; its status and standard error.
fn run_to_end(
    trades: &str,
    results: &str,
    dir: &std::path::Path,
    extra: &[&str],
) -> (std::process::ExitStatus, String) {
    let out = weir()
        .env("AWS_ENDPOINT_URL_KINESIS", endpoint())
        .args(["run", "--source", &format!("kinesis://{trades}"), "--start-position", "trim-horizon"])
        .args(["--sink", &format!("kinesis://{results}"), "--until-idle", "2s"])
        .args(["--checkpoint", dir.to_str().unwrap()])
        .args(extra)
        .output()
        .unwrap();
    (out.status, String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn another_operator_restores_the_state_or_is_refused_naming_both_digests_and_reset_state_goes_on() {
    let (trades, results) = (create_stream("trades", 1), create_stream("results", 1));
    produce(&endpoint(), &trades, 2_000, 5, T0);
    let dir = tempfile::tempdir().unwrap();
    let (status, log) = run_to_end(&trades, &results, dir.path(), &[]);
    assert!(status.success(), "{log}");
    let first: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("LATEST")).unwrap()).unwrap();
    let window_max = first["operator"].as_str().unwrap()[..12].to_string();

    // price-alert groups by TICKER too, but cannot read sliding-window-max's state.
    let alert = component("price_alert");
    let (status, log) = run_to_end(&trades, &results, dir.path(), &["--operator", alert.to_str().unwrap()]);
    assert_eq!(status.code(), Some(1), "{log}");
    let error = log.lines().find(|l| l.starts_with("error:")).expect("an error line");
    assert!(error.contains("cannot restore the state of checkpoint"), "{error}");
    assert!(
        error.contains(&window_max) && error.contains(&artifact("price_alert").digest.short()),
        "{error}"
    );
    assert!(error.contains("--reset-state"), "{error}");

    // --reset-state: the positions of the checkpoint, without its state; a new checkpoint.
    let (status, log) =
        run_to_end(&trades, &results, dir.path(), &["--operator", alert.to_str().unwrap(), "--reset-state"]);
    assert!(status.success(), "{log}");
    let next: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("LATEST")).unwrap()).unwrap();
    assert!(next["id"].as_u64() > first["id"].as_u64(), "{next}");
    assert_eq!(next["operator"].as_str().unwrap(), artifact("price_alert").digest.to_string());
}

#[test]
fn a_checkpoint_of_another_stream_is_refused() {
    let (trades, other, results) =
        (create_stream("trades", 1), create_stream("other", 1), create_stream("results", 1));
    produce(&endpoint(), &trades, 100, 5, T0);
    let dir = tempfile::tempdir().unwrap();
    let (status, log) = run_to_end(&trades, &results, dir.path(), &[]);
    assert!(status.success(), "{log}");
    let (status, log) = run_to_end(&other, &results, dir.path(), &[]);
    assert_eq!(status.code(), Some(1), "{log}");
    assert!(
        log.contains(&format!("are of kinesis://{trades}, not kinesis://{other}")),
        "the error names both streams: {log}"
    );
}

#[test]
fn a_second_weir_on_the_same_s3_checkpoints_fences_the_first_which_stops_without_overwriting() {
    let (trades, results) = (create_stream("trades", 2), create_stream("results", 1));
    produce(&endpoint(), &trades, 1_000, 5, T0);
    let bucket = util::s3::bucket(&runtime(), "fenced");
    let location = format!("s3://{bucket}/checkpoints");
    let start = || {
        let mut cmd = weir();
        cmd.env("AWS_ENDPOINT_URL_KINESIS", endpoint()).arg("run");
        cmd.args(["--source", &format!("kinesis://{trades}"), "--start-position", "trim-horizon"])
            .args(["--sink", &format!("kinesis://{results}"), "--checkpoint", &location])
            .args(["--checkpoint-interval", "200ms"]);
        Weir::start(cmd)
    };
    let mut first = start();
    first.wait_for_metric("weir_checkpoints_total", |n| n >= 1.0, Duration::from_secs(30));
    let mut second = start();
    second.wait_for_metric("weir_checkpoints_total", |n| n >= 1.0, Duration::from_secs(30));
    let (status, log) = first.wait(Duration::from_secs(30));
    assert_eq!(status.code(), Some(1), "{log}");
    let error = log.lines().find(|l| l.starts_with("error:")).expect("an error line");
    assert!(error.contains("LATEST was replaced by another weir"), "{error}");
    assert!(second.is_running(), "the second one goes on:\n{}", second.log());
}

#[test]
fn a_position_the_stream_no_longer_has_is_read_from_the_oldest_record_and_counted() {
    let (trades, results) = (create_stream("trades", 1), create_stream("results", 1));
    produce(&endpoint(), &trades, 500, 5, T0);
    let dir = tempfile::tempdir().unwrap();
    let (status, log) = run_to_end(&trades, &results, dir.path(), &[]);
    assert!(status.success(), "{log}");
    // The checkpoint's position becomes one the shard does not have (as after the retention
    // period trimmed it).
    let pointer: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("LATEST")).unwrap()).unwrap();
    let file = dir.path().join(pointer["object"].as_str().unwrap());
    let mut checkpoint = weir_checkpoint::codec::decode(&std::fs::read(&file).unwrap()).unwrap();
    for shard in checkpoint.meta.shards.values_mut() {
        shard.after = Some("1".repeat(56));
    }
    std::fs::write(&file, weir_checkpoint::codec::encode(&checkpoint)).unwrap();

    let mut cmd = weir();
    cmd.env("AWS_ENDPOINT_URL_KINESIS", endpoint()).arg("run");
    cmd.args(["--source", &format!("kinesis://{trades}"), "--sink", &format!("kinesis://{results}")])
        .args(["--checkpoint", dir.path().to_str().unwrap()]);
    let mut weir = Weir::start(cmd);
    weir.wait_for_metric("weir_checkpoint_positions_expired_total", |n| n == 1.0, Duration::from_secs(30));
    weir.wait_for_metric(
        "weir_records_in_total{shard=\"shardId-000000000000\"}",
        |n| n == 500.0,
        Duration::from_secs(30),
    );
}

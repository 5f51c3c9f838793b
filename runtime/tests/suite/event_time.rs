//! The watermark never runs ahead of records not yet read: the pipeline driven by a scripted
//! source (no emulator, no clock), one step per batch, through each way it could run ahead: a
//! split whose parent ends while other shards deliver, a merge whose first parent ends first, a
//! producer pause followed by a burst that reaches one shard first, a throttled shard. With
//! trades in order per ticker, no trade is dead-lettered and every window holds all its trades
//! (the native operator over the same trades, windows fired only at the end). The watermark is
//! read where an operator reads it: `weir_watermark_milliseconds`.

use crate::util;

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use util::*;
use weir::checkpoint::{Checkpoint, Meta, PointerStore, ShardProgress};
use weir::metrics::Metrics;
use weir::pipeline::{Checkpoints, Ending, Pipeline, PipelineError, PipelineOptions};
use weir::sink::{DeadLetterWriter, FileSink, Sink};
use weir::source::{ChannelSource, Lineage, Source, SourceEvent};
use weir_kinesis::HashRange;
use weir_operator::OwnedBatch;

const SETTINGS: [(&str, &str); 3] = [("window", "20s"), ("slide", "10s"), ("out-of-orderness", "0s")];

const MID: u128 = u128::MAX / 2;
const LOWER: HashRange = HashRange { start: 0, end: MID };
const UPPER: HashRange = HashRange { start: MID + 1, end: u128::MAX };
const LOWER_QUARTER: HashRange = HashRange { start: 0, end: MID / 2 };
const SECOND_QUARTER: HashRange = HashRange { start: MID / 2 + 1, end: MID };

/// A pipeline fed by the test, one step per batch.
struct Script {
    tx: mpsc::Sender<SourceEvent>,
    metrics: Arc<Metrics>,
    batches: u64,
    run: tokio::task::JoinHandle<Result<Ending, PipelineError>>,
    dir: tempfile::TempDir,
    /// Every trade sent, in order.
    sent: Vec<u8>,
}

impl Script {
    fn start(parallelism: usize) -> Self {
        Self::start_term(parallelism, None)
    }

    /// A lease term (children of its shards read elsewhere) going on from `restored`, if any.
    fn start_term(
        parallelism: usize,
        restored: Option<fn(&weir::operator::LoadedOperator) -> Checkpoint>,
    ) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let settings: Vec<(String, String)> =
            SETTINGS.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let loaded = engine().load(artifact("sliding_window_max"), &settings).unwrap();
        let (tx, rx) = mpsc::channel(1);
        let sink = std::fs::File::create(dir.path().join("results.jsonl")).unwrap();
        let sink = Sink::File(FileSink::new(tokio::fs::File::from_std(sink), "results"));
        let dead = DeadLetterWriter::append_to(&dir.path().join("dead.jsonl")).unwrap();
        let metrics = Arc::new(Metrics::default());
        let checkpoints = restored.map(|make| Checkpoints {
            store: Box::new(PointerStore::dir(&dir.path().join("checkpoints")).unwrap()),
            interval: Duration::from_secs(3600),
            source: "scripted".into(),
            restored: Some(make(&loaded)),
        });
        let options = PipelineOptions {
            parallelism,
            children_read_elsewhere: checkpoints.is_some(),
            // Ticks only where the script says: the watermark is computed at each step.
            tick_interval: Duration::from_secs(3600),
            stats_interval: Duration::from_secs(3600),
            ..PipelineOptions::default()
        };
        let run = tokio::spawn(
            Pipeline::new(Source::Channel(ChannelSource::new(rx)), loaded, sink, dead)
                .metrics(metrics.clone())
                .options(options)
                .checkpoints(checkpoints)
                .run(std::future::pending()),
        );
        Self { tx, metrics, batches: 0, run, dir, sent: Vec::new() }
    }

    async fn send(&self, event: SourceEvent) {
        self.tx.send(event).await.expect("the pipeline runs");
    }

    async fn started(&self, shard: &str, parents: &[&str], hash_range: HashRange) {
        let parents = parents.iter().map(|p| p.to_string()).collect();
        let lineage = Lineage { parents, hash_range, from_ms: Some(0) };
        self.send(SourceEvent::Started { shard: shard.into(), lineage: Some(lineage) }).await;
    }

    async fn ended(&self, shard: &str) {
        self.send(SourceEvent::Ended { shard: shard.into() }).await;
    }

    /// A read of `shard` sent at `sent_at` came back empty and caught up.
    async fn caught_up(&self, shard: &str, sent_at: Instant) {
        self.send(SourceEvent::CaughtUp { shard: shard.into(), sent_at }).await;
    }

    /// Trades `(ticker, seconds after T0)` read from `shard`, processed as a step of their own.
    async fn batch(&mut self, shard: &str, trades: &[(&str, i64)]) {
        let mut batch = OwnedBatch::new(shard);
        for &(ticker, seconds) in trades {
            let data = trade(ticker, T0 + seconds * 1_000, 1.0 + seconds as f64);
            batch.push(ticker, &data, T0);
            self.sent.extend_from_slice(&data);
            self.sent.push(b'\n');
        }
        self.send(SourceEvent::batch(batch)).await;
        self.batches += 1;
        // Handed over, then its results taken: a read sent from now on vouches for them (the
        // instances run on after a hand-over, so counting it is not enough).
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.metrics.batches.get() < self.batches || self.metrics.in_flight.get() > 0 {
            assert!(Instant::now() < deadline, "the pipeline did not process batch {}", self.batches);
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    /// The watermark the last step ran with, in seconds after T0.
    fn watermark_s(&self) -> f64 {
        (self.metrics.watermark.get() - T0) as f64 / 1_000.0
    }

    /// The last step ran with the watermark at or below `seconds` after T0, because `why`.
    fn assert_held(&self, seconds: f64, why: &str) {
        assert!(self.watermark_s() <= seconds, "{why}: the watermark is at {} s", self.watermark_s());
    }

    /// End the input: the results (sorted) and the dead letters.
    async fn finish(self) -> (Vec<String>, Vec<serde_json::Value>, Vec<String>) {
        let Script { tx, run, dir, sent, .. } = self;
        drop(tx);
        assert_eq!(run.await.unwrap().unwrap(), Ending::EndOfInput);
        let mut results: Vec<String> = std::fs::read_to_string(dir.path().join("results.jsonl"))
            .unwrap()
            .lines()
            .map(String::from)
            .collect();
        results.sort();
        let dead = std::fs::read_to_string(dir.path().join("dead.jsonl")).unwrap_or_default();
        let dead = dead.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        // Every window complete: the native operator with no window fired before the end.
        let mut native = weir_operator::Harness::<sliding_window_max::SlidingWindowMax>::new(&SETTINGS)
            .unwrap()
            .with_batch_size(usize::MAX);
        for line in sent.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            native.push("", line);
        }
        native.end_input().unwrap();
        let mut expected: Vec<String> = native.output_strings().into_iter().map(|(_, d)| d).collect();
        expected.sort();
        (results, dead, expected)
    }
}

/// No dead letter, and the results equal the complete windows.
fn assert_complete((results, dead, expected): (Vec<String>, Vec<serde_json::Value>, Vec<String>)) {
    assert!(dead.is_empty(), "trades dead-lettered: {dead:#?}");
    assert_eq!(results, expected, "windows with trades missing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_split_parent_holds_the_watermark_while_other_shards_deliver_until_its_children_report() {
    let mut s = Script::start(1);
    s.started("p", &[], LOWER).await;
    s.started("q", &[], UPPER).await;
    s.batch("p", &[("P1", 1), ("P2", 1)]).await;
    s.batch("q", &[("Q", 1)]).await;
    s.ended("p").await;
    // Several steps of q alone, far ahead: p's keys go on in children not started yet.
    for t in [20, 40, 60, 80] {
        s.batch("q", &[("Q", t)]).await;
        s.assert_held(1.0, "p's keys go on in children not started yet");
    }
    s.started("c1", &["p"], LOWER_QUARTER).await;
    s.batch("c1", &[("P1", 2), ("P1", 15)]).await;
    s.assert_held(1.0, "c2 has not started");
    s.started("c2", &["p"], SECOND_QUARTER).await;
    s.batch("q", &[("Q", 90)]).await;
    s.assert_held(1.0, "c2 has reported nothing");
    s.batch("c2", &[("P2", 3), ("P2", 12)]).await;
    assert_complete(s.finish().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_merge_holds_the_watermark_at_the_first_parent_to_end_until_the_child_reports() {
    let mut s = Script::start(3);
    s.started("p1", &[], LOWER).await;
    s.started("p2", &[], UPPER).await;
    s.batch("p1", &[("A", 1)]).await;
    s.batch("p2", &[("B", 1)]).await;
    s.ended("p1").await;
    for t in [30, 50, 70] {
        s.batch("p2", &[("B", t)]).await;
        s.assert_held(1.0, "p1 ended, its keys go on in the child");
    }
    s.ended("p2").await;
    s.started("c", &["p1", "p2"], HashRange::ALL).await;
    s.batch("c", &[("A", 2), ("A", 25), ("B", 71)]).await;
    s.batch("c", &[("A", 90), ("B", 95)]).await;
    assert_complete(s.finish().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_pause_a_burst_that_reaches_one_shard_first_makes_no_trade_of_the_others_late() {
    let mut s = Script::start(2);
    s.started("a", &[], LOWER).await;
    s.started("b", &[], UPPER).await;
    s.batch("a", &[("A", 1)]).await;
    s.batch("b", &[("B", 1)]).await;
    // The pause: every read comes back empty, each sent after everything was processed.
    for _ in 0..3 {
        let now = Instant::now();
        s.caught_up("a", now).await;
        s.caught_up("b", now).await;
    }
    s.batch("a", &[("A", 1)]).await;
    assert_eq!(s.watermark_s(), 1.0, "both caught up after every trade of 1 s was processed");
    // The burst: a's first read brings its whole backlog, closing trades included; b's read
    // in flight was sent before that backlog was processed.
    let b_read = Instant::now();
    s.batch("a", &[("A", 2), ("A", 30), ("A", 60), ("A", 600)]).await;
    s.caught_up("b", b_read).await;
    s.batch("a", &[("A", 601)]).await;
    assert_eq!(s.watermark_s(), 1.0, "b's empty read proves nothing about the burst");
    s.batch("b", &[("B", 3), ("B", 31), ("B", 59), ("B", 600)]).await;
    // Now b's next empty read, sent after its backlog was processed, lets the watermark go.
    s.caught_up("b", Instant::now()).await;
    s.batch("a", &[("A", 602)]).await;
    assert_eq!(s.watermark_s(), 601.0, "a's newest before the read was sent");
    assert_complete(s.finish().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttled_shard_that_sends_no_read_holds_the_watermark_however_long() {
    let mut s = Script::start(1);
    s.started("a", &[], LOWER).await;
    s.started("b", &[], UPPER).await;
    s.batch("b", &[("B", 1)]).await;
    s.caught_up("b", Instant::now()).await;
    // b is throttled from here on: no reply, no caught-up read, while a delivers for a while.
    for t in [10, 40, 70, 100, 130] {
        s.batch("a", &[("A", t)]).await;
        s.caught_up("a", Instant::now()).await;
        s.assert_held(1.0, "b may still hold trades after 1 s");
    }
    s.batch("b", &[("B", 5), ("B", 45), ("B", 129)]).await;
    assert_complete(s.finish().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trade_after_some_of_its_windows_fired_counts_in_the_others_and_is_reported_partly_late() {
    let mut s = Script::start(1);
    s.started("a", &[], HashRange::ALL).await;
    s.batch("a", &[("A", 1), ("A", 25)]).await;
    // The watermark is at 25 s: [0, 20) has fired, [10, 30) is open.
    s.batch("a", &[("A", 5), ("A", 15), ("A", 40)]).await;
    let metrics = s.metrics.clone();
    let (results, dead, _) = s.finish().await;
    assert_eq!(dead.len(), 2, "{dead:#?}");
    assert_eq!(dead[0]["late"], "all", "5 s belongs to [-10, 10) and [0, 20), both fired");
    assert_eq!(dead[1]["late"], "some", "15 s missed [0, 20) but counts in [10, 30)");
    let reason = dead[1]["reason"].as_str().unwrap();
    assert!(reason.contains("[2026-11-25T10:00:00.000Z, 2026-11-25T10:00:20.000Z)"), "{reason}");
    let window_10_30 = results.iter().find(|r| r.contains(r#""WINDOW_START":"2026-11-25T10:00:10.000Z""#));
    assert!(window_10_30.is_some_and(|r| r.contains(r#""TRADES":2"#)), "{results:#?}");
    let text = metrics.render();
    assert!(text.contains(r#"weir_late_records_total{missed="all"} 1"#), "{text}");
    assert!(text.contains(r#"weir_late_records_total{missed="some"} 1"#), "{text}");
}

/// The checkpoint a worker wrote as it read shard `p` to its end (trades of P at 1 to 5 s) and
/// died before it gave the lease up: `p` is finished in it, and P's windows are still open.
fn p_finished(loaded: &weir::operator::LoadedOperator) -> Checkpoint {
    let mut native = weir_operator::Harness::<sliding_window_max::SlidingWindowMax>::new(&SETTINGS).unwrap();
    for t in 1..=5 {
        native.push("P", &trade("P", T0 + t * 1_000, 1.0 + t as f64));
    }
    native.flush().unwrap();
    let progress = ShardProgress {
        after: Some("5".into()),
        finished: true,
        event_time_ms: Some(T0 + 5_000),
        ..ShardProgress::default()
    };
    let meta = Meta {
        id: 1,
        taken_at: jiff::Timestamp::now(),
        source: "scripted".into(),
        operator: weir::checkpoint::operator_ref(loaded),
        parallelism: 1,
        shards: [("p".to_string(), progress)].into(),
        watermark_ms: weir_contract::NO_WATERMARK,
        records_out: 0,
    };
    Checkpoint { meta, state: native.snapshot().unwrap() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_term_holding_a_shard_read_to_its_end_before_it_holds_the_watermark_at_its_clock() {
    // Its last owner read p to its end and died before giving the lease up: the term that takes
    // it over does not read it again, and P's open windows (its children go on with them
    // elsewhere) must not fire while q runs ahead.
    let mut s = Script::start_term(1, Some(p_finished));
    s.started("q", &[], UPPER).await;
    for t in [20, 40, 60, 80] {
        s.batch("q", &[("Q", t)]).await;
        s.assert_held(5.0, "p's keys go on in children another term reads");
    }
    let (results, dead, _) = s.finish().await;
    assert!(dead.is_empty(), "{dead:#?}");
    assert!(results.iter().any(|r| r.contains("\"P\"")), "P's windows are written at the end: {results:?}");
}

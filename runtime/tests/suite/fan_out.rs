//! `weir run --efo-consumer` and `weir tail --efo-consumer`: reading through enhanced fan-out
//! (SubscribeToShard) against the two emulators that serve it, each with its own way of ending
//! a shard: ferrokinesis sends ChildShards (and must not be written while it is read: see
//! `kinesis_source.rs`), kinesis-local sends none, allows one subscription per consumer and
//! shard, and may be written while read. Subscriptions renewed, cut and frozen mid-stream go
//! through a proxy. The results are compared with the native operator's, and the metrics read
//! as an operator of weir would read them. A split and a merge during subscriptions is in
//! `kinesis_source.rs`, beside the same while polling; recovery and lease groups through
//! fan-out are in `recovery.rs` and `leases.rs`.

use crate::util;

use std::collections::BTreeMap;
use std::time::Duration;

use util::kinesis::*;
use util::process::{Weir, total, value};
use util::proxy::Proxy;
use util::*;

/// The producer's disorder between tickers (see `kinesis_source.rs`).
const OUT_OF_ORDERNESS: (&str, &str) = ("out-of-orderness", "60s");

/// `weir run` of sliding-window-max reading `trades` from the start through `consumer` into
/// the stream `results`, allowing the producer's disorder, then `extra`.
fn start(endpoint: &str, trades: &str, results: &str, consumer: &str, extra: &[&str]) -> Weir {
    let sink = format!("kinesis://{results}");
    let before = ["--sink", &sink, "--set", "out-of-orderness=60s"];
    start_with(endpoint, trades, consumer, &[&before[..], extra].concat())
}

/// `weir run` reading `trades` from the start through `consumer`, then `extra`.
fn start_with(endpoint: &str, trades: &str, consumer: &str, extra: &[&str]) -> Weir {
    let mut cmd = weir();
    cmd.env("AWS_ENDPOINT_URL_KINESIS", endpoint).env("WEIR_LOG", "weir=info").arg("run");
    cmd.args(["--source", &format!("kinesis://{trades}"), "--start-position", "trim-horizon"])
        .args(["--efo-consumer", consumer])
        .args(extra);
    Weir::start(cmd)
}

/// What the test fixture operator writes for `input` (an echo of each trade) as lines of a
/// file: the trades per ticker in the order produced.
fn echoed(input: &[u8]) -> BTreeMap<String, Vec<String>> {
    let lines = input.split(|&b| b == b'\n').filter(|l| !l.is_empty());
    per_ticker(lines.map(|l| std::str::from_utf8(l).unwrap()))
}

/// The trades a file the fixture operator wrote holds, as [`echoed`] describes them (without
/// the `count=N` per key it writes when the input ends; a stopped weir ends no input).
fn echoes_in(path: &std::path::Path) -> BTreeMap<String, Vec<String>> {
    let text = std::fs::read_to_string(path).unwrap();
    per_ticker(text.lines().filter(|l| !l.starts_with("count=")))
}

#[test]
fn trades_read_through_fan_out_give_the_native_windows_with_ticker_and_random_keys() {
    let endpoint = endpoint();
    let rt = runtime();
    let client = client_at(&rt, &endpoint);
    for (key, deregister) in [("ticker", false), ("random", true)] {
        let trades = create_stream(&format!("efo-{key}"), 4);
        let results = create_stream(&format!("efo-{key}-max"), 2);
        let input = produce_keyed(&endpoint, &trades, 20_000, 50, T0, key);
        let mut extra = vec!["--until-idle", "3s", "--parallelism", "3"];
        if deregister {
            extra.push("--efo-deregister");
        }
        let mut weir = start(&endpoint, &trades, &results, "job", &extra);
        let text = weir.wait_for_total("weir_records_in_total", |n| n == 20_000.0, Duration::from_secs(60));
        // Every shard read through a subscription of its own, with the service's view of how
        // far behind it is.
        assert_eq!(value(&text, "weir_subscriptions_active"), Some(4.0), "{text}");
        assert!(value(&text, "weir_subscriptions_started_total").unwrap_or(0.0) >= 4.0, "{text}");
        assert!(value(&text, "weir_subscription_events_total").unwrap_or(0.0) >= 4.0, "{text}");
        for shard in 0..4 {
            let series = format!("weir_millis_behind_latest{{shard=\"shardId-00000000000{shard}\"}}");
            assert!(value(&text, &series).is_some(), "{series}:\n{text}");
        }
        let (status, log) = weir.wait(Duration::from_secs(60));
        assert!(status.success(), "{log}");
        let dead = util::process::dead_letters([log.as_str()]);
        assert!(dead.is_empty(), "dead letters: {dead:?}");
        // The results, read back through a consumer of their own.
        let got = by_key(&tail_at(&endpoint, &results, &["--efo-consumer", "checker"]));
        assert_same_results(&got, &native_by_key_with(&input, &[OUT_OF_ORDERNESS]));

        // The consumer is kept for the next run unless --efo-deregister.
        let arn = rt
            .block_on(client.describe_stream_summary().stream_name(&trades).send())
            .unwrap()
            .stream_description_summary
            .unwrap()
            .stream_arn;
        let described =
            rt.block_on(client.describe_stream_consumer().stream_arn(&arn).consumer_name("job").send());
        let status = described.ok().and_then(|d| d.consumer_description).map(|c| c.consumer_status);
        if deregister {
            assert!(
                status.as_ref().is_none_or(|s| *s == aws_sdk_kinesis::types::ConsumerStatus::Deleting),
                "deregistered: {status:?}"
            );
        } else {
            assert_eq!(status, Some(aws_sdk_kinesis::types::ConsumerStatus::Active));
        }
    }
}

#[test]
fn shards_resharded_before_the_run_are_read_parents_first_through_their_child_shards() {
    // ferrokinesis ends a closed shard's subscription with ChildShards. Everything is written
    // first (it must not be written while read), around a split and a merge.
    let endpoint = endpoint();
    let trades = create_stream("efo-resharded", 2);
    let results = create_stream("efo-resharded-max", 1);
    let rt = runtime();
    let client = client_at(&rt, &endpoint);
    let mut input = produce_keyed(&endpoint, &trades, 3_000, 30, T0, "random");
    rt.block_on(split_in_half(&client, &trades, "shardId-000000000000"));
    input.extend(produce_keyed(&endpoint, &trades, 3_000, 30, T0 + 30_000, "random"));
    rt.block_on(merge_last_adjacent(&client, &trades));
    input.extend(produce_keyed(&endpoint, &trades, 3_000, 30, T0 + 60_000, "random"));

    let mut weir = start(&endpoint, &trades, &results, "resharded", &["--until-idle", "3s"]);
    // The split parent and both merge parents are read to their ends.
    weir.wait_for_metric("weir_reshards_total", |n| n >= 3.0, Duration::from_secs(60));
    let (status, log) = weir.wait(Duration::from_secs(60));
    assert!(status.success(), "{log}");
    let dead = util::process::dead_letters([log.as_str()]);
    assert!(dead.is_empty(), "dead letters: {dead:?}");
    assert_same_results(&by_key(&tail(&results, &[])), &native_by_key_with(&input, &[OUT_OF_ORDERNESS]));
}

#[test]
fn subscriptions_renewed_cut_and_frozen_mid_stream_lose_and_repeat_nothing() {
    // Through a proxy to kinesis-local: subscriptions renewed every 6 s (AWS refuses a new one
    // within 5 s of the last), then every connection cut, then every connection frozen (open,
    // silent) until weir's 2 s inactivity deadline.
    // The fixture echoes each trade: a trade lost or read twice shows. They go to a file: a PutRecords through the proxy cut or frozen after Kinesis took
    // it is tried again and may write twice, which a Kinesis sink allows (at least once).
    let proxy = Proxy::to(&kinesis_local_endpoint());
    let endpoint = proxy.endpoint.clone();
    let trades = create_stream_at(&endpoint, "efo-faults", 1);
    let out = tempfile::tempdir().unwrap();
    let results = out.path().join("echo.jsonl");
    let fixture = component("test_fixture");
    let extra = [
        "--sink",
        results.to_str().unwrap(),
        "--operator",
        fixture.to_str().unwrap(),
        "--efo-renew-after",
        "6s",
        "--efo-inactivity",
        "2s",
    ];
    let mut weir = start_with(&endpoint, &trades, "faults", &extra);
    let within = Duration::from_secs(60);
    weir.wait_for_metric("weir_subscriptions_active", |n| n == 1.0, within);

    let mut input = produce(&endpoint, &trades, 600, 20, T0);
    weir.wait_for_total("weir_records_in_total", |n| n == 600.0, within);
    weir.wait_for_metric("weir_subscriptions_renewed_total", |n| n >= 1.0, within);

    // Cut until a subscription was open to be cut (not between two).
    let dropped = "weir_subscriptions_resubscribed_total{reason=\"dropped\"}";
    let deadline = std::time::Instant::now() + within;
    'cut: loop {
        assert!(std::time::Instant::now() < deadline, "no cut subscription seen:\n{}", weir.log());
        proxy.cut();
        for _ in 0..20 {
            std::thread::sleep(Duration::from_millis(100));
            if weir.metric(dropped) >= 1.0 {
                break 'cut;
            }
        }
    }
    input.extend(produce(&endpoint, &trades, 600, 20, T0 + 600));
    weir.wait_for_total("weir_records_in_total", |n| n == 1_200.0, within);

    proxy.freeze();
    input.extend(produce(&endpoint, &trades, 600, 20, T0 + 1_200));
    let inactive = "weir_subscriptions_resubscribed_total{reason=\"inactive\"}";
    weir.wait_for_metric(inactive, |n| n >= 1.0, within);
    weir.wait_for_total("weir_records_in_total", |n| n == 1_800.0, within);

    // Stopped, not left to end by itself: --until-idle would end it if the faults kept the
    // shard unsubscribed that long, before the test saw each one.
    weir.signal("TERM");
    let (status, log) = weir.wait(within);
    assert!(status.success(), "{log}");
    assert_same_results(&echoes_in(&results), &echoed(&input));
}

#[test]
fn of_two_weirs_with_one_consumer_name_one_reads_and_the_other_waits_until_it_stops() {
    // kinesis-local allows one subscription per consumer and shard, as AWS refuses a second
    // within 5 s: the second weir is refused (ResourceInUse, counted) and keeps trying.
    let endpoint = kinesis_local_endpoint();
    let trades = create_stream_at(&endpoint, "efo-shared", 1);
    let results = create_stream_at(&endpoint, "efo-shared-max", 1);
    let within = Duration::from_secs(60);
    let mut first = start(&endpoint, &trades, &results, "shared", &[]);
    first.wait_for_metric("weir_subscription_events_total", |n| n >= 1.0, within);
    let mut second = start(&endpoint, &trades, &results, "shared", &[]);
    let in_use = "weir_subscriptions_resubscribed_total{reason=\"in-use\"}";
    second.wait_for_metric(in_use, |n| n >= 2.0, within);

    produce(&endpoint, &trades, 300, 10, T0);
    first.wait_for_total("weir_records_in_total", |n| n == 300.0, within);
    assert_eq!(total(&second.metrics(), "weir_records_in_total"), 0.0, "only one reads");

    first.signal("TERM");
    let (status, log) = first.wait(within);
    assert!(status.success(), "{log}");
    // The second takes the subscription over and reads the shard from its start.
    second.wait_for_total("weir_records_in_total", |n| n == 300.0, within);
}

#[test]
fn an_idle_shards_empty_events_let_the_watermark_and_the_windows_go_on() {
    // Every trade on one shard of two (one partition key): the other only ever sends empty
    // events. Windows fire while weir runs only if those events vouch for the idle shard.
    let endpoint = endpoint();
    let trades = create_stream("efo-idle", 2);
    let results = create_stream("efo-idle-max", 1);
    produce_with(&endpoint, &trades, 2_000, 10, T0, "constant", &["--step", "100ms"]);
    let mut weir = start(&endpoint, &trades, &results, "idle", &[]);
    let within = Duration::from_secs(60);
    let text = weir.wait_for_total("weir_records_out_total", |n| n > 0.0, within);
    let watermark = value(&text, "weir_watermark_milliseconds").unwrap_or(0.0);
    assert!(watermark >= T0 as f64, "the watermark moved past the first trades: {watermark}\n{text}");
    assert!(weir.is_running(), "windows came out before the end of the input");
}

#[test]
fn a_live_swap_while_reading_through_a_consumer_keeps_every_window() {
    // kinesis-local (written while read): a wave of trades, a new version deployed to S3 (the
    // same code under another digest), a second wave; the windows of a run without a swap.
    let endpoint = kinesis_local_endpoint();
    let trades = create_stream_at(&endpoint, "efo-swap", 2);
    let results = create_stream_at(&endpoint, "efo-swap-max", 1);
    let dir = tempfile::tempdir().unwrap();
    let target = crate::swap::target("efo-swap");
    let v1 = component("sliding_window_max");
    crate::swap::deploy(&v1, &target, &["out-of-orderness=60s"]);
    let extra = ["--operator", &target, "--watch-interval", "100ms", "--until-idle", "4s"];
    let mut weir = start_with(
        &endpoint,
        &trades,
        "swapping",
        &[&["--sink", &format!("kinesis://{results}")], &extra[..]].concat(),
    );
    let within = Duration::from_secs(60);
    weir.wait_for_metric("weir_subscriptions_active", |n| n == 2.0, within);

    let mut input = produce(&endpoint, &trades, 1_500, 20, T0);
    weir.wait_for_total("weir_records_in_total", |n| n == 1_500.0, within);
    let v2 = crate::swap::same_code_new_digest(&v1, dir.path());
    crate::swap::deploy(&v2, &target, &["out-of-orderness=60s"]);
    weir.wait_for_metric(crate::swap::SWAPS, |n| n >= 1.0, within);
    input.extend(produce(&endpoint, &trades, 1_500, 20, T0 + 30_000));

    let (status, log) = weir.wait(within);
    assert!(status.success(), "{log}");
    let dead = util::process::dead_letters([log.as_str()]);
    assert!(dead.is_empty(), "dead letters: {dead:?}");
    let expected = native_by_key_with(&input, &[OUT_OF_ORDERNESS]);
    assert_same_results(&by_key(&tail_at(&endpoint, &results, &[])), &expected);
}

#[test]
fn efo_needs_a_kinesis_source_and_says_so_before_anything_runs() {
    let out = weir().args(["run", "--source", "generator", "--efo-consumer", "c"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("give --source kinesis://STREAM"), "{stderr}");
    let out = weir().args(["run", "--efo-deregister"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "--efo-deregister needs --efo-consumer");
}

//! Shadow deploys through the binaries against moto's S3: a candidate published with
//! `weir deploy --candidate` runs beside the live version inside a running `weir run` (from
//! standard input), its outputs compared record by record and never written; `weir deploy
//! --promote-after` promotes it on evidence or rejects it; `weir shadow status` shows the
//! evidence and the decisions.

use crate::util;

use std::process::{Child, Stdio};

use crate::swap::{SWAPS, WITHIN, deploy, half_way, same_code_new_digest, start, target};
use util::process::{failed, ok};
use util::s3::{s3_endpoint, weir_s3};
use util::*;

const COMPARED: &str = "weir_shadow_records_compared_total";
const INSTANCES: &str = "weir_shadow_instances";
const STOPPED: &str = "weir_shadow_stopped_total";

/// `weir deploy --candidate FILE TARGET EXTRA...`, running (it waits with --promote-after).
fn candidate(file: &std::path::Path, target: &str, extra: &[&str]) -> Child {
    weir()
        .env("AWS_ENDPOINT_URL_S3", s3_endpoint())
        .args(["deploy", "--candidate", file.to_str().unwrap(), target])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// What a `weir deploy` that ran to its end printed, and whether it succeeded.
fn outcome(child: Child) -> std::process::Output {
    child.wait_with_output().unwrap()
}

fn differences(weir: &mut util::process::Weir, kind: &str) -> f64 {
    weir.metric(&format!("weir_shadow_differences_total{{kind=\"{kind}\"}}"))
}

#[test]
fn an_identical_candidate_shows_no_difference_over_50000_trades_and_is_promoted_with_every_window_exact() {
    let dir = tempfile::tempdir().unwrap();
    let target = target("shadow-same");
    let v1 = component("sliding_window_max");
    let v2 = same_code_new_digest(&v1, dir.path());
    deploy(&v1, &target, &[]);
    let input = trade_lines(50_000, weir_producer::Tickers::Synthetic(50));

    let mut weir = start(&target, &["--parallelism", "2"]);
    // Promoted once all 50,000 trades were compared with no difference, over at least a second.
    let publish = candidate(&v2, &target, &["--promote-after", "50000,1s"]);
    weir.wait_for_metric(INSTANCES, |n| n == 2.0, WITHIN);
    weir.write(&input);
    let promoted = outcome(publish);
    let said = ok(&promoted);
    assert!(said.contains("promoted") && said.contains("no differences in 50000 records"), "{said}");
    weir.wait_for_metric(SWAPS, |n| n >= 1.0, WITHIN);
    assert_eq!(weir.metric(COMPARED), 50_000.0, "{}", weir.metrics());
    for kind in ["only-live", "only-candidate", "different", "refused"] {
        assert_eq!(differences(&mut weir, kind), 0.0, "{kind}");
    }
    assert_eq!(weir.metric(INSTANCES), 0.0, "the shadow ends with the promotion");
    assert_eq!(weir.metric(STOPPED), 0.0);

    let (status, out, log) = weir.finish();
    assert!(status.success(), "{log}");
    assert!(
        per_ticker(out.iter().map(String::as_str)) == native_per_ticker(&input, &[]),
        "every window exactly once, as without a candidate"
    );
    let status = ok(&weir_s3(&["deploy", "--status", &target]));
    assert!(status.contains(&artifact_digest(&v2)), "v2 is live:\n{status}");
    let shadow = ok(&weir_s3(&["shadow", "status", &target]));
    assert!(shadow.contains("no candidate") && shadow.contains("promoted"), "{shadow}");
}

#[test]
fn a_candidate_with_another_slide_is_counted_with_samples_naming_ticker_and_values_and_rejected() {
    let target = target("shadow-slide");
    let v1 = component("sliding_window_max");
    deploy(&v1, &target, &[]);
    let input = trade_lines(60_000, weir_producer::Tickers::Synthetic(20));
    let half = half_way(&input);
    let diffs = tempfile::NamedTempFile::new().unwrap();

    let mut weir = start(&target, &["--parallelism", "1", "--shadow-diff", diffs.path().to_str().unwrap()]);
    weir.write(&input[..half]);
    weir.wait_until("windows of the first half", |out, _| !out.is_empty());
    let publish = candidate(&v1, &target, &["--set", "slide=5s", "--promote-after", "1000000,1h"]);
    weir.wait_for_metric(INSTANCES, |n| n == 1.0, WITHIN);
    weir.write(&input[half..]);
    let rejected = outcome(publish);
    let said = failed(&rejected);
    assert!(said.contains("rejected") && said.contains("differ"), "{said}");
    let printed = String::from_utf8_lossy(&rejected.stdout);
    assert!(printed.contains("first differences:"), "samples:\n{printed}");

    let (status, out, log) = weir.finish();
    assert!(status.success(), "{log}");
    assert!(
        per_ticker(out.iter().map(String::as_str)) == native_per_ticker(&input, &[]),
        "the live output is the live version's alone"
    );
    // The samples name the ticker and carry the windows: the candidate's slide every 5 s, the
    // live one's every 10 s, so the candidate writes windows the live version does not (or,
    // in one step, others in the same place).
    let samples = std::fs::read_to_string(diffs.path()).unwrap();
    let first: serde_json::Value = serde_json::from_str(samples.lines().next().unwrap()).unwrap();
    let ticker = first["key"].as_str().unwrap();
    assert!(["only-candidate", "different"].contains(&first["kind"].as_str().unwrap()), "{first}");
    let sides = if first["kind"] == "different" { &["live", "candidate"][..] } else { &["candidate"][..] };
    for side in sides {
        let record = first[side].as_str().unwrap_or_default();
        assert!(
            record.contains(ticker) && record.contains("WINDOW_START") && record.contains("MAX_PRICE"),
            "{first}"
        );
    }
    assert!(first["input"].as_str().unwrap().contains("records of shard stdin"), "{first}");
    let shadow = ok(&weir_s3(&["shadow", "status", &target]));
    assert!(shadow.contains("rejected on evidence"), "{shadow}");
}

#[test]
fn a_candidate_that_traps_leaves_the_live_output_alone_and_is_rejected_with_the_reason() {
    let target = target("shadow-trap");
    let fixture = component("test_fixture");
    deploy(&fixture, &target, &[]);
    let lines: String = (0..4_000).map(|i| format!("rec-{i}\n")).collect();
    let half = half_way(lines.as_bytes());

    let mut weir = start(&target, &["--parallelism", "1"]);
    weir.write(&lines.as_bytes()[..half]);
    weir.wait_until("the first half echoed", |out, _| out.len() >= 2_000);
    let publish =
        candidate(&fixture, &target, &["--set", "trap-on=rec-3000", "--promote-after", "1000000,1h"]);
    weir.wait_for_metric(INSTANCES, |n| n == 1.0, WITHIN);
    weir.write(&lines.as_bytes()[half..]);
    let rejected = outcome(publish);
    let said = failed(&rejected);
    assert!(
        said.contains("rejected") && said.contains("refused records the live version accepted"),
        "{said}"
    );
    assert_eq!(weir.metric(STOPPED), 1.0);
    assert_eq!(differences(&mut weir, "refused"), 1.0, "rec-3000 alone");

    let (status, out, log) = weir.finish();
    assert!(status.success(), "{log}");
    let echoed = out.iter().filter(|l| l.starts_with("rec-")).count();
    assert_eq!(echoed, 4_000, "every line echoed by the live version");
    assert!(util::process::dead_letters([log.as_str()]).is_empty(), "{log}");
}

#[test]
fn a_candidate_grouping_by_another_key_is_refused_at_deploy() {
    let target = target("shadow-grouping");
    deploy(&component("sliding_window_max"), &target, &[]);
    let fixture = component("test_fixture");
    let said = failed(&weir_s3(&["deploy", "--candidate", fixture.to_str().unwrap(), &target]));
    assert!(said.contains("groups records by") && said.contains("grouping key"), "{said}");
    let shadow = ok(&weir_s3(&["shadow", "status", &target]));
    assert!(shadow.contains("no candidate"), "{shadow}");
}

fn artifact_digest(path: &std::path::Path) -> String {
    weir::artifact::Digest::of(&std::fs::read(path).unwrap()).short().to_string()
}

#[test]
fn after_a_restart_the_candidate_starts_again_from_the_restored_live_state_and_finds_no_difference() {
    // The candidate is never checkpointed: a restarted weir starts it again from the live state
    // its checkpoint restored. Compared against stale state (or none), an identical candidate
    // would write other windows than the live version.
    use util::kinesis::{create_stream_at, kinesis_local_endpoint, produce_with};
    let endpoint = kinesis_local_endpoint();
    let trades = create_stream_at(&endpoint, "shadow-trades", 2);
    let results = create_stream_at(&endpoint, "shadow-results", 1);
    let dir = tempfile::tempdir().unwrap();
    let target = target("shadow-restart");
    let v1 = component("sliding_window_max");
    deploy(&v1, &target, &[]);
    let said = ok(&weir_s3(&[
        "deploy",
        "--candidate",
        same_code_new_digest(&v1, dir.path()).to_str().unwrap(),
        &target,
    ]));
    assert!(said.contains("published candidate"), "{said}");
    let checkpoints = dir.path().join("checkpoints");
    let run = || {
        let mut cmd = weir();
        cmd.env("AWS_ENDPOINT_URL_S3", s3_endpoint())
            .env("AWS_ENDPOINT_URL_KINESIS", &endpoint)
            .args(["run", "--source", &format!("kinesis://{trades}"), "--start-position", "trim-horizon"])
            .args([
                "--sink",
                &format!("kinesis://{results}"),
                "--operator",
                &target,
                "--watch-interval",
                "100ms",
            ])
            .args(["--checkpoint", checkpoints.to_str().unwrap(), "--checkpoint-interval", "1s"])
            .args(["--parallelism", "2"]);
        util::process::Weir::start(cmd)
    };
    let step = ["--step", "20ms"];
    for wave in 0..2 {
        produce_with(&endpoint, &trades, 3_000, 20, T0 + wave * 60_000, "ticker", &step);
        let mut weir = run();
        weir.wait_for_total("weir_records_in_total", |n| n == 3_000.0, WITHIN);
        weir.wait_for_metric(COMPARED, |n| n > 0.0, WITHIN);
        weir.wait_for_metric(INSTANCES, |n| n == 2.0, WITHIN);
        for kind in ["only-live", "only-candidate", "different", "refused"] {
            assert_eq!(differences(&mut weir, kind), 0.0, "run {wave}: {kind}\n{}", weir.log());
        }
        weir.signal("TERM");
        let (status, log) = weir.wait(WITHIN);
        assert!(status.success(), "{log}");
    }
    let shadow = ok(&weir_s3(&["shadow", "status", &target]));
    assert!(shadow.contains("evidence of 2 weirs"), "each run published its own:\n{shadow}");
    assert!(shadow.contains("0 only-live, 0 only-candidate, 0 different, 0 refused"), "{shadow}");
}

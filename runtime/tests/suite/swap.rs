//! Live swaps of an operator deployed to S3 (moto_server, started by `scripts/with-emulators`)
//! while records flow through `weir run` from standard input: the same logic under a new
//! digest, different logic, a version that traps (rolled back), and one that cannot take the
//! state (never switched to). Each run's output is checked record for record.

use crate::util;

use std::path::Path;
use std::time::Duration;

use util::process::{Weir, value};
use util::s3::{bucket, s3_endpoint};
use util::*;

/// A deployment target in a new bucket.
pub fn target(prefix: &str) -> String {
    format!("s3://{}/operator", bucket(&util::kinesis::runtime(), prefix))
}

pub fn deploy(file: &Path, target: &str, settings: &[&str]) {
    let extra: Vec<&str> = settings.iter().flat_map(|s| ["--set", s]).collect();
    let out = util::s3::deploy(file, target, &extra);
    assert!(out.status.success(), "deploy failed: {}", String::from_utf8_lossy(&out.stderr));
}

/// `component` with a custom section appended: the same code under another digest.
fn same_logic_new_digest(name: &str, dir: &Path) -> std::path::PathBuf {
    same_code_new_digest(&component(name), dir)
}

/// The component at `path` with a custom section appended: the same code under another digest.
pub fn same_code_new_digest(path: &Path, dir: &Path) -> std::path::PathBuf {
    let name = path.file_stem().and_then(|s| s.to_str()).unwrap_or("component");
    let mut bytes = std::fs::read(path).unwrap();
    let (section_name, payload) = (b"weir-test", b"v2");
    let body_len = 1 + section_name.len() + payload.len();
    bytes.extend([0u8, body_len as u8, section_name.len() as u8]);
    bytes.extend(section_name);
    bytes.extend(payload);
    let path = dir.join(format!("{name}-v2.wasm"));
    std::fs::write(&path, bytes).unwrap();
    path
}

/// `weir run` from standard input to standard output with the operator deployed at `operator`,
/// looking for new versions every 100 ms.
pub fn start(operator: &str, extra: &[&str]) -> Weir {
    let mut cmd = weir();
    cmd.env("AWS_ENDPOINT_URL_S3", s3_endpoint())
        .args(["run", "--source", "-", "--sink", "-", "--operator", operator, "--watch-interval", "100ms"])
        .args(["--batch-size", "100"])
        .args(extra);
    Weir::start(cmd)
}

pub const SWAPS: &str = "weir_operator_swaps_total";
pub const ROLLBACKS: &str = "weir_operator_rollbacks_total";
/// Versions refused because they could not take the running one's state.
const REFUSED_STATE: &str = "weir_operator_versions_refused_total{reason=\"state\"}";
pub const WITHIN: Duration = Duration::from_secs(30);

/// The end of the line at the middle of `input`.
pub fn half_way(input: &[u8]) -> usize {
    input[..input.len() / 2].iter().rposition(|&b| b == b'\n').unwrap() + 1
}

#[test]
fn a_new_version_takes_over_mid_stream_with_every_window_intact() {
    let dir = tempfile::tempdir().unwrap();
    let target = target("swap");
    let v1 = component("sliding_window_max");
    let v2 = same_logic_new_digest("sliding_window_max", dir.path());
    deploy(&v1, &target, &[]);
    let input = trade_lines(60_000, weir_producer::Tickers::Synthetic(50));
    let half = half_way(&input);

    let mut weir = start(&target, &["--parallelism", "3"]);
    weir.write(&input[..half]);
    weir.wait_until("windows out of the first half", |out, _| !out.is_empty());
    deploy(&v2, &target, &[]);
    let metrics = weir.wait_for_metric(SWAPS, |n| n >= 1.0, WITHIN);
    assert_eq!(
        value(&metrics, "weir_swap_pause_seconds_count"),
        Some(3.0),
        "each of the three instances paused once:\n{metrics}"
    );
    // The replaced instances' slots are free again and keep their memory for the next swap.
    let slots = weir.wait_for_metric("weir_instance_slots_in_use", |n| n == 3.0, WITHIN);
    assert_eq!(value(&slots, "weir_instance_slots"), Some(16.0), "four per instance and four more");
    assert!(value(&slots, "weir_instance_slots_resident_bytes").is_some_and(|b| b > 0.0), "{slots}");
    weir.write(&input[half..]);
    assert_eq!(weir.metric(SWAPS), 1.0);
    assert_eq!(weir.metric(ROLLBACKS), 0.0);
    let (status, out, log) = weir.finish();
    assert!(status.success(), "{log}");
    assert!(
        per_ticker(out.iter().map(String::as_str)) == native_per_ticker(&input, &[]),
        "the same windows as a run without a swap"
    );
}

#[test]
fn different_logic_takes_over_at_one_batch_boundary_with_nothing_lost() {
    let dir = tempfile::tempdir().unwrap();
    let target = target("logic");
    let fixture = component("test_fixture");
    deploy(&fixture, &target, &[]);
    let line = |i: usize| if i.is_multiple_of(7) { format!("rec-{i}-REFUSE") } else { format!("rec-{i}") };
    let all: Vec<String> = (0..4_000).map(line).collect();
    let text =
        |range: std::ops::Range<usize>| all[range].iter().map(|l| format!("{l}\n")).collect::<String>();
    let dead = dir.path().join("dead.jsonl");

    let mut weir = start(&target, &["--dead-letter", dead.to_str().unwrap()]);
    weir.write(text(0..2_000).as_bytes());
    weir.wait_until("the first half echoed", |out, _| out.len() >= 2_000);
    // The same component with another setting: from the switch on, refuse lines with REFUSE.
    deploy(&fixture, &target, &["reject-on=REFUSE"]);
    weir.wait_for_metric(SWAPS, |n| n >= 1.0, WITHIN);
    weir.write(text(2_000..4_000).as_bytes());
    let (status, out, log) = weir.finish();
    assert!(status.success(), "{log}");

    let refused: Vec<String> = std::fs::read_to_string(&dead)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["data"].as_str().unwrap().to_string())
        .collect();
    let echoed: Vec<&String> = out.iter().filter(|l| !l.starts_with("count=")).collect();
    // One boundary: every REFUSE line before the first refused one was echoed, every one after
    // it refused; each line is in exactly one of the two, in order.
    let first_refused = all.iter().position(|l| refused.first() == Some(l)).expect("some line refused");
    assert!(first_refused >= 2_000, "refused before the switch: {}", all[first_refused]);
    let expected_echo: Vec<&String> = all
        .iter()
        .enumerate()
        .filter(|(i, l)| *i < first_refused || !l.ends_with("REFUSE"))
        .map(|(_, l)| l)
        .collect();
    let expected_refused: Vec<String> =
        all[first_refused..].iter().filter(|l| l.ends_with("REFUSE")).cloned().collect();
    assert_eq!(echoed, expected_echo);
    assert_eq!(refused, expected_refused);
    assert_eq!(out.last().map(String::as_str), Some(format!("count={}", expected_echo.len()).as_str()));
}

#[test]
fn a_version_that_traps_is_rolled_back_with_nothing_lost() {
    let dir = tempfile::tempdir().unwrap();
    let target = target("rollback");
    let fixture = component("test_fixture");
    deploy(&fixture, &target, &[]);
    let all: Vec<String> = (0..3_000).map(|i| format!("rec-{i}")).collect();
    let text =
        |range: std::ops::Range<usize>| all[range].iter().map(|l| format!("{l}\n")).collect::<String>();
    let dead = dir.path().join("dead.jsonl");

    let mut weir = start(&target, &["--dead-letter", dead.to_str().unwrap(), "--rollback-after-traps", "0"]);
    weir.write(text(0..1_000).as_bytes());
    weir.wait_until("the first third echoed", |out, _| out.len() >= 1_000);
    // The same component told to trap in every call: switched to, then rolled back.
    deploy(&fixture, &target, &["trap-first=1000000"]);
    weir.wait_for_metric(SWAPS, |n| n >= 1.0, WITHIN);
    weir.write(text(1_000..3_000).as_bytes());
    let metrics = weir.wait_for_metric(ROLLBACKS, |n| n >= 1.0, WITHIN);
    assert_eq!(value(&metrics, SWAPS), Some(2.0), "the switch and the switch back:\n{metrics}");
    assert_eq!(value(&metrics, ROLLBACKS), Some(1.0), "{metrics}");
    let (status, out, log) = weir.finish();
    assert!(status.success(), "{log}");

    let mut expected = all.clone();
    expected.push("count=3000".into());
    assert_eq!(out, expected, "every record once, in order, and the count carried across both switches");
    assert_eq!(std::fs::read_to_string(&dead).unwrap_or_default(), "", "no dead letters");
}

#[test]
fn a_version_that_cannot_take_the_state_is_never_switched_to() {
    let target = target("refused");
    let v1 = component("sliding_window_max");
    deploy(&v1, &target, &[]);
    let input = trade_lines(40_000, weir_producer::Tickers::Synthetic(20));
    let half = half_way(&input);

    let mut weir = start(&target, &[]);
    weir.write(&input[..half]);
    weir.wait_until("windows out of the first half", |out, _| !out.is_empty());
    // price-alert keeps one price per key in its own state format: it cannot restore
    // sliding-window-max's state.
    deploy(&component("price_alert"), &target, &[]);
    weir.wait_for_metric(REFUSED_STATE, |n| n >= 1.0, WITHIN);
    weir.write(&input[half..]);
    assert_eq!(weir.metric(SWAPS), 0.0, "never switched to");
    let (status, out, log) = weir.finish();
    assert!(status.success(), "{log}");
    assert!(per_ticker(out.iter().map(String::as_str)) == native_per_ticker(&input, &[]));
}

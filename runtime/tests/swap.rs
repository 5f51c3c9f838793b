//! Live swaps of an operator deployed to S3 (moto_server, started by `scripts/with-emulators`)
//! while records flow through `weir run` from standard input: the same logic under a new
//! digest, different logic, a version that traps (rolled back), and one that cannot take the
//! state (never switched to). Each run's output is checked record for record.

mod util;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use util::s3::{bucket, s3_endpoint};
use util::*;

/// A deployment target in a new bucket.
fn target(prefix: &str) -> String {
    format!("s3://{}/operator", bucket(&util::kinesis::runtime(), prefix))
}

fn deploy(file: &Path, target: &str, settings: &[&str]) {
    let extra: Vec<&str> = settings.iter().flat_map(|s| ["--set", s]).collect();
    let out = util::s3::deploy(file, target, &extra);
    assert!(out.status.success(), "deploy failed: {}", String::from_utf8_lossy(&out.stderr));
}

/// `component` with a custom section appended: the same code under another digest.
fn same_logic_new_digest(name: &str, dir: &Path) -> std::path::PathBuf {
    let mut bytes = std::fs::read(component(name)).unwrap();
    let (section_name, payload) = (b"weir-test", b"v2");
    let body_len = 1 + section_name.len() + payload.len();
    bytes.extend([0u8, body_len as u8, section_name.len() as u8]);
    bytes.extend(section_name);
    bytes.extend(payload);
    let path = dir.join(format!("{name}-v2.wasm"));
    std::fs::write(&path, bytes).unwrap();
    path
}

/// `weir run` reading standard input, its output and log collected as they come.
struct Live {
    child: Child,
    stdin: Option<ChildStdin>,
    out: Arc<Mutex<Vec<String>>>,
    log: Arc<Mutex<String>>,
    readers: Vec<std::thread::JoinHandle<()>>,
}

impl Live {
    fn start(operator: &str, extra: &[&str]) -> Live {
        let mut child = weir()
            .env("AWS_ENDPOINT_URL_S3", s3_endpoint())
            .env("WEIR_LOG", "weir=info")
            .args([
                "run",
                "--source",
                "-",
                "--sink",
                "-",
                "--operator",
                operator,
                "--watch-interval",
                "100ms",
            ])
            .args(["--batch-size", "100"])
            .args(extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (out, log) = (Arc::new(Mutex::new(Vec::new())), Arc::new(Mutex::new(String::new())));
        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        let o = out.clone();
        let l = log.clone();
        let readers = vec![
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                    o.lock().unwrap().push(line);
                }
            }),
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    let mut l = l.lock().unwrap();
                    l.push_str(&line);
                    l.push('\n');
                }
            }),
        ];
        Live { stdin: child.stdin.take(), child, out, log, readers }
    }

    fn write(&mut self, lines: &[u8]) {
        let stdin = self.stdin.as_mut().unwrap();
        stdin.write_all(lines).unwrap();
        stdin.flush().unwrap();
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Wait until `ready` holds for (output lines, log), or fail after 30 s.
    fn wait_until(&self, what: &str, ready: impl Fn(&[String], &str) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !ready(&self.out.lock().unwrap(), &self.log()) {
            assert!(Instant::now() < deadline, "never: {what}; log:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Close standard input and wait for the end: status, output lines, log.
    fn finish(mut self) -> (ExitStatus, Vec<String>, String) {
        drop(self.stdin.take());
        let status = self.child.wait().unwrap();
        for reader in self.readers.drain(..) {
            reader.join().unwrap();
        }
        let out = self.out.lock().unwrap().clone();
        (status, out, self.log())
    }
}

/// The end of the line at the middle of `input`.
fn half_way(input: &[u8]) -> usize {
    input[..input.len() / 2].iter().rposition(|&b| b == b'\n').unwrap() + 1
}

fn native(input: &[u8]) -> Vec<String> {
    native_results(input, &[]).into_iter().map(|(_, data)| data).collect()
}

fn short(file: &Path) -> String {
    weir::artifact::Digest::of(&std::fs::read(file).unwrap()).short()
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

    let mut weir = Live::start(&target, &[]);
    weir.write(&input[..half]);
    weir.wait_until("windows out of the first half", |out, _| !out.is_empty());
    deploy(&v2, &target, &[]);
    let switched = format!("switched operator {} -> {}", short(&v1), short(&v2));
    weir.wait_until("the switch", |_, log| log.contains(&switched));
    weir.write(&input[half..]);
    let (status, out, log) = weir.finish();
    assert!(status.success(), "{log}");
    assert!(log.lines().any(|l| l.contains(&switched) && l.contains("ms per shard")), "{log}");
    assert_eq!(out, native(&input), "the same windows as a run without a swap");
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

    let mut weir = Live::start(&target, &["--dead-letter", dead.to_str().unwrap()]);
    weir.write(text(0..2_000).as_bytes());
    weir.wait_until("the first half echoed", |out, _| out.len() >= 2_000);
    // The same component with another setting: from the switch on, refuse lines with REFUSE.
    deploy(&fixture, &target, &["reject-on=REFUSE"]);
    weir.wait_until("the switch", |_, log| log.contains("switched operator"));
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

    let mut weir =
        Live::start(&target, &["--dead-letter", dead.to_str().unwrap(), "--rollback-after-traps", "0"]);
    weir.write(text(0..1_000).as_bytes());
    weir.wait_until("the first third echoed", |out, _| out.len() >= 1_000);
    // The same component told to trap in every call: switched to, then rolled back.
    deploy(&fixture, &target, &["trap-first=1000000"]);
    weir.wait_until("the switch", |_, log| log.contains("switched operator"));
    weir.write(text(1_000..3_000).as_bytes());
    weir.wait_until("the rollback", |_, log| log.contains("rolled back operator"));
    let (status, out, log) = weir.finish();
    assert!(status.success(), "{log}");
    assert!(log.contains("after 1 failed batches"), "{log}");

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

    let mut weir = Live::start(&target, &[]);
    weir.write(&input[..half]);
    weir.wait_until("windows out of the first half", |out, _| !out.is_empty());
    // price-alert keeps 8 bytes per key: it cannot restore sliding-window-max's state.
    deploy(&component("price_alert"), &target, &[]);
    weir.wait_until("the refusal", |_, log| log.contains("not switched to"));
    weir.write(&input[half..]);
    let (status, out, log) = weir.finish();
    assert!(status.success(), "{log}");
    assert!(!log.contains("switched operator"), "{log}");
    assert_eq!(out, native(&input));
}

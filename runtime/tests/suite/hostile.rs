//! Hostile operators through `weir run` at parallelism 2: one record makes the fixture loop
//! forever, hoard memory, panic, or flood its output. The host survives, the poison record
//! alone goes to the dead-letter destination with the limit it ran into, and every other
//! record of both instances comes out. With `--on-operator-error halt` weir stops instead, with
//! an error naming the record, and exits 1. An operator that refuses to restore a checkpoint's
//! state is tested in `recovery.rs`; at the host level in `host.rs`.

use crate::util;

use std::process::Output;

use util::*;

const RECORDS: usize = 200;
const POISON: usize = 137;

/// Records spread over 20 keys (the fixture groups them by the field `K`), one poisoned.
pub fn input() -> String {
    (0..RECORDS)
        .map(|i| {
            let poison = if i == POISON { " POISON" } else { "" };
            format!("{{\"K\": \"k{}\", \"n\": \"{i}{poison}\"}}\n", i % 20)
        })
        .collect()
}

/// `weir run` of the fixture told `setting=POISON` over [`input`]: its output, exit status,
/// stdout lines and dead letters.
fn run(setting: &str, extra: &[&str]) -> (Output, Vec<String>, Vec<serde_json::Value>) {
    let mut args = vec!["--set", "key-field=K", "--max-memory-mib", "32"];
    args.extend(extra);
    run_fixture(&component("test_fixture"), setting, &args)
}

/// `weir run` of the fixture `operator` told `setting=POISON` over [`input`], with limits of
/// 300 ms per call and 1 MiB of output, and `extra` arguments.
pub fn run_fixture(
    operator: &std::path::Path,
    setting: &str,
    extra: &[&str],
) -> (Output, Vec<String>, Vec<serde_json::Value>) {
    let dir = tempfile::tempdir().unwrap();
    let (input_path, out, dead) =
        (dir.path().join("in.jsonl"), dir.path().join("out"), dir.path().join("dead"));
    std::fs::write(&input_path, input()).unwrap();
    let output = weir()
        .args(["run", "--source", input_path.to_str().unwrap(), "--sink", out.to_str().unwrap()])
        .args(["--operator", operator.to_str().unwrap(), "--parallelism", "2"])
        .args(["--set", &format!("{setting}=POISON")])
        .args(["--dead-letter", dead.to_str().unwrap(), "--batch-size", "16"])
        .args(["--max-call-time", "300ms", "--max-output-mib", "1"])
        .args(extra)
        .output()
        .unwrap();
    let lines = std::fs::read_to_string(&out).unwrap_or_default().lines().map(str::to_string).collect();
    let letters = std::fs::read_to_string(&dead)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (output, lines, letters)
}

fn only_the_poison_record_is_set_aside(setting: &str, reason: &str) {
    let (output, lines, letters) = run(setting, &[]);
    only_the_poison_record_came_out_aside(&output, &lines, &letters, reason);
}

/// Every record but the poisoned one came out, and it alone was dead-lettered with `reason`.
pub fn only_the_poison_record_came_out_aside(
    output: &Output,
    lines: &[String],
    letters: &[serde_json::Value],
    reason: &str,
) {
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let echoed: Vec<&String> = lines.iter().filter(|l| l.starts_with('{')).collect();
    let input = input();
    let mut want: Vec<&str> = input.lines().filter(|l| !l.contains("POISON")).collect();
    want.sort();
    let mut got: Vec<&str> = echoed.iter().map(|s| s.as_str()).collect();
    got.sort();
    assert_eq!(got, want, "every other record of both instances comes out once");
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert!(letters[0]["data"].as_str().unwrap().contains("POISON"), "{}", letters[0]);
    assert!(letters[0]["reason"].as_str().unwrap().contains(reason), "{reason:?} not in {}", letters[0]);
}

#[test]
fn an_infinite_loop_is_interrupted_and_only_its_record_is_dead_lettered() {
    only_the_poison_record_is_set_aside("spin-on", "ran longer than its CPU limit of 300ms");
}

#[test]
fn a_memory_bomb_is_stopped_and_only_its_record_is_dead_lettered() {
    only_the_poison_record_is_set_aside("alloc-on", "exceeded its memory limit of 32 MiB");
}

#[test]
fn a_panic_on_one_record_dead_letters_that_record_only() {
    only_the_poison_record_is_set_aside("trap-on", "told to trap on this record");
}

#[test]
fn an_enormous_output_is_refused_by_the_output_limit_and_only_its_record_is_dead_lettered() {
    only_the_poison_record_is_set_aside("flood-on", "more than its output limit of 1 MiB per call");
}

#[test]
fn with_on_operator_error_halt_weir_stops_naming_the_record_and_exits_1() {
    let (output, lines, letters) = run("trap-on", &["--on-operator-error", "halt"]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let error = stderr.lines().find(|l| l.starts_with("error:")).expect("an error line");
    assert!(error.contains("told to trap on this record"), "{error}");
    assert!(error.contains("--on-operator-error halt stops here"), "{error}");
    assert!(letters.is_empty(), "nothing set aside: {letters:?}");
    assert!(lines.iter().all(|l| !l.contains("POISON")), "{lines:?}");
}

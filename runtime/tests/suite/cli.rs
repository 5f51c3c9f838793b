//! The `weir` binary end to end: files in and out, stdin, refusals before reading, the default
//! run.

use crate::util;

use std::io::{BufRead, BufReader, Write};
use std::process::Stdio;
use std::time::Duration;

use util::*;
use weir_producer::Tickers;

fn generated(n: usize) -> Vec<u8> {
    trade_lines(n, Tickers::Default)
}

#[test]
fn a_file_runs_to_its_end_and_every_window_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let input = generated(50_000);
    let mut with_bad = input.clone();
    with_bad.extend_from_slice(b"this is not a trade\n");
    std::fs::write(dir.path().join("trades.jsonl"), &with_bad).unwrap();
    let status = weir()
        .current_dir(dir.path())
        .args([
            "run",
            "--source",
            "trades.jsonl",
            "--sink",
            "out.jsonl",
            "--dead-letter",
            "dead.jsonl",
            "--set",
            "slide=5s",
        ])
        .status()
        .unwrap();
    assert!(status.success());
    let out = std::fs::read_to_string(dir.path().join("out.jsonl")).unwrap();
    assert_eq!(per_ticker(out.lines()), native_per_ticker(&input, &[("slide", "5s")]));
    let dead = std::fs::read_to_string(dir.path().join("dead.jsonl")).unwrap();
    let dead: serde_json::Value = serde_json::from_str(dead.trim()).unwrap();
    assert_eq!(dead["data"], "this is not a trade");
    assert_eq!(dead["shard_id"], "trades.jsonl");
    assert!(dead["reason"].as_str().unwrap().contains("expected"), "{dead}");
}

#[test]
fn stdin_to_stdout_ends_at_eof_with_exit_zero() {
    let input = generated(5_000);
    let mut child =
        weir().args(["run", "--source", "-"]).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let feed = input.clone();
    let writer = std::thread::spawn(move || stdin.write_all(&feed));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(out.status.success());
    assert_eq!(per_ticker(String::from_utf8(out.stdout).unwrap().lines()), native_per_ticker(&input, &[]));
}

/// `--idle-after` (and `WEIR_IDLE_AFTER`) no longer does anything: scripts that pass it keep
/// working, with the same results, and are told once that it can go.
#[test]
fn the_retired_idle_after_is_accepted_with_a_warning_and_changes_nothing() {
    let input = generated(2_000);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("trades.jsonl");
    std::fs::write(&path, &input).unwrap();
    let expected = native_per_ticker(&input, &[]);
    for (flag, env) in [(Some("5s"), None), (None, Some("5s"))] {
        let mut cmd = weir();
        cmd.args(["run", "--source", path.to_str().unwrap()]);
        if let Some(value) = flag {
            cmd.args(["--idle-after", value]);
        }
        if let Some(value) = env {
            cmd.env("WEIR_IDLE_AFTER", value);
        }
        let out = cmd.output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        assert_eq!(per_ticker(String::from_utf8(out.stdout).unwrap().lines()), expected);
        assert_eq!(stderr.matches("--idle-after").count(), 1, "{stderr}");
    }
}

#[test]
fn bad_operators_and_settings_are_refused_before_anything_is_read() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("junk.wasm"), b"junk").unwrap();
    for (args, expected) in [
        (vec!["--operator", "junk.wasm"], "operator junk.wasm is not a WebAssembly component"),
        (vec!["--operator", "missing.wasm"], "cannot read operator missing.wasm"),
        (vec!["--set", "window=forever"], "setting window=\"forever\" is invalid"),
        (vec!["--set", "colour=blue"], "unknown setting \"colour\""),
        (vec!["--source", "nope.jsonl"], "cannot read nope.jsonl"),
    ] {
        // stdin would block forever if weir read it: refusals must come first.
        let out = weir()
            .current_dir(dir.path())
            .arg("run")
            .args(&args)
            .args(["--sink", "out"])
            .stdin(Stdio::piped())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
}

#[test]
fn weir_run_with_no_arguments_shows_window_results_within_seconds() {
    let mut child = weir().arg("run").stdout(Stdio::piped()).spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut first = String::new();
        let _ = BufReader::new(stdout).read_line(&mut first);
        let _ = tx.send(first);
    });
    // Generous: this is a liveness check (results at all, soon), not a timing test.
    let first = rx.recv_timeout(Duration::from_secs(60));
    let _ = child.kill();
    let _ = child.wait();
    let first = first.expect("a result line within a minute");
    let v: serde_json::Value = serde_json::from_str(&first).unwrap();
    assert!(["AMZN", "GOOG", "AZRE", "ORCL", "BABA"].contains(&v["TICKER"].as_str().unwrap()), "{first}");
    assert!(v["MAX_PRICE"].as_f64().is_some() && v["TRADES"].as_u64().is_some(), "{first}");
}

#[test]
fn check_refuses_an_operator_of_the_0_1_contract_with_how_to_rebuild() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("v1.wasm"), component_exporting("0.1.0")).unwrap();
    let out = weir().current_dir(dir.path()).args(["check", "v1.wasm"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("v1.wasm was built for the contract weir:operator@0.1.0"), "{stderr}");
    assert!(stderr.contains("rebuild it against the weir-operator SDK of this weir"), "{stderr}");
}

#[test]
fn check_describes_an_operator() {
    let out = weir().args(["check"]).arg(component("price_alert")).output().unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("operator price-alert 0.2.0, contract weir:operator@0.2.0, sha256 "), "{stdout}");
    assert!(stdout.contains("groups records by JSON field \"TICKER\""), "{stdout}");
    assert!(stdout.contains("  Rust (with C11), made with ") && stdout.contains("rustc 1."), "{stdout}");
    assert!(stdout.contains(" MB, loaded in "), "{stdout}");
}

#[test]
fn a_record_the_operator_traps_on_is_dead_lettered_and_the_run_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("in.txt"), "a\nb\nboom\nc\n").unwrap();
    let out = weir()
        .current_dir(dir.path())
        .args(["run", "--source", "in.txt", "--sink", "out.txt", "--dead-letter", "dead.jsonl", "--operator"])
        .arg(component("test_fixture"))
        .args(["--set", "trap-on=boom"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let written = std::fs::read_to_string(dir.path().join("out.txt")).unwrap();
    assert_eq!(written, "a\nb\nc\ncount=3\n");
    let dead: serde_json::Value =
        serde_json::from_str(std::fs::read_to_string(dir.path().join("dead.jsonl")).unwrap().trim()).unwrap();
    assert_eq!(dead["data"], "boom");
    assert!(dead["reason"].as_str().unwrap().contains("told to trap on this record"), "{dead}");
}

#[test]
fn any_parallelism_gives_the_native_windows_of_every_ticker() {
    let dir = tempfile::tempdir().unwrap();
    let input = trade_lines(30_000, Tickers::Synthetic(40));
    std::fs::write(dir.path().join("trades.jsonl"), &input).unwrap();
    let expected = native_per_ticker(&input, &[]);
    for parallelism in ["1", "3"] {
        let out = weir()
            .current_dir(dir.path())
            .args(["run", "--source", "trades.jsonl", "--parallelism", parallelism, "--batch-size", "500"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let got = per_ticker(String::from_utf8(out.stdout).unwrap().lines());
        assert_eq!(got.len(), 40, "parallelism {parallelism}");
        assert!(got == expected, "parallelism {parallelism}: results differ from the native operator's");
    }
}

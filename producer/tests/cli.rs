//! The `weir-producer` binary: JSON lines on stdout, as many as asked, the same for a seed.

use std::process::Command;

fn produce(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_weir-producer")).args(args).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn count_lines_of_reference_trades_reproducible_by_seed() {
    let args = ["--count", "2500", "--rate", "0", "--start-time", "2026-11-25T10:00:00Z", "--seed", "9"];
    let text = produce(&args);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2500);
    for line in &lines {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert!(["AMZN", "GOOG", "AZRE", "ORCL", "BABA"].contains(&v["TICKER"].as_str().unwrap()));
        assert!(v["PRICE"].as_f64().unwrap() > 0.0);
    }
    assert!(lines[0].starts_with(r#"{"EVENT_TIME": "2026-11-25T10:00:00.000", "TICKER": "#), "{}", lines[0]);
    assert!(lines[2499].starts_with(r#"{"EVENT_TIME": "2026-11-25T10:00:02.499", "#), "{}", lines[2499]);
    assert_eq!(produce(&args), text);
}

#[test]
fn synthetic_tickers_and_a_step() {
    let text = produce(&["--count", "300", "--rate", "0", "--tickers", "3", "--step", "1s"]);
    let tickers: std::collections::BTreeSet<String> = text
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["TICKER"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(tickers.into_iter().collect::<Vec<_>>(), ["T0000", "T0001", "T0002"]);
}

#[test]
fn bad_arguments_are_explained() {
    let out = Command::new(env!("CARGO_BIN_EXE_weir-producer")).args(["--tickers", "A,,B"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("ticker names must be 1 to 256 characters"));
}

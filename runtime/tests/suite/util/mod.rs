//! Helpers shared by the runtime's integration tests: the operator components the build made,
//! an engine with a private cache, trades, and a command builder for the `weir` binary.

#![allow(dead_code)]

pub mod kinesis;
pub mod leases;
pub mod process;
pub mod proxy;
pub mod s3;

use std::path::PathBuf;
use std::time::Duration;

use weir::artifact::{Artifact, BUILT_OPERATORS_DIR};
use weir::operator::CompiledCache;
use weir::operator::{InstancePool, Limits, LoadError, LoadedOperator, OperatorEngine};

/// A component built by `build.rs`: `sliding_window_max`, `price_alert` or `test_fixture`.
pub fn component(name: &str) -> PathBuf {
    PathBuf::from(BUILT_OPERATORS_DIR).join(format!("{name}.wasm"))
}

pub fn artifact(name: &str) -> Artifact {
    Artifact::from_file(&component(name)).expect("the build made this component")
}

/// The short limits the host tests run under.
pub fn short_limits() -> Limits {
    Limits {
        max_memory_bytes: 64 << 20,
        max_call_time: Some(Duration::from_millis(500)),
        max_output_bytes: 1 << 20,
    }
}

/// An engine with short limits and no cache, allocating instances on demand.
pub fn engine() -> OperatorEngine {
    engine_with(short_limits(), None)
}

/// The same with `slots` instance slots reserved, as `weir run` makes it.
pub fn pooled_engine(slots: usize) -> OperatorEngine {
    let engine =
        OperatorEngine::pooled(short_limits(), None, InstancePool::with_slots(slots)).expect("engine");
    assert_eq!(engine.pool().map(|p| p.slots()), Some(slots as u32), "the slots were reserved");
    engine
}

pub fn engine_with(limits: Limits, cache: Option<CompiledCache>) -> OperatorEngine {
    OperatorEngine::new(limits, cache).expect("engine")
}

pub fn load(name: &str, settings: &[(&str, &str)]) -> Result<LoadedOperator, LoadError> {
    let settings: Vec<(String, String)> =
        settings.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    engine().load(artifact(name), &settings)
}

/// 2026-11-25T10:00:00Z in ms.
pub const T0: i64 = 1_795_600_800_000;

pub fn trade(ticker: &str, time_ms: i64, price: f64) -> Vec<u8> {
    weir_producer_line(ticker, time_ms, price)
}

fn weir_producer_line(ticker: &str, time_ms: i64, price: f64) -> Vec<u8> {
    format!(r#"{{"EVENT_TIME": {time_ms}, "TICKER": "{ticker}", "PRICE": {price}}}"#).into_bytes()
}

/// `n` generated trades for `tickers`, one JSON object per line, starting at [`T0`].
pub fn trade_lines(n: usize, tickers: weir_producer::Tickers) -> Vec<u8> {
    let config = weir_producer::GeneratorConfig { tickers, start_time_ms: T0, ..Default::default() };
    let mut g = weir_producer::TradeGenerator::new(&config).unwrap();
    let mut buf = Vec::new();
    for _ in 0..n {
        g.write_next(&mut buf);
        buf.push(b'\n');
    }
    buf
}

/// What the native sliding-window-max makes of JSON lines read to their end: (key, data).
pub fn native_results(input: &[u8], settings: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut h = weir_operator::Harness::<sliding_window_max::SlidingWindowMax>::new(settings).unwrap();
    for line in input.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        h.push("", line);
    }
    h.end_input().unwrap();
    h.output_strings()
}

/// The `weir` binary of this build.
pub fn weir() -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_weir"));
    cmd.env("WEIR_LOG", "warn").env("WEIR_CACHE_DIR", concat!(env!("CARGO_TARGET_TMPDIR"), "/weir-cache"));
    cmd
}

/// `cmd` with no AWS credentials from anywhere: none in the environment, empty config and
/// credentials files (not missing ones, which the SDK warns about), no instance metadata.
pub fn without_aws_credentials(cmd: &mut std::process::Command) -> &mut std::process::Command {
    let empty = concat!(env!("CARGO_TARGET_TMPDIR"), "/weir-empty-aws-file");
    std::fs::write(empty, "").expect("an empty file in the target folder");
    cmd.env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_PROFILE")
        .env("AWS_CONFIG_FILE", empty)
        .env("AWS_SHARED_CREDENTIALS_FILE", empty)
        .env("AWS_EC2_METADATA_DISABLED", "true")
}

/// Result lines per ticker, in order: the order weir keeps (per grouping key), whatever the
/// parallelism interleaves between keys.
pub fn per_ticker<'a>(
    lines: impl IntoIterator<Item = &'a str>,
) -> std::collections::BTreeMap<String, Vec<String>> {
    let mut per: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for line in lines {
        let v: serde_json::Value = serde_json::from_str(line).expect("a JSON result");
        let ticker = v["TICKER"].as_str().expect("a TICKER").to_string();
        per.entry(ticker).or_default().push(line.to_string());
    }
    per
}

/// What the native operator makes of `input`, per ticker, in order.
pub fn native_per_ticker(
    input: &[u8],
    settings: &[(&str, &str)],
) -> std::collections::BTreeMap<String, Vec<String>> {
    let results = native_results(input, settings);
    per_ticker(results.iter().map(|(_, data)| data.as_str()))
}

/// A minimal component exporting `weir:operator/operator@{version}` (a `describe` only): enough
/// for the contract check, which refuses it before anything else.
pub fn component_exporting(version: &str) -> Vec<u8> {
    let wat = format!(
        r#"(component
        (core module $m (func (export "f")))
        (core instance $i (instantiate $m))
        (func $f (canon lift (core func $i "f")))
        (instance $api (export "describe" (func $f)))
        (export "weir:operator/operator@{version}" (instance $api)))"#
    );
    wat::parse_str(wat).expect("valid component text")
}

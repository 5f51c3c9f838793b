//! The same input through the native harness and through the wasm component in the host gives
//! byte-identical output and the same dead letters.

use crate::util;

use sliding_window_max::SlidingWindowMax;
use util::*;
use weir::operator::Runner;
use weir_operator::{Harness, OwnedBatch};
use weir_producer::{GeneratorConfig, Tickers, TradeGenerator};

fn trades(n: usize, tickers: Tickers) -> Vec<(String, Vec<u8>)> {
    let config = GeneratorConfig { tickers, seed: 7, start_time_ms: T0, step_ms: 3 };
    let mut g = TradeGenerator::new(&config).unwrap();
    (0..n)
        .map(|i| {
            let mut line = Vec::new();
            let key = g.write_next(&mut line).to_string();
            // Some late trades, some garbage: dead letters must match too.
            if i % 997 == 0 {
                line = trade(&key, T0 - 600_000, 1.0);
            } else if i % 1_501 == 0 {
                line = b"{\"TICKER\": 12}".to_vec();
            }
            (key, line)
        })
        .collect()
}

fn check(settings: &[(&str, &str)], input: &[(String, Vec<u8>)], batch_size: usize) {
    let mut native = Harness::<SlidingWindowMax>::new(settings).unwrap().with_batch_size(batch_size);
    let loaded = load("sliding_window_max", settings).unwrap();
    let mut wasm = Runner::new(loaded, "instance 0", Default::default()).unwrap().with_snapshot_every(5);
    let (mut wasm_out, mut wasm_dead) = (Vec::new(), Vec::new());
    // The host's watermark for one shard: the latest event time reported.
    let mut watermark = weir_operator::NO_WATERMARK;
    for (i, chunk) in input.chunks(batch_size).enumerate() {
        let now = T0 + i as i64 * 100;
        native.set_time(now);
        let mut batch = OwnedBatch::new("shard-0");
        batch.now_ms = now;
        batch.watermark_ms = watermark;
        for (key, data) in chunk {
            native.push(key, data);
            batch.push(key, data, now);
        }
        native.flush().unwrap();
        let processed = wasm.process(&mut batch).unwrap();
        wasm_out.extend(processed.output.iter().map(|(k, d)| (k.to_string(), d.to_vec())));
        wasm_dead.extend(processed.dead_letters);
        watermark = watermark.max(processed.output.event_time_ms.unwrap_or(watermark));
        let tick_now = now + 50;
        native.advance_time(tick_now).unwrap();
        let ticked = wasm.tick(tick_now, watermark).unwrap();
        wasm_out.extend(ticked.iter().map(|(k, d)| (k.to_string(), d.to_vec())));
    }
    native.end_input().unwrap();
    let finish = wasm.finish(T0 + 1_000_000).unwrap();
    wasm_out.extend(finish.iter().map(|(k, d)| (k.to_string(), d.to_vec())));
    let native_out: Vec<(String, Vec<u8>)> =
        native.output().iter().map(|(k, d)| (k.to_string(), d.to_vec())).collect();
    assert!(native_out.len() > 50, "the test exercises enough windows: {}", native_out.len());
    assert_eq!(native_out.len(), wasm_out.len());
    assert!(native_out == wasm_out, "outputs differ");
    assert!(!wasm_dead.is_empty());
    assert_eq!(native.dead_letters(), &wasm_dead[..]);
}

#[test]
fn event_time_native_and_wasm_agree_byte_for_byte() {
    check(&[], &trades(30_000, Tickers::Default), 1024);
    check(&[("window", "7s"), ("slide", "3s")], &trades(20_000, Tickers::Synthetic(50)), 333);
}

#[test]
fn processing_time_native_and_wasm_agree_byte_for_byte() {
    check(
        &[("time", "processing"), ("window", "1s"), ("slide", "200ms")],
        &trades(20_000, Tickers::Synthetic(20)),
        500,
    );
}

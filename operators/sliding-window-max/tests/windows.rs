//! Behaviour of sliding-window-max on hand-made streams.

mod common;

use common::*;

#[test]
fn output_is_exactly_the_documented_json() {
    let mut h = harness(&[]);
    h.push("AMZN", br#"{"EVENT_TIME": "2026-11-25T10:00:05.5", "TICKER": "AMZN", "PRICE": 42.17}"#);
    h.end_input().unwrap();
    let first = &h.output_strings()[0];
    assert_eq!(first.0, "AMZN");
    assert_eq!(
        first.1,
        r#"{"TICKER":"AMZN","WINDOW_START":"2026-11-25T09:59:10.000Z","WINDOW_END":"2026-11-25T10:00:10.000Z","MAX_PRICE":42.17,"TRADES":1}"#
    );
}

#[test]
fn a_trade_belongs_to_every_window_that_contains_it_and_boundaries_are_half_open() {
    let mut h = harness(&[("window", "60s"), ("slide", "10s"), ("out-of-orderness", "0s")]);
    // Exactly on a boundary: in the windows starting at 0, -10, ..., -50 (six of them).
    h.push("A", &trade("A", T0, 5.0));
    h.end_input().unwrap();
    let got = results(&h);
    let starts: Vec<i64> = got.iter().map(|r| (r.start - T0) / 1000).collect();
    assert_eq!(starts, [-50, -40, -30, -20, -10, 0]);
    assert!(got.iter().all(|r| r.end - r.start == 60_000 && r.trades == 1 && r.max == 5.0));

    // One ms before a window end is inside it; at the end is not.
    let mut h = harness(&[("window", "10s"), ("slide", "10s"), ("out-of-orderness", "0s")]);
    h.push("A", &trade("A", T0 + 9_999, 1.0)).push("A", &trade("A", T0 + 10_000, 2.0));
    h.end_input().unwrap();
    assert_eq!(results(&h), [w("A", 0, 10, 1.0, 1), w("A", 10, 20, 2.0, 1)]);
}

#[test]
fn windows_fire_when_the_watermark_passes_their_end_not_before() {
    let mut h = harness(&[("window", "10s"), ("slide", "5s"), ("out-of-orderness", "1s")]);
    h.push("A", &trade("A", T0 + 1_000, 3.0));
    h.push("A", &trade("A", T0 + 9_999, 4.0)); // watermark T0+8.999: [-5,5) fires, [0,10) not yet
    h.flush().unwrap();
    assert_eq!(results(&h), [w("A", -5, 5, 3.0, 1)]);
    h.push("A", &trade("A", T0 + 11_000, 1.0)); // watermark T0+10: [0,10) fires
    h.flush().unwrap();
    assert_eq!(results(&h), [w("A", -5, 5, 3.0, 1), w("A", 0, 10, 4.0, 2)]);
}

#[test]
fn several_tickers_are_kept_apart() {
    let mut h = harness(&[("window", "10s"), ("slide", "10s")]);
    for (i, (t, p)) in [("A", 1.0), ("B", 10.0), ("A", 3.0), ("C", 7.0), ("B", 2.0)].into_iter().enumerate() {
        h.push(t, &trade(t, T0 + i as i64 * 1000, p));
    }
    h.end_input().unwrap();
    let mut got = results(&h);
    got.sort_by(|a, b| a.partial_cmp(b).unwrap());
    assert_eq!(got, [w("A", 0, 10, 3.0, 2), w("B", 0, 10, 10.0, 2), w("C", 0, 10, 7.0, 1)]);
}

#[test]
fn out_of_order_trades_within_the_bound_count() {
    let mut h = harness(&[("window", "10s"), ("slide", "10s"), ("out-of-orderness", "2s")]);
    h.push("A", &trade("A", T0 + 9_000, 1.0));
    h.push("A", &trade("A", T0 + 11_000, 1.0)); // watermark T0+9s
    h.push("A", &trade("A", T0 + 8_000, 9.0)); // behind the watermark (9s), but [0,10) is still open
    h.push("A", &trade("A", T0 + 12_500, 1.0)); // watermark T0+10.5s: [0,10) fires
    h.end_input().unwrap();
    assert_eq!(results(&h), [w("A", 0, 10, 9.0, 2), w("A", 10, 20, 1.0, 2)]);
    assert!(h.dead_letters().is_empty());
}

#[test]
fn late_trades_go_to_dead_letters_with_the_reason_and_partly_late_ones_count_where_they_can() {
    let mut h = harness(&[("window", "20s"), ("slide", "10s"), ("out-of-orderness", "0s")]);
    h.push("A", &trade("A", T0 + 1_000, 1.0));
    h.push("A", &trade("A", T0 + 25_000, 1.0)); // watermark 25s: [-10,10) and [0,20) fire
    // 5s: its windows [-10,10) and [0,20) have fired: late.
    h.push("A", &trade("A", T0 + 5_000, 50.0));
    // 15s: [0,20) has fired but [10,30) is open: counts there.
    h.push("A", &trade("A", T0 + 15_000, 7.0));
    h.end_input().unwrap();
    assert_eq!(
        results(&h),
        [w("A", -10, 10, 1.0, 1), w("A", 0, 20, 1.0, 1), w("A", 10, 30, 7.0, 2), w("A", 20, 40, 1.0, 1)]
    );
    let dead = h.dead_letters();
    assert_eq!(dead.len(), 2, "the late trade and the partly late one");
    assert_eq!(dead[0].lateness(), Some(Lateness::Late));
    assert!(
        dead[0].reason.starts_with("late: event time 2026-11-25T10:00:05.000Z is 20000 ms behind"),
        "{}",
        dead[0].reason
    );
    assert_eq!(dead[0].data, trade("A", T0 + 5_000, 50.0));
    // Counted in [10,30), reported for the window [0,20) it missed, which came out without it.
    assert_eq!(dead[1].lateness(), Some(Lateness::PartlyLate));
    assert!(
        dead[1].reason.starts_with(
            "partly late: event time 2026-11-25T10:00:15.000Z came after 1 of its 2 windows were emitted without it, [2026-11-25T10:00:00.000Z, 2026-11-25T10:00:20.000Z)"
        ),
        "{}",
        dead[1].reason
    );
    assert_eq!(dead[1].data, trade("A", T0 + 15_000, 7.0));
}

#[test]
fn bad_records_are_refused_and_the_rest_still_count() {
    let mut h = harness(&[("window", "10s"), ("slide", "10s")]);
    h.push("A", b"{not json").push("A", br#"{"TICKER": "A", "PRICE": 1}"#).push("A", &trade("A", T0, 2.0));
    h.end_input().unwrap();
    assert_eq!(results(&h), [w("A", 0, 10, 2.0, 1)]);
    let reasons: Vec<&str> = h.dead_letters().iter().map(|d| d.reason.as_str()).collect();
    assert!(reasons[0].starts_with("key must be a string") || reasons[0].contains("line 1"), "{reasons:?}");
    assert_eq!(reasons[1], "missing field \"EVENT_TIME\"");
}

#[test]
fn negative_prices_and_trades_from_too_far_ahead_are_refused_with_the_reason() {
    let mut h = harness(&[("window", "10s"), ("slide", "10s"), ("max-ahead", "1h")]);
    h.set_time(T0);
    h.push("A", &trade("A", T0, -1.0))
        .push("A", &trade("A", T0 + 3_600_001, 5.0))
        .push("A", br#"{"EVENT_TIME": 1795600800000, "TICKER": "A", "PRICE": 1e999}"#)
        .push("A", &trade("A", T0 + 1_000, 2.0));
    h.end_input().unwrap();
    assert_eq!(results(&h), [w("A", 0, 10, 2.0, 1)], "the good trade counts, the watermark stayed");
    let reasons: Vec<&str> = h.dead_letters().iter().map(|d| d.reason.as_str()).collect();
    assert_eq!(reasons.len(), 3, "{reasons:?}");
    assert!(reasons[0].contains("-1 is not a price"), "{reasons:?}");
    assert!(
        reasons[1].contains("ahead of processing time") && reasons[1].contains("max-ahead"),
        "{reasons:?}"
    );
    assert!(reasons[2].contains("out of range"), "{reasons:?}");
}

#[test]
fn processing_time_windows_fire_on_ticks_without_input() {
    let mut h = harness(&[("time", "processing"), ("window", "10s"), ("slide", "10s")]);
    h.set_time(T0 + 1_000);
    // EVENT_TIME is ignored in processing time (and may be absent).
    h.push("A", br#"{"TICKER": "A", "PRICE": 4}"#).push("A", &trade("A", 0, 6.0));
    h.advance_time(T0 + 9_999).unwrap();
    assert!(results(&h).is_empty());
    h.advance_time(T0 + 10_000).unwrap();
    assert_eq!(results(&h), [w("A", 0, 10, 6.0, 2)]);
}

#[test]
fn snapshot_and_restore_mid_window_give_the_same_results() {
    let stream: Vec<(String, i64, f64)> = (0..200)
        .map(|i| (["A", "B", "C"][i % 3].to_string(), T0 + (i as i64) * 173, (i % 17) as f64))
        .collect();
    let settings = [("window", "10s"), ("slide", "2s"), ("out-of-orderness", "300ms")];
    let mut straight = harness(&settings);
    for (t, ms, p) in &stream {
        straight.push(t, &trade(t, *ms, *p));
    }
    straight.end_input().unwrap();

    let mut restarted = harness(&settings).with_batch_size(7);
    for (i, (t, ms, p)) in stream.iter().enumerate() {
        restarted.push(t, &trade(t, *ms, *p));
        if i == 97 {
            let state = restarted.snapshot().unwrap();
            assert!(state.iter().any(|e| e.is_instance_wide()));
            restarted.restart_from(&state).unwrap();
        }
    }
    restarted.end_input().unwrap();
    assert_eq!(results(&restarted), results(&straight));
}

#[test]
fn state_splits_by_key_and_merges_back() {
    // As after a change of parallelism up then down: each instance gets some keys plus the
    // instance entry.
    let settings = [("window", "10s"), ("slide", "5s")];
    let mut parent = harness(&settings);
    for i in 0..50 {
        let t = ["A", "B"][i % 2];
        parent.push(t, &trade(t, T0 + i as i64 * 300, i as f64));
    }
    let state = parent.snapshot().unwrap();
    let (a, b): (Vec<_>, Vec<_>) = state.iter().partition(|e| e.key == "A");
    let instance = b.iter().find(|e| e.is_instance_wide()).copied().unwrap();
    let mut child_a = harness(&settings);
    child_a.restart_from(&a.into_iter().chain([instance]).collect()).unwrap();
    let mut merged = harness(&settings);
    let child_state = child_a.snapshot().unwrap();
    merged.restart_from(&child_state.iter().chain(b).collect()).unwrap();
    parent.end_input().unwrap();
    merged.end_input().unwrap();
    let sorted = |mut v: Vec<WindowResult>| {
        v.sort_by(|x, y| x.partial_cmp(y).unwrap());
        v
    };
    let parent_results = results(&parent);
    let emitted_before = parent_results.iter().filter(|r| r.end <= T0 + 14_700 - 1_000).count();
    assert_eq!(sorted(results(&merged)), sorted(parent_results[emitted_before..].to_vec()));
}

#[test]
fn restore_refuses_damaged_state() {
    let mut h = harness(&[]);
    let mut damaged = weir_operator::KeyedStates::default();
    damaged.push("A", &[2, 2, 3]);
    let err = h.restart_from(&damaged).unwrap_err();
    assert!(err.message().contains("state of key \"A\": state cannot be read"), "{err}");
}

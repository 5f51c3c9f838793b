//! Property test: on random streams (several tickers, out-of-order, late and partly late trades, random
//! window and slide, random batch sizes, a restart from a snapshot at a random point) the
//! operator's results equal a brute-force reference that keeps one accumulator per window.
//!
//! The watermark moves between batches (the host passes it with the next call), so the
//! reference moves it at the same batch boundaries.

mod common;

use std::collections::BTreeMap;

use common::*;
use proptest::prelude::*;

/// The semantics, written the slow and obvious way: the results, and the trades reported as
/// late or partly late (some of their windows closed before they came).
fn reference(
    trades: &[(usize, i64, f64)],
    boundaries: &[bool],
    window: i64,
    slide: i64,
    ooo: i64,
) -> (Vec<WindowResult>, Vec<usize>) {
    let mut open: BTreeMap<(i64, usize), (f64, u64)> = BTreeMap::new(); // (end, ticker) -> agg
    let mut out = Vec::new();
    let mut late = Vec::new();
    let (mut watermark, mut newest) = (i64::MIN, i64::MIN);
    let fire = |open: &mut BTreeMap<(i64, usize), (f64, u64)>, out: &mut Vec<WindowResult>, limit: i64| {
        while let Some((&(end, t), &(max, n))) = open.iter().next() {
            if end > limit {
                break;
            }
            open.remove(&(end, t));
            out.push(WindowResult { ticker: format!("K{t}"), start: end - window, end, max, trades: n });
        }
    };
    for (i, &(t, time, price)) in trades.iter().enumerate() {
        let (mut accepted, mut missed) = (false, false);
        let mut start = time.div_euclid(slide) * slide;
        while start > time - window {
            if start + window > watermark {
                let e = open.entry((start + window, t)).or_insert((f64::NEG_INFINITY, 0));
                e.0 = e.0.max(price);
                e.1 += 1;
                accepted = true;
            } else {
                missed = true;
            }
            start -= slide;
        }
        if accepted {
            newest = newest.max(time);
        }
        // Late (in no window) or partly late (some windows emitted without it): both reported.
        if missed {
            late.push(i);
        }
        if boundaries[i] && newest != i64::MIN {
            watermark = watermark.max(newest - ooo);
            fire(&mut open, &mut out, watermark);
        }
    }
    fire(&mut open, &mut out, i64::MAX);
    (out, late)
}

fn sorted(mut v: Vec<WindowResult>) -> Vec<WindowResult> {
    v.sort_by(|a, b| (a.end, &a.ticker).cmp(&(b.end, &b.ticker)));
    v
}

/// (ticker, event time, price) in arrival order.
type Trades = Vec<(usize, i64, f64)>;

/// Trades, window, slide, out-of-orderness, batch size, where to restart.
fn stream() -> impl Strategy<Value = (Trades, i64, i64, i64, usize, usize)> {
    let shape = prop_oneof![
        Just((10_000i64, 10_000i64)),
        Just((60_000, 10_000)),
        Just((7_000, 3_000)),
        Just((5_000, 1_000)),
        Just((9_000, 6_000))
    ];
    (shape, 0i64..3_000, 1usize..40, 0usize..300).prop_flat_map(
        |((window, slide), ooo, batch, restart_at)| {
            // Time moves forward by 0..700 ms per trade, and sometimes jumps back up to 8 s.
            let steps = prop::collection::vec(
                (0usize..4, 0i64..700, prop::bool::weighted(0.1), 0i64..8_000, 0u32..10_000),
                1..250,
            );
            steps.prop_map(move |steps| {
                let mut time = T0;
                let trades = steps
                    .into_iter()
                    .map(|(t, step, back, back_by, cents)| {
                        time += step;
                        let at = if back { time - back_by } else { time };
                        (t, at, cents as f64 / 100.0)
                    })
                    .collect();
                (trades, window, slide, ooo, batch, restart_at)
            })
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2_000,
        failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn results_match_the_brute_force_reference((trades, window, slide, ooo, batch, restart_at) in stream()) {
        let (window_s, slide_s, ooo_s) = (format!("{window}ms"), format!("{slide}ms"), format!("{ooo}ms"));
        let mut h = harness(&[("window", &window_s), ("slide", &slide_s), ("out-of-orderness", &ooo_s)]).with_batch_size(batch);
        for (i, &(t, time, price)) in trades.iter().enumerate() {
            let key = format!("K{t}");
            h.push(&key, &trade(&key, time, price));
            if i == restart_at {
                let state = h.snapshot().unwrap();
                h.restart_from(&state).unwrap();
            }
        }
        h.end_input().unwrap();
        // A batch ends when `batch` records are pending, and at the snapshot.
        let mut pending = 0;
        let boundaries: Vec<bool> = (0..trades.len()).map(|i| {
            pending += 1;
            let end = pending >= batch || i == restart_at;
            if end { pending = 0; }
            end
        }).collect();
        let (expected, late) = reference(&trades, &boundaries, window, slide, ooo);
        prop_assert_eq!(sorted(results(&h)), sorted(expected));
        let dead: Vec<Vec<u8>> = h.dead_letters().iter().map(|d| d.data.clone()).collect();
        let late_data: Vec<Vec<u8>> = late.iter().map(|&i| { let (t, time, p) = trades[i]; trade(&format!("K{t}"), time, p) }).collect();
        prop_assert_eq!(dead, late_data);
    }
}

//! sliding-window-max's `restore` on any keyed state (well-formed columns, arbitrary keys and
//! bytes): it refuses or accepts, never panics, and an instance that accepted goes on working
//! (a trade, a tick, a snapshot, the end of input).

#![no_main]

use libfuzzer_sys::fuzz_target;
use sliding_window_max::SlidingWindowMax;
use weir_contract::KeyedStates;
use weir_operator::Harness;

/// Entries cut out of `data`: a byte of key length (0: the instance-wide entry), a byte of
/// state length, then the key and the state.
fn states(mut data: &[u8]) -> KeyedStates {
    let mut states = KeyedStates::default();
    while let [key_len, state_len, rest @ ..] = data {
        let (key_len, state_len) = (usize::from(*key_len % 8), usize::from(*state_len));
        if rest.len() < key_len + state_len {
            break;
        }
        let key = String::from_utf8_lossy(&rest[..key_len]).into_owned();
        states.push(&key, &rest[key_len..key_len + state_len]);
        data = &rest[key_len + state_len..];
    }
    states
}

fuzz_target!(|data: &[u8]| {
    let state = states(data);
    let Ok(mut harness) = Harness::<SlidingWindowMax>::new(&[("window", "20s"), ("slide", "10s")]) else {
        return;
    };
    // As the host restores: a fresh instance given the state.
    if harness.restart_from(&state).is_err() {
        return;
    }
    harness.push("A", br#"{"EVENT_TIME": 1795600800000, "TICKER": "A", "PRICE": 1.5}"#);
    let _ = harness.advance_time(1_795_600_900_000);
    let _ = harness.snapshot();
    let _ = harness.end_input();
});

//! Operator instances side by side (`pipeline::instances`) against a real component: each
//! works through its own sub-batches without waiting for another, and a job every instance
//! runs (a tick, a snapshot, the end of input) comes after every sub-batch handed over before it.

use crate::util;

use util::*;
use weir::metrics::Metrics;
use weir::pipeline::instances::Instances;
use weir::routing::{key_group, owner};
use weir_operator::OwnedBatch;

/// The first key `k0`, `k1`, ... that instance `instance` of 2 owns.
fn key_of(instance: usize) -> String {
    (0..).map(|i| format!("k{i}")).find(|k| owner(key_group(k.as_bytes()), 2) == instance).unwrap_or_default()
}

fn two_fixtures(settings: &[(&str, &str)]) -> Instances {
    let loaded = load("test_fixture", settings).expect("fixture");
    Instances::new(loaded, 2, (64, Default::default()), &Default::default(), &Metrics::default())
        .expect("instances")
}

fn batch(records: &[(&str, &str)]) -> OwnedBatch {
    let mut batch = OwnedBatch::new("shard-0");
    for (key, data) in records {
        batch.push(key, data.as_bytes(), 0);
    }
    batch
}

fn texts(output: &weir_operator::Output) -> Vec<String> {
    output.iter().map(|(key, data)| format!("{key}:{}", String::from_utf8_lossy(data))).collect()
}

#[tokio::test]
async fn an_instance_in_a_long_call_holds_no_other_instance_back() {
    let (slow, fast) = (key_of(0), key_of(1));
    let mut instances = two_fixtures(&[("spin-on", "loop")]);
    instances.route(batch(&[(&slow, "loop"), (&fast, "1")]), false, None);

    // The slow instance spins until its CPU limit (500 ms) stops it; the other's result comes
    // back meanwhile, on its own.
    let (first, failed) = instances.finished().await.expect("results");
    assert!(failed.is_empty());
    assert_eq!(first.len(), 1, "one result, the fast instance's: {first:?}");
    assert_eq!(texts(&first[0].processed.output), [format!("{fast}:1")]);
    assert_eq!(instances.in_flight(), 1);

    let (rest, _) = instances.settle().await.expect("results");
    assert_eq!(rest.len(), 1);
    let letters = &rest[0].processed.dead_letters;
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert!(letters[0].reason.contains("ran longer than its CPU limit"), "{}", letters[0].reason);
    assert_eq!(instances.in_flight(), 0);
}

#[tokio::test]
async fn the_end_of_input_comes_after_every_sub_batch_handed_over_before_it() {
    let keys = [key_of(0), key_of(1)];
    let mut instances = two_fixtures(&[]);
    for i in 0..50 {
        let data = i.to_string();
        instances.route(batch(&[(&keys[0], &data), (&keys[1], &data), (&keys[1], &data)]), false, None);
    }
    // Not waited for: the instances may still be working through them.
    let finished = instances.finish(0).expect("finish");
    let counts: Vec<String> = finished.iter().flat_map(|(_, output)| texts(output)).collect();
    assert_eq!(counts, [format!("{}:count=50", keys[0]), format!("{}:count=100", keys[1])]);

    // Every sub-batch's result is waiting, in the order handed over per instance.
    let (done, _) = instances.ready().expect("results");
    assert_eq!(done.len(), 100);
    assert_eq!(instances.in_flight(), 0);
    let of_first: Vec<String> =
        done.iter().flat_map(|d| texts(&d.processed.output)).filter(|t| t.starts_with(&keys[0])).collect();
    let expected: Vec<String> = (0..50).map(|i| format!("{}:{i}", keys[0])).collect();
    assert_eq!(of_first, expected);
}

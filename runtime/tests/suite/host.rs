//! The operator host against real components: what it refuses before reading a record, the
//! compiled cache, and each limit both obeyed and violated.

use crate::util;

use util::*;
use weir::artifact::Artifact;
use weir::operator::{CacheOutcome, CompiledCache};
use weir::operator::{Limits, LoadError, OperatorEngine, Runner};
use weir_operator::OwnedBatch;

fn refused(artifact: Artifact) -> String {
    match engine().load(artifact, &[]) {
        Ok(_) => panic!("loaded"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn random_bytes_are_refused_naming_the_file() {
    let msg = refused(Artifact::from_bytes(b"definitely not wasm".to_vec(), "junk.wasm"));
    assert!(msg.starts_with("operator junk.wasm is not a WebAssembly component"), "{msg}");
}

#[test]
fn a_core_module_is_refused_with_how_to_build_a_component() {
    let msg = refused(Artifact::from_bytes(b"\0asm\x01\0\0\0".to_vec(), "core.wasm"));
    assert!(msg.contains("core.wasm is a core WebAssembly module, not a component"), "{msg}");
    assert!(msg.contains("wasm32-wasip2"), "{msg}");
}

#[test]
fn a_component_of_another_contract_version_is_refused_naming_the_version_needed() {
    let msg = refused(Artifact::from_bytes(component_exporting("0.1.0"), "v1.wasm"));
    assert!(
        msg.contains(
            "v1.wasm was built for the contract weir:operator@0.1.0, and this weir runs weir:operator@0.2.0"
        ),
        "{msg}"
    );
    assert!(msg.contains("rebuild it against the weir-operator SDK of this weir (0.2"), "{msg}");
    assert!(msg.contains("cargo build --release --target wasm32-wasip2"), "{msg}");

    let msg = refused(Artifact::from_bytes(component_exporting("1.0.0"), "v10.wasm"));
    assert!(msg.contains("v10.wasm was built for the contract weir:operator@1.0.0"), "{msg}");

    let other = wat::parse_str(
        r#"(component
            (core module $m (func (export "f")))
            (core instance $i (instantiate $m))
            (func $f (canon lift (core func $i "f")))
            (instance $api (export "run" (func $f)))
            (export "acme:thing/api@1.0.0" (instance $api)))"#,
    )
    .expect("valid component text");
    let msg = refused(Artifact::from_bytes(other, "other.wasm"));
    assert!(msg.contains("other.wasm is not a weir operator for this host"), "{msg}");
    assert!(msg.contains("needs to export weir:operator/operator@0.2.x"), "{msg}");
    assert!(msg.contains("it exports acme:thing/api@1.0.0"), "{msg}");

    let empty = wat::parse_str("(component)").expect("valid component text");
    assert!(refused(Artifact::from_bytes(empty, "empty.wasm")).contains("it exports no interface"));
}

#[test]
fn an_operator_whose_init_fails_is_refused_with_its_reason() {
    let err = load("test_fixture", &[("fail-init", "true")]).err().expect("refused");
    assert!(matches!(err, LoadError::Init { .. }));
    let msg = err.to_string();
    assert!(msg.contains("test_fixture.wasm failed to initialise: told to fail init"), "{msg}");
    let msg = load("sliding_window_max", &[("window", "soon")]).err().expect("refused").to_string();
    assert!(msg.contains("setting window=\"soon\" is invalid"), "{msg}");
}

#[test]
fn the_default_operator_describes_itself() {
    let loaded = load("sliding_window_max", &[]).unwrap();
    assert_eq!(loaded.name(), "sliding-window-max");
    assert_eq!(loaded.version(), env!("CARGO_PKG_VERSION"));
}

#[test]
fn a_second_load_uses_the_compiled_cache() {
    let dir = tempfile::tempdir().unwrap();
    let cache = || Some(CompiledCache::new(dir.path()));
    let first = engine_with(Limits::default(), cache()).load(artifact("sliding_window_max"), &[]).unwrap();
    assert_eq!(first.cache_outcome(), CacheOutcome::Compiled);
    let entries: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(entries.len(), 1);
    let name = entries[0].as_ref().unwrap().file_name().into_string().unwrap();
    assert!(name.starts_with(&first.artifact().digest.to_string()), "{name}");
    // A new engine (as a new process would have) loads the stored artifact without compiling.
    let second = engine_with(Limits::default(), cache()).load(artifact("sliding_window_max"), &[]).unwrap();
    assert_eq!(second.cache_outcome(), CacheOutcome::Hit);
    // A damaged entry is recompiled, not trusted. (Replaced, not overwritten in place: the
    // loaded component maps the old file, as it would in a running weir.)
    let path = entries[0].as_ref().unwrap().path();
    std::fs::remove_file(&path).unwrap();
    std::fs::write(&path, b"garbage").unwrap();
    let third = engine_with(Limits::default(), cache()).load(artifact("sliding_window_max"), &[]).unwrap();
    assert_eq!(third.cache_outcome(), CacheOutcome::Compiled);
}

#[test]
fn engines_configured_differently_keep_one_cache_entry_each() {
    let dir = tempfile::tempdir().unwrap();
    let cache = || Some(CompiledCache::new(dir.path()));
    let unlimited = Limits { max_call_time: None, ..Limits::default() };
    for limits in [Limits::default(), unlimited, Limits::default(), unlimited] {
        engine_with(limits, cache()).load(artifact("sliding_window_max"), &[]).unwrap();
    }
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
    for limits in [Limits::default(), unlimited] {
        let loaded = engine_with(limits, cache()).load(artifact("sliding_window_max"), &[]).unwrap();
        assert_eq!(loaded.cache_outcome(), CacheOutcome::Hit, "{limits:?}");
    }
}

fn batch(records: &[(&str, &str)]) -> OwnedBatch {
    let mut b = OwnedBatch::new("shard-0");
    for (key, data) in records {
        b.push(key, data.as_bytes(), 0);
    }
    b
}

/// Run the fixture over `records` in one batch and finish; returns (outputs, dead letters,
/// restarts). It runs twice, with instances allocated on demand and from a pool of four slots
/// (as `weir run` makes them: a restart makes the new instance while the old one exists), and
/// both must give the same.
fn run_fixture(settings: &[(&str, &str)], records: &[(&str, &str)]) -> (Vec<String>, Vec<String>, u64) {
    let on_demand = run_fixture_in(&engine(), settings, records);
    let pooled = run_fixture_in(&pooled_engine(4), settings, records);
    assert_eq!(on_demand, pooled, "on demand, then pooled");
    on_demand
}

fn run_fixture_in(
    engine: &OperatorEngine,
    settings: &[(&str, &str)],
    records: &[(&str, &str)],
) -> (Vec<String>, Vec<String>, u64) {
    let settings: Vec<(String, String)> =
        settings.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let loaded = engine.load(artifact("test_fixture"), &settings).unwrap();
    let mut op = Runner::new(loaded, "instance 0", Default::default()).unwrap();
    // Two clean batches first, so recovery has calls since the snapshot to replay.
    let mut warmup = batch(&[("a", "warm"), ("b", "warm")]);
    op.process(&mut warmup).unwrap();
    let mut b = batch(records);
    let processed = op.process(&mut b).unwrap();
    let finish = op.finish(0).unwrap();
    let mut out: Vec<String> =
        processed.output.iter().map(|(_, d)| String::from_utf8_lossy(d).into_owned()).collect();
    out.extend(finish.iter().map(|(k, d)| format!("{k}:{}", String::from_utf8_lossy(d))));
    let dead = processed
        .dead_letters
        .iter()
        .map(|d| format!("{}|{}", String::from_utf8_lossy(&d.data), d.reason))
        .collect();
    (out, dead, op.stats().restarts)
}

#[test]
fn a_trap_restarts_the_instance_from_its_state_and_only_the_poison_record_is_dead_lettered() {
    let (out, dead, restarts) =
        run_fixture(&[("trap-on", "poison")], &[("a", "1"), ("b", "poison!"), ("a", "2")]);
    assert_eq!(out, ["1", "2", "a:count=3", "b:count=1"], "state before and after the trap counted once");
    assert_eq!(dead.len(), 1);
    assert!(dead[0].starts_with("poison!|operator trapped"), "{dead:?}");
    assert!(
        dead[0].contains("told to trap on this record"),
        "the guest's panic message is reported: {dead:?}"
    );
    assert_eq!(restarts, 1);
}

#[test]
fn a_failed_batch_is_isolated_to_the_records_that_fail_it() {
    let (out, dead, _) = run_fixture(&[("fail-on", "bad")], &[("a", "1"), ("a", "bad"), ("b", "3")]);
    assert_eq!(out, ["1", "3", "a:count=2", "b:count=2"]);
    assert_eq!(dead, ["bad|operator failed: told to fail this batch (fail-on)"]);
}

#[test]
fn rejections_become_dead_letters_without_a_restart() {
    let (out, dead, restarts) = run_fixture(&[("reject-on", "no")], &[("a", "no"), ("a", "yes")]);
    assert_eq!(out, ["yes", "a:count=2", "b:count=1"]);
    assert_eq!(dead, ["no|told to refuse this record (reject-on)"]);
    assert_eq!(restarts, 0);
}

#[test]
fn the_cpu_limit_interrupts_a_runaway_call_and_is_not_hit_by_normal_work() {
    let (out, dead, _) = run_fixture(&[("spin-on", "loop")], &[("a", "1"), ("a", "loop")]);
    assert_eq!(out, ["1", "a:count=2", "b:count=1"]);
    assert_eq!(dead.len(), 1);
    assert!(dead[0].contains("ran longer than its CPU limit of 500ms per call"), "{dead:?}");
}

#[test]
fn the_memory_limit_stops_a_hoarding_call_and_is_not_hit_by_normal_work() {
    let (out, dead, _) = run_fixture(&[("alloc-on", "hoard")], &[("a", "hoard"), ("a", "1")]);
    assert_eq!(out, ["1", "a:count=2", "b:count=1"]);
    assert_eq!(dead.len(), 1);
    assert!(dead[0].contains("exceeded its memory limit of 64 MiB"), "{dead:?}");
}

#[test]
fn the_output_limit_fails_a_flooding_call_and_only_its_record_is_dead_lettered() {
    let (out, dead, _) = run_fixture(&[("flood-on", "flood")], &[("a", "flood"), ("a", "1")]);
    assert_eq!(out, ["1", "a:count=2", "b:count=1"]);
    assert_eq!(dead.len(), 1);
    assert!(
        dead[0].contains("returned 2 MiB of results in one call, more than its output limit of 1 MiB"),
        "{dead:?}"
    );
}

#[test]
fn an_operator_that_refuses_to_restore_is_reported_with_its_reason() {
    let loaded = load("test_fixture", &[]).unwrap();
    let mut first = Runner::new(loaded, "s", Default::default()).unwrap();
    first.process(&mut batch(&[("a", "1")])).unwrap();
    let state = first.snapshot().unwrap();
    let refusing = load("test_fixture", &[("fail-restore", "true")]).unwrap();
    let error = Runner::new(refusing, "instance 0 of 1", state).err().expect("refused").to_string();
    assert!(error.contains("failed to restore its state on instance 0 of 1"), "{error}");
    assert!(error.contains("told to refuse any state"), "{error}");
}

#[test]
fn an_instance_restored_from_a_snapshot_continues_where_the_old_one_was() {
    let loaded = load("test_fixture", &[]).unwrap();
    let mut first = Runner::new(loaded.clone(), "s", Default::default()).unwrap();
    first.process(&mut batch(&[("a", "1"), ("a", "2"), ("b", "3")])).unwrap();
    let state = first.snapshot().unwrap();
    let mut second = Runner::new(loaded, "s", state).unwrap();
    let out = second.finish(0).unwrap();
    let got: Vec<String> = out.iter().map(|(k, d)| format!("{k}:{}", String::from_utf8_lossy(d))).collect();
    assert_eq!(got, ["a:count=2", "b:count=1"]);
}

#[test]
fn a_pooled_engine_refuses_an_instance_past_its_slots_naming_the_option_and_reuses_a_freed_slot() {
    let engine = pooled_engine(2);
    let loaded = engine.load(artifact("test_fixture"), &[]).unwrap();
    let first = loaded.instantiate().unwrap();
    let second = loaded.instantiate().unwrap();
    let error = loaded.instantiate().err().expect("a third instance in two slots");
    assert!(matches!(error, LoadError::PoolFull { slots: 2, .. }), "{error:?}");
    let message = error.to_string();
    assert!(message.contains("the 2 instance slots reserved for it are all in use"), "{message}");
    assert!(message.contains("--instance-slots"), "{message}");
    drop(first);
    let mut third = loaded.instantiate().expect("the first instance's slot, freed");
    let mut records = batch(&[("a", "1")]);
    assert_eq!(third.process(&mut records).unwrap().len(), 1, "the reused slot runs");
    drop(second);
}

//! `weir deploy`, `weir operators list` and `weir run --operator s3://` against moto_server
//! speaking the S3 protocol (started by `scripts/with-emulators`, which `scripts/test` uses).

use crate::util;

use std::path::Path;
use std::process::Output;

use aws_sdk_s3::primitives::ByteStream;
use util::kinesis::runtime;
use util::process::{failed, ok};
use util::s3::{bucket, client, deploy, s3_endpoint, weir_s3};
use util::*;
use weir::artifact::Digest;
use weir::deployment::{Manifest, OperatorStore, StoreError};

fn keys(rt: &tokio::runtime::Runtime, bucket: &str) -> Vec<String> {
    let listed = rt.block_on(client(rt).list_objects_v2().bucket(bucket).send()).unwrap();
    listed.contents().iter().filter_map(|o| o.key().map(str::to_string)).collect()
}

fn manifest(rt: &tokio::runtime::Runtime, bucket: &str, prefix: &str) -> Manifest {
    let got = rt
        .block_on(client(rt).get_object().bucket(bucket).key(format!("{prefix}/current.json")).send())
        .unwrap();
    let bytes = rt.block_on(got.body.collect()).unwrap().into_bytes();
    serde_json::from_slice(&bytes).unwrap()
}

fn digest_of(file: &Path) -> Digest {
    Digest::of(&std::fs::read(file).unwrap())
}

/// `weir run` of `input` with `operator`; the output lines.
fn run_with(operator: &str, input: &[u8], extra: &[&str]) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("in.jsonl"), input).unwrap();
    let out = weir()
        .env("AWS_ENDPOINT_URL_S3", s3_endpoint())
        .current_dir(dir.path())
        .args(["run", "--source", "in.jsonl", "--sink", "out.jsonl", "--operator", operator])
        .args(extra)
        .output()
        .unwrap();
    ok(&out);
    std::fs::read_to_string(dir.path().join("out.jsonl")).unwrap().lines().map(str::to_string).collect()
}

#[test]
fn a_deployed_operator_runs_from_s3_with_its_stored_settings() {
    let rt = runtime();
    let bucket = bucket(&rt, "deploy");
    let target = format!("s3://{bucket}/operators/max");
    let file = component("sliding_window_max");
    let said = ok(&deploy(&file, &target, &["--set", "slide=5s"]));
    let digest = digest_of(&file);
    assert!(said.contains(&format!("deployed sliding-window-max {}", env!("CARGO_PKG_VERSION"))), "{said}");
    assert!(said.contains(&digest.to_string()) && said.contains("first deployment"), "{said}");

    let mut stored = keys(&rt, &bucket);
    stored.sort();
    let mut expected = [format!("operators/max/{digest}.wasm"), "operators/max/current.json".to_string()];
    expected.sort();
    assert_eq!(stored, expected);
    let m = manifest(&rt, &bucket, "operators/max");
    assert_eq!(m.current.digest, digest);
    assert_eq!(m.current.size, std::fs::metadata(&file).unwrap().len());
    assert_eq!(m.current.contract, weir_contract::CONTRACT.to_string());
    assert_eq!(m.current.name.as_deref(), Some("sliding-window-max"));
    assert_eq!(m.current.settings.get("slide").map(String::as_str), Some("5s"));
    assert_eq!(m.previous, None);

    let input = trade_lines(20_000, weir_producer::Tickers::Default);
    let got = |extra: &[&str]| per_ticker(run_with(&target, &input, extra).iter().map(String::as_str));
    assert_eq!(got(&[]), native_per_ticker(&input, &[("slide", "5s")]), "the manifest's settings apply");
    // A setting on the command line overrides the stored one.
    assert_eq!(got(&["--set", "slide=20s"]), native_per_ticker(&input, &[("slide", "20s")]));
}

#[test]
fn each_deploy_records_the_previous_one_and_rollback_points_back() {
    let rt = runtime();
    let bucket = bucket(&rt, "history");
    let target = format!("s3://{bucket}/max");
    let (first, second) = (component("sliding_window_max"), component("price_alert"));
    ok(&deploy(&first, &target, &[]));
    let said = ok(&deploy(&second, &target, &["--set", "threshold=100"]));
    assert!(said.contains(&format!("previous {}", &digest_of(&first).short())), "{said}");
    let m = manifest(&rt, &bucket, "max");
    assert_eq!(m.current.digest, digest_of(&second));
    assert_eq!(m.previous, Some(digest_of(&first)));

    let listed = ok(&weir_s3(&["operators", "list", &target]));
    let lines: Vec<&str> = listed.lines().collect();
    assert_eq!(lines.len(), 3, "{listed}");
    assert!(lines[1].starts_with("current") && lines[1].contains(&digest_of(&second).short()), "{listed}");
    assert!(lines[1].contains("price-alert") && lines[1].contains("threshold=100"), "{listed}");
    assert!(
        lines[2].contains(&digest_of(&first).short()) && lines[2].contains("sliding-window-max"),
        "{listed}"
    );

    let said = ok(&weir_s3(&["deploy", "--rollback", &target]));
    assert!(said.contains(&format!(
        "back from {} to {}",
        &digest_of(&second).short(),
        &digest_of(&first).short()
    )));
    let m = manifest(&rt, &bucket, "max");
    assert_eq!(m.current.digest, digest_of(&first));
    assert_eq!(m.current.rollback_of, Some(digest_of(&second)));
    assert_eq!(m.previous, Some(digest_of(&second)));
    let input = trade_lines(5_000, weir_producer::Tickers::Default);
    let got = per_ticker(run_with(&target, &input, &[]).iter().map(String::as_str));
    assert_eq!(got, native_per_ticker(&input, &[]), "the rolled-back-to operator runs");
}

#[test]
fn a_changed_component_is_refused_with_both_digests() {
    let rt = runtime();
    let bucket = bucket(&rt, "tamper");
    let target = format!("s3://{bucket}/max");
    let file = component("sliding_window_max");
    ok(&deploy(&file, &target, &[]));
    let digest = digest_of(&file);
    let other = std::fs::read(component("price_alert")).unwrap();
    let other_digest = Digest::of(&other).to_string();
    let put = client(&rt)
        .put_object()
        .bucket(&bucket)
        .key(format!("max/{digest}.wasm"))
        .body(ByteStream::from(other));
    rt.block_on(put.send()).unwrap();

    let err = failed(&weir_s3(&["run", "--count", "10", "--operator", &target]));
    assert!(err.contains(&digest.to_string()) && err.contains(&other_digest), "{err}");
    assert!(err.contains("refusing to run it"), "{err}");
}

#[test]
fn concurrent_deploys_cannot_overwrite_each_other() {
    let rt = runtime();
    let bucket = bucket(&rt, "race");
    let target = format!("s3://{bucket}/max");
    ok(&deploy(&component("sliding_window_max"), &target, &[]));

    // A deploy that read the manifest before another one wrote it is refused.
    let store = rt.block_on(OperatorStore::connect(&bucket, "max", None));
    let (read, etag) = rt.block_on(store.manifest()).unwrap().unwrap();
    ok(&deploy(&component("price_alert"), &target, &[]));
    let late = rt.block_on(store.write_manifest(&read, Some(&etag)));
    assert!(matches!(late, Err(StoreError::Conflict { .. })), "{late:?}");
    assert!(late.unwrap_err().to_string().contains("was changed by another deploy"));
    assert_eq!(manifest(&rt, &bucket, "max").current.digest, digest_of(&component("price_alert")));

    // Deploys racing for real: each one lands or is told so; none is lost silently.
    let files = [component("sliding_window_max"), component("test_fixture"), component("price_alert")];
    let outcomes: Vec<Output> = std::thread::scope(|s| {
        let handles: Vec<_> = files.iter().map(|f| s.spawn(|| deploy(f, &target, &[]))).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let landed: Vec<Digest> =
        files.iter().zip(&outcomes).filter(|(_, o)| o.status.success()).map(|(f, _)| digest_of(f)).collect();
    for out in outcomes.iter().filter(|o| !o.status.success()) {
        assert!(String::from_utf8_lossy(&out.stderr).contains("was changed by another deploy"), "{out:?}");
    }
    assert!(!landed.is_empty());
    let m = manifest(&rt, &bucket, "max");
    let recorded: Vec<Digest> =
        std::iter::once(&m.current).chain(&m.history).take(landed.len()).map(|d| d.digest).collect();
    for digest in &landed {
        assert!(recorded.contains(digest), "{digest} landed but is not in {recorded:?}");
    }
}

#[test]
fn a_bad_operator_is_refused_before_anything_is_uploaded() {
    let rt = runtime();
    let bucket = bucket(&rt, "refused");
    let target = format!("s3://{bucket}/max");
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.wasm");
    std::fs::write(&junk, b"not a component").unwrap();
    let err = failed(&deploy(&junk, &target, &[]));
    assert!(err.contains("junk.wasm was not deployed"), "{err}");
    let err = failed(&deploy(&component("sliding_window_max"), &target, &["--set", "window=soon"]));
    assert!(err.contains("was not deployed") && err.contains("window"), "{err}");
    // An operator built against the 0.1 SDK: refused, with how to rebuild.
    let v1 = dir.path().join("v1.wasm");
    std::fs::write(&v1, component_exporting("0.1.0")).unwrap();
    let err = failed(&deploy(&v1, &target, &[]));
    assert!(err.contains("v1.wasm was not deployed"), "{err}");
    assert!(err.contains("was built for the contract weir:operator@0.1.0"), "{err}");
    assert!(err.contains("cargo build --release --target wasm32-wasip2"), "{err}");
    assert!(keys(&rt, &bucket).is_empty(), "nothing uploaded");
}

#[test]
fn missing_bucket_nothing_deployed_and_missing_credentials_are_one_line() {
    let rt = runtime();
    let err = failed(&weir_s3(&["run", "--count", "10", "--operator", "s3://no-such-bucket-weir/max"]));
    assert!(err.contains("bucket no-such-bucket-weir does not exist at http://127.0.0.1:"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");

    let bucket = bucket(&rt, "empty");
    let err = failed(&weir_s3(&["run", "--count", "10", "--operator", &format!("s3://{bucket}/max")]));
    assert!(err.contains(&format!("no operator is deployed at s3://{bucket}/max")), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    let err = failed(&weir_s3(&["deploy", "--rollback", &format!("s3://{bucket}/max")]));
    assert!(err.contains("no operator is deployed"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");

    let mut cmd = weir();
    without_aws_credentials(&mut cmd).env("AWS_ENDPOINT_URL_S3", s3_endpoint());
    let out = cmd.args(["operators", "list", &format!("s3://{bucket}/max")]).output().unwrap();
    let err = failed(&out);
    assert!(err.contains(&format!("no AWS credentials for s3://{bucket}/max/current.json")), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}

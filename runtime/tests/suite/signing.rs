//! Signed deployments through the binaries, against moto_server (S3 and KMS, started by
//! `scripts/with-emulators`): `weir keygen`, `weir deploy --sign-key / --sign kms://`, and
//! `weir run --trust` running only versions signed by a trusted key, refusing the others with
//! their reason (at start: before anything is downloaded; while running: counted by reason,
//! the running version kept), key rotation, and a KMS key trusted through KMS or as a file.

use crate::util;

use std::path::{Path, PathBuf};
use std::process::Output;

use aws_sdk_s3::primitives::ByteStream;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use p256::pkcs8::{DecodePublicKey, EncodePublicKey, LineEnding};
use util::kinesis::runtime;
use util::process::{failed, ok};
use util::s3::{bucket, client, s3_endpoint, weir_s3};
use util::*;
use weir::artifact::Digest;

use crate::swap::{SWAPS, WITHIN, half_way, same_code_new_digest};

fn refused(reason: &str) -> String {
    format!("weir_operator_versions_refused_total{{reason=\"{reason}\"}}")
}

/// A key pair made by `weir keygen DIR/NAME`: the private key's path, the public key's, and
/// the key id (short) `weir keygen` printed.
fn keygen(dir: &Path, name: &str) -> (PathBuf, PathBuf, String) {
    let private = dir.join(name);
    let said = ok(&weir_s3(&["keygen", private.to_str().unwrap()]));
    let public = dir.join(format!("{name}.pub"));
    assert!(private.exists() && public.exists(), "{said}");
    let id = said.split("key id ").nth(1).unwrap().trim()[..16].to_string();
    (private, public, id)
}

/// `weir deploy FILE TARGET`, signed with the key file `key` if given.
fn deploy(file: &Path, target: &str, key: Option<&Path>, extra: &[&str]) -> Output {
    let signing = key.map(|k| ["--sign-key", k.to_str().unwrap()]);
    util::s3::deploy(file, target, &[signing.as_ref().map_or(&[][..], |s| &s[..]), extra].concat())
}

/// One `weir run` over `input` with the operator deployed at `target`, trusting `trust`.
fn run(target: &str, trust: &[&Path], input: &[u8]) -> (Output, Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("in.jsonl"), input).unwrap();
    let mut cmd = weir();
    cmd.env("AWS_ENDPOINT_URL_S3", s3_endpoint()).current_dir(dir.path());
    cmd.args(["run", "--source", "in.jsonl", "--sink", "out.jsonl", "--operator", target]);
    for key in trust {
        cmd.args(["--trust", key.to_str().unwrap()]);
    }
    let out = cmd.output().unwrap();
    let lines = std::fs::read_to_string(dir.path().join("out.jsonl")).unwrap_or_default();
    (out, lines.lines().map(str::to_string).collect())
}

/// The manifest under `prefix`, as JSON.
fn manifest(rt: &tokio::runtime::Runtime, bucket: &str, prefix: &str) -> serde_json::Value {
    let got =
        rt.block_on(client(rt).get_object().bucket(bucket).key(format!("{prefix}/current.json")).send());
    let bytes = rt.block_on(got.unwrap().body.collect()).unwrap().into_bytes();
    serde_json::from_slice(&bytes).unwrap()
}

/// Replace the manifest under `prefix`, as someone who may write the bucket would.
fn put_manifest(rt: &tokio::runtime::Runtime, bucket: &str, prefix: &str, manifest: &serde_json::Value) {
    let body = ByteStream::from(serde_json::to_vec_pretty(manifest).unwrap());
    let put = client(rt).put_object().bucket(bucket).key(format!("{prefix}/current.json")).body(body);
    rt.block_on(put.send()).unwrap();
}

/// Delete every component under `prefix`: what runs after this was refused before download.
fn delete_components(rt: &tokio::runtime::Runtime, bucket: &str, prefix: &str) {
    let listed = rt.block_on(client(rt).list_objects_v2().bucket(bucket).prefix(prefix).send()).unwrap();
    for key in listed.contents().iter().filter_map(|o| o.key()).filter(|k| k.ends_with(".wasm")) {
        rt.block_on(client(rt).delete_object().bucket(bucket).key(key).send()).unwrap();
    }
}

/// `value` with one bit of its signature (base64 DER) flipped.
fn flip_signature_bit(signature: &mut serde_json::Value) {
    let mut der = BASE64.decode(signature["value"].as_str().unwrap()).unwrap();
    let middle = der.len() / 2;
    der[middle] ^= 1;
    signature["value"] = BASE64.encode(der).into();
}

#[test]
fn a_signed_deployment_runs_and_every_command_says_who_signed_it() {
    let rt = runtime();
    let keys = tempfile::tempdir().unwrap();
    let (private, public, id) = keygen(keys.path(), "ci.key");
    let bucket = bucket(&rt, "signed");
    let target = format!("s3://{bucket}/max");
    let said = ok(&deploy(&component("sliding_window_max"), &target, Some(&private), &["--set", "slide=5s"]));
    let sequence = manifest(&rt, &bucket, "max")["sequence"].as_u64().unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    assert!(sequence.abs_diff(now) < 60, "the first sequence number is the clock's: {sequence}");
    assert!(said.contains(&format!("sequence {sequence}, signed by key {id} (file:ci.key)")), "{said}");

    let input = trade_lines(5_000, weir_producer::Tickers::Default);
    let (out, lines) = run(&target, &[&public], &input);
    ok(&out);
    assert_eq!(per_ticker(lines.iter().map(String::as_str)), native_per_ticker(&input, &[("slide", "5s")]));

    let checked = ok(&weir_s3(&["check", &target, "--trust", public.to_str().unwrap()]));
    assert!(
        checked.contains(&format!("sequence {sequence}, signed by key {id} (file:ci.key); verified")),
        "{checked}"
    );
    let status = ok(&weir_s3(&["deploy", "--status", &target, "--trust", public.to_str().unwrap()]));
    assert!(status.contains(&format!("signed by key {id} (file:ci.key); a weir trusting")), "{status}");
    assert!(status.contains("runs it"), "{status}");
    let listed = ok(&weir_s3(&["operators", "list", &target]));
    assert!(listed.lines().nth(1).is_some_and(|l| l.contains(&format!("key {id}"))), "{listed}");

    // An unsigned deploy says what --trust will make of it.
    let said = ok(&deploy(&component("sliding_window_max"), &target, None, &[]));
    assert!(said.contains("unsigned (a weir run with --trust refuses it"), "{said}");
    let next = manifest(&rt, &bucket, "max")["sequence"].as_u64().unwrap();
    assert!(next > sequence, "{next} follows {sequence}");
    let status = ok(&weir_s3(&["deploy", "--status", &target]));
    assert!(status.contains("\n  unsigned; not checked"), "{status}");
}

#[test]
fn each_bad_deployment_is_refused_at_start_with_its_reason_before_anything_is_downloaded() {
    let rt = runtime();
    let bucket = bucket(&rt, "refused");
    let keys = tempfile::tempdir().unwrap();
    let (trusted, public, _) = keygen(keys.path(), "trusted");
    let (untrusted, _, other_id) = keygen(keys.path(), "other");
    let max = component("sliding_window_max");
    let input = trade_lines(100, weir_producer::Tickers::Default);

    // Each case: a deployment under its own prefix, changed as the case says, its components
    // then deleted; the reason in the error and the words that name it.
    type Tamper = fn(&mut serde_json::Value);
    let cases: [(&str, Option<&Path>, Tamper, &str, &str); 5] = [
        ("unsigned", None, |_| {}, "unsigned", "is not signed"),
        ("untrusted", Some(&untrusted), |_| {}, "untrusted-key", "which is not trusted"),
        (
            "settings-byte",
            Some(&trusted),
            |m| m["settings"]["slide"] = "6s".into(),
            "bad-signature",
            "changed after signing",
        ),
        (
            "signature-bit",
            Some(&trusted),
            |m| flip_signature_bit(&mut m["signature"]),
            "bad-signature",
            "changed after signing",
        ),
        (
            "swapped-digest",
            Some(&trusted),
            |m| m["digest"] = Digest::of(b"another component").to_string().into(),
            "bad-signature",
            "changed after signing",
        ),
    ];
    for (prefix, key, tamper, reason, words) in cases {
        let target = format!("s3://{bucket}/{prefix}");
        ok(&deploy(&max, &target, key, &["--set", "slide=5s"]));
        let mut m = manifest(&rt, &bucket, prefix);
        tamper(&mut m);
        put_manifest(&rt, &bucket, prefix, &m);
        delete_components(&rt, &bucket, prefix);

        let (out, lines) = run(&target, &[&public], &input);
        let err = failed(&out);
        assert!(err.contains(&format!("is refused ({reason})")) && err.contains(words), "{prefix}: {err}");
        assert!(lines.is_empty(), "{prefix}: nothing ran");
        if reason == "untrusted-key" {
            assert!(err.contains(&format!("signed by key {other_id} (file:other)")), "{err}");
        }
    }

    // A component from a file has no signature to check.
    let (out, _) = run(max.to_str().unwrap(), &[&public], &input);
    let err = failed(&out);
    assert!(err.contains("--trust runs only signed deployments"), "{err}");
}

#[test]
fn a_running_weir_keeps_its_version_through_every_refused_one() {
    let rt = runtime();
    let bucket = bucket(&rt, "running");
    let target = format!("s3://{bucket}/op");
    let dir = tempfile::tempdir().unwrap();
    let (trusted, public, _) = keygen(dir.path(), "trusted");
    let (untrusted, _, _) = keygen(dir.path(), "other");
    let v1 = component("sliding_window_max");
    let v2 = same_code_new_digest(&v1, dir.path());
    ok(&deploy(&v1, &target, Some(&trusted), &[]));
    let first = manifest(&rt, &bucket, "op");

    let input = trade_lines(40_000, weir_producer::Tickers::Synthetic(20));
    let half = half_way(&input);
    let mut weir = crate::swap::start(&target, &["--trust", public.to_str().unwrap()]);
    weir.write(&input[..half]);
    weir.wait_until("windows out of the first half", |out, _| !out.is_empty());

    // A signed new version is switched to.
    ok(&deploy(&v2, &target, Some(&trusted), &[]));
    weir.wait_for_metric(SWAPS, |n| n >= 1.0, WITHIN);
    let running = manifest(&rt, &bucket, "op");

    // Then, one after the other: the first signed version put back, an unsigned one, one signed
    // by an unknown key, the running entry with a setting changed. Each refused for its reason.
    put_manifest(&rt, &bucket, "op", &first);
    weir.wait_for_metric(&refused("replayed"), |n| n >= 1.0, WITHIN);
    ok(&deploy(&v1, &target, None, &[]));
    weir.wait_for_metric(&refused("unsigned"), |n| n >= 1.0, WITHIN);
    ok(&deploy(&v1, &target, Some(&untrusted), &[]));
    weir.wait_for_metric(&refused("untrusted-key"), |n| n >= 1.0, WITHIN);
    let mut changed = running.clone();
    changed["settings"]["slide"] = "5s".into();
    put_manifest(&rt, &bucket, "op", &changed);
    weir.wait_for_metric(&refused("bad-signature"), |n| n >= 1.0, WITHIN);
    assert_eq!(weir.metric(SWAPS), 1.0, "only the signed new version was switched to");

    // The next real deploy, made over the manifest as it stands, is taken: its sequence number
    // comes from the clock as well as from the manifest put back.
    ok(&deploy(&v1, &target, Some(&trusted), &[]));
    weir.wait_for_metric(SWAPS, |n| n >= 2.0, WITHIN);
    weir.write(&input[half..]);
    assert_eq!(weir.metric(&refused("unloadable")), 0.0, "nothing refused was downloaded");
    let (status, out, log) = weir.finish();
    assert!(status.success(), "{log}");
    assert!(
        per_ticker(out.iter().map(String::as_str)) == native_per_ticker(&input, &[]),
        "every window as the signed versions make them"
    );
}

#[test]
fn keys_rotate_by_trusting_old_and_new_then_dropping_the_old() {
    let rt = runtime();
    let target = format!("s3://{}/rotate", bucket(&rt, "rotate"));
    let dir = tempfile::tempdir().unwrap();
    let (old, old_public, _) = keygen(dir.path(), "old");
    let (new, new_public, new_id) = keygen(dir.path(), "new");
    let max = component("sliding_window_max");
    let input = trade_lines(2_000, weir_producer::Tickers::Default);
    let expected = native_per_ticker(&input, &[]);
    let runs = |trust: &[&Path]| {
        let (out, lines) = run(&target, trust, &input);
        (out, per_ticker(lines.iter().map(String::as_str)))
    };

    ok(&deploy(&max, &target, Some(&old), &[]));
    let (out, got) = runs(&[&old_public, &new_public]);
    ok(&out);
    assert_eq!(got, expected, "signed by the old key, both trusted");
    ok(&deploy(&max, &target, Some(&new), &[]));
    let (out, got) = runs(&[&old_public, &new_public]);
    ok(&out);
    assert_eq!(got, expected, "signed by the new key, both trusted");

    // The old key dropped (through WEIR_TRUST, as a task definition would give it).
    let trust_new = |target: &str| {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("in.jsonl"), &input).unwrap();
        weir()
            .env("AWS_ENDPOINT_URL_S3", s3_endpoint())
            .env("WEIR_TRUST", &new_public)
            .current_dir(dir.path())
            .args(["run", "--source", "in.jsonl", "--sink", "-", "--operator", target])
            .output()
            .unwrap()
    };
    ok(&trust_new(&target));
    ok(&deploy(&max, &target, Some(&old), &[]));
    let err = failed(&trust_new(&target));
    assert!(err.contains("(untrusted-key)") && err.contains(&format!("trusted: {new_id}")), "{err}");
}

#[test]
fn a_kms_key_signs_and_is_trusted_through_kms_or_as_an_exported_public_key() {
    let rt = runtime();
    let target = format!("s3://{}/kms", bucket(&rt, "kms"));
    let kms = rt.block_on(async {
        let config = weir_aws::config(None).await;
        aws_sdk_kms::Client::new(&config)
    });
    let key = rt
        .block_on(
            kms.create_key()
                .key_spec(aws_sdk_kms::types::KeySpec::EccNistP256)
                .key_usage(aws_sdk_kms::types::KeyUsageType::SignVerify)
                .send(),
        )
        .unwrap();
    let key_id = key.key_metadata().unwrap().key_id().to_string();
    let alias = format!("alias/weir-{}", &key_id[..8]);
    rt.block_on(kms.create_alias().alias_name(&alias).target_key_id(&key_id).send()).unwrap();
    let kms_key = format!("kms://{alias}");

    let said = ok(&weir_s3(&[
        "deploy",
        component("sliding_window_max").to_str().unwrap(),
        &target,
        "--sign",
        &kms_key,
    ]));
    assert!(said.contains("signed by key") && said.contains("(kms:"), "{said}");
    assert!(said.contains(&key_id), "the signer names the KMS key: {said}");

    let input = trade_lines(2_000, weir_producer::Tickers::Default);
    let expected = native_per_ticker(&input, &[]);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("in.jsonl"), &input).unwrap();
    let run_trusting = |trust: &str| {
        let out = weir()
            .env("AWS_ENDPOINT_URL_S3", s3_endpoint())
            .current_dir(dir.path())
            .args(["run", "--source", "in.jsonl", "--sink", "-", "--operator", &target, "--trust", trust])
            .output()
            .unwrap();
        let text = ok(&out);
        per_ticker(text.lines())
    };
    assert_eq!(run_trusting(&kms_key), expected, "trusted through KMS (GetPublicKey at start)");

    // The same key's public half exported once: verified offline, no KMS call.
    let der = rt.block_on(kms.get_public_key().key_id(&alias).send()).unwrap();
    let public = p256::ecdsa::VerifyingKey::from_public_key_der(der.public_key().unwrap().as_ref()).unwrap();
    let pem = public.to_public_key_pem(LineEnding::LF).unwrap();
    let pem_file = dir.path().join("kms.pub");
    std::fs::write(&pem_file, pem).unwrap();
    assert_eq!(run_trusting(pem_file.to_str().unwrap()), expected, "trusted as a file");

    // A key that cannot sign is refused before anything is uploaded.
    let err = failed(&weir_s3(&[
        "deploy",
        component("sliding_window_max").to_str().unwrap(),
        &format!("s3://{}/nokey", bucket(&rt, "nokey")),
        "--sign",
        "kms://alias/does-not-exist",
    ]));
    assert!(err.contains("KMS key alias/does-not-exist does not exist"), "{err}");
}

#[test]
fn a_restart_refuses_an_older_signed_entry_put_back_while_it_was_stopped() {
    use util::kinesis::{create_stream, endpoint, produce};
    let rt = runtime();
    let bucket = bucket(&rt, "restart");
    let target = format!("s3://{bucket}/op");
    let dir = tempfile::tempdir().unwrap();
    let (key, public, _) = keygen(dir.path(), "key");
    let v1 = component("sliding_window_max");
    let v2 = same_code_new_digest(&v1, dir.path());
    ok(&deploy(&v1, &target, Some(&key), &[]));
    let first = manifest(&rt, &bucket, "op");
    ok(&deploy(&v2, &target, Some(&key), &[]));
    let second = manifest(&rt, &bucket, "op")["sequence"].as_u64().unwrap();

    let (trades, results) = (create_stream("signed-trades", 1), create_stream("signed-results", 1));
    produce(&endpoint(), &trades, 1_000, 5, T0);
    let checkpoints = dir.path().join("checkpoints");
    let run_to_end = || {
        weir()
            .env("AWS_ENDPOINT_URL_KINESIS", endpoint())
            .env("AWS_ENDPOINT_URL_S3", s3_endpoint())
            .args(["run", "--source", &format!("kinesis://{trades}"), "--start-position", "trim-horizon"])
            .args(["--sink", &format!("kinesis://{results}"), "--until-idle", "2s"])
            .args(["--checkpoint", checkpoints.to_str().unwrap(), "--operator", &target])
            .args(["--trust", public.to_str().unwrap()])
            .output()
            .unwrap()
    };
    ok(&run_to_end());
    let latest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(checkpoints.join("LATEST")).unwrap()).unwrap();
    assert_eq!(
        latest["operator"].as_str(),
        Some(Digest::of(&std::fs::read(&v2).unwrap()).to_string().as_str())
    );

    // The first entry, validly signed, put back while weir was stopped.
    put_manifest(&rt, &bucket, "op", &first);
    let err = failed(&run_to_end());
    assert!(
        err.contains("is refused (replayed)") && err.contains(&format!("ran deployment sequence {second}")),
        "{err}"
    );

    // A new signed deploy (of the first component, if that is what is wanted) goes on.
    ok(&deploy(&v1, &target, Some(&key), &[]));
    ok(&run_to_end());
}

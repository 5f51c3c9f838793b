//! What signed deployments cost:
//!
//! - verifying one version: `Trust::check` of a signed manifest entry of the reference operator
//!   (its statement encoded, the ECDSA P-256 signature checked, the sequence compared), what
//!   weir does once per new version before it downloads anything; beside it, the statement's
//!   encoding alone and reading a trusted key from its PEM file (once per start);
//! - under `scripts/with-emulators`: the start of `weir run --operator s3://... --count 1` (the
//!   process from spawn to exit, the compiled cache warm, moto as S3 and KMS) of a version
//!   signed by a KMS key, without `--trust`, with `--trust FILE` (the key's public half
//!   exported) and with `--trust kms://KEY` (one GetPublicKey to moto), the runs interleaved
//!   so the three medians compare like with like.
//!
//! `scripts/with-emulators cargo bench --profile dev -p weir --bench signing` (without the
//! emulators only the first part runs). Prints Markdown for BENCHMARKS.md.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use common::median;
use p256::pkcs8::{DecodePublicKey, EncodePublicKey, LineEnding};
use weir::artifact::Artifact;
use weir::deployment::signature::signature;
use weir::deployment::{Deployment, LocalKey, PublicKey, Trust};

/// The reference operator's manifest entry, signed by `key`.
fn signed_entry(key: &LocalKey) -> Deployment {
    let artifact = Artifact::embedded_default();
    let mut d = Deployment {
        digest: artifact.digest,
        size: artifact.bytes.len() as u64,
        contract: weir_contract::CONTRACT.to_string(),
        name: Some("sliding-window-max".into()),
        version: Some(env!("CARGO_PKG_VERSION").into()),
        deployed_at: jiff::Timestamp::now(),
        settings: [("window".to_string(), "60s".to_string()), ("slide".into(), "10s".into())].into(),
        rollback_of: None,
        grouping: Some("JSON field \"TICKER\"".into()),
        sequence: 42,
        signature: None,
    };
    let message = d.statement(key.public().id()).expect("statement");
    d.signature = Some(signature(key.public(), "file:bench".into(), &key.sign(&message)));
    d
}

/// The median over `rounds` of the mean time of `f` over `n` calls, in microseconds.
fn per_call(rounds: usize, n: usize, mut f: impl FnMut()) -> f64 {
    let samples = (0..rounds)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..n {
                f();
            }
            start.elapsed().as_secs_f64() * 1e6 / n as f64
        })
        .collect();
    median(samples)
}

fn verification(dir: &Path) {
    let path = dir.join("bench.key");
    LocalKey::generate(&path).expect("keygen");
    let key = LocalKey::load(&path).expect("key");
    let entry = signed_entry(&key);
    let public_path = LocalKey::public_path(&path);
    let trust = Trust::new(vec![PublicKey::from_pem_file(&public_path).expect("public key")]);
    assert!(trust.check(&entry).is_ok(), "the entry verifies");
    let check = per_call(7, 2_000, || {
        std::hint::black_box(trust.check(std::hint::black_box(&entry)).is_ok());
    });
    let statement = per_call(7, 20_000, || {
        std::hint::black_box(entry.statement(key.public().id()).map(|m| m.len()).unwrap_or(0));
    });
    let read_key = per_call(7, 500, || {
        std::hint::black_box(PublicKey::from_pem_file(&public_path).is_ok());
    });
    println!("| step | µs (median of 7 rounds) |");
    println!("| --- | ---: |");
    println!("| verify one version (`Trust::check`: statement, ECDSA P-256 verify, sequence) | {check:.1} |");
    println!("| of which the statement's encoding | {statement:.2} |");
    println!("| read a trusted key from its PEM file (once per start) | {read_key:.1} |");
}

/// Seconds from spawn to exit of `weir ARGS`, which must succeed.
fn timed(weir: &Path, cache: &Path, args: &[&str]) -> f64 {
    let start = Instant::now();
    let out = Command::new(weir).env("WEIR_CACHE_DIR", cache).env("WEIR_LOG", "error").args(args).output();
    let elapsed = start.elapsed().as_secs_f64();
    match out {
        Ok(out) if out.status.success() => elapsed,
        Ok(out) => panic!("weir {args:?} failed: {}", String::from_utf8_lossy(&out.stderr)),
        Err(e) => panic!("weir did not start: {e}"),
    }
}

fn start_time(dir: &Path) {
    let weir = Path::new(env!("CARGO_BIN_EXE_weir"));
    let cache = dir.join("cache");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let bucket = format!("signing-bench-{}", common::kinesis::rand_suffix() % 1_000_000_007);
    // A KMS key signs; its public half, exported to a PEM file, is the trusted file.
    let (kms_key, public_der) = rt.block_on(async {
        let config = weir_aws::config(None).await;
        let s3 = aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(&config).force_path_style(true).build(),
        );
        s3.create_bucket().bucket(&bucket).send().await.expect("bucket");
        let kms = aws_sdk_kms::Client::new(&config);
        let key = kms
            .create_key()
            .key_spec(aws_sdk_kms::types::KeySpec::EccNistP256)
            .key_usage(aws_sdk_kms::types::KeyUsageType::SignVerify)
            .send()
            .await
            .expect("KMS key");
        let id = key.key_metadata().map(|m| m.key_id().to_string()).expect("key id");
        let public = kms.get_public_key().key_id(&id).send().await.expect("public key");
        (id, public.public_key().map(|b| b.as_ref().to_vec()).expect("public key bytes"))
    });
    let pem = p256::ecdsa::VerifyingKey::from_public_key_der(&public_der)
        .and_then(|k| k.to_public_key_pem(LineEnding::LF))
        .expect("PEM");
    let public = dir.join("kms.pub");
    std::fs::write(&public, pem).expect("public key file");
    let component = dir.join("sliding_window_max.wasm");
    std::fs::write(&component, Artifact::embedded_default().bytes).expect("component");
    let target = format!("s3://{bucket}/max");
    let kms_trust = format!("kms://{kms_key}");
    timed(weir, &cache, &["deploy", component.to_str().unwrap_or_default(), &target, "--sign", &kms_trust]);
    let public = public.to_str().unwrap_or_default();
    let run = ["run", "--operator", &target, "--count", "1", "--sink", "/dev/null"];
    let variants: [(&str, &[&str]); 3] = [
        ("no --trust", &[]),
        ("--trust FILE (the KMS key's public half, exported)", &["--trust", public]),
        ("--trust kms://KEY (one GetPublicKey, to moto)", &["--trust", &kms_trust]),
    ];
    let args = |extra: &[&str]| -> Vec<String> { run.iter().chain(extra).map(|s| s.to_string()).collect() };
    let call =
        |extra: &[&str]| timed(weir, &cache, &args(extra).iter().map(String::as_str).collect::<Vec<_>>());
    call(&[]); // compiles into the cache
    let mut samples = vec![Vec::new(); variants.len()];
    for _ in 0..15 {
        for (i, (_, extra)) in variants.iter().enumerate() {
            samples[i].push(call(extra));
        }
    }
    let medians: Vec<f64> = samples.into_iter().map(median).collect();
    println!();
    println!(
        "| `weir run --operator s3://... --count 1`, spawn to exit | ms (median of 15) | vs no --trust |"
    );
    println!("| --- | ---: | ---: |");
    for ((name, _), m) in variants.iter().zip(&medians) {
        println!("| {name} | {:.1} | {:.2}x |", m * 1e3, m / medians[0]);
    }
}

fn main() {
    let dir = tempfile::tempdir().expect("temporary directory");
    verification(dir.path());
    if std::env::var("AWS_ENDPOINT_URL_S3").is_ok() && std::env::var("AWS_ENDPOINT_URL_KMS").is_ok() {
        start_time(dir.path());
    } else {
        eprintln!("(start times left out: run under scripts/with-emulators)");
    }
}

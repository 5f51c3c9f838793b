//! Helpers for tests against the S3 emulator (moto_server) that `scripts/with-emulators`
//! starts: its endpoint, a client, buckets with unique names.

use std::path::Path;
use std::process::Output;

use aws_sdk_s3::Client;

/// moto_server's endpoint.
pub fn s3_endpoint() -> String {
    std::env::var("AWS_ENDPOINT_URL_S3").unwrap_or_else(|_| {
        panic!("AWS_ENDPOINT_URL_S3 is not set: run these tests through scripts/test or scripts/with-emulators, which start moto_server")
    })
}

/// A client for it (buckets addressed by path, as emulators need).
pub fn client(rt: &tokio::runtime::Runtime) -> Client {
    let _ = s3_endpoint();
    rt.block_on(async {
        let config = weir_aws::config(None).await;
        Client::from_conf(aws_sdk_s3::config::Builder::from(&config).force_path_style(true).build())
    })
}

/// A new bucket with a name unique to this test.
pub fn bucket(rt: &tokio::runtime::Runtime, prefix: &str) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    let name = format!("{prefix}-{}-{}", std::process::id(), nanos % 1_000_000_007);
    rt.block_on(client(rt).create_bucket().bucket(&name).send()).unwrap();
    name
}

/// `weir ARGS` against the emulator.
pub fn weir_s3(args: &[&str]) -> Output {
    super::weir().env("AWS_ENDPOINT_URL_S3", s3_endpoint()).args(args).output().unwrap()
}

/// `weir deploy FILE TARGET EXTRA...` against the emulator.
pub fn deploy(file: &Path, target: &str, extra: &[&str]) -> Output {
    super::weir()
        .env("AWS_ENDPOINT_URL_S3", s3_endpoint())
        .args(["deploy", file.to_str().unwrap(), target])
        .args(extra)
        .output()
        .unwrap()
}

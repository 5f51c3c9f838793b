//! A lease group for the tests and benches that run `weir run --lease-table` workers.

use std::process::Command;

use super::kinesis::runtime;
use super::weir;

/// One job's streams, lease table and checkpoint location (a fresh S3 bucket).
pub struct LeaseGroup {
    pub endpoint: String,
    pub trades: String,
    pub results: String,
    pub table: String,
    pub checkpoints: String,
    pub started: usize,
}

impl LeaseGroup {
    /// Workers reading `trades` at Kinesis `endpoint` into `results`.
    pub fn new(endpoint: String, trades: String, results: String) -> Self {
        let bucket = super::s3::bucket(&runtime(), "leases");
        LeaseGroup {
            table: format!("{trades}-leases"),
            checkpoints: format!("s3://{bucket}/checkpoints"),
            endpoint,
            trades,
            results,
            started: 0,
        }
    }

    /// `weir run` for the next worker, named `w<N>` in the order started: source, sink,
    /// checkpoints and lease table set; more arguments may follow.
    pub fn run(&mut self) -> Command {
        self.started += 1;
        let mut cmd = weir();
        cmd.env("AWS_ENDPOINT_URL_KINESIS", &self.endpoint)
            .arg("run")
            .args(["--source", &format!("kinesis://{}", self.trades)])
            .args(["--sink", &format!("kinesis://{}", self.results)])
            .args(["--checkpoint", &self.checkpoints, "--lease-table", &self.table])
            .args(["--worker-id", &format!("w{}", self.started)]);
        cmd
    }
}

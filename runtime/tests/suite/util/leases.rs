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

    /// The job's lease table, opened (created if missing) as a worker opens it: for a test
    /// that plays another worker through it.
    pub async fn open_table(&self) -> weir::lease::LeaseTable {
        let table = weir::lease::LeaseTable::connect(&self.table, None).await;
        table.open(&format!("kinesis://{}", self.trades), &self.checkpoints).await.unwrap();
        table
    }

    /// `weir leases --json`: per shard its row.
    pub fn leases(&self) -> Vec<serde_json::Value> {
        let out = self.try_leases();
        assert!(out.status.success(), "weir leases failed: {}", String::from_utf8_lossy(&out.stderr));
        Self::rows(&out)
    }

    /// `weir leases --json` as it ran (it fails until the first worker has made the table).
    pub fn try_leases(&self) -> std::process::Output {
        weir()
            .env("AWS_ENDPOINT_URL_KINESIS", &self.endpoint)
            .args(["leases", &format!("kinesis://{}", self.trades), "--lease-table", &self.table, "--json"])
            .output()
            .unwrap()
    }

    /// The shard rows of `weir leases --json` output.
    pub fn rows(out: &std::process::Output) -> Vec<serde_json::Value> {
        String::from_utf8(out.stdout.clone())
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .filter(|row| row.get("shard").is_some())
            .collect()
    }
}

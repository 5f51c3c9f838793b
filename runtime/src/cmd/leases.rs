//! `weir leases`: a lease group at a glance, from its table and the stream: per shard the
//! owner, the lease counter, whether it is being read, waits for its parents, is free or is
//! finished, how far its last checkpoint is behind the shard's newest record
//! (`weir_kinesis::reader::millis_behind`), and when that checkpoint was taken; then each
//! worker and when it last renewed. Table reads are retried while DynamoDB fails transiently.

use std::collections::BTreeMap;

use anyhow::{Result, bail};
use serde::Serialize;
use weir::lease::{LeaseState, LeaseTable};
use weir::location::Location;
use weir_aws::{self as aws, Policy, Service};
use weir_kinesis::{Kinesis, Stream, reader};

use crate::cli::LeasesArgs;

#[derive(Serialize)]
struct Row {
    shard: String,
    owner: Option<String>,
    counter: u64,
    state: &'static str,
    behind_ms: Option<i64>,
    checkpoint_at: Option<String>,
    /// The object holding its last checkpoint.
    checkpoint: Option<String>,
    position: Option<String>,
}

#[derive(Serialize)]
struct WorkerRow {
    worker: String,
    leases: usize,
    renewed_at: String,
}

/// `weir leases`.
pub async fn leases(args: LeasesArgs) -> Result<()> {
    let Location::Kinesis(name) = &args.stream else {
        bail!("weir leases takes the stream the group reads: kinesis://NAME, not {}", args.stream);
    };
    let stream = Stream(name.clone());
    let region = args.aws.region.as_deref();
    let table = LeaseTable::connect(&args.lease_table, region).await;
    let what = format!("read the lease table {}", args.lease_table);
    let group = weir_aws::retry(Service::DynamoDb, Policy::READ, &what, || table.group()).await?;
    if group.source != stream.to_string() {
        bail!("the lease table {} serves {}, not {stream}", args.lease_table, group.source);
    }
    let leases = weir_aws::retry(Service::DynamoDb, Policy::READ, &what, || table.leases()).await?;
    let kinesis = Kinesis::new(&aws::config(region).await);
    let by_shard: BTreeMap<&str, &weir::lease::Lease> =
        leases.iter().map(|l| (l.shard.as_str(), l)).collect();
    let mut rows = Vec::new();
    for lease in &leases {
        let state = LeaseState::of(lease, &group, &by_shard).as_str();
        let behind_ms = if lease.finished {
            None
        } else {
            // A shard Kinesis cannot answer for now shows no figure rather than failing the table.
            reader::millis_behind(&kinesis, &stream, &lease.shard, lease.position.as_deref())
                .await
                .ok()
                .flatten()
        };
        rows.push(Row {
            shard: lease.shard.clone(),
            owner: lease.owner.clone(),
            counter: lease.counter,
            state,
            behind_ms,
            checkpoint_at: lease.checkpoint_at.clone(),
            checkpoint: lease.checkpoint.as_ref().map(|name| format!("{}/{name}", group.checkpoints)),
            position: lease.position.clone(),
        });
    }
    let workers: Vec<WorkerRow> = group
        .workers
        .iter()
        .map(|(worker, member)| WorkerRow {
            worker: worker.clone(),
            leases: leases.iter().filter(|l| l.owner.as_ref() == Some(worker) && !l.finished).count(),
            renewed_at: member.renewed_at.clone(),
        })
        .collect();
    if args.json {
        for row in &rows {
            println!("{}", serde_json::to_string(row)?);
        }
        for worker in &workers {
            println!("{}", serde_json::to_string(worker)?);
        }
        return Ok(());
    }
    println!("{:<24} {:<40} {:>7} {:<9} {:>10} CHECKPOINT", "SHARD", "OWNER", "COUNTER", "STATE", "BEHIND");
    for row in &rows {
        println!(
            "{:<24} {:<40} {:>7} {:<9} {:>10} {}",
            row.shard,
            row.owner.as_deref().unwrap_or("-"),
            row.counter,
            row.state,
            row.behind_ms.map_or("-".to_string(), |ms| format!("{:.1} s", ms as f64 / 1e3)),
            row.checkpoint_at.as_deref().unwrap_or("never")
        );
    }
    println!();
    println!("{:<40} {:>6} RENEWED", "WORKER", "LEASES");
    for worker in &workers {
        println!("{:<40} {:>6} {}", worker.worker, worker.leases, worker.renewed_at);
    }
    Ok(())
}

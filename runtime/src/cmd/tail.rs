//! `weir tail`: a Kinesis stream's records as JSON lines, every shard read concurrently.
//!
//! Without `--follow` each shard is read from the start position until it is caught up (an
//! empty reply with nothing behind) or closed, and the command ends when every shard has.
//! `--efo-consumer` reads through enhanced fan-out instead of polling.

use std::io::Write;

use anyhow::{Context, Result, bail};
use base64::Engine as _;
use serde::Serialize;
use tokio::sync::mpsc;
use weir::location::Location;
use weir_aws as aws;
use weir_kinesis::{Consumer, FanOut, Kinesis, ShardFeed, StartPosition, Stream, shards};

use crate::cli::{TailArgs, TailFrom};

#[derive(Serialize)]
struct Line {
    shard_id: String,
    sequence_number: String,
    partition_key: String,
    approximate_arrival_timestamp: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    data_base64: Option<String>,
}

/// `weir tail`.
pub async fn tail(args: TailArgs) -> Result<()> {
    let Location::Kinesis(name) = &args.stream else {
        bail!("weir tail reads Kinesis streams: give kinesis://NAME or a stream ARN, not {}", args.stream);
    };
    let stream = Stream(name.clone());
    let kinesis = Kinesis::new(&aws::config(args.aws.region.as_deref()).await);
    let shards = shards::list_shards(&kinesis, &stream).await?;
    let start = match args.from {
        TailFrom::TrimHorizon => StartPosition::TrimHorizon,
        TailFrom::Latest => StartPosition::Latest,
    };
    let follow = args.follow || args.from == TailFrom::Latest;
    let fan_out = match &args.efo_consumer {
        Some(name) => Some(FanOut::new(Consumer::register(&kinesis, &stream, name).await?.arn)),
        None => None,
    };
    let (tx, mut rx) = mpsc::channel::<Line>(1024);
    let mut tasks = tokio::task::JoinSet::new();
    for shard in shards {
        let reader = ShardFeed::new(
            kinesis.clone(),
            stream.clone(),
            shard.id,
            start.clone(),
            args.poll_interval,
            fan_out.as_ref(),
        );
        tasks.spawn(read_shard(reader, follow, tx.clone()));
    }
    drop(tx);
    let mut out = std::io::stdout().lock();
    let mut printed = 0u64;
    while let Some(line) = rx.recv().await {
        serde_json::to_writer(&mut out, &line).context("writing to standard output")?;
        out.write_all(b"\n").context("writing to standard output")?;
        printed += 1;
        if args.limit.is_some_and(|l| printed >= l) {
            break;
        }
        if rx.is_empty() {
            out.flush().context("writing to standard output")?;
        }
    }
    out.flush().context("writing to standard output")?;
    drop(rx);
    while let Some(done) = tasks.join_next().await {
        match done {
            Ok(Ok(())) => {}
            Ok(Err(e)) if args.limit.is_some_and(|l| printed >= l) => drop(e),
            Ok(Err(e)) => return Err(e),
            Err(e) => bail!("a shard reader failed: {e}"),
        }
    }
    Ok(())
}

async fn read_shard(mut reader: ShardFeed, follow: bool, tx: mpsc::Sender<Line>) -> Result<()> {
    let shard = reader.shard().to_string();
    loop {
        let reply = reader.next().await?;
        let caught_up = reply.caught_up();
        for r in reply.records {
            let bytes = r.data.as_ref();
            let text = std::str::from_utf8(bytes).ok();
            let line = Line {
                shard_id: shard.clone(),
                approximate_arrival_timestamp: r.approximate_arrival_timestamp.map(|t| t.to_string()),
                data: text.map(str::to_string),
                data_base64: text.is_none().then(|| base64::engine::general_purpose::STANDARD.encode(bytes)),
                sequence_number: r.sequence_number,
                partition_key: r.partition_key.unwrap_or_default(),
            };
            if tx.send(line).await.is_err() {
                return Ok(());
            }
        }
        if reply.ended || (caught_up && !follow) {
            return Ok(());
        }
    }
}

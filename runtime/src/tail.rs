//! `weir tail`: a Kinesis stream's records as JSON lines, every shard read concurrently.
//!
//! Without `--follow` each shard is read from the start position until it is caught up (an
//! empty reply with nothing behind) or closed, and the command ends when every shard has.

use std::io::Write;

use anyhow::{Context, Result, bail};
use aws_sdk_kinesis::Client;
use aws_sdk_kinesis::types::ShardIteratorType;
use base64::Engine as _;
use serde::Serialize;
use tokio::sync::mpsc;

use crate::cli::{TailArgs, TailFrom};
use crate::location::Location;
use weir_kinesis::{Stream, aws};

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

/// Run `weir tail`.
pub async fn tail(args: TailArgs) -> Result<()> {
    let Location::Kinesis(name) = &args.stream else {
        bail!("weir tail reads Kinesis streams: give kinesis://NAME or a stream ARN, not {}", args.stream);
    };
    let stream = Stream(name.clone());
    let config = aws::config(args.aws.region.as_deref()).await;
    let endpoint = aws::kinesis_endpoint(&config);
    let client = Client::new(&config);
    let shards = list_shards(&client, &stream, &endpoint).await?;
    let follow = args.follow || args.from == TailFrom::Latest;
    let (tx, mut rx) = mpsc::channel::<Line>(1024);
    let mut tasks = tokio::task::JoinSet::new();
    for shard in shards {
        let (client, stream, endpoint, tx) = (client.clone(), stream.clone(), endpoint.clone(), tx.clone());
        let (from, poll) = (args.from, args.poll_interval);
        tasks.spawn(async move { read_shard(client, stream, endpoint, shard, from, follow, poll, tx).await });
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

async fn list_shards(client: &Client, stream: &Stream, endpoint: &str) -> Result<Vec<String>> {
    let mut shards = Vec::new();
    let mut next: Option<String> = None;
    loop {
        let request = match &next {
            Some(token) => client.list_shards().next_token(token),
            None => client.list_shards().set_stream_name(stream.name()).set_stream_arn(stream.arn()),
        };
        let page = request.send().await.map_err(|e| anyhow::anyhow!(aws::explain(&e, stream, endpoint)))?;
        shards.extend(page.shards().iter().map(|s| s.shard_id().to_string()));
        next = page.next_token().map(str::to_string);
        if next.is_none() {
            return Ok(shards);
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn read_shard(
    client: Client,
    stream: Stream,
    endpoint: String,
    shard: String,
    from: TailFrom,
    follow: bool,
    poll: std::time::Duration,
    tx: mpsc::Sender<Line>,
) -> Result<()> {
    let kind = match from {
        TailFrom::TrimHorizon => ShardIteratorType::TrimHorizon,
        TailFrom::Latest => ShardIteratorType::Latest,
    };
    let mut iterator = client
        .get_shard_iterator()
        .set_stream_name(stream.name())
        .set_stream_arn(stream.arn())
        .shard_id(&shard)
        .shard_iterator_type(kind)
        .send()
        .await
        .map_err(|e| anyhow::anyhow!(aws::explain(&e, &stream, &endpoint)))?
        .shard_iterator()
        .map(str::to_string);
    while let Some(current) = iterator {
        let reply = match client.get_records().shard_iterator(&current).limit(10_000).send().await {
            Ok(reply) => reply,
            Err(e) if aws::is_transient(&e) => {
                tokio::time::sleep(poll).await;
                iterator = Some(current);
                continue;
            }
            Err(e) => bail!(aws::explain(&e, &stream, &endpoint)),
        };
        let records = reply.records();
        for r in records {
            let bytes = r.data().as_ref();
            let text = std::str::from_utf8(bytes).ok();
            let line = Line {
                shard_id: shard.clone(),
                sequence_number: r.sequence_number().to_string(),
                partition_key: r.partition_key().unwrap_or_default().to_string(),
                approximate_arrival_timestamp: r.approximate_arrival_timestamp().map(|t| t.to_string()),
                data: text.map(str::to_string),
                data_base64: text.is_none().then(|| base64::engine::general_purpose::STANDARD.encode(bytes)),
            };
            if tx.send(line).await.is_err() {
                return Ok(());
            }
        }
        let caught_up = records.is_empty() && reply.millis_behind_latest().unwrap_or(0) == 0;
        iterator = reply.next_shard_iterator().map(str::to_string);
        if caught_up {
            if !follow {
                return Ok(());
            }
            tokio::time::sleep(poll).await;
        }
    }
    Ok(())
}

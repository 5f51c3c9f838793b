//! Writing to a Kinesis stream: records go out in PutRecords calls, partition key = the
//! record's key. What is written comes down a channel as any [`Outbound`] (the runtime's
//! operator outputs, the producer's trades).
//!
//! Order per partition key is kept end to end, through partial failures and retries: a call
//! carries at most one record per key, and a key with a record in flight sends nothing more
//! until that record is written. Then a failed entry can only be retried ahead of its key's
//! later records, never behind them, while up to [`MAX_CALLS_IN_FLIGHT`] calls for other keys
//! go on. Failed entries alone are retried, with exponential backoff and jitter ([`weir_aws::retry`]). Records
//! wait in a bounded queue; when it is full the sink stops taking output, which stops the
//! operator, which stops the source: back-pressure instead of unbounded buffering.
//!
//! An [`Outbound`] may carry an acknowledgement: it is answered once every record received
//! before it has been written (what a checkpoint waits for before it counts as complete).

use std::collections::{BTreeSet, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::PutRecordsRequestEntry;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;
use weir_aws::{Backoff, Policy, Service, Transient};

use crate::KinesisError;
use crate::aws::{Kinesis, Stream};

/// PutRecords takes at most 500 records per call (Kinesis service limit).
pub const MAX_RECORDS_PER_CALL: usize = 500;
/// PutRecords takes at most 5 MiB per call, partition keys included (service limit).
pub const MAX_BYTES_PER_CALL: usize = 5 << 20;
/// One record's data and partition key may be at most 1 MiB (service limit).
pub const MAX_RECORD_BYTES: usize = 1 << 20;
/// Partition keys are 1 to 256 characters (service limit).
pub const MAX_KEY_CHARS: usize = 256;
/// Calls in flight at once: enough to hide a call's latency, few enough to stay polite.
pub const MAX_CALLS_IN_FLIGHT: usize = 4;
/// Records waiting to be sent before the sink stops taking output.
pub const MAX_QUEUED_RECORDS: usize = 4 * MAX_RECORDS_PER_CALL * MAX_CALLS_IN_FLIGHT;
/// Retries of failed entries: the first after 100-200 ms, doubling up to 5 s.
const RETRY: Policy = Policy::forever(Duration::from_millis(100), Duration::from_secs(5));

struct Entry {
    /// Its place in the order records were received.
    serial: u64,
    key: String,
    data: Vec<u8>,
    read_at: Option<Instant>,
}

/// Records for the writer, in order.
pub trait Outbound: Send + 'static {
    /// The records: partition key and data.
    fn records(&self) -> impl Iterator<Item = (&str, &[u8])>;
    /// When the input that produced these records was read, if they came from input: the
    /// writer measures the latency added between then and the PutRecords call.
    fn read_at(&self) -> Option<Instant> {
        None
    }
    /// Answer this once every record received before it (its own included) is written.
    fn take_ack(&mut self) -> Option<oneshot::Sender<()>> {
        None
    }
}

/// Records as (partition key, data) pairs.
impl Outbound for Vec<(String, Vec<u8>)> {
    fn records(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.iter().map(|(k, d)| (k.as_str(), d.as_slice()))
    }
}

/// What a finished call reports back to the scheduler.
struct CallResult {
    keys: Vec<String>,
    serials: Vec<u64>,
    retries: u64,
}

/// What a writer is told of each latency it measures, in seconds (the runtime keeps a
/// histogram of them).
pub type LatencyObserver = Box<dyn Fn(f64) + Send + Sync>;

/// What a writer has done so far; shared, so it can be read while the writer runs.
#[derive(Default)]
pub struct WriterStats {
    /// Records written (acknowledged by Kinesis).
    pub records: AtomicU64,
    /// Entries sent again after a partial failure or a throttled call.
    pub retries: AtomicU64,
    /// Told the seconds from the moment a record's input was read to the first PutRecords
    /// call that carries the record: the latency the runtime adds (records with a known read
    /// time only). Set once, by whoever watches the writer; unset, nothing is measured.
    pub added_latency: OnceLock<LatencyObserver>,
}

impl std::fmt::Debug for WriterStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriterStats")
            .field("records", &self.records)
            .field("retries", &self.retries)
            .field("added_latency", &self.added_latency.get().map(|_| "observed"))
            .finish()
    }
}

/// Writes records to a Kinesis stream.
pub struct KinesisWriter {
    kinesis: Kinesis,
    stream: Stream,
    stats: Arc<WriterStats>,
}

impl KinesisWriter {
    /// A writer for `stream`, checked to exist (DescribeStreamSummary) before anything runs.
    pub async fn connect(kinesis: Kinesis, stream: Stream) -> Result<Self, KinesisError> {
        kinesis.check_region(&stream)?;
        kinesis
            .client
            .describe_stream_summary()
            .set_stream_name(stream.name())
            .set_stream_arn(stream.arn())
            .send()
            .await
            .map_err(|e| kinesis.error(&e, &stream))?;
        Ok(Self { kinesis, stream, stats: Arc::default() })
    }

    /// The writer's counters.
    pub fn stats(&self) -> Arc<WriterStats> {
        Arc::clone(&self.stats)
    }

    /// The same writer, counting into `stats` (those of an earlier writer to the stream, so
    /// counters go on across writers).
    pub fn counting_into(self, stats: Arc<WriterStats>) -> Self {
        Self { stats, ..self }
    }

    /// Write every record that arrives until the channel closes and everything is written.
    pub async fn run<R: Outbound>(self, mut rx: mpsc::Receiver<R>) -> Result<(), KinesisError> {
        let mut queue: VecDeque<Entry> = VecDeque::new();
        let mut in_flight: HashSet<String> = HashSet::new();
        let mut calls: JoinSet<Result<CallResult, KinesisError>> = JoinSet::new();
        let mut input_open = true;
        // Records received, and those not yet written, by serial; acknowledgements waiting,
        // each with the serial every record before which must be written first.
        let mut received = 0u64;
        let mut unwritten: BTreeSet<u64> = BTreeSet::new();
        let mut acks: VecDeque<(u64, oneshot::Sender<()>)> = VecDeque::new();
        loop {
            let written_below = unwritten.first().copied().unwrap_or(received);
            while acks.front().is_some_and(|(upto, _)| *upto <= written_below) {
                if let Some((_, ack)) = acks.pop_front() {
                    let _ = ack.send(());
                }
            }
            // Start calls while there is room and something sendable.
            while calls.len() < MAX_CALLS_IN_FLIGHT {
                let batch = take_call(&mut queue, &in_flight);
                if batch.is_empty() {
                    break;
                }
                let now = Instant::now();
                let observe = self.stats.added_latency.get();
                for entry in &batch {
                    in_flight.insert(entry.key.clone());
                    if let (Some(read_at), Some(observe)) = (entry.read_at, observe) {
                        observe(now.duration_since(read_at).as_secs_f64());
                    }
                }
                calls.spawn(put(self.kinesis.clone(), self.stream.clone(), batch));
            }
            if !input_open && queue.is_empty() && calls.is_empty() {
                return Ok(());
            }
            tokio::select! {
                output = rx.recv(), if input_open && queue.len() < MAX_QUEUED_RECORDS => match output {
                    Some(mut outbound) => {
                        let read_at = outbound.read_at();
                        for (key, data) in outbound.records() {
                            queue.push_back(check(received, key, data, read_at)?);
                            unwritten.insert(received);
                            received += 1;
                        }
                        if let Some(ack) = outbound.take_ack() {
                            acks.push_back((received, ack));
                        }
                    }
                    None => input_open = false,
                },
                Some(done) = calls.join_next() => {
                    let done = done??;
                    for key in &done.keys {
                        in_flight.remove(key);
                    }
                    for serial in &done.serials {
                        unwritten.remove(serial);
                    }
                    self.stats.records.fetch_add(done.keys.len() as u64, Relaxed);
                    self.stats.retries.fetch_add(done.retries, Relaxed);
                    if done.retries > 0 {
                        tracing::debug!(retries = done.retries, "PutRecords entries retried");
                    }
                }
            }
        }
    }
}

/// Whether Kinesis takes a record with this partition key and data; why not if it does not
/// (a key of 1 to 256 characters, key and data at most 1 MiB).
pub fn fits(key: &str, data: &[u8]) -> Result<(), KinesisError> {
    let chars = key.chars().count();
    if chars == 0 || chars > MAX_KEY_CHARS {
        return Err(KinesisError::KeyLength { chars });
    }
    if key.len() + data.len() > MAX_RECORD_BYTES {
        return Err(KinesisError::RecordTooLarge { key: key.to_string(), bytes: key.len() + data.len() });
    }
    Ok(())
}

fn check(serial: u64, key: &str, data: &[u8], read_at: Option<Instant>) -> Result<Entry, KinesisError> {
    fits(key, data)?;
    Ok(Entry { serial, key: key.to_string(), data: data.to_vec(), read_at })
}

/// The next call: records from the front of the queue, in order, at most one per key, none
/// for a key in flight, and no record of a key after one of its records was held back.
fn take_call(queue: &mut VecDeque<Entry>, in_flight: &HashSet<String>) -> Vec<Entry> {
    let mut call = Vec::new();
    let mut keys: HashSet<String> = HashSet::new();
    let mut held: HashSet<String> = HashSet::new();
    let mut kept = VecDeque::with_capacity(queue.len());
    let mut bytes = 0usize;
    let mut full = false;
    for entry in queue.drain(..) {
        let size = entry.key.len() + entry.data.len();
        let blocked = full
            || in_flight.contains(&entry.key)
            || held.contains(&entry.key)
            || keys.contains(&entry.key)
            || bytes + size > MAX_BYTES_PER_CALL;
        if blocked {
            held.insert(entry.key.clone());
            kept.push_back(entry);
            continue;
        }
        bytes += size;
        keys.insert(entry.key.clone());
        call.push(entry);
        full = call.len() == MAX_RECORDS_PER_CALL;
    }
    *queue = kept;
    call
}

/// Put `entries`, retrying the failed ones with backoff until all are written or an error is
/// not worth retrying.
async fn put(kinesis: Kinesis, stream: Stream, mut entries: Vec<Entry>) -> Result<CallResult, KinesisError> {
    let keys: Vec<String> = entries.iter().map(|e| e.key.clone()).collect();
    let serials: Vec<u64> = entries.iter().map(|e| e.serial).collect();
    let mut delays = Backoff::new(Service::Kinesis, RETRY);
    let mut retries = 0u64;
    loop {
        let request: Vec<PutRecordsRequestEntry> = entries
            .iter()
            .map(|e| {
                PutRecordsRequestEntry::builder()
                    .partition_key(&e.key)
                    .data(Blob::new(e.data.clone()))
                    .build()
            })
            .collect::<Result<_, _>>()
            .map_err(|e| KinesisError::Failed {
                stream: stream.clone(),
                endpoint: kinesis.endpoint.clone(),
                detail: format!("cannot build a PutRecords entry: {e}"),
            })?;
        let result = kinesis
            .client
            .put_records()
            .set_stream_name(stream.name())
            .set_stream_arn(stream.arn())
            .set_records(Some(request))
            .customize()
            .config_override(write_timeouts())
            .send()
            .await;
        let failed: Vec<(usize, String)> = match result {
            Ok(out) if out.failed_record_count().unwrap_or(0) == 0 => {
                return Ok(CallResult { keys, serials, retries });
            }
            Ok(out) => out
                .records()
                .iter()
                .enumerate()
                .filter_map(|(i, r)| r.error_code().map(|code| (i, code.to_string())))
                .collect(),
            Err(e) if e.is_transient() => {
                let reason = kinesis.error(&e, &stream).to_string();
                (0..entries.len()).map(|i| (i, reason.clone())).collect()
            }
            Err(e) => return Err(kinesis.error(&e, &stream)),
        };
        retries += failed.len() as u64;
        let delay = delays.next_delay();
        if delays.loud() {
            tracing::warn!(
                stream = %stream,
                "{} of {} records not written after {} attempts ({}); retrying in {delay:?}",
                failed.len(),
                entries.len(),
                delays.attempts(),
                failed.first().map(|(_, c)| c.as_str()).unwrap_or("")
            );
        }
        let failed_idx: HashSet<usize> = failed.into_iter().map(|(i, _)| i).collect();
        entries =
            entries.into_iter().enumerate().filter(|(i, _)| failed_idx.contains(i)).map(|(_, e)| e).collect();
        tokio::time::sleep(delay).await;
    }
}

/// A PutRecords attempt unanswered this long is given up and tried again: long, since Kinesis
/// may have taken the records already (the retry then writes them twice); a busy emulator took
/// more than [`crate::aws::ATTEMPT_TIMEOUT`]. Only a dead connection waits this long.
pub const WRITE_ATTEMPT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

fn write_timeouts() -> aws_sdk_kinesis::config::Builder {
    let timeouts = aws_sdk_kinesis::config::timeout::TimeoutConfig::builder()
        .operation_attempt_timeout(WRITE_ATTEMPT_TIMEOUT)
        .build();
    aws_sdk_kinesis::config::Builder::default().timeout_config(timeouts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(key: &str) -> Entry {
        Entry { serial: 0, key: key.into(), data: vec![0; 10], read_at: None }
    }

    fn keys(v: &[Entry]) -> Vec<&str> {
        v.iter().map(|e| e.key.as_str()).collect()
    }

    #[test]
    fn a_call_takes_one_record_per_key_and_never_overtakes_a_held_record() {
        let mut queue: VecDeque<Entry> = ["A", "B", "A", "C", "B", "D"].into_iter().map(entry).collect();
        let in_flight: HashSet<String> = ["C".to_string()].into();
        let call = take_call(&mut queue, &in_flight);
        assert_eq!(keys(&call), ["A", "B", "D"]);
        assert_eq!(keys(queue.make_contiguous()), ["A", "C", "B"]);
        let call = take_call(&mut queue, &HashSet::new());
        assert_eq!(keys(&call), ["A", "C", "B"]);
    }

    #[test]
    fn a_call_respects_the_record_and_byte_limits() {
        let mut queue: VecDeque<Entry> = (0..1200).map(|i| entry(&format!("k{i}"))).collect();
        assert_eq!(take_call(&mut queue, &HashSet::new()).len(), MAX_RECORDS_PER_CALL);
        let mut big: VecDeque<Entry> = (0..8)
            .map(|i| Entry { serial: i, key: format!("k{i}"), data: vec![0; 1_000_000], read_at: None })
            .collect();
        assert_eq!(take_call(&mut big, &HashSet::new()).len(), 5);
        assert_eq!(big.len(), 3);
    }

    #[test]
    fn records_kinesis_cannot_take_are_refused_with_the_limit() {
        assert!(check(0, "", b"x", None).is_err());
        assert!(check(0, &"k".repeat(257), b"x", None).is_err());
        assert!(check(0, "k", &vec![0; MAX_RECORD_BYTES], None).is_err());
        assert!(check(0, "k", b"x", None).is_ok());
    }
}

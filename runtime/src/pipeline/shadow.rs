//! A candidate shadowing the live version in the data path ([`crate::deployment::shadow`]):
//! beside each live instance a candidate instance on a thread of its own, restored from the live
//! instance's snapshot when it starts, then handed a copy of every sub-batch, tick and end of
//! input the live one gets, with what the live one produced. It compares the two outputs record
//! by record (by partition key, in order per key; [`compare`]) into the candidate's
//! [`Tally`]. Its outputs are never written, and its state never checkpointed: after a restart
//! it starts again from the live state.
//!
//! The live path only copies and hands over ([`ShadowFeed::send`]); it never waits for the
//! candidate, whose threads run at the lowest CPU priority, so the live instances get the CPU
//! first. A candidate more than [`QUEUE`] hand-overs behind is stopped, as is one that fails,
//! refuses records the live version accepted, or cannot take the state.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};

use weir_contract::{DeadLetter, Output, OwnedBatch};

use crate::deployment::Tally;
use crate::deployment::shadow::{Evidence, Kind, Sample};
use crate::operator::Runner;

/// Hand-overs a candidate instance may be behind its live instance before it is stopped.
pub const QUEUE: usize = 1024;

/// What the live instance got and produced, for the candidate to do the same and compare.
pub(super) enum Work {
    /// A sub-batch (a copy, taken before the live instance processed it), the live outputs and
    /// the records the live instance refused.
    Batch { batch: OwnedBatch, live: Output, refused: Vec<DeadLetter> },
    /// A tick and the live outputs.
    Tick { now_ms: i64, watermark_ms: i64, live: Output },
    /// The end of input and the live outputs.
    Finish { now_ms: i64, live: Output },
}

/// The live side of one candidate instance: where its work goes.
pub(super) struct ShadowFeed {
    tx: SyncSender<Work>,
    tally: Arc<Tally>,
}

impl ShadowFeed {
    /// Run `runner` (the candidate instance, restored from the live state) on a thread of its
    /// own, comparing into `tally`.
    pub(super) fn start(runner: Runner, name: String, tally: Arc<Tally>) -> std::io::Result<Self> {
        let (tx, rx) = std::sync::mpsc::sync_channel(QUEUE);
        let shared = tally.clone();
        std::thread::Builder::new()
            .name(format!("weir-{}", name.replace(' ', "-")))
            .spawn(move || shadow(runner, &name, &rx, &shared))?;
        Ok(Self { tx, tally })
    }

    /// Hand `work` over; false once the candidate stopped (then the feed is dropped).
    pub(super) fn send(&self, work: Work) -> bool {
        match self.tx.try_send(work) {
            Ok(()) => true,
            Err(TrySendError::Full(_)) => {
                self.tally.stopped(format!(
                    "it fell {QUEUE} hand-overs behind the live version (it is slower than the live version on this input, or the machine has no CPU to spare for it)"
                ));
                false
            }
            Err(TrySendError::Disconnected(_)) => false,
        }
    }
}

/// The candidate instance's loop: each hand-over done and compared, until the live side is
/// gone or the candidate fails.
fn shadow(mut runner: Runner, name: &str, work: &Receiver<Work>, tally: &Tally) {
    yield_the_cpu();
    tally.metrics().active.inc();
    while let Ok(next) = work.recv() {
        if let Err(why) = step(&mut runner, next, tally) {
            tally.stopped(format!("{name}: {why}"));
            break;
        }
    }
    tally.metrics().active.dec();
}

/// Give this thread the lowest CPU priority (nice 19): on a busy machine the live instances
/// run first and the candidate takes what is left, falling behind rather than slowing them.
fn yield_the_cpu() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: setpriority with this thread's own id changes this thread's nice value and
        // nothing else; both calls take and return plain integers.
        let set = unsafe {
            let id = libc::gettid() as libc::id_t;
            libc::setpriority(libc::PRIO_PROCESS, id, 19)
        };
        if set != 0 {
            tracing::debug!(
                "cannot lower the candidate thread's priority: {}",
                std::io::Error::last_os_error()
            );
        }
    }
}

/// Do what the live instance did, compare, count.
fn step(runner: &mut Runner, work: Work, tally: &Tally) -> Result<(), String> {
    let mut found = Evidence::default();
    match work {
        Work::Batch { mut batch, live, refused } => {
            // Described only if a difference is sampled (the runner empties the batch).
            let (n, shard, first, last) = (
                batch.len(),
                batch.shard_id.clone(),
                batch.position(0),
                batch.position(batch.len().saturating_sub(1)),
            );
            let input = || describe(n, &shard, first.as_deref(), last.as_deref());
            found.records_compared = n as u64;
            let processed = runner.process(&mut batch).map_err(|e| e.to_string())?;
            compare(&live, &processed.output, &input, &mut found);
            let refusals = refused_only_by_candidate(&refused, &processed.dead_letters, &input, &mut found);
            tally.add(found);
            if let Some(first) = refusals {
                return Err(format!("it refused records the live version accepted (first: {first})"));
            }
        }
        Work::Tick { now_ms, watermark_ms, live } => {
            let output = runner.tick(now_ms, watermark_ms).map_err(|e| e.to_string())?;
            compare(&live, &output, &|| format!("a tick at watermark {watermark_ms}"), &mut found);
            tally.add(found);
        }
        Work::Finish { now_ms, live } => {
            let output = runner.finish(now_ms).map_err(|e| e.to_string())?;
            compare(&live, &output, &|| "the end of input".to_string(), &mut found);
            tally.add(found);
        }
    }
    Ok(())
}

/// A sub-batch in words, for the samples: its size, shard and sequence numbers.
fn describe(n: usize, shard: &str, first: Option<&str>, last: Option<&str>) -> String {
    match (first, last) {
        (Some(first), Some(last)) => {
            format!("{n} records of shard {shard}, sequence numbers {first} to {last}")
        }
        _ => format!("{n} records of shard {shard}"),
    }
}

/// One key's output records: the live version's, the candidate's.
type Sides<'a> = (Vec<&'a [u8]>, Vec<&'a [u8]>);

/// Compare `candidate`'s output records with `live`'s, key by key, in order per key, into
/// `found`: equal ones counted, the others counted by kind and sampled, with `input` (what led
/// to them, made only for a sample).
pub fn compare(live: &Output, candidate: &Output, input: &dyn Fn() -> String, found: &mut Evidence) {
    let alike = live.bytes == candidate.bytes
        && live.key_lens == candidate.key_lens
        && live.data_lens == candidate.data_lens;
    if alike {
        found.outputs_equal += live.len() as u64;
        return;
    }
    let mut keys: Vec<&str> = Vec::new();
    let mut sides: HashMap<&str, Sides<'_>> = HashMap::new();
    for (side, output) in [(0, live), (1, candidate)] {
        for (key, data) in output.iter() {
            let entry = sides.entry(key).or_insert_with(|| {
                keys.push(key);
                (Vec::new(), Vec::new())
            });
            if side == 0 { entry.0.push(data) } else { entry.1.push(data) }
        }
    }
    let text = |data: &[u8]| String::from_utf8_lossy(data).into_owned();
    for key in keys {
        let Some((l, c)) = sides.get(key) else { continue };
        for i in 0..l.len().max(c.len()) {
            let (kind, live, candidate) = match (l.get(i), c.get(i)) {
                (Some(a), Some(b)) if a == b => {
                    found.outputs_equal += 1;
                    continue;
                }
                (Some(a), Some(b)) => (Kind::Different, Some(*a), Some(*b)),
                (Some(a), None) => (Kind::OnlyLive, Some(*a), None),
                (None, Some(b)) => (Kind::OnlyCandidate, None, Some(*b)),
                (None, None) => continue,
            };
            found.differ(kind, key, || Sample {
                kind,
                key: key.to_string(),
                live: live.map(text),
                candidate: candidate.map(text),
                input: input(),
            });
        }
    }
}

/// Count the records the candidate refused and the live version did not (by key and data) as
/// `refused` differences; the first one's reason, if any.
fn refused_only_by_candidate(
    live: &[DeadLetter],
    candidate: &[DeadLetter],
    input: &dyn Fn() -> String,
    found: &mut Evidence,
) -> Option<String> {
    if candidate.is_empty() {
        return None;
    }
    let mut by_live: HashMap<(&str, &[u8]), usize> = HashMap::new();
    for d in live {
        *by_live.entry((&d.partition_key, &d.data)).or_default() += 1;
    }
    let mut first = None;
    for d in candidate {
        if let Some(n) = by_live.get_mut(&(d.partition_key.as_str(), d.data.as_slice()))
            && *n > 0
        {
            *n -= 1;
            continue;
        }
        first.get_or_insert_with(|| d.reason.clone());
        found.differ(Kind::Refused, &d.partition_key, || Sample {
            kind: Kind::Refused,
            key: d.partition_key.clone(),
            live: Some(String::from_utf8_lossy(&d.data).into_owned()),
            candidate: Some(d.reason.clone()),
            input: input(),
        });
    }
    first
}

#[cfg(test)]
mod tests {
    use super::*;

    fn output(records: &[(&str, &str)]) -> Output {
        let mut out = Output::default();
        for (key, data) in records {
            out.emit(key, data.as_bytes());
        }
        out
    }

    #[test]
    fn outputs_compare_key_by_key_in_order_whatever_the_interleaving() {
        let live = output(&[("AMZN", "1"), ("MSFT", "2"), ("AMZN", "3")]);
        let same_per_key = output(&[("MSFT", "2"), ("AMZN", "1"), ("AMZN", "3")]);
        let mut found = Evidence::default();
        compare(&live, &same_per_key, &|| "input".into(), &mut found);
        assert_eq!((found.outputs_equal, found.total_differences()), (3, 0));
    }

    #[test]
    fn each_kind_of_difference_is_counted_with_both_sides_and_the_key() {
        let live = output(&[("AMZN", "1"), ("AMZN", "3"), ("MSFT", "2")]);
        let candidate = output(&[("AMZN", "1"), ("AMZN", "4"), ("IBM", "9")]);
        let mut found = Evidence::default();
        compare(&live, &candidate, &|| "a tick".into(), &mut found);
        assert_eq!(found.outputs_equal, 1);
        let count = |k| found.differences.get(&k).copied().unwrap_or(0);
        assert_eq!((count(Kind::Different), count(Kind::OnlyLive), count(Kind::OnlyCandidate)), (1, 1, 1));
        let different = found.samples.iter().find(|s| s.kind == Kind::Different).unwrap();
        assert_eq!(
            (different.key.as_str(), different.live.as_deref(), different.candidate.as_deref()),
            ("AMZN", Some("3"), Some("4"))
        );
        assert_eq!(different.input, "a tick");
        assert_eq!(found.keys.get("MSFT"), Some(&1));
    }

    #[test]
    fn only_records_the_live_version_accepted_count_as_refused() {
        let letter = |data: &str, reason: &str| DeadLetter {
            partition_key: "k".into(),
            data: data.as_bytes().to_vec(),
            arrival_time_ms: 0,
            shard_id: "s".into(),
            sequence_number: None,
            reason: reason.into(),
        };
        let live = [letter("bad", "not JSON")];
        let candidate = [letter("bad", "not JSON"), letter("good", "trapped: unreachable")];
        let mut found = Evidence::default();
        let first = refused_only_by_candidate(&live, &candidate, &|| "input".into(), &mut found);
        assert_eq!(first.as_deref(), Some("trapped: unreachable"));
        assert_eq!(found.differences.get(&Kind::Refused), Some(&1));
    }
}

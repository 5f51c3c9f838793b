//! Shadow deploys, the part that lives in the deployment: a candidate version named in the
//! manifest beside the live one ([`Candidate`]), the evidence each running weir publishes of
//! how the candidate's outputs compare with the live version's ([`Evidence`], stored under
//! `PREFIX/shadow/SEQUENCE/WORKER.json`), the rule that promotes it ([`PromoteAfter`]), what
//! the evidence says of it ([`readiness`]), and the decisions taken ([`Decision`]). The
//! comparison itself runs in the pipeline ([`crate::pipeline`]).

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::entry::Deployment;
use crate::artifact::Digest;

/// The first differences of each kind kept in evidence, with both sides and the input.
pub const SAMPLES_PER_KIND: usize = 5;
/// Keys whose differences are counted one by one in evidence (the rest only in the totals).
pub const KEYS_COUNTED: usize = 50;

/// A version published beside the live one: run on the same records, its outputs compared,
/// never written.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Candidate {
    /// The version (signed like any entry; promoted as it is).
    #[serde(flatten)]
    pub deployment: Deployment,
    /// Promote it once this much evidence shows no difference (`weir deploy --candidate
    /// --promote-after`, which waits for it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promote_after: Option<PromoteAfter>,
    /// Its outputs are expected to differ: never promoted on evidence, only by hand; the
    /// differences are still reported.
    #[serde(default)]
    pub expect_differences: bool,
}

/// Promotion after this many input records compared, over at least this long, with no
/// difference: `100000,10m`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PromoteAfter {
    /// Input records both versions processed (summed over every weir that reports).
    pub records: u64,
    /// Since the first weir started the candidate.
    pub time: Duration,
}

impl FromStr for PromoteAfter {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let usage = "write RECORDS,DURATION, such as 100000,10m";
        let (records, time) = s.split_once(',').ok_or_else(|| format!("{s:?} has no comma: {usage}"))?;
        let records = records
            .trim()
            .replace('_', "")
            .parse()
            .map_err(|e| format!("{records:?} is not a count of records ({e}): {usage}"))?;
        let time: jiff::SignedDuration =
            time.trim().parse().map_err(|e| format!("{time:?} is not a duration ({e}): {usage}"))?;
        let time = Duration::try_from(time).map_err(|_| format!("{s:?} has a negative duration: {usage}"))?;
        Ok(Self { records, time })
    }
}

impl TryFrom<String> for PromoteAfter {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl From<PromoteAfter> for String {
    fn from(rule: PromoteAfter) -> String {
        rule.to_string()
    }
}

impl fmt::Display for PromoteAfter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let time = jiff::SignedDuration::try_from(self.time).unwrap_or(jiff::SignedDuration::MAX);
        write!(f, "{},{:#}", self.records, time)
    }
}

/// What was decided about a version, kept in the manifest, newest first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    /// When.
    pub at: jiff::Timestamp,
    /// What.
    pub action: Action,
    /// The version's component.
    pub digest: Digest,
    /// Its version string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Its sequence number.
    pub sequence: u64,
    /// Why, in words (the evidence, or who decided).
    #[serde(default)]
    pub reason: String,
}

/// A decision about a candidate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// Published as the candidate.
    Candidate,
    /// Made the live version.
    Promoted,
    /// Taken away.
    Rejected,
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Candidate => "candidate",
            Self::Promoted => "promoted",
            Self::Rejected => "rejected",
        })
    }
}

/// How a candidate's output record differs from the live version's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// The live version wrote it, the candidate nothing in its place.
    OnlyLive,
    /// The candidate wrote it, the live version nothing in its place.
    OnlyCandidate,
    /// Both wrote a record in that place for the key, with other data.
    Different,
    /// The candidate refused an input record the live version accepted.
    Refused,
}

impl Kind {
    /// Every kind, in the order they are reported.
    pub const ALL: [Kind; 4] = [Kind::OnlyLive, Kind::OnlyCandidate, Kind::Different, Kind::Refused];

    /// The metric label and the name in reports.
    pub fn label(self) -> &'static str {
        match self {
            Self::OnlyLive => "only-live",
            Self::OnlyCandidate => "only-candidate",
            Self::Different => "different",
            Self::Refused => "refused",
        }
    }
}

/// One difference, with both sides and the input that led to it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sample {
    /// Its kind.
    pub kind: Kind,
    /// The output record's partition key (for `refused`, the input record's).
    pub key: String,
    /// The live version's record (None: it wrote none there).
    pub live: Option<String>,
    /// The candidate's (None: it wrote none there; for `refused`, its reason).
    pub candidate: Option<String>,
    /// The input: the shard and the sequence numbers of the sub-batch, or the tick.
    pub input: String,
}

impl fmt::Display for Sample {
    /// `only-live key AMZN: live {...} | candidate (nothing) | input: ...`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} key {}: live {} | candidate {} | input: {}",
            self.kind.label(),
            self.key,
            self.live.as_deref().unwrap_or("(nothing)"),
            self.candidate.as_deref().unwrap_or("(nothing)"),
            self.input
        )
    }
}

/// What one weir found of a candidate so far.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evidence {
    /// The candidate's sequence number.
    pub sequence: u64,
    /// Who found it (the lease worker id, or the host and process).
    pub worker: String,
    /// When this weir started the candidate (its latest start: a restart starts over).
    pub started_at: Option<jiff::Timestamp>,
    /// When it last published this.
    pub updated_at: Option<jiff::Timestamp>,
    /// Input records both versions processed.
    pub records_compared: u64,
    /// Output records both wrote alike.
    pub outputs_equal: u64,
    /// Differences by kind.
    pub differences: BTreeMap<Kind, u64>,
    /// Differences by key, for the first [`KEYS_COUNTED`] keys that had any.
    pub keys: BTreeMap<String, u64>,
    /// The first [`SAMPLES_PER_KIND`] differences of each kind.
    pub samples: Vec<Sample>,
    /// Why the candidate stopped on this weir (it trapped, refused records, overran its
    /// limits, fell behind, could not take the state); None while it runs.
    pub stopped: Option<String>,
}

impl Evidence {
    /// Differences of every kind.
    pub fn total_differences(&self) -> u64 {
        self.differences.values().sum()
    }

    /// Count a difference of `kind` for `key`, keeping `sample` if it is among the first of
    /// its kind.
    pub fn differ(&mut self, kind: Kind, key: &str, sample: impl FnOnce() -> Sample) {
        *self.differences.entry(kind).or_default() += 1;
        self.count_key(key, 1);
        if self.samples.iter().filter(|s| s.kind == kind).count() < SAMPLES_PER_KIND {
            self.samples.push(sample());
        }
    }

    /// Count `n` differences for `key` (keys beyond the first [`KEYS_COUNTED`] only in totals).
    fn count_key(&mut self, key: &str, n: u64) {
        if let Some(count) = self.keys.get_mut(key) {
            *count += n;
        } else if self.keys.len() < KEYS_COUNTED {
            self.keys.insert(key.to_string(), n);
        }
    }

    /// Add what `found` counted (records, equal outputs, differences by kind and by key) and
    /// its samples while there is room for their kind; the samples kept.
    pub fn add(&mut self, found: Evidence) -> Vec<Sample> {
        self.records_compared += found.records_compared;
        self.outputs_equal += found.outputs_equal;
        for (kind, n) in found.differences {
            *self.differences.entry(kind).or_default() += n;
        }
        for (key, n) in &found.keys {
            self.count_key(key, *n);
        }
        let mut kept = Vec::new();
        for sample in found.samples {
            if self.samples.iter().filter(|s| s.kind == sample.kind).count() < SAMPLES_PER_KIND {
                kept.push(sample.clone());
                self.samples.push(sample);
            }
        }
        kept
    }

    /// The differences by kind, every kind named: `0 only-live, 2 only-candidate, ...`.
    pub fn by_kind(&self) -> String {
        Kind::ALL
            .iter()
            .map(|k| format!("{} {}", self.differences.get(k).copied().unwrap_or(0), k.label()))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// What the evidence of every weir says of a candidate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Readiness {
    /// Its rule is met: promote it.
    Ready(String),
    /// Not enough evidence yet (what is missing).
    Waiting(String),
    /// Promoted only by hand: differences are expected, or no rule was given.
    ByHand(String),
    /// It must not be promoted (why).
    Failed(String),
}

/// The evidence of every weir, summed: records, equal outputs, differences by kind and key,
/// the first samples, the earliest start, the latest report.
pub fn sum(evidence: &[Evidence]) -> Evidence {
    let mut total = Evidence { worker: format!("{} weirs", evidence.len()), ..Evidence::default() };
    for e in evidence {
        total.sequence = e.sequence;
        total.add(e.clone());
        total.started_at = match (total.started_at, e.started_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        total.updated_at = total.updated_at.max(e.updated_at);
    }
    total
}

/// Whether `candidate` may be promoted on `evidence` (each weir's) at `now`.
pub fn readiness(candidate: &Candidate, evidence: &[Evidence], now: jiff::Timestamp) -> Readiness {
    if let Some(e) = evidence.iter().find(|e| e.stopped.is_some()) {
        let why = e.stopped.as_deref().unwrap_or_default();
        return Readiness::Failed(format!("it stopped on {}: {why}", e.worker));
    }
    let total = sum(evidence);
    let differences = total.total_differences();
    if candidate.expect_differences {
        return Readiness::ByHand(format!(
            "differences are expected ({differences} so far): promote it with weir deploy --promote"
        ));
    }
    if differences > 0 {
        return Readiness::Failed(format!(
            "{differences} differences from the live version ({})",
            total.by_kind()
        ));
    }
    let Some(rule) = candidate.promote_after else {
        return Readiness::ByHand(format!(
            "no differences in {} records; no --promote-after was given: promote it with weir deploy --promote",
            total.records_compared
        ));
    };
    let Some(started_at) = total.started_at else {
        return Readiness::Waiting("no running weir has reported on it yet".to_string());
    };
    let running = Duration::try_from(now.duration_since(started_at)).unwrap_or_default();
    if total.records_compared >= rule.records && running >= rule.time {
        return Readiness::Ready(format!(
            "no differences in {} records over {:.0} s (rule {rule})",
            total.records_compared,
            running.as_secs_f64()
        ));
    }
    Readiness::Waiting(format!(
        "{} of {} records and {:.0} s of {:.0} s compared, no differences yet",
        total.records_compared,
        rule.records,
        running.as_secs_f64(),
        rule.time.as_secs_f64()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candidate(rule: Option<&str>, expect_differences: bool) -> Candidate {
        Candidate {
            deployment: Deployment { sequence: 7, ..Deployment::example("c") },
            promote_after: rule.map(|r| r.parse().unwrap()),
            expect_differences,
        }
    }

    fn evidence(worker: &str, records: u64, started: &str) -> Evidence {
        Evidence {
            sequence: 7,
            worker: worker.into(),
            started_at: Some(started.parse().unwrap()),
            records_compared: records,
            ..Evidence::default()
        }
    }

    #[test]
    fn a_rule_reads_as_records_and_a_duration_and_writes_back_the_same() {
        let rule: PromoteAfter = "100000,10m".parse().unwrap();
        assert_eq!(rule, PromoteAfter { records: 100_000, time: Duration::from_secs(600) });
        assert_eq!(rule.to_string().parse::<PromoteAfter>().unwrap(), rule);
        assert_eq!("50_000, 30s".parse::<PromoteAfter>().unwrap().records, 50_000);
        for bad in ["100000", "many,10m", "10,soon"] {
            let error = bad.parse::<PromoteAfter>().unwrap_err();
            assert!(error.contains("RECORDS,DURATION"), "{bad}: {error}");
        }
    }

    #[test]
    fn evidence_summed_over_weirs_promotes_once_records_and_time_are_both_reached() {
        let c = candidate(Some("1000,60s"), false);
        let now: jiff::Timestamp = "2026-12-03T10:02:00Z".parse().unwrap();
        let early = [evidence("a", 600, "2026-12-03T10:01:30Z"), evidence("b", 600, "2026-12-03T10:01:45Z")];
        assert!(matches!(readiness(&c, &early, now), Readiness::Waiting(_)), "30 s of 60");
        let two = [evidence("a", 600, "2026-12-03T10:00:30Z"), evidence("b", 600, "2026-12-03T10:01:45Z")];
        assert!(matches!(readiness(&c, &two, now), Readiness::Ready(_)), "1200 records, 90 s");
        assert!(matches!(readiness(&c, &two[1..], now), Readiness::Waiting(_)), "600 records");
        assert!(matches!(readiness(&c, &[], now), Readiness::Waiting(_)));
    }

    #[test]
    fn a_difference_or_a_stop_fails_it_unless_differences_are_expected() {
        let now: jiff::Timestamp = "2026-12-03T11:00:00Z".parse().unwrap();
        let mut differing = evidence("a", 5000, "2026-12-03T10:00:00Z");
        differing.differ(Kind::Different, "AMZN", || Sample {
            kind: Kind::Different,
            key: "AMZN".into(),
            live: Some("1".into()),
            candidate: Some("2".into()),
            input: "tick".into(),
        });
        let c = candidate(Some("1000,60s"), false);
        let Readiness::Failed(why) = readiness(&c, std::slice::from_ref(&differing), now) else { panic!() };
        assert!(why.contains("1 different"), "{why}");
        assert!(matches!(readiness(&candidate(None, true), &[differing], now), Readiness::ByHand(_)));
        let mut stopped = evidence("b", 5000, "2026-12-03T10:00:00Z");
        stopped.stopped = Some("it trapped".into());
        let Readiness::Failed(why) = readiness(&candidate(None, true), &[stopped], now) else { panic!() };
        assert!(why.contains("on b: it trapped"), "{why}");
    }

    #[test]
    fn samples_stop_at_the_first_few_of_each_kind_and_keys_at_the_first_fifty() {
        let mut e = Evidence::default();
        for i in 0..100 {
            let key = format!("K{i}");
            e.differ(Kind::OnlyLive, &key, || Sample {
                kind: Kind::OnlyLive,
                key: key.clone(),
                live: Some("x".into()),
                candidate: None,
                input: String::new(),
            });
        }
        assert_eq!(e.differences[&Kind::OnlyLive], 100);
        assert_eq!(e.samples.len(), SAMPLES_PER_KIND);
        assert_eq!(e.keys.len(), KEYS_COUNTED);
    }
}

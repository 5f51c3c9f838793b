//! Shadow deploys from the command line: `weir deploy --candidate` (publish a candidate, and
//! with `--promote-after` wait for the evidence and decide), `--promote`, `--reject`, and
//! `weir shadow status`. The evidence is what running weirs publish under the deployment
//! (`weir::deployment::shadow`); every decision goes into the manifest's `decisions`.

use std::time::Duration;

use anyhow::{Result, bail};
use weir::deployment::shadow::{Decision, Evidence, Readiness, readiness, sum};
use weir::deployment::trust::signed_by;
use weir::deployment::{Candidate, Deployment, Manifest, OperatorStore, PromoteAfter};

use crate::cli::{ShadowArgs, ShadowCommand};

/// How often `--promote-after` reads the evidence.
const EVIDENCE_POLL: Duration = Duration::from_secs(1);

/// Publish `deployment` as the candidate over the current version.
pub async fn publish(
    store: &OperatorStore,
    deployment: Deployment,
    before: (Manifest, String),
    rule: Option<PromoteAfter>,
    expect_differences: bool,
) -> Result<Manifest> {
    let (manifest, etag) = before;
    if let (Some(live), Some(candidate)) = (&manifest.current.grouping, &deployment.grouping)
        && live != candidate
    {
        bail!(
            "the candidate groups records by {candidate}, the live version by {live}: a candidate starts from the live state, which belongs to the grouping key; deploy it as a new version (a fresh start) instead"
        );
    }
    let reason = match (rule, expect_differences) {
        (Some(rule), _) => format!("published; promoted after {rule} with no difference"),
        (None, true) => "published; differences expected, promoted by hand".to_string(),
        (None, false) => "published; promoted by hand".to_string(),
    };
    let candidate = Candidate { deployment, promote_after: rule, expect_differences };
    let next = manifest.with_candidate(candidate, reason);
    store.write_manifest(&next, Some(&etag)).await?;
    Ok(next)
}

/// Wait for the candidate `sequence`'s evidence to meet its rule, then promote it; reject it
/// as soon as it must not be promoted. An error (exit 1) when rejected or out of time.
pub async fn promote_when_ready(store: &OperatorStore, sequence: u64, timeout: Duration) -> Result<()> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut said = String::new();
    loop {
        let (manifest, etag) = store.existing_manifest().await?;
        let Some(candidate) = manifest.candidate.clone().filter(|c| c.deployment.sequence == sequence) else {
            bail!(
                "the candidate (sequence {sequence}) at {} was promoted, rejected or replaced by someone else while waiting: see weir shadow status {}",
                store.location(),
                store.location()
            );
        };
        let evidence = store.evidence(sequence).await?;
        // Decided on the manifest just read: a candidate replaced since is not promoted on
        // this one's evidence (the write would find another ETag).
        match readiness(&candidate, &evidence, jiff::Timestamp::now()) {
            Readiness::Ready(why) => {
                let reason = format!("promoted on evidence: {why}");
                let promoted = decide(store, (manifest, etag), Decide::Promote, reason).await?;
                println!("promoted {} at {}: {why}", promoted.current.digest.short(), store.location());
                return Ok(());
            }
            Readiness::Failed(why) => {
                decide(store, (manifest, etag), Decide::Reject, format!("rejected on evidence: {why}"))
                    .await?;
                print_samples(&evidence);
                bail!(
                    "candidate {} at {} rejected: {why}",
                    candidate.deployment.digest.short(),
                    store.location()
                );
            }
            Readiness::ByHand(why) => {
                println!("{why}");
                return Ok(());
            }
            Readiness::Waiting(why) => {
                if why != said {
                    println!("waiting: {why}");
                    said = why;
                }
            }
        }
        if tokio::time::Instant::now() >= deadline {
            bail!(
                "the candidate at {} has not enough evidence after {:?} ({said}); it stays the candidate: look at weir shadow status {}",
                store.location(),
                timeout,
                store.location()
            );
        }
        tokio::time::sleep(EVIDENCE_POLL).await;
    }
}

/// What to do with a candidate.
#[derive(Clone, Copy)]
pub enum Decide {
    /// Make it live, as it was published (signature and sequence number).
    Promote,
    /// Take it away.
    Reject,
}

/// Promote or reject the candidate of the deployment as it is now, for `reason`.
pub async fn decide_now(store: &OperatorStore, what: Decide, reason: String) -> Result<Manifest> {
    decide(store, store.existing_manifest().await?, what, reason).await
}

/// Promote or reject the candidate of `manifest` (read with its ETag), for `reason`: written
/// only if the manifest has not changed since.
async fn decide(
    store: &OperatorStore,
    (manifest, etag): (Manifest, String),
    what: Decide,
    reason: String,
) -> Result<Manifest> {
    let next = match what {
        Decide::Promote => manifest.promoted(reason),
        Decide::Reject => manifest.rejected(reason),
    };
    let Some(next) = next else {
        bail!(
            "there is no candidate at {} to {} (publish one with weir deploy --candidate)",
            store.location(),
            match what {
                Decide::Promote => "promote",
                Decide::Reject => "reject",
            }
        );
    };
    store.write_manifest(&next, Some(&etag)).await?;
    Ok(next)
}

/// `weir shadow`.
pub async fn shadow(args: ShadowArgs) -> Result<()> {
    match args.command {
        ShadowCommand::Status { location, aws } => {
            let store = super::store(&location.to_string(), aws.region.as_deref(), None).await?;
            status(&store).await
        }
    }
}

/// The candidate, the evidence, the verdict, the decisions.
pub async fn status(store: &OperatorStore) -> Result<()> {
    let (manifest, _) = store.existing_manifest().await?;
    println!("{}: live {}", store.location(), manifest.current.describe());
    match &manifest.candidate {
        None => println!("no candidate"),
        Some(candidate) => {
            let d = &candidate.deployment;
            println!("candidate {}, published at {}, {}", d.describe(), d.deployed_at, signed_by(d));
            let evidence = store.evidence(d.sequence).await?;
            print_evidence(&evidence);
            print_samples(&evidence);
            let verdict = match readiness(candidate, &evidence, jiff::Timestamp::now()) {
                Readiness::Ready(why) => format!("ready to promote: {why}"),
                Readiness::Waiting(why) => format!("waiting: {why}"),
                Readiness::ByHand(why) => format!("promoted by hand: {why}"),
                Readiness::Failed(why) => format!("must not be promoted: {why}"),
            };
            println!("verdict: {verdict}");
        }
    }
    print_decisions(&manifest.decisions);
    Ok(())
}

fn print_evidence(evidence: &[Evidence]) {
    if evidence.is_empty() {
        println!("evidence: none yet (no running weir has reported on it)");
        return;
    }
    let total = sum(evidence);
    println!(
        "evidence of {} weirs: {} records compared, {} outputs equal; differences: {}",
        evidence.len(),
        total.records_compared,
        total.outputs_equal,
        total.by_kind()
    );
    for e in evidence {
        let at = |t: Option<jiff::Timestamp>| t.map_or_else(|| "-".to_string(), |t| t.to_string());
        println!(
            "  {}: started {}, reported {}, {} records, {} equal; {}{}",
            e.worker,
            at(e.started_at),
            at(e.updated_at),
            e.records_compared,
            e.outputs_equal,
            e.by_kind(),
            e.stopped.as_deref().map(|s| format!("; stopped: {s}")).unwrap_or_default()
        );
        if !e.keys.is_empty() {
            let mut keys: Vec<_> = e.keys.iter().collect();
            keys.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
            let keys: Vec<String> = keys.iter().take(10).map(|(k, n)| format!("{k} {n}")).collect();
            println!("    differences by key: {}", keys.join(", "));
        }
    }
}

fn print_samples(evidence: &[Evidence]) {
    let samples: Vec<_> = evidence.iter().flat_map(|e| &e.samples).collect();
    if samples.is_empty() {
        return;
    }
    println!("first differences:");
    for s in samples {
        println!("  {s}");
    }
}

fn print_decisions(decisions: &[Decision]) {
    if decisions.is_empty() {
        return;
    }
    println!("decisions:");
    for d in decisions {
        println!(
            "  {} {:<9} {} {} seq {}: {}",
            d.at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            d.action.to_string(),
            d.digest.short(),
            d.version.as_deref().unwrap_or("?"),
            d.sequence,
            d.reason
        );
    }
}

//! `weir deploy` and `weir operators list`: operators published to S3 (see
//! `weir::deployment::store` for the layout and the conditional writes).
//!
//! A component is checked before anything is uploaded: it must be a component of a compatible
//! contract version, instantiate, and accept its settings in `init`. A rollback is checked the
//! same way before the manifest moves. Every new entry gets the next sequence number; with
//! `--sign` or `--sign-key` it is signed (a rollback too: the older version comes back under a
//! new sequence number and a new signature). `--status` says who signed what. A candidate
//! (`--candidate`, `--promote`, `--reject`) is published and decided on in [`super::shadow`].

use anyhow::{Context, Result, bail};

use weir::artifact::Artifact;
use weir::deployment::trust::signed_by;
use weir::deployment::{Deployment, Manifest, OperatorStore, Signer, Trust};
use weir::operator::LoadedOperator;
use weir_contract::CONTRACT;

use super::shadow::{self, Decide};
use super::{engine, store};
use crate::cli::{DeployArgs, HostArgs, OperatorsArgs, OperatorsCommand};

/// `weir deploy`.
pub async fn deploy(args: DeployArgs) -> Result<()> {
    let usage = "weir deploy needs the component and where: weir deploy OPERATOR.wasm s3://BUCKET/PREFIX (or --rollback / --status / --promote / --reject s3://BUCKET/PREFIX)";
    let on_target = args.rollback || args.status || args.promote || args.reject;
    let (file, target) = match (on_target, args.args.as_slice()) {
        (true, [target]) => (None, target),
        (false, [file, target]) => (Some(file), target),
        (true, _) => bail!(
            "weir deploy --rollback, --status, --promote and --reject take only where: s3://BUCKET/PREFIX"
        ),
        (false, _) => bail!("{usage}"),
    };
    let region = args.aws.region.as_deref();
    let store = store(target, region, args.role_arn.as_deref()).await?;
    if args.status {
        let trust = super::trust(&args.trust, region).await?;
        return status(&store, trust.as_ref()).await;
    }
    if args.promote {
        let reason = "promoted by hand (weir deploy --promote)".to_string();
        let next = shadow::decide_now(&store, Decide::Promote, reason).await?;
        println!(
            "promoted {} at {}: running weirs switch to it, state carried; previous {}",
            next.current.describe(),
            store.location(),
            next.previous.map_or_else(|| "none".to_string(), |d| d.short().to_string())
        );
        return Ok(());
    }
    if args.reject {
        let reason = "rejected by hand (weir deploy --reject)".to_string();
        let next = shadow::decide_now(&store, Decide::Reject, reason).await?;
        let rejected = next.decisions.first().map(|d| d.digest.short().to_string()).unwrap_or_default();
        println!("rejected candidate {rejected} at {}: running weirs stop it", store.location());
        return Ok(());
    }
    // The key is read (from KMS too) before anything is uploaded.
    let signer = match (&args.sign, &args.sign_key) {
        (Some(key), _) => Some(Signer::kms(key, region).await?),
        (None, Some(file)) => Some(Signer::local(file)?),
        (None, None) => None,
    };
    match file {
        Some(file) if args.candidate => candidate(&store, file, &args, signer.as_ref()).await,
        Some(file) => deploy_file(&store, file, &args.settings, &args.host, signer.as_ref()).await,
        None => rollback(&store, &args.host, signer.as_ref()).await,
    }
}

/// `weir deploy --candidate`: checked and signed as a deploy, published beside the live
/// version; with `--promote-after`, waited on and decided.
async fn candidate(
    store: &OperatorStore,
    file: &str,
    args: &DeployArgs,
    signer: Option<&Signer>,
) -> Result<()> {
    let artifact = Artifact::from_file(std::path::Path::new(file))?;
    let loaded = validate(artifact.clone(), &args.settings, &args.host)?;
    let before = store.manifest().await?.ok_or_else(|| {
        anyhow::anyhow!(
            "nothing is deployed at {} for a candidate to shadow: deploy a live version first (weir deploy OPERATOR.wasm {})",
            store.location(),
            store.location()
        )
    })?;
    let deployment = entry(&artifact, &loaded, &args.settings);
    let deployment = sequenced(deployment, Some(&before.0), signer).await?;
    let (sequence, note) = (deployment.sequence, signed_note(&deployment));
    store.put_component(&artifact).await?;
    let manifest =
        shadow::publish(store, deployment, before, args.promote_after, args.expect_differences).await?;
    println!(
        "published candidate {} {} (sha256 {}) at {} beside the live {}; {note}; running weirs compare it with the live version: weir shadow status {}",
        loaded.name(),
        loaded.version(),
        artifact.digest,
        store.location(),
        manifest.current.digest.short(),
        store.location()
    );
    if args.promote_after.is_some() {
        shadow::promote_when_ready(store, sequence, args.promote_timeout).await?;
    }
    Ok(())
}

/// The manifest entry of `artifact`, loaded as `loaded` with `settings` (not yet sequenced).
fn entry(artifact: &Artifact, loaded: &LoadedOperator, settings: &[(String, String)]) -> Deployment {
    Deployment {
        digest: artifact.digest,
        size: artifact.bytes.len() as u64,
        contract: CONTRACT.to_string(),
        name: Some(loaded.name().to_string()),
        version: Some(loaded.version().to_string()),
        deployed_at: jiff::Timestamp::now(),
        settings: settings.iter().cloned().collect(),
        rollback_of: None,
        grouping: Some(loaded.grouping().to_string()),
        sequence: 0,
        signature: None,
    }
}

/// `deployment` with the next sequence number after `before`, signed by `signer` if there is one.
async fn sequenced(
    mut deployment: Deployment,
    before: Option<&Manifest>,
    signer: Option<&Signer>,
) -> Result<Deployment> {
    deployment.sequence = Manifest::next_sequence(before, deployment.deployed_at);
    deployment.signature = match signer {
        Some(signer) => Some(signer.sign(&deployment).await?),
        None => None,
    };
    Ok(deployment)
}

/// How the new entry is signed, in words.
fn signed_note(deployment: &Deployment) -> String {
    match &deployment.signature {
        Some(_) => format!("sequence {}, {}", deployment.sequence, signed_by(deployment)),
        None => format!(
            "sequence {}, unsigned (a weir run with --trust refuses it; sign with --sign or --sign-key)",
            deployment.sequence
        ),
    }
}

/// Check `artifact` with `settings` the way `weir run` will load it.
fn validate(artifact: Artifact, settings: &[(String, String)], host: &HostArgs) -> Result<LoadedOperator> {
    let origin = artifact.origin.clone();
    engine(host, None)?.load(artifact, settings).with_context(|| format!("{origin} was not deployed"))
}

async fn deploy_file(
    store: &OperatorStore,
    file: &str,
    settings: &[(String, String)],
    host: &HostArgs,
    signer: Option<&Signer>,
) -> Result<()> {
    let artifact = Artifact::from_file(std::path::Path::new(file))?;
    let loaded = validate(artifact.clone(), settings, host)?;
    // Read the manifest (and its ETag) before uploading, so a deploy that lands in between is
    // detected by the conditional write below.
    let before = store.manifest().await?;
    let before_manifest = before.as_ref().map(|(m, _)| m);
    let deployment = sequenced(entry(&artifact, &loaded, settings), before_manifest, signer).await?;
    store.put_component(&artifact).await?;
    let manifest = Manifest::next(before_manifest, deployment);
    store.write_manifest(&manifest, before.as_ref().map(|(_, etag)| etag.as_str())).await?;
    println!(
        "deployed {} {} (sha256 {}) to {}; {}; {}",
        loaded.name(),
        loaded.version(),
        artifact.digest,
        store.location(),
        match &manifest.previous {
            Some(previous) => format!("previous {}", previous.short()),
            None => "first deployment".to_string(),
        },
        signed_note(&manifest.current)
    );
    Ok(())
}

async fn rollback(store: &OperatorStore, host: &HostArgs, signer: Option<&Signer>) -> Result<()> {
    let (manifest, etag) = store.existing_manifest().await?;
    let Some(previous) = manifest.previous else {
        bail!("{} has had a single deployment: there is nothing to roll back to", store.location());
    };
    let Some(earlier) = manifest.history.iter().find(|d| d.digest == previous) else {
        bail!("{}/current.json names previous {previous} but its history does not have it", store.location());
    };
    // The component must still be there, intact, and still load with its settings.
    let artifact = store.component(&previous).await?;
    let settings: Vec<(String, String)> = earlier.settings.clone().into_iter().collect();
    let loaded = validate(artifact, &settings, host)?;
    let deployment = Deployment {
        deployed_at: jiff::Timestamp::now(),
        rollback_of: Some(manifest.current.digest),
        grouping: Some(loaded.grouping().to_string()),
        ..earlier.clone()
    };
    let deployment = sequenced(deployment, Some(&manifest), signer).await?;
    let next = Manifest::next(Some(&manifest), deployment);
    store.write_manifest(&next, Some(&etag)).await?;
    println!(
        "rolled {} back from {} to {} ({} {}); {}",
        store.location(),
        manifest.current.digest.short(),
        previous.short(),
        earlier.name.as_deref().unwrap_or("?"),
        earlier.version.as_deref().unwrap_or("?"),
        signed_note(&next.current)
    );
    Ok(())
}

/// `weir deploy --status`: the current entry in full, whether `trust` would run it, then the
/// history.
async fn status(store: &OperatorStore, trust: Option<&Trust>) -> Result<()> {
    let (manifest, _) = store.existing_manifest().await?;
    let d = &manifest.current;
    println!(
        "{}: {} {} (sha256 {}), sequence {}, deployed at {}",
        store.location(),
        d.name.as_deref().unwrap_or("?"),
        d.version.as_deref().unwrap_or("?"),
        d.digest,
        d.sequence,
        d.deployed_at
    );
    println!(
        "  contract {}; groups records by {}; settings {}",
        d.contract,
        d.grouping.as_deref().unwrap_or("(not recorded)"),
        settings_text(d)
    );
    let verdict = match trust {
        None => "not checked: give --trust to check it against your keys".to_string(),
        Some(trust) => match trust.check(d) {
            Ok(key) => format!("a weir trusting {} runs it", key.source()),
            Err(refusal) => format!("a weir with this --trust refuses it ({}): {refusal}", refusal.reason()),
        },
    };
    println!("  {}; {verdict}", signed_by(d));
    if let Some(c) = &manifest.candidate {
        println!(
            "candidate {}, {}: shadowing it; its evidence: weir shadow status {}",
            c.deployment.describe(),
            signed_by(&c.deployment),
            store.location()
        );
    }
    println!();
    history(&manifest);
    Ok(())
}

fn settings_text(d: &Deployment) -> String {
    let mut settings: Vec<String> = d.settings.iter().map(|(k, v)| format!("{k}={v}")).collect();
    if let Some(from) = &d.rollback_of {
        settings.push(format!("(rollback from {})", from.short()));
    }
    if settings.is_empty() { "none".to_string() } else { settings.join(" ") }
}

/// The manifest's deployments as a table, current first.
fn history(manifest: &Manifest) {
    println!(
        "{:<9} {:>4} {:<12} {:<28} {:<20} {:<24} settings",
        "", "seq", "sha256", "operator", "deployed at", "signed by"
    );
    let rows =
        std::iter::once(("current", &manifest.current)).chain(manifest.history.iter().map(|d| ("", d)));
    for (mark, d) in rows {
        let operator = format!("{} {}", d.name.as_deref().unwrap_or("?"), d.version.as_deref().unwrap_or(""));
        let signed =
            d.signature.as_ref().map_or_else(|| "unsigned".to_string(), |s| format!("key {}", s.key.short()));
        println!(
            "{mark:<9} {:>4} {:<12} {operator:<28} {:<20} {signed:<24} {}",
            d.sequence,
            d.digest.short(),
            d.deployed_at.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
            settings_text(d)
        );
    }
}

/// `weir operators`.
pub async fn operators(args: OperatorsArgs) -> Result<()> {
    match args.command {
        OperatorsCommand::List { location, aws } => {
            let store = store(&location.to_string(), aws.region.as_deref(), None).await?;
            let (manifest, _) = store.existing_manifest().await?;
            history(&manifest);
            Ok(())
        }
    }
}

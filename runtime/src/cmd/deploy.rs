//! `weir deploy` and `weir operators list`: operators published to S3 (see
//! `weir::deployment::store` for the layout and the conditional writes).
//!
//! A component is checked before anything is uploaded: it must be a component of a compatible
//! contract version, instantiate, and accept its settings in `init`. A rollback is checked the
//! same way before the manifest moves.

use anyhow::{Context, Result, bail};

use weir::artifact::Artifact;
use weir::deployment::{Deployment, Manifest, OperatorStore, StoreError};
use weir::location::Location;
use weir::operator::LoadedOperator;
use weir_contract::CONTRACT;

use super::engine;
use crate::cli::{DeployArgs, HostArgs, OperatorsArgs, OperatorsCommand};

/// `weir deploy`.
pub async fn deploy(args: DeployArgs) -> Result<()> {
    let (file, target) = match (args.rollback, args.args.as_slice()) {
        (true, [target]) => (None, target),
        (false, [file, target]) => (Some(file), target),
        (true, _) => {
            bail!("weir deploy --rollback takes only where: weir deploy --rollback s3://BUCKET/PREFIX")
        }
        (false, _) => bail!(
            "weir deploy needs the component and where: weir deploy OPERATOR.wasm s3://BUCKET/PREFIX (or --rollback s3://BUCKET/PREFIX)"
        ),
    };
    let store = store(target, args.aws.region.as_deref()).await?;
    match file {
        Some(file) => deploy_file(&store, file, &args.settings, &args.host).await,
        None => rollback(&store, &args.host).await,
    }
}

async fn store(target: &str, region: Option<&str>) -> Result<OperatorStore> {
    match target.parse::<Location>() {
        Ok(Location::S3 { bucket, key }) => Ok(OperatorStore::connect(&bucket, &key, region).await),
        Ok(other) => bail!("operators are deployed to S3: give s3://BUCKET/PREFIX, not {other}"),
        Err(e) => bail!("{target:?} is not a location: {e}"),
    }
}

/// Check `artifact` with `settings` the way `weir run` will load it.
fn validate(artifact: Artifact, settings: &[(String, String)], host: &HostArgs) -> Result<LoadedOperator> {
    let origin = artifact.origin.clone();
    engine(host)?.load(artifact, settings).with_context(|| format!("{origin} was not deployed"))
}

async fn deploy_file(
    store: &OperatorStore,
    file: &str,
    settings: &[(String, String)],
    host: &HostArgs,
) -> Result<()> {
    let artifact = Artifact::from_file(std::path::Path::new(file))?;
    let loaded = validate(artifact.clone(), settings, host)?;
    // Read the manifest (and its ETag) before uploading, so a deploy that lands in between is
    // detected by the conditional write below.
    let before = store.manifest().await?;
    store.put_component(&artifact).await?;
    let deployment = Deployment {
        digest: artifact.digest,
        size: artifact.bytes.len() as u64,
        contract: CONTRACT.to_string(),
        name: Some(loaded.name().to_string()),
        version: Some(loaded.version().to_string()),
        deployed_at: jiff::Timestamp::now(),
        settings: settings.iter().cloned().collect(),
        rollback_of: None,
    };
    let manifest = Manifest::next(before.as_ref().map(|(m, _)| m), deployment);
    store.write_manifest(&manifest, before.as_ref().map(|(_, etag)| etag.as_str())).await?;
    println!(
        "deployed {} {} (sha256 {}) to {}; {}",
        loaded.name(),
        loaded.version(),
        artifact.digest,
        store.location(),
        match &manifest.previous {
            Some(previous) => format!("previous {}", previous.short()),
            None => "first deployment".to_string(),
        }
    );
    Ok(())
}

async fn rollback(store: &OperatorStore, host: &HostArgs) -> Result<()> {
    let (manifest, etag) =
        store.manifest().await?.ok_or_else(|| StoreError::NothingDeployed(store.location()))?;
    let Some(previous) = manifest.previous else {
        bail!("{} has had a single deployment: there is nothing to roll back to", store.location());
    };
    let Some(earlier) = manifest.history.iter().find(|d| d.digest == previous) else {
        bail!("{}/current.json names previous {previous} but its history does not have it", store.location());
    };
    // The component must still be there, intact, and still load with its settings.
    let artifact = store.component(&previous).await?;
    let settings: Vec<(String, String)> = earlier.settings.clone().into_iter().collect();
    validate(artifact, &settings, host)?;
    let deployment = Deployment {
        deployed_at: jiff::Timestamp::now(),
        rollback_of: Some(manifest.current.digest),
        ..earlier.clone()
    };
    let next = Manifest::next(Some(&manifest), deployment);
    store.write_manifest(&next, Some(&etag)).await?;
    println!(
        "rolled {} back from {} to {} ({} {})",
        store.location(),
        manifest.current.digest.short(),
        previous.short(),
        earlier.name.as_deref().unwrap_or("?"),
        earlier.version.as_deref().unwrap_or("?")
    );
    Ok(())
}

/// `weir operators`.
pub async fn operators(args: OperatorsArgs) -> Result<()> {
    match args.command {
        OperatorsCommand::List { location, aws } => {
            let store = store(&location.to_string(), aws.region.as_deref()).await?;
            let (manifest, _) =
                store.manifest().await?.ok_or_else(|| StoreError::NothingDeployed(store.location()))?;
            println!("{:<9} {:<12} {:<28} {:<26} settings", "", "sha256", "operator", "deployed at");
            let rows = std::iter::once(("current", &manifest.current))
                .chain(manifest.history.iter().map(|d| ("", d)));
            for (mark, d) in rows {
                let operator =
                    format!("{} {}", d.name.as_deref().unwrap_or("?"), d.version.as_deref().unwrap_or(""));
                let mut settings: Vec<String> = d.settings.iter().map(|(k, v)| format!("{k}={v}")).collect();
                if let Some(from) = &d.rollback_of {
                    settings.push(format!("(rollback from {})", from.short()));
                }
                println!(
                    "{mark:<9} {:<12} {operator:<28} {:<26} {}",
                    d.digest.short(),
                    d.deployed_at.to_string(),
                    settings.join(" ")
                );
            }
            Ok(())
        }
    }
}

//! `weir check`: load an operator the way `weir run` would and say what it is and what made it.

use std::time::Duration;

use anyhow::Result;

use weir::deployment::trust::signed_by;
use weir::operator::{CacheOutcome, Toolchain};

use crate::cli::CheckArgs;

/// `weir check`.
pub async fn check(args: CheckArgs) -> Result<()> {
    let region = args.aws.region.as_deref();
    let trust = super::trust(&args.trust, region).await?;
    let trusted = trust.is_some();
    let (loaded, watch) =
        super::load(&args.operator, &args.settings, &args.host, None, region, Duration::MAX, trust).await?;
    println!(
        "{}: operator {} {}, contract {}, sha256 {}; groups records by {}",
        loaded.artifact().origin,
        loaded.name(),
        loaded.version(),
        weir_contract::CONTRACT,
        loaded.artifact().digest,
        loaded.grouping()
    );
    let bytes = &loaded.artifact().bytes;
    let how = match loaded.cache_outcome() {
        CacheOutcome::Hit => "from the compiled cache",
        CacheOutcome::Compiled => "compiled, and cached",
        CacheOutcome::CompiledUncached => "compiled, not cached",
    };
    println!(
        "  {}; {:.1} MB, loaded in {:.0?} ({how})",
        Toolchain::of(bytes),
        bytes.len() as f64 / 1e6,
        loaded.load_time()
    );
    if let Some(watch) = watch {
        let current = &watch.running.current;
        let verdict = if trusted { "verified against --trust" } else { "not verified: no --trust" };
        println!("  deployment sequence {}, {}; {verdict}", current.sequence, signed_by(current));
    }
    Ok(())
}

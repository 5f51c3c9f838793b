//! `weir check`: load an operator the way `weir run` would and say what it is and what made it.

use std::time::Duration;

use anyhow::Result;

use weir::operator::{CacheOutcome, Toolchain};

use crate::cli::CheckArgs;

/// `weir check`.
pub async fn check(args: CheckArgs) -> Result<()> {
    let (loaded, _) =
        super::load(&args.operator, &args.settings, &args.host, args.aws.region.as_deref(), Duration::MAX)
            .await?;
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
    Ok(())
}

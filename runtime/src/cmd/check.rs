//! `weir check`: load an operator the way `weir run` would and say what it is.

use std::time::Duration;

use anyhow::Result;

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
    Ok(())
}

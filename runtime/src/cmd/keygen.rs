//! `weir keygen PATH`: a new signing key for `weir deploy --sign-key` (PATH) and its public
//! half for `weir run --trust` (PATH.pub).

use anyhow::Result;
use weir::deployment::LocalKey;

use crate::cli::KeygenArgs;

/// `weir keygen`.
pub fn keygen(args: &KeygenArgs) -> Result<()> {
    let public = LocalKey::generate(&args.path)?;
    println!(
        "wrote the private key {} (keep it secret) and the public key {}; key id {}",
        args.path.display(),
        public.source(),
        public.id()
    );
    println!(
        "  sign: weir deploy OPERATOR.wasm s3://BUCKET/PREFIX --sign-key {}\n  trust: weir run --operator s3://BUCKET/PREFIX --trust {}",
        args.path.display(),
        public.source()
    );
    Ok(())
}

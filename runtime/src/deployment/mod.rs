//! Deployments: operators published to S3 and the versions a running weir switches between.
//!
//! - [`store`]: the S3 layout (components under their digest, the `current.json` manifest
//!   replaced only by conditional writes);
//! - [`watch`]: a running weir looking for new versions, preparing each one aside;
//! - [`versions`]: which version runs, probation after a switch, the rollback decision;
//! - [`signature`]: what a signed entry's signature covers, and the keys that make and check it;
//!   [`signer`] signs at publish, [`trust`] decides which signed entries may run.
//!
//! `weir deploy` and `weir operators list` (in the binary's `cmd/`) use the store; the
//! pipeline carries out switches ([`crate::pipeline`]).

pub mod signature;
pub mod signer;
pub mod store;
pub mod trust;
pub mod versions;
pub mod watch;

pub use signature::{KeyId, LocalKey, PublicKey, Signature};
pub use signer::{SignError, Signer};
pub use store::{Deployment, Manifest, OperatorStore, StoreError};
pub use trust::{KeySource, Refusal, Trust, TrustError};
pub use versions::{RollbackPolicy, Verdict, Versions};
pub use watch::Watch;

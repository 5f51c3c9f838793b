//! Deployments: operators published to S3 and the versions a running weir switches between.
//!
//! - [`entry`]: one manifest entry, and what its signature covers;
//! - [`store`]: the S3 layout (components under their digest, the `current.json` manifest
//!   replaced only by conditional writes);
//! - [`watch`]: a running weir looking for new versions, preparing each one aside;
//! - [`versions`]: which version runs, probation after a switch, the rollback decision;
//! - [`shadow`]: a candidate beside the live version, the evidence about it, its promotion;
//!   [`tally`] gathers this weir's evidence;
//! - [`signature`]: what a signed entry's signature covers, and the keys that make and check it;
//!   [`signer`] signs at publish, [`trust`] decides which signed entries may run.
//!
//! `weir deploy` and `weir operators list` (in the binary's `cmd/`) use the store; the
//! pipeline carries out switches ([`crate::pipeline`]).

pub mod entry;
pub mod shadow;
pub mod signature;
pub mod signer;
pub mod store;
pub mod tally;
pub mod trust;
pub mod versions;
pub mod watch;

pub use entry::Deployment;
pub use shadow::{Candidate, Evidence, PromoteAfter, Readiness};
pub use signature::{KeyId, LocalKey, PublicKey, Signature};
pub use signer::{SignError, Signer};
pub use store::{Manifest, OperatorStore, StoreError};
pub use tally::{DiffDestination, Tally};
pub use trust::{KeySource, Refusal, Trust, TrustError};
pub use versions::{Change, RollbackPolicy, Shadowed, Verdict, Versions};
pub use watch::Watch;

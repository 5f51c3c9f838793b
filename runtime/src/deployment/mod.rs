//! Deployments: operators published to S3 and the versions a running weir switches between.
//!
//! - [`store`]: the S3 layout (components under their digest, the `current.json` manifest
//!   replaced only by conditional writes);
//! - [`watch`]: a running weir looking for new versions, preparing each one aside;
//! - [`versions`]: which version runs, probation after a switch, the rollback decision.
//!
//! `weir deploy` and `weir operators list` (in the binary's `cmd/`) use the store; the
//! pipeline carries out switches ([`crate::pipeline`]).

pub mod store;
pub mod versions;
pub mod watch;

pub use store::{Deployment, Manifest, OperatorStore, StoreError};
pub use versions::{RollbackPolicy, Verdict, Versions};
pub use watch::Watch;

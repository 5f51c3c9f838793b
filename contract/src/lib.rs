//! The data weir's host and its operators exchange, in one small crate both depend on: the
//! host (`weir`) packs [`OwnedBatch`]es and reads [`Output`]s, [`KeyedState`] and
//! [`DeadLetter`]s; the operator SDK (`weir-operator`) hands the same types to operator code.
//!
//! The wire form of these types is `wit/operator.wit`; [`CONTRACT`] is its version, written
//! once here and checked against the WIT package by this crate's tests.
//!
//! Layout: [`batch`] (input records, packed column by column), [`output`] (what a call
//! produces), [`state`] (snapshots, one entry per grouping key, packed), [`grouping`] (what
//! records are routed by), [`dead_letter`] (refused records), [`Error`] (an operator's
//! failure, as a message).
#![deny(missing_docs)]

pub mod batch;
pub mod dead_letter;
mod error;
pub mod grouping;
pub mod output;
pub mod state;

pub use batch::{Batch, Data, OwnedBatch, Record};
pub use dead_letter::DeadLetter;
pub use error::Error;
pub use grouping::Grouping;
pub use output::{Lateness, Output, Rejection};
pub use state::{INSTANCE_KEY, KeyedStates, StateEntry};

use std::fmt;

/// The version of the `weir:operator` contract that this host and this SDK speak: the package
/// version of `wit/operator.wit`.
pub const CONTRACT: Contract = Contract { major: 0, minor: 2, patch: 0 };

/// The watermark before any event time was reported: below every real time.
pub const NO_WATERMARK: i64 = i64::MIN;

/// A version of the `weir:operator` WIT package.
///
/// Components are compatible when major and minor agree (the WIT package follows semver with
/// a 0 major: a minor change is a breaking one); the patch level may differ.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Contract {
    /// Major version.
    pub major: u32,
    /// Minor version.
    pub minor: u32,
    /// Patch version.
    pub patch: u32,
}

impl Contract {
    /// The WIT package, `weir:operator`.
    pub const PACKAGE: &'static str = "weir:operator";
    /// The interface every operator exports, without its version.
    pub const INTERFACE: &'static str = "weir:operator/operator";

    /// The contract version a component exporting `export` (such as
    /// `weir:operator/operator@0.1.2`) speaks, if `export` is the operator interface at all.
    pub fn of_export(export: &str) -> Option<Contract> {
        let version = export.strip_prefix(Self::INTERFACE)?.strip_prefix('@')?;
        let mut parts = version.split('.').map(str::parse::<u32>);
        match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some(Ok(major)), Some(Ok(minor)), Some(Ok(patch)), None) => {
                Some(Contract { major, minor, patch })
            }
            _ => None,
        }
    }

    /// Whether a component exporting `export` (such as `weir:operator/operator@0.2.1`) speaks a
    /// compatible version of this contract.
    pub fn accepts_export(&self, export: &str) -> bool {
        Self::of_export(export).is_some_and(|c| c.major == self.major && c.minor == self.minor)
    }

    /// The exports this version accepts, as a pattern for messages: `weir:operator/operator@0.2.x`.
    pub fn accepted_exports(&self) -> String {
        format!("{}@{}.{}.x", Self::INTERFACE, self.major, self.minor)
    }
}

/// `weir:operator@0.2.0`.
impl fmt::Display for Contract {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}.{}.{}", Self::PACKAGE, self.major, self.minor, self.patch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_contract_constant_is_the_version_of_the_wit_package() {
        let wit = include_str!("../../wit/operator.wit");
        let package = wit
            .lines()
            .find_map(|l| l.trim().strip_prefix("package "))
            .and_then(|p| p.strip_suffix(';'))
            .expect("wit/operator.wit declares its package");
        assert_eq!(package, CONTRACT.to_string());
    }

    #[test]
    fn exports_of_the_same_major_and_minor_are_accepted() {
        let c = Contract { major: 0, minor: 1, patch: 0 };
        assert!(c.accepts_export("weir:operator/operator@0.1.0"));
        assert!(c.accepts_export("weir:operator/operator@0.1.7"));
        assert!(!c.accepts_export("weir:operator/operator@0.2.0"));
        assert!(!c.accepts_export("weir:operator/operator@0.10.0"));
        assert!(!c.accepts_export("weir:operator/operator@0.1"));
        assert!(!c.accepts_export("weir:operator/types@0.1.0"));
        assert!(!c.accepts_export("other:operator/operator@0.1.0"));
        assert_eq!(c.accepted_exports(), "weir:operator/operator@0.1.x");
        assert_eq!(
            Contract::of_export("weir:operator/operator@0.1.3"),
            Some(Contract { major: 0, minor: 1, patch: 3 })
        );
    }
}

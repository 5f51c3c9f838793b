//! One entry of a deployment's manifest ([`Deployment`]): a component, its settings and who
//! signed it, and what a signature of it covers ([`Deployment::statement`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::signature::{KeyError, KeyId, Signature};
use crate::artifact::Digest;

/// One deployment of a component.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deployment {
    /// The component's sha256 (hex in the manifest).
    pub digest: Digest,
    /// Its size in bytes.
    pub size: u64,
    /// The contract it was built for (`weir:operator@0.1.0`).
    pub contract: String,
    /// The operator's name, as it describes itself.
    pub name: Option<String>,
    /// Its version.
    pub version: Option<String>,
    /// When it was deployed (RFC 3339 in the manifest).
    pub deployed_at: jiff::Timestamp,
    /// Settings passed to its `init`.
    #[serde(default)]
    pub settings: BTreeMap<String, String>,
    /// Set when this deployment rolled back to an earlier digest: the digest rolled back from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback_of: Option<Digest>,
    /// What the operator's state is keyed by, as it says (`the JSON field "TICKER"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grouping: Option<String>,
    /// Its place in the deployment's order: above every deployment before it, and at least
    /// the Unix time (seconds) it was made (0 in manifests older than signing). Signed, so an
    /// older entry cannot pass for a new one.
    #[serde(default)]
    pub sequence: u64,
    /// Its signature, when it was deployed with `--sign` or `--sign-key`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<Signature>,
}

/// What a statement says it is for, so that no other message signed by the same key can pass
/// for one.
const PURPOSE: &str = "weir signed deployment v1";

impl Deployment {
    /// What a signature of this entry by the key `key` covers: the canonical encoding (postcard,
    /// its wire format stable since 1.0, behind a purpose string) of the digest, the operator's
    /// name and version, the contract, the grouping key, the settings, the sequence number and
    /// the key's id. The rest (`deployed_at`, `rollback_of`, the size) is for people.
    pub fn statement(&self, key: &KeyId) -> Result<Vec<u8>, KeyError> {
        #[derive(Serialize)]
        struct Statement<'a> {
            purpose: &'a str,
            digest: String,
            name: Option<&'a str>,
            version: Option<&'a str>,
            contract: &'a str,
            grouping: Option<&'a str>,
            settings: &'a BTreeMap<String, String>,
            sequence: u64,
            key: String,
        }
        let statement = Statement {
            purpose: PURPOSE,
            digest: self.digest.to_string(),
            name: self.name.as_deref(),
            version: self.version.as_deref(),
            contract: &self.contract,
            grouping: self.grouping.as_deref(),
            settings: &self.settings,
            sequence: self.sequence,
            key: key.to_string(),
        };
        postcard::to_allocvec(&statement).map_err(|e| KeyError::Encode(e.to_string()))
    }

    /// The entry in words: `sliding-window-max 0.2.0 (sha256 09b8f65a3f2d), sequence 17`.
    pub fn describe(&self) -> String {
        format!(
            "{} {} (sha256 {}), sequence {}",
            self.name.as_deref().unwrap_or("?"),
            self.version.as_deref().unwrap_or("?"),
            self.digest.short(),
            self.sequence
        )
    }

    /// The settings to initialise with: the stored ones, with `overrides` (the command line's)
    /// replacing any with the same key.
    pub fn settings_with(&self, overrides: &[(String, String)]) -> Vec<(String, String)> {
        let mut merged: Vec<(String, String)> = self
            .settings
            .iter()
            .filter(|(k, _)| !overrides.iter().any(|(o, _)| o == *k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        merged.extend(overrides.iter().cloned());
        merged
    }
}

#[cfg(test)]
impl Deployment {
    /// An unsigned entry of the component whose bytes are `digest`'s, for tests.
    pub(crate) fn example(digest: &str) -> Deployment {
        Deployment {
            digest: Digest::of(digest.as_bytes()),
            size: 1,
            contract: weir_contract::CONTRACT.to_string(),
            name: None,
            version: None,
            deployed_at: "2026-11-25T10:00:00Z".parse().unwrap_or(jiff::Timestamp::UNIX_EPOCH),
            settings: BTreeMap::new(),
            rollback_of: None,
            grouping: None,
            sequence: 0,
            signature: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployment(digest: &str) -> Deployment {
        Deployment::example(digest)
    }

    #[test]
    fn command_line_settings_override_stored_ones() {
        let mut d = deployment("a");
        d.settings = [("window".to_string(), "60s".to_string()), ("slide".into(), "10s".into())].into();
        let merged = d.settings_with(&[("slide".into(), "5s".into())]);
        assert_eq!(merged, [("window".into(), "60s".into()), ("slide".into(), "5s".into())]);
    }
}

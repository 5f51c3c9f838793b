//! Operator settings: the `key=value` pairs given with `weir run --set` or stored in a
//! deployment manifest.

use crate::Error;

/// The `key=value` settings an operator is initialised with.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Settings {
    pairs: Vec<(String, String)>,
}

impl Settings {
    /// Settings from pairs; a later pair overrides an earlier one with the same key.
    pub fn new(pairs: Vec<(String, String)>) -> Self {
        Self { pairs }
    }

    /// Settings from borrowed pairs.
    pub fn from_pairs(pairs: &[(&str, &str)]) -> Self {
        Self::new(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
    }

    /// The value of `key`, if set.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// The value of `key` parsed with `parse`, or `default` when unset. A parse error names the
    /// setting, the value and what `parse` said.
    pub fn parse_or<T, E: std::fmt::Display>(
        &self,
        key: &str,
        default: T,
        parse: impl FnOnce(&str) -> Result<T, E>,
    ) -> Result<T, Error> {
        match self.get(key) {
            None => Ok(default),
            Some(value) => {
                parse(value).map_err(|e| Error::new(format!("setting {key}={value:?} is invalid: {e}")))
            }
        }
    }

    /// Fail on any key not in `known`, naming the keys that are accepted.
    pub fn check_known(&self, known: &[&str]) -> Result<(), Error> {
        match self.pairs.iter().find(|(k, _)| !known.contains(&k.as_str())) {
            None => Ok(()),
            Some((k, _)) if known.is_empty() => {
                Err(Error::new(format!("unknown setting {k:?}: this operator takes no settings")))
            }
            Some((k, _)) => {
                Err(Error::new(format!("unknown setting {k:?}; known settings: {}", known.join(", "))))
            }
        }
    }

    /// All pairs, in the order given.
    pub fn pairs(&self) -> &[(String, String)] {
        &self.pairs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn later_pairs_win_and_unknown_keys_are_named() {
        let s = Settings::from_pairs(&[("window", "60s"), ("window", "30s"), ("bogus", "1")]);
        assert_eq!(s.get("window"), Some("30s"));
        let err = s.check_known(&["window", "slide"]).unwrap_err();
        assert_eq!(err.message(), "unknown setting \"bogus\"; known settings: window, slide");
        let err = s.parse_or("window", 0u32, |v| v.parse::<u32>()).unwrap_err();
        assert!(err.message().starts_with("setting window=\"30s\" is invalid"), "{err}");
    }
}

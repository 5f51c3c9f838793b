//! What made a component, for `weir check` and the load log line: the languages and tools its
//! `producers` custom sections name (rustc, clang and wit-component write them), and, for a
//! toolchain that names no language, the language runtime it links: componentize-py links
//! CPython as a shared library (`libpython3.X.so`, named in a `dylink.0` section).

use std::collections::BTreeSet;
use std::fmt;

use wasmparser::{Dylink0Subsection, KnownCustom, Parser, Payload};

/// The languages and tools a component names or embeds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Toolchain {
    /// Languages, such as `Rust` or `Python 3.14`.
    pub languages: BTreeSet<String>,
    /// Tools with their versions, such as `rustc 1.95.0` or `componentize-py`.
    pub tools: BTreeSet<String>,
}

impl Toolchain {
    /// What `bytes` (a component or a core module) says made it. Parts it cannot read are
    /// left out: this describes, it does not validate.
    pub fn of(bytes: &[u8]) -> Self {
        let mut found = Self::default();
        for payload in Parser::new(0).parse_all(bytes) {
            let Ok(Payload::CustomSection(section)) = payload else { continue };
            match section.as_known() {
                KnownCustom::Producers(fields) => {
                    for field in fields.into_iter().flatten() {
                        for value in field.values.into_iter().flatten() {
                            match field.name {
                                "language" => found.languages.insert(value.name.to_string()),
                                "processed-by" | "sdk" => found.tools.insert(tool(value.name, value.version)),
                                _ => false,
                            };
                        }
                    }
                }
                KnownCustom::Dylink0(subsections) => {
                    for subsection in subsections.into_iter().flatten() {
                        if let Dylink0Subsection::Needed(libraries) = subsection {
                            libraries.iter().filter_map(|l| python(l)).for_each(|v| found.python(v));
                        }
                    }
                }
                _ => {}
            }
        }
        found
    }

    fn python(&mut self, version: &str) {
        self.languages.insert(format!("Python {version}"));
        self.tools.insert("componentize-py".into());
    }
}

/// `libpython3.14.so` -> `3.14`.
fn python(library: &str) -> Option<&str> {
    library.strip_prefix("libpython")?.strip_suffix(".so")
}

fn tool(name: &str, version: &str) -> String {
    // rustc's version carries its commit and date in parentheses: the number says enough.
    let version = version.split_whitespace().next().unwrap_or_default();
    if version.is_empty() { name.to_string() } else { format!("{name} {version}") }
}

impl fmt::Display for Toolchain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let join = |set: &BTreeSet<String>| set.iter().map(String::as_str).collect::<Vec<_>>().join(", ");
        match (self.languages.is_empty(), self.tools.is_empty()) {
            (true, true) => f.write_str("no toolchain named"),
            (true, false) => write!(f, "language not named, made with {}", join(&self.tools)),
            (false, true) => f.write_str(&join(&self.languages)),
            (false, false) => write!(f, "{}, made with {}", join(&self.languages), join(&self.tools)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_keep_their_number_only_and_python_libraries_name_their_version() {
        assert_eq!(tool("rustc", "1.95.0 (59807616e 2026-04-14)"), "rustc 1.95.0");
        assert_eq!(tool("componentize-py", ""), "componentize-py");
        assert_eq!(python("libpython3.14.so"), Some("3.14"));
        assert_eq!(python("libc.so"), None);
    }

    #[test]
    fn a_module_without_producers_names_no_toolchain() {
        let module = wat::parse_str("(module)").unwrap();
        assert_eq!(Toolchain::of(&module).to_string(), "no toolchain named");
    }
}

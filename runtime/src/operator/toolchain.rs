//! What made a component, for `weir check`: the languages and tools its
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

/// How likely `language` is the one the operator was written in, the lowest first: an
/// interpreter's language before the languages the interpreter is written in, Rust before the
/// C of wasi-libc.
fn authored_rank(language: &str) -> u8 {
    match language {
        "JavaScript" => 0,
        _ if language.starts_with("Python") => 0,
        "Rust" => 1,
        _ => 2,
    }
}

/// A producers name as people write it (`C_plus_plus_14` -> `C++14`).
fn readable(language: &str) -> String {
    language.replace("_plus_plus_", "++").replace("_plus_plus", "++")
}

impl fmt::Display for Toolchain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut languages: Vec<&String> = self.languages.iter().collect();
        languages.sort_by_key(|l| authored_rank(l));
        let tools = self.tools.iter().map(String::as_str).collect::<Vec<_>>().join(", ");
        let Some((first, rest)) = languages.split_first() else {
            return match tools.is_empty() {
                true => f.write_str("no toolchain named"),
                false => write!(f, "language not named, made with {tools}"),
            };
        };
        f.write_str(&readable(first))?;
        if !rest.is_empty() {
            let rest = rest.iter().map(|l| readable(l)).collect::<Vec<_>>().join(", ");
            match authored_rank(first) {
                0 => write!(f, " (its interpreter in {rest})")?,
                _ => write!(f, " (with {rest})")?,
            }
        }
        if !tools.is_empty() {
            write!(f, ", made with {tools}")?;
        }
        Ok(())
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
    fn the_language_an_operator_was_written_in_comes_first() {
        let of = |languages: &[&str], tools: &[&str]| {
            let set = |items: &[&str]| items.iter().map(|s| s.to_string()).collect();
            Toolchain { languages: set(languages), tools: set(tools) }.to_string()
        };
        assert_eq!(
            of(&["C11", "C_plus_plus_14", "JavaScript", "Rust"], &["ComponentizeJS 0.23.0"]),
            "JavaScript (its interpreter in Rust, C11, C++14), made with ComponentizeJS 0.23.0"
        );
        assert_eq!(of(&["C11", "Rust"], &["rustc 1.95.0"]), "Rust (with C11), made with rustc 1.95.0");
        assert_eq!(of(&["Python 3.14"], &[]), "Python 3.14");
        assert_eq!(
            of(&[], &["wit-component 0.245.1"]),
            "language not named, made with wit-component 0.245.1"
        );
    }

    #[test]
    fn a_module_without_producers_names_no_toolchain() {
        let module = wat::parse_str("(module)").unwrap();
        assert_eq!(Toolchain::of(&module).to_string(), "no toolchain named");
    }
}

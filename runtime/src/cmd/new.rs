//! `weir new`: a new operator project in a folder of its own, in Rust, Python or JavaScript:
//! the operator (a map of one function, to grow from), a native test, the contract (`wit/`)
//! and a README with the commands that test, build, check and deploy it. The templates are
//! in `runtime/templates/`, compiled into the binary.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::cli::{Language, NewArgs};

/// The contract the projects build against.
const CONTRACT_WIT: &str = include_str!("../../../wit/operator.wit");

/// (path in the project, template) per language.
fn templates(language: Language) -> &'static [(&'static str, &'static str)] {
    match language {
        Language::Rust => &[
            ("Cargo.toml", include_str!("../../templates/rust/Cargo.toml")),
            ("src/lib.rs", include_str!("../../templates/rust/lib.rs.txt")),
            ("README.md", include_str!("../../templates/rust/README.md")),
        ],
        Language::Python => &[
            ("app.py", include_str!("../../templates/python/app.py")),
            ("test_app.py", include_str!("../../templates/python/test_app.py")),
            ("README.md", include_str!("../../templates/python/README.md")),
            ("wit/operator.wit", CONTRACT_WIT),
        ],
        Language::Js => &[
            ("app.js", include_str!("../../templates/js/app.js")),
            ("test/app.test.js", include_str!("../../templates/js/test/app.test.js")),
            ("package.json", include_str!("../../templates/js/package.json")),
            ("build.mjs", include_str!("../../../scripts/lib/componentize-js.mjs")),
            ("README.md", include_str!("../../templates/js/README.md")),
            ("wit/operator.wit", CONTRACT_WIT),
        ],
    }
}

/// `weir new`.
pub fn new(args: NewArgs) -> Result<()> {
    let name = &args.name;
    if !is_name(name) {
        bail!(
            "{name:?} cannot name an operator: use lower-case letters, digits and '-', starting with a letter (such as price-alert)"
        );
    }
    let dir = args.dir.clone().unwrap_or_else(|| PathBuf::from(name));
    if dir.exists() {
        bail!("{} exists already: weir new makes a new folder; choose another name or --dir", dir.display());
    }
    let sdk = sdk_references(args.weir.as_deref())?;
    let fill = |template: &str| {
        template
            .replace("{{name}}", name)
            .replace("{{crate}}", &name.replace('-', "_"))
            .replace("{{rust_sdk}}", &sdk.rust)
            .replace("{{python_sdk}}", &sdk.python)
            .replace("{{js_sdk}}", &sdk.js)
    };
    for (path, template) in templates(args.lang) {
        let file = dir.join(path);
        if let Some(parent) = file.parent() {
            std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
        }
        std::fs::write(&file, fill(template)).with_context(|| format!("cannot write {}", file.display()))?;
    }
    println!(
        "created {} ({} operator {name}); its README.md says how to test, build, check and deploy it",
        dir.display(),
        args.lang.name()
    );
    Ok(())
}

/// How a project refers to each SDK.
struct SdkReferences {
    rust: String,
    python: String,
    js: String,
}

/// With `--weir PATH` (a checkout of weir), the SDKs in it by path; without, by the
/// repository (Rust, by git) and the package names (Python, JavaScript).
fn sdk_references(weir: Option<&Path>) -> Result<SdkReferences> {
    let Some(weir) = weir else {
        return Ok(SdkReferences {
            rust: format!("{{ git = \"{}\" }}", env!("CARGO_PKG_REPOSITORY")),
            python: "weir-operator".into(),
            js: "^0.2.0".into(),
        });
    };
    let weir = weir.canonicalize().with_context(|| format!("--weir {}: no such folder", weir.display()))?;
    let sdk = |relative: &str| -> Result<String> {
        let path = weir.join(relative);
        if !path.is_dir() {
            bail!("--weir {}: no {relative} in it; give the folder of a weir checkout", weir.display());
        }
        Ok(path.display().to_string())
    };
    Ok(SdkReferences {
        rust: format!("{{ path = \"{}\" }}", sdk("operators/sdk")?),
        python: sdk("operators/sdk-python")?,
        js: format!("file:{}", sdk("operators/sdk-js")?),
    })
}

/// Lower-case letters, digits and '-', starting with a letter.
fn is_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_lowercase())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_lower_case_words_joined_by_dashes() {
        assert!(is_name("price-alert2"));
        assert!(!is_name("Price"));
        assert!(!is_name("2x"));
        assert!(!is_name("a b"));
        assert!(!is_name(""));
    }
}

//! Builds the operators in `operators/` as WebAssembly components, so that `weir` can embed the
//! default one (`sliding-window-max`) and its tests can load all of them.
//!
//! It runs a nested `cargo build --release --target wasm32-wasip2` into its own target folder
//! (`target/operators`, shared by every profile, so it is built once), and tells the crate where
//! the components are through `WEIR_OPERATORS_DIR`. Set `WEIR_OPERATORS_DIR` yourself to use
//! components built elsewhere and skip the nested build.

use std::env;
use std::path::PathBuf;
use std::process::Command;

const OPERATORS: &[&str] = &["sliding-window-max", "rekey", "price-alert", "test-fixture", "by-ticker"];

fn main() {
    println!("cargo:rerun-if-env-changed=WEIR_OPERATORS_DIR");
    // The folders watched below are this clone's, but the target folder may be shared with
    // another clone (`.ci/run` reuses one): cargo keeps one run of this script for both, and
    // after the other clone ran it, this one's changes went unseen while the other's folders
    // stood (the operators embedded stale). Cargo is started from a clone's root (every script
    // `cd`s there), so a change of PWD is a change of clone: run again.
    println!("cargo:rerun-if-env-changed=PWD");
    if let Ok(dir) = env::var("WEIR_OPERATORS_DIR") {
        println!("cargo:rustc-env=WEIR_OPERATORS_DIR={dir}");
        return;
    }
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| ".".into()));
    let root = manifest.parent().map(PathBuf::from).unwrap_or_else(|| manifest.clone());
    for watched in ["operators", "examples", "contract", "json", "wit", "Cargo.lock", "Cargo.toml"] {
        println!("cargo:rerun-if-changed={}", root.join(watched).display());
    }
    let target_dir = env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| root.join("target"))
        .join("operators");
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(&root)
        .args(["build", "--release", "--target", "wasm32-wasip2", "--target-dir"])
        .arg(&target_dir);
    for op in OPERATORS {
        cmd.args(["-p", op]);
    }
    // The outer build's flags and profile overrides are for the host, not for wasm: the
    // operators are built one way whatever builds the host (the test command's release build
    // without LTO included), so their folder is never rebuilt for another profile.
    for var in ["RUSTFLAGS", "CARGO_ENCODED_RUSTFLAGS", "CARGO_BUILD_TARGET", "CARGO_TARGET_DIR"] {
        cmd.env_remove(var);
    }
    for (var, _) in env::vars_os() {
        if var.to_string_lossy().starts_with("CARGO_PROFILE_") {
            cmd.env_remove(var);
        }
    }
    let status = cmd.status();
    match status {
        Ok(s) if s.success() => {}
        Ok(s) => panic!(
            "building the operators for wasm32-wasip2 failed ({s}). If the error above is E0463 \
             \"can't find crate for `core`\", run `rustup target add wasm32-wasip2` and build again."
        ),
        Err(e) => panic!("could not run cargo to build the operators: {e}"),
    }
    let dir = target_dir.join("wasm32-wasip2").join("release");
    println!("cargo:rustc-env=WEIR_OPERATORS_DIR={}", dir.display());
}

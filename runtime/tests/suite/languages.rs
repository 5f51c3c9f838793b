//! Operators written in Python (componentize-py) and JavaScript (componentize-js), built by
//! scripts/build-components, through the `weir` binary: each reference operator equals the
//! Rust one window for window and dead-letters bad records with a reason, `weir check` names
//! the language, an exception, an endless loop or a memory bomb sets aside its record alone,
//! and state moves to the next version, between Python and JavaScript, and not from Rust.

use crate::hostile::{input, only_the_poison_record_came_out_aside, run_fixture};
use crate::util;

use std::path::PathBuf;

use util::*;
use weir_producer::Tickers;

/// A language, by the suffix of its components' names.
struct Language {
    suffix: &'static str,
    /// What `weir check` says about a component in it.
    named: &'static str,
    /// The dead-letter reason of the fixture's `raise-on` record.
    exception: &'static str,
}

const LANGUAGES: [Language; 2] = [
    Language { suffix: "py", named: "  Python 3.", exception: "ZeroDivisionError: division by zero" },
    Language {
        suffix: "js",
        named: "JavaScript",
        exception: "TypeError: can't access property \"boom\" of null",
    },
];

/// The folder scripts/build-components built into, which the test command runs first.
fn components() -> PathBuf {
    let Some(dir) = std::env::var_os("WEIR_TEST_COMPONENTS") else {
        panic!(
            "the Python and JavaScript operators are not built: run scripts/test, or \
             export WEIR_TEST_COMPONENTS=\"$(scripts/build-components)\" first"
        )
    };
    PathBuf::from(dir)
}

/// A component built by scripts/build-components.
fn built(name: &str) -> PathBuf {
    components().join(format!("{name}.wasm"))
}

impl Language {
    fn component(&self, operator: &str) -> PathBuf {
        built(&format!("{operator}_{}", self.suffix))
    }
}

/// `weir run` of `operator` over `input` (JSON lines) at parallelism 2: result lines, dead
/// letters.
fn run(operator: &std::path::Path, input: &[u8], settings: &[&str]) -> (Vec<String>, Vec<serde_json::Value>) {
    let dir = tempfile::tempdir().unwrap();
    let (source, sink, dead) = (dir.path().join("in.jsonl"), dir.path().join("out"), dir.path().join("dead"));
    std::fs::write(&source, input).unwrap();
    let mut cmd = weir();
    cmd.args(["run", "--source", source.to_str().unwrap(), "--sink", sink.to_str().unwrap()])
        .args(["--dead-letter", dead.to_str().unwrap(), "--parallelism", "2", "--operator"])
        .arg(operator);
    for setting in settings {
        cmd.args(["--set", setting]);
    }
    let output = cmd.output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let lines = std::fs::read_to_string(&sink).unwrap().lines().map(str::to_string).collect();
    let letters = std::fs::read_to_string(&dead)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (lines, letters)
}

#[test]
fn sliding_window_max_in_python_and_javascript_equals_the_rust_operator_window_for_window() {
    for (language, tickers, settings) in LANGUAGES.iter().flat_map(|l| {
        [
            (l, Tickers::Default, vec![]),
            (l, Tickers::Synthetic(50), vec!["window=7s", "slide=3s", "out-of-orderness=0s"]),
        ]
    }) {
        let input = trade_lines(20_000, tickers);
        let (lines, letters) = run(&language.component("sliding_window_max"), &input, &settings);
        let pairs: Vec<(&str, &str)> = settings.iter().filter_map(|s| s.split_once('=')).collect();
        let want = native_per_ticker(&input, &pairs);
        assert!(want.values().map(Vec::len).sum::<usize>() > 20, "enough windows to compare");
        assert_eq!(per_ticker(lines.iter().map(String::as_str)), want, "{} {settings:?}", language.suffix);
        // The generator writes some trades late, on purpose: both refuse the same ones.
        let rust = run(&component("sliding_window_max"), &input, &settings).1;
        let data = |letters: &[serde_json::Value]| -> Vec<String> {
            let mut d: Vec<String> =
                letters.iter().map(|l| l["data"].as_str().unwrap().to_string()).collect();
            d.sort();
            d
        };
        assert_eq!(data(&letters), data(&rust), "{} {settings:?}", language.suffix);
    }
}

#[test]
fn python_and_javascript_dead_letter_each_bad_record_with_a_reason_and_count_the_rest() {
    let bad = [
        "{not json",
        r#"{"TICKER": "AMZN", "PRICE": 1}"#,
        r#"{"EVENT_TIME": "yesterday", "TICKER": "AMZN", "PRICE": 1}"#,
        r#"{"EVENT_TIME": 1795600800000, "TICKER": "AMZN", "PRICE": "12"}"#,
        r#"{"EVENT_TIME": 1795600800000, "TICKER": "AMZN", "PRICE": -1}"#,
        r#"{"EVENT_TIME": 1795600800000, "TICKER": "", "PRICE": 1}"#,
        r#"[1, 2]"#,
    ];
    let good = trade_lines(2_000, Tickers::Default);
    let mut input = bad.join("\n").into_bytes();
    input.push(b'\n');
    input.extend_from_slice(&good);
    for language in &LANGUAGES {
        let (lines, letters) = run(&language.component("sliding_window_max"), &input, &[]);
        assert_eq!(per_ticker(lines.iter().map(String::as_str)), native_per_ticker(&good, &[]));
        for line in bad {
            let letter = letters
                .iter()
                .find(|l| l["data"].as_str() == Some(line))
                .unwrap_or_else(|| panic!("{}: {line} was not dead-lettered: {letters:?}", language.suffix));
            let reason = letter["reason"].as_str().unwrap();
            assert!(
                reason.len() > 10 && !reason.starts_with("late"),
                "{}: {line}: {reason}",
                language.suffix
            );
        }
    }
}

#[test]
fn check_names_the_language_and_the_toolchain() {
    for (language, toolchain) in LANGUAGES.iter().zip(["componentize-py", "ComponentizeJS 0.23.0"]) {
        let out = weir().args(["check"]).arg(language.component("sliding_window_max")).output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert!(stdout.contains("operator sliding-window-max 0.2.0"), "{stdout}");
        assert!(stdout.contains("groups records by JSON field \"TICKER\""), "{stdout}");
        assert!(stdout.contains(language.named) && stdout.contains(toolchain), "{stdout}");
    }
}

#[test]
fn an_exception_dead_letters_its_record_with_the_language_s_error_line() {
    for language in &LANGUAGES {
        let (output, lines, letters) = run_fixture(&language.component("test_fixture"), "raise-on", &[]);
        only_the_poison_record_came_out_aside(&output, &lines, &letters, language.exception);
        assert_eq!(input().lines().count() - 1, lines.len());
    }
}

#[test]
fn an_endless_loop_is_interrupted_and_only_its_record_is_dead_lettered() {
    for language in &LANGUAGES {
        let (output, lines, letters) = run_fixture(&language.component("test_fixture"), "spin-on", &[]);
        only_the_poison_record_came_out_aside(
            &output,
            &lines,
            &letters,
            "ran longer than its CPU limit of 300ms",
        );
    }
}

#[test]
fn a_memory_bomb_is_stopped_and_only_its_record_is_dead_lettered() {
    for language in &LANGUAGES {
        let (output, lines, letters) =
            run_fixture(&language.component("test_fixture"), "alloc-on", &["--max-memory-mib", "96"]);
        only_the_poison_record_came_out_aside(
            &output,
            &lines,
            &letters,
            "exceeded its memory limit of 96 MiB",
        );
    }
}

/// The fixture in `language` loaded with `settings`, compiled once into the tests' shared cache.
fn fixture(language: &Language, settings: &[(&str, &str)]) -> weir::operator::LoadedOperator {
    let settings: Vec<(String, String)> =
        settings.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let cache = weir::operator::CompiledCache::new(concat!(env!("CARGO_TARGET_TMPDIR"), "/weir-cache"));
    let engine = engine_with(weir::operator::Limits::default(), Some(cache));
    let artifact = weir::artifact::Artifact::from_file(&language.component("test_fixture")).unwrap();
    engine.load(artifact, &settings).unwrap()
}

fn records(pairs: &[(&str, &str)]) -> weir_contract::OwnedBatch {
    let mut batch = weir_contract::OwnedBatch::new("shard-0");
    for (key, data) in pairs {
        batch.push(key, data.as_bytes(), 0);
    }
    batch
}

#[test]
fn a_version_hands_its_state_to_the_next_through_a_snapshot_within_and_across_languages() {
    use weir::operator::Runner;
    let [python, javascript] = &LANGUAGES;
    for (from, to) in [(python, python), (javascript, javascript), (python, javascript), (javascript, python)]
    {
        let mut v1 = Runner::new(fixture(from, &[("tag", "-v1")]), "v1", Default::default()).unwrap();
        let first = v1.process(&mut records(&[("a", "1"), ("a", "2"), ("b", "3")])).unwrap();
        let echoed: Vec<String> =
            first.output.iter().map(|(_, d)| String::from_utf8_lossy(d).into_owned()).collect();
        assert_eq!(echoed, ["1-v1", "2-v1", "3-v1"]);
        let state = v1.snapshot().unwrap();
        let v2_settings = [("tag", "-v2"), ("emit-counts", "true")];
        let mut v2 = Runner::new(fixture(to, &v2_settings), "v2", state).unwrap();
        let next = v2.process(&mut records(&[("b", "4")])).unwrap();
        assert_eq!(next.output.iter().map(|(_, d)| d.to_vec()).collect::<Vec<_>>(), [b"4-v2".to_vec()]);
        let end = v2.finish(0).unwrap();
        let counts: Vec<String> = end.iter().map(|(_, d)| String::from_utf8_lossy(d).into_owned()).collect();
        assert_eq!(counts, ["a=2", "b=2"], "the counts of {} carried into {}", from.suffix, to.suffix);
    }
}

#[test]
fn state_written_by_the_rust_fixture_is_refused_naming_why() {
    use weir::operator::Runner;
    let mut rust = Runner::new(load("test_fixture", &[]).unwrap(), "rust", Default::default()).unwrap();
    rust.process(&mut records(&[("a", "1")])).unwrap();
    let state = rust.snapshot().unwrap();
    for language in &LANGUAGES {
        let refused = Runner::new(fixture(language, &[]), language.suffix, state.clone())
            .err()
            .expect("refused")
            .to_string();
        assert!(refused.contains("cannot be read as JSON"), "{refused}");
        assert!(refused.contains("another language"), "{refused}");
    }
}

/// Through `weir deploy` and the deployment watch, at parallelism 3, half the trades in: the
/// next version takes over, state and all, and the windows are those of a run without a swap.
fn a_live_swap_keeps_every_window(from: &std::path::Path, to: &std::path::Path, bucket: &str) {
    use crate::swap::{ROLLBACKS, SWAPS, WITHIN, deploy, half_way, start, target};
    let target = target(bucket);
    deploy(from, &target, &[]);
    let input = trade_lines(30_000, Tickers::Synthetic(50));
    let half = half_way(&input);
    let mut weir = start(&target, &["--parallelism", "3"]);
    weir.write(&input[..half]);
    weir.wait_until("windows out of the first half", |out, _| !out.is_empty());
    deploy(to, &target, &[]);
    weir.wait_for_metric(SWAPS, |n| n >= 1.0, WITHIN);
    weir.write(&input[half..]);
    assert_eq!(weir.metric(ROLLBACKS), 0.0);
    let (status, out, log) = weir.finish();
    assert!(status.success(), "{log}");
    assert!(
        per_ticker(out.iter().map(String::as_str)) == native_per_ticker(&input, &[]),
        "{} -> {}: the same windows as a run without a swap",
        from.display(),
        to.display()
    );
}

#[test]
fn a_python_version_swaps_live_to_the_next_with_every_window_intact() {
    let dir = tempfile::tempdir().unwrap();
    let v1 = built("sliding_window_max_py");
    let v2 = crate::swap::same_code_new_digest(&v1, dir.path());
    a_live_swap_keeps_every_window(&v1, &v2, "swap-py");
}

#[test]
fn a_live_swap_from_python_to_javascript_carries_the_state_across_languages() {
    a_live_swap_keeps_every_window(
        &built("sliding_window_max_py"),
        &built("sliding_window_max_js"),
        "swap-py-js",
    );
}

/// The folder of a pinned toolchain (`python` or `js`), as scripts/build-components wrote it.
fn toolchain(language: &str) -> PathBuf {
    let list = std::fs::read_to_string(built("toolchains").with_extension(""))
        .expect("scripts/build-components ran");
    let line =
        list.lines().find_map(|l| l.strip_prefix(&format!("{language} "))).expect("the toolchain is named");
    PathBuf::from(line)
}

/// The repository this test builds from (the SDKs and the contract).
fn repository() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().expect("runtime/ is in the repository").to_path_buf()
}

/// Run `cmd` in `dir`, failing the test with its output if it fails.
fn ok(cmd: &mut std::process::Command, dir: &std::path::Path) {
    let out = cmd.current_dir(dir).output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `weir run` of the component at `path` over one record: what it wrote.
fn shout_of(path: &std::path::Path) -> String {
    let mut child = weir()
        .args(["run", "--source", "-", "--operator"])
        .arg(path)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(b"{\"x\":\"hi\"}\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn weir_new_makes_a_project_that_tests_builds_checks_and_runs_in_each_language() {
    let dir = tempfile::tempdir().unwrap();
    let repo = repository();
    for lang in ["rust", "python", "js"] {
        let name = format!("shout-{lang}");
        ok(weir().args(["new", "--lang", lang, &name, "--weir"]).arg(&repo), dir.path());
    }
    let refused =
        weir().args(["new", "--lang", "rust", "shout-rust"]).current_dir(dir.path()).output().unwrap();
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("shout-rust exists already"));

    // Rust: the crate's own test, then the component, offline (the SDK by path).
    let rust = dir.path().join("shout-rust");
    let target = PathBuf::from(concat!(env!("CARGO_TARGET_TMPDIR"), "/weir-new-rust"));
    ok(
        std::process::Command::new("cargo")
            .args(["test", "-q", "--offline"])
            .env("CARGO_TARGET_DIR", &target),
        &rust,
    );
    ok(
        std::process::Command::new("cargo")
            .args(["build", "-q", "--offline", "--release", "--target", "wasm32-wasip2"])
            .env("CARGO_TARGET_DIR", &target),
        &rust,
    );
    let rust_component = target.join("wasm32-wasip2/release/shout_rust.wasm");

    // Python: pytest, then componentize-py, the SDK from this repository.
    let python = dir.path().join("shout-python");
    let (tools, sdk) = (toolchain("python"), repo.join("operators/sdk-python/src"));
    ok(
        std::process::Command::new(tools.join("bin/pytest"))
            .args(["-q", "-p", "no:cacheprovider"])
            .env("PYTHONPATH", &sdk),
        &python,
    );
    ok(
        std::process::Command::new(tools.join("bin/componentize-py"))
            .args(["-d", "wit", "-w", "operator-component", "componentize", "--stub-wasi", "-p"])
            .arg(&sdk)
            .args(["-p", ".", "app", "-o", "shout-python.wasm"]),
        &python,
    );

    // JavaScript: node --test, then its build script, with the SDK and the pinned tools linked
    // in where `npm install` would put them.
    let js = dir.path().join("shout-js");
    let modules = toolchain("js").join("node_modules");
    std::fs::create_dir_all(js.join("node_modules/@bytecodealliance")).unwrap();
    for (link, to) in [
        ("weir-operator", repo.join("operators/sdk-js")),
        ("rolldown", modules.join("rolldown")),
        ("@bytecodealliance/componentize-js", modules.join("@bytecodealliance/componentize-js")),
    ] {
        std::os::unix::fs::symlink(to, js.join("node_modules").join(link)).unwrap();
    }
    ok(std::process::Command::new("node").args(["--test", "test/"]), &js);
    ok(std::process::Command::new("npm").args(["run", "-s", "build"]), &js);

    for component in [rust_component, python.join("shout-python.wasm"), js.join("shout-js.wasm")] {
        let check = weir().arg("check").arg(&component).output().unwrap();
        assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stderr));
        assert_eq!(shout_of(&component), r#"{"X":"HI"}"#, "{}", component.display());
    }
}

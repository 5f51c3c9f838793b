//! ARCHITECTURE.md held true by a test: the document is the map a newcomer reads, so the code
//! may not drift from it.
//!
//! - Every `crate::`/`weir::` reference between the runtime's modules is one the document's
//!   table ("may use") allows, and the table itself has no cycle.
//! - No two files of one crate refer to each other, directly or round a longer loop (a
//!   module's `mod.rs`/`lib.rs` aside, which declares its files).
//! - `anyhow` only in binaries (`main.rs`, the runtime's `cli/` and `cmd/`).
//! - Every file the document names exists, and every type it names (`Type`, `Type::item`) is
//!   defined with that item.
//!
//! Code is read as text with comments and `#[cfg(test)]` modules left out: what a test module
//! uses is not the architecture.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The workspace's root.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("runtime/ is in the workspace").to_path_buf()
}

/// The crates' source folders, relative to the root.
const CRATES: &[&str] = &[
    "contract/src",
    "aws/src",
    "checkpoint/src",
    "json/src",
    "kinesis/src",
    "producer/src",
    "runtime/src",
    "operators/sdk/src",
    "operators/sliding-window-max/src",
    "operators/rekey/src",
    "operators/price-alert/src",
    "operators/test-fixture/src",
    "examples/by-ticker/src",
];

/// Every file and folder under `dir` (build output and hidden ones aside), relative to it,
/// sorted; folders end with `/`.
fn walk(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(at) = pending.pop() {
        for entry in std::fs::read_dir(&at).unwrap_or_else(|e| panic!("{}: {e}", at.display())) {
            let path = entry.unwrap().path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            if name == "target" || name == "node_modules" || name.starts_with('.') {
                continue;
            }
            let relative = path.strip_prefix(dir).unwrap().display().to_string();
            if path.is_dir() {
                found.push(format!("{relative}/"));
                pending.push(path);
            } else {
                found.push(relative);
            }
        }
    }
    found.sort();
    found
}

/// Every `.rs` file of the crate whose sources are in `dir` (relative to the root), with its
/// code as [`code`] leaves it.
fn sources(dir: &str) -> Vec<(PathBuf, String)> {
    let dir = root().join(dir);
    walk(&dir)
        .into_iter()
        .filter(|f| f.ends_with(".rs"))
        .map(|f| {
            let text = std::fs::read_to_string(dir.join(&f)).unwrap();
            (PathBuf::from(f), code(&text))
        })
        .collect()
}

/// `text` without comments, string literals' contents, and what follows a `#[cfg(test)]`.
fn code(text: &str) -> String {
    let text = match text.find("#[cfg(test)]") {
        Some(at) => &text[..at],
        None => text,
    };
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '/' if chars.peek() == Some(&'/') => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        out.push('\n');
                        break;
                    }
                }
            }
            '/' if chars.peek() == Some(&'*') => {
                let mut last = ' ';
                for c in chars.by_ref() {
                    if last == '*' && c == '/' {
                        break;
                    }
                    last = c;
                }
            }
            '"' => {
                out.push('"');
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => {
                            chars.next();
                        }
                        '"' => break,
                        _ => {}
                    }
                }
                out.push('"');
            }
            // A char literal ('"', '\'', '\u{7f}', 'a'); a lifetime ('a) is left as it is.
            '\'' => {
                let mut ahead = chars.clone();
                let literal = match ahead.next() {
                    Some('\\') => true,
                    Some(_) => ahead.next() == Some('\''),
                    None => false,
                };
                if literal {
                    if chars.next() == Some('\\') {
                        chars.next();
                    }
                    for c in chars.by_ref() {
                        if c == '\'' {
                            break;
                        }
                    }
                    out.push_str("' '");
                } else {
                    out.push(c);
                }
            }
            _ => out.push(c),
        }
    }
    out
}

/// The module paths that follow `prefix` in `code`, use-trees unfolded: `crate::a::{b::C, d}`
/// gives `a::b` and `a::d` (lower-case segments only: a type or a function ends a path).
fn paths_after(code: &str, prefix: &str) -> Vec<Vec<String>> {
    let mut found = Vec::new();
    let mut at = 0;
    while let Some(offset) = code[at..].find(prefix) {
        let start = at + offset;
        at = start + prefix.len();
        let before = code[..start].chars().next_back();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
            continue;
        }
        tree(&code[at..], Vec::new(), &mut found);
    }
    found
}

/// The paths of one use-tree at the start of `text`, each after `base`.
fn tree(text: &str, mut base: Vec<String>, found: &mut Vec<Vec<String>>) {
    let mut rest = text.trim_start();
    loop {
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 0;
            let mut item_start = 0;
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => {
                        tree(&group[item_start..i], base.clone(), found);
                        return;
                    }
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        tree(&group[item_start..i], base.clone(), found);
                        item_start = i + 1;
                    }
                    _ => {}
                }
            }
            return;
        }
        let end = rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(rest.len());
        let name = &rest[..end];
        if name.is_empty() || !name.starts_with(|c: char| c.is_ascii_lowercase()) || name == "self" {
            break;
        }
        base.push(name.to_string());
        match rest[end..].strip_prefix("::") {
            Some(next) => rest = next,
            None => break,
        }
    }
    if !base.is_empty() {
        found.push(base);
    }
}

/// The file a module path names in a crate of `files`: `a::b` is `a/b.rs`, `a/b/mod.rs`, or
/// else `a.rs`/`a/mod.rs` (an item of `a`).
fn resolve(files: &BTreeSet<PathBuf>, segments: &[String]) -> Option<PathBuf> {
    for len in (1..=segments.len()).rev() {
        let base: PathBuf = segments[..len].iter().collect();
        for candidate in [base.with_extension("rs"), base.join("mod.rs")] {
            if files.contains(&candidate) {
                return Some(candidate);
            }
        }
    }
    None
}

/// Files that declare others (a crate's root, a module's `mod.rs`): edges to them are not
/// counted, since every file of a module may use what its module declares.
fn is_declaring(file: &Path) -> bool {
    matches!(file.file_name().and_then(|n| n.to_str()), Some("mod.rs" | "lib.rs" | "main.rs"))
}

/// The files of one crate each file refers to (`crate::`, `super::`, and in the runtime's
/// binary `weir::`).
fn file_edges(dir: &str) -> BTreeMap<PathBuf, BTreeSet<PathBuf>> {
    let sources = sources(dir);
    let files: BTreeSet<PathBuf> = sources.iter().map(|(f, _)| f.clone()).collect();
    let mut edges = BTreeMap::new();
    for (file, text) in &sources {
        let folder: Vec<String> = file
            .parent()
            .map(|p| p.iter().filter_map(|s| s.to_str()).map(String::from).collect())
            .unwrap_or_default();
        let mut to = BTreeSet::new();
        let mut prefixes = vec![("crate::", Vec::new())];
        if dir == "runtime/src" {
            prefixes.push(("weir::", Vec::new()));
        }
        // `super::` from `a/b.rs` is `a`; from `a/mod.rs` it is the crate root's `a`'s parent.
        let parent: Vec<String> = if is_declaring(file) {
            folder.iter().take(folder.len().saturating_sub(1)).cloned().collect()
        } else {
            folder.clone()
        };
        prefixes.push(("super::", parent));
        for (prefix, base) in prefixes {
            for segments in paths_after(text, prefix) {
                let full: Vec<String> = base.iter().cloned().chain(segments).collect();
                if let Some(target) = resolve(&files, &full)
                    && target != *file
                {
                    to.insert(target);
                }
            }
        }
        edges.insert(file.clone(), to);
    }
    edges
}

/// A cycle in `edges`, if there is one, as the nodes round it.
fn cycle<N: Ord + Clone>(edges: &BTreeMap<N, BTreeSet<N>>) -> Option<Vec<N>> {
    fn visit<N: Ord + Clone>(
        node: &N,
        edges: &BTreeMap<N, BTreeSet<N>>,
        done: &mut BTreeSet<N>,
        path: &mut Vec<N>,
    ) -> Option<Vec<N>> {
        if let Some(at) = path.iter().position(|n| n == node) {
            let mut round = path[at..].to_vec();
            round.push(node.clone());
            return Some(round);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.clone());
        for next in edges.get(node).into_iter().flatten() {
            if let Some(round) = visit(next, edges, done, path) {
                return Some(round);
            }
        }
        path.pop();
        done.insert(node.clone());
        None
    }
    let mut done = BTreeSet::new();
    edges.keys().find_map(|node| visit(node, edges, &mut done, &mut Vec::new()))
}

fn architecture() -> String {
    std::fs::read_to_string(root().join("ARCHITECTURE.md")).unwrap()
}

/// The table of ARCHITECTURE.md headed `| module | may use |`: each runtime module and the
/// modules it may use (`nothing`, names, or `every module above`).
fn allowed() -> BTreeMap<String, BTreeSet<String>> {
    let doc = architecture();
    let start = doc.find("| module | may use |").expect("ARCHITECTURE.md has a `| module | may use |` table");
    let mut table: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for line in doc[start..].lines().skip(2).take_while(|l| l.starts_with('|')) {
        let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
        let may = match cells.get(1).copied().unwrap_or("") {
            "every module above" => table.keys().cloned().collect(),
            cell => cell
                .split(',')
                .map(|s| s.trim().trim_matches('`').to_string())
                .filter(|s| !s.is_empty() && s != "nothing")
                .collect(),
        };
        table.insert(cells[0].trim_matches('`').to_string(), may);
    }
    table
}

/// The module of a runtime file: `source/kinesis.rs` is `source`, `s3.rs` is `s3`.
fn module_of(file: &Path) -> String {
    let first = file.iter().next().and_then(|s| s.to_str()).unwrap_or_default();
    first.trim_end_matches(".rs").to_string()
}

#[test]
fn every_reference_between_runtime_modules_is_one_the_table_allows_and_the_table_has_no_cycle() {
    let allowed = allowed();
    let mut refused = Vec::new();
    let mut modules: BTreeSet<String> = BTreeSet::new();
    for (file, targets) in file_edges("runtime/src") {
        let from = module_of(&file);
        modules.insert(from.clone());
        for target in targets {
            let to = module_of(&target);
            if to != from && !allowed.get(&from).is_some_and(|may| may.contains(&to)) {
                refused.push(format!("{} uses {} ({to})", file.display(), target.display()));
            }
        }
    }
    assert!(refused.is_empty(), "not allowed by ARCHITECTURE.md's table:\n{}", refused.join("\n"));
    let roots = BTreeSet::from(["lib".to_string(), "main".to_string()]);
    let listed: BTreeSet<String> = allowed.keys().cloned().collect();
    let missing: Vec<_> = modules.difference(&listed).filter(|m| !roots.contains(*m)).collect();
    assert!(missing.is_empty(), "modules missing from ARCHITECTURE.md's table: {missing:?}");
    let unknown: Vec<_> = listed.difference(&modules).collect();
    assert!(unknown.is_empty(), "ARCHITECTURE.md's table lists modules that do not exist: {unknown:?}");
    assert_eq!(cycle(&allowed), None, "ARCHITECTURE.md's table allows a cycle");
}

#[test]
fn no_two_files_of_a_crate_use_each_other_directly_or_round_a_loop() {
    let mut loops = Vec::new();
    for krate in CRATES {
        let mut edges = file_edges(krate);
        edges.retain(|file, _| !is_declaring(file));
        for targets in edges.values_mut() {
            targets.retain(|t| !is_declaring(t));
        }
        if let Some(round) = cycle(&edges) {
            let names: Vec<String> = round.iter().map(|f| f.display().to_string()).collect();
            loops.push(format!("{krate}: {}", names.join(" -> ")));
        }
    }
    assert!(loops.is_empty(), "files that use each other:\n{}", loops.join("\n"));
}

#[test]
fn only_binaries_use_anyhow() {
    let binary = |krate: &str, file: &Path| {
        file.file_name().is_some_and(|n| n == "main.rs")
            || file.starts_with("bin")
            || (krate == "runtime/src" && (file.starts_with("cli") || file.starts_with("cmd")))
    };
    let mut found = Vec::new();
    for krate in CRATES {
        for (file, code) in sources(krate) {
            if !binary(krate, &file) && code.contains("anyhow") {
                found.push(format!("{krate}/{}", file.display()));
            }
        }
    }
    assert!(found.is_empty(), "anyhow in library code (return a thiserror type): {found:?}");
}

/// The body (between its braces) of every item in `code` whose header matches `header`.
fn bodies<'a>(code: &'a str, header: &regex_lite::Regex) -> Vec<&'a str> {
    header
        .find_iter(code)
        .filter_map(|m| {
            let open = m.end() + code[m.end()..].find('{')?;
            let mut depth = 0;
            for (i, c) in code[open..].char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(&code[open + 1..open + i]);
                        }
                    }
                    _ => {}
                }
            }
            None
        })
        .collect()
}

#[test]
fn every_file_and_type_the_document_names_exists() {
    let doc = architecture();
    let files = walk(&root());
    let code: String =
        CRATES.iter().flat_map(|krate| sources(krate)).map(|(_, code)| code).collect::<Vec<_>>().join("\n");
    let word = |name: &str| regex_lite::Regex::new(&format!(r"\b{name}\b")).unwrap();
    let mut wrong = Vec::new();
    let named = regex_lite::Regex::new(r"`([^`\n]+)`").unwrap();
    let path =
        regex_lite::Regex::new(r"^([A-Z][A-Za-z0-9]*)(?:::([A-Za-z_][A-Za-z0-9_]*))?(?:\(.*\))?$").unwrap();
    for token in named.captures_iter(&doc).map(|c| c[1].to_string()).collect::<BTreeSet<_>>() {
        if (token.ends_with(".rs") || token.ends_with('/')) && !token.contains("://") {
            let exists = files.iter().any(|f| f == &token || f.ends_with(&format!("/{token}")));
            if !exists {
                wrong.push(format!("no file {token}"));
            }
            continue;
        }
        let Some(parts) = path.captures(&token) else { continue };
        if files.iter().any(|f| f == &token) {
            continue;
        }
        let (ty, item) = (&parts[1], parts.get(2).map(|m| m.as_str()));
        if !ty.contains(|c: char| c.is_ascii_lowercase()) {
            // An upper-case word (`LATEST`, `LOCK`) names a file or a constant's value.
            continue;
        }
        match item {
            None if !word(ty).is_match(&code) => wrong.push(format!("no {token} in the code")),
            None => {}
            Some(item) => {
                let items = regex_lite::Regex::new(&format!(
                    r"(?:impl(?:<[^>]*>)?\s+(?:[A-Za-z0-9_:<>, ]+\s+for\s+)?{ty}\b[^{{;]*|enum\s+{ty}\b[^{{;]*|trait\s+{ty}\b[^{{;]*)"
                ))
                .unwrap();
                if !bodies(&code, &items).iter().any(|body| word(item).is_match(body)) {
                    wrong.push(format!("no {item} in {ty}: `{token}`"));
                }
            }
        }
    }
    assert!(wrong.is_empty(), "ARCHITECTURE.md names what does not exist:\n{}", wrong.join("\n"));
}

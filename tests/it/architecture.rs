//! The module graph of the library has no cycle: modules import downwards only
//! (docs/architecture.md names the layers). Read from the source, so a new `use` that closes a
//! cycle fails here with the cycle spelled out.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Every module of `src/` by path (`db::ledger`), with the modules its code refers to.
fn module_graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    collect(&src, &mut files);
    let modules: BTreeMap<String, PathBuf> =
        files.into_iter().filter_map(|file| Some((module_of(&src, &file)?, file))).collect();
    let names: BTreeSet<String> = modules.keys().cloned().collect();
    modules
        .iter()
        .map(|(module, file)| {
            let text = std::fs::read_to_string(file).unwrap();
            let code = text.split("\n#[cfg(test)]").next().unwrap_or_default();
            // Comments (doc links included) name modules without depending on them.
            let code: String = code
                .lines()
                .filter(|line| !line.trim_start().starts_with("//"))
                .collect::<Vec<_>>()
                .join("\n");
            let used = references(module, &code)
                .into_iter()
                .filter_map(|path| deepest_module(&names, &path))
                .filter(|used| used != module && !is_ancestor(used, module) && !is_ancestor(module, used))
                .collect();
            (module.clone(), used)
        })
        .collect()
}

fn collect(dir: &Path, files: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            collect(&path, files);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            files.push(path);
        }
    }
}

/// `src/db/ledger.rs` → `db::ledger`; `src/db/mod.rs` → `db`; the crate roots are not modules.
fn module_of(src: &Path, file: &Path) -> Option<String> {
    let relative = file.strip_prefix(src).ok()?.with_extension("");
    let mut parts: Vec<String> = relative.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    if parts.last().is_some_and(|last| last == "mod") {
        parts.pop();
    }
    if parts.is_empty() || parts == ["lib"] || parts == ["main"] {
        return None;
    }
    Some(parts.join("::"))
}

/// The `crate::…` and `super::…` paths a file's code names, as absolute module paths.
fn references(module: &str, code: &str) -> Vec<Vec<String>> {
    let parent: Vec<&str> = module.split("::").collect();
    let mut paths = Vec::new();
    for (prefix, base) in [("crate::", Vec::new()), ("super::", parent[..parent.len() - 1].to_vec())] {
        for (at, _) in code.match_indices(prefix) {
            let before = code[..at].chars().last();
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                continue;
            }
            let rest = &code[at + prefix.len()..];
            let path: Vec<String> = rest
                .split("::")
                .map(|part| part.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect::<String>())
                .take_while(|part| !part.is_empty())
                .collect();
            // `use crate::db::{ledger, Database}` names `db` and, through the braces, `db::ledger`.
            let mut full: Vec<String> = base.iter().map(|s| s.to_string()).collect();
            full.extend(path.clone());
            paths.push(full.clone());
            if let Some(braces) = rest.get(path.iter().map(|p| p.len() + 2).sum::<usize>()..) {
                if let Some(inner) = braces.strip_prefix('{') {
                    let inner = &inner[..inner.find('}').unwrap_or(inner.len())];
                    for item in inner.split(',') {
                        let item: String =
                            item.trim().chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                        let mut nested = full.clone();
                        nested.push(item);
                        paths.push(nested);
                    }
                }
            }
        }
    }
    paths
}

fn deepest_module(names: &BTreeSet<String>, path: &[String]) -> Option<String> {
    (1..=path.len()).rev().map(|n| path[..n].join("::")).find(|candidate| names.contains(candidate))
}

fn is_ancestor(ancestor: &str, module: &str) -> bool {
    module.starts_with(&format!("{ancestor}::"))
}

/// A cycle through `start`, if any, as the modules along it.
fn cycle_from(graph: &BTreeMap<String, BTreeSet<String>>, start: &str) -> Option<Vec<String>> {
    let mut stack = vec![(start.to_owned(), vec![start.to_owned()])];
    let mut seen = BTreeSet::new();
    while let Some((module, path)) = stack.pop() {
        for next in graph.get(&module).into_iter().flatten() {
            if next == start {
                let mut cycle = path.clone();
                cycle.push(start.to_owned());
                return Some(cycle);
            }
            if seen.insert(next.clone()) {
                let mut longer = path.clone();
                longer.push(next.clone());
                stack.push((next.clone(), longer));
            }
        }
    }
    None
}

#[test]
fn the_library_modules_import_without_cycles() {
    let graph = module_graph();
    assert!(graph.len() > 20, "the module graph was not read: {graph:?}");
    let cycles: Vec<String> =
        graph.keys().filter_map(|m| cycle_from(&graph, m)).map(|c| c.join(" → ")).collect();
    assert!(cycles.is_empty(), "import cycles:\n{}", cycles.join("\n"));
}

#[test]
fn the_cycle_check_sees_a_cycle() {
    let graph: BTreeMap<String, BTreeSet<String>> = [
        ("a".to_owned(), BTreeSet::from(["b".to_owned()])),
        ("b".to_owned(), BTreeSet::from(["a".to_owned()])),
    ]
    .into();
    assert_eq!(cycle_from(&graph, "a"), Some(vec!["a".into(), "b".into(), "a".into()]));
}

#[test]
fn braces_in_a_use_name_the_modules_inside_them() {
    let refs = references("jobs::run", "use crate::db::{ledger, Database};");
    assert!(refs.contains(&vec!["db".to_owned(), "ledger".to_owned()]), "{refs:?}");
}

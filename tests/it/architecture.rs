//! The module graph of the library: no cycle, and every import goes down the layers
//! docs/architecture.md names (or stays in its layer); the outside systems' crates are used only
//! by the module that owns that system. Read from the source, so a new `use` that breaks a rule
//! fails here naming the modules.

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

/// The layers, bottom first: a module may import from its own layer and those below it.
const LAYERS: &[(&str, &[&str])] = &[
    (
        "plain values",
        &[
            "advice",
            "causes",
            "counts",
            "exit",
            "failpoint",
            "mode",
            "names",
            "panic_hook",
            "runtime",
            "shard",
            "slot",
            "spread",
            "stop",
            "timeout",
            "user_week",
        ],
    ),
    ("outside systems", &["db", "fcm", "metrics", "ping"]),
    ("the work", &["breaker", "engine", "ledger", "report", "stats", "tokens"]),
    // stats::report is the `stats weekly` run's report: presentation, over the work's figures.
    (
        "saying what happened",
        &["error", "output", "summary", "stats::report", "report::render", "report::html"],
    ),
    ("configuration", &["cli", "config"]),
    ("jobs", &["jobs"]),
];

/// Outside systems' crates, and the one module (with its submodules) that may use each.
const OWNED_CRATES: &[(&str, &str)] = &[
    ("mysql_async", "db"),
    ("h2", "fcm"),
    ("gcp_auth", "fcm"),
    ("rustls", "fcm"),
    ("tokio_rustls", "fcm"),
    ("rustls_platform_verifier", "fcm"),
];

/// The layer of `module`: that of the most specific entry naming it or an ancestor.
fn layer_of(module: &str) -> usize {
    let names = |entry: &str| module == entry || is_ancestor(entry, module);
    LAYERS
        .iter()
        .enumerate()
        .flat_map(|(layer, (_, modules))| modules.iter().filter(|m| names(m)).map(move |m| (m.len(), layer)))
        .max()
        .map(|(_, layer)| layer)
        .unwrap_or_else(|| panic!("module {module} is in no layer of LAYERS: add it where it belongs"))
}

/// Every import that climbs: `(module, the module it uses)`.
fn climbing_imports(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<String> {
    let mut climbing = Vec::new();
    for (module, used) in graph {
        for target in used {
            let (from, to) = (layer_of(module), layer_of(target));
            if to > from {
                climbing.push(format!("{module} ({}) uses {target} ({})", LAYERS[from].0, LAYERS[to].0));
            }
        }
    }
    climbing
}

#[test]
fn every_import_goes_down_the_layers_or_stays_in_its_own() {
    let climbing = climbing_imports(&module_graph());
    assert!(climbing.is_empty(), "imports from a higher layer:\n{}", climbing.join("\n"));
}

#[test]
fn the_layer_check_sees_an_import_from_above() {
    let graph: BTreeMap<String, BTreeSet<String>> =
        [("db::stats".to_owned(), BTreeSet::from(["stats::week".to_owned()]))].into();
    assert_eq!(climbing_imports(&graph), vec!["db::stats (outside systems) uses stats::week (the work)"]);
}

/// The files of `src/` outside `owner/` whose code names `krate::`.
fn users_outside(krate: &str, owner: &str) -> Vec<String> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    collect(&src, &mut files);
    files
        .into_iter()
        .filter(|file| !file.starts_with(src.join(owner)))
        .filter(|file| {
            let text = std::fs::read_to_string(file).unwrap();
            text.lines().filter(|line| !line.trim_start().starts_with("//")).any(|line| {
                line.match_indices(&format!("{krate}::")).any(|(at, _)| {
                    !line[..at].ends_with(|c: char| c.is_alphanumeric() || c == '_' || c == ':')
                })
            })
        })
        .map(|file| file.strip_prefix(&src).unwrap().display().to_string())
        .collect()
}

#[test]
fn each_outside_systems_crate_is_used_only_by_the_module_that_owns_it() {
    let strays: Vec<String> = OWNED_CRATES
        .iter()
        .flat_map(|(krate, owner)| {
            users_outside(krate, owner)
                .into_iter()
                .map(move |file| format!("{file} uses {krate} (owned by {owner})"))
        })
        .collect();
    assert!(strays.is_empty(), "{}", strays.join("\n"));
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

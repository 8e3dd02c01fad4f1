//! The monitoring and Kubernetes homes checked with the ecosystem's own tools: Prometheus's
//! `promtool` on the alert rules and their unit tests, the Grafana dashboard against the series
//! the tool really writes, and the Kubernetes manifests against Kubernetes' API schema (the npm
//! package kubernetes-models, with the machine's Node). A missing tool fails the test, naming
//! what to install: `.ci/run` installs them all.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::harness::{bare_cmd, Ran, RunToEnd};

fn repository() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs a tool of the machine; a missing one fails the test with what to install.
fn tool(program: &str, args: &[&str], install: &str) -> Ran {
    let output = Command::new(program).args(args).current_dir(repository()).output();
    Ran::from(output.unwrap_or_else(|e| panic!("cannot run {program} ({e}): {install} (.ci/run does)")))
}

fn promtool(args: &[&str]) -> Ran {
    tool("promtool", args, "install Debian's prometheus package, which has promtool")
}

#[test]
fn deploy_prometheus_rules_pass_promtool_check() {
    promtool(&["check", "rules", "deploy/prometheus/wolley-push.rules.yml"]).exits(0);
}

#[test]
fn deploy_prometheus_alerts_fire_on_their_series_and_not_on_healthy_ones() {
    promtool(&["test", "rules", "deploy/prometheus/tests.yml"]).exits(0);
}

/// Every `wolley_push_*` name in `text`.
fn series_names(text: &str) -> BTreeSet<String> {
    text.match_indices("wolley_push_")
        .map(|(at, _)| {
            text[at..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect::<String>()
        })
        .collect()
}

/// Every `expr` string anywhere in a JSON value.
fn exprs(value: &Value, found: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                match (key.as_str(), child) {
                    ("expr", Value::String(expr)) => found.push(expr.clone()),
                    _ => exprs(child, found),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| exprs(item, found)),
        _ => {}
    }
}

/// The series real runs write: a `save-location` (its messages included) and a week's report,
/// into one metrics file.
fn written_series() -> BTreeSet<String> {
    let world = crate::report::fixture();
    let metrics = world.file("wolley-push.prom", "");
    let metrics_arg = metrics.to_str().unwrap();
    let tokens = repository().join("examples/tokens.txt");
    bare_cmd()
        .args(["save-location", "-q", "--print", "--tokens-file", tokens.to_str().unwrap()])
        .args(["--metrics-file", metrics_arg])
        .ran()
        .exits(0);
    world.run(["report", "week", "--week", "2026-W48", "-q", "--metrics-file", metrics_arg]).exits(0);
    let text = std::fs::read_to_string(&metrics).unwrap();
    text.lines().filter(|line| !line.starts_with('#')).flat_map(series_names).collect()
}

#[test]
fn deploy_grafana_dashboard_and_alerts_read_only_series_the_tool_writes() {
    let dashboard: Value = serde_json::from_str(
        &std::fs::read_to_string(repository().join("deploy/grafana/wolley-push.json")).unwrap(),
    )
    .expect("the dashboard is JSON");
    let mut found = Vec::new();
    exprs(&dashboard, &mut found);
    let rules: Value = serde_norway::from_str(
        &std::fs::read_to_string(repository().join("deploy/prometheus/wolley-push.rules.yml")).unwrap(),
    )
    .expect("the rules are YAML");
    exprs(&rules, &mut found);
    let read: BTreeSet<String> = found.iter().flat_map(|expr| series_names(expr)).collect();
    assert!(read.len() >= 7, "the dashboard and rules read {read:?}");
    let written = written_series();
    let unknown: Vec<&String> = read.difference(&written).collect();
    assert!(unknown.is_empty(), "read but never written: {unknown:?}; the tool writes {written:?}");
}

// ---- Kubernetes, against the API schema ----

/// Installs the checker's locked npm packages once per test run, when a fresh clone has none:
/// `cargo test` alone is enough (the npm registry is one of the machine's registries).
fn install_checker(checker: &Path) {
    static INSTALLED: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    INSTALLED.get_or_init(|| {
        if checker.join("node_modules/kubernetes-models").is_dir() {
            return;
        }
        let prefix = checker.to_string_lossy().into_owned();
        let output =
            tool("npm", &["ci", "--prefix", &prefix, "--no-audit", "--no-fund", "--silent"], "install npm");
        assert_eq!(output.code(), 0, "npm ci in tests/k8s-schema failed: {}", output.stderr());
    });
}

/// `node tests/k8s-schema/validate.mjs FILES`.
fn validate_manifests(files: &[&Path]) -> Ran {
    let checker = repository().join("tests/k8s-schema");
    install_checker(&checker);
    let mut args = vec![checker.join("validate.mjs").to_string_lossy().into_owned()];
    args.extend(files.iter().map(|file| file.to_string_lossy().into_owned()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    tool("node", &args, "install Node.js")
}

#[test]
fn deploy_kubernetes_manifests_pass_the_api_schema() {
    let dir = repository().join("deploy/kubernetes");
    let files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "yaml"))
        .collect();
    assert!(files.len() >= 3, "manifests: {files:?}");
    let stdout =
        validate_manifests(&files.iter().map(PathBuf::as_path).collect::<Vec<_>>()).exits(0).stdout();
    let checked = stdout.lines().filter(|line| line.starts_with("ok ")).count();
    assert!(checked >= 7, "every document checked: {stdout}");
}

#[test]
fn deploy_kubernetes_manifest_with_a_misspelt_field_is_rejected() {
    let text = std::fs::read_to_string(repository().join("deploy/kubernetes/cronjobs.yaml")).unwrap();
    assert!(text.contains("readOnlyRootFilesystem"));
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("cronjobs.yaml");
    std::fs::write(&bad, text.replacen("readOnlyRootFilesystem", "readOnlyRootFileSystem", 1)).unwrap();
    let output = validate_manifests(&[&bad]);
    assert!(!output.status().success(), "accepted a misspelt field");
    output.stderr_contains("unknown field \"readOnlyRootFileSystem\"");
}

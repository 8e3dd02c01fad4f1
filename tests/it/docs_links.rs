//! Every link in README.md and docs/*.md leads somewhere: a relative Markdown link names a file
//! that exists, and its `#anchor` a heading of the target (GitHub's anchors). And every textual
//! reference to a heading of README or of a docs file, in the form messages and comments use (the
//! file, a comma, then the heading in double quotes), anywhere in the repository, names a heading
//! that exists.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn repository() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// README.md and every docs/*.md.
fn documents() -> Vec<PathBuf> {
    let mut found = vec![repository().join("README.md")];
    for entry in std::fs::read_dir(repository().join("docs")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "md") {
            found.push(path);
        }
    }
    found.sort();
    found
}

/// The lines outside fenced code blocks (where a `#` is a shell comment, not a heading).
fn prose(text: &str) -> Vec<&str> {
    let mut fenced = false;
    let mut lines = Vec::new();
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
        } else if !fenced {
            lines.push(line);
        }
    }
    lines
}

/// The text of each heading (`#` to `######`), backticks removed.
fn headings(text: &str) -> Vec<String> {
    prose(text)
        .into_iter()
        .filter_map(|line| {
            let hashes = line.len() - line.trim_start_matches('#').len();
            let rest = &line[hashes..];
            ((1..=6).contains(&hashes) && rest.starts_with(' '))
                .then(|| rest.trim().trim_end_matches('#').trim().replace('`', ""))
        })
        .collect()
}

/// GitHub's anchor for a heading: lowercase, punctuation removed except `-` and `_`, each space
/// a `-`.
fn anchor(heading: &str) -> String {
    heading
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// Every anchor of a document: a repeated heading's second anchor ends in `-1`, its third in `-2`.
fn anchors(text: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for heading in headings(text) {
        let base = anchor(&heading);
        let mut candidate = base.clone();
        let mut n = 0;
        while !found.insert(candidate.clone()) {
            n += 1;
            candidate = format!("{base}-{n}");
        }
    }
    found
}

/// The targets of the inline links and images of the prose: `[text](target)`.
fn link_targets(text: &str) -> Vec<String> {
    let mut targets = Vec::new();
    for line in prose(text) {
        for (at, _) in line.match_indices("](") {
            let rest = &line[at + 2..];
            if let Some(end) = rest.find(')') {
                let target = rest[..end].split_whitespace().next().unwrap_or("");
                targets.push(target.to_owned());
            }
        }
    }
    targets
}

/// What is wrong with the link `target` in the document `from`, if anything.
fn check_link(from: &Path, target: &str) -> Option<String> {
    if target.contains("://") || target.starts_with("mailto:") {
        return None;
    }
    let (file, fragment) = target.split_once('#').unwrap_or((target, ""));
    let path = if file.is_empty() { from.to_path_buf() } else { from.parent().unwrap().join(file) };
    if !path.exists() {
        return Some(format!("no file {}", path.strip_prefix(repository()).unwrap_or(&path).display()));
    }
    let is_markdown = path.extension().is_some_and(|e| e == "md");
    if fragment.is_empty() || !is_markdown {
        return None;
    }
    let known = anchors(&read(&path));
    (!known.contains(fragment)).then(|| format!("no heading with the anchor #{fragment} in {file}"))
}

/// A reference's heading text, written over several lines of a comment or a string literal, as
/// one line.
fn joined(quoted: &str) -> String {
    let words = quoted.lines().enumerate().flat_map(|(i, line)| {
        let mut line = line.trim().trim_end_matches('\\');
        if i > 0 {
            line = line.trim_start_matches("//!").trim_start_matches("///").trim_start_matches("//");
            line = line.trim_start_matches(['#', '*']);
        }
        line.split_whitespace()
    });
    words.collect::<Vec<_>>().join(" ")
}

/// The textual references in `text`: (the file as written, the heading it names). The file is
/// README or README.md, or a docs/*.md; the heading follows a comma and a space, in double
/// quotes (escaped or not, so references inside Rust string literals count too).
fn references(text: &str) -> Vec<(String, String)> {
    let mut found = Vec::new();
    for (at, _) in text.match_indices(", ") {
        let before = &text[..at];
        let start = before
            .char_indices()
            .rev()
            .find(|(_, c)| !(c.is_ascii_alphanumeric() || matches!(c, '/' | '.' | '_' | '-')))
            .map_or(0, |(i, c)| i + c.len_utf8());
        let file = &before[start..];
        let names_a_document =
            matches!(file, "README" | "README.md") || (file.starts_with("docs/") && file.ends_with(".md"));
        if !names_a_document {
            continue;
        }
        let rest = &text[at + 2..];
        let quote = if rest.starts_with("\\\"") { "\\\"" } else { "\"" };
        let Some(quoted) = rest.strip_prefix(quote) else { continue };
        if let Some(end) = quoted.find(quote) {
            found.push((file.to_owned(), joined(&quoted[..end])));
        }
    }
    found
}

/// Whether the document's `headings` include `name`: the heading itself, or its title before a
/// colon (`Run safety` names `Run safety: each slot once and completely`).
fn names_a_heading(headings: &[String], name: &str) -> bool {
    headings.iter().any(|h| h == name || h.split_once(':').is_some_and(|(title, _)| title == name))
}

/// The repository's text files, outside build output, Git's data and installed packages.
fn text_files(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy();
        if path.is_dir() {
            if !matches!(&*name, ".git" | "target" | "node_modules") {
                text_files(&path, found);
            }
        } else {
            found.push(path);
        }
    }
}

#[test]
fn every_relative_link_of_the_docs_leads_to_a_file_and_a_heading() {
    let mut broken = Vec::new();
    let mut checked = 0;
    for document in documents() {
        for target in link_targets(&read(&document)) {
            checked += 1;
            if let Some(problem) = check_link(&document, &target) {
                let relative = document.strip_prefix(repository()).unwrap();
                broken.push(format!("{}: ({target}): {problem}", relative.display()));
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
    assert!(checked >= 10, "only {checked} links found: is the link reader still reading?");
}

#[test]
fn every_textual_reference_to_a_heading_names_one_that_exists() {
    let mut files = Vec::new();
    text_files(&repository(), &mut files);
    let mut broken = Vec::new();
    let mut checked = 0;
    for file in files {
        let Ok(text) = std::fs::read_to_string(&file) else { continue };
        for (document, name) in references(&text) {
            checked += 1;
            let target = repository().join(if document == "README" { "README.md" } else { &document });
            let relative = file.strip_prefix(repository()).unwrap().display().to_string();
            if !target.exists() {
                broken.push(format!("{relative}: ({document}, \"{name}\"): no file {document}"));
            } else if !names_a_heading(&headings(&read(&target)), &name) {
                broken.push(format!("{relative}: ({document}, \"{name}\"): no such heading in {document}"));
            }
        }
    }
    assert!(broken.is_empty(), "references to missing headings:\n{}", broken.join("\n"));
    assert!(checked >= 5, "only {checked} references found: is the reference reader still reading?");
}

#[test]
fn readme_leads_to_every_docs_file() {
    let readme = read(&repository().join("README.md"));
    let linked: BTreeSet<String> =
        link_targets(&readme).into_iter().map(|t| t.split('#').next().unwrap().to_owned()).collect();
    let missing: Vec<String> = documents()
        .iter()
        .filter_map(|d| d.strip_prefix(repository()).unwrap().to_str().map(str::to_owned))
        .filter(|d| d != "README.md" && !linked.contains(d))
        .collect();
    assert!(missing.is_empty(), "README.md does not link to {missing:?}");
}

#[test]
fn anchors_follow_githubs_rules() {
    assert_eq!(anchor("Check the install: doctor"), "check-the-install-doctor");
    assert_eq!(anchor("SIGTERM / SIGINT"), "sigterm--sigint");
    assert_eq!(anchor("Kill -9 costs a bounded resend"), "kill--9-costs-a-bounded-resend");
    assert_eq!(anchor("What it sends: wolley_push_run"), "what-it-sends-wolley_push_run");
    assert_eq!(
        anchors("# A\n## A\n```sh\n# not a heading\n```\n## A\n"),
        ["a", "a-1", "a-2"].map(String::from).into()
    );
    assert_eq!(
        references(
            &["see docs/stats.md", ", \"How a week is", "\n/// published\") and README, Troubleshoot"]
                .concat()
        ),
        [("docs/stats.md".to_owned(), "How a week is published".to_owned())]
    );
}

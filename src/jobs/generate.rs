//! `generate` (hidden): the shell completions (bash, zsh, fish) and the man pages (one per
//! subcommand) written from the clap definitions in [`crate::cli`], so they never drift from
//! the real flags. The output has no dates and depends on nothing but the definitions, so the
//! committed copies can be checked byte for byte (tests/it/generated.rs).
//!
//! The one place besides `cli` and `config` that touches clap: it renders the command line
//! itself, not a job's input.

use std::path::{Path, PathBuf};

use clap::CommandFactory;
use clap_complete::Shell;

use crate::cli::Cli;
use crate::error::Result;
use crate::exit::ExitCode;
use crate::output::{self, Output};

/// The binary's name in completions and man pages.
const BIN: &str = "wolley-push";
/// Where completions go, relative to the output directory.
pub(crate) const COMPLETIONS_DIR: &str = "completions";
/// Where man pages go, relative to the output directory.
pub(crate) const MAN_DIR: &str = "man";

/// Every generated file: its path relative to the output directory and its contents.
pub(crate) fn files() -> Vec<(PathBuf, Vec<u8>)> {
    let mut command = Cli::command().disable_help_subcommand(true);
    command.build();
    let mut files = Vec::new();
    let mut visible = without_hidden(&command);
    for (shell, name) in
        [(Shell::Bash, "wolley-push.bash"), (Shell::Zsh, "_wolley-push"), (Shell::Fish, "wolley-push.fish")]
    {
        let mut contents = Vec::new();
        clap_complete::generate(shell, &mut visible, BIN, &mut contents);
        files.push((Path::new(COMPLETIONS_DIR).join(name), contents));
    }
    man_pages(&command, &mut files);
    files
}

/// A copy of the built `command` without hidden flags and subcommands (`--now`, `generate`):
/// clap_complete offers everything it is given.
fn without_hidden(command: &clap::Command) -> clap::Command {
    let mut copy = clap::Command::new(command.get_name().to_owned())
        .disable_help_flag(true)
        .disable_version_flag(true)
        .disable_help_subcommand(true)
        .args(command.get_arguments().filter(|arg| !arg.is_hide_set()).map(|arg| arg.clone().global(false)))
        .subcommands(command.get_subcommands().filter(|sub| !sub.is_hide_set()).map(without_hidden));
    if let Some(about) = command.get_about() {
        copy = copy.about(about.clone());
    }
    if let Some(version) = command.get_version() {
        copy = copy.version(version.to_owned());
    }
    copy
}

/// `command`'s page, then one per visible subcommand, recursively (`wolley-push-stats-weekly.1`).
fn man_pages(command: &clap::Command, files: &mut Vec<(PathBuf, Vec<u8>)>) {
    let man =
        clap_mangen::Man::new(command.clone()).source(concat!("wolley-push ", env!("CARGO_PKG_VERSION")));
    let mut contents = Vec::new();
    man.render(&mut contents).expect("rendering into memory cannot fail");
    files.push((Path::new(MAN_DIR).join(man.get_filename()), contents));
    for subcommand in command.get_subcommands().filter(|sub| !sub.is_hide_set()) {
        man_pages(subcommand, files);
    }
}

/// Writes every file under `out_dir` and removes man pages of subcommands that no longer exist.
///
/// # Errors
/// When a file cannot be written.
pub(crate) fn run(out_dir: &Path, output: &Output) -> Result<ExitCode> {
    let files = files();
    for (relative, contents) in &files {
        let path = out_dir.join(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&path, contents)?;
        if !output.quiet {
            output::print(&format!("wrote {}\n", path.display()))?;
        }
    }
    for entry in std::fs::read_dir(out_dir.join(MAN_DIR))? {
        let path = entry?.path();
        let stale = path.extension().is_some_and(|ext| ext == "1")
            && !files.iter().any(|(relative, _)| out_dir.join(relative) == path);
        if stale {
            std::fs::remove_file(&path)?;
            if !output.quiet {
                output::print(&format!("removed {}\n", path.display()))?;
            }
        }
    }
    Ok(ExitCode::Success)
}

//! What a run does with its messages: deliver them, have FCM only validate them, or print them.

use serde::Serialize;

/// Chosen by `--dry-run` and `--print`; decides what is recorded, pruned and sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Mode {
    /// Deliver.
    Send,
    /// FCM validates only; nothing pruned or recorded.
    DryRun,
    /// Print request bodies; no network.
    Print,
}

impl Mode {
    /// `--print` wins over `--dry-run`: printing needs no network at all.
    pub(crate) fn from_flags(dry_run: bool, print: bool) -> Self {
        match (dry_run, print) {
            (_, true) => Mode::Print,
            (true, false) => Mode::DryRun,
            (false, false) => Mode::Send,
        }
    }

    /// What the summary calls the messages FCM accepted in this mode.
    pub(crate) fn accepted_label(self) -> &'static str {
        match self {
            Mode::Send => "sent",
            Mode::DryRun => "valid",
            Mode::Print => "printed",
        }
    }

    /// The mode's name in summaries.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Mode::Send => "send",
            Mode::DryRun => "dry-run",
            Mode::Print => "print",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn print_wins_over_dry_run() {
        assert_eq!(Mode::from_flags(true, true), Mode::Print);
    }

    #[test]
    fn the_json_name_is_the_summary_name() {
        for mode in [Mode::Send, Mode::DryRun, Mode::Print] {
            assert_eq!(serde_json::to_value(mode).unwrap(), mode.as_str());
        }
    }
}

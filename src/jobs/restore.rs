//! `tokens restore`: puts back tokens that pruning removed, from the prune log, where the user
//! still has no token.

use crate::config::Config;
use crate::db::prune_log::Selection;
use crate::error::Result;
use crate::exit::ExitCode;
use crate::output::{self, Format};

/// Restores and says how many.
///
/// # Errors
/// Without a database URL, or when the database fails.
pub(super) async fn run(config: &Config, selection: &Selection) -> Result<ExitCode> {
    let restored = super::with_database(config, false, async |db| {
        db.check_schema().await?;
        Ok(db.restore_tokens(selection).await?)
    })
    .await?;
    let text = match config.output.format {
        Format::Json => format!("{{\"restored\":{},\"kept\":{}}}\n", restored.changed, restored.left),
        Format::Human => format!(
            "restored {} tokens; kept {} users' newer tokens (they registered again since the prune)\n",
            restored.changed, restored.left
        ),
    };
    if !config.output.quiet {
        output::print(&text)?;
    }
    Ok(ExitCode::Success)
}

//! `tokens restore`: puts back tokens that pruning removed, from the prune log, where the user
//! still has no token.

use crate::cli::Format;
use crate::config::Config;
use crate::db::prune_log::Selection;
use crate::db::Database;
use crate::error::{Error, Result};
use crate::exit::ExitCode;

/// Restores and says how many.
///
/// # Errors
/// Without a database URL, or when the database fails.
pub async fn run(config: &Config, selection: &Selection) -> Result<ExitCode> {
    let url = config.database_url.as_ref().ok_or_else(|| {
        Error::Config("tokens restore needs the database: set WOLLEY_DATABASE_URL or --database-url".into())
    })?;
    let db = Database::connect(url).await?;
    let restored = async {
        db.check_schema().await?;
        db.restore_tokens(selection).await
    }
    .await;
    db.close().await;
    let restored = restored?;
    let text = match config.output.format {
        Format::Json => format!("{{\"restored\":{},\"kept\":{}}}\n", restored.changed, restored.left),
        Format::Human => format!(
            "restored {} tokens; kept {} users' newer tokens (they registered again since the prune)\n",
            restored.changed, restored.left
        ),
    };
    if !config.output.quiet {
        print!("{text}");
    }
    Ok(ExitCode::Success)
}

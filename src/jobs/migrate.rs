//! `migrate`: brings wolley-push's own tables up to the version this build needs.

use crate::config::Config;
use crate::db::schema;
use crate::error::Result;
use crate::exit::ExitCode;
use crate::output;

/// Applies pending migrations and says what it did.
///
/// # Errors
/// Without a database URL, when the database fails, or when a newer wolley-push migrated it.
pub(crate) async fn run(config: &Config) -> Result<ExitCode> {
    let applied = super::with_database(config, false, async |db| Ok(db.migrate().await?)).await?;
    if applied.is_empty() {
        if !config.output.quiet {
            output::print(&format!("schema is up to date (version {})\n", schema::required_version()))?;
        }
    } else {
        for migration in applied {
            output::print(&format!("applied migration {}: {}\n", migration.version, migration.description))?;
        }
    }
    Ok(ExitCode::Success)
}

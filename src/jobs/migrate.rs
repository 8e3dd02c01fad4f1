//! `migrate`: brings wolley-push's own tables up to the version this build needs.

use crate::config::Config;
use crate::db::{schema, Database};
use crate::error::{Error, Result};
use crate::exit::ExitCode;

/// Applies pending migrations and says what it did.
///
/// # Errors
/// Without a database URL, when the database fails, or when a newer wolley-push migrated it.
pub async fn run(config: &Config) -> Result<ExitCode> {
    let url = config.database_url.as_ref().ok_or_else(|| {
        Error::Config("migrate needs the database: set WOLLEY_DATABASE_URL or --database-url".into())
    })?;
    let db = Database::connect(url).await?;
    let applied = db.migrate().await;
    db.close().await;
    let applied = applied?;
    if applied.is_empty() {
        if !config.output.quiet {
            println!("schema is up to date (version {})", schema::required_version());
        }
    } else {
        for migration in applied {
            println!("applied migration {}: {}", migration.version, migration.description);
        }
    }
    Ok(ExitCode::Success)
}

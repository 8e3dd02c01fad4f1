//! One run per (job, shard) at a time: a MariaDB named lock (`GET_LOCK`) held on a connection
//! of its own for the whole run. The server releases it when the process dies, so a crashed run
//! never leaves a stale lock behind.

use std::time::Duration;

use mysql_async::prelude::*;
use tokio::sync::oneshot;

use super::{Database, DbError};

/// How often the lock's connection is pinged, so the server's `wait_timeout` never closes it
/// (and with it the lock) during a long run.
const KEEPALIVE: Duration = Duration::from_secs(60);

/// A held lock; [`RunLock::release`] it at the end of the run.
pub struct RunLock {
    name: String,
    release: Option<oneshot::Sender<()>>,
    keeper: Option<tokio::task::JoinHandle<()>>,
}

impl Database {
    /// Takes the lock `name` (in this database) if no other session holds it; `None` when one
    /// does.
    ///
    /// # Errors
    /// As classified.
    pub async fn try_lock(&self, name: &str) -> Result<Option<RunLock>, DbError> {
        let fail = |e| self.classify(e, "taking the run lock");
        // A pooled connection goes back to the pool with a reset, which releases its locks:
        // this one stays with the keeper task until the run ends.
        let mut conn = self.conn().await?;
        // Lock names are global to the server: qualify it by database, within the 64-character
        // limit, so staging and production (or parallel tests) on one server do not collide.
        let name: String = conn
            .exec_first(
                "SELECT CONCAT('wolley_push:', ?, ':', LEFT(SHA1(IFNULL(DATABASE(), '')), 12))",
                (name,),
            )
            .await
            .map_err(fail)?
            .expect("SELECT returns a row");
        let got: Option<Option<i64>> =
            conn.exec_first("SELECT GET_LOCK(?, 0)", (&name,)).await.map_err(fail)?;
        if got.flatten() != Some(1) {
            return Ok(None);
        }
        let (release, released) = oneshot::channel();
        let keeper = tokio::spawn(keep(conn, name.clone(), released));
        Ok(Some(RunLock { name, release: Some(release), keeper: Some(keeper) }))
    }
}

async fn keep(mut conn: mysql_async::Conn, name: String, mut released: oneshot::Receiver<()>) {
    let mut tick = tokio::time::interval(KEEPALIVE);
    tick.tick().await;
    loop {
        tokio::select! {
            _ = &mut released => break,
            _ = tick.tick() => {
                if let Err(error) = conn.query_drop("DO 1").await {
                    tracing::error!(lock = %name, "lost the connection holding the run lock ({error}); another run may start");
                    return;
                }
            }
        }
    }
    if let Err(error) = conn.exec_drop("DO RELEASE_LOCK(?)", (name.as_str(),)).await {
        tracing::warn!(lock = %name, "could not release the run lock ({error}); the server frees it on disconnect");
    }
    let _ = conn.disconnect().await;
}

impl RunLock {
    /// The lock's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Releases the lock and closes its connection.
    pub async fn release(mut self) {
        if let Some(release) = self.release.take() {
            let _ = release.send(());
        }
        if let Some(keeper) = self.keeper.take() {
            let _ = keeper.await;
        }
    }
}

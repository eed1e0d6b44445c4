//! One bridge per database unless they are set up to share it.
//!
//! Several bridges on one PostgreSQL database need Redis (`REDIS_URL`):
//! a customer's socket is on one bridge while Flex's webhook for them may
//! land on another, and the Socket.IO rooms reach across bridges only
//! through Redis. So on PostgreSQL each bridge holds a cluster-wide
//! advisory lock on a dedicated connection for as long as it runs:
//!
//! - without `REDIS_URL`, the lock **exclusively**: a second bridge on the
//!   same database refuses to start, saying Redis is needed;
//! - with `REDIS_URL`, the lock **shared**: any number of bridges with
//!   Redis, none without.
//!
//! Holding the database alone is also what lets a bridge take over, at
//! start, the outbox leases an earlier run left (`super::leases`). On
//! SQLite, one bridge per file: the lock held is the file's
//! ([`super::dialect::FileLock`], taken here too).
//!
//! The lock's connection is checked every second. When it breaks (the
//! server restarted, the network dropped) the lock is gone with it: the
//! keeper reconnects and takes it again. If another bridge took it
//! meanwhile, this one cannot go on: [`DatabaseLock::lost`] resolves and
//! the supervisor stops the process.

use std::time::Duration;

use sqlx::{Connection as _, PgConnection};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::AbortOnDropHandle;

use super::StoreError;
use super::dialect::{self, Dialect, FileLock};

/// The advisory lock's key: two 32-bit halves ("flex", "brdg"), a space
/// of its own (sqlx's migration lock uses a single 64-bit key).
const KEY: (i32, i32) = (0x666c_6578, 0x6272_6467);

/// How often the lock's connection is checked, and retried once broken.
const CHECK_EVERY: Duration = Duration::from_secs(1);

/// How a bridge uses its database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sharing {
    /// The only bridge on it (SQLite; PostgreSQL without `REDIS_URL`).
    Alone,
    /// One of several, joined by Redis (PostgreSQL with `REDIS_URL`).
    Shared,
}

/// Why the lock cannot be had.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "another flexbridge is running on this PostgreSQL database; several bridges on one \
         database need Redis (set REDIS_URL on every one of them, so a customer's socket on \
         one bridge hears what arrives on another)"
    )]
    HeldAlone,
    #[error(
        "flexbridge instances with REDIS_URL are running on this PostgreSQL database; set \
         REDIS_URL here too to join them"
    )]
    HeldShared,
    #[error(
        "a flexbridge without REDIS_URL holds this PostgreSQL database alone; set REDIS_URL on \
         it too (and restart it) before starting more bridges"
    )]
    HeldByOneAlone,
    #[error(transparent)]
    Database(#[from] StoreError),
}

/// The lock this bridge holds on its database, for as long as it is kept.
pub struct DatabaseLock {
    /// `Some(error)` once the lock is gone for good.
    state: watch::Receiver<Option<String>>,
    /// SQLite: the file's lock.
    _file: Option<FileLock>,
    _keeper: Option<AbortOnDropHandle<()>>,
    stop: CancellationToken,
}

impl std::fmt::Debug for DatabaseLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatabaseLock").finish_non_exhaustive()
    }
}

impl Drop for DatabaseLock {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl DatabaseLock {
    /// Takes the lock of the database at `url` for a bridge that uses it
    /// as `sharing` says; kept (and re-taken after a broken connection)
    /// until dropped.
    pub async fn acquire(url: &str, sharing: Sharing) -> Result<Self, LockError> {
        let (report, state) = watch::channel(None);
        let stop = CancellationToken::new();
        if Dialect::of_url(url) != Some(Dialect::Postgres) {
            return Ok(Self {
                state,
                _file: Some(FileLock::acquire(url)?),
                _keeper: None,
                stop,
            });
        }
        let conn = take(url, sharing).await?;
        let keeper = tokio::spawn(keep(url.to_owned(), sharing, conn, report, stop.clone()));
        Ok(Self {
            state,
            _file: None,
            _keeper: Some(AbortOnDropHandle::new(keeper)),
            stop,
        })
    }

    /// Resolves (with why) once the lock is gone for good: another bridge
    /// took it while this one's connection was broken. Never, on SQLite.
    pub async fn lost(&self) -> String {
        let mut state = self.state.clone();
        match state.wait_for(Option::is_some).await {
            Ok(why) => why.clone().unwrap_or_default(),
            // The keeper ended without a verdict (dropped): never lost.
            Err(_) => std::future::pending().await,
        }
    }
}

/// Connects and takes the lock, or says who holds it.
async fn take(url: &str, sharing: Sharing) -> Result<PgConnection, LockError> {
    let options = dialect::postgres_options(url)?;
    let mut conn = PgConnection::connect_with(&options)
        .await
        .map_err(StoreError::from)?;
    match sharing {
        Sharing::Alone => {
            if try_lock(&mut conn, false).await? {
                return Ok(conn);
            }
            // Held: by bridges with Redis (shared), or by one without.
            if try_lock(&mut conn, true).await? {
                Err(LockError::HeldShared)
            } else {
                Err(LockError::HeldAlone)
            }
        }
        // Shared at once, never exclusive first: bridges with Redis
        // starting together must not see each other as one alone.
        Sharing::Shared if try_lock(&mut conn, true).await? => Ok(conn),
        Sharing::Shared => Err(LockError::HeldByOneAlone),
    }
}

async fn try_lock(conn: &mut PgConnection, shared: bool) -> Result<bool, StoreError> {
    let statement = if shared {
        "SELECT pg_try_advisory_lock_shared($1, $2)"
    } else {
        "SELECT pg_try_advisory_lock($1, $2)"
    };
    Ok(sqlx::query_scalar::<_, bool>(statement)
        .bind(KEY.0)
        .bind(KEY.1)
        .fetch_one(conn)
        .await?)
}

/// Keeps the lock: checks its connection, and after a break reconnects
/// and takes the lock again, until `stop`. Reports a lock another bridge
/// took meanwhile.
async fn keep(
    url: String,
    sharing: Sharing,
    conn: PgConnection,
    report: watch::Sender<Option<String>>,
    stop: CancellationToken,
) {
    let mut conn = Some(conn);
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            () = tokio::time::sleep(CHECK_EVERY) => {}
        }
        if let Some(held) = &mut conn {
            if sql_ping(held).await.is_ok() {
                continue;
            }
            tracing::warn!(
                "the database lock's connection broke; taking the lock again once the database answers"
            );
            conn = None;
        }
        match take(&url, sharing).await {
            Ok(again) => {
                tracing::info!("the database lock is held again");
                conn = Some(again);
            }
            Err(LockError::Database(error)) => {
                tracing::debug!(error.cause_chain = %crate::core::chain(&error), "the database is not answering yet");
            }
            Err(refused) => {
                let why =
                    format!("{refused} (it was taken while this bridge's connection was down)");
                tracing::error!(%why, "the database lock is gone");
                let _ = report.send(Some(why));
                break;
            }
        }
    }
    if let Some(conn) = conn {
        let _ = conn.close().await;
    }
}

async fn sql_ping(conn: &mut PgConnection) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT 1").execute(conn).await.map(|_| ())
}

/// Whether the lock of `url` could be taken as `sharing` now (for
/// `doctor`): `Ok(())`, or who holds it. Takes nothing: the connection
/// closes at once.
pub async fn check(url: &str, sharing: Sharing) -> Result<(), LockError> {
    if Dialect::of_url(url) != Some(Dialect::Postgres) {
        return Ok(());
    }
    let conn = take(url, sharing).await?;
    let _ = conn.close().await;
    Ok(())
}

//! Group commit: the store's writes, many callers' at a time, in one
//! transaction.
//!
//! One task owns the writing side. It takes every write waiting (up to
//! [`MAX_BATCH`]), runs them one after the other in one write transaction
//! (SQLite: `BEGIN IMMEDIATE`; PostgreSQL: `BEGIN`, see `super::dialect`)
//! on the single writer connection, commits, and only then
//! answers each caller. So a caller that got `Ok` knows its write is
//! committed (a customer is acked only after that), and a crash before the
//! commit leaves none of the batch behind: its callers got no answer, and
//! a retried client message finds nothing, or the original, never half of
//! it. 200 customers writing at once cost one commit (one WAL append, one
//! write lock) instead of 200.
//!
//! Each write is a function of its own data and the connection. A write
//! that finds nothing to do (a duplicate) must write nothing: there is no
//! rollback of one write inside a batch. When a write fails, the batch is
//! rolled back and each of its writes runs again alone, in its own
//! transaction, so one bad write fails alone and the others commit.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures::future::BoxFuture;
use tokio::sync::{mpsc, oneshot};

use super::dialect::{self, Dialect};
use super::{Conn, Pool, StoreError, StoreResult};

/// Most writes committed together; more wait for the next transaction.
/// Bounds how long the write lock is held and how long a write that
/// arrived just after a batch started waits.
pub const MAX_BATCH: usize = 256;

/// A write: reads its data and the connection (inside the batch's
/// transaction), returns what its caller gets once the batch committed.
pub type WriteFn<S, T> = for<'a, 'c> fn(&'a S, &'a mut Conn<'c>) -> BoxFuture<'a, StoreResult<T>>;

/// The queue of writes to the writer task.
#[derive(Clone)]
pub struct GroupCommit {
    queue: mpsc::UnboundedSender<Box<dyn Pending>>,
    /// Asks the writer task to give its connection back to the pool (the
    /// store is closing), answered once it did.
    release: mpsc::UnboundedSender<oneshot::Sender<()>>,
    /// Transactions the writer task committed.
    commits: Arc<AtomicU64>,
}

impl std::fmt::Debug for GroupCommit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupCommit").finish_non_exhaustive()
    }
}

impl GroupCommit {
    /// Starts the writer task on `writer` (a pool of one connection). It
    /// ends when every handle is dropped.
    pub fn start(dialect: Dialect, writer: Pool) -> Self {
        let (queue, waiting) = mpsc::unbounded_channel();
        let (release, releases) = mpsc::unbounded_channel();
        let commits = Arc::new(AtomicU64::new(0));
        let writer = Writer {
            dialect,
            pool: writer,
            conn: None,
        };
        tokio::spawn(run(writer, waiting, releases, commits.clone()));
        Self {
            queue,
            release,
            commits,
        }
    }

    /// Has the writer task give its connection back to the pool, so the
    /// pool can close. A write after this takes it again.
    pub async fn release(&self) {
        let (done, released) = oneshot::channel();
        if self.release.send(done).is_ok() {
            let _ = released.await;
        }
    }

    /// How many transactions the writer task has committed.
    pub fn commits(&self) -> u64 {
        self.commits.load(Ordering::Relaxed)
    }

    /// Runs `write` on `state` in the next batch; its result once committed.
    pub async fn write<S, T>(&self, state: S, write: WriteFn<S, T>) -> StoreResult<T>
    where
        S: Send + Sync + 'static,
        T: Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let pending = Box::new(Write {
            state,
            write,
            output: None,
            reply,
        });
        self.queue
            .send(pending)
            .map_err(|_| StoreError::WriterGone)?;
        answer.await.map_err(|_| StoreError::WriterGone)?
    }
}

/// A write waiting for, or inside, a batch (its types erased).
trait Pending: Send {
    /// Runs the write on the batch's connection, keeping its output.
    fn run<'a>(&'a mut self, conn: &'a mut Conn<'_>) -> BoxFuture<'a, StoreResult<()>>;
    /// Answers the caller: the output once committed, or the error.
    fn finish(self: Box<Self>, outcome: StoreResult<()>);
}

struct Write<S, T> {
    state: S,
    write: WriteFn<S, T>,
    output: Option<T>,
    reply: oneshot::Sender<StoreResult<T>>,
}

impl<S: Send + Sync, T: Send> Pending for Write<S, T> {
    fn run<'a>(&'a mut self, conn: &'a mut Conn<'_>) -> BoxFuture<'a, StoreResult<()>> {
        Box::pin(async move {
            self.output = Some((self.write)(&self.state, conn).await?);
            Ok(())
        })
    }

    fn finish(self: Box<Self>, outcome: StoreResult<()>) {
        let Self { output, reply, .. } = *self;
        let answer = outcome.and_then(|()| {
            output.ok_or_else(|| StoreError::Corrupt("a committed write has no output".into()))
        });
        // The caller may have gone (its client disconnected): nothing to tell.
        let _ = reply.send(answer);
    }
}

/// The writer task: batch, commit, answer; until every handle is gone.
async fn run(
    mut writer: Writer,
    mut waiting: mpsc::UnboundedReceiver<Box<dyn Pending>>,
    mut releases: mpsc::UnboundedReceiver<oneshot::Sender<()>>,
    commits: Arc<AtomicU64>,
) {
    let mut batch: Vec<Box<dyn Pending>> = Vec::with_capacity(MAX_BATCH);
    loop {
        let received = tokio::select! {
            biased;
            Some(done) = releases.recv() => {
                writer.conn = None;
                let _ = done.send(());
                continue;
            }
            received = waiting.recv_many(&mut batch, MAX_BATCH) => received,
        };
        if received == 0 {
            break;
        }
        metrics::histogram!(crate::telemetry::families::STORE_BATCH_WRITES)
            .record(batch.len() as f64);
        match writer.commit(&mut batch, &commits).await {
            Ok(()) => batch.drain(..).for_each(|write| write.finish(Ok(()))),
            Err(error) if batch.len() == 1 => {
                if let Some(write) = batch.pop() {
                    write.finish(Err(error));
                }
            }
            Err(error) => {
                tracing::warn!(
                    writes = batch.len(),
                    error.cause_chain = %crate::core::chain(&error),
                    "a write failed; its batch runs again one write at a time"
                );
                for mut write in batch.drain(..) {
                    let outcome = writer
                        .commit(std::slice::from_mut(&mut write), &commits)
                        .await;
                    write.finish(outcome);
                }
            }
        }
    }
}

/// The writer task's connection: taken from the pool once and kept, so a
/// batch costs no acquire and no ping; taken again only after an error
/// that may have broken it.
struct Writer {
    dialect: Dialect,
    pool: Pool,
    conn: Option<WriterConn>,
}

/// The connection the writer keeps, of either database.
enum WriterConn {
    Sqlite(sqlx::pool::PoolConnection<sqlx::Sqlite>),
    Postgres(sqlx::pool::PoolConnection<sqlx::Postgres>),
}

impl Writer {
    /// Runs `batch` in one transaction and commits it; on any error nothing
    /// of it is kept (the transaction rolls back when dropped).
    async fn commit(
        &mut self,
        batch: &mut [Box<dyn Pending>],
        commits: &AtomicU64,
    ) -> StoreResult<()> {
        let conn = match &mut self.conn {
            Some(conn) => conn,
            None => self.conn.insert(match &self.pool {
                Pool::Sqlite(pool) => WriterConn::Sqlite(pool.acquire().await?),
                Pool::Postgres(pool) => WriterConn::Postgres(pool.acquire().await?),
            }),
        };
        let begin = self.dialect.begin_write();
        let started = std::time::Instant::now();
        let outcome = match conn {
            WriterConn::Sqlite(conn) => {
                async {
                    let mut tx = sqlx::Connection::begin_with(&mut **conn, begin).await?;
                    run_batch(&mut Conn::Sqlite(&mut tx), batch).await?;
                    Ok(tx.commit().await?)
                }
                .await
            }
            WriterConn::Postgres(conn) => {
                async {
                    let mut tx = sqlx::Connection::begin_with(&mut **conn, begin).await?;
                    run_batch(&mut Conn::Postgres(&mut tx), batch).await?;
                    Ok(tx.commit().await?)
                }
                .await
            }
        };
        if let Err(StoreError::Database(error)) = &outcome
            && dialect::is_connection_error(error)
        {
            self.conn = None;
        }
        if outcome.is_ok() {
            commits.fetch_add(1, Ordering::Relaxed);
            metrics::histogram!(crate::telemetry::families::STORE_COMMIT)
                .record(started.elapsed().as_secs_f64());
        }
        outcome
    }
}

async fn run_batch(conn: &mut Conn<'_>, batch: &mut [Box<dyn Pending>]) -> StoreResult<()> {
    for write in batch.iter_mut() {
        write.run(conn).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;

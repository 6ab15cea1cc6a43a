//! SQLite's one writer as one thread. Write work queues in a channel and runs back to back on a
//! connection of its own, instead of waking a pool thread per write to contend for the write
//! lock; the connection's page cache stays warm because nobody else writes through the process.
//! Each piece of work still runs its own transaction ([`super::write_transaction`]).
//!
//! WAL checkpoints (copying committed pages into the database file, with its fsync) run on a
//! second thread every [`CHECKPOINT_EVERY`], so no write waits for one; the writer checkpoints
//! itself only if the WAL grows past [`WRITER_CHECKPOINT_PAGES`] regardless.

use std::sync::{Arc, Weak, mpsc};
use std::time::Duration;

use diesel::connection::SimpleConnection;

use diesel::r2d2::{CustomizeConnection, ManageConnection};

use super::changes::{self, UserChanges};
use super::{Conn, DbError, Manager, SqlitePragmas};

type Job = Box<dyn FnOnce(Result<&mut Conn, DbError>) + Send>;

/// Seldom enough that hot pages rewritten by many commits are copied once (at 50 ms, rotations/s
/// fell from 13k to 8k), often enough to keep the WAL within tens of MB at full load.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(200);

/// 128 MiB of WAL at 4 KiB pages: only reached when the checkpoint thread falls behind.
const WRITER_CHECKPOINT_PAGES: u32 = 32_000;

/// The WAL file is cut back to this after it restarts, so a burst does not keep its size.
const WAL_SIZE_LIMIT: u32 = 64 << 20;

/// The queue into the writer thread; both threads end when the last clone is dropped.
#[derive(Clone)]
pub(super) struct Writer {
    queue: mpsc::Sender<Job>,
    _alive: Arc<()>,
}

impl Writer {
    pub(super) fn start(manager: Manager, changes: Arc<UserChanges>) -> Result<Writer, DbError> {
        let (queue, jobs) = mpsc::channel::<Job>();
        let alive = Arc::new(());
        let checkpointer = Manager {
            url: manager.url.clone(),
            backend: manager.backend,
        };
        let watched = Arc::downgrade(&alive);
        std::thread::Builder::new()
            .name("doorman-sqlite-checkpoint".into())
            .spawn(move || checkpoint_while(&checkpointer, &watched))
            .map_err(|e| {
                DbError::Unavailable(format!("cannot start the checkpoint thread: {e}"))
            })?;
        std::thread::Builder::new()
            .name("doorman-sqlite-writer".into())
            .spawn(move || {
                let mut conn: Option<Conn> = None;
                for job in jobs {
                    if conn.is_none() {
                        conn = open(&manager)
                            .and_then(|mut c| {
                                c.batch_execute(&format!(
                                    "PRAGMA wal_autocheckpoint = {WRITER_CHECKPOINT_PAGES};
                                     PRAGMA journal_size_limit = {WAL_SIZE_LIMIT};"
                                ))
                                .map_err(diesel::r2d2::Error::QueryError)?;
                                Ok(c)
                            })
                            .inspect_err(|e| rocket::error!("database writer: {e}"))
                            .ok();
                    }
                    let conn = conn.as_mut().ok_or_else(|| {
                        DbError::Unavailable("cannot open the database for writing".into())
                    });
                    changes::tracked(&changes, || job(conn));
                }
            })
            .map_err(|e| DbError::Unavailable(format!("cannot start the writer thread: {e}")))?;
        Ok(Writer {
            queue,
            _alive: alive,
        })
    }

    /// Runs `f` on the writer thread and waits for its result without blocking an async worker.
    pub(super) async fn run<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut Conn) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
    {
        let (reply, answer) = rocket::tokio::sync::oneshot::channel();
        let job: Job = Box::new(move |conn| {
            let _ = reply.send(conn.map_err(E::from).and_then(f));
        });
        if self.queue.send(job).is_err() {
            return Err(DbError::Unavailable("the writer thread has stopped".into()).into());
        }
        answer
            .await
            .unwrap_or_else(|_| Err(DbError::Unavailable("the write was dropped".into()).into()))
    }
}

/// Checkpoints without blocking writers (`PASSIVE`) until the writer is gone.
fn checkpoint_while(manager: &Manager, writer: &Weak<()>) {
    let mut conn: Option<Conn> = None;
    while writer.strong_count() > 0 {
        std::thread::sleep(CHECKPOINT_EVERY);
        if conn.is_none() {
            conn = open(manager).ok();
        }
        if let Some(c) = conn.as_mut()
            && let Err(e) = c.batch_execute("PRAGMA wal_checkpoint(PASSIVE)")
        {
            rocket::warn!("WAL checkpoint: {e}");
        }
    }
}

fn open(manager: &Manager) -> Result<Conn, diesel::r2d2::Error> {
    let mut conn = manager.connect()?;
    SqlitePragmas.on_acquire(&mut conn)?;
    Ok(conn)
}

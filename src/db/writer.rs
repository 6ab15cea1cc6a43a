//! SQLite's one writer as one thread. Write work queues in a channel and runs back to back on a
//! connection of its own, instead of waking a pool thread per write to contend for the write
//! lock; the connection's page cache stays warm because nobody else writes through the process.
//!
//! Group commit: the writer takes every write waiting (up to [`MAX_BATCH`]) and runs them in one
//! transaction, each in a savepoint of its own, so each is still all-or-nothing: one that fails
//! is rolled back alone and ends the batch there (nothing runs after it in a transaction it may
//! have broken); the ones before it commit. A hot page rewritten by every rotation of the batch
//! goes to the WAL once per batch instead of once per write. Every answer (and every effect of
//! a write, [`super::Tx`]) waits for the commit that holds it.
//!
//! WAL checkpoints (copying committed pages into the database file, with its fsync) run on a
//! second thread every [`CHECKPOINT_EVERY`], without blocking writes (`PASSIVE`). Under constant
//! writes such a checkpoint never quite reaches the end of the WAL, and the WAL starts over from
//! its beginning only after a checkpoint that does; the writer makes that one itself when the
//! WAL reaches [`WRITER_CHECKPOINT_PAGES`], with little left to copy by then.

use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Weak, mpsc};
use std::time::Duration;

use diesel::connection::{SimpleConnection, TransactionManager};

use super::connections::sqlite_pragmas;
use super::{Conn, DbError, Manager, Transactions};

/// Most writes committed together.
const MAX_BATCH: usize = 64;

/// What a write did inside its batch: whether the batch may go on (its body succeeded), and
/// what to do once the batch has committed (`Ok`) or failed.
pub(super) struct Step<R> {
    pub(super) go_on: bool,
    pub(super) finish: Box<dyn FnOnce(Result<(), DbError>) -> R + Send>,
}

/// A queued write: runs inside the batch's transaction, answers its caller when the batch ends.
type Job = Box<dyn FnOnce(Result<&mut Conn, DbError>) -> Step<()> + Send>;

/// Seldom enough that hot pages rewritten by many commits are copied once rather than after
/// every few commits (a much shorter period costs rotations a large share of their rate; see
/// docs/performance.md), often enough to keep the WAL within tens of MB at full load.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(200);

/// 128 MiB of WAL at 4 KiB pages: the writer checkpoints by itself only if the checkpoint thread
/// falls that far behind.
const WRITER_CHECKPOINT_PAGES: u32 = 32_000;

/// The queue into the writer thread; both threads end when the last clone is dropped.
#[derive(Clone)]
pub(super) struct Writer {
    queue: mpsc::Sender<Job>,
    _alive: Arc<()>,
}

impl Writer {
    pub(super) fn start(manager: Manager) -> Result<Writer, DbError> {
        let (queue, jobs) = mpsc::channel::<Job>();
        let alive = Arc::new(());
        let checkpointer = manager.clone();
        spawn("doorman-sqlite-writer", move || serve(&manager, jobs))?;
        let watched = Arc::downgrade(&alive);
        spawn("doorman-sqlite-checkpoint", move || {
            checkpoint_while(&checkpointer, &watched);
        })?;
        Ok(Writer {
            queue,
            _alive: alive,
        })
    }

    /// Runs `work` on the writer thread and waits for its result without blocking an async
    /// worker.
    pub(super) async fn run<R: Send + 'static>(
        &self,
        work: impl FnOnce(Result<&mut Conn, DbError>) -> Step<R> + Send + 'static,
    ) -> Result<R, DbError> {
        self.queue(work)?.await.map_err(|_| dropped())
    }

    /// [`Writer::run`] for a caller outside the async runtime.
    pub(super) fn run_blocking<R: Send + 'static>(
        &self,
        work: impl FnOnce(Result<&mut Conn, DbError>) -> Step<R> + Send + 'static,
    ) -> Result<R, DbError> {
        self.queue(work)?.blocking_recv().map_err(|_| dropped())
    }

    fn queue<R: Send + 'static>(
        &self,
        work: impl FnOnce(Result<&mut Conn, DbError>) -> Step<R> + Send + 'static,
    ) -> Result<rocket::tokio::sync::oneshot::Receiver<R>, DbError> {
        let (reply, answer) = rocket::tokio::sync::oneshot::channel();
        let job: Job = Box::new(move |conn| {
            let step = work(conn);
            let finish = step.finish;
            Step {
                go_on: step.go_on,
                finish: Box::new(move |batch| {
                    let _ = reply.send(finish(batch));
                }),
            }
        });
        self.queue
            .send(job)
            .map_err(|_| DbError::Unavailable("the writer thread has stopped".into()))?;
        Ok(answer)
    }
}

/// The job panicked (its connection is closed) or the writer stopped before running it.
fn dropped() -> DbError {
    DbError::Unavailable("the write was dropped".into())
}

fn spawn(name: &str, work: impl FnOnce() + Send + 'static) -> Result<(), DbError> {
    std::thread::Builder::new()
        .name(name.into())
        .spawn(|| {
            run_in_batches();
            work();
        })
        .map(drop)
        .map_err(|e| DbError::Unavailable(format!("cannot start thread {name}: {e}")))
}

/// Puts the calling thread in Linux's `SCHED_BATCH` class (at the usual nice 0): a request
/// that queues a write then does not preempt the request threads to wake the writer, which runs
/// when they wait and then takes every write queued meanwhile. With the server on one core that
/// made batches larger and refreshes 12–25 % faster (docs/performance.md); with a core to spare
/// it changes nothing. Elsewhere, or if the class cannot be had, threads stay as they are.
fn run_in_batches() {
    #[cfg(target_os = "linux")]
    {
        use thread_priority::{
            NormalThreadSchedulePolicy, ThreadPriority, ThreadPriorityOsValue,
            ThreadSchedulePolicy, set_thread_priority_and_policy, thread_native_id,
        };
        let batch = ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Batch);
        let nice_zero = ThreadPriority::Os(ThreadPriorityOsValue::default());
        if let Err(e) = set_thread_priority_and_policy(thread_native_id(), nice_zero, batch) {
            rocket::info!("database writer: scheduling left as it was ({e:?})");
        }
    }
}

/// The writer thread: runs jobs in order, in batches, until every queue end is dropped.
fn serve(manager: &Manager, jobs: mpsc::Receiver<Job>) {
    let mut conn: Option<Conn> = None;
    let mut waiting: VecDeque<Job> = VecDeque::new();
    loop {
        if waiting.is_empty() {
            match jobs.recv() {
                Ok(job) => waiting.push_back(job),
                Err(mpsc::RecvError) => return,
            }
        }
        while waiting.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => waiting.push_back(job),
                Err(_) => break,
            }
        }
        if conn.is_none() {
            conn = open_writer(manager);
        }
        let Some(open) = conn.as_mut() else {
            let unavailable =
                || DbError::Unavailable("cannot open the database for writing".into());
            for job in waiting.drain(..) {
                (job(Err(unavailable())).finish)(Err(unavailable()));
            }
            continue;
        };
        if !run_batch(open, &mut waiting) {
            conn = None;
        }
    }
}

fn open_writer(manager: &Manager) -> Option<Conn> {
    open(manager)
        .and_then(|mut c| {
            c.batch_execute(&format!(
                "PRAGMA wal_autocheckpoint = {WRITER_CHECKPOINT_PAGES}"
            ))
            .map_err(diesel::r2d2::Error::QueryError)?;
            Ok(c)
        })
        .inspect_err(|e| rocket::error!("database writer: {e}"))
        .ok()
}

/// Runs waiting jobs in one transaction until one fails or the batch is full, commits, then
/// answers every job that ran. Returns false when the connection must be closed (a job panicked,
/// or the transaction state is broken).
fn run_batch(conn: &mut Conn, waiting: &mut VecDeque<Job>) -> bool {
    if let Err(e) = super::begin_write(conn) {
        let why = DbError::from(e).to_string();
        // Only the first waits to learn it: the rest may find the database back.
        if let Some(job) = waiting.pop_front() {
            let unavailable = || DbError::Unavailable(why.clone());
            (job(Err(unavailable())).finish)(Err(unavailable()));
        }
        return !Transactions::is_broken_transaction_manager(conn);
    }
    let mut ran = Vec::new();
    let mut healthy = true;
    while let Some(job) = waiting.pop_front() {
        // A panic is a bug, but it must not stop every later write: the connection, left
        // inside a transaction, is closed (SQLite rolls the batch back), the panicking job's
        // caller gets a 503 and the others of the batch are told it failed.
        let Ok(step) = catch_unwind(AssertUnwindSafe(|| job(Ok(&mut *conn)))) else {
            rocket::error!("database writer: a write panicked; reconnecting");
            healthy = false;
            break;
        };
        let go_on = step.go_on;
        ran.push(step.finish);
        if !go_on || ran.len() >= MAX_BATCH {
            break;
        }
    }
    let committed = if healthy {
        Transactions::commit_transaction(conn).map_err(|e| DbError::from(e).to_string())
    } else {
        Err("another write of the same batch failed".to_owned())
    };
    if committed.is_err() && healthy {
        let _ = Transactions::rollback_transaction(conn);
    }
    for finish in ran {
        finish(
            committed
                .as_ref()
                .copied()
                .map_err(|why| DbError::Unavailable(why.clone())),
        );
    }
    healthy && !Transactions::is_broken_transaction_manager(conn)
}

/// Checkpoints until the writer is gone.
fn checkpoint_while(manager: &Manager, alive: &Weak<()>) {
    let mut conn: Option<Conn> = None;
    while alive.strong_count() > 0 {
        std::thread::sleep(CHECKPOINT_EVERY);
        if conn.is_none() {
            conn = open(manager).ok();
        }
        if let Some(c) = conn.as_mut() {
            checkpoint(c);
        }
    }
}

fn checkpoint(conn: &mut Conn) {
    if let Err(e) = conn.batch_execute("PRAGMA wal_checkpoint(PASSIVE)") {
        rocket::warn!("WAL checkpoint: {e}");
    }
}

fn open(manager: &Manager) -> Result<Conn, diesel::r2d2::Error> {
    let mut conn = manager.open()?;
    sqlite_pragmas(&mut conn)?;
    Ok(conn)
}

#[cfg(test)]
mod tests {
    use diesel::connection::SimpleConnection;

    use super::super::{Db, DbError};

    /// A database of its own with its writer, and a runtime to wait on writes in.
    fn fresh() -> (tempfile::TempDir, Db, rocket::tokio::runtime::Runtime) {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let url = dir.path().join("doorman.sqlite3");
        let db = Db::open(&url.to_string_lossy()).expect("the database opens");
        let runtime = rocket::tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        (dir, db, runtime)
    }

    #[test]
    fn a_panicking_write_fails_alone() {
        let (_dir, db, runtime) = fresh();
        runtime.block_on(async {
            let panicked = db
                .write(|tx| -> Result<(), DbError> {
                    tx.batch_execute("UPDATE users SET id = id WHERE id = -1")?;
                    panic!("a bug in a write");
                })
                .await;
            assert!(matches!(panicked, Err(DbError::Unavailable(_))));
            let next = db
                .write(|tx| {
                    tx.batch_execute("UPDATE users SET id = id WHERE id = -1")
                        .map_err(DbError::from)
                })
                .await;
            assert!(next.is_ok(), "the writer goes on: {next:?}");
        });
    }

    /// Writes queued behind a slow one commit together; every fourth fails after writing. Each
    /// failure is undone alone, every other write is committed, and each answer comes after
    /// the commit that holds it (a read from another connection right after it sees the row).
    #[test]
    fn a_failing_write_in_a_batch_is_undone_alone_and_answers_wait_for_the_commit() {
        use rocket::futures::future::join_all;
        let (_dir, db, runtime) = fresh();
        let seen = |db: Db, subject: String| async move {
            db.run(move |conn| {
                super::super::login_attempts::recent(conn, "batch", &subject, -1, 1)
                    .map(|rows| rows.len())
                    .map_err(DbError::from)
            })
            .await
            .expect("a read")
        };
        runtime.block_on(async {
            let hold = db.write(|_| {
                std::thread::sleep(std::time::Duration::from_millis(100));
                Ok::<_, DbError>(())
            });
            let writes = (0..20).map(|i: i64| {
                let db = db.clone();
                async move {
                    let written = db
                        .write(move |tx| {
                            super::super::login_attempts::insert(tx, "batch", &i.to_string(), i)?;
                            if i % 4 == 1 {
                                return Err(DbError::Unavailable("refused".into()));
                            }
                            // The last write holds its batch open: the one before it in the
                            // same batch must not be answered until the commit.
                            if i == 19 {
                                std::thread::sleep(std::time::Duration::from_millis(100));
                            }
                            Ok(i)
                        })
                        .await;
                    (i, written.is_ok(), seen(db, i.to_string()).await)
                }
            });
            let (held, outcomes) = rocket::tokio::join!(hold, join_all(writes));
            held.expect("the slow write commits");
            for (i, ok, rows) in outcomes {
                assert_eq!(ok, i % 4 != 1, "write {i}");
                assert_eq!(
                    rows,
                    usize::from(ok),
                    "write {i}: committed exactly when answered Ok"
                );
            }
        });
    }
}

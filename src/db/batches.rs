//! Work that one connection serves many items of at a time: a queue drained by a thread that
//! takes every item waiting (up to a limit) and hands them, with its connection, to one
//! function. PostgreSQL's rotations use it (`core::rotation_runner`): a batch of them costs two round
//! trips and one commit, where each alone cost as much. The function answers every item itself
//! (each carries its own reply).
//!
//! The thread keeps a connection of its own, outside the pool, on which PostgreSQL plans only
//! lookups by key: nested loops over plain index scans, whatever the tables' statistics say. Its
//! statements stay prepared, and a plan made while the tables were small (a new database, before
//! any `ANALYZE`) would otherwise hash-join whole tables long after they have grown. Each is
//! planned once (a generic plan): planning them per call took a tenth of PostgreSQL's time.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc;

use diesel::connection::SimpleConnection;

use super::{Conn, Db, DbError, Pooled};

/// The planner settings of a batch connection (see the module's text).
const KEY_LOOKUPS_ONLY: &str = "SET enable_seqscan = off; SET enable_bitmapscan = off; \
    SET enable_hashjoin = off; SET enable_mergejoin = off; \
    SET plan_cache_mode = force_generic_plan";

/// The queue's sending end; its thread ends when this is dropped.
pub struct Batches<J> {
    queue: mpsc::Sender<J>,
}

impl<J: Send + 'static> Batches<J> {
    /// Starts a thread named `name` that serves batches of at most `max` items with `serve`,
    /// on its connection (or why there is none). Items queue while a batch is served and make
    /// the next one.
    pub fn start<F>(db: &Db, name: &str, max: usize, serve: F) -> Result<Batches<J>, DbError>
    where
        F: Fn(Result<&mut Conn, DbError>, Vec<J>) + Send + 'static,
    {
        let (queue, items) = mpsc::channel::<J>();
        let db = db.clone();
        std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                let mut kept: Option<Pooled> = None;
                while let Some(batch) = next_batch(&items, max) {
                    let conn = ready(&db, kept.take());
                    // A panic drops the batch's replies (their callers hear the item was
                    // dropped) and the connection with it; the thread goes on.
                    kept = catch_unwind(AssertUnwindSafe(|| match conn {
                        Ok(mut conn) => {
                            serve(Ok(&mut conn), batch);
                            db.given_back(&mut conn).then_some(conn)
                        }
                        Err(e) => {
                            serve(Err(e), batch);
                            None
                        }
                    }))
                    .unwrap_or(None);
                }
            })
            .map_err(|e| DbError::Unavailable(format!("cannot start thread {name}: {e}")))?;
        Ok(Batches { queue })
    }

    /// Queues `item`; gives it back when the thread has stopped.
    pub fn send(&self, item: J) -> Result<(), J> {
        self.queue.send(item).map_err(|e| e.0)
    }
}

/// The kept connection if it may serve again (the pool's check: after a quiet while, or once
/// another connection found the server gone), or a new one: a server restarted meanwhile costs
/// no batch.
fn ready(db: &Db, kept: Option<Pooled>) -> Result<Pooled, DbError> {
    if let Some(mut conn) = kept
        && db.ready(&mut conn)
    {
        return Ok(conn);
    }
    connect(db)
}

/// A batch connection: of its own, planning lookups by key only.
fn connect(db: &Db) -> Result<Pooled, DbError> {
    let mut conn = db.connect()?;
    conn.batch_execute(KEY_LOOKUPS_ONLY)?;
    Ok(conn)
}

/// Waits for an item, then takes every other one waiting, up to `max`; `None` once every
/// sending end is dropped.
fn next_batch<J>(items: &mpsc::Receiver<J>, max: usize) -> Option<Vec<J>> {
    let mut batch = vec![items.recv().ok()?];
    batch.extend(std::iter::from_fn(|| items.try_recv().ok()).take(max - 1));
    Some(batch)
}

//! A pooled connection that knows when it was last given back, so the pool can hand it out
//! again without a query.
//!
//! Checking every connection with `SELECT 1` as it leaves the pool is a round trip per request
//! on PostgreSQL (a fifth of a rotation's cost there). A connection given back within
//! [`RECENTLY`] worked a moment ago and goes out as it is; one idle longer is checked, so a
//! server restarted while doorman was quiet costs no request. One that finds its server gone
//! while in use is closed when given back (the pool's `has_broken` asks [`Pooled::lost`]), and
//! from then on every connection given back before that is checked too ([`Losses`]): a restart
//! costs the requests that were using a connection then, or at most the first one after it.

use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use diesel::Connection;
use diesel::connection::InstrumentationEvent;
use diesel::r2d2::PooledConnection;
use diesel::result::{DatabaseErrorKind, Error};

use super::{Conn, Manager};

/// How recently a connection must have been given back to go out unchecked.
const RECENTLY: Duration = Duration::from_secs(1);

/// How many connections of a pool have found their server gone. A connection given back
/// before the latest such loss may have lost its server too.
#[derive(Debug, Clone, Default)]
pub struct Losses(Arc<AtomicU64>);

impl Losses {
    fn count(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

pub struct Pooled {
    conn: Conn,
    given_back: Instant,
    /// Set when a query found the server gone.
    lost: Arc<AtomicBool>,
    losses: Losses,
    /// The pool's losses when it was given back.
    losses_then: u64,
}

impl Pooled {
    pub fn new(mut conn: Conn, losses: &Losses) -> Pooled {
        let lost = Arc::new(AtomicBool::new(false));
        // diesel marks only a transaction's state broken when the server goes away; a
        // statement of its own leaves no trace but the error, seen here.
        if let Conn::Postgresql(pg) = &mut conn {
            let (seen, pool) = (lost.clone(), losses.clone());
            pg.set_instrumentation(move |event: InstrumentationEvent<'_>| {
                if let InstrumentationEvent::FinishQuery {
                    error:
                        Some(Error::DatabaseError(
                            DatabaseErrorKind::ClosedConnection
                            | DatabaseErrorKind::UnableToSendCommand,
                            _,
                        )),
                    ..
                } = event
                    && !seen.swap(true, Ordering::Relaxed)
                {
                    pool.0.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
        Pooled {
            conn,
            given_back: Instant::now(),
            lost,
            losses: losses.clone(),
            losses_then: losses.count(),
        }
    }

    /// Whether a query found its server gone: the connection is of no more use.
    pub fn lost(&self) -> bool {
        self.lost.load(Ordering::Relaxed)
    }

    /// Whether it must be checked before it goes out again: idle for a while, or given back
    /// before another connection found the server gone.
    pub fn needs_check(&self) -> bool {
        self.given_back.elapsed() >= RECENTLY || self.losses.count() != self.losses_then
    }

    /// Records that it came back to the pool.
    pub fn given_back(&mut self) {
        self.given_back = Instant::now();
        self.losses_then = self.losses.count();
    }
}

impl Deref for Pooled {
    type Target = Conn;

    fn deref(&self) -> &Conn {
        &self.conn
    }
}

impl DerefMut for Pooled {
    fn deref_mut(&mut self) -> &mut Conn {
        &mut self.conn
    }
}

/// A connection out of the pool, given back when dropped.
pub struct PooledConn(pub(super) PooledConnection<Manager>);

impl Deref for PooledConn {
    type Target = Conn;

    fn deref(&self) -> &Conn {
        &self.0
    }
}

impl DerefMut for PooledConn {
    fn deref_mut(&mut self) -> &mut Conn {
        &mut self.0
    }
}

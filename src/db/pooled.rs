//! A pooled connection that knows when it was last given back, so the pool can hand it out
//! again without a query.
//!
//! Checking every connection with `SELECT 1` as it leaves the pool is a round trip per request
//! on PostgreSQL (a fifth of a rotation's cost there). A connection given back within
//! [`RECENTLY`] worked a moment ago and goes out as it is; one idle longer is checked, so a
//! server restarted while doorman was quiet costs no request. One that finds its server gone
//! while in use is closed when given back (diesel marks its transaction state broken, which
//! the pool's `has_broken` reads), so under load a restart costs only the requests that were
//! using a connection then.

use std::ops::{Deref, DerefMut};
use std::time::{Duration, Instant};

use diesel::r2d2::PooledConnection;

use super::{Conn, Manager};

/// How recently a connection must have been given back to go out unchecked.
const RECENTLY: Duration = Duration::from_secs(1);

pub struct Pooled {
    conn: Conn,
    given_back: Instant,
}

impl Pooled {
    pub fn new(conn: Conn) -> Pooled {
        Pooled {
            conn,
            given_back: Instant::now(),
        }
    }

    /// Whether it must be checked before it goes out again.
    pub fn idle_long(&self) -> bool {
        self.given_back.elapsed() >= RECENTLY
    }

    /// Records that it came back to the pool.
    pub fn given_back(&mut self) {
        self.given_back = Instant::now();
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

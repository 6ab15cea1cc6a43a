//! Opening connections: which backend a `database_url` names, the pool's connection manager,
//! and the settings every SQLite connection needs.

use std::time::Duration;

use diesel::connection::{SimpleConnection, TransactionManager};
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::r2d2::{self, CustomizeConnection, ManageConnection};
use diesel::sqlite::SqliteConnection;

use super::pooled::{self, Pooled};
use super::{Conn, Transactions};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Backend {
    Postgresql,
    Sqlite,
}

/// The database a `database_url` names, by its scheme: `postgres://…` or `postgresql://…`, or a
/// SQLite file as a plain path or `sqlite://<path>`. Anything else is refused, never guessed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    Postgresql(String),
    Sqlite(String),
}

impl DatabaseUrl {
    pub fn parse(url: &str) -> Result<DatabaseUrl, String> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(DatabaseUrl::Postgresql(url.to_owned()));
        }
        let path = url.strip_prefix("sqlite://").unwrap_or(url);
        if let Some((scheme, _)) = path.split_once("://") {
            return Err(format!(
                "`{scheme}://` is not a database doorman knows; use postgres://…, \
                 postgresql://…, sqlite://<path> or a file path"
            ));
        }
        if path.trim().is_empty() {
            return Err("must name a database".into());
        }
        // Every pooled connection (and the writer thread) would open a database of its own.
        if path == ":memory:" || path.starts_with("file:") {
            return Err(format!(
                "`{path}` is not supported: every connection would see a different database; \
                 use a file path"
            ));
        }
        Ok(DatabaseUrl::Sqlite(path.to_owned()))
    }

    pub(super) fn backend(&self) -> Backend {
        match self {
            DatabaseUrl::Postgresql(_) => Backend::Postgresql,
            DatabaseUrl::Sqlite(_) => Backend::Sqlite,
        }
    }

    /// What the backend's driver opens: the URL, or the SQLite file's path.
    pub(super) fn target(&self) -> &str {
        match self {
            DatabaseUrl::Postgresql(url) | DatabaseUrl::Sqlite(url) => url,
        }
    }
}

/// Opens connections of the backend the URL names (the pool's connection manager).
#[derive(Debug, Clone)]
pub struct Manager {
    pub(super) url: String,
    pub(super) backend: Backend,
    pub(super) losses: pooled::Losses,
}

impl Manager {
    pub(super) fn open(&self) -> Result<Conn, r2d2::Error> {
        match self.backend {
            Backend::Postgresql => PgConnection::establish(&self.url).map(Conn::Postgresql),
            Backend::Sqlite => SqliteConnection::establish(&self.url).map(Conn::Sqlite),
        }
        .map_err(r2d2::Error::ConnectionError)
    }
}

impl ManageConnection for Manager {
    type Connection = Pooled;
    type Error = r2d2::Error;

    fn connect(&self) -> Result<Pooled, r2d2::Error> {
        self.open().map(|conn| Pooled::new(conn, &self.losses))
    }

    /// Only a connection idle for a while is checked: see `pooled.rs`.
    fn is_valid(&self, conn: &mut Pooled) -> Result<(), r2d2::Error> {
        if !conn.needs_check() {
            return Ok(());
        }
        conn.batch_execute("SELECT 1")
            .map_err(r2d2::Error::QueryError)
    }

    /// A connection given back inside a transaction (its user panicked) is closed, never
    /// handed to the next request half-way through someone else's writes; so is one whose
    /// server went away under it.
    fn has_broken(&self, conn: &mut Pooled) -> bool {
        conn.given_back();
        std::thread::panicking() || conn.lost() || Transactions::is_broken_transaction_manager(conn)
    }
}

/// Settings every pooled SQLite connection needs.
#[derive(Debug)]
pub(super) struct SqlitePragmas;

impl CustomizeConnection<Pooled, r2d2::Error> for SqlitePragmas {
    fn on_acquire(&self, conn: &mut Pooled) -> Result<(), r2d2::Error> {
        sqlite_pragmas(conn)
    }
}

pub(super) fn sqlite_pragmas(conn: &mut Conn) -> Result<(), r2d2::Error> {
    let Conn::Sqlite(conn) = conn else {
        return Ok(());
    };
    // WAL lets readers run beside the one writer; NORMAL sync is durable against process
    // crashes (a power cut may lose the last commits, never corrupt the file). A 4 MiB page
    // cache per connection keeps hot index pages of large tables at hand (8 connections stay
    // within the 64 MB budget). Checkpoints are the checkpoint thread's job (writer.rs); the
    // threshold here only matters for the rare write outside the writer thread.
    conn.batch_execute(
        "PRAGMA busy_timeout = 5000;
         PRAGMA foreign_keys = ON;
         PRAGMA journal_mode = WAL;
         PRAGMA synchronous = NORMAL;
         PRAGMA cache_size = -4000;
         PRAGMA wal_autocheckpoint = 4000;",
    )
    .map_err(r2d2::Error::QueryError)
}

/// How many connections, and how long a request may wait for one.
#[derive(Debug, Clone, Copy)]
pub struct PoolSettings {
    pub size: u32,
    pub timeout: Duration,
}

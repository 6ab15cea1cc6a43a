//! The database layer: the pool, migrations, and one module of queries per table.
//!
//! Queries are plain synchronous Diesel functions over a connection; the async side reaches them
//! through [`Db::run`], which runs them on Tokio's blocking pool.

pub mod events;
pub mod login_failures;
pub mod refresh_tokens;
pub mod schema;
pub mod sessions;
pub mod users;

use std::fmt;
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::r2d2::{ConnectionManager, CustomizeConnection, Pool, PooledConnection};
use diesel::sqlite::SqliteConnection;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

/// The one connection type every query is written against.
pub type Conn = SqliteConnection;

const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

/// Errors of the database layer.
#[derive(Debug)]
pub enum DbError {
    /// No connection could be had (database missing, locked for too long, pool exhausted).
    Unavailable(String),
    Query(diesel::result::Error),
}

impl fmt::Display for DbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DbError::Unavailable(why) => write!(f, "database unavailable: {why}"),
            DbError::Query(e) => write!(f, "database error: {e}"),
        }
    }
}

impl std::error::Error for DbError {}

impl From<diesel::result::Error> for DbError {
    fn from(e: diesel::result::Error) -> Self {
        DbError::Query(e)
    }
}

/// Pragmas every pooled SQLite connection needs.
#[derive(Debug)]
struct SqlitePragmas;

impl CustomizeConnection<SqliteConnection, diesel::r2d2::Error> for SqlitePragmas {
    fn on_acquire(&self, conn: &mut SqliteConnection) -> Result<(), diesel::r2d2::Error> {
        // WAL lets readers run beside the one writer; NORMAL sync is durable against process
        // crashes (a power cut may lose the last commits, never corrupt the file).
        conn.batch_execute(
            "PRAGMA busy_timeout = 5000;
             PRAGMA foreign_keys = ON;
             PRAGMA journal_mode = WAL;
             PRAGMA synchronous = NORMAL;",
        )
        .map_err(diesel::r2d2::Error::QueryError)
    }
}

/// The connection pool, kept in managed state.
#[derive(Clone)]
pub struct Db {
    pool: Pool<ConnectionManager<Conn>>,
}

impl Db {
    /// Opens the database (creating the SQLite file's folder) and runs pending migrations.
    pub fn open(url: &str) -> Result<Db, DbError> {
        let path = std::path::Path::new(url);
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            crate::fsutil::create_private_dir(dir).map_err(|e| {
                DbError::Unavailable(format!("cannot create `{}`: {e}", dir.display()))
            })?;
        }
        let pool = Pool::builder()
            .max_size(8)
            .connection_timeout(Duration::from_secs(5))
            .connection_customizer(Box::new(SqlitePragmas))
            .build(ConnectionManager::new(url))
            .map_err(|e| DbError::Unavailable(e.to_string()))?;
        let db = Db { pool };
        let mut conn = db.conn()?;
        conn.run_pending_migrations(MIGRATIONS)
            .map_err(|e| DbError::Unavailable(format!("migration failed: {e}")))?;
        Ok(db)
    }

    pub fn conn(&self) -> Result<PooledConnection<ConnectionManager<Conn>>, DbError> {
        self.pool
            .get()
            .map_err(|e| DbError::Unavailable(e.to_string()))
    }

    /// Runs `f` with a pooled connection on the blocking thread pool.
    pub async fn run<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut Conn) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
    {
        let db = self.clone();
        rocket::tokio::task::spawn_blocking(move || {
            let mut conn = db.conn()?;
            f(&mut conn)
        })
        .await
        .unwrap_or_else(|e| Err(DbError::Unavailable(format!("database task failed: {e}")).into()))
    }
}

/// Runs `f` in a `BEGIN IMMEDIATE` transaction: it takes the write lock up front, so two
/// transactions that read-then-write the same rows can never interleave.
pub fn write_transaction<T, E, F>(conn: &mut Conn, f: F) -> Result<T, E>
where
    F: FnOnce(&mut Conn) -> Result<T, E>,
    E: From<diesel::result::Error>,
{
    conn.immediate_transaction(f)
}

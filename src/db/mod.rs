//! The database layer: the pool, migrations, and one module of queries per table.
//!
//! One binary serves SQLite (the embedded default) and PostgreSQL (for several instances),
//! chosen by the scheme of `database_url`. Queries are written once against [`Conn`]; the few
//! places where the dialects differ match on its variant, each in one function here.
//! The async side reaches the queries through [`Db::run`] (reads) and [`Db::write`] (one
//! transaction each, whose effects are applied after it commits: [`Tx`]).
//!
//! Lookups by a unique key use `get_result`, not `first`: SQLite re-prepares a statement whose
//! `LIMIT` is a bound parameter every time it runs, which cost more than the rest of a rotation.

pub mod batches;
pub mod changes;
mod connections;
pub mod email;
pub mod events;
pub mod login_attempts;
pub mod outbox;
pub mod passkeys;
pub mod pending_logins;
mod pooled;
pub mod refresh_tokens;
pub mod rotation_writes;
pub mod schema;
pub mod second_factors;
pub mod sessions;
mod sqlite_statements;
mod tx;
pub mod users;
mod writer;

pub use connections::{DatabaseUrl, Manager, PoolSettings};
pub use tx::{Changed, Tx};

use connections::{Backend, SqlitePragmas};

pub(crate) use pooled::Pooled;
pub use pooled::PooledConn;

use std::time::Duration;

use diesel::connection::{AnsiTransactionManager, SimpleConnection, TransactionManager};
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::r2d2::{ManageConnection, Pool};
use diesel::sqlite::SqliteConnection;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

/// A connection to either backend; every query is written against it.
#[derive(diesel::MultiConnection)]
pub enum Conn {
    Postgresql(PgConnection),
    Sqlite(SqliteConnection),
}

/// Runs one diesel expression on the connection's own type: written once, compiled for each
/// backend. Through [`Conn`] diesel builds a statement's SQL text again on every run to find it
/// in its cache; on the backend's own connection it finds it by the query's type. Used for the
/// statements of every rotation.
macro_rules! native {
    ($conn:expr, $c:ident => $body:expr) => {
        match $conn {
            $crate::db::Conn::Sqlite($c) => $body,
            $crate::db::Conn::Postgresql($c) => $body,
        }
    };
}
pub(crate) use native;

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// Errors of the database layer. (From diesel's errors by hand, below: some of them are
/// outages, not bad queries.)
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// No connection could be had (database down or missing, locked too long, pool exhausted).
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("database error: {0}")]
    Query(diesel::result::Error),
}

/// SQLite's words for a database that cannot take writes now: full, read-only, failing disk, or
/// locked past `busy_timeout`. After a full disk or an I/O error SQLite rolls the transaction
/// back itself, so Diesel's own rollback then reports that none is active (or, for a write in
/// the writer's batch, that its savepoint is gone).
const SQLITE_OUTAGES: [&str; 6] = [
    "database or disk is full",
    "attempt to write a readonly database",
    "disk I/O error",
    "database is locked",
    "cannot rollback - no transaction is active",
    "no such savepoint",
];

impl From<diesel::result::Error> for DbError {
    fn from(e: diesel::result::Error) -> Self {
        use diesel::result::{DatabaseErrorKind, Error};
        match e {
            // A connection that died under a query, or was dead before it was sent, is an
            // outage, not a bad query.
            Error::DatabaseError(
                DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand,
                info,
            ) => DbError::Unavailable(info.message().to_owned()),
            Error::DatabaseError(_, ref info)
                if SQLITE_OUTAGES.iter().any(|m| info.message().contains(m)) =>
            {
                DbError::Unavailable(info.message().to_owned())
            }
            e => DbError::Query(e),
        }
    }
}

pub(crate) type Transactions = <Conn as Connection>::TransactionManager;

/// The connection pool, kept in managed state.
#[derive(Clone)]
pub struct Db {
    pool: Pool<Manager>,
    /// The pool's manager, for connections kept outside it ([`Db::connect`]).
    manager: Manager,
    after: tx::SharedAfterCommit,
    /// SQLite's writer thread; PostgreSQL writes through the pool.
    writer: Option<writer::Writer>,
}

impl Db {
    /// Opens the database with default pool settings (tools and tests).
    pub fn open(url: &str) -> Result<Db, DbError> {
        Db::open_with(
            url,
            PoolSettings {
                size: 8,
                timeout: Duration::from_secs(5),
            },
        )
    }

    /// Opens the database (creating a SQLite file's folder) and runs pending migrations.
    pub fn open_with(url: &str, settings: PoolSettings) -> Result<Db, DbError> {
        let parsed = DatabaseUrl::parse(url).map_err(DbError::Unavailable)?;
        let backend = parsed.backend();
        let url = parsed.target();
        if let DatabaseUrl::Sqlite(path) = &parsed {
            let file = std::path::Path::new(path);
            if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
                crate::fsutil::create_private_dir(dir).map_err(|e| {
                    DbError::Unavailable(format!("cannot create `{}`: {e}", dir.display()))
                })?;
            }
            crate::fsutil::make_database_private(file).map_err(|e| {
                DbError::Unavailable(format!("cannot create `{}`: {e}", file.display()))
            })?;
        }
        let manager = Manager {
            url: url.to_owned(),
            backend,
            losses: pooled::Losses::default(),
        };
        let pool = Pool::builder()
            .max_size(settings.size)
            .connection_timeout(settings.timeout)
            // A server connection can die while pooled (a restart): one idle for a while is
            // checked as it goes out (pooled.rs). A SQLite file cannot.
            .test_on_check_out(backend == Backend::Postgresql)
            .connection_customizer(Box::new(SqlitePragmas))
            .build(manager.clone())
            .map_err(|e| DbError::Unavailable(e.to_string()))?;
        let writer = match backend {
            Backend::Sqlite => Some(writer::Writer::start(manager.clone())?),
            Backend::Postgresql => None,
        };
        let db = Db {
            pool,
            manager,
            after: tx::SharedAfterCommit::default(),
            writer,
        };
        let mut conn = db.conn()?;
        let migrated = match &mut *conn {
            Conn::Sqlite(c) => c.run_pending_migrations(SQLITE_MIGRATIONS).map(drop),
            Conn::Postgresql(c) => c.run_pending_migrations(POSTGRES_MIGRATIONS).map(drop),
        };
        migrated.map_err(|e| DbError::Unavailable(format!("migration failed: {e}")))?;
        Ok(db)
    }

    pub fn conn(&self) -> Result<PooledConn, DbError> {
        self.pool
            .get()
            .map(PooledConn)
            .map_err(|e| DbError::Unavailable(e.to_string()))
    }

    /// A connection of its own, outside the pool, for a thread that keeps one; it is checked
    /// and given back by the pool's own rules ([`Db::ready`], [`Db::given_back`]).
    pub(crate) fn connect(&self) -> Result<Pooled, DbError> {
        self.manager
            .connect()
            .map_err(|e| DbError::Unavailable(e.to_string()))
    }

    /// Whether a kept connection may be used again, checked as the pool checks its own.
    pub(crate) fn ready(&self, conn: &mut Pooled) -> bool {
        self.manager.is_valid(conn).is_ok()
    }

    /// Records that a kept connection's work is done; false when it is broken and must go, as
    /// the pool would close it.
    pub(crate) fn given_back(&self, conn: &mut Pooled) -> bool {
        !self.manager.has_broken(conn)
    }

    /// Whether this is PostgreSQL, where a write need not queue for one writer thread.
    pub fn is_postgres(&self) -> bool {
        self.writer.is_none()
    }

    /// Whose security events changed, as far as this process knows.
    pub fn changes(&self) -> &changes::UserChanges {
        self.after.changes()
    }

    /// Registers what the process does with every committed write's [`Changed`] besides
    /// logging its events and marking its users (the in-memory revocation set). One listener
    /// per database; false when one is registered already.
    pub fn on_commit(&self, listener: impl Fn(&Changed) + Send + Sync + 'static) -> bool {
        self.after.listen(Box::new(listener))
    }

    /// Runs read work `f` with a pooled connection on the blocking thread pool.
    pub async fn run<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut Conn) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
    {
        let db = self.clone();
        rocket::tokio::task::spawn_blocking(move || {
            db.conn().map_err(E::from).and_then(|mut conn| f(&mut conn))
        })
        .await
        .unwrap_or_else(|e| Err(task_failed(&e).into()))
    }

    /// Runs write work `f` in one write transaction (committed when it returns `Ok`, rolled
    /// back otherwise), then applies what it changed. On SQLite's writer thread (in a savepoint
    /// of its batch: `writer.rs`), on PostgreSQL on the blocking pool. Only for quick work (no password hashing): the writer serves every
    /// write of the process in turn.
    pub async fn write<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut Tx<'_>) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
    {
        let after = self.after.clone();
        if let Some(writer) = &self.writer {
            writer
                .run(move |conn| in_batch(conn, after, f))
                .await
                .map_err(E::from)?
        } else {
            let db = self.clone();
            rocket::tokio::task::spawn_blocking(move || committed(&mut *db.conn()?, &after, f))
                .await
                .unwrap_or_else(|e| Err(task_failed(&e).into()))
        }
    }

    /// [`Db::write`] for callers outside the async runtime (the command line, tools, tests):
    /// the same transaction and the same effects, waited for on this thread.
    pub fn write_blocking<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut Tx<'_>) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
    {
        let after = self.after.clone();
        match &self.writer {
            Some(writer) => writer
                .run_blocking(move |conn| in_batch(conn, after, f))
                .map_err(E::from)?,
            None => committed(&mut *self.conn()?, &self.after, f),
        }
    }
}

fn task_failed(e: &rocket::tokio::task::JoinError) -> DbError {
    DbError::Unavailable(format!("database task failed: {e}"))
}

/// Runs `f` in a transaction on `conn` and applies what it changed once it has committed.
fn committed<T, E, F>(conn: &mut Conn, after: &tx::AfterCommit, f: F) -> Result<T, E>
where
    F: FnOnce(&mut Tx<'_>) -> Result<T, E>,
    E: From<DbError>,
{
    let (value, changed) = transaction(conn, Begin::Own, f)?;
    after.apply(&changed);
    Ok(value)
}

/// Runs `f` inside the writer's batch transaction, in a savepoint of its own: when `f` fails,
/// its writes are undone and the batch ends there (the jobs before it still commit). The
/// answer, and what `f` changed, wait for the batch's commit.
fn in_batch<T, E, F>(
    conn: Result<&mut Conn, DbError>,
    after: tx::SharedAfterCommit,
    f: F,
) -> writer::Step<Result<T, E>>
where
    F: FnOnce(&mut Tx<'_>) -> Result<T, E>,
    T: Send + 'static,
    E: From<DbError> + Send + 'static,
{
    let outcome = conn
        .map_err(E::from)
        .and_then(|conn| transaction(conn, Begin::Savepoint, f));
    writer::Step {
        go_on: outcome.is_ok(),
        finish: Box::new(move |batch| {
            let (value, changed) = outcome?;
            batch.map_err(E::from)?;
            after.apply(&changed);
            Ok(value)
        }),
    }
}

/// Opens a write transaction: on SQLite `BEGIN IMMEDIATE`, which takes the write lock before
/// anything is read (the writer's batches and every write of the pool).
fn begin_write(conn: &mut Conn) -> QueryResult<()> {
    match conn {
        Conn::Sqlite(sqlite) => {
            AnsiTransactionManager::begin_transaction_sql(sqlite, "BEGIN IMMEDIATE")
        }
        Conn::Postgresql(_) => Transactions::begin_transaction(conn),
    }
}

/// How a transaction starts.
#[derive(Clone, Copy)]
enum Begin {
    /// A transaction of its own: `BEGIN IMMEDIATE` on SQLite.
    Own,
    /// A savepoint inside a transaction the writer holds.
    Savepoint,
}

/// One write transaction (or savepoint). On SQLite it begins with `BEGIN IMMEDIATE`, taking the
/// write lock before anything is read, so two read-then-write transactions never interleave and
/// never fail to upgrade; on PostgreSQL rows are locked where the rules need it
/// ([`lock_session`], [`lock_keys`]). The end as in diesel's own `transaction`: a failed rollback
/// after a failed body reports the body's error unless it says more.
fn transaction<T, E, F>(conn: &mut Conn, begin: Begin, f: F) -> Result<(T, Changed), E>
where
    F: FnOnce(&mut Tx<'_>) -> Result<T, E>,
    E: From<DbError>,
{
    let failed = |e: diesel::result::Error| E::from(DbError::from(e));
    match begin {
        Begin::Own => begin_write(conn),
        Begin::Savepoint => Transactions::begin_transaction(conn),
    }
    .map_err(failed)?;
    let mut tx = Tx::new(conn);
    let outcome = f(&mut tx);
    let changed = tx.into_changed();
    match outcome {
        Ok(value) => {
            Transactions::commit_transaction(conn).map_err(failed)?;
            Ok((value, changed))
        }
        Err(error) => match Transactions::rollback_transaction(conn) {
            Ok(()) | Err(diesel::result::Error::BrokenTransactionManager) => Err(error),
            Err(rollback) => Err(failed(rollback)),
        },
    }
}

/// One round trip to the database: whether it answers.
pub fn ping(conn: &mut Conn) -> QueryResult<()> {
    conn.batch_execute("SELECT 1")
}

/// Locks a session's row until the transaction ends, so rotations of one session serialize
/// across instances (PostgreSQL; returns true). SQLite's write lock already covers it (false).
pub fn lock_session(conn: &mut Conn, session_id: i64) -> QueryResult<bool> {
    let Conn::Postgresql(pg) = conn else {
        return Ok(false);
    };
    schema::sessions::table
        .find(session_id)
        .select(schema::sessions::id)
        .for_update()
        .first::<i64>(pg)?;
    Ok(true)
}

/// [`lock_session`] for the session a refresh token belongs to, found by the token's hash in
/// the same statement: a rotation locks before it reads anything, so what it reads next is
/// what the last rotation of the session committed. No-op on SQLite.
pub fn lock_session_of_token(conn: &mut Conn, token_hash: &[u8]) -> QueryResult<()> {
    use schema::{refresh_tokens, sessions};
    let Conn::Postgresql(pg) = conn else {
        return Ok(());
    };
    let owner = refresh_tokens::table
        .filter(refresh_tokens::token_hash.eq(token_hash))
        .select(refresh_tokens::session_id)
        .single_value();
    sessions::table
        .filter(sessions::id.nullable().eq(owner))
        .select(sessions::id)
        .for_update()
        .get_result::<i64>(pg)
        .optional()
        .map(drop)
}

/// Serializes transactions that read and then write under the same keys (throttle counters)
/// across instances: PostgreSQL advisory locks held to the end of the transaction, taken in
/// sorted order so two transactions never wait for each other. SQLite's write lock, taken at
/// `BEGIN IMMEDIATE`, already serializes them.
pub fn lock_keys(conn: &mut Conn, keys: &[String]) -> QueryResult<()> {
    let Conn::Postgresql(pg) = conn else {
        return Ok(());
    };
    let mut keys: Vec<&String> = keys.iter().collect();
    keys.sort();
    keys.dedup();
    for key in keys {
        diesel::sql_query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
            .bind::<diesel::sql_types::Text, _>(key)
            .execute(pg)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::DatabaseUrl;

    #[test]
    fn the_scheme_names_the_backend_and_nothing_is_guessed() {
        let sqlite = |p: &str| Ok(DatabaseUrl::Sqlite(p.into()));
        assert_eq!(
            DatabaseUrl::parse("data/d.sqlite3"),
            sqlite("data/d.sqlite3")
        );
        assert_eq!(
            DatabaseUrl::parse("sqlite:///var/d.db"),
            sqlite("/var/d.db")
        );
        assert_eq!(
            DatabaseUrl::parse("postgresql://u@h/db"),
            Ok(DatabaseUrl::Postgresql("postgresql://u@h/db".into()))
        );
        for refused in [
            "postgress://u@h/db",
            ":memory:",
            "file:x.db",
            "sqlite://",
            "",
        ] {
            assert!(DatabaseUrl::parse(refused).is_err(), "{refused}");
        }
    }
}

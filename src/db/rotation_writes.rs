//! A rotation's writes, for both dialects in one place: PostgreSQL's as one call of its
//! function (alone or in batches), SQLite's as the prepared statements of `sqlite_statements`.

use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Binary, Integer, Text};
use diesel::sqlite::SqliteConnection;

use super::Conn;
use super::refresh_tokens::new_token;
use super::schema::refresh_tokens;
use super::sessions::SessionRow;
use super::sqlite_statements::{MarkUsed, Touch};

diesel::define_sql_function! {
    /// PostgreSQL's writes of many rotations in one call, one array element per rotation; the
    /// token ids it rotated (migrations `2026-12-09-000000_rotate_in_batches`, and
    /// `2026-12-10-000000_rotate_in_one_statement` for its body now).
    fn doorman_rotate_tokens(
        token_ids: Array<BigInt>,
        session_ids: Array<BigInt>,
        successor_hashes: Array<Binary>,
        nows: Array<BigInt>,
        ips: Array<Text>,
        user_agents: Array<Text>,
        key_versions: Array<Integer>,
    ) -> Array<BigInt>;
}

/// What a rotation writes: live token `token_id` of `session` replaced by the token hashed
/// `successor_hash`, at `now`, from `ip` with `user_agent`.
pub struct Replacement<'a> {
    pub token_id: i64,
    pub session: &'a SessionRow,
    pub successor_hash: &'a [u8],
    pub now: i64,
    pub ip: &'a str,
    pub user_agent: &'a str,
}

/// The writes of a rotation: the live token is marked used, its successor takes its place, and
/// the session records its use (and `key_version`). False, and nothing written, when the token
/// was no longer live or, on PostgreSQL, its session had ended.
///
/// PostgreSQL does it as a batch of one ([`rotate_many`]), safe outside a transaction. SQLite
/// runs the statements in the writer's transaction, whose caller read the session open under
/// the write lock; the session is not checked again there, as diesel prepares every `UPDATE`
/// anew and a subquery made each rotation an eighth slower.
pub fn rotate(conn: &mut Conn, r: &Replacement<'_>) -> QueryResult<bool> {
    match conn {
        Conn::Postgresql(pg) => Ok(!rotate_many(pg, std::slice::from_ref(r))?.is_empty()),
        Conn::Sqlite(lite) => rotate_sqlite(lite, r),
    }
}

/// The writes of many rotations on PostgreSQL in one call, each as [`rotate`] does them: the
/// sessions are locked in id order (two batches never wait for each other in a circle), and
/// only a token still live in a session still open is rotated. Returns the ids of the tokens it
/// rotated. The tokens must differ.
pub fn rotate_many(pg: &mut PgConnection, rs: &[Replacement<'_>]) -> QueryResult<Vec<i64>> {
    if rs.is_empty() {
        return Ok(Vec::new());
    }
    let column = |f: fn(&Replacement<'_>) -> i64| rs.iter().map(f).collect::<Vec<_>>();
    diesel::select(doorman_rotate_tokens(
        column(|r| r.token_id),
        column(|r| r.session.id),
        rs.iter().map(|r| r.successor_hash).collect::<Vec<_>>(),
        column(|r| r.now),
        rs.iter().map(|r| r.ip).collect::<Vec<_>>(),
        rs.iter().map(|r| r.user_agent).collect::<Vec<_>>(),
        rs.iter().map(|r| r.session.key_version).collect::<Vec<_>>(),
    ))
    .get_result(pg)
}

/// [`rotate`] on SQLite: false, and nothing written, when the token was used already.
fn rotate_sqlite(conn: &mut SqliteConnection, r: &Replacement<'_>) -> QueryResult<bool> {
    let used = MarkUsed {
        id: r.token_id,
        at: r.now,
    };
    if used.execute(conn)? == 0 {
        return Ok(false);
    }
    diesel::insert_into(refresh_tokens::table)
        .values(new_token(
            r.session.id,
            r.successor_hash,
            Some(r.token_id),
            r.now,
        ))
        .execute(conn)?;
    Touch {
        id: r.session.id,
        at: r.now,
        ip: r.ip,
        user_agent: r.user_agent,
        key_version: r.session.key_version,
    }
    .execute(conn)?;
    Ok(true)
}

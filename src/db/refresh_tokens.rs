//! Queries of the `refresh_tokens` table: hashes only, linked child to parent.

use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Binary, Integer, Text};

use super::schema::{refresh_tokens, sessions, users};
use super::sessions::SessionRow;
use super::sqlite_rotation;
use super::{Conn, native};

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

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = refresh_tokens)]
pub struct RefreshTokenRow {
    pub id: i64,
    pub session_id: i64,
    pub token_hash: Vec<u8>,
    pub parent_id: Option<i64>,
    pub created_at: i64,
    pub used_at: Option<i64>,
}

/// A token row to insert.
pub(super) type NewToken<'a> = (
    diesel::dsl::Eq<refresh_tokens::session_id, i64>,
    diesel::dsl::Eq<refresh_tokens::token_hash, &'a [u8]>,
    diesel::dsl::Eq<refresh_tokens::parent_id, Option<i64>>,
    diesel::dsl::Eq<refresh_tokens::created_at, i64>,
);

pub(super) fn new_token(
    session_id: i64,
    token_hash: &[u8],
    parent_id: Option<i64>,
    created_at: i64,
) -> NewToken<'_> {
    (
        refresh_tokens::session_id.eq(session_id),
        refresh_tokens::token_hash.eq(token_hash),
        refresh_tokens::parent_id.eq(parent_id),
        refresh_tokens::created_at.eq(created_at),
    )
}

pub fn insert(
    conn: &mut Conn,
    session_id: i64,
    token_hash: &[u8],
    parent_id: Option<i64>,
    created_at: i64,
) -> QueryResult<()> {
    let row = new_token(session_id, token_hash, parent_id, created_at);
    native!(conn, c => diesel::insert_into(refresh_tokens::table).values(row).execute(c)).map(drop)
}

pub fn find_by_hash(conn: &mut Conn, token_hash: &[u8]) -> QueryResult<Option<RefreshTokenRow>> {
    refresh_tokens::table
        .filter(refresh_tokens::token_hash.eq(token_hash))
        .select(RefreshTokenRow::as_select())
        .get_result(conn)
        .optional()
}

/// A token with its session and the session user's role and disabled flag: everything a
/// rotation decides on, in one query.
pub fn find_with_session(
    conn: &mut Conn,
    token_hash: &[u8],
) -> QueryResult<Option<(RefreshTokenRow, SessionRow, String, bool)>> {
    native!(conn, c => refresh_tokens::table
        .inner_join(sessions::table.inner_join(users::table))
        .filter(refresh_tokens::token_hash.eq(token_hash))
        .select((
            RefreshTokenRow::as_select(),
            SessionRow::as_select(),
            users::role,
            users::disabled,
        ))
        .get_result(c))
    .optional()
}

/// [`find_with_session`] for many tokens in one query (PostgreSQL's batches of rotations, on a
/// connection that plans it as lookups by key: `db::batches`): the tokens found, in no
/// particular order.
pub fn find_many_with_session(
    pg: &mut PgConnection,
    token_hashes: &[&[u8]],
) -> QueryResult<Vec<(RefreshTokenRow, SessionRow, String, bool)>> {
    refresh_tokens::table
        .inner_join(sessions::table.inner_join(users::table))
        .filter(refresh_tokens::token_hash.eq_any(token_hashes))
        .select((
            RefreshTokenRow::as_select(),
            SessionRow::as_select(),
            users::role,
            users::disabled,
        ))
        .load(pg)
}

/// The token that replaced `parent_id`, if any.
pub fn find_child(conn: &mut Conn, parent_id: i64) -> QueryResult<Option<RefreshTokenRow>> {
    refresh_tokens::table
        .filter(refresh_tokens::parent_id.eq(parent_id))
        .select(RefreshTokenRow::as_select())
        .get_result(conn)
        .optional()
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
        Conn::Sqlite(lite) => sqlite_rotation::rotate(lite, r),
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

/// How many rotations there have been (tokens that replaced another).
pub fn count_rotations(conn: &mut Conn) -> QueryResult<i64> {
    refresh_tokens::table
        .filter(refresh_tokens::parent_id.is_not_null())
        .count()
        .get_result(conn)
}

/// How many tokens of a session are still live (never used); one while the session is active.
pub fn count_live(conn: &mut Conn, session_id: i64) -> QueryResult<i64> {
    refresh_tokens::table
        .filter(refresh_tokens::session_id.eq(session_id))
        .filter(refresh_tokens::used_at.is_null())
        .count()
        .get_result(conn)
}

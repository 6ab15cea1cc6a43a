//! Queries of the `refresh_tokens` table: hashes only, linked child to parent.

use diesel::prelude::*;

use super::schema::{refresh_tokens, sessions, users};
use super::sessions::SessionRow;
use super::{Conn, native};

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

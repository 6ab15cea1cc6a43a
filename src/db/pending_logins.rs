//! Queries of `pending_logins`: logins waiting for their second step.

use diesel::prelude::*;

use super::Conn;
use super::schema::pending_logins;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = pending_logins)]
pub struct PendingRow {
    pub id: i64,
    pub user_id: i64,
    pub remember: bool,
    pub next: Option<String>,
    pub failures: i32,
    pub expires_at: i64,
}

#[derive(Insertable)]
#[diesel(table_name = pending_logins)]
pub struct NewPending<'a> {
    pub token_hash: &'a [u8],
    pub user_id: i64,
    pub remember: bool,
    pub next: Option<&'a str>,
    pub created_at: i64,
    pub expires_at: i64,
}

/// Stores a pending login, and drops those that have expired.
pub fn insert(conn: &mut Conn, pending: &NewPending<'_>) -> QueryResult<()> {
    diesel::delete(pending_logins::table.filter(pending_logins::expires_at.le(pending.created_at)))
        .execute(conn)?;
    diesel::insert_into(pending_logins::table)
        .values(pending)
        .execute(conn)
        .map(drop)
}

/// The pending login with this token hash, if it has not expired at `now`.
pub fn find_live(conn: &mut Conn, token_hash: &[u8], now: i64) -> QueryResult<Option<PendingRow>> {
    pending_logins::table
        .filter(pending_logins::token_hash.eq(token_hash))
        .filter(pending_logins::expires_at.gt(now))
        .select(PendingRow::as_select())
        .get_result(conn)
        .optional()
}

/// Counts a wrong code; at `max_failures` the pending login is gone. Returns whether it is.
pub fn fail(conn: &mut Conn, id: i64, max_failures: i32) -> QueryResult<bool> {
    diesel::update(pending_logins::table.find(id))
        .set(pending_logins::failures.eq(pending_logins::failures + 1))
        .execute(conn)?;
    diesel::delete(
        pending_logins::table
            .find(id)
            .filter(pending_logins::failures.ge(max_failures)),
    )
    .execute(conn)
    .map(|n| n > 0)
}

/// Takes the pending login away for good: true for exactly one caller.
pub fn take(conn: &mut Conn, id: i64) -> QueryResult<bool> {
    diesel::delete(pending_logins::table.find(id))
        .execute(conn)
        .map(|n| n == 1)
}

/// Ends every pending login of a user (their second factors were reset).
pub fn delete_for_user(conn: &mut Conn, user_id: i64) -> QueryResult<()> {
    diesel::delete(pending_logins::table.filter(pending_logins::user_id.eq(user_id)))
        .execute(conn)
        .map(drop)
}

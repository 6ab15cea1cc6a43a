//! Queries of the `login_attempts` table.

use diesel::prelude::*;

use super::Conn;
use super::schema::login_attempts;

/// Counts one attempt; returns its id, so a successful one can be taken back.
pub fn insert(conn: &mut Conn, scope: &str, subject: &str, at: i64) -> QueryResult<i64> {
    diesel::insert_into(login_attempts::table)
        .values((
            login_attempts::scope.eq(scope),
            login_attempts::subject.eq(subject),
            login_attempts::attempted_at.eq(at),
        ))
        .returning(login_attempts::id)
        .get_result(conn)
}

/// Attempt times of one subject after `since`, oldest first, at most `limit`.
pub fn recent(
    conn: &mut Conn,
    scope: &str,
    subject: &str,
    since: i64,
    limit: i64,
) -> QueryResult<Vec<i64>> {
    login_attempts::table
        .filter(login_attempts::scope.eq(scope))
        .filter(login_attempts::subject.eq(subject))
        .filter(login_attempts::attempted_at.gt(since))
        .order(login_attempts::attempted_at.desc())
        .limit(limit)
        .select(login_attempts::attempted_at)
        .load(conn)
        .map(|mut times| {
            times.reverse();
            times
        })
}

pub fn delete(conn: &mut Conn, ids: &[i64]) -> QueryResult<()> {
    diesel::delete(login_attempts::table.filter(login_attempts::id.eq_any(ids)))
        .execute(conn)
        .map(drop)
}

pub fn clear(conn: &mut Conn, scope: &str, subject: &str) -> QueryResult<()> {
    diesel::delete(
        login_attempts::table
            .filter(login_attempts::scope.eq(scope))
            .filter(login_attempts::subject.eq(subject)),
    )
    .execute(conn)
    .map(drop)
}

pub fn prune(conn: &mut Conn, before: i64) -> QueryResult<()> {
    diesel::delete(login_attempts::table.filter(login_attempts::attempted_at.le(before)))
        .execute(conn)
        .map(drop)
}

//! Queries of the `login_failures` table.

use diesel::prelude::*;

use super::Conn;
use super::schema::login_failures;

pub fn insert(conn: &mut Conn, scope: &str, subject: &str, at: i64) -> QueryResult<()> {
    diesel::insert_into(login_failures::table)
        .values((
            login_failures::scope.eq(scope),
            login_failures::subject.eq(subject),
            login_failures::failed_at.eq(at),
        ))
        .execute(conn)
        .map(drop)
}

/// Failure times of one subject after `since`, oldest first, at most `limit`.
pub fn recent(
    conn: &mut Conn,
    scope: &str,
    subject: &str,
    since: i64,
    limit: i64,
) -> QueryResult<Vec<i64>> {
    login_failures::table
        .filter(login_failures::scope.eq(scope))
        .filter(login_failures::subject.eq(subject))
        .filter(login_failures::failed_at.gt(since))
        .order(login_failures::failed_at.desc())
        .limit(limit)
        .select(login_failures::failed_at)
        .load(conn)
        .map(|mut times| {
            times.reverse();
            times
        })
}

pub fn clear(conn: &mut Conn, scope: &str, subject: &str) -> QueryResult<()> {
    diesel::delete(
        login_failures::table
            .filter(login_failures::scope.eq(scope))
            .filter(login_failures::subject.eq(subject)),
    )
    .execute(conn)
    .map(drop)
}

pub fn prune(conn: &mut Conn, before: i64) -> QueryResult<()> {
    diesel::delete(login_failures::table.filter(login_failures::failed_at.le(before)))
        .execute(conn)
        .map(drop)
}

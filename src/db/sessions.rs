//! Queries of the `sessions` table (one row per refresh-token family).

use diesel::prelude::*;

use super::Conn;
use super::schema::{sessions, users};

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = sessions)]
pub struct SessionRow {
    pub id: i64,
    pub public_id: String,
    pub user_id: i64,
    pub successor_key: Vec<u8>,
    pub remember: bool,
    pub created_at: i64,
    pub last_used_at: i64,
    pub expires_at: i64,
    pub first_ip: String,
    pub first_user_agent: String,
    pub last_ip: String,
    pub last_user_agent: String,
    pub ended_at: Option<i64>,
    pub end_reason: Option<String>,
}

#[derive(Insertable)]
#[diesel(table_name = sessions)]
pub struct NewSession<'a> {
    pub public_id: &'a str,
    pub user_id: i64,
    pub successor_key: &'a [u8],
    pub remember: bool,
    pub created_at: i64,
    pub last_used_at: i64,
    pub expires_at: i64,
    pub first_ip: &'a str,
    pub first_user_agent: &'a str,
    pub last_ip: &'a str,
    pub last_user_agent: &'a str,
}

pub fn insert(conn: &mut Conn, session: &NewSession<'_>) -> QueryResult<SessionRow> {
    diesel::insert_into(sessions::table)
        .values(session)
        .returning(SessionRow::as_returning())
        .get_result(conn)
}

pub fn find(conn: &mut Conn, id: i64) -> QueryResult<Option<SessionRow>> {
    sessions::table
        .find(id)
        .select(SessionRow::as_select())
        .first(conn)
        .optional()
}

pub fn find_by_public_id(conn: &mut Conn, public_id: &str) -> QueryResult<Option<SessionRow>> {
    sessions::table
        .filter(sessions::public_id.eq(public_id))
        .select(SessionRow::as_select())
        .first(conn)
        .optional()
}

/// The session with its user's role and disabled flag, for issuing access tokens.
pub fn find_with_user(conn: &mut Conn, id: i64) -> QueryResult<Option<(SessionRow, String, bool)>> {
    sessions::table
        .inner_join(users::table)
        .filter(sessions::id.eq(id))
        .select((SessionRow::as_select(), users::role, users::disabled))
        .first(conn)
        .optional()
}

pub fn touch(conn: &mut Conn, id: i64, at: i64, ip: &str, user_agent: &str) -> QueryResult<()> {
    diesel::update(sessions::table.find(id))
        .set((
            sessions::last_used_at.eq(at),
            sessions::last_ip.eq(ip),
            sessions::last_user_agent.eq(user_agent),
        ))
        .execute(conn)
        .map(drop)
}

/// Ends a session that is still active; returns whether it was.
pub fn end(conn: &mut Conn, id: i64, at: i64, reason: &str) -> QueryResult<bool> {
    diesel::update(
        sessions::table
            .find(id)
            .filter(sessions::ended_at.is_null()),
    )
    .set((sessions::ended_at.eq(at), sessions::end_reason.eq(reason)))
    .execute(conn)
    .map(|n| n > 0)
}

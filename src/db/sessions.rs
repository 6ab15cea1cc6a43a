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
    pub access_not_before: Option<i64>,
    pub key_version: i32,
    /// How the session signed in: RFC 8176 values, space-separated.
    pub amr: String,
    /// When it last authenticated: the login, or the last `/sudo`.
    pub auth_time: i64,
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
    pub key_version: i32,
    pub amr: &'a str,
    pub auth_time: i64,
}

pub fn insert(conn: &mut Conn, session: &NewSession<'_>) -> QueryResult<SessionRow> {
    let id: i64 = diesel::insert_into(sessions::table)
        .values(session)
        .returning(sessions::id)
        .get_result(conn)?;
    sessions::table
        .find(id)
        .select(SessionRow::as_select())
        .get_result(conn)
}

pub fn find(conn: &mut Conn, id: i64) -> QueryResult<Option<SessionRow>> {
    sessions::table
        .find(id)
        .select(SessionRow::as_select())
        .get_result(conn)
        .optional()
}

pub fn find_by_public_id(conn: &mut Conn, public_id: &str) -> QueryResult<Option<SessionRow>> {
    sessions::table
        .filter(sessions::public_id.eq(public_id))
        .select(SessionRow::as_select())
        .get_result(conn)
        .optional()
}

/// Records a new authentication of an open session (sudo mode) and its methods; returns
/// whether it is open.
pub fn set_auth_time(conn: &mut Conn, id: i64, at: i64, amr: &str) -> QueryResult<bool> {
    diesel::update(
        sessions::table
            .find(id)
            .filter(sessions::ended_at.is_null()),
    )
    .set((sessions::auth_time.eq(at), sessions::amr.eq(amr)))
    .execute(conn)
    .map(|n| n > 0)
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

/// (public id, ended at, access not before, the user's role) of a session.
pub type RevocationRow = (String, Option<i64>, Option<i64>, String);

/// Sessions ended, or told to renew their access tokens, at or after `since`.
pub fn revoked_since(conn: &mut Conn, since: i64) -> QueryResult<Vec<RevocationRow>> {
    sessions::table
        .inner_join(users::table)
        .filter(
            sessions::ended_at
                .ge(since)
                .or(sessions::access_not_before.ge(since)),
        )
        .select((
            sessions::public_id,
            sessions::ended_at,
            sessions::access_not_before,
            users::role,
        ))
        .load(conn)
}

/// The one rule for a session that is alive at `now`: not ended, before its maximum age
/// (`expires_at`), and used within `refresh_ttl` (its live refresh token was issued at
/// `last_used_at`). Rotation asks [`Alive::lapse`]; the listings filter with the same bounds in
/// SQL ([`alive_at`]).
#[derive(Debug, Clone, Copy)]
pub struct Alive {
    pub now: i64,
    pub refresh_ttl: i64,
}

/// Why a session is no longer alive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lapse {
    Ended,
    /// Past `session_max_age`.
    MaxAge,
    /// Not used within `refresh_ttl`.
    Inactive,
}

impl Alive {
    pub fn lapse(&self, session: &SessionRow) -> Option<Lapse> {
        if session.ended_at.is_some() {
            Some(Lapse::Ended)
        } else if self.now >= session.expires_at {
            Some(Lapse::MaxAge)
        } else if self.now >= session.last_used_at.saturating_add(self.refresh_ttl) {
            Some(Lapse::Inactive)
        } else {
            None
        }
    }
}

/// [`Alive`] as a filter.
#[diesel::dsl::auto_type(no_type_alias)]
fn alive_at(now: i64, used_after: i64) -> _ {
    sessions::ended_at
        .is_null()
        .and(sessions::expires_at.gt(now))
        .and(sessions::last_used_at.gt(used_after))
}

/// A user's alive sessions, most recently used first.
pub fn active_for_user(
    conn: &mut Conn,
    user_id: i64,
    alive: Alive,
) -> QueryResult<Vec<SessionRow>> {
    sessions::table
        .filter(sessions::user_id.eq(user_id))
        .filter(alive_at(
            alive.now,
            alive.now.saturating_sub(alive.refresh_ttl),
        ))
        .order((sessions::last_used_at.desc(), sessions::id.desc()))
        .select(SessionRow::as_select())
        .load(conn)
}

/// A user's sessions that ended, latest first.
pub fn ended_for_user(conn: &mut Conn, user_id: i64, limit: i64) -> QueryResult<Vec<SessionRow>> {
    sessions::table
        .filter(sessions::user_id.eq(user_id))
        .filter(sessions::ended_at.is_not_null())
        .order((sessions::ended_at.desc(), sessions::id.desc()))
        .limit(limit)
        .select(SessionRow::as_select())
        .load(conn)
}

/// Alive-session counts for these users.
pub fn count_active_by_user(
    conn: &mut Conn,
    user_ids: &[i64],
    alive: Alive,
) -> QueryResult<Vec<(i64, i64)>> {
    sessions::table
        .filter(sessions::user_id.eq_any(user_ids))
        .filter(alive_at(
            alive.now,
            alive.now.saturating_sub(alive.refresh_ttl),
        ))
        .group_by(sessions::user_id)
        .select((sessions::user_id, diesel::dsl::count_star()))
        .load(conn)
}

/// Every session of a user that has not ended.
pub fn open_for_user(conn: &mut Conn, user_id: i64) -> QueryResult<Vec<SessionRow>> {
    sessions::table
        .filter(sessions::user_id.eq(user_id))
        .filter(sessions::ended_at.is_null())
        .select(SessionRow::as_select())
        .load(conn)
}

/// Asks every open session of a user to renew its access token (new claims) from `at` on.
pub fn renew_access(conn: &mut Conn, user_id: i64, at: i64) -> QueryResult<Vec<String>> {
    diesel::update(
        sessions::table
            .filter(sessions::user_id.eq(user_id))
            .filter(sessions::ended_at.is_null()),
    )
    .set(sessions::access_not_before.eq(at))
    .returning(sessions::public_id)
    .get_results(conn)
}

/// The first session a user started at or after `at`.
pub fn first_started_after(conn: &mut Conn, user_id: i64, at: i64) -> QueryResult<Option<i64>> {
    sessions::table
        .filter(sessions::user_id.eq(user_id))
        .filter(sessions::created_at.ge(at))
        .order((sessions::created_at.asc(), sessions::id.asc()))
        .select(sessions::id)
        .first(conn)
        .optional()
}

//! Queries of the `users` table.

use diesel::prelude::*;

use super::Conn;
use super::schema::users;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = users)]
pub struct UserRow {
    pub id: i64,
    pub username: String,
    pub password_hash: String,
    pub role: String,
    pub disabled: bool,
    pub created_at: i64,
    pub last_login_at: Option<i64>,
    pub password_changed_at: Option<i64>,
    /// When the authenticator app was turned on; `None`: off.
    pub totp_enabled_at: Option<i64>,
    pub email: Option<String>,
    pub email_verified_at: Option<i64>,
    /// Moved by every change that outdates the account's known-device tokens.
    pub device_epoch: i64,
}

#[derive(Insertable)]
#[diesel(table_name = users)]
pub struct NewUser<'a> {
    pub username: &'a str,
    pub username_key: &'a str,
    pub password_hash: &'a str,
    pub role: &'a str,
    pub disabled: bool,
    pub created_at: i64,
}

/// The key usernames are unique by: case does not tell two accounts apart.
pub fn username_key(username: &str) -> String {
    username.to_lowercase()
}

pub fn insert(conn: &mut Conn, user: &NewUser<'_>) -> QueryResult<UserRow> {
    let id: i64 = diesel::insert_into(users::table)
        .values(user)
        .returning(users::id)
        .get_result(conn)?;
    users::table
        .find(id)
        .select(UserRow::as_select())
        .get_result(conn)
}

pub fn find_by_name(conn: &mut Conn, username: &str) -> QueryResult<Option<UserRow>> {
    users::table
        .filter(users::username_key.eq(username_key(username)))
        .select(UserRow::as_select())
        .get_result(conn)
        .optional()
}

pub fn find(conn: &mut Conn, id: i64) -> QueryResult<Option<UserRow>> {
    users::table
        .find(id)
        .select(UserRow::as_select())
        .get_result(conn)
        .optional()
}

/// [`find`], with the row locked to the end of the transaction on PostgreSQL (SQLite's write
/// lock already holds): a sign-in that starts a session after reading the account either
/// commits before a change of it (which then ends that session too) or reads the change.
pub fn find_locked(conn: &mut Conn, id: i64) -> QueryResult<Option<UserRow>> {
    match conn {
        Conn::Postgresql(pg) => users::table
            .find(id)
            .select(UserRow::as_select())
            .for_update()
            .get_result(pg)
            .optional(),
        Conn::Sqlite(_) => find(conn, id),
    }
}

pub fn count(conn: &mut Conn) -> QueryResult<i64> {
    users::table.count().get_result(conn)
}

pub fn set_last_login(conn: &mut Conn, id: i64, at: i64) -> QueryResult<()> {
    diesel::update(users::table.find(id))
        .set(users::last_login_at.eq(at))
        .execute(conn)
        .map(drop)
}

pub fn set_password_hash(conn: &mut Conn, id: i64, hash: &str) -> QueryResult<()> {
    diesel::update(users::table.find(id))
        .set(users::password_hash.eq(hash))
        .execute(conn)
        .map(drop)
}

/// A new password chosen by its owner or set by an admin (not a rehash at another cost).
pub fn set_password(conn: &mut Conn, id: i64, hash: &str, at: i64) -> QueryResult<()> {
    diesel::update(users::table.find(id))
        .set((
            users::password_hash.eq(hash),
            users::password_changed_at.eq(at),
        ))
        .execute(conn)
        .map(drop)
}

pub fn set_role(conn: &mut Conn, id: i64, role: &str) -> QueryResult<()> {
    diesel::update(users::table.find(id))
        .set(users::role.eq(role))
        .execute(conn)
        .map(drop)
}

pub fn set_disabled(conn: &mut Conn, id: i64, disabled: bool) -> QueryResult<()> {
    diesel::update(users::table.find(id))
        .set(users::disabled.eq(disabled))
        .execute(conn)
        .map(drop)
}

/// Users of `role` who can still sign in.
pub fn count_active_with_role(conn: &mut Conn, role: &str) -> QueryResult<i64> {
    users::table
        .filter(users::role.eq(role))
        .filter(users::disabled.eq(false))
        .count()
        .get_result(conn)
}

/// One page of users, by name.
pub fn page(conn: &mut Conn, offset: i64, limit: i64) -> QueryResult<Vec<UserRow>> {
    users::table
        .order((users::username_key.asc(), users::id.asc()))
        .offset(offset)
        .limit(limit)
        .select(UserRow::as_select())
        .load(conn)
}

pub fn all(conn: &mut Conn) -> QueryResult<Vec<UserRow>> {
    users::table
        .order(users::username_key.asc())
        .select(UserRow::as_select())
        .load(conn)
}

/// Outdates every known-device token of the account.
pub fn bump_device_epoch(conn: &mut Conn, id: i64) -> QueryResult<()> {
    diesel::update(users::table.find(id))
        .set(users::device_epoch.eq(users::device_epoch + 1))
        .execute(conn)
        .map(drop)
}

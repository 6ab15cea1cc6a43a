//! Queries of `passkeys`, `webauthn_ceremonies` and the WebAuthn user handle of `users`.

use diesel::prelude::*;

use super::Conn;
use super::schema::{passkeys, users, webauthn_ceremonies};

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = passkeys)]
pub struct PasskeyRow {
    pub id: i64,
    pub user_id: i64,
    pub name: String,
    /// The credential as webauthn-rs serialises it.
    pub credential: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

#[derive(Insertable)]
#[diesel(table_name = passkeys)]
pub struct NewPasskey<'a> {
    pub user_id: i64,
    pub credential_id: &'a [u8],
    pub name: &'a str,
    pub credential: &'a str,
    pub created_at: i64,
}

pub fn insert(conn: &mut Conn, passkey: &NewPasskey<'_>) -> QueryResult<()> {
    diesel::insert_into(passkeys::table)
        .values(passkey)
        .execute(conn)
        .map(drop)
}

/// A user's passkeys, oldest first.
pub fn of_user(conn: &mut Conn, user_id: i64) -> QueryResult<Vec<PasskeyRow>> {
    passkeys::table
        .filter(passkeys::user_id.eq(user_id))
        .order(passkeys::id.asc())
        .select(PasskeyRow::as_select())
        .load(conn)
}

pub fn count_of_user(conn: &mut Conn, user_id: i64) -> QueryResult<i64> {
    passkeys::table
        .filter(passkeys::user_id.eq(user_id))
        .count()
        .get_result(conn)
}

pub fn find_by_credential_id(
    conn: &mut Conn,
    credential_id: &[u8],
) -> QueryResult<Option<PasskeyRow>> {
    passkeys::table
        .filter(passkeys::credential_id.eq(credential_id))
        .select(PasskeyRow::as_select())
        .get_result(conn)
        .optional()
}

/// Records a use: the credential (its counter moved) and when.
pub fn used(conn: &mut Conn, id: i64, credential: &str, at: i64) -> QueryResult<()> {
    diesel::update(passkeys::table.find(id))
        .set((
            passkeys::credential.eq(credential),
            passkeys::last_used_at.eq(at),
        ))
        .execute(conn)
        .map(drop)
}

/// Deletes one of a user's passkeys; returns whether it was theirs.
pub fn delete(conn: &mut Conn, user_id: i64, id: i64) -> QueryResult<bool> {
    diesel::delete(
        passkeys::table
            .find(id)
            .filter(passkeys::user_id.eq(user_id)),
    )
    .execute(conn)
    .map(|n| n == 1)
}

pub fn delete_all_of_user(conn: &mut Conn, user_id: i64) -> QueryResult<usize> {
    diesel::delete(passkeys::table.filter(passkeys::user_id.eq(user_id))).execute(conn)
}

pub fn webauthn_id(conn: &mut Conn, user_id: i64) -> QueryResult<Option<String>> {
    users::table
        .find(user_id)
        .select(users::webauthn_id)
        .get_result::<Option<String>>(conn)
        .optional()
        .map(Option::flatten)
}

pub fn set_webauthn_id(conn: &mut Conn, user_id: i64, handle: &str) -> QueryResult<()> {
    diesel::update(users::table.find(user_id))
        .set(users::webauthn_id.eq(handle))
        .execute(conn)
        .map(drop)
}

pub fn user_by_webauthn_id(conn: &mut Conn, handle: &str) -> QueryResult<Option<i64>> {
    users::table
        .filter(users::webauthn_id.eq(handle))
        .select(users::id)
        .get_result(conn)
        .optional()
}

#[derive(Insertable)]
#[diesel(table_name = webauthn_ceremonies)]
pub struct NewCeremony<'a> {
    pub token_hash: &'a [u8],
    pub purpose: &'a str,
    pub user_id: Option<i64>,
    pub state: &'a str,
    pub expires_at: i64,
    /// The hash of what the ceremony is bound to (the browser or session that started it).
    pub binding: &'a [u8],
}

/// Stores a ceremony, and drops those that have expired.
pub fn insert_ceremony(conn: &mut Conn, ceremony: &NewCeremony<'_>, now: i64) -> QueryResult<()> {
    diesel::delete(webauthn_ceremonies::table.filter(webauthn_ceremonies::expires_at.le(now)))
        .execute(conn)?;
    diesel::insert_into(webauthn_ceremonies::table)
        .values(ceremony)
        .execute(conn)
        .map(drop)
}

/// Takes a ceremony of `purpose` bound to `binding` for good (single use): its user and
/// state, if it was there and had not expired at `now`. Another binding finds nothing (and
/// leaves the ceremony to its own browser).
pub fn take_ceremony(
    conn: &mut Conn,
    token_hash: &[u8],
    purpose: &str,
    binding: &[u8],
    now: i64,
) -> QueryResult<Option<(Option<i64>, String)>> {
    let found: Option<(i64, Option<i64>, String, i64)> = webauthn_ceremonies::table
        .filter(webauthn_ceremonies::token_hash.eq(token_hash))
        .filter(webauthn_ceremonies::purpose.eq(purpose))
        .filter(webauthn_ceremonies::binding.eq(binding))
        .select((
            webauthn_ceremonies::id,
            webauthn_ceremonies::user_id,
            webauthn_ceremonies::state,
            webauthn_ceremonies::expires_at,
        ))
        .get_result(conn)
        .optional()?;
    let Some((id, user_id, state, expires_at)) = found else {
        return Ok(None);
    };
    let taken = diesel::delete(webauthn_ceremonies::table.find(id)).execute(conn)? == 1;
    Ok((taken && expires_at > now).then_some((user_id, state)))
}

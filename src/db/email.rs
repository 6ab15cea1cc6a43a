//! Queries of the account's email address (`users`) and of `email_tokens`.

use diesel::prelude::*;

use super::Conn;
use super::schema::{email_tokens, users};

/// What a mailed link does, as `email_tokens.purpose` stores it.
pub mod purpose {
    pub const VERIFY: &str = "verify";
    pub const RESET: &str = "reset";
    pub const REPORT: &str = "report";
}

/// A user's address: (address, verified at).
pub fn address_of(conn: &mut Conn, user_id: i64) -> QueryResult<Option<(String, Option<i64>)>> {
    let row: Option<(Option<String>, Option<i64>)> = users::table
        .find(user_id)
        .select((users::email, users::email_verified_at))
        .get_result(conn)
        .optional()?;
    Ok(row.and_then(|(email, verified)| email.map(|e| (e, verified))))
}

/// Sets (or with `None` removes) a user's address, unverified.
pub fn set_address(
    conn: &mut Conn,
    user_id: i64,
    address: Option<(&str, &str)>,
) -> QueryResult<()> {
    let (email, key) = address.unzip();
    diesel::update(users::table.find(user_id))
        .set((
            users::email.eq(email),
            users::email_key.eq(key),
            users::email_verified_at.eq(None::<i64>),
        ))
        .execute(conn)
        .map(drop)
}

/// Marks the user's address verified, if it is still `address`.
pub fn mark_verified(conn: &mut Conn, user_id: i64, address: &str, at: i64) -> QueryResult<bool> {
    diesel::update(users::table.find(user_id).filter(users::email.eq(address)))
        .set(users::email_verified_at.eq(at))
        .execute(conn)
        .map(|n| n == 1)
}

/// The user with this verified address (by its lower-cased key).
pub fn user_with_verified(conn: &mut Conn, key: &str) -> QueryResult<Option<i64>> {
    users::table
        .filter(users::email_key.eq(key))
        .filter(users::email_verified_at.is_not_null())
        .select(users::id)
        .get_result(conn)
        .optional()
}

#[derive(Insertable)]
#[diesel(table_name = email_tokens)]
pub struct NewToken<'a> {
    pub token_hash: &'a [u8],
    pub purpose: &'a str,
    pub user_id: i64,
    pub email: Option<&'a str>,
    pub session_id: Option<i64>,
    pub created_at: i64,
    pub expires_at: i64,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = email_tokens)]
pub struct TokenRow {
    pub id: i64,
    pub user_id: i64,
    pub email: Option<String>,
    pub session_id: Option<i64>,
}

/// Stores a token, and drops the expired ones.
pub fn insert_token(conn: &mut Conn, token: &NewToken<'_>) -> QueryResult<()> {
    diesel::delete(email_tokens::table.filter(email_tokens::expires_at.le(token.created_at)))
        .execute(conn)?;
    diesel::insert_into(email_tokens::table)
        .values(token)
        .execute(conn)
        .map(drop)
}

/// An unused, unexpired token of `purpose`.
pub fn find_token(
    conn: &mut Conn,
    token_hash: &[u8],
    purpose: &str,
    now: i64,
) -> QueryResult<Option<TokenRow>> {
    email_tokens::table
        .filter(email_tokens::token_hash.eq(token_hash))
        .filter(email_tokens::purpose.eq(purpose))
        .filter(email_tokens::used_at.is_null())
        .filter(email_tokens::expires_at.gt(now))
        .select(TokenRow::as_select())
        .get_result(conn)
        .optional()
}

/// Spends a token: true for exactly one caller.
pub fn spend_token(conn: &mut Conn, id: i64, at: i64) -> QueryResult<bool> {
    diesel::update(
        email_tokens::table
            .find(id)
            .filter(email_tokens::used_at.is_null()),
    )
    .set(email_tokens::used_at.eq(at))
    .execute(conn)
    .map(|n| n == 1)
}

/// Voids a user's unused tokens of `purpose` (a new password, a new address).
pub fn void_tokens(conn: &mut Conn, user_id: i64, purpose: &str, at: i64) -> QueryResult<()> {
    diesel::update(
        email_tokens::table
            .filter(email_tokens::user_id.eq(user_id))
            .filter(email_tokens::purpose.eq(purpose))
            .filter(email_tokens::used_at.is_null()),
    )
    .set(email_tokens::used_at.eq(at))
    .execute(conn)
    .map(drop)
}

/// Whether the user has an unused, unexpired token of `purpose` mailed to `address`.
pub fn live_token_for(
    conn: &mut Conn,
    user_id: i64,
    purpose: &str,
    address: &str,
    now: i64,
) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        email_tokens::table
            .filter(email_tokens::user_id.eq(user_id))
            .filter(email_tokens::purpose.eq(purpose))
            .filter(email_tokens::email.eq(address))
            .filter(email_tokens::used_at.is_null())
            .filter(email_tokens::expires_at.gt(now)),
    ))
    .get_result(conn)
}

/// Removes the address with lower-cased `key` from every account but `owner` that has not
/// verified it.
pub fn release_unverified(conn: &mut Conn, key: &str, owner: i64) -> QueryResult<()> {
    diesel::update(
        users::table
            .filter(users::email_key.eq(key))
            .filter(users::email_verified_at.is_null())
            .filter(users::id.ne(owner)),
    )
    .set((
        users::email.eq(None::<String>),
        users::email_key.eq(None::<String>),
    ))
    .execute(conn)
    .map(drop)
}

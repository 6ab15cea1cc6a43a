//! Queries of the second factors: the authenticator-app columns of `users` and the
//! `recovery_codes` table.

use diesel::prelude::*;

use super::Conn;
use super::schema::{recovery_codes, users};

/// The confirmed authenticator-app secret of a user, if the app is on.
pub fn totp_secret(conn: &mut Conn, user_id: i64) -> QueryResult<Option<Vec<u8>>> {
    users::table
        .find(user_id)
        .filter(users::totp_enabled_at.is_not_null())
        .select(users::totp_secret)
        .get_result::<Option<Vec<u8>>>(conn)
        .optional()
        .map(Option::flatten)
}

/// The secret being enrolled (shown, not yet confirmed by a code).
pub fn totp_pending_secret(conn: &mut Conn, user_id: i64) -> QueryResult<Option<Vec<u8>>> {
    users::table
        .find(user_id)
        .select(users::totp_pending_secret)
        .get_result::<Option<Vec<u8>>>(conn)
        .optional()
        .map(Option::flatten)
}

pub fn set_totp_pending_secret(conn: &mut Conn, user_id: i64, secret: &[u8]) -> QueryResult<()> {
    diesel::update(users::table.find(user_id))
        .set(users::totp_pending_secret.eq(secret))
        .execute(conn)
        .map(drop)
}

/// Turns the app on with the enrolled `secret`, if it is still the one being enrolled; `step`
/// (the confirming code's) is spent. Returns whether it was.
pub fn enable_totp(
    conn: &mut Conn,
    user_id: i64,
    secret: &[u8],
    step: i64,
    at: i64,
) -> QueryResult<bool> {
    diesel::update(
        users::table
            .find(user_id)
            .filter(users::totp_pending_secret.eq(secret)),
    )
    .set((
        users::totp_secret.eq(secret),
        users::totp_enabled_at.eq(at),
        users::totp_last_step.eq(step),
        users::totp_pending_secret.eq(None::<Vec<u8>>),
    ))
    .execute(conn)
    .map(|n| n == 1)
}

/// Spends time step `step` of the user's app: true once per step, and never for a step at or
/// before one already spent (a code is good once, also across instances).
pub fn spend_totp_step(conn: &mut Conn, user_id: i64, step: i64) -> QueryResult<bool> {
    diesel::update(
        users::table
            .find(user_id)
            .filter(users::totp_enabled_at.is_not_null())
            .filter(
                users::totp_last_step
                    .is_null()
                    .or(users::totp_last_step.lt(step)),
            ),
    )
    .set(users::totp_last_step.eq(step))
    .execute(conn)
    .map(|n| n == 1)
}

/// Turns the app off and voids the recovery codes; returns whether the app was on.
pub fn remove_totp(conn: &mut Conn, user_id: i64) -> QueryResult<bool> {
    let was_on = diesel::update(
        users::table
            .find(user_id)
            .filter(users::totp_enabled_at.is_not_null()),
    )
    .set((
        users::totp_secret.eq(None::<Vec<u8>>),
        users::totp_enabled_at.eq(None::<i64>),
        users::totp_last_step.eq(None::<i64>),
        users::totp_pending_secret.eq(None::<Vec<u8>>),
    ))
    .execute(conn)?;
    diesel::delete(recovery_codes::table.filter(recovery_codes::user_id.eq(user_id)))
        .execute(conn)?;
    Ok(was_on == 1)
}

/// Replaces the user's recovery codes with these hashes.
pub fn replace_recovery_codes(
    conn: &mut Conn,
    user_id: i64,
    hashes: &[[u8; 32]],
    at: i64,
) -> QueryResult<()> {
    diesel::delete(recovery_codes::table.filter(recovery_codes::user_id.eq(user_id)))
        .execute(conn)?;
    // One row at a time: a multi-row insert is not written the same on both backends.
    for hash in hashes {
        diesel::insert_into(recovery_codes::table)
            .values((
                recovery_codes::user_id.eq(user_id),
                recovery_codes::code_hash.eq(hash.as_slice()),
                recovery_codes::created_at.eq(at),
            ))
            .execute(conn)?;
    }
    Ok(())
}

/// Spends the unused recovery code with this hash; true once.
pub fn spend_recovery_code(
    conn: &mut Conn,
    user_id: i64,
    hash: &[u8; 32],
    at: i64,
) -> QueryResult<bool> {
    diesel::update(
        recovery_codes::table
            .filter(recovery_codes::user_id.eq(user_id))
            .filter(recovery_codes::code_hash.eq(hash.as_slice()))
            .filter(recovery_codes::used_at.is_null()),
    )
    .set(recovery_codes::used_at.eq(at))
    .execute(conn)
    .map(|n| n == 1)
}

/// How many unused recovery codes the user has.
pub fn recovery_codes_left(conn: &mut Conn, user_id: i64) -> QueryResult<i64> {
    recovery_codes::table
        .filter(recovery_codes::user_id.eq(user_id))
        .filter(recovery_codes::used_at.is_null())
        .count()
        .get_result(conn)
}

/// A user's stored authenticator secrets: (user, enabled secret, secret being enrolled).
pub type StoredSecrets = (i64, Option<Vec<u8>>, Option<Vec<u8>>);

diesel::define_sql_function! {
    /// Bytes of a value (SQLite's `length` of a blob, PostgreSQL's of a `bytea`).
    fn length(value: diesel::sql_types::Nullable<diesel::sql_types::Binary>) -> diesel::sql_types::Nullable<diesel::sql_types::Integer>;
}

/// The users whose authenticator secret (enabled or being enrolled) is `plain_len` bytes long:
/// one stored as it is, before secrets were encrypted. Encrypted ones are longer.
pub fn totp_secrets_of_length(conn: &mut Conn, plain_len: i32) -> QueryResult<Vec<StoredSecrets>> {
    users::table
        .filter(
            length(users::totp_secret)
                .eq(plain_len)
                .or(length(users::totp_pending_secret).eq(plain_len)),
        )
        .select((users::id, users::totp_secret, users::totp_pending_secret))
        .load(conn)
}

/// Replaces a user's stored secrets (as they are, or encrypted) with `secrets`.
pub fn replace_totp_secrets(
    conn: &mut Conn,
    user_id: i64,
    secrets: (Option<&[u8]>, Option<&[u8]>),
) -> QueryResult<()> {
    diesel::update(users::table.find(user_id))
        .set((
            users::totp_secret.eq(secrets.0),
            users::totp_pending_secret.eq(secrets.1),
        ))
        .execute(conn)
        .map(drop)
}

//! An account's ways to sign in at a glance: password, authenticator app, recovery codes,
//! passkeys, email.

use diesel::result::Error as DieselError;

use crate::core::passkeys::{self, PasskeySummary};
use crate::db::{self, users::UserRow};

/// An account's ways to sign in at a glance, for `/security` and the admin pages.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Methods {
    pub password_changed_at: Option<i64>,
    pub totp_enabled_at: Option<i64>,
    pub recovery_codes_left: i64,
    pub passkeys: Vec<PasskeySummary>,
    pub email: Option<String>,
    pub email_verified_at: Option<i64>,
}

pub fn of(conn: &mut db::Conn, user: &UserRow) -> Result<Methods, DieselError> {
    Ok(Methods {
        password_changed_at: user.password_changed_at,
        totp_enabled_at: user.totp_enabled_at,
        recovery_codes_left: db::second_factors::recovery_codes_left(conn, user.id)?,
        passkeys: passkeys::list(conn, user.id)?,
        email: user.email.clone(),
        email_verified_at: user.email_verified_at,
    })
}

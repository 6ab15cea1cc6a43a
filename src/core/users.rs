//! Users: the rules for usernames, creating an account, and the first admin.

use diesel::result::{DatabaseErrorKind, Error as DieselError};

use crate::auth::roles::Role;
use crate::core::passwords;
use crate::crypto;
use crate::db::{self, DbError, users::UserRow};

pub const MIN_USERNAME_CHARS: usize = 3;
pub const MAX_USERNAME_CHARS: usize = 32;

/// Usernames: 3–32 ASCII letters, digits, `_`, `.` or `-` (ASCII only, so no two names can look
/// alike while differing in script).
pub fn check_username(name: &str) -> Result<(), String> {
    let chars = name.chars().count();
    if !(MIN_USERNAME_CHARS..=MAX_USERNAME_CHARS).contains(&chars) {
        return Err(format!(
            "Use {MIN_USERNAME_CHARS} to {MAX_USERNAME_CHARS} characters."
        ));
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
    {
        return Err("Use only letters, digits, `_`, `.` and `-`.".into());
    }
    Ok(())
}

pub fn create_user(
    conn: &mut db::Conn,
    now: i64,
    username: &str,
    password_hash: &str,
    role: Role,
) -> Result<UserRow, DieselError> {
    db::users::insert(
        conn,
        &db::users::NewUser {
            username,
            username_key: &db::users::username_key(username),
            password_hash,
            role: role.as_str(),
            disabled: false,
            created_at: now,
        },
    )
}

/// Why the first admin could not be created.
#[derive(Debug, thiserror::Error)]
pub enum FirstAdminError {
    /// `admin_password` breaks the password rules.
    #[error("`admin_password` (DOORMAN_ADMIN_PASSWORD): {0}")]
    Weak(String),
    #[error("{0}")]
    Hashing(#[from] bcrypt::BcryptError),
    #[error("{0}")]
    Db(#[from] DbError),
}

/// On a database without users, creates `admin` with the given password or a random one.
/// Returns the random password, to be shown once.
pub fn ensure_admin(
    conn: &mut db::Conn,
    now: i64,
    bcrypt_cost: u32,
    password: Option<String>,
) -> Result<Option<String>, FirstAdminError> {
    let database = |e: DieselError| FirstAdminError::Db(e.into());
    if db::users::count(conn).map_err(database)? > 0 {
        return Ok(None);
    }
    let generated = password.is_none();
    let password = password.unwrap_or_else(crypto::random_token::<15>);
    passwords::check_new_password(&password).map_err(FirstAdminError::Weak)?;
    let hash =
        passwords::hash_blocking(&password, bcrypt_cost).map_err(FirstAdminError::Hashing)?;
    match create_user(conn, now, "admin", &hash, Role::Admin) {
        Ok(_) => Ok(generated.then_some(password)),
        // Another instance created it first.
        Err(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => Ok(None),
        Err(e) => Err(database(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::check_username;

    #[test]
    fn usernames() {
        assert!(check_username("ann").is_ok());
        assert!(check_username("Ann.Lee_2-x").is_ok());
        assert!(check_username("an").is_err());
        assert!(check_username(&"a".repeat(33)).is_err());
        assert!(check_username("ann lee").is_err());
        assert!(check_username("ännie").is_err());
        assert!(check_username("ann/../x").is_err());
    }
}

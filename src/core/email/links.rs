//! What every mail shares: the settings, the letters, and links — a token made from the nonce a
//! mail keeps, stored only as its hash, spent once.

use diesel::result::Error as DieselError;
use serde_json::Value;

use crate::auth::keys::ServerSecret;
use crate::config::Config;
use crate::core::sessions::token_hash;
use crate::crypto;
use crate::db::email::purpose::{RESET, VERIFY};
use crate::db::{self, Tx};

/// Longest link token worth looking up; real ones are 43 characters.
const MAX_TOKEN_LEN: usize = 64;

/// How links and notices behave, from the settings.
#[derive(Debug, Clone, Copy)]
pub struct EmailPolicy {
    /// `reset_ttl`: how long a link works.
    pub link_ttl: i64,
    pub new_device_notice: bool,
}

impl From<&Config> for EmailPolicy {
    fn from(config: &Config) -> Self {
        EmailPolicy {
            link_ttl: config.reset_ttl.as_i64(),
            new_device_notice: config.new_device_notice,
        }
    }
}

/// The mails doorman sends; each is a pair of templates under `templates/mail/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Letter {
    VerifyAddress,
    AddressChanged,
    PasswordReset,
    NewDevice,
}

impl Letter {
    pub const ALL: [Letter; 4] = [
        Letter::VerifyAddress,
        Letter::AddressChanged,
        Letter::PasswordReset,
        Letter::NewDevice,
    ];

    /// The templates' name, as the outbox stores it.
    pub fn name(self) -> &'static str {
        match self {
            Letter::VerifyAddress => "verify_address",
            Letter::AddressChanged => "address_changed",
            Letter::PasswordReset => "password_reset",
            Letter::NewDevice => "new_device",
        }
    }

    pub fn subject(self) -> &'static str {
        match self {
            Letter::VerifyAddress => "Confirm your email address",
            Letter::AddressChanged => "Your email address was changed",
            Letter::PasswordReset => "Reset your password",
            Letter::NewDevice => "New sign-in to your account",
        }
    }

    pub fn parse(name: &str) -> Option<Letter> {
        Letter::ALL.into_iter().find(|l| l.name() == name)
    }
}

/// The token of a link from the nonce its mail keeps; `None` for a nonce that is not one.
pub fn link_token(secret: &ServerSecret, nonce: &str) -> Option<String> {
    let nonce = crypto::b64_decode_any(nonce)?;
    Some(crypto::b64url(&crypto::hmac_sha256(
        secret.email_key(),
        &[b"doorman/email-link/v1\0", &nonce],
    )))
}

/// What a link does and for whom.
pub(super) struct Link<'a> {
    pub purpose: &'static str,
    pub user_id: i64,
    pub email: Option<&'a str>,
    pub session_id: Option<i64>,
}

impl Link<'_> {
    /// Stores the link's token hash; returns the nonce its mail carries.
    pub(super) fn make(
        &self,
        tx: &mut Tx<'_>,
        secret: &ServerSecret,
        now: i64,
        ttl: i64,
    ) -> Result<String, DieselError> {
        let nonce = crypto::b64url(&crypto::random_bytes::<32>());
        let token = link_token(secret, &nonce).unwrap_or_default();
        db::email::insert_token(
            tx,
            &db::email::NewToken {
                token_hash: &token_hash(&token),
                purpose: self.purpose,
                user_id: self.user_id,
                email: self.email,
                session_id: self.session_id,
                created_at: now,
                expires_at: now.saturating_add(ttl),
            },
        )?;
        Ok(nonce)
    }
}

/// Writes a mail to the outbox; it leaves after the commit.
pub(super) fn queue(
    tx: &mut Tx<'_>,
    to: &str,
    letter: Letter,
    context: &Value,
) -> Result<(), DieselError> {
    db::outbox::insert(tx, to, letter.name(), &context.to_string(), mail_clock())?;
    tx.mail_queued();
    Ok(())
}

/// Delivery is scheduled on the system's clock, whatever clock the rules run on.
fn mail_clock() -> i64 {
    crate::clock::Clock::now(&crate::clock::SystemClock)
}

/// The good, unused, unexpired link of `purpose` that `token` is, if any (a token not worth
/// looking up is none).
pub(super) fn waiting(
    conn: &mut db::Conn,
    token: &str,
    purpose: &str,
    now: i64,
) -> Result<Option<db::email::TokenRow>, DieselError> {
    if token.is_empty() || token.len() > MAX_TOKEN_LEN {
        return Ok(None);
    }
    db::email::find_token(conn, &token_hash(token), purpose, now)
}

/// [`waiting`], and spent by this call: a link acts once, even under simultaneous requests.
pub(super) fn spend(
    tx: &mut Tx<'_>,
    token: &str,
    purpose: &str,
    now: i64,
) -> Result<Option<db::email::TokenRow>, DieselError> {
    let Some(row) = waiting(tx, token, purpose, now)? else {
        return Ok(None);
    };
    Ok(db::email::spend_token(tx, row.id, now)?.then_some(row))
}

/// The links whose pages only need to know that the link is good.
#[derive(Debug, Clone, Copy)]
pub enum LinkKind {
    VerifyAddress,
    ResetPassword,
}

/// Whether a link's token is good, unused and unexpired (for the page the link opens).
pub fn link_waiting(
    conn: &mut db::Conn,
    kind: LinkKind,
    token: &str,
    now: i64,
) -> Result<bool, DieselError> {
    let purpose = match kind {
        LinkKind::VerifyAddress => VERIFY,
        LinkKind::ResetPassword => RESET,
    };
    Ok(waiting(conn, token, purpose, now)?.is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_tokens_need_the_server_secret() {
        let nonce = crypto::b64url(&[9; 32]);
        let one = link_token(&ServerSecret::from_bytes(&[1; 32]), &nonce).unwrap();
        let two = link_token(&ServerSecret::from_bytes(&[2; 32]), &nonce).unwrap();
        assert_ne!(one, two);
        assert_eq!(one.len(), 43);
        assert!(link_token(&ServerSecret::from_bytes(&[1; 32]), "%%%").is_none());
    }
}

//! Sudo mode: sensitive actions (password change, second factors, signing out everywhere else,
//! every admin action) need an authentication within `sudo_ttl`. A login counts; later, the
//! session authenticates again at `/sudo`, which moves its `auth_time` and sets its `amr` to the
//! methods of that authentication (a password alone is `pwd`, whatever the login was).

use super::accounts::OwnPasswordError;
use super::sign_in::{Accounts, reserve_or_record};
use crate::core::client::ClientInfo;
use crate::core::events::{self, EventKind};
use crate::core::second_factors::{self, Proof};
use crate::core::sessions::SignInMethod;
use crate::core::throttle::{Subjects, ThrottlePolicy};
use crate::db::{self, DbError, sessions::SessionRow};

#[derive(Debug, thiserror::Error)]
pub enum SudoError {
    /// The password was not accepted: wrong, too many wrong ones, or not checked.
    #[error(transparent)]
    Password(#[from] OwnPasswordError),
    /// The password was right, the second factor's code was not.
    #[error("wrong code")]
    WrongCode,
    /// The account's second factor is a passkey: the password alone is not enough.
    #[error("the second factor is a passkey")]
    PasskeyNeeded,
    /// Too many wrong codes for this account within `login_window`.
    #[error("too many wrong codes")]
    CodesThrottled { retry_after: i64 },
    /// The session ended meanwhile.
    #[error("the session has ended")]
    SessionEnded,
    #[error(transparent)]
    Db(#[from] DbError),
}

/// What `/sudo` asks for again.
pub struct Reauthentication<'a> {
    pub user_id: i64,
    /// The session that asks, by public id.
    pub sid: &'a str,
    pub password: &'a str,
    /// The second factor's code, when the account has one.
    pub code: &'a str,
}

impl Accounts<'_> {
    /// Authenticates a signed-in session again: its user's password, and a code when the
    /// account has a second factor. Wrong passwords and codes count as failed logins. Returns
    /// the session with its new `auth_time`.
    pub async fn reauthenticate(
        &self,
        now: i64,
        asked: Reauthentication<'_>,
        device_token: Option<String>,
        client: ClientInfo,
    ) -> Result<SessionRow, SudoError> {
        let (user, reservation) = self
            .check_own_password(now, asked.user_id, asked.password, device_token, &client)
            .await?;
        let (secret, sid, code, throttle) = (
            self.secret.clone(),
            asked.sid.to_owned(),
            asked.code.to_owned(),
            self.throttle,
        );
        self.db
            .write(move |tx| -> Result<_, DbError> {
                let mut codes = None;
                let proof = if user.totp_enabled_at.is_some() {
                    // The code is one of the account's wrong codes until it proves right.
                    match reserve_or_record(
                        tx,
                        now,
                        &throttle,
                        &Subjects::codes(user.id),
                        Some(&user),
                        &client,
                    )? {
                        Ok(reservation) => codes = Some(reservation),
                        Err(retry_after) => {
                            return Ok(Err(SudoError::CodesThrottled { retry_after }));
                        }
                    }
                    let proof = second_factors::spend_code(tx, &secret, user.id, &code, now)?;
                    if proof.is_none() {
                        events::record(
                            tx,
                            now,
                            EventKind::MfaFailed,
                            Some(user.id),
                            None,
                            &client,
                        )?;
                        return Ok(Err(SudoError::WrongCode));
                    }
                    proof
                } else if second_factors::is_on(tx, &user)? {
                    // Passkeys alone: the password is only half of what a login takes.
                    return Ok(Err(SudoError::PasskeyNeeded));
                } else {
                    None
                };
                ThrottlePolicy::forgive(tx, &reservation)?;
                if let Some(codes) = &codes {
                    ThrottlePolicy::forgive(tx, codes)?;
                }
                let Some(mut session) =
                    db::sessions::find_by_public_id(tx, &sid)?.filter(|s| s.user_id == user.id)
                else {
                    return Ok(Err(SudoError::SessionEnded));
                };
                // The session now says how it last authenticated: this re-authentication.
                let method = if proof.is_some() {
                    SignInMethod::PasswordAndCode
                } else {
                    SignInMethod::Password
                };
                if !db::sessions::set_auth_time(tx, session.id, now, method.amr())? {
                    return Ok(Err(SudoError::SessionEnded));
                }
                session.auth_time = now;
                method.amr().clone_into(&mut session.amr);
                let kinds: &[EventKind] = if proof == Some(Proof::RecoveryCode) {
                    &[EventKind::RecoveryCodeUsed, EventKind::SudoGranted]
                } else {
                    &[EventKind::SudoGranted]
                };
                for &kind in kinds {
                    events::record(tx, now, kind, Some(user.id), Some(session.id), &client)?;
                }
                Ok(Ok(session))
            })
            .await?
    }
}

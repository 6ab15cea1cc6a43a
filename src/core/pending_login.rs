//! Logins waiting for their second step. The right password of an account with a second factor
//! starts no session: it stores a pending login (hashed, single use, [`LIFETIME`], at most
//! [`MAX_WRONG_CODES`]) whose token the browser keeps in its pending cookie or the API client
//! gets as `mfa_token`. The session exists only once a code finishes it.

use diesel::result::Error as DieselError;

use crate::core::client::ClientInfo;
use crate::core::events::{self, EventKind};
use crate::core::known_device::KnownDevice;
use crate::core::second_factors::{self, Proof};
use crate::core::sessions::{SignInMethod, token_hash};
use crate::core::sign_in::{Accounts, SignIn, SignedInSession, reserve_or_record};
use crate::core::throttle::{Subjects, ThrottlePolicy};
use crate::crypto;
use crate::db::{self, DbError, Tx, users::UserRow};

/// How long a half-done login waits for its code, in seconds.
pub const LIFETIME: i64 = 5 * 60;

/// Wrong codes that end a half-done login.
pub const MAX_WRONG_CODES: i32 = 5;

/// Longest pending token worth looking up; real ones are 43 characters.
const MAX_TOKEN_LEN: usize = 64;

/// Stores a pending login of `user`; returns its token (never stored in clear).
pub fn create(
    tx: &mut Tx<'_>,
    now: i64,
    user: &UserRow,
    remember: bool,
    next: Option<&str>,
) -> Result<String, DieselError> {
    let token = crypto::random_token::<32>();
    db::pending_logins::insert(
        tx,
        &db::pending_logins::NewPending {
            token_hash: &token_hash(&token),
            user_id: user.id,
            remember,
            next,
            created_at: now,
            expires_at: now.saturating_add(LIFETIME),
        },
    )?;
    Ok(token)
}

/// The pending login `token` names, if it is still waiting at `now`.
pub fn waiting(
    conn: &mut db::Conn,
    token: &str,
    now: i64,
) -> Result<Option<db::pending_logins::PendingRow>, DieselError> {
    if token.len() > MAX_TOKEN_LEN {
        return Ok(None);
    }
    db::pending_logins::find_live(conn, &token_hash(token), now)
}

/// A finished second step: the new session, and where the browser asked to go.
#[derive(Debug)]
pub struct Finished {
    pub signed_in: SignedInSession,
    pub next: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum SecondStepError {
    /// No such pending login, or it expired, was finished or ended by wrong codes: start over.
    #[error("no such half-done login")]
    Expired,
    /// The code was not right (or was used before). `ended`: that was the last try.
    #[error("wrong code")]
    WrongCode { ended: bool },
    /// Too many failures for this account (or device) within `login_window`.
    #[error("too many wrong codes")]
    Throttled { retry_after: i64 },
    /// The account was disabled meanwhile.
    #[error("the account is disabled")]
    Disabled,
    #[error(transparent)]
    Db(#[from] DbError),
}

// Through `DbError`, which tells an outage from a bad query.
impl From<DieselError> for SecondStepError {
    fn from(e: DieselError) -> Self {
        SecondStepError::Db(DbError::from(e))
    }
}

impl Accounts<'_> {
    /// The second step of a login: a code of the authenticator app or a recovery code for the
    /// pending login `token`. One transaction counts the attempt (a wrong code is a failed
    /// login of the account, and one of the account's wrong codes, which only a right code
    /// forgives), spends the code and the pending login, and starts the session.
    pub async fn second_step(
        &self,
        now: i64,
        token: &str,
        code: &str,
        device_token: Option<String>,
        client: ClientInfo,
    ) -> Result<Finished, SecondStepError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(SecondStepError::Expired);
        }
        let (throttle, secret, finisher) = (self.throttle, self.secret.clone(), self.finisher());
        let (hash, code) = (token_hash(token), code.to_owned());
        self.db
            // An inner `Err` commits (a wrong code stays counted); an outer one rolls back.
            .write(move |tx| -> Result<_, SecondStepError> {
                let Some(pending) = db::pending_logins::find_live(tx, &hash, now)? else {
                    return Ok(Err(SecondStepError::Expired));
                };
                let Some(user) = db::users::find_locked(tx, pending.user_id)? else {
                    return Ok(Err(SecondStepError::Expired));
                };
                if user.disabled {
                    db::pending_logins::take(tx, pending.id)?;
                    return Ok(Err(SecondStepError::Disabled));
                }
                let device = KnownDevice::of_user(&secret, device_token.as_deref(), &user);
                let subjects = Subjects::code(device.as_ref(), user.id, &user.username, &client.ip);
                let reservation =
                    match reserve_or_record(tx, now, &throttle, &subjects, Some(&user), &client)? {
                        Ok(reservation) => reservation,
                        Err(retry_after) => {
                            return Ok(Err(SecondStepError::Throttled { retry_after }));
                        }
                    };
                let Some(proof) = second_factors::spend_code(tx, &secret, user.id, &code, now)?
                else {
                    events::record(tx, now, EventKind::MfaFailed, Some(user.id), None, &client)?;
                    let ended = db::pending_logins::fail(tx, pending.id, MAX_WRONG_CODES)?;
                    return Ok(Err(SecondStepError::WrongCode { ended }));
                };
                if !db::pending_logins::take(tx, pending.id)? {
                    // Another request finished this login first: undo it all, so the code
                    // spent here stays good.
                    return Err(SecondStepError::Expired);
                }
                ThrottlePolicy::forgive(tx, &reservation)?;
                let user_id = user.id;
                let sign_in = SignIn {
                    user,
                    remember: pending.remember,
                    method: SignInMethod::PasswordAndCode,
                    known: device,
                    client: &client,
                };
                let signed_in = finisher.finish(tx, sign_in, now)?;
                if proof == Proof::RecoveryCode {
                    events::record(
                        tx,
                        now,
                        EventKind::RecoveryCodeUsed,
                        Some(user_id),
                        Some(signed_in.started.session.id),
                        &client,
                    )?;
                }
                Ok(Ok(Finished {
                    signed_in,
                    next: pending.next,
                }))
            })
            .await?
    }
}

//! Password flows: signing up, logging in with a password (throttled), checking and changing
//! it. Each ends in `sign_in`'s finisher.

use diesel::result::{DatabaseErrorKind, Error as DieselError};

use crate::auth::keys::ServerSecret;
use crate::core::account_changes;
use crate::core::known_device::KnownDevice;
use crate::core::passwords::{self, HashError, MAX_PASSWORD_CHARS};

use crate::auth::roles::Role;
use crate::core::client::ClientInfo;
use crate::core::email::{self, EmailPolicy};
use crate::core::events::{self, EventKind};
use crate::core::pending_login;
use crate::core::second_factors;
use crate::core::sessions::{self as session, EndReason, Ending, SignInMethod};
use crate::core::sign_in::{Accounts, SignIn, SignedInSession, reserve_or_record};
use crate::core::throttle::{Reservation, Subjects, ThrottlePolicy};
use crate::core::users::{check_username, create_user};
use crate::db::{self, DbError, Tx, users::UserRow};

#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// Unknown user or wrong password: one answer for both.
    #[error("unknown user or wrong password")]
    InvalidCredentials,
    /// The right password for a disabled account.
    #[error("the account is disabled")]
    Disabled,
    /// Too many failures for this account or address within `login_window`.
    #[error("too many failed sign-ins")]
    Throttled { retry_after: i64 },
    #[error(transparent)]
    Hashing(#[from] HashError),
    #[error(transparent)]
    Db(#[from] DbError),
}

/// What can stop a password check that has counted its attempt.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error(transparent)]
    Hashing(#[from] HashError),
    #[error(transparent)]
    Db(#[from] DbError),
}

/// Why a signed-in user's own password was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum OwnPasswordError {
    #[error("wrong password")]
    Wrong,
    /// Too many wrong passwords for this account (or device) within `login_window`.
    #[error("too many wrong passwords")]
    Throttled { retry_after: i64 },
    #[error(transparent)]
    Check(#[from] CheckError),
}

#[derive(Debug, thiserror::Error)]
pub enum PasswordChangeError {
    /// The current password was not accepted (wrong, or too many wrong ones).
    #[error(transparent)]
    Current(#[from] OwnPasswordError),
    #[error("the new password is too weak: {0}")]
    Weak(String),
    #[error(transparent)]
    Hashing(#[from] HashError),
    #[error(transparent)]
    Db(#[from] DbError),
}

/// What a login form or request carries.
pub struct LoginAttempt<'a> {
    pub username: &'a str,
    pub password: &'a str,
    pub remember: bool,
    /// Where the browser goes once signed in (kept across a second step).
    pub next: Option<&'a str>,
}

/// A right password: signed in, or (with a second factor on) a login waiting for its code.
#[derive(Debug)]
pub enum LoginOutcome {
    SignedIn(Box<SignedInSession>),
    /// The pending login's token (the browser's pending cookie, the API's `mfa_token`).
    SecondStep(String),
}

/// A signup form's fields.
pub struct NewAccount<'a> {
    pub username: &'a str,
    pub password: &'a str,
    pub password_confirm: &'a str,
    /// Optional: empty for none.
    pub email: &'a str,
}

/// What is wrong with a signup form, field by field.
#[derive(Debug, Default, serde::Serialize)]
pub struct SignupErrors {
    pub username: Option<String>,
    pub password: Option<String>,
    pub password_confirm: Option<String>,
    pub email: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum SignupError {
    #[error("the sign-up form has errors")]
    Invalid(SignupErrors),
    /// `signup_max_per_window` accounts were made from this address within `login_window`.
    #[error("too many sign-ups from this address")]
    Throttled { retry_after: i64 },
    #[error(transparent)]
    Hashing(#[from] HashError),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl Accounts<'_> {
    /// Checks a username and password and starts a new session. Unknown users cost one bcrypt
    /// verification too, so the answer and its timing say nothing about which names exist.
    ///
    /// The attempt is counted before the password is checked ([`ThrottlePolicy::reserve`]):
    /// against the account and the address, or, when `device_token` is a known device of the
    /// account, against that device alone. A client over its limit is refused before any
    /// hashing. A successful login hands back the device token to keep (a new one for a
    /// device the account did not know).
    pub async fn login(
        &self,
        now: i64,
        attempt: LoginAttempt<'_>,
        device_token: Option<String>,
        client: ClientInfo,
    ) -> Result<LoginOutcome, LoginError> {
        let (db, throttle) = (self.db, self.throttle);
        let LoginAttempt {
            username,
            password,
            remember,
            next,
        } = attempt;
        let name = username.to_owned();
        let reserved = {
            let (client, secret) = (client.clone(), self.secret.clone());
            db.write(move |tx| {
                let user = if check_username(&name).is_ok() {
                    db::users::find_by_name(tx, &name)?
                } else {
                    None
                };
                let device = user
                    .as_ref()
                    .and_then(|u| KnownDevice::of_user(&secret, device_token.as_deref(), u));
                let subjects = Subjects::attempt(device.as_ref(), &name, &client.ip);
                reserve_or_record(tx, now, &throttle, &subjects, user.as_ref(), &client)
                    .map(|r| r.map(|reservation| (user, device, reservation)))
                    .map_err(DbError::from)
            })
            .await?
        };
        let (user, device, reservation) =
            reserved.map_err(|retry_after| LoginError::Throttled { retry_after })?;
        let plausible = password.chars().count() <= MAX_PASSWORD_CHARS;
        let hash = user.as_ref().map(|u| u.password_hash.clone());
        let matches = if plausible {
            self.checked::<_, LoginError>(
                &reservation,
                self.hasher.verify(password.to_owned(), hash),
            )
            .await?
        } else {
            false
        };
        let user_id = user.as_ref().map(|u| u.id);
        let Some(user) = user.filter(|_| matches) else {
            db.write(move |tx| {
                events::record(tx, now, EventKind::LoginFailed, user_id, None, &client)
                    .map_err(DbError::from)
            })
            .await?;
            return Err(LoginError::InvalidCredentials);
        };
        if user.disabled {
            db.write(move |tx| ThrottlePolicy::forgive(tx, &reservation).map_err(DbError::from))
                .await?;
            return Err(LoginError::Disabled);
        }
        // A hash made at another `bcrypt_cost` is made again now that the password is known;
        // when no hashing slot is free, at a later login.
        let rehashed = if self.hasher.needs_rehash(&user.password_hash) {
            self.hasher.hash(password.to_owned()).await.ok()
        } else {
            None
        };
        let next = next.map(str::to_owned);
        let finisher = self.finisher();
        db.write(move |tx| -> Result<_, DbError> {
            // The password was checked outside any transaction: an account changed meanwhile
            // (a new password, a reset, a disable: each moves the device epoch) is not signed
            // in with what was checked. A rehash by a simultaneous login moves nothing.
            let unchanged = db::users::find_locked(tx, user.id)?
                .is_some_and(|now| !now.disabled && now.device_epoch == user.device_epoch);
            if !unchanged {
                return Ok(Err(LoginError::InvalidCredentials));
            }
            ThrottlePolicy::forgive(tx, &reservation)?;
            if let Some(hash) = &rehashed {
                db::users::set_password_hash(tx, user.id, hash)?;
            }
            if second_factors::is_on(tx, &user)? {
                let token = pending_login::create(tx, now, &user, remember, next.as_deref())?;
                return Ok(Ok(LoginOutcome::SecondStep(token)));
            }
            let sign_in = SignIn {
                user,
                remember,
                method: SignInMethod::Password,
                known: device,
                client: &client,
            };
            let signed_in = finisher.finish(tx, sign_in, now)?;
            Ok(Ok(LoginOutcome::SignedIn(Box::new(signed_in))))
        })
        .await?
    }

    /// Runs a password check that needs a hashing slot; when none can be had, the attempt it
    /// counted is taken back (an overloaded server is no failed guess).
    async fn checked<T, E: From<HashError> + From<DbError>>(
        &self,
        reservation: &Reservation,
        check: impl std::future::Future<Output = Result<T, HashError>>,
    ) -> Result<T, E> {
        match check.await {
            Ok(value) => Ok(value),
            Err(e) => {
                let ids = reservation.clone();
                self.db
                    .write(move |tx| ThrottlePolicy::release(tx, &ids).map_err(DbError::from))
                    .await?;
                Err(E::from(e))
            }
        }
    }

    /// Checks the password of a signed-in user (a password change, `/sudo`). A wrong one is
    /// a failed login of the account: counted before the check, recorded, and refused with 429
    /// past the limit, so a stolen session cannot guess the password. On success the attempt
    /// is still counted: the caller forgives it once the whole check has passed.
    pub(super) async fn check_own_password(
        &self,
        now: i64,
        user_id: i64,
        password: &str,
        device_token: Option<String>,
        client: &ClientInfo,
    ) -> Result<(UserRow, Reservation), OwnPasswordError> {
        let (db, throttle) = (self.db, self.throttle);
        let reserved = {
            let (client, secret) = (client.clone(), self.secret.clone());
            db.write(move |tx| {
                let Some(user) = db::users::find(tx, user_id)? else {
                    return Ok(Ok(None));
                };
                let device = KnownDevice::of_user(&secret, device_token.as_deref(), &user);
                let subjects = Subjects::attempt(device.as_ref(), &user.username, &client.ip);
                reserve_or_record(tx, now, &throttle, &subjects, Some(&user), &client)
                    .map(|r| r.map(|reservation| Some((user, reservation))))
                    .map_err(DbError::from)
            })
            .await
            .map_err(CheckError::from)?
        };
        let (user, reservation) = reserved
            .map_err(|retry_after| OwnPasswordError::Throttled { retry_after })?
            .ok_or(OwnPasswordError::Wrong)?;
        let plausible = password.chars().count() <= MAX_PASSWORD_CHARS;
        let matches = plausible
            && self
                .checked::<_, CheckError>(
                    &reservation,
                    self.hasher
                        .verify(password.to_owned(), Some(user.password_hash.clone())),
                )
                .await?;
        if !matches {
            let client = client.clone();
            db.write(move |tx| {
                events::record(
                    tx,
                    now,
                    EventKind::LoginFailed,
                    Some(user_id),
                    None,
                    &client,
                )
                .map_err(DbError::from)
            })
            .await
            .map_err(CheckError::from)?;
            return Err(OwnPasswordError::Wrong);
        }
        Ok((user, reservation))
    }

    /// Changes the password of `user_id` after checking the current one
    /// ([`Accounts::check_own_password`]), and ends every other session. Every device token
    /// issued before is outdated; returns the new one of the browser or app that changed it.
    pub async fn change_password(
        &self,
        now: i64,
        user_id: i64,
        current_sid: &str,
        passwords: (&str, &str),
        device_token: Option<String>,
        client: ClientInfo,
    ) -> Result<String, PasswordChangeError> {
        let (current_password, new_password) = passwords;
        passwords::check_new_password(new_password).map_err(PasswordChangeError::Weak)?;
        let (_, reservation) = self
            .check_own_password(now, user_id, current_password, device_token, &client)
            .await?;
        let hash = self
            .checked::<_, PasswordChangeError>(
                &reservation,
                self.hasher.hash(new_password.to_owned()),
            )
            .await?;
        let (keep, secret) = (current_sid.to_owned(), self.secret.clone());
        let device = self
            .db
            .write(move |tx| -> Result<_, DbError> {
                ThrottlePolicy::forgive(tx, &reservation)?;
                let change = PasswordChange {
                    user_id,
                    hash: &hash,
                    keep: Some(&keep),
                    client: &client,
                    detail: None,
                };
                change.apply(tx, now)?;
                let user = db::users::find(tx, user_id)?.ok_or(DieselError::NotFound)?;
                Ok(KnownDevice::new(&user).token(&secret))
            })
            .await?;
        Ok(device)
    }

    /// Creates a user with the `user` role and signs them in.
    pub async fn signup(
        &self,
        now: i64,
        account: NewAccount<'_>,
        client: ClientInfo,
    ) -> Result<SignedInSession, SignupError> {
        let (db, hasher) = (self.db, self.hasher);
        let NewAccount {
            username,
            password,
            password_confirm,
            email: address,
        } = account;
        let mut errors = SignupErrors {
            username: check_username(username).err(),
            password: passwords::check_new_password(password).err(),
            password_confirm: None,
            email: None,
        };
        if errors.password.is_none() && password != password_confirm {
            errors.password_confirm = Some("The two passwords differ.".into());
        }
        if !address.trim().is_empty() {
            errors.email = email::parse_address(address).err().map(str::to_owned);
        }
        if errors.username.is_some()
            || errors.password.is_some()
            || errors.password_confirm.is_some()
            || errors.email.is_some()
        {
            return Err(SignupError::Invalid(errors));
        }
        let throttle = self.throttle;
        let reserved = {
            let client = client.clone();
            db.write(move |tx| {
                throttle
                    .reserve(tx, now, &Subjects::signup(&client.ip))
                    .map_err(DbError::from)
            })
            .await?
        };
        let reservation = reserved.map_err(|retry_after| SignupError::Throttled { retry_after })?;
        let hash = self
            .checked::<_, SignupError>(&reservation, hasher.hash(password.to_owned()))
            .await?;
        let (name, address) = (username.to_owned(), address.to_owned());
        let (secret, policy, at) = (self.secret.clone(), self.email, client.clone());
        let created = db
            .write(move |tx| -> Result<_, DbError> {
                let new = NewUser {
                    name: &name,
                    hash: &hash,
                    address: &address,
                };
                let refused =
                    match create_with_address(tx, &secret, policy, &throttle, &new, &at, now)? {
                        Ok(user) => return Ok(Ok(user)),
                        Err(refused) => refused,
                    };
                // No account made: the attempt does not count.
                ThrottlePolicy::release(tx, &reservation).map_err(DbError::from)?;
                Ok(Err(refused))
            })
            .await?;
        let user = created.map_err(SignupError::Invalid)?;
        let finisher = self.finisher();
        let signed_in = db
            .write(move |tx| {
                // The new account's first browser is its own known device, no new one.
                let sign_in = SignIn {
                    known: Some(KnownDevice::new(&user)),
                    user,
                    remember: false,
                    method: SignInMethod::Password,
                    client: &client,
                };
                finisher.finish(tx, sign_in, now).map_err(DbError::from)
            })
            .await?;
        Ok(signed_in)
    }
}

/// A sign-up's account, as it is about to be stored.
struct NewUser<'a> {
    name: &'a str,
    hash: &'a str,
    /// Empty for none.
    address: &'a str,
}

/// Creates the account of a sign-up with its address, or neither: the field that was refused.
fn create_with_address(
    tx: &mut Tx<'_>,
    secret: &ServerSecret,
    policy: EmailPolicy,
    throttle: &ThrottlePolicy,
    new: &NewUser<'_>,
    client: &ClientInfo,
    now: i64,
) -> Result<Result<UserRow, SignupErrors>, DbError> {
    let mut address_refused = None;
    let inserted = tx.savepoint(|tx| {
        let user = create_user(tx, now, new.name, new.hash, Role::User)?;
        let change = email::AddressChange {
            user: &user,
            session_id: None,
            client,
            limits: Some(*throttle),
        };
        match email::set_address(tx, secret, policy, &change, new.address, now)? {
            Ok(()) => Ok(user),
            // Undo the account too: the address cannot be this account's.
            Err(refused) => {
                address_refused = Some(refused.message());
                Err(DieselError::RollbackTransaction)
            }
        }
    });
    match inserted {
        Ok(user) => Ok(Ok(user)),
        Err(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => {
            Ok(Err(SignupErrors {
                username: Some("This username is taken.".into()),
                ..SignupErrors::default()
            }))
        }
        Err(DieselError::RollbackTransaction) => Ok(Err(SignupErrors {
            email: address_refused.map(str::to_owned),
            ..SignupErrors::default()
        })),
        Err(e) => Err(DbError::from(e)),
    }
}

/// A new password for an account, set by its owner or from the command line: the password
/// changes, the event is recorded, and every session but `keep` ends.
pub struct PasswordChange<'a> {
    pub user_id: i64,
    pub hash: &'a str,
    /// The session the change was made from, which stays signed in.
    pub keep: Option<&'a str>,
    pub client: &'a ClientInfo,
    /// Who made the change, when not the owner.
    pub detail: Option<&'a str>,
}

impl PasswordChange<'_> {
    /// Returns the public ids of the sessions it ended.
    pub fn apply(&self, tx: &mut Tx<'_>, now: i64) -> Result<Vec<String>, DieselError> {
        db::users::set_password(tx, self.user_id, self.hash, now)?;
        account_changes::outdate(tx, self.user_id, account_changes::PASSWORD, now)?;
        let current = match self.keep {
            Some(keep) => db::sessions::find_by_public_id(tx, keep)?.map(|s| s.id),
            None => None,
        };
        events::record_with(
            tx,
            now,
            EventKind::PasswordChanged,
            Some(self.user_id),
            current,
            self.client,
            self.detail,
        )?;
        let ending = Ending {
            now,
            reason: EndReason::PasswordChanged,
            event: EventKind::SessionRevoked,
            client: self.client,
            detail: Some("password changed"),
        };
        session::end_all_except(tx, self.user_id, self.keep, &ending)
    }
}

//! Passkeys (WebAuthn, by webauthn-rs): several per account with a name, passwordless sign-in
//! with a discoverable passkey and user verification, and authenticating again for sudo mode.
//!
//! Every ceremony's server half (challenge and rules) is stored in the database under a random
//! token the browser sends back, single use and for [`CEREMONY_LIFETIME`], so any instance can
//! finish what another started; it is bound to what started it (the browser's CSRF cookie
//! before login, the session after), so no other browser can finish it. Anonymous starts are
//! counted per client address. The relying-party id is the host of `public_url`; browsers
//! refuse an IP address there, so with an IP in `public_url` passkeys are off.

use std::sync::Arc;

use diesel::result::{DatabaseErrorKind, Error as DieselError};
use serde_json::Value;
use webauthn_rs::prelude::{
    DiscoverableAuthentication, Passkey, PasskeyAuthentication, PasskeyRegistration,
    PublicKeyCredential, RegisterPublicKeyCredential, Url, Uuid, Webauthn, WebauthnBuilder,
};

use crate::core::account_changes;
use crate::core::client::ClientInfo;
use crate::core::events::{self, EventKind};
use crate::core::known_device::KnownDevice;
use crate::core::owner::Owner;
use crate::core::sessions::{SignInMethod, token_hash};
use crate::core::sign_in::{Accounts, SignIn, SignedInSession};
use crate::core::throttle::{Subjects, ThrottlePolicy};
use crate::crypto;
use crate::db::{self, DbError, Tx, sessions::SessionRow, users::UserRow};

/// How long a started ceremony can be finished, in seconds.
pub const CEREMONY_LIFETIME: i64 = 5 * 60;

/// Longest passkey name kept.
pub const MAX_NAME_CHARS: usize = 64;

const REGISTER: &str = "register";
const LOGIN: &str = "login";
const SUDO: &str = "sudo";

/// Longest ceremony token worth looking up; real ones are 43 characters.
const MAX_TOKEN_LEN: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum PasskeyError {
    /// `public_url` has no host name to be the relying-party id.
    #[error("passkeys are off")]
    Off,
    /// No such ceremony, or it expired or was used: start again.
    #[error("no such passkey ceremony")]
    Expired,
    /// The authenticator's answer did not verify, or names no passkey of the account.
    #[error("the passkey was refused")]
    Refused,
    /// This passkey is registered already.
    #[error("the passkey is registered already")]
    Duplicate,
    /// A name is needed (at most [`MAX_NAME_CHARS`] characters).
    #[error("a passkey needs a name")]
    BadName,
    /// The account is disabled.
    #[error("the account is disabled")]
    Disabled,
    /// The session ended meanwhile.
    #[error("the session has ended")]
    SessionEnded,
    /// Too many anonymous sign-ins started from this address within `login_window`.
    #[error("too many passkey sign-ins started")]
    Throttled { retry_after: i64 },
    #[error(transparent)]
    Db(#[from] DbError),
}

// Through `DbError`, which tells an outage from a bad query.
impl From<DieselError> for PasskeyError {
    fn from(e: DieselError) -> Self {
        PasskeyError::Db(DbError::from(e))
    }
}

/// The relying party, when `public_url` allows one.
#[derive(Clone)]
pub struct Passkeys {
    webauthn: Option<Arc<Webauthn>>,
}

impl Passkeys {
    pub fn new(public_url: &Url) -> Passkeys {
        let webauthn = public_url.domain().and_then(|host| {
            WebauthnBuilder::new(host, public_url)
                .and_then(|b| b.rp_name("doorman").build())
                .ok()
        });
        Passkeys {
            webauthn: webauthn.map(Arc::new),
        }
    }

    pub fn enabled(&self) -> bool {
        self.webauthn.is_some()
    }

    fn webauthn(&self) -> Result<Arc<Webauthn>, PasskeyError> {
        self.webauthn.clone().ok_or(PasskeyError::Off)
    }
}

/// A passkey as its owner's pages list it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PasskeySummary {
    pub id: i64,
    pub name: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

pub fn list(conn: &mut db::Conn, user_id: i64) -> Result<Vec<PasskeySummary>, DieselError> {
    Ok(db::passkeys::of_user(conn, user_id)?
        .into_iter()
        .map(|row| PasskeySummary {
            id: row.id,
            name: row.name,
            created_at: row.created_at,
            last_used_at: row.last_used_at,
        })
        .collect())
}

/// Removes one of the owner's passkeys; returns whether it was theirs.
pub fn delete(tx: &mut Tx<'_>, owner: &Owner, id: i64, now: i64) -> Result<bool, DieselError> {
    let deleted = db::passkeys::delete(tx, owner.user_id, id)?;
    if deleted {
        account_changes::outdate(tx, owner.user_id, account_changes::SECOND_FACTORS, now)?;
        owner.record(tx, now, EventKind::PasskeyRemoved)?;
    }
    Ok(deleted)
}

/// A ceremony just started, as the browser gets it: the options for the authenticator, and
/// the token to send back with its answer.
#[derive(Debug, serde::Serialize)]
pub struct Challenge {
    pub options: Value,
    pub ceremony: String,
}

/// What a ceremony is bound to: the browser that started it, or the session.
#[derive(Debug, Clone, Copy)]
pub enum Starter<'a> {
    /// A browser before login, by its CSRF cookie.
    Browser(&'a str),
    /// A signed-in session, by public id.
    Session(&'a str),
}

impl Starter<'_> {
    fn hash(self) -> [u8; 32] {
        let (kind, value): (&[u8], &str) = match self {
            Starter::Browser(cookie) => (b"browser\0", cookie),
            Starter::Session(sid) => (b"session\0", sid),
        };
        crypto::sha256(&[b"doorman/ceremony-binding/v1\0", kind, value.as_bytes()].concat())
    }
}

fn store<S: serde::Serialize>(
    tx: &mut Tx<'_>,
    purpose: &str,
    (user_id, starter): (Option<i64>, Starter<'_>),
    state: &S,
    now: i64,
) -> Result<String, PasskeyError> {
    let token = crypto::random_token::<32>();
    let state = serde_json::to_string(state).map_err(|_| PasskeyError::Refused)?;
    db::passkeys::insert_ceremony(
        tx,
        &db::passkeys::NewCeremony {
            token_hash: &token_hash(&token),
            purpose,
            user_id,
            state: &state,
            expires_at: now.saturating_add(CEREMONY_LIFETIME),
            binding: &starter.hash(),
        },
        now,
    )?;
    Ok(token)
}

/// Takes the ceremony `token` of `purpose` that `starter` started (single use) and its state.
fn take<S: serde::de::DeserializeOwned>(
    tx: &mut Tx<'_>,
    (token, starter): (&str, Starter<'_>),
    purpose: &str,
    now: i64,
) -> Result<(Option<i64>, S), PasskeyError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(PasskeyError::Expired);
    }
    let (user_id, state) =
        db::passkeys::take_ceremony(tx, &token_hash(token), purpose, &starter.hash(), now)?
            .ok_or(PasskeyError::Expired)?;
    let state = serde_json::from_str(&state).map_err(|_| PasskeyError::Expired)?;
    Ok((user_id, state))
}

fn stored(row: &db::passkeys::PasskeyRow) -> Result<Passkey, PasskeyError> {
    serde_json::from_str(&row.credential).map_err(|_| PasskeyError::Refused)
}

/// The user's WebAuthn handle, made on their first passkey.
fn handle_of(tx: &mut Tx<'_>, user_id: i64) -> Result<Uuid, PasskeyError> {
    let stored = db::passkeys::webauthn_id(tx, user_id)?;
    if let Some(uuid) = stored.and_then(|h| Uuid::parse_str(&h).ok()) {
        return Ok(uuid);
    }
    let uuid = Uuid::from_bytes(crypto::random_bytes::<16>());
    db::passkeys::set_webauthn_id(tx, user_id, &uuid.to_string())?;
    Ok(uuid)
}

impl Passkeys {
    /// Starts registering a passkey for `user`: a discoverable credential with user
    /// verification, none of the account's own passkeys again.
    pub fn register_start(
        &self,
        tx: &mut Tx<'_>,
        user: &UserRow,
        sid: &str,
        now: i64,
    ) -> Result<Challenge, PasskeyError> {
        let webauthn = self.webauthn()?;
        let handle = handle_of(tx, user.id)?;
        let existing = db::passkeys::of_user(tx, user.id)?
            .iter()
            .filter_map(|row| stored(row).ok())
            .map(|p| p.cred_id().clone())
            .collect::<Vec<_>>();
        let (options, state) = webauthn
            .start_passkey_registration(
                handle,
                &user.username,
                &user.username,
                Some(existing).filter(|e| !e.is_empty()),
            )
            .map_err(|_| PasskeyError::Refused)?;
        let mut options = serde_json::to_value(options).map_err(|_| PasskeyError::Refused)?;
        // Passwordless sign-in needs the passkey to live on the authenticator (discoverable).
        if let Some(selection) = options
            .pointer_mut("/publicKey/authenticatorSelection")
            .and_then(Value::as_object_mut)
        {
            selection.insert("residentKey".into(), "required".into());
            selection.insert("requireResidentKey".into(), true.into());
        }
        let starter = (Some(user.id), Starter::Session(sid));
        let ceremony = store::<PasskeyRegistration>(tx, REGISTER, starter, &state, now)?;
        Ok(Challenge { options, ceremony })
    }

    /// Finishes a registration the same account started, under `name`.
    pub fn register_finish(
        &self,
        tx: &mut Tx<'_>,
        owner: &Owner,
        ceremony: &str,
        name: &str,
        credential: &RegisterPublicKeyCredential,
        now: i64,
    ) -> Result<(), PasskeyError> {
        let name = name.trim();
        if name.is_empty()
            || name.chars().count() > MAX_NAME_CHARS
            || name.chars().any(char::is_control)
        {
            return Err(PasskeyError::BadName);
        }
        let webauthn = self.webauthn()?;
        let started = (ceremony, Starter::Session(&owner.sid));
        let (user_id, state) = take::<PasskeyRegistration>(tx, started, REGISTER, now)?;
        if user_id != Some(owner.user_id) {
            return Err(PasskeyError::Expired);
        }
        let passkey = webauthn
            .finish_passkey_registration(credential, &state)
            .map_err(|_| PasskeyError::Refused)?;
        let json = serde_json::to_string(&passkey).map_err(|_| PasskeyError::Refused)?;
        let inserted = tx.savepoint(|tx| {
            db::passkeys::insert(
                tx,
                &db::passkeys::NewPasskey {
                    user_id: owner.user_id,
                    credential_id: passkey.cred_id().as_ref(),
                    name,
                    credential: &json,
                    created_at: now,
                },
            )
        });
        match inserted {
            Ok(()) => {}
            Err(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => {
                return Err(PasskeyError::Duplicate);
            }
            Err(e) => return Err(e.into()),
        }
        account_changes::outdate(tx, owner.user_id, account_changes::SECOND_FACTORS, now)?;
        owner.record(tx, now, EventKind::PasskeyAdded)?;
        Ok(())
    }

    /// Starts a passwordless sign-in for the browser with CSRF cookie `browser`: any
    /// discoverable passkey of this site may answer. Counted per client address.
    pub fn login_start(
        &self,
        tx: &mut Tx<'_>,
        throttle: &ThrottlePolicy,
        client: &ClientInfo,
        browser: &str,
        now: i64,
    ) -> Result<Challenge, PasskeyError> {
        let webauthn = self.webauthn()?;
        if let Err(retry_after) = throttle.reserve(tx, now, &Subjects::passkey_start(&client.ip))? {
            return Err(PasskeyError::Throttled { retry_after });
        }
        let (options, state) = webauthn
            .start_discoverable_authentication()
            .map_err(|_| PasskeyError::Refused)?;
        let mut options = serde_json::to_value(options).map_err(|_| PasskeyError::Refused)?;
        // A button asks for the passkey, not the browser's autofill.
        if let Some(options) = options.as_object_mut() {
            options.remove("mediation");
        }
        let starter = (None, Starter::Browser(browser));
        let ceremony = store::<DiscoverableAuthentication>(tx, LOGIN, starter, &state, now)?;
        Ok(Challenge { options, ceremony })
    }

    /// Starts authenticating `user_id` again with one of their passkeys (sudo mode).
    pub fn sudo_start(
        &self,
        tx: &mut Tx<'_>,
        user_id: i64,
        sid: &str,
        now: i64,
    ) -> Result<Challenge, PasskeyError> {
        let webauthn = self.webauthn()?;
        let passkeys = db::passkeys::of_user(tx, user_id)?
            .iter()
            .filter_map(|row| stored(row).ok())
            .collect::<Vec<_>>();
        if passkeys.is_empty() {
            return Err(PasskeyError::Refused);
        }
        let (options, state) = webauthn
            .start_passkey_authentication(&passkeys)
            .map_err(|_| PasskeyError::Refused)?;
        let options = serde_json::to_value(options).map_err(|_| PasskeyError::Refused)?;
        let starter = (Some(user_id), Starter::Session(sid));
        let ceremony = store::<PasskeyAuthentication>(tx, SUDO, starter, &state, now)?;
        Ok(Challenge { options, ceremony })
    }
}

/// A verified use of a passkey: its row is updated, and how it signed in.
fn record_use(
    tx: &mut Tx<'_>,
    row: &db::passkeys::PasskeyRow,
    mut passkey: Passkey,
    result: &webauthn_rs::prelude::AuthenticationResult,
    now: i64,
) -> Result<SignInMethod, PasskeyError> {
    passkey.update_credential(result);
    let json = serde_json::to_string(&passkey).map_err(|_| PasskeyError::Refused)?;
    db::passkeys::used(tx, row.id, &json, now)?;
    Ok(SignInMethod::Passkey {
        synced: result.backup_eligible(),
    })
}

impl Accounts<'_> {
    /// Finishes a passwordless sign-in that the browser with CSRF cookie `browser` started: the
    /// passkey that answered names its account (by the WebAuthn user handle), the signature and
    /// user verification are checked, and a session starts, as a login does.
    #[allow(clippy::too_many_arguments)]
    pub async fn passkey_login(
        &self,
        passkeys: &Passkeys,
        now: i64,
        (ceremony, browser): (String, String),
        credential: PublicKeyCredential,
        device_token: Option<String>,
        client: ClientInfo,
    ) -> Result<SignedInSession, PasskeyError> {
        let webauthn = passkeys.webauthn()?;
        let (secret, finisher) = (self.secret.clone(), self.finisher());
        self.db
            .write(move |tx| -> Result<_, DbError> {
                let answer = (|| {
                    let started = (ceremony.as_str(), Starter::Browser(&browser));
                    let (_, state) = take::<DiscoverableAuthentication>(tx, started, LOGIN, now)?;
                    let (handle, credential_id) = webauthn
                        .identify_discoverable_authentication(&credential)
                        .map_err(|_| PasskeyError::Refused)?;
                    let row = db::passkeys::find_by_credential_id(tx, credential_id)?
                        .ok_or(PasskeyError::Refused)?;
                    let owner = db::passkeys::user_by_webauthn_id(tx, &handle.to_string())?;
                    if owner != Some(row.user_id) {
                        return Err(PasskeyError::Refused);
                    }
                    let passkey = stored(&row)?;
                    let result = webauthn
                        .finish_discoverable_authentication_v2(&credential, state, &passkey)
                        .map_err(|_| PasskeyError::Refused)?;
                    let user =
                        db::users::find_locked(tx, row.user_id)?.ok_or(PasskeyError::Refused)?;
                    if user.disabled {
                        return Err(PasskeyError::Disabled);
                    }
                    let method = record_use(tx, &row, passkey, &result, now)?;
                    ThrottlePolicy::clear(tx, &Subjects::passkey_start(&client.ip))?;
                    let sign_in = SignIn {
                        known: KnownDevice::of_user(&secret, device_token.as_deref(), &user),
                        user,
                        remember: false,
                        method,
                        client: &client,
                    };
                    Ok(finisher.finish(tx, sign_in, now)?)
                })();
                Ok(answer)
            })
            .await?
    }

    /// Finishes authenticating a signed-in session again with a passkey of its user: the
    /// session's `auth_time` moves (event `sudo_granted`).
    pub async fn passkey_sudo(
        &self,
        passkeys: &Passkeys,
        now: i64,
        sid: String,
        ceremony: String,
        credential: PublicKeyCredential,
        client: ClientInfo,
    ) -> Result<SessionRow, PasskeyError> {
        let webauthn = passkeys.webauthn()?;
        self.db
            .write(move |tx| -> Result<_, DbError> {
                let answer = (|| {
                    let started = (ceremony.as_str(), Starter::Session(&sid));
                    let (user_id, state) = take::<PasskeyAuthentication>(tx, started, SUDO, now)?;
                    let mut session = db::sessions::find_by_public_id(tx, &sid)?
                        .filter(|s| Some(s.user_id) == user_id)
                        .ok_or(PasskeyError::SessionEnded)?;
                    let row =
                        db::passkeys::find_by_credential_id(tx, credential.get_credential_id())?
                            .filter(|row| row.user_id == session.user_id)
                            .ok_or(PasskeyError::Refused)?;
                    let passkey = stored(&row)?;
                    let result = webauthn
                        .finish_passkey_authentication(&credential, &state)
                        .map_err(|_| PasskeyError::Refused)?;
                    let method = record_use(tx, &row, passkey, &result, now)?;
                    if !db::sessions::set_auth_time(tx, session.id, now, method.amr())? {
                        return Err(PasskeyError::SessionEnded);
                    }
                    session.auth_time = now;
                    method.amr().clone_into(&mut session.amr);
                    events::record(
                        tx,
                        now,
                        EventKind::SudoGranted,
                        Some(session.user_id),
                        Some(session.id),
                        &client,
                    )?;
                    Ok(session)
                })();
                Ok(answer)
            })
            .await?
    }
}

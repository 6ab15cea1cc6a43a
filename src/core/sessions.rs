//! Sessions (refresh-token families): how one starts at login and how one ends.

use crate::auth::keys::ServerSecret;
use crate::auth::tokens::{AccessClaims, TokenService};
use crate::config::Config;
use crate::core::client::ClientInfo;
use crate::core::events::{self, EventKind};
use crate::crypto;
use crate::db::{
    self, Db, DbError, Tx,
    sessions::{Alive, SessionRow},
    users::UserRow,
};
use diesel::result::Error as DieselError;

/// The lifetimes the session rules apply, taken from the configuration.
#[derive(Debug, Clone, Copy)]
pub struct Lifetimes {
    pub access_ttl: i64,
    pub refresh_ttl: i64,
    pub session_max_age: i64,
    pub reuse_grace: i64,
}

impl From<&Config> for Lifetimes {
    fn from(config: &Config) -> Self {
        Lifetimes {
            access_ttl: config.access_ttl.as_i64(),
            refresh_ttl: config.refresh_ttl.as_i64(),
            session_max_age: config.session_max_age.as_i64(),
            reuse_grace: config.reuse_grace.as_i64(),
        }
    }
}

impl Lifetimes {
    /// When an access token issued now for this session expires: never after the session.
    pub fn access_expiry(&self, now: i64, session: &SessionRow) -> i64 {
        (now + self.access_ttl).min(session.expires_at)
    }

    /// Which sessions are alive at `now` ([`Alive`]: the one rule for it).
    pub fn alive(&self, now: i64) -> Alive {
        Alive {
            now,
            refresh_ttl: self.refresh_ttl,
        }
    }

    /// The claims of a new access token for `session`, whose user has `role`.
    pub fn access_claims(
        &self,
        tokens: &TokenService,
        session: &SessionRow,
        role: &str,
        now: i64,
    ) -> AccessClaims {
        tokens.issue(session, role, now, self.access_expiry(now, session))
    }
}

/// Why a session ended, as stored and shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    Logout,
    Revoked,
    RefreshTokenReuse,
    PasswordChanged,
    UserDisabled,
    Inactive,
    Expired,
}

impl EndReason {
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::Logout => "logout",
            EndReason::Revoked => "revoked",
            EndReason::RefreshTokenReuse => "refresh_token_reuse",
            EndReason::PasswordChanged => "password_changed",
            EndReason::UserDisabled => "user_disabled",
            EndReason::Inactive => "inactive",
            EndReason::Expired => "expired",
        }
    }

    pub const ALL: [EndReason; 7] = [
        EndReason::Logout,
        EndReason::Revoked,
        EndReason::RefreshTokenReuse,
        EndReason::PasswordChanged,
        EndReason::UserDisabled,
        EndReason::Inactive,
        EndReason::Expired,
    ];

    pub fn parse(name: &str) -> Option<EndReason> {
        EndReason::ALL.into_iter().find(|r| r.as_str() == name)
    }

    /// The reason in words, for people.
    pub fn describe(self) -> &'static str {
        match self {
            EndReason::Logout => "signed out",
            EndReason::Revoked => "ended by the user or an admin",
            EndReason::RefreshTokenReuse => {
                "ended: a used sign-in token came back (possible theft)"
            }
            EndReason::PasswordChanged => "ended by a password change",
            EndReason::UserDisabled => "ended: account disabled",
            EndReason::Inactive => "expired after inactivity",
            EndReason::Expired => "reached its maximum age",
        }
    }
}

/// How a session signed in, as its `amr` (RFC 8176 values, space-separated).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignInMethod {
    Password,
    /// The password and a one-time code (of the authenticator app, or a recovery code).
    PasswordAndCode,
    /// A passkey with user verification; `synced` (backup eligible) ones are software keys.
    Passkey {
        synced: bool,
    },
}

impl SignInMethod {
    pub fn amr(self) -> &'static str {
        match self {
            SignInMethod::Password => "pwd",
            SignInMethod::PasswordAndCode => "pwd otp mfa",
            SignInMethod::Passkey { synced: true } => "swk mfa",
            SignInMethod::Passkey { synced: false } => "hwk mfa",
        }
    }
}

/// A session's `amr` in words, for people.
pub fn describe_amr(amr: &str) -> &'static str {
    let has = |value: &str| amr.split(' ').any(|v| v == value);
    if has("hwk") || has("swk") {
        "passkey"
    } else if has("pwd") && has("otp") {
        "password + one-time code"
    } else if has("pwd") {
        "password"
    } else {
        "unknown"
    }
}

/// A session that has just been created, with its first refresh token (never stored in clear).
#[derive(Debug, Clone)]
pub struct Started {
    pub session: SessionRow,
    pub refresh_token: String,
}

/// The key version of successors derived from the session's key and the server secret; 0 is
/// the session's key alone (sessions started before the server secret existed; each moves to
/// this version at its next rotation).
pub const KEY_VERSION: i32 = 1;

/// The successor of a refresh token: derived, so racing requests all get the same one, and
/// unpredictable without both the session's key and the server secret. `issued` is the
/// successor's own: [`Issued::now`] when it is made, [`Issued::of_key`] of the stored successor
/// when a racing request derives it again.
pub fn successor_token(
    secret: &ServerSecret,
    session: &SessionRow,
    presented: &str,
    issued: Issued,
) -> String {
    let mixed;
    let key: &[u8] = if session.key_version == 0 {
        &session.successor_key
    } else {
        mixed = secret.successor_key(&session.successor_key);
        &mixed
    };
    issued.token(&crypto::hmac_sha256(
        key,
        &[b"doorman/refresh-successor/v1\0", presented.as_bytes()],
    ))
}

/// A new random refresh token, for a session's start.
pub fn new_refresh_token() -> String {
    Issued::now().token(&crypto::random_bytes::<32>())
}

/// The issue time a refresh token starts with: 8 bytes of milliseconds since 1970, big-endian,
/// before its 32 secret bytes. Tokens are stored and found under that time followed by their
/// hash ([`token_hash`]), so the index of tokens grows at its end: each rotation writes the
/// page the previous ones wrote, where a bare hash would put every new token into a random
/// page of a large index (a page written to the log per rotation). Tokens issued before this
/// have no time (`None`) and are stored under their bare hash.
#[derive(Debug, Clone, Copy)]
pub struct Issued(Option<[u8; ISSUED_LEN]>);

const ISSUED_LEN: usize = 8;

/// Length of a token with an issue time: 40 bytes in URL-safe base64.
const TIMED_TOKEN_LEN: usize = 54;

impl Issued {
    pub fn now() -> Issued {
        let millis = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        Issued(Some(millis.to_be_bytes()))
    }

    /// The issue time of the token stored under `key`.
    pub fn of_key(key: &[u8]) -> Issued {
        Issued(
            key.get(..ISSUED_LEN)
                .filter(|_| key.len() == ISSUED_LEN + 32)
                .and_then(|head| head.try_into().ok()),
        )
    }

    /// The issue time `token` starts with, if it has one.
    fn of_token(token: &str) -> Issued {
        if token.len() != TIMED_TOKEN_LEN {
            return Issued(None);
        }
        Issued(
            crypto::b64url_decode(token)
                .filter(|bytes| bytes.len() == ISSUED_LEN + 32)
                .and_then(|bytes| bytes[..ISSUED_LEN].try_into().ok()),
        )
    }

    fn token(self, secret: &[u8; 32]) -> String {
        match self.0 {
            Some(head) => crypto::b64url(&[&head[..], secret].concat()),
            None => crypto::b64url(secret),
        }
    }
}

/// Whether `text` can be a session's public id (URL-safe base64): anything else is not looked up.
pub fn is_public_id(text: &str) -> bool {
    (1..=64).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// What is stored of a refresh token, and looked up: its SHA-256, after its issue time when it
/// has one ([`Issued`]).
pub fn token_hash(token: &str) -> Vec<u8> {
    let hash = crypto::sha256(token.as_bytes());
    match Issued::of_token(token).0 {
        Some(head) => [&head[..], &hash].concat(),
        None => hash.to_vec(),
    }
}

/// Starts a brand-new session for `user`: nothing the client brought is linked to it.
pub fn start(
    tx: &mut Tx<'_>,
    now: i64,
    lifetimes: &Lifetimes,
    user: &UserRow,
    remember: bool,
    client: &ClientInfo,
    method: SignInMethod,
) -> Result<Started, DieselError> {
    let public_id = crypto::random_token::<16>();
    let successor_key = crypto::random_bytes::<32>();
    let refresh_token = new_refresh_token();
    let session = db::sessions::insert(
        tx,
        &db::sessions::NewSession {
            public_id: &public_id,
            user_id: user.id,
            successor_key: &successor_key,
            remember,
            created_at: now,
            last_used_at: now,
            expires_at: now.saturating_add(lifetimes.session_max_age),
            first_ip: &client.ip,
            first_user_agent: &client.user_agent,
            last_ip: &client.ip,
            last_user_agent: &client.user_agent,
            key_version: KEY_VERSION,
            amr: method.amr(),
            auth_time: now,
        },
    )?;
    db::refresh_tokens::insert(tx, session.id, &token_hash(&refresh_token), None, now)?;
    db::users::set_last_login(tx, user.id, now)?;
    events::record(
        tx,
        now,
        EventKind::LoginSucceeded,
        Some(user.id),
        Some(session.id),
        client,
    )?;
    Ok(Started {
        session,
        refresh_token,
    })
}

/// Ends `session` if it is still open; the one place a session ends, so its access tokens are
/// refused once the transaction commits. Returns whether it was open.
pub fn end(
    tx: &mut Tx<'_>,
    session: &SessionRow,
    now: i64,
    reason: EndReason,
) -> Result<bool, DieselError> {
    let ended = db::sessions::end(tx, session.id, now, reason.as_str())?;
    if ended {
        tx.session_ended(session.public_id.clone());
    }
    Ok(ended)
}

/// Why sessions end and who ended them, as the session rows and security events record it.
#[derive(Debug, Clone, Copy)]
pub struct Ending<'a> {
    pub now: i64,
    pub reason: EndReason,
    pub event: EventKind,
    pub client: &'a ClientInfo,
    /// A note for people: who did it, or why.
    pub detail: Option<&'a str>,
}

impl<'a> Ending<'a> {
    /// A user or an admin ended the session by hand.
    pub fn revoked(now: i64, client: &'a ClientInfo, detail: Option<&'a str>) -> Ending<'a> {
        Ending {
            now,
            reason: EndReason::Revoked,
            event: EventKind::SessionRevoked,
            client,
            detail,
        }
    }

    /// Ends one open session and records the event; false when it was not open.
    fn apply(&self, tx: &mut Tx<'_>, session: &SessionRow) -> Result<bool, DieselError> {
        if !end(tx, session, self.now, self.reason)? {
            return Ok(false);
        }
        events::record_with(
            tx,
            self.now,
            self.event,
            Some(session.user_id),
            Some(session.id),
            self.client,
            self.detail,
        )?;
        Ok(true)
    }
}

/// Ends one of `user_id`'s sessions by its public id. Returns false when it was not that user's
/// open session.
pub fn end_one(
    tx: &mut Tx<'_>,
    user_id: i64,
    public_id: &str,
    ending: &Ending<'_>,
) -> Result<bool, DieselError> {
    if !is_public_id(public_id) {
        return Ok(false);
    }
    match db::sessions::find_by_public_id(tx, public_id)? {
        Some(session) if session.user_id == user_id => ending.apply(tx, &session),
        _ => Ok(false),
    }
}

/// Ends every open session of `user_id` except `keep`. Returns the public ids it ended.
pub fn end_all_except(
    tx: &mut Tx<'_>,
    user_id: i64,
    keep: Option<&str>,
    ending: &Ending<'_>,
) -> Result<Vec<String>, DieselError> {
    let mut ended = Vec::new();
    for session in db::sessions::open_for_user(tx, user_id)? {
        if Some(session.public_id.as_str()) != keep && ending.apply(tx, &session)? {
            ended.push(session.public_id);
        }
    }
    Ok(ended)
}

/// `user_id`'s alive sessions, most recently used first.
pub fn alive_of_user(
    conn: &mut db::Conn,
    user_id: i64,
    alive: Alive,
) -> Result<Vec<SessionRow>, DbError> {
    Ok(db::sessions::active_for_user(conn, user_id, alive)?)
}

/// A user ends one of their own sessions (from `/sessions` or the API).
pub async fn revoke_own(
    db: &Db,
    user_id: i64,
    public_id: String,
    now: i64,
    client: ClientInfo,
) -> Result<bool, DbError> {
    db.write(move |tx| {
        end_one(
            tx,
            user_id,
            &public_id,
            &Ending::revoked(now, &client, None),
        )
        .map_err(DbError::from)
    })
    .await
}

//! Refresh-token rotation: the one place where a refresh token is accepted, rotated, given its
//! grace, or recognised as stolen.

use std::collections::{HashMap, HashSet};

use diesel::pg::PgConnection;
use diesel::result::Error as DieselError;

use super::sessions::{
    self as session, EndReason, Issued, KEY_VERSION, Lifetimes, successor_token, token_hash,
};
use crate::auth::keys::ServerSecret;
use crate::core::client::ClientInfo;
use crate::core::events::{self, EventKind};
use crate::crypto;
use crate::db::refresh_tokens::RefreshTokenRow;
use crate::db::rotation_writes::Replacement;
use crate::db::sessions::{Lapse, SessionRow};
use crate::db::{self, Conn, DbError, Tx};

/// Longest refresh token worth looking up; real ones are 54 characters (43 before they carried
/// their issue time).
const MAX_REFRESH_TOKEN_LEN: usize = 128;

/// A successful rotation: the session, its user's role and the refresh token to hand out.
#[derive(Debug, Clone)]
pub struct Rotated {
    pub session: SessionRow,
    pub role: String,
    pub refresh_token: String,
}

/// Why a refresh token was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum RefreshError {
    /// Not a token doorman issued.
    #[error("unknown refresh token")]
    Unknown,
    /// Its session had already ended.
    #[error("the session has ended")]
    SessionEnded,
    /// Its session reached `refresh_ttl` without use or `session_max_age`, and is now ended.
    #[error("the session expired")]
    Expired,
    /// A used token came back after the grace: the session is now revoked.
    #[error("a used refresh token came back")]
    Reused,
    #[error(transparent)]
    Db(#[from] DbError),
}

// Through `DbError`, which tells an outage from a bad query.
impl From<DieselError> for RefreshError {
    fn from(e: DieselError) -> Self {
        RefreshError::Db(DbError::from(e))
    }
}

/// What the rules make of a presented token, read with its session, before anything is written.
enum Verdict {
    /// A live token of an open session in good standing: it is replaced by its successor.
    Rotate,
    /// A used token: its successor within the grace, or theft.
    Used(i64),
    /// The session ends now, for this reason, and the token is refused.
    End(EndReason, RefreshError),
    /// Refused, nothing to write.
    Refuse(RefreshError),
}

/// A presented token as read: the token, its session, and the session user's role and
/// disabled flag.
struct Found {
    token: RefreshTokenRow,
    session: SessionRow,
    role: String,
    disabled: bool,
}

/// Whether `presented` could be a refresh token: anything else is not looked up.
fn plausible(presented: &str) -> bool {
    !presented.is_empty() && presented.len() <= MAX_REFRESH_TOKEN_LEN
}

/// The token stored under `key` (its [`token_hash`]), with its session.
fn find(conn: &mut Conn, key: &[u8]) -> Result<Option<Found>, DieselError> {
    let found = db::refresh_tokens::find_with_session(conn, key)?;
    Ok(found.map(|(token, session, role, disabled)| Found {
        token,
        session,
        role,
        disabled,
    }))
}

fn judge(found: &Found, now: i64, lifetimes: &Lifetimes) -> Verdict {
    let Found {
        token,
        session,
        disabled,
        ..
    } = found;
    // Inactivity ends the session only for its live token: a used one that old is reuse.
    match lifetimes.alive(now).lapse(session) {
        Some(Lapse::Ended) => Verdict::Refuse(RefreshError::SessionEnded),
        _ if *disabled => Verdict::End(EndReason::UserDisabled, RefreshError::SessionEnded),
        Some(Lapse::MaxAge) => Verdict::End(EndReason::Expired, RefreshError::Expired),
        Some(Lapse::Inactive) if token.used_at.is_none() => {
            Verdict::End(EndReason::Inactive, RefreshError::Expired)
        }
        _ => token.used_at.map_or(Verdict::Rotate, Verdict::Used),
    }
}

/// Rotates `presented` at `now` in the caller's write transaction. A refusal is the inner
/// `Err`: it commits too (it may have ended the session); the outer one is a failed query.
///
/// - a live token is marked used and replaced by its successor;
/// - the immediate predecessor of the live token, within `reuse_grace` of its use, is answered
///   with that same live successor and changes nothing;
/// - any other used token revokes the whole session and records `refresh_token_reuse`;
/// - a session past `refresh_ttl` of inactivity or past `session_max_age` is ended.
pub fn rotate(
    tx: &mut Tx<'_>,
    now: i64,
    lifetimes: &Lifetimes,
    secret: &ServerSecret,
    presented: &str,
    client: &ClientInfo,
) -> Result<Result<Rotated, RefreshError>, DieselError> {
    if !plausible(presented) {
        return Ok(Err(RefreshError::Unknown));
    }
    let key = token_hash(presented);
    // Serialize with every other rotation of this session before reading: what is read next is
    // what the last of them committed.
    db::lock_session_of_token(tx, &key)?;
    let Some(found) = find(tx, &key)? else {
        return Ok(Err(RefreshError::Unknown));
    };
    let used_at = match judge(&found, now, lifetimes) {
        Verdict::Rotate => {
            // Under the lock nobody else rotates or ends the session: the writes happen.
            let rotated = replace(tx, now, secret, presented, client, &found)?;
            return Ok(rotated.ok_or(RefreshError::SessionEnded));
        }
        Verdict::Used(used_at) => used_at,
        Verdict::End(reason, refusal) => {
            session::end(tx, &found.session, now, reason)?;
            return Ok(Err(refusal));
        }
        Verdict::Refuse(refusal) => return Ok(Err(refusal)),
    };
    let Found {
        token,
        session,
        role,
        ..
    } = found;

    // A used token: a racing tab's within the grace, or theft. The live successor was derived
    // with the session's key version as it is now, and its own issue time.
    let live_successor = racing_child(tx, &token, used_at, now, lifetimes)?
        .map(|child| {
            let successor = successor_token(
                secret,
                &session,
                presented,
                Issued::of_key(&child.token_hash),
            );
            (child, successor)
        })
        .filter(|(child, successor)| {
            crypto::constant_time_eq(&child.token_hash, &token_hash(successor))
        });
    if let Some((_, successor)) = live_successor {
        return Ok(Ok(Rotated {
            session,
            role,
            refresh_token: successor,
        }));
    }
    session::end(tx, &session, now, EndReason::RefreshTokenReuse)?;
    events::record(
        tx,
        now,
        EventKind::RefreshTokenReuse,
        Some(session.user_id),
        Some(session.id),
        client,
    )?;
    Ok(Err(RefreshError::Reused))
}

/// A live token's successor, made (not yet written): the rotation to answer with once the
/// writes succeed.
struct Successor {
    token_id: i64,
    rotated: Rotated,
    hash: Vec<u8>,
}

impl Successor {
    /// The successor of live token `found`, presented as `presented`, with the session moved to
    /// the current key version.
    fn of(secret: &ServerSecret, presented: &str, found: &Found) -> Successor {
        let mut session = found.session.clone();
        session.key_version = KEY_VERSION;
        let refresh_token = successor_token(secret, &session, presented, Issued::now());
        Successor {
            token_id: found.token.id,
            hash: token_hash(&refresh_token),
            rotated: Rotated {
                session,
                role: found.role.clone(),
                refresh_token,
            },
        }
    }

    fn replacement<'a>(&'a self, now: i64, client: &'a ClientInfo) -> Replacement<'a> {
        Replacement {
            token_id: self.token_id,
            session: &self.rotated.session,
            successor_hash: &self.hash,
            now,
            ip: &client.ip,
            user_agent: &client.user_agent,
        }
    }
}

/// Replaces live token `found` by its successor; `None` when it was no longer live, or its
/// session had ended, and nothing was written.
fn replace(
    conn: &mut Conn,
    now: i64,
    secret: &ServerSecret,
    presented: &str,
    client: &ClientInfo,
    found: &Found,
) -> Result<Option<Rotated>, DieselError> {
    let successor = Successor::of(secret, presented, found);
    let replaced = db::rotation_writes::rotate(conn, &successor.replacement(now, client))?;
    Ok(replaced.then_some(successor.rotated))
}

/// A rotation asked of a batch ([`rotate_unlocked`]).
pub struct Ask<'a> {
    pub now: i64,
    pub presented: &'a str,
    pub client: &'a ClientInfo,
}

/// The common rotations on PostgreSQL, many at once and without a transaction: one read for
/// all of them, then one call for all their writes, which rotates only tokens still live in
/// sessions still open (`db::rotation_writes::rotate_many`). A token doorman never issued is
/// refused at once (none appears later under a value a client already holds). An answer of
/// `None` leaves its token to [`rotate`]: anything but a plain rotation by [`judge`], a token
/// asked again in the same batch, and a token another request rotated (or whose session
/// ended) between the read and the write.
pub fn rotate_unlocked(
    pg: &mut PgConnection,
    lifetimes: &Lifetimes,
    secret: &ServerSecret,
    asks: &[Ask<'_>],
) -> Result<Vec<Option<Result<Rotated, RefreshError>>>, DieselError> {
    let keys: Vec<Option<Vec<u8>>> = asks
        .iter()
        .map(|ask| plausible(ask.presented).then(|| token_hash(ask.presented)))
        .collect();
    let wanted: Vec<&[u8]> = keys.iter().flatten().map(Vec::as_slice).collect();
    let found: HashMap<Vec<u8>, Found> = db::refresh_tokens::find_many_with_session(pg, &wanted)?
        .into_iter()
        .map(|(token, session, role, disabled)| {
            let found = Found {
                token,
                session,
                role,
                disabled,
            };
            (found.token.token_hash.clone(), found)
        })
        .collect();
    let mut answers = Vec::with_capacity(asks.len());
    let mut planned = Vec::new();
    let mut taken = HashSet::new();
    for (index, (ask, key)) in asks.iter().zip(&keys).enumerate() {
        let Some(found) = key.as_ref().and_then(|key| found.get(key)) else {
            answers.push(Some(Err(RefreshError::Unknown)));
            continue;
        };
        answers.push(None);
        if matches!(judge(found, ask.now, lifetimes), Verdict::Rotate)
            && taken.insert(found.token.id)
        {
            planned.push((index, Successor::of(secret, ask.presented, found)));
        }
    }
    let replacements: Vec<Replacement<'_>> = planned
        .iter()
        .map(|(index, successor)| successor.replacement(asks[*index].now, asks[*index].client))
        .collect();
    let rotated: HashSet<i64> = db::rotation_writes::rotate_many(pg, &replacements)?
        .into_iter()
        .collect();
    for (index, successor) in planned {
        if rotated.contains(&successor.token_id) {
            answers[index] = Some(Ok(successor.rotated));
        }
    }
    Ok(answers)
}

/// The live child of a used token presented within `reuse_grace` of its use: the token's
/// successor when the token is the immediate predecessor of the live one and a racing request
/// brought it. `None` means any use of it now is reuse.
pub fn racing_child(
    conn: &mut Conn,
    token: &RefreshTokenRow,
    used_at: i64,
    now: i64,
    lifetimes: &Lifetimes,
) -> Result<Option<RefreshTokenRow>, DieselError> {
    if now.saturating_sub(used_at) > lifetimes.reuse_grace {
        return Ok(None);
    }
    Ok(db::refresh_tokens::find_child(conn, token.id)?.filter(|child| child.used_at.is_none()))
}

/// What a logout with a refresh token did.
#[derive(Debug, PartialEq, Eq)]
pub enum LogoutOutcome {
    /// The session is ended, or already was.
    LoggedOut,
    /// A used token came back after the grace: the session is revoked as stolen.
    Reused,
}

/// Ends the session a refresh token belongs to, as a logout. A used token is judged by the
/// reuse rules first: only the immediate predecessor of the live token within `reuse_grace` (a
/// racing request) logs out; any other used token revokes the session as stolen. `None` for a
/// token doorman never issued.
pub fn end_by_refresh_token(
    tx: &mut Tx<'_>,
    now: i64,
    lifetimes: &Lifetimes,
    token: &str,
    client: &ClientInfo,
) -> Result<Option<LogoutOutcome>, DieselError> {
    let Some(row) = db::refresh_tokens::find_by_hash(tx, &token_hash(token))? else {
        return Ok(None);
    };
    let Some(session) = db::sessions::find(tx, row.session_id)? else {
        return Ok(None);
    };
    db::lock_session(tx, session.id)?;
    let reused = match row.used_at {
        Some(used_at) if session.ended_at.is_none() => {
            racing_child(tx, &row, used_at, now, lifetimes)?.is_none()
        }
        _ => false,
    };
    let (reason, kind) = if reused {
        (EndReason::RefreshTokenReuse, EventKind::RefreshTokenReuse)
    } else {
        (EndReason::Logout, EventKind::Logout)
    };
    if session::end(tx, &session, now, reason)? {
        events::record(
            tx,
            now,
            kind,
            Some(session.user_id),
            Some(session.id),
            client,
        )?;
    }
    Ok(Some(if reused {
        LogoutOutcome::Reused
    } else {
        LogoutOutcome::LoggedOut
    }))
}

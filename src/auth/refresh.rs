//! Refresh-token rotation: the one place where a refresh token is accepted, rotated, given its
//! grace, or recognised as stolen.

use diesel::result::Error as DieselError;

use super::keys::ServerSecret;
use super::session::{EndReason, KEY_VERSION, Lifetimes, successor_token, token_hash};
use crate::client::ClientInfo;
use crate::crypto;
use crate::db::{self, Conn, DbError, refresh_tokens::RefreshTokenRow, sessions::SessionRow};
use crate::events::{self, EventKind};

/// Longest refresh token worth looking up; real ones are 43 characters.
const MAX_REFRESH_TOKEN_LEN: usize = 128;

/// A successful rotation: the session, its user's role and the refresh token to hand out.
#[derive(Debug, Clone)]
pub struct Rotated {
    pub session: SessionRow,
    pub role: String,
    pub refresh_token: String,
}

/// Why a refresh token was not accepted.
#[derive(Debug)]
pub enum RefreshError {
    /// Not a token doorman issued.
    Unknown,
    /// Its session had already ended.
    SessionEnded,
    /// Its session reached `refresh_ttl` without use or `session_max_age`, and is now ended.
    Expired,
    /// A used token came back after the grace: the session (by public id) is now revoked.
    Reused {
        sid: String,
    },
    Db(DbError),
}

impl From<DbError> for RefreshError {
    fn from(e: DbError) -> Self {
        RefreshError::Db(e)
    }
}

impl From<DieselError> for RefreshError {
    fn from(e: DieselError) -> Self {
        RefreshError::Db(DbError::from(e))
    }
}

/// The decision of one rotation transaction; refusals that end the session commit too.
enum Decision {
    Rotated(Box<Rotated>),
    Refused(RefreshError),
}

/// Rotates `presented` at `now` in one write transaction.
///
/// - a live token is marked used and replaced by its successor;
/// - the immediate predecessor of the live token, within `reuse_grace` of its use, is answered
///   with that same live successor and changes nothing;
/// - any other used token revokes the whole session and records `refresh_token_reuse`;
/// - a session past `refresh_ttl` of inactivity or past `session_max_age` is ended.
pub fn rotate(
    conn: &mut Conn,
    now: i64,
    lifetimes: &Lifetimes,
    secret: &ServerSecret,
    presented: &str,
    client: &ClientInfo,
) -> Result<Rotated, RefreshError> {
    if presented.is_empty() || presented.len() > MAX_REFRESH_TOKEN_LEN {
        return Err(RefreshError::Unknown);
    }
    let decision = db::write_transaction(conn, |conn| {
        decide(conn, now, lifetimes, secret, presented, client)
    })?;
    match decision {
        Decision::Rotated(rotated) => Ok(*rotated),
        Decision::Refused(why) => Err(why),
    }
}

fn decide(
    conn: &mut Conn,
    now: i64,
    lifetimes: &Lifetimes,
    secret: &ServerSecret,
    presented: &str,
    client: &ClientInfo,
) -> Result<Decision, DieselError> {
    let hash = token_hash(presented);
    let Some(mut found) = db::refresh_tokens::find_with_session(conn, &hash)? else {
        return Ok(Decision::Refused(RefreshError::Unknown));
    };
    // Serialize with every other rotation of this session; where that meant waiting for a row
    // lock, read again: a racing rotation may have used the token meanwhile.
    if db::lock_session(conn, found.0.session_id)? {
        match db::refresh_tokens::find_with_session(conn, &hash)? {
            Some(fresh) => found = fresh,
            None => return Ok(Decision::Refused(RefreshError::Unknown)),
        }
    }
    let (token, session, role, disabled) = found;
    if session.ended_at.is_some() {
        return Ok(Decision::Refused(RefreshError::SessionEnded));
    }
    if disabled {
        db::sessions::end(conn, session.id, now, EndReason::UserDisabled.as_str())?;
        return Ok(Decision::Refused(RefreshError::SessionEnded));
    }
    if now >= session.expires_at {
        db::sessions::end(conn, session.id, now, EndReason::Expired.as_str())?;
        return Ok(Decision::Refused(RefreshError::Expired));
    }
    let Some(used_at) = token.used_at else {
        if now >= token.created_at.saturating_add(lifetimes.refresh_ttl) {
            db::sessions::end(conn, session.id, now, EndReason::Inactive.as_str())?;
            return Ok(Decision::Refused(RefreshError::Expired));
        }
        let mut session = session;
        session.key_version = KEY_VERSION;
        let successor = successor_token(secret, &session, presented);
        db::refresh_tokens::mark_used(conn, token.id, now)?;
        db::refresh_tokens::insert(
            conn,
            session.id,
            &token_hash(&successor),
            Some(token.id),
            now,
        )?;
        db::sessions::touch(conn, &session, now, &client.ip, &client.user_agent)?;
        return Ok(Decision::Rotated(Box::new(Rotated {
            session,
            role,
            refresh_token: successor,
        })));
    };

    // A used token: a racing tab's within the grace, or theft. The live successor was derived
    // with the session's key version as it is now.
    let successor = successor_token(secret, &session, presented);
    let is_live_successor = racing_child(conn, &token, used_at, now, lifetimes)?
        .is_some_and(|child| crypto::constant_time_eq(&child.token_hash, &token_hash(&successor)));
    if is_live_successor {
        return Ok(Decision::Rotated(Box::new(Rotated {
            session,
            role,
            refresh_token: successor,
        })));
    }
    db::sessions::end(conn, session.id, now, EndReason::RefreshTokenReuse.as_str())?;
    events::record(
        conn,
        now,
        EventKind::RefreshTokenReuse,
        Some(session.user_id),
        Some(session.id),
        client,
    )?;
    Ok(Decision::Refused(RefreshError::Reused {
        sid: session.public_id,
    }))
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

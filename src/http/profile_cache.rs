//! What the profile page shows of an account and its session, read from the database and
//! rendered once per access token: viewing the page again with the same token reads nothing and
//! renders only the page around these parts.
//!
//! An entry serves only the token it was made for (a rotation, which may change the session's
//! device and address, brings a new `iat`) and only while the account's security events are
//! unchanged ([`crate::db::changes`]): events written here show at once, those written by
//! another instance within `revocation_poll`.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use rocket_dyn_templates::Metadata;
use serde_json::{Value, json};

use crate::auth::tokens::AccessClaims;
use crate::db::{self, Conn, Db, DbError};
use crate::http::device_labels::DeviceLabels;
use crate::http::error::AppError;
use crate::http::page as views;

/// How many of an account's own security events its profile lists.
const PROFILE_EVENTS: i64 = 20;

/// Sessions remembered (a few KiB of HTML each, so a few MiB at most); past this the cache
/// starts afresh.
const MAX_ENTRIES: usize = 1024;

pub struct ProfileCache {
    entries: RwLock<HashMap<(i64, String), Entry>>,
    labels: DeviceLabels,
}

/// The page's parts that come from the database, as HTML.
pub struct ProfileParts {
    /// Reuse notices and the account and session facts.
    pub account: String,
    /// The account's recent security events.
    pub events: String,
    /// The whole page as a plain view shows it (no one-time message, no form error), made at
    /// the first such view: the same token always sees the same navigation and CSRF token.
    pub page: std::sync::OnceLock<String>,
}

struct Entry {
    iat: i64,
    exp: i64,
    stamp: u64,
    parts: Arc<ProfileParts>,
}

impl ProfileCache {
    pub fn new(labels: DeviceLabels) -> ProfileCache {
        ProfileCache {
            entries: RwLock::default(),
            labels,
        }
    }

    /// The parts for the holder of `claims`.
    pub async fn parts(
        &self,
        db: &Db,
        templates: &Metadata<'_>,
        claims: &AccessClaims,
    ) -> Result<Arc<ProfileParts>, AppError> {
        let user_id = claims.user_id().ok_or(AppError::NotFound)?;
        let key = (user_id, claims.sid.clone());
        if let Some(parts) = self.fresh(db, &key, claims) {
            return Ok(parts);
        }
        let stamp = db.changes().stamp();
        let (sid, labels, at) = (claims.sid.clone(), self.labels.clone(), claims.iat);
        let mut facts = db
            .run(move |conn| load(conn, user_id, &sid, &labels, at))
            .await?
            .ok_or(AppError::NotFound)?;
        facts["access_expires_at"] = json!(claims.exp);
        let render = |name: &'static str| {
            templates
                .render(name, &facts)
                .map(|(_, html)| html)
                .ok_or(AppError::Render(name))
        };
        let parts = Arc::new(ProfileParts {
            account: render("_profile_account")?,
            events: render("_profile_events")?,
            page: std::sync::OnceLock::new(),
        });
        let mut entries = crate::sync::write(&self.entries);
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(
            key,
            Entry {
                iat: claims.iat,
                exp: claims.exp,
                stamp,
                parts: parts.clone(),
            },
        );
        Ok(parts)
    }

    fn fresh(
        &self,
        db: &Db,
        key: &(i64, String),
        claims: &AccessClaims,
    ) -> Option<Arc<ProfileParts>> {
        let entries = crate::sync::read(&self.entries);
        let entry = entries.get(key)?;
        let same_token = entry.iat == claims.iat && entry.exp == claims.exp;
        (same_token && !db.changes().changed_since(key.0, entry.stamp)).then(|| entry.parts.clone())
    }
}

fn load(
    conn: &mut Conn,
    user_id: i64,
    sid: &str,
    labels: &DeviceLabels,
    now: i64,
) -> Result<Option<Value>, AppError> {
    let Some(account) = db::users::find(conn, user_id)? else {
        return Ok(None);
    };
    let Some(session) = db::sessions::find_by_public_id(conn, sid)? else {
        return Ok(None);
    };
    if session.ended_at.is_some() {
        return Err(AppError::SessionEnded);
    }
    let events = db::events::latest_for_user(conn, user_id, PROFILE_EVENTS)?;
    let reused = reuse_notices(conn, user_id, session.id, labels)?;
    let new_devices = new_device_notices(conn, &events, session.id, labels, now)?;
    let events: Vec<_> = events
        .iter()
        .map(|e| views::event(e, None, labels))
        .collect();
    Ok(Some(json!({
        "username": account.username,
        "role": account.role,
        "created_at": account.created_at,
        "session": views::session(&session, Some(sid), labels),
        "events": events,
        "reused_devices": reused,
        "new_devices": new_devices,
    })))
}

/// How long after a sign-in from a new device the account's other sessions mention it.
const NEW_DEVICE_NOTICE_SECS: i64 = 7 * 86_400;

/// Sign-ins from new devices among the recent events, other than this session, whose sessions
/// are still open: the account's other pages say so, as the mail did.
fn new_device_notices(
    conn: &mut Conn,
    events: &[db::events::EventRow],
    current_id: i64,
    labels: &DeviceLabels,
    now: i64,
) -> Result<Vec<Value>, DbError> {
    let mut notices = Vec::new();
    for event in events {
        let recent = event.created_at > now - NEW_DEVICE_NOTICE_SECS;
        let Some(session_id) = event.session_id.filter(|id| *id != current_id) else {
            continue;
        };
        if !recent || event.kind != crate::core::events::EventKind::NewDeviceLogin.as_str() {
            continue;
        }
        let open = db::sessions::find(conn, session_id)?.is_some_and(|s| s.ended_at.is_none());
        if open {
            notices.push(json!({
                "device": labels.label(&event.user_agent),
                "ip": event.ip,
                "at": event.created_at,
            }));
        }
    }
    Ok(notices)
}

/// Sessions ended by reuse detection that this session is the first sign-in after: the user
/// should hear which device was affected.
fn reuse_notices(
    conn: &mut Conn,
    user_id: i64,
    current_id: i64,
    labels: &DeviceLabels,
) -> Result<Vec<String>, DbError> {
    let mut devices = Vec::new();
    for ended in db::sessions::ended_for_user(conn, user_id, 20)? {
        let (Some(at), Some("refresh_token_reuse")) = (ended.ended_at, ended.end_reason.as_deref())
        else {
            continue;
        };
        if db::sessions::first_started_after(conn, user_id, at)? == Some(current_id) {
            devices.push(labels.label(&ended.last_user_agent));
        }
    }
    Ok(devices)
}

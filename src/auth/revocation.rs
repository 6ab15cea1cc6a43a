//! Revoked sessions, known in memory so access tokens stay verifiable without a database read.
//!
//! An instance learns of its own revocations at once and of other instances' by reloading the
//! sessions ended, or whose user changed role, within the last `access_ttl`, every
//! `revocation_poll`. Older entries are dropped: no access token issued before them is still
//! valid. An access token refused here makes the fairing try the refresh token, which fails for
//! an ended session and carries the new role for a changed one.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use rocket::fairing::AdHoc;
use rocket::tokio::time::sleep;

use super::tokens::{AccessClaims, LEEWAY};
use crate::clock::SharedClock;
use crate::config::Config;
use crate::db::{self, Changed, Db, DbError};

#[derive(Debug, Clone)]
struct Entry {
    /// The session ended: every access token of it is refused.
    ended: bool,
    /// The role access tokens of the session must carry (after a role change).
    role: Option<String>,
    /// When this instance learned of it, for pruning.
    seen_at: i64,
}

/// The in-memory set, shared by the request path and the poller.
#[derive(Clone, Default)]
pub struct Revocations {
    entries: Arc<RwLock<HashMap<String, Entry>>>,
}

/// A session's revocation state as stored.
pub type Change = db::sessions::RevocationRow;

/// What is known of one session.
enum Fact {
    Ended,
    Role(String),
}

impl Revocations {
    /// Whether an otherwise valid access token may still be used.
    pub fn allows(&self, claims: &AccessClaims) -> bool {
        crate::sync::read(&self.entries)
            .get(&claims.sid)
            .is_none_or(|entry| {
                !entry.ended && entry.role.as_ref().is_none_or(|role| *role == claims.role)
            })
    }

    /// Whether the session of these claims is known to have ended (rather than to need new claims).
    pub fn has_ended(&self, claims: &AccessClaims) -> bool {
        crate::sync::read(&self.entries)
            .get(&claims.sid)
            .is_some_and(|e| e.ended)
    }

    /// Learns what a committed write of this instance changed: access tokens of the sessions it
    /// ended are refused from now on, those of renewed sessions must carry the new role.
    pub fn learn(&self, changed: &Changed, now: i64) {
        if changed.ended.is_empty() && changed.renewed.is_empty() {
            return;
        }
        let ended = changed.ended.iter().map(|sid| (sid.clone(), Fact::Ended));
        let renewed = changed
            .renewed
            .iter()
            .map(|(sid, role)| (sid.clone(), Fact::Role(role.clone())));
        self.insert(ended.chain(renewed), now);
    }

    fn insert(&self, items: impl Iterator<Item = (String, Fact)>, now: i64) {
        let mut entries = crate::sync::write(&self.entries);
        for (sid, fact) in items {
            let entry = entries.entry(sid).or_insert(Entry {
                ended: false,
                role: None,
                seen_at: now,
            });
            match fact {
                Fact::Ended => entry.ended = true,
                Fact::Role(role) => entry.role = Some(role),
            }
            entry.seen_at = entry.seen_at.max(now);
        }
    }

    /// Merges what the database reported, after forgetting entries older than any access token
    /// that could still be valid.
    pub fn apply(&self, changes: Vec<Change>, now: i64, access_ttl: i64) {
        crate::sync::write(&self.entries).retain(|_, e| e.seen_at >= now - access_ttl - LEEWAY);
        let items = changes
            .into_iter()
            .filter_map(
                |(sid, ended_at, renew_at, role)| match (ended_at, renew_at) {
                    (Some(_), _) => Some((sid, Fact::Ended)),
                    (None, Some(_)) => Some((sid, Fact::Role(role))),
                    (None, None) => None,
                },
            );
        self.insert(items, now);
    }
}

/// What ended or must renew within the last `access_ttl`.
pub fn load_changes(
    conn: &mut db::Conn,
    now: i64,
    access_ttl: i64,
) -> Result<Vec<Change>, DbError> {
    Ok(db::sessions::revoked_since(
        conn,
        now - access_ttl - LEEWAY,
    )?)
}

/// How long an event's transaction may take to commit after its `created_at`: the poller looks
/// that much further back (the pool waits at most `database_timeout`, 5 s by default).
const EVENT_COMMIT_SLACK: i64 = 30;

/// Every `revocation_poll` until the server shuts down: reloads revocations, and marks the users
/// whose security events any instance wrote lately as changed (for cached pages).
pub fn poller() -> AdHoc {
    AdHoc::on_liftoff("revocation poll", |rocket| {
        Box::pin(async move {
            let (Some(config), Some(db), Some(clock), Some(revocations)) = (
                rocket.state::<Config>(),
                rocket.state::<Db>(),
                rocket.state::<SharedClock>(),
                rocket.state::<Revocations>(),
            ) else {
                return;
            };
            let (db, clock, revocations) = (db.clone(), clock.clone(), revocations.clone());
            let poll_secs = config.revocation_poll.as_i64();
            let poll = Duration::from_secs(config.revocation_poll.0);
            let access_ttl = config.access_ttl.as_i64();
            let shutdown = rocket.shutdown();
            rocket::tokio::spawn(async move {
                loop {
                    rocket::tokio::select! {
                        () = shutdown.clone() => break,
                        () = sleep(poll) => {}
                    }
                    let now = clock.now();
                    let changes = db.clone();
                    let since = now - poll_secs - LEEWAY - EVENT_COMMIT_SLACK;
                    match db
                        .run(move |conn| {
                            changes.changes().catch_up(conn, since)?;
                            load_changes(conn, now, access_ttl)
                        })
                        .await
                    {
                        Ok(changes) => revocations.apply(changes, now, access_ttl),
                        Err(e) => rocket::warn!("revocation poll: {e}"),
                    }
                }
            });
        })
    })
}

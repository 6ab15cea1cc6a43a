//! A write transaction and what it changed. Writes note their effects here (event log lines,
//! users whose pages are stale, sessions that ended or must renew their access tokens) instead
//! of acting on them; [`AfterCommit`] applies them once the transaction has committed, for every
//! writer alike (web, API, command line). A rolled-back write leaves no trace outside the
//! database.

use std::sync::{Arc, OnceLock};

use diesel::Connection;
use diesel::result::Error as DieselError;

use super::Conn;
use super::changes::UserChanges;

/// What a committed write changed beyond its rows.
#[derive(Debug, Default)]
pub struct Changed {
    /// One log line per security event written.
    pub log_lines: Vec<String>,
    /// Users whose security events changed.
    pub users: Vec<i64>,
    /// Sessions (by public id) that ended.
    pub ended: Vec<String>,
    /// Sessions (by public id) whose access tokens must now carry this role.
    pub renewed: Vec<(String, String)>,
    /// Mail was written to the outbox.
    pub mail: bool,
}

impl Changed {
    fn extend(&mut self, other: Changed) {
        self.log_lines.extend(other.log_lines);
        self.users.extend(other.users);
        self.ended.extend(other.ended);
        self.renewed.extend(other.renewed);
        self.mail |= other.mail;
    }
}

/// A connection inside a write transaction, collecting what the transaction changed. Queries
/// take it where they take a [`Conn`] (it dereferences to one).
pub struct Tx<'c> {
    conn: &'c mut Conn,
    changed: Changed,
}

impl<'c> Tx<'c> {
    pub(super) fn new(conn: &'c mut Conn) -> Tx<'c> {
        Tx {
            conn,
            changed: Changed::default(),
        }
    }

    pub(super) fn into_changed(self) -> Changed {
        self.changed
    }

    /// A security event of `user` was written; `line` is logged once it commits.
    pub fn event_written(&mut self, user: Option<i64>, line: String) {
        self.changed.log_lines.push(line);
        self.changed.users.extend(user);
    }

    /// A session ended: its access tokens are refused once this commits.
    pub fn session_ended(&mut self, public_id: String) {
        self.changed.ended.push(public_id);
    }

    /// Mail was queued: the sender may start once this commits.
    pub fn mail_queued(&mut self) {
        self.changed.mail = true;
    }

    /// A session's access tokens must be renewed to carry `role`.
    pub fn access_renewed(&mut self, public_id: String, role: String) {
        self.changed.renewed.push((public_id, role));
    }

    /// Runs `f` in a savepoint: when it fails, only its own writes (and notes) are undone and
    /// the transaction goes on (on PostgreSQL a failed statement would otherwise abort it).
    pub fn savepoint<T>(
        &mut self,
        f: impl FnOnce(&mut Tx<'_>) -> Result<T, DieselError>,
    ) -> Result<T, DieselError> {
        let (value, changed) = self.conn.transaction(|conn| {
            let mut inner = Tx::new(conn);
            let value = f(&mut inner)?;
            Ok::<_, DieselError>((value, inner.changed))
        })?;
        self.changed.extend(changed);
        Ok(value)
    }
}

impl std::ops::Deref for Tx<'_> {
    type Target = Conn;

    fn deref(&self) -> &Conn {
        self.conn
    }
}

impl std::ops::DerefMut for Tx<'_> {
    fn deref_mut(&mut self) -> &mut Conn {
        self.conn
    }
}

type Listener = Box<dyn Fn(&Changed) + Send + Sync>;

/// Applies what committed writes changed: logs their events, marks their users as changed, and
/// tells the listener the process registered at start (the in-memory revocation set).
#[derive(Default)]
pub struct AfterCommit {
    changes: UserChanges,
    listener: OnceLock<Listener>,
}

impl AfterCommit {
    pub(super) fn apply(&self, changed: &Changed) {
        for line in &changed.log_lines {
            println!("{line}");
        }
        self.changes.mark(&changed.users);
        if let Some(listener) = self.listener.get() {
            listener(changed);
        }
    }

    pub(super) fn changes(&self) -> &UserChanges {
        &self.changes
    }

    /// Registers the one listener; false when one already is.
    pub(super) fn listen(&self, listener: Listener) -> bool {
        self.listener.set(listener).is_ok()
    }
}

/// Shared by every clone of a [`super::Db`].
pub(super) type SharedAfterCommit = Arc<AfterCommit>;

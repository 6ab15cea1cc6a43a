//! Which users' security events changed, as far as this process knows, so caches of what a
//! user's pages show can tell when they are stale without reading the database.
//!
//! Every committed write marks the users whose events it wrote ([`super::Tx`]); the poller
//! marks users whose events other instances wrote.

use std::collections::HashMap;
use std::sync::RwLock;

/// Users remembered one by one; past this, all are forgotten and everything older counts as
/// changed.
const MAX_MARKED: usize = 100_000;

#[derive(Default)]
pub struct UserChanges {
    state: RwLock<State>,
}

#[derive(Default)]
struct State {
    /// Bumped by every mark: a stamp is its value when a reader started.
    counter: u64,
    /// Stamps older than this are stale for every user (the marks were forgotten).
    floor: u64,
    marked: HashMap<i64, u64>,
}

impl UserChanges {
    /// Taken before reading what a cache will hold.
    pub fn stamp(&self) -> u64 {
        self.read().counter
    }

    /// Whether `user`'s events changed after `stamp` was taken.
    pub fn changed_since(&self, user: i64, stamp: u64) -> bool {
        let state = self.read();
        stamp < state.floor || state.marked.get(&user).is_some_and(|&at| at > stamp)
    }

    pub fn mark(&self, users: &[i64]) {
        if users.is_empty() {
            return;
        }
        let mut state = crate::sync::write(&self.state);
        state.counter += 1;
        let at = state.counter;
        if state.marked.len() + users.len() > MAX_MARKED {
            state.marked.clear();
            state.floor = at;
        }
        for &user in users {
            state.marked.insert(user, at);
        }
    }

    /// Marks the users with events created since `since`, written by any instance. A window
    /// rather than a position: events may commit out of id order.
    pub fn catch_up(&self, conn: &mut super::Conn, since: i64) -> diesel::QueryResult<()> {
        self.mark(&super::events::users_since(conn, since)?);
        Ok(())
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        crate::sync::read(&self.state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mark_after_the_stamp_is_a_change() {
        let changes = UserChanges::default();
        changes.mark(&[1]);
        let stamp = changes.stamp();
        assert!(!changes.changed_since(1, stamp));
        assert!(!changes.changed_since(2, stamp));
        changes.mark(&[2]);
        assert!(!changes.changed_since(1, stamp));
        assert!(changes.changed_since(2, stamp));
    }

    #[test]
    fn forgetting_marks_makes_older_stamps_stale() {
        let changes = UserChanges::default();
        let stamp = changes.stamp();
        let many: Vec<i64> = (0..=MAX_MARKED as i64).collect();
        changes.mark(&many);
        assert!(changes.changed_since(-1, stamp));
        assert!(!changes.changed_since(-1, changes.stamp()));
    }
}

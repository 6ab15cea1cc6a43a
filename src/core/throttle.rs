//! Sign-in throttling. Attempts are counted in the database (so a lockout holds across restarts
//! and instances) per account, per client address, per known device, and sign-ups per address.
//!
//! An attempt is counted *before* its password is checked, in one write transaction with the
//! check of the limit ([`ThrottlePolicy::reserve`]): however many attempts arrive at once, at
//! most the limit of them is ever checked in a window. A failed attempt stays counted; a
//! successful one is taken back ([`ThrottlePolicy::forgive`]).

use super::known_device::KnownDevice;
use crate::config::Config;
use crate::db::{self, Conn};

const ACCOUNT: &str = "account";
const ADDRESS: &str = "address";
const DEVICE: &str = "device";
const SIGNUP: &str = "signup";
const RESET_ACCOUNT: &str = "reset-account";
const RESET_ADDRESS: &str = "reset-address";

/// Longest account key stored; longer names cannot exist anyway.
const MAX_SUBJECT_CHARS: usize = 64;

#[derive(Debug, Clone, Copy)]
pub struct ThrottlePolicy {
    pub max_failures: i64,
    pub window: i64,
    pub max_signups: i64,
}

impl From<&Config> for ThrottlePolicy {
    fn from(config: &Config) -> Self {
        ThrottlePolicy {
            max_failures: i64::from(config.login_max_failures),
            window: config.login_window.as_i64(),
            max_signups: i64::from(config.signup_max_per_window),
        }
    }
}

/// Who an attempt counts against: (scope, subject) pairs.
#[derive(Debug, Clone)]
pub struct Subjects(Vec<(&'static str, String)>);

impl Subjects {
    /// A sign-in attempt on an account from a client that is not one of its known devices.
    fn account(username: &str, address: &str) -> Subjects {
        // Control characters cannot be in a username, and PostgreSQL refuses NUL in text.
        let account = db::users::username_key(username)
            .chars()
            .filter(|c| !c.is_control())
            .take(MAX_SUBJECT_CHARS)
            .collect();
        Subjects(vec![(ACCOUNT, account), (ADDRESS, address.to_owned())])
    }

    /// A sign-in attempt from a known device of the account: counted for that device alone.
    fn device(device_id: &str) -> Subjects {
        Subjects(vec![(DEVICE, device_id.to_owned())])
    }

    /// Who a password attempt on `username` counts against: a known device of the account
    /// alone (so failures elsewhere never lock it out), any other client the account and its
    /// address.
    pub fn attempt(known: Option<&KnownDevice>, username: &str, address: &str) -> Subjects {
        match known {
            Some(device) => Subjects::device(&device.device_id),
            None => Subjects::account(username, address),
        }
    }

    /// A sign-up from a client address.
    pub fn signup(address: &str) -> Subjects {
        Subjects(vec![(SIGNUP, address.to_owned())])
    }

    /// A password-reset request for what was typed as `login` (a username or an address,
    /// whether or not it exists) from a client address.
    pub fn reset(login: &str, address: &str) -> Subjects {
        let login = login
            .to_lowercase()
            .chars()
            .filter(|c| !c.is_control())
            .take(254)
            .collect();
        Subjects(vec![
            (RESET_ACCOUNT, login),
            (RESET_ADDRESS, address.to_owned()),
        ])
    }
}

/// An attempt counted ahead of its check.
#[derive(Debug, Clone)]
pub struct Reservation {
    ids: Vec<i64>,
    subjects: Subjects,
}

impl ThrottlePolicy {
    fn limit(&self, scope: &str) -> i64 {
        if scope == SIGNUP {
            self.max_signups
        } else {
            self.max_failures
        }
    }

    /// Counts an attempt of `subjects` at `now`, unless one of them has used up its attempts in
    /// the window: then `Err(seconds to wait)` and nothing is counted. Call it inside a write
    /// transaction; it serializes with every other reservation of the same subjects, on
    /// SQLite by the write lock, on PostgreSQL by advisory locks.
    pub fn reserve(
        &self,
        conn: &mut Conn,
        now: i64,
        subjects: &Subjects,
    ) -> diesel::QueryResult<Result<Reservation, i64>> {
        let keys: Vec<String> = subjects
            .0
            .iter()
            .map(|(scope, subject)| format!("doorman/throttle/{scope}/{subject}"))
            .collect();
        db::lock_keys(conn, &keys)?;
        if let Some(wait) = self.retry_after(conn, now, subjects)? {
            return Ok(Err(wait));
        }
        db::login_attempts::prune(conn, now - self.window)?;
        let mut ids = Vec::with_capacity(subjects.0.len());
        for (scope, subject) in &subjects.0 {
            ids.push(db::login_attempts::insert(conn, scope, subject, now)?);
        }
        Ok(Ok(Reservation {
            ids,
            subjects: subjects.clone(),
        }))
    }

    /// `Some(seconds)` to wait when a subject has used up its attempts.
    fn retry_after(
        &self,
        conn: &mut Conn,
        now: i64,
        subjects: &Subjects,
    ) -> diesel::QueryResult<Option<i64>> {
        let since = now - self.window;
        let mut wait = None;
        for (scope, subject) in &subjects.0 {
            let limit = self.limit(scope);
            let times = db::login_attempts::recent(conn, scope, subject, since, limit)?;
            if times.len() as i64 >= limit {
                // Free again once the oldest counted attempt leaves the window.
                let until = times[0] + self.window - now;
                wait = Some(wait.unwrap_or(0).max(until.clamp(1, self.window)));
            }
        }
        Ok(wait)
    }

    /// The attempt succeeded: it no longer counts, and the earlier failures of its account or
    /// device are forgiven (not its address's: one good password does not clear a spray).
    pub fn forgive(conn: &mut Conn, reservation: &Reservation) -> diesel::QueryResult<()> {
        db::login_attempts::delete(conn, &reservation.ids)?;
        for (scope, subject) in &reservation.subjects.0 {
            if matches!(*scope, ACCOUNT | DEVICE) {
                db::login_attempts::clear(conn, scope, subject)?;
            }
        }
        Ok(())
    }

    /// The attempt did not happen after all (a sign-up whose name was taken).
    pub fn release(conn: &mut Conn, reservation: &Reservation) -> diesel::QueryResult<()> {
        db::login_attempts::delete(conn, &reservation.ids)
    }
}

//! Login throttling: failed logins counted per account and per client address in the database,
//! so a lockout holds across restarts and instances.

use crate::config::Config;
use crate::db::{self, Conn};

const ACCOUNT: &str = "account";
const ADDRESS: &str = "address";

/// Longest account key stored; longer names cannot exist anyway.
const MAX_SUBJECT_CHARS: usize = 64;

#[derive(Debug, Clone, Copy)]
pub struct ThrottlePolicy {
    pub max_failures: i64,
    pub window: i64,
}

impl From<&Config> for ThrottlePolicy {
    fn from(config: &Config) -> Self {
        ThrottlePolicy {
            max_failures: i64::from(config.login_max_failures),
            window: config.login_window.as_i64(),
        }
    }
}

/// Who a login attempt counts against.
pub struct Subjects {
    account: String,
    address: String,
}

impl Subjects {
    pub fn new(username: &str, address: &str) -> Subjects {
        Subjects {
            // Control characters cannot be in a username, and PostgreSQL refuses NUL in text.
            account: db::users::username_key(username)
                .chars()
                .filter(|c| !c.is_control())
                .take(MAX_SUBJECT_CHARS)
                .collect(),
            address: address.to_owned(),
        }
    }

    fn each(&self) -> [(&'static str, &str); 2] {
        [(ACCOUNT, &self.account), (ADDRESS, &self.address)]
    }
}

impl ThrottlePolicy {
    /// `Some(seconds)` to wait when the account or the address has used up its failures.
    pub fn retry_after(
        &self,
        conn: &mut Conn,
        now: i64,
        subjects: &Subjects,
    ) -> diesel::QueryResult<Option<i64>> {
        let since = now - self.window;
        let mut wait = None;
        for (scope, subject) in subjects.each() {
            let times = db::login_failures::recent(conn, scope, subject, since, self.max_failures)?;
            if times.len() as i64 >= self.max_failures {
                // Unlocked once the oldest counted failure leaves the window.
                let until = times[0] + self.window - now;
                wait = Some(wait.unwrap_or(0).max(until.clamp(1, self.window)));
            }
        }
        Ok(wait)
    }

    pub fn record_failure(
        &self,
        conn: &mut Conn,
        now: i64,
        subjects: &Subjects,
    ) -> diesel::QueryResult<()> {
        db::login_failures::prune(conn, now - self.window)?;
        for (scope, subject) in subjects.each() {
            db::login_failures::insert(conn, scope, subject, now)?;
        }
        Ok(())
    }

    /// A successful login forgives the account's failures (not the address's).
    pub fn record_success(conn: &mut Conn, subjects: &Subjects) -> diesel::QueryResult<()> {
        db::login_failures::clear(conn, ACCOUNT, &subjects.account)
    }
}

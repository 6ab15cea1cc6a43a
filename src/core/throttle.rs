//! Attempt counting. Attempts are counted in the database (so a lockout holds across restarts
//! and instances): sign-ins per account, per client address and per known device; second-factor
//! codes per account; sign-ups, password-reset requests and anonymous passkey starts per
//! address; reset mails per account; address changes per account and verification mails per
//! target address.
//!
//! An attempt is counted *before* its password or code is checked, in one write transaction
//! with the check of the limit ([`ThrottlePolicy::reserve`]): however many attempts arrive at
//! once, at most the limit of them is ever checked in a window. A failed attempt stays counted;
//! a successful one is taken back ([`ThrottlePolicy::forgive`]).

use std::net::{IpAddr, Ipv6Addr};

use super::known_device::KnownDevice;
use crate::config::Config;
use crate::db::{self, Conn};

/// What a counter counts, and so its limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    /// Password attempts on an account (by lower-cased name) from clients it does not know.
    Account,
    /// Password attempts from a client address.
    Address,
    /// Password attempts from one known device.
    Device,
    /// Password attempts from all known devices of an account (by id): the ceiling that holds
    /// however many device tokens one has collected.
    Devices,
    /// Second-factor codes checked for an account (by id); only a finished second step (or
    /// sudo) forgives them, never a right password.
    Codes,
    Signup,
    ResetAddress,
    /// Reset mails sent to an account (by id), whatever was typed to ask for them.
    ResetMail,
    /// Address changes of an account (by id).
    AddressChange,
    /// Verification mails to one address (by its lower-cased key).
    VerifyMail,
    /// Anonymous passkey sign-ins started from a client address.
    PasskeyStart,
}

impl Scope {
    fn name(self) -> &'static str {
        match self {
            Scope::Account => "account",
            Scope::Address => "address",
            Scope::Device => "device",
            Scope::Devices => "devices",
            Scope::Codes => "codes",
            Scope::Signup => "signup",
            Scope::ResetAddress => "reset-address",
            Scope::ResetMail => "reset-mail",
            Scope::AddressChange => "address-change",
            Scope::VerifyMail => "verify-mail",
            Scope::PasskeyStart => "passkey-start",
        }
    }
}

/// Longest account key stored; longer names cannot exist anyway.
const MAX_SUBJECT_CHARS: usize = 64;

/// Anonymous passkey starts per address, per failed login allowed: a start costs no hashing,
/// but each keeps a ceremony row for five minutes. A passkey sign-in clears its address's.
const PASSKEY_STARTS_PER_FAILURE: i64 = 2;

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

/// The throttle subject of a client address: IPv6 clients by their /64 (one customer's
/// network, which hands out addresses from it freely), everyone else by the address.
pub fn address_subject(ip: &str) -> String {
    match ip.parse::<IpAddr>() {
        Ok(IpAddr::V6(v6)) if v6.to_ipv4_mapped().is_none() => {
            let [a, b, c, d, ..] = v6.segments();
            format!("{}/64", Ipv6Addr::new(a, b, c, d, 0, 0, 0, 0))
        }
        Ok(IpAddr::V6(v6)) => v6
            .to_ipv4_mapped()
            .map_or_else(String::new, |v4| v4.to_string()),
        _ => ip.to_owned(),
    }
}

/// Who an attempt counts against: (scope, subject) pairs.
#[derive(Debug, Clone)]
pub struct Subjects(Vec<(Scope, String)>);

impl Subjects {
    /// A sign-in attempt on an account from a client that is not one of its known devices.
    fn account(username: &str, address: &str) -> Subjects {
        // Control characters cannot be in a username, and PostgreSQL refuses NUL in text.
        let account = db::users::username_key(username)
            .chars()
            .filter(|c| !c.is_control())
            .take(MAX_SUBJECT_CHARS)
            .collect();
        Subjects(vec![
            (Scope::Account, account),
            (Scope::Address, address_subject(address)),
        ])
    }

    /// A sign-in attempt from a known device of the account: counted for that device, and
    /// against the ceiling of all the account's known devices.
    fn device(device: &KnownDevice) -> Subjects {
        Subjects(vec![
            (Scope::Device, device.device_id.clone()),
            (Scope::Devices, device.user_id.to_string()),
        ])
    }

    /// Who a password attempt on `username` counts against: a known device of the account
    /// alone (so failures elsewhere never lock it out), any other client the account and its
    /// address.
    pub fn attempt(known: Option<&KnownDevice>, username: &str, address: &str) -> Subjects {
        match known {
            Some(device) => Subjects::device(device),
            None => Subjects::account(username, address),
        }
    }

    /// A second-factor code for account `user_id`: a failed login like a password attempt,
    /// and counted against the account's codes, which no right password clears.
    pub fn code(
        known: Option<&KnownDevice>,
        user_id: i64,
        username: &str,
        address: &str,
    ) -> Subjects {
        let mut subjects = Subjects::attempt(known, username, address);
        subjects.0.extend(Subjects::codes(user_id).0);
        subjects
    }

    /// A second-factor code for account `user_id`, counted against its codes alone (`/sudo`,
    /// whose password attempt counts the rest).
    pub fn codes(user_id: i64) -> Subjects {
        Subjects(vec![(Scope::Codes, user_id.to_string())])
    }

    /// A sign-up from a client address.
    pub fn signup(address: &str) -> Subjects {
        Subjects(vec![(Scope::Signup, address_subject(address))])
    }

    /// A password-reset request from a client address (whatever it names).
    pub fn reset_request(address: &str) -> Subjects {
        Subjects(vec![(Scope::ResetAddress, address_subject(address))])
    }

    /// A reset mail to account `user_id`.
    pub fn reset_mail(user_id: i64) -> Subjects {
        Subjects(vec![(Scope::ResetMail, user_id.to_string())])
    }

    /// An address change of account `user_id`, and the verification mail it sends to the
    /// address with lower-cased key `mail_to`, if any.
    pub fn address_change(user_id: i64, mail_to: Option<&str>) -> Subjects {
        let mut subjects = vec![(Scope::AddressChange, user_id.to_string())];
        subjects.extend(mail_to.map(|key| (Scope::VerifyMail, key.to_owned())));
        Subjects(subjects)
    }

    /// An anonymous passkey sign-in started from a client address.
    pub fn passkey_start(address: &str) -> Subjects {
        Subjects(vec![(Scope::PasskeyStart, address_subject(address))])
    }
}

/// An attempt counted ahead of its check.
#[derive(Debug, Clone)]
pub struct Reservation {
    ids: Vec<i64>,
    subjects: Subjects,
}

impl ThrottlePolicy {
    fn limit(&self, scope: Scope) -> i64 {
        match scope {
            Scope::Signup => self.max_signups,
            // With the account's own counter (`max_failures` from unknown clients), the wrong
            // passwords checked per account stay below 3 × `max_failures`.
            Scope::Devices => (2 * self.max_failures - 1).max(1),
            Scope::PasskeyStart => PASSKEY_STARTS_PER_FAILURE * self.max_failures,
            _ => self.max_failures,
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
            .map(|(scope, subject)| format!("doorman/throttle/{}/{subject}", scope.name()))
            .collect();
        db::lock_keys(conn, &keys)?;
        if let Some(wait) = self.retry_after(conn, now, subjects)? {
            return Ok(Err(wait));
        }
        db::login_attempts::prune(conn, now - self.window)?;
        let mut ids = Vec::with_capacity(subjects.0.len());
        for (scope, subject) in &subjects.0 {
            ids.push(db::login_attempts::insert(
                conn,
                scope.name(),
                subject,
                now,
            )?);
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
            let limit = self.limit(*scope);
            let times = db::login_attempts::recent(conn, scope.name(), subject, since, limit)?;
            if times.len() as i64 >= limit {
                // Free again once the oldest counted attempt leaves the window.
                let until = times[0] + self.window - now;
                wait = Some(wait.unwrap_or(0).max(until.clamp(1, self.window)));
            }
        }
        Ok(wait)
    }

    /// The attempt succeeded: it no longer counts, and the earlier failures of its account,
    /// device or codes are forgiven. Not its address's (one good password does not clear a
    /// spray), nor the ceiling of the account's devices; and an account's wrong codes only by a
    /// right code, never by a password alone (the reservation of a password has no codes).
    pub fn forgive(conn: &mut Conn, reservation: &Reservation) -> diesel::QueryResult<()> {
        db::login_attempts::delete(conn, &reservation.ids)?;
        for (scope, subject) in &reservation.subjects.0 {
            if matches!(*scope, Scope::Account | Scope::Device | Scope::Codes) {
                db::login_attempts::clear(conn, scope.name(), subject)?;
            }
        }
        Ok(())
    }

    /// Forgets every counted attempt of `subjects` (a passkey sign-in that succeeded clears its
    /// address's starts).
    pub fn clear(conn: &mut Conn, subjects: &Subjects) -> diesel::QueryResult<()> {
        for (scope, subject) in &subjects.0 {
            db::login_attempts::clear(conn, scope.name(), subject)?;
        }
        Ok(())
    }

    /// The attempt did not happen after all (a sign-up whose name was taken).
    pub fn release(conn: &mut Conn, reservation: &Reservation) -> diesel::QueryResult<()> {
        db::login_attempts::delete(conn, &reservation.ids)
    }
}

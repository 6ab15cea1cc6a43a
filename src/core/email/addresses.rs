//! An account's address: set (unconfirmed, with a verification link mailed to it), confirmed by
//! its link, unique only once confirmed.

use diesel::result::{DatabaseErrorKind, Error as DieselError};
use serde_json::json;

use super::links::{EmailPolicy, Letter, Link, queue, spend};
use crate::auth::keys::ServerSecret;
use crate::core::account_changes;
use crate::core::client::ClientInfo;
use crate::core::events::{self, EventKind};
use crate::core::throttle::{Subjects, ThrottlePolicy};
use crate::db::email::purpose::VERIFY;
use crate::db::{self, Tx, users::UserRow};

/// Longest address kept (RFC 5321's path limit).
const MAX_ADDRESS_LEN: usize = 254;

/// An address as typed (trimmed) and the key it is unique by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    pub text: String,
    pub key: String,
}

/// Checks an address with lettre's parser (RFC 5321 mailbox syntax) and a length limit.
pub fn parse_address(text: &str) -> Result<Address, &'static str> {
    let text = text.trim();
    if text.len() > MAX_ADDRESS_LEN {
        return Err("This address is too long.");
    }
    text.parse::<lettre::Address>()
        .map_err(|_| "This is not an email address.")?;
    Ok(Address {
        text: text.to_owned(),
        key: text.to_lowercase(),
    })
}

#[derive(Debug, PartialEq, Eq)]
pub enum AddressError {
    Invalid(&'static str),
    /// Another account has verified this address.
    Taken,
    /// Too many address changes of this account, or verification mails to this address,
    /// within `login_window`.
    Throttled {
        retry_after: i64,
    },
}

impl AddressError {
    /// The sentence a form shows for it.
    pub fn message(&self) -> &'static str {
        match self {
            AddressError::Invalid(why) => why,
            AddressError::Taken => "This address belongs to another account.",
            AddressError::Throttled { .. } => {
                "Too many address changes or confirmation mails. Try again later."
            }
        }
    }
}

/// Who changes an address, for the events and mails.
pub struct AddressChange<'a> {
    pub user: &'a UserRow,
    /// The session making the change (events name it), if any.
    pub session_id: Option<i64>,
    pub client: &'a ClientInfo,
    /// The limits on changes and verification mails; `None` for the command line, whose
    /// operator is trusted.
    pub limits: Option<ThrottlePolicy>,
}

/// Serializes the changes and verifications of one address (by its lower-cased key) across
/// instances, so two of them never wait on each other's rows.
fn lock_address(tx: &mut Tx<'_>, key: &str) -> Result<(), DieselError> {
    db::lock_keys(tx, &[format!("doorman/address/{key}")])
}

/// Sets (or, with an empty `text`, removes) the account's address: unverified, with a
/// verification link mailed to it (unless a link for it mailed earlier is still good); a
/// verified old address is told of the change, and reset links die. An address another account
/// has verified is refused; one another account only claimed is not.
pub fn set_address(
    tx: &mut Tx<'_>,
    secret: &ServerSecret,
    policy: EmailPolicy,
    change: &AddressChange<'_>,
    text: &str,
    now: i64,
) -> Result<Result<(), AddressError>, DieselError> {
    let user = change.user;
    let new = if text.trim().is_empty() {
        None
    } else {
        match parse_address(text) {
            Ok(address) => Some(address),
            Err(why) => return Ok(Err(AddressError::Invalid(why))),
        }
    };
    let old = db::email::address_of(tx, user.id)?;
    if old.as_ref().map(|(a, _)| a.to_lowercase()) == new.as_ref().map(|a| a.key.clone()) {
        return Ok(Ok(()));
    }
    if let Some(address) = &new {
        lock_address(tx, &address.key)?;
    }
    let reused = match &new {
        Some(address) => db::email::live_token_for(tx, user.id, VERIFY, &address.text, now)?,
        None => false,
    };
    // Counted before the address is looked at, so asking which addresses are taken counts too.
    if let Some(limits) = &change.limits {
        let mail_to = new.as_ref().filter(|_| !reused).map(|a| a.key.as_str());
        let subjects = Subjects::address_change(user.id, mail_to);
        if let Err(retry_after) = limits.reserve(tx, now, &subjects)? {
            return Ok(Err(AddressError::Throttled { retry_after }));
        }
    }
    if let Some(address) = &new {
        let holder = db::email::user_with_verified(tx, &address.key)?;
        if holder.is_some_and(|id| id != user.id) {
            return Ok(Err(AddressError::Taken));
        }
    }
    let stored = tx.savepoint(|tx| {
        db::email::set_address(
            tx,
            user.id,
            new.as_ref().map(|a| (a.text.as_str(), a.key.as_str())),
        )
    });
    match stored {
        Ok(()) => {}
        // Another account verified it a moment ago.
        Err(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => {
            return Ok(Err(AddressError::Taken));
        }
        Err(e) => return Err(e),
    }
    // Verification links mailed earlier stay: each confirms only the address it was mailed
    // to, while it is the account's, so going back to one reuses its link.
    account_changes::outdate(tx, user.id, account_changes::ADDRESS, now)?;
    if let Some(address) = new.as_ref().filter(|_| !reused) {
        send_verification(tx, secret, policy, user, &address.text, now)?;
    }
    if let Some((old, Some(_))) = &old {
        let context =
            json!({ "username": user.username, "new_address": new.as_ref().map(|a| &a.text) });
        queue(tx, old, Letter::AddressChanged, &context)?;
    }
    events::record_with(
        tx,
        now,
        EventKind::EmailChanged,
        Some(user.id),
        change.session_id,
        change.client,
        new.as_ref().map(|a| a.text.as_str()),
    )?;
    Ok(Ok(()))
}

/// Mails a verification link for `address` (the account's new, unverified address).
fn send_verification(
    tx: &mut Tx<'_>,
    secret: &ServerSecret,
    policy: EmailPolicy,
    user: &UserRow,
    address: &str,
    now: i64,
) -> Result<(), DieselError> {
    let link = Link {
        purpose: VERIFY,
        user_id: user.id,
        email: Some(address),
        session_id: None,
    };
    let nonce = link.make(tx, secret, now, policy.link_ttl)?;
    // No account name: the address is nobody's yet, and a name is text its chooser controls.
    let context = json!({
        "address": address,
        "link": { "path": "/email/verify", "nonce": nonce },
    });
    queue(tx, address, Letter::VerifyAddress, &context)
}

/// Verifies an address with its link: true once, while the account still has that address.
pub fn verify(
    tx: &mut Tx<'_>,
    token: &str,
    client: &ClientInfo,
    now: i64,
) -> Result<bool, DieselError> {
    let Some(row) = spend(tx, token, VERIFY, now)? else {
        return Ok(false);
    };
    let Some(address) = &row.email else {
        return Ok(false);
    };
    let key = address.to_lowercase();
    lock_address(tx, &key)?;
    // Another account verified the same address first: the unique index refuses this one.
    let verified = match tx.savepoint(|tx| db::email::mark_verified(tx, row.user_id, address, now))
    {
        Ok(verified) => verified,
        Err(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => false,
        Err(e) => return Err(e),
    };
    if verified {
        // The address is this account's now: other accounts' unconfirmed claims on it go.
        db::email::release_unverified(tx, &key, row.user_id)?;
        events::record(
            tx,
            now,
            EventKind::EmailVerified,
            Some(row.user_id),
            None,
            client,
        )?;
    }
    Ok(verified)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_checked_and_keyed_by_lower_case() {
        let address = parse_address("  Alice@Example.COM ").unwrap();
        assert_eq!(address.text, "Alice@Example.COM");
        assert_eq!(address.key, "alice@example.com");
        for bad in ["", "alice", "alice@", "@example.com", "a b@example.com"] {
            assert!(parse_address(bad).is_err(), "{bad:?}");
        }
        assert!(parse_address(&format!("{}@example.com", "a".repeat(250))).is_err());
    }
}

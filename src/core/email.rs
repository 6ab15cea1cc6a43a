//! Email: an account's address and its verification, password reset, and the notice of a
//! sign-in from a new device with its "this wasn't me" link.
//!
//! Every mail is a row of the outbox written in the transaction of the change it tells of; the
//! sender (`crate::mail`) delivers it after the commit. A link's token is never stored: the
//! outbox keeps a random nonce, and the token is the HMAC of that nonce under a key derived
//! from the server secret, made again when the mail is rendered. The database keeps only the
//! token's hash, so a copy of it (outbox included) opens no link.

use diesel::result::{DatabaseErrorKind, Error as DieselError};
use serde_json::{Value, json};

use crate::auth::keys::ServerSecret;
use crate::config::Config;
use crate::core::account_changes;
use crate::core::client::ClientInfo;
use crate::core::events::{self, EventKind};
use crate::core::sessions::{self as session, EndReason, Ending, token_hash};
use crate::core::throttle::{Subjects, ThrottlePolicy};
use crate::core::users::check_username;
use crate::crypto;
use crate::db::{self, Tx, sessions::SessionRow, users::UserRow};

use crate::db::email::purpose::{REPORT, RESET, VERIFY};

/// Longest address kept (RFC 5321's path limit).
const MAX_ADDRESS_LEN: usize = 254;

/// Longest link token worth looking up; real ones are 43 characters.
const MAX_TOKEN_LEN: usize = 64;

/// How links and notices behave, from the settings.
#[derive(Debug, Clone, Copy)]
pub struct EmailPolicy {
    /// `reset_ttl`: how long a link works.
    pub link_ttl: i64,
    pub new_device_notice: bool,
}

impl From<&Config> for EmailPolicy {
    fn from(config: &Config) -> Self {
        EmailPolicy {
            link_ttl: config.reset_ttl.as_i64(),
            new_device_notice: config.new_device_notice,
        }
    }
}

/// The mails doorman sends; each is a pair of templates under `templates/mail/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Letter {
    VerifyAddress,
    AddressChanged,
    PasswordReset,
    NewDevice,
}

impl Letter {
    pub const ALL: [Letter; 4] = [
        Letter::VerifyAddress,
        Letter::AddressChanged,
        Letter::PasswordReset,
        Letter::NewDevice,
    ];

    /// The templates' name, as the outbox stores it.
    pub fn name(self) -> &'static str {
        match self {
            Letter::VerifyAddress => "verify_address",
            Letter::AddressChanged => "address_changed",
            Letter::PasswordReset => "password_reset",
            Letter::NewDevice => "new_device",
        }
    }

    pub fn subject(self) -> &'static str {
        match self {
            Letter::VerifyAddress => "Confirm your email address",
            Letter::AddressChanged => "Your email address was changed",
            Letter::PasswordReset => "Reset your password",
            Letter::NewDevice => "New sign-in to your account",
        }
    }

    pub fn parse(name: &str) -> Option<Letter> {
        Letter::ALL.into_iter().find(|l| l.name() == name)
    }
}

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

/// The token of a link from the nonce its mail keeps; `None` for a nonce that is not one.
pub fn link_token(secret: &ServerSecret, nonce: &str) -> Option<String> {
    let nonce = crypto::b64_decode_any(nonce)?;
    Some(crypto::b64url(&crypto::hmac_sha256(
        secret.email_key(),
        &[b"doorman/email-link/v1\0", &nonce],
    )))
}

/// What a link does and for whom.
struct Link<'a> {
    purpose: &'static str,
    user_id: i64,
    email: Option<&'a str>,
    session_id: Option<i64>,
}

impl Link<'_> {
    /// Stores the link's token hash; returns the nonce its mail carries.
    fn make(
        &self,
        tx: &mut Tx<'_>,
        secret: &ServerSecret,
        now: i64,
        ttl: i64,
    ) -> Result<String, DieselError> {
        let nonce = crypto::b64url(&crypto::random_bytes::<32>());
        let token = link_token(secret, &nonce).unwrap_or_default();
        db::email::insert_token(
            tx,
            &db::email::NewToken {
                token_hash: &token_hash(&token),
                purpose: self.purpose,
                user_id: self.user_id,
                email: self.email,
                session_id: self.session_id,
                created_at: now,
                expires_at: now.saturating_add(ttl),
            },
        )?;
        Ok(nonce)
    }
}

/// Writes a mail to the outbox; it leaves after the commit.
fn queue(tx: &mut Tx<'_>, to: &str, letter: Letter, context: &Value) -> Result<(), DieselError> {
    db::outbox::insert(tx, to, letter.name(), &context.to_string(), mail_clock())?;
    tx.mail_queued();
    Ok(())
}

/// Delivery is scheduled on the system's clock, whatever clock the rules run on.
fn mail_clock() -> i64 {
    crate::clock::Clock::now(&crate::clock::SystemClock)
}

/// The good, unused, unexpired link of `purpose` that `token` is, if any (a token not worth
/// looking up is none).
fn waiting(
    conn: &mut db::Conn,
    token: &str,
    purpose: &str,
    now: i64,
) -> Result<Option<db::email::TokenRow>, DieselError> {
    if token.is_empty() || token.len() > MAX_TOKEN_LEN {
        return Ok(None);
    }
    db::email::find_token(conn, &token_hash(token), purpose, now)
}

/// [`waiting`], and spent by this call: a link acts once, even under simultaneous requests.
fn spend(
    tx: &mut Tx<'_>,
    token: &str,
    purpose: &str,
    now: i64,
) -> Result<Option<db::email::TokenRow>, DieselError> {
    let Some(row) = waiting(tx, token, purpose, now)? else {
        return Ok(None);
    };
    Ok(db::email::spend_token(tx, row.id, now)?.then_some(row))
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

/// The links whose pages only need to know that the link is good.
#[derive(Debug, Clone, Copy)]
pub enum LinkKind {
    VerifyAddress,
    ResetPassword,
}

/// Whether a link's token is good, unused and unexpired (for the page the link opens).
pub fn link_waiting(
    conn: &mut db::Conn,
    kind: LinkKind,
    token: &str,
    now: i64,
) -> Result<bool, DieselError> {
    let purpose = match kind {
        LinkKind::VerifyAddress => VERIFY,
        LinkKind::ResetPassword => RESET,
    };
    Ok(waiting(conn, token, purpose, now)?.is_some())
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

/// Asks for a reset link for `login` (a username or an address). Whatever it names — an
/// account with a verified address, one without, nothing — the caller answers the same; only
/// the first gets a mail. Requests are counted per client address (past the limit,
/// `Err(seconds to wait)`, the same for all); mails per account, however it was named, and
/// past that cap the answer stays the same, so nobody can block another user's reset.
pub fn request_reset(
    tx: &mut Tx<'_>,
    secret: &ServerSecret,
    policy: EmailPolicy,
    throttle: &ThrottlePolicy,
    login: &str,
    client: &ClientInfo,
    now: i64,
) -> Result<Result<(), i64>, DieselError> {
    let login = login.trim();
    if let Err(wait) = throttle.reserve(tx, now, &Subjects::reset_request(&client.ip))? {
        return Ok(Err(wait));
    }
    let user_id = if check_username(login).is_ok() {
        db::users::find_by_name(tx, login)?.map(|u| u.id)
    } else if let Ok(address) = parse_address(login) {
        db::email::user_with_verified(tx, &address.key)?
    } else {
        None
    };
    let Some(user) = user_id
        .map(|id| db::users::find(tx, id))
        .transpose()?
        .flatten()
    else {
        return Ok(Ok(()));
    };
    if db::email::address_of(tx, user.id)?.is_none_or(|(_, verified)| verified.is_none())
        || throttle
            .reserve(tx, now, &Subjects::reset_mail(user.id))?
            .is_err()
    {
        return Ok(Ok(()));
    }
    send_reset(tx, secret, policy, &user, client, now, None).map(Ok)
}

/// Mails `user` a reset link if their address is verified (and they are not disabled);
/// `detail` says who asked when it was not the user.
pub fn send_reset(
    tx: &mut Tx<'_>,
    secret: &ServerSecret,
    policy: EmailPolicy,
    user: &UserRow,
    client: &ClientInfo,
    now: i64,
    detail: Option<&str>,
) -> Result<(), DieselError> {
    let Some((address, Some(_))) = db::email::address_of(tx, user.id)? else {
        return Ok(());
    };
    if user.disabled {
        return Ok(());
    }
    let link = Link {
        purpose: RESET,
        user_id: user.id,
        email: Some(&address),
        session_id: None,
    };
    let nonce = link.make(tx, secret, now, policy.link_ttl)?;
    let context = json!({
        "username": user.username,
        "link": { "path": "/password/reset", "nonce": nonce },
        "ttl_minutes": policy.link_ttl / 60,
    });
    queue(tx, &address, Letter::PasswordReset, &context)?;
    events::record_with(
        tx,
        now,
        EventKind::PasswordResetRequested,
        Some(user.id),
        None,
        client,
        detail,
    )
}

/// Sets a new password with a reset link (once): every session of the account ends; a second
/// factor stays in force. Returns whether the link was good.
pub fn reset_password(
    tx: &mut Tx<'_>,
    token: &str,
    hash: &str,
    client: &ClientInfo,
    now: i64,
) -> Result<bool, DieselError> {
    let Some(row) = spend(tx, token, RESET, now)? else {
        return Ok(false);
    };
    // The link was mailed to an address; it resets only while that is still the account's
    // verified address, and never a disabled account.
    let still_sent_to = match (db::users::find(tx, row.user_id)?, &row.email) {
        (Some(user), Some(sent_to)) => {
            !user.disabled
                && user.email_verified_at.is_some()
                && user.email.is_some_and(|a| a.eq_ignore_ascii_case(sent_to))
        }
        _ => false,
    };
    if !still_sent_to {
        return Ok(false);
    }
    db::users::set_password(tx, row.user_id, hash, now)?;
    account_changes::outdate(tx, row.user_id, account_changes::PASSWORD, now)?;
    events::record(
        tx,
        now,
        EventKind::PasswordReset,
        Some(row.user_id),
        None,
        client,
    )?;
    let ending = Ending {
        now,
        reason: EndReason::PasswordChanged,
        event: EventKind::SessionRevoked,
        client,
        detail: Some("password reset by email"),
    };
    session::end_all_except(tx, row.user_id, None, &ending)?;
    Ok(true)
}

/// A sign-in from a browser (or app) without the account's device token: event
/// `new_device_login`, and with `new_device_notice` a mail to the verified address naming the
/// device, address and time, with a link that ends exactly this session.
pub fn new_device(
    tx: &mut Tx<'_>,
    secret: &ServerSecret,
    policy: EmailPolicy,
    user: &UserRow,
    session: &SessionRow,
    client: &ClientInfo,
    now: i64,
) -> Result<(), DieselError> {
    events::record(
        tx,
        now,
        EventKind::NewDeviceLogin,
        Some(user.id),
        Some(session.id),
        client,
    )?;
    if !policy.new_device_notice {
        return Ok(());
    }
    let Some((address, Some(_))) = db::email::address_of(tx, user.id)? else {
        return Ok(());
    };
    let link = Link {
        purpose: REPORT,
        user_id: user.id,
        email: None,
        session_id: Some(session.id),
    };
    let nonce = link.make(tx, secret, now, policy.link_ttl.max(86_400))?;
    let context = json!({
        "username": user.username,
        "user_agent": client.user_agent,
        "ip": client.ip,
        "at": now,
        "link": { "path": format!("/sessions/{}/report", session.public_id), "nonce": nonce },
    });
    queue(tx, &address, Letter::NewDevice, &context)
}

/// Whether a report link is good for session `sid` (for its confirmation page).
pub fn report_waiting(
    conn: &mut db::Conn,
    sid: &str,
    token: &str,
    now: i64,
) -> Result<bool, DieselError> {
    Ok(report_row(conn, sid, token, now)?.is_some())
}

fn report_row(
    conn: &mut db::Conn,
    sid: &str,
    token: &str,
    now: i64,
) -> Result<Option<(db::email::TokenRow, SessionRow)>, DieselError> {
    let Some(row) = waiting(conn, token, REPORT, now)? else {
        return Ok(None);
    };
    let Some(session) = db::sessions::find_by_public_id(conn, sid)? else {
        return Ok(None);
    };
    Ok((row.session_id == Some(session.id)).then_some((row, session)))
}

/// "This wasn't me": ends the session the new-device mail named (once). Event
/// `session_reported`. Returns whether the link was good.
pub fn report(
    tx: &mut Tx<'_>,
    sid: &str,
    token: &str,
    client: &ClientInfo,
    now: i64,
) -> Result<bool, DieselError> {
    let Some((row, reported)) = report_row(tx, sid, token, now)? else {
        return Ok(false);
    };
    if !db::email::spend_token(tx, row.id, now)? {
        return Ok(false);
    }
    session::end(tx, &reported, now, EndReason::Revoked)?;
    account_changes::outdate(tx, row.user_id, account_changes::LOCKDOWN, now)?;
    events::record_with(
        tx,
        now,
        EventKind::SessionReported,
        Some(row.user_id),
        Some(reported.id),
        client,
        Some("ended from the new-device mail"),
    )?;
    Ok(true)
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

    #[test]
    fn link_tokens_need_the_server_secret() {
        let nonce = crypto::b64url(&[9; 32]);
        let one = link_token(&ServerSecret::from_bytes(&[1; 32]), &nonce).unwrap();
        let two = link_token(&ServerSecret::from_bytes(&[2; 32]), &nonce).unwrap();
        assert_ne!(one, two);
        assert_eq!(one.len(), 43);
        assert!(link_token(&ServerSecret::from_bytes(&[1; 32]), "%%%").is_none());
    }
}

//! Password reset by mail: asked for by name or address (the same answer for all), capped per
//! account, and good only while the address it went to is the account's confirmed one.

use diesel::result::Error as DieselError;
use serde_json::json;

use super::addresses::parse_address;
use super::links::{EmailPolicy, Letter, Link, queue, spend};
use crate::auth::keys::ServerSecret;
use crate::core::account_changes;
use crate::core::client::ClientInfo;
use crate::core::events::{self, EventKind};
use crate::core::sessions::{self as session, EndReason, Ending};
use crate::core::throttle::{Subjects, ThrottlePolicy};
use crate::core::users::check_username;
use crate::db::email::purpose::RESET;
use crate::db::{self, Tx, users::UserRow};

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
    let user = if check_username(login).is_ok() {
        db::users::find_by_name(tx, login)?
    } else if let Ok(address) = parse_address(login) {
        match db::email::user_with_verified(tx, &address.key)? {
            Some(id) => db::users::find(tx, id)?,
            None => None,
        }
    } else {
        None
    };
    // Only an enabled account with a confirmed address gets a mail, and only within its cap.
    let Some(user) = user.filter(|u| u.email_verified_at.is_some() && !u.disabled) else {
        return Ok(Ok(()));
    };
    if throttle
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

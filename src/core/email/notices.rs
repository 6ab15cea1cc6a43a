//! The notice of a sign-in from a new device, and its "this wasn't me" link.

use diesel::result::Error as DieselError;
use serde_json::json;

use super::links::{EmailPolicy, Letter, Link, queue, waiting};
use crate::auth::keys::ServerSecret;
use crate::core::account_changes;
use crate::core::client::ClientInfo;
use crate::core::events::{self, EventKind};
use crate::core::sessions::{self as session, EndReason};
use crate::db::email::purpose::REPORT;
use crate::db::{self, Tx, sessions::SessionRow, users::UserRow};

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

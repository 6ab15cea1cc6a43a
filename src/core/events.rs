//! Security events: what happened to an account, recorded for its owner and for admins.

use crate::core::client::ClientInfo;
use crate::db::{self, Conn, Tx};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    LoginSucceeded,
    LoginFailed,
    LoginThrottled,
    Logout,
    SessionRevoked,
    RefreshTokenReuse,
    PasswordChanged,
    RoleChanged,
    UserDisabled,
    UserEnabled,
    MfaEnabled,
    MfaDisabled,
    MfaFailed,
    RecoveryCodeUsed,
    RecoveryCodesRegenerated,
    SudoGranted,
    MfaReset,
    PasskeyAdded,
    PasskeyRemoved,
    EmailChanged,
    EmailVerified,
    PasswordResetRequested,
    PasswordReset,
    NewDeviceLogin,
    SessionReported,
}

impl EventKind {
    pub const ALL: [EventKind; 25] = [
        EventKind::LoginSucceeded,
        EventKind::LoginFailed,
        EventKind::LoginThrottled,
        EventKind::Logout,
        EventKind::SessionRevoked,
        EventKind::RefreshTokenReuse,
        EventKind::PasswordChanged,
        EventKind::RoleChanged,
        EventKind::UserDisabled,
        EventKind::UserEnabled,
        EventKind::MfaEnabled,
        EventKind::MfaDisabled,
        EventKind::MfaFailed,
        EventKind::RecoveryCodeUsed,
        EventKind::RecoveryCodesRegenerated,
        EventKind::SudoGranted,
        EventKind::MfaReset,
        EventKind::PasskeyAdded,
        EventKind::PasskeyRemoved,
        EventKind::EmailChanged,
        EventKind::EmailVerified,
        EventKind::PasswordResetRequested,
        EventKind::PasswordReset,
        EventKind::NewDeviceLogin,
        EventKind::SessionReported,
    ];

    /// The stored kind name, as the spec lists it.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::LoginSucceeded => "login_succeeded",
            EventKind::LoginFailed => "login_failed",
            EventKind::LoginThrottled => "login_throttled",
            EventKind::Logout => "logout",
            EventKind::SessionRevoked => "session_revoked",
            EventKind::RefreshTokenReuse => "refresh_token_reuse",
            EventKind::PasswordChanged => "password_changed",
            EventKind::RoleChanged => "role_changed",
            EventKind::UserDisabled => "user_disabled",
            EventKind::UserEnabled => "user_enabled",
            EventKind::MfaEnabled => "mfa_enabled",
            EventKind::MfaDisabled => "mfa_disabled",
            EventKind::MfaFailed => "mfa_failed",
            EventKind::RecoveryCodeUsed => "recovery_code_used",
            EventKind::RecoveryCodesRegenerated => "recovery_codes_regenerated",
            EventKind::SudoGranted => "sudo_granted",
            EventKind::MfaReset => "mfa_reset",
            EventKind::PasskeyAdded => "passkey_added",
            EventKind::PasskeyRemoved => "passkey_removed",
            EventKind::EmailChanged => "email_changed",
            EventKind::EmailVerified => "email_verified",
            EventKind::PasswordResetRequested => "password_reset_requested",
            EventKind::PasswordReset => "password_reset",
            EventKind::NewDeviceLogin => "new_device_login",
            EventKind::SessionReported => "session_reported",
        }
    }

    /// The kind in words, for people.
    pub fn describe(self) -> &'static str {
        match self {
            EventKind::LoginSucceeded => "Signed in",
            EventKind::LoginFailed => "Failed sign-in attempt",
            EventKind::LoginThrottled => "Sign-in blocked after too many failures",
            EventKind::Logout => "Signed out",
            EventKind::SessionRevoked => "Session ended by a user or an admin",
            EventKind::RefreshTokenReuse => {
                "A used sign-in token came back: the session was ended as possibly stolen"
            }
            EventKind::PasswordChanged => "Password changed",
            EventKind::RoleChanged => "Role changed",
            EventKind::UserDisabled => "Account disabled",
            EventKind::UserEnabled => "Account enabled",
            EventKind::MfaEnabled => "Authenticator app turned on",
            EventKind::MfaDisabled => "Authenticator app turned off",
            EventKind::MfaFailed => "Wrong second-factor code",
            EventKind::RecoveryCodeUsed => "Recovery code used",
            EventKind::RecoveryCodesRegenerated => "New recovery codes made",
            EventKind::SudoGranted => "Confirmed identity for a sensitive action",
            EventKind::MfaReset => "Second factors reset by an admin",
            EventKind::PasskeyAdded => "Passkey added",
            EventKind::PasskeyRemoved => "Passkey removed",
            EventKind::EmailChanged => "Email address changed",
            EventKind::EmailVerified => "Email address verified",
            EventKind::PasswordResetRequested => "Password reset link sent",
            EventKind::PasswordReset => "Password reset by email",
            EventKind::NewDeviceLogin => "Signed in from a new device",
            EventKind::SessionReported => "Session reported as not you and ended",
        }
    }

    pub fn parse(name: &str) -> Option<EventKind> {
        EventKind::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

/// Records one event at `now`.
pub fn record(
    tx: &mut Tx<'_>,
    now: i64,
    kind: EventKind,
    user_id: Option<i64>,
    session_id: Option<i64>,
    client: &ClientInfo,
) -> diesel::QueryResult<()> {
    record_with(tx, now, kind, user_id, session_id, client, None)
}

/// Records one event with a note for people (who did it, what changed).
pub fn record_with(
    tx: &mut Tx<'_>,
    now: i64,
    kind: EventKind,
    user_id: Option<i64>,
    session_id: Option<i64>,
    client: &ClientInfo,
    detail: Option<&str>,
) -> diesel::QueryResult<()> {
    db::events::insert(
        tx,
        &db::events::NewEvent {
            created_at: now,
            user_id,
            session_id,
            kind: kind.as_str(),
            ip: &client.ip,
            user_agent: &client.user_agent,
            detail,
        },
    )?;
    tx.event_written(user_id, log_line(kind, user_id, session_id, client));
    Ok(())
}

/// Records a refused (throttled) attempt: at most one row per account and address a minute,
/// counting the repeats, so nobody can grow the table by hammering a locked door.
pub fn record_throttled(
    tx: &mut Tx<'_>,
    now: i64,
    user_id: Option<i64>,
    client: &ClientInfo,
) -> diesel::QueryResult<()> {
    let kind = EventKind::LoginThrottled;
    let counted =
        db::events::count_repeat(tx, kind.as_str(), user_id, &client.ip, now - REPEAT_WINDOW)?;
    if counted {
        tx.event_written(user_id, log_line(kind, user_id, None, client));
        return Ok(());
    }
    record(tx, now, kind, user_id, None, client)
}

/// Repeats of one event within this many seconds share a row.
const REPEAT_WINDOW: i64 = 60;

/// The log line of an event, printed once it is committed: who and what, never a token,
/// cookie or password.
fn log_line(
    kind: EventKind,
    user_id: Option<i64>,
    session_id: Option<i64>,
    client: &ClientInfo,
) -> String {
    serde_json::json!({
        "security_event": kind.as_str(),
        "user_id": user_id,
        "session_id": session_id,
        "ip": client.ip,
    })
    .to_string()
}

/// Deletes events older than `events_retention`.
pub fn prune(conn: &mut Conn, now: i64, retention: i64) -> diesel::QueryResult<usize> {
    db::events::delete_before(conn, now.saturating_sub(retention))
}

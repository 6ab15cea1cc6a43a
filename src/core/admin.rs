//! What admins (and the command line) may do to accounts, with the last-admin rule.

use diesel::result::Error as DieselError;

use crate::auth::keys::ServerSecret;
use crate::auth::roles::Role;
use crate::core::account_changes;
use crate::core::client::ClientInfo;
use crate::core::email::{self, EmailPolicy};
use crate::core::events::{self, EventKind};
use crate::core::methods;
use crate::core::second_factors;
use crate::core::sessions::{self as session, EndReason, Ending};
use crate::db::{self, Conn, DbError, Tx, sessions::Alive, users::UserRow};

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("no such user or session")]
    NotFound,
    /// The change would leave no active admin.
    #[error("the last active admin")]
    LastAdmin,
    #[error(transparent)]
    Db(#[from] DbError),
}

// Through `DbError`, which tells an outage from a bad query.
impl From<DieselError> for AdminError {
    fn from(e: DieselError) -> Self {
        AdminError::Db(DbError::from(e))
    }
}

/// Who did it and from where, for the events an action records.
#[derive(Debug, Clone)]
pub struct Actor {
    pub name: String,
    pub client: ClientInfo,
}

impl Actor {
    fn note(&self) -> String {
        format!("by {}", self.name)
    }
}

fn target(conn: &mut Conn, user_id: i64) -> Result<UserRow, AdminError> {
    db::users::find(conn, user_id)?.ok_or(AdminError::NotFound)
}

/// Role and enable/disable changes take one lock before they read anything, so two admins
/// demoting or disabling each other at the same moment (on PostgreSQL, on several instances)
/// are judged one after the other and never leave no active admin.
fn serialize_admin_changes(conn: &mut Conn) -> Result<(), AdminError> {
    db::lock_keys(conn, &["doorman/admins".to_owned()])?;
    Ok(())
}

/// Refuses a change that takes away the last active admin.
fn keep_an_admin(conn: &mut Conn, user: &UserRow) -> Result<(), AdminError> {
    let active_admin = user.role == Role::Admin.as_str() && !user.disabled;
    if active_admin && db::users::count_active_with_role(conn, Role::Admin.as_str())? <= 1 {
        return Err(AdminError::LastAdmin);
    }
    Ok(())
}

/// Gives `user_id` a role. Their sessions stay, but their access tokens are renewed so the new
/// role applies at once.
pub fn set_role(
    tx: &mut Tx<'_>,
    now: i64,
    user_id: i64,
    role: Role,
    actor: &Actor,
) -> Result<(), AdminError> {
    serialize_admin_changes(tx)?;
    let user = target(tx, user_id)?;
    if user.role == role.as_str() {
        return Ok(());
    }
    if role != Role::Admin {
        keep_an_admin(tx, &user)?;
    }
    db::users::set_role(tx, user_id, role.as_str())?;
    let detail = format!("{} → {}, {}", user.role, role.as_str(), actor.note());
    events::record_with(
        tx,
        now,
        EventKind::RoleChanged,
        Some(user_id),
        None,
        &actor.client,
        Some(&detail),
    )?;
    for sid in db::sessions::renew_access(tx, user_id, now)? {
        tx.access_renewed(sid, role.as_str().to_owned());
    }
    Ok(())
}

/// Disables an account (ending all its sessions; logins are refused) or enables it again.
/// Returns how many sessions it ended.
pub fn set_disabled(
    tx: &mut Tx<'_>,
    now: i64,
    user_id: i64,
    disabled: bool,
    actor: &Actor,
) -> Result<usize, AdminError> {
    serialize_admin_changes(tx)?;
    let user = target(tx, user_id)?;
    if user.disabled == disabled {
        return Ok(0);
    }
    if disabled {
        keep_an_admin(tx, &user)?;
    }
    db::users::set_disabled(tx, user_id, disabled)?;
    if disabled {
        account_changes::outdate(tx, user_id, account_changes::LOCKDOWN, now)?;
    }
    let kind = if disabled {
        EventKind::UserDisabled
    } else {
        EventKind::UserEnabled
    };
    let note = actor.note();
    events::record_with(
        tx,
        now,
        kind,
        Some(user_id),
        None,
        &actor.client,
        Some(&note),
    )?;
    if !disabled {
        return Ok(0);
    }
    let ending = Ending {
        now,
        reason: EndReason::UserDisabled,
        event: EventKind::SessionRevoked,
        client: &actor.client,
        detail: Some(&note),
    };
    Ok(session::end_all_except(tx, user_id, None, &ending)?.len())
}

/// Ends one session of `user_id` (an unknown or foreign `sid` is `NotFound`).
pub fn revoke_session(
    tx: &mut Tx<'_>,
    now: i64,
    user_id: i64,
    sid: &str,
    actor: &Actor,
) -> Result<(), AdminError> {
    let note = actor.note();
    let ending = Ending::revoked(now, &actor.client, Some(&note));
    if !session::end_one(tx, user_id, sid, &ending)? {
        return Err(AdminError::NotFound);
    }
    Ok(())
}

/// Ends every session of `user_id`.
pub fn revoke_all(
    tx: &mut Tx<'_>,
    now: i64,
    user_id: i64,
    actor: &Actor,
) -> Result<(), AdminError> {
    target(tx, user_id)?;
    let note = actor.note();
    let ending = Ending::revoked(now, &actor.client, Some(&note));
    session::end_all_except(tx, user_id, None, &ending)?;
    Ok(())
}

/// Removes every second factor of `user_id` and ends their sessions (event `mfa_reset`).
pub fn reset_mfa(tx: &mut Tx<'_>, now: i64, user_id: i64, actor: &Actor) -> Result<(), AdminError> {
    target(tx, user_id)?;
    let note = actor.note();
    let ending = Ending::revoked(now, &actor.client, Some(&note));
    second_factors::reset(tx, user_id, &ending)?;
    Ok(())
}

/// Mails `user_id` a password-reset link, when their address is confirmed (event
/// `password_reset_requested`, naming the admin).
pub fn send_reset(
    tx: &mut Tx<'_>,
    secret: &ServerSecret,
    policy: EmailPolicy,
    now: i64,
    user_id: i64,
    actor: &Actor,
) -> Result<(), AdminError> {
    let user = target(tx, user_id)?;
    let note = actor.note();
    email::send_reset(tx, secret, policy, &user, &actor.client, now, Some(&note))?;
    Ok(())
}

/// A user as the admin console lists them, with their alive sessions.
#[derive(Debug)]
pub struct UserSummary {
    pub user: UserRow,
    pub active_sessions: i64,
}

/// One page of the admin console: users, the security events of every account, and the hourly
/// counts the chart draws.
#[derive(Debug)]
pub struct Overview {
    pub users: Vec<UserSummary>,
    pub user_total: i64,
    pub events: Vec<(db::events::EventRow, Option<String>)>,
    pub event_total: i64,
    pub hourly: Vec<db::events::HourlyCount>,
}

/// Which slice of the console to read.
#[derive(Debug, Clone, Copy)]
pub struct OverviewPage {
    pub users_offset: i64,
    pub users_limit: i64,
    pub events_offset: i64,
    pub events_limit: i64,
    /// The first hour the chart covers, and the kinds it draws.
    pub chart_since: i64,
    pub charted: &'static [EventKind],
}

pub fn overview(conn: &mut Conn, page: OverviewPage, alive: Alive) -> Result<Overview, DbError> {
    let users = db::users::page(conn, page.users_offset, page.users_limit)?;
    Ok(Overview {
        users: with_session_counts(conn, users, alive)?,
        user_total: db::users::count(conn)?,
        events: db::events::page_with_usernames(conn, page.events_offset, page.events_limit)?,
        event_total: db::events::count(conn)?,
        hourly: db::events::hourly_counts(
            conn,
            page.chart_since,
            &page.charted.iter().map(|k| k.as_str()).collect::<Vec<_>>(),
        )?,
    })
}

/// Every user with their alive-session count (the JSON API's list).
pub fn all_users(conn: &mut Conn, alive: Alive) -> Result<Vec<UserSummary>, DbError> {
    let users = db::users::all(conn)?;
    with_session_counts(conn, users, alive)
}

fn with_session_counts(
    conn: &mut Conn,
    users: Vec<UserRow>,
    alive: Alive,
) -> Result<Vec<UserSummary>, DbError> {
    let ids: Vec<i64> = users.iter().map(|u| u.id).collect();
    let counts = db::sessions::count_active_by_user(conn, &ids, alive)?;
    Ok(users
        .into_iter()
        .map(|user| UserSummary {
            active_sessions: counts
                .iter()
                .find(|(id, _)| *id == user.id)
                .map_or(0, |c| c.1),
            user,
        })
        .collect())
}

/// Everything an admin's page of one user shows.
#[derive(Debug)]
pub struct UserDetail {
    pub user: UserRow,
    pub methods: methods::Methods,
    pub active: Vec<db::sessions::SessionRow>,
    pub ended: Vec<db::sessions::SessionRow>,
    pub events: Vec<db::events::EventRow>,
}

/// Sessions that ended, and events, shown on a user's page.
const DETAIL_ENDED_SESSIONS: i64 = 20;
const DETAIL_EVENTS: i64 = 50;

pub fn user_detail(
    conn: &mut Conn,
    user_id: i64,
    alive: Alive,
) -> Result<Option<UserDetail>, DbError> {
    let Some(user) = db::users::find(conn, user_id)? else {
        return Ok(None);
    };
    Ok(Some(UserDetail {
        methods: methods::of(conn, &user)?,
        active: db::sessions::active_for_user(conn, user_id, alive)?,
        ended: db::sessions::ended_for_user(conn, user_id, DETAIL_ENDED_SESSIONS)?,
        events: db::events::latest_for_user(conn, user_id, DETAIL_EVENTS)?,
        user,
    }))
}

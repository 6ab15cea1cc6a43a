//! What admins (and the command line) may do to accounts, with the last-admin rule.

use diesel::result::Error as DieselError;

use crate::accounts::Role;
use crate::auth::session::{self, EndReason, Ending};
use crate::client::ClientInfo;
use crate::db::{self, Conn, DbError, users::UserRow};
use crate::events::{self, EventKind};

#[derive(Debug)]
pub enum AdminError {
    NotFound,
    /// The change would leave no active admin.
    LastAdmin,
    Db(DbError),
}

impl From<DieselError> for AdminError {
    fn from(e: DieselError) -> Self {
        AdminError::Db(DbError::from(e))
    }
}

impl From<DbError> for AdminError {
    fn from(e: DbError) -> Self {
        AdminError::Db(e)
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

/// What an action did to sessions, for the in-memory revocation set.
#[derive(Debug, Default)]
pub struct SessionChanges {
    /// Sessions that ended.
    pub ended: Vec<String>,
    /// Sessions whose access tokens must be renewed to carry this role.
    pub renewed: Vec<(String, String)>,
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
    if active_admin && db::users::count_active_admins(conn)? <= 1 {
        return Err(AdminError::LastAdmin);
    }
    Ok(())
}

/// Gives `user_id` a role. Their sessions stay, but their access tokens are renewed so the new
/// role applies at once.
pub fn set_role(
    conn: &mut Conn,
    now: i64,
    user_id: i64,
    role: Role,
    actor: &Actor,
) -> Result<SessionChanges, AdminError> {
    db::write_transaction(conn, |conn| {
        serialize_admin_changes(conn)?;
        let user = target(conn, user_id)?;
        if user.role == role.as_str() {
            return Ok(SessionChanges::default());
        }
        if role != Role::Admin {
            keep_an_admin(conn, &user)?;
        }
        db::users::set_role(conn, user_id, role.as_str())?;
        let detail = format!("{} → {}, {}", user.role, role.as_str(), actor.note());
        events::record_with(
            conn,
            now,
            EventKind::RoleChanged,
            Some(user_id),
            None,
            &actor.client,
            Some(&detail),
        )?;
        let renewed = db::sessions::renew_access(conn, user_id, now)?
            .into_iter()
            .map(|sid| (sid, role.as_str().to_owned()))
            .collect();
        Ok(SessionChanges {
            ended: Vec::new(),
            renewed,
        })
    })
}

/// Disables an account (ending all its sessions; logins are refused) or enables it again.
pub fn set_disabled(
    conn: &mut Conn,
    now: i64,
    user_id: i64,
    disabled: bool,
    actor: &Actor,
) -> Result<SessionChanges, AdminError> {
    db::write_transaction(conn, |conn| {
        serialize_admin_changes(conn)?;
        let user = target(conn, user_id)?;
        if user.disabled == disabled {
            return Ok(SessionChanges::default());
        }
        if disabled {
            keep_an_admin(conn, &user)?;
        }
        db::users::set_disabled(conn, user_id, disabled)?;
        let kind = if disabled {
            EventKind::UserDisabled
        } else {
            EventKind::UserEnabled
        };
        let note = actor.note();
        events::record_with(
            conn,
            now,
            kind,
            Some(user_id),
            None,
            &actor.client,
            Some(&note),
        )?;
        let ended = if disabled {
            let ending = Ending {
                now,
                reason: EndReason::UserDisabled,
                event: EventKind::SessionRevoked,
                client: &actor.client,
                detail: Some(&note),
            };
            session::end_all_except_in(conn, user_id, None, &ending)?
        } else {
            Vec::new()
        };
        Ok(SessionChanges {
            ended,
            renewed: Vec::new(),
        })
    })
}

/// Ends one session of `user_id` (an unknown or foreign `sid` is `NotFound`).
pub fn revoke_session(
    conn: &mut Conn,
    now: i64,
    user_id: i64,
    sid: &str,
    actor: &Actor,
) -> Result<SessionChanges, AdminError> {
    let note = actor.note();
    let ended = session::end_one(
        conn,
        user_id,
        sid,
        &Ending::revoked(now, &actor.client, Some(&note)),
    )?;
    if !ended {
        return Err(AdminError::NotFound);
    }
    Ok(SessionChanges {
        ended: vec![sid.to_owned()],
        renewed: Vec::new(),
    })
}

/// Ends every session of `user_id`.
pub fn revoke_all(
    conn: &mut Conn,
    now: i64,
    user_id: i64,
    actor: &Actor,
) -> Result<SessionChanges, AdminError> {
    target(conn, user_id)?;
    let note = actor.note();
    let ended = session::end_all_except(
        conn,
        user_id,
        None,
        &Ending::revoked(now, &actor.client, Some(&note)),
    )?;
    Ok(SessionChanges {
        ended,
        renewed: Vec::new(),
    })
}

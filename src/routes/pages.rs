//! The landing page and the signed-in user's profile.

use rocket::{State, get};
use rocket_dyn_templates::Template;
use serde_json::json;

use crate::auth::{SignedIn, Viewer};
use crate::db::{self, Db, DbError};
use crate::error::AppError;
use crate::events::EventKind;
use crate::views::Page;

/// How many of an account's own security events its profile lists.
const PROFILE_EVENTS: i64 = 20;

#[get("/")]
pub fn index(viewer: Viewer, page: Page) -> Template {
    page.render("index", json!({ "signed_in": viewer.0.is_some() }))
}

#[get("/profile")]
pub async fn profile(user: SignedIn, page: Page, db: &State<Db>) -> Result<Template, AppError> {
    let (user_id, sid) = (user.user_id(), user.sid().to_owned());
    let (account, session, events) = db
        .run(move |conn| {
            let account = db::users::find(conn, user_id)?;
            let session = db::sessions::find_by_public_id(conn, &sid)?;
            let events = db::events::latest_for_user(conn, user_id, PROFILE_EVENTS)?;
            Ok::<_, DbError>((account, session, events))
        })
        .await?;
    let Some(account) = account else {
        return Err(AppError::NotFound);
    };
    let events: Vec<_> = events
        .iter()
        .map(|e| {
            let kind = EventKind::parse(&e.kind);
            json!({
                "at": e.created_at,
                "kind": e.kind,
                "description": kind.map_or_else(|| e.kind.clone(), |k| k.describe().to_owned()),
                "ip": e.ip,
                "user_agent": e.user_agent,
            })
        })
        .collect();
    Ok(page.render(
        "profile",
        json!({
            "username": account.username,
            "role": account.role,
            "created_at": account.created_at,
            "session": session.map(|s| json!({
                "device": s.first_user_agent,
                "ip": s.last_ip,
                "created_at": s.created_at,
            })),
            "access_expires_at": user.0.exp,
            "events": events,
        }),
    ))
}

//! The admin console: users, their sessions and events, and the actions on them.

use rocket::form::FromForm;
use rocket::http::Status;
use rocket::request::{FromRequest, Outcome};
use rocket::response::Redirect;
use rocket::{Either, Request, State, get, post};
use rocket_dyn_templates::Template;
use serde_json::{Value, json};

use crate::accounts::Role;
use crate::admin::{self, Actor, AdminError, SessionChanges};
use crate::auth::Admin;
use crate::auth::cookies::Notice;
use crate::auth::csrf::{Checked, CsrfForm};
use crate::auth::session::Lifetimes;
use crate::client::ClientInfo;
use crate::db::{self, Conn, Db, DbError};
use crate::error::AppError;
use crate::routes::account::ButtonForm;
use crate::routes::effects::Effects;
use crate::views::{self, Page};
use crate::web::chart;

const USERS_PER_PAGE: i64 = 50;
const EVENTS_PER_PAGE: i64 = 25;
const USER_EVENTS: i64 = 50;
const USER_ENDED_SESSIONS: i64 = 20;

/// A user id from the path: anything but a number is simply not found.
fn user_id(id: &str) -> Result<i64, AppError> {
    id.parse().map_err(|_| AppError::NotFound)
}

/// Page numbers start at 1; anything else is the first page.
fn offset(page: Option<i64>, per_page: i64) -> (i64, i64) {
    let page = page.filter(|p| (1..=1_000_000).contains(p)).unwrap_or(1);
    (page, (page - 1) * per_page)
}

fn pages(total: i64, per_page: i64) -> i64 {
    ((total + per_page - 1) / per_page).max(1)
}

#[get("/admin?<users>&<events>")]
pub async fn console(
    _admin: Admin,
    users: Option<i64>,
    events: Option<i64>,
    page: Page,
    db: &State<Db>,
    lifetimes: &State<Lifetimes>,
    fx: Effects<'_>,
) -> Result<Template, AppError> {
    let (now, refresh_ttl) = (fx.now, lifetimes.refresh_ttl);
    let (users_page, users_offset) = offset(users, USERS_PER_PAGE);
    let (events_page, events_offset) = offset(events, EVENTS_PER_PAGE);
    let since = (now / 3600 - (chart::HOURS as i64 - 1)) * 3600;
    let kinds = chart::SERIES.map(|s| s.0);
    let (rows, counts, user_total, event_rows, event_total, hourly) = db
        .run(move |conn| {
            let rows = db::users::page(conn, users_offset, USERS_PER_PAGE)?;
            let ids: Vec<i64> = rows.iter().map(|u| u.id).collect();
            let counts = db::sessions::count_active_by_user(conn, &ids, now, refresh_ttl)?;
            let user_total = db::users::count(conn)?;
            let event_rows = db::events::page_with_usernames(conn, events_offset, EVENTS_PER_PAGE)?;
            let event_total = db::events::count(conn)?;
            let hourly = db::events::hourly_counts(conn, since, &kinds)?;
            Ok::<_, DbError>((rows, counts, user_total, event_rows, event_total, hourly))
        })
        .await?;
    let users: Vec<Value> = rows
        .iter()
        .map(|u| {
            let active = counts.iter().find(|(id, _)| *id == u.id).map_or(0, |c| c.1);
            json!({
                "id": u.id,
                "username": u.username,
                "role": u.role,
                "created_at": u.created_at,
                "last_login_at": u.last_login_at,
                "active_sessions": active,
                "disabled": u.disabled,
            })
        })
        .collect();
    let events: Vec<Value> = event_rows
        .iter()
        .map(|(e, name)| views::event(e, name.as_deref()))
        .collect();
    Ok(page.render(
        "admin",
        json!({
            "users": users,
            "users_page": users_page,
            "users_pages": pages(user_total, USERS_PER_PAGE),
            "user_total": user_total,
            "events": events,
            "events_page": events_page,
            "events_pages": pages(event_total, EVENTS_PER_PAGE),
            "chart": chart::hourly(&hourly, since),
        }),
    ))
}

/// One user's page, with a message when an action on it was refused.
async fn user_context(
    db: &Db,
    user_id: i64,
    now: i64,
    refresh_ttl: i64,
    error: Option<&str>,
) -> Result<Value, AppError> {
    let loaded = db
        .run(move |conn: &mut Conn| {
            let Some(user) = db::users::find(conn, user_id)? else {
                return Ok(None);
            };
            let active = db::sessions::active_for_user(conn, user_id, now, refresh_ttl)?;
            let ended = db::sessions::ended_for_user(conn, user_id, USER_ENDED_SESSIONS)?;
            let events = db::events::latest_for_user(conn, user_id, USER_EVENTS)?;
            Ok::<_, DbError>(Some((user, active, ended, events)))
        })
        .await?;
    let (user, active, ended, events) = loaded.ok_or(AppError::NotFound)?;
    Ok(json!({
        "user": {
            "id": user.id,
            "username": user.username,
            "role": user.role,
            "disabled": user.disabled,
            "created_at": user.created_at,
            "last_login_at": user.last_login_at,
        },
        "sessions": active.iter().map(|s| views::session(s, None)).collect::<Vec<_>>(),
        "ended_sessions": ended.iter().map(|s| views::session(s, None)).collect::<Vec<_>>(),
        "events": events.iter().map(|e| views::event(e, None)).collect::<Vec<_>>(),
        "error": error,
    }))
}

#[get("/admin/users/<id>")]
pub async fn user(
    _admin: Admin,
    id: &str,
    page: Page,
    db: &State<Db>,
    lifetimes: &State<Lifetimes>,
    fx: Effects<'_>,
) -> Result<Template, AppError> {
    let context = user_context(db, user_id(id)?, fx.now, lifetimes.refresh_ttl, None).await?;
    Ok(page.render("admin_user", context))
}

type ActionResult = Result<Either<Redirect, (Status, Template)>, AppError>;

/// Everything an admin action needs: the admin (the guard refuses anyone else), the database,
/// the request's client, the page and the effects on the way out.
pub struct Console<'r> {
    admin: Admin,
    db: &'r Db,
    lifetimes: &'r Lifetimes,
    client: ClientInfo,
    page: Page,
    fx: Effects<'r>,
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for Console<'r> {
    type Error = ();

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, ()> {
        let admin = match Admin::from_request(req).await {
            Outcome::Success(admin) => admin,
            Outcome::Error(e) => return Outcome::Error(e),
            Outcome::Forward(f) => return Outcome::Forward(f),
        };
        let fx = match Effects::from_request(req).await {
            Outcome::Success(fx) => fx,
            Outcome::Error(e) => return Outcome::Error(e),
            Outcome::Forward(f) => return Outcome::Forward(f),
        };
        let (Some(db), Some(lifetimes)) = (
            req.rocket().state::<Db>(),
            req.rocket().state::<Lifetimes>(),
        ) else {
            return Outcome::Error((Status::InternalServerError, ()));
        };
        Outcome::Success(Console {
            admin,
            db,
            lifetimes,
            client: ClientInfo::of(req),
            page: Page::of(req),
            fx,
        })
    }
}

impl Console<'_> {
    /// Runs an admin action on user `id` and answers the way every admin form does: 303 back to
    /// the user's page with a message, or the page again with 409 for the last-admin rule.
    async fn act<F>(self, id: &str, notice: Notice, action: F) -> ActionResult
    where
        F: FnOnce(&mut Conn, i64, i64, &Actor) -> Result<SessionChanges, AdminError>
            + Send
            + 'static,
    {
        let id = user_id(id)?;
        let (admin_id, now, client) = (self.admin.0.user_id(), self.fx.now, self.client);
        let outcome = self
            .db
            .write(move |conn| {
                let name = db::users::find(conn, admin_id)
                    .map_err(DbError::from)?
                    .map_or_else(
                        || format!("admin #{admin_id}"),
                        |u| format!("admin {}", u.username),
                    );
                let actor = Actor { name, client };
                Ok::<_, AdminError>(action(conn, now, id, &actor))
            })
            .await;
        match outcome.and_then(|r| r) {
            Ok(changes) => {
                self.fx.apply(changes);
                self.fx.notice(notice);
                Ok(Either::Left(Redirect::to(format!("/admin/users/{id}"))))
            }
            Err(AdminError::NotFound) => Err(AppError::NotFound),
            Err(AdminError::LastAdmin) => {
                let message = "This is the last active admin: make another admin first.";
                let context =
                    user_context(self.db, id, now, self.lifetimes.refresh_ttl, Some(message))
                        .await?;
                Ok(Either::Right((
                    Status::Conflict,
                    self.page.render("admin_user", context),
                )))
            }
            Err(AdminError::Db(e)) => Err(AppError::Db(e)),
        }
    }
}

#[post("/admin/users/<id>/sessions/<sid>/revoke", data = "<_form>")]
pub async fn revoke_session(
    console: Console<'_>,
    id: &str,
    sid: &str,
    _form: Checked<ButtonForm>,
) -> ActionResult {
    let sid = sid.to_owned();
    console
        .act(id, Notice::SessionEnded, move |conn, now, id, actor| {
            admin::revoke_session(conn, now, id, &sid, actor)
        })
        .await
}

#[post("/admin/users/<id>/revoke-all", data = "<_form>")]
pub async fn revoke_all(
    console: Console<'_>,
    id: &str,
    _form: Checked<ButtonForm>,
) -> ActionResult {
    console
        .act(id, Notice::UserSessionsEnded, admin::revoke_all)
        .await
}

#[derive(FromForm)]
pub struct RoleForm {
    role: String,
}

impl CsrfForm for RoleForm {}

#[post("/admin/users/<id>/role", data = "<form>")]
pub async fn set_role(console: Console<'_>, id: &str, form: Checked<RoleForm>) -> ActionResult {
    let Some(role) = Role::parse(&form.0.role) else {
        return Err(AppError::Invalid("The role must be `admin` or `user`."));
    };
    console
        .act(id, Notice::RoleChanged, move |conn, now, id, actor| {
            admin::set_role(conn, now, id, role, actor)
        })
        .await
}

#[post("/admin/users/<id>/disable", data = "<_form>")]
pub async fn disable(console: Console<'_>, id: &str, _form: Checked<ButtonForm>) -> ActionResult {
    console
        .act(id, Notice::UserDisabled, move |conn, now, id, actor| {
            admin::set_disabled(conn, now, id, true, actor)
        })
        .await
}

#[post("/admin/users/<id>/enable", data = "<_form>")]
pub async fn enable(console: Console<'_>, id: &str, _form: Checked<ButtonForm>) -> ActionResult {
    console
        .act(id, Notice::UserEnabled, move |conn, now, id, actor| {
            admin::set_disabled(conn, now, id, false, actor)
        })
        .await
}

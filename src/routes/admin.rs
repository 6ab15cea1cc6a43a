//! The admin console: users, their sessions and events, and the actions on them.

use rocket::form::FromForm;
use rocket::http::Status;
use rocket::outcome::try_outcome;
use rocket::request::{FromRequest, Outcome};
use rocket::response::Redirect;
use rocket::{Either, Request, State, get, post};
use rocket_dyn_templates::Template;
use serde_json::{Value, json};

use crate::auth::keys::ServerSecret;
use crate::auth::roles::Role;
use crate::config::Config;
use crate::core::admin::{self, Actor, AdminError};
use crate::core::client::ClientInfo;
use crate::core::email::EmailPolicy;
use crate::core::second_factors;
use crate::core::sessions::Lifetimes;
use crate::db::{
    self, Db, DbError, Tx,
    sessions::{Alive, SessionRow},
};
use crate::http::chart;
use crate::http::cookies::Notice;
use crate::http::csrf::{Checked, CsrfForm};
use crate::http::device_labels::DeviceLabels;
use crate::http::effects::Effects;
use crate::http::error::AppError;
use crate::http::forms::ButtonForm;
use crate::http::guards::{Admin, Sudo};
use crate::http::page::{self as views, Page};

const USERS_PER_PAGE: i64 = 50;
const EVENTS_PER_PAGE: i64 = 25;

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
    console: Console<'_>,
    users: Option<i64>,
    events: Option<i64>,
) -> Result<Template, AppError> {
    console.admitted()?;
    let Console {
        db,
        lifetimes,
        labels,
        page,
        fx,
        ..
    } = console;
    let (users_page, users_offset) = offset(users, USERS_PER_PAGE);
    let (events_page, events_offset) = offset(events, EVENTS_PER_PAGE);
    let chart_since = (fx.now / 3600 - (chart::HOURS as i64 - 1)) * 3600;
    let slice = admin::OverviewPage {
        users_offset,
        users_limit: USERS_PER_PAGE,
        events_offset,
        events_limit: EVENTS_PER_PAGE,
        chart_since,
        charted: &chart::KINDS,
    };
    let alive = lifetimes.alive(fx.now);
    let overview = db
        .run(move |conn| admin::overview(conn, slice, alive))
        .await?;
    let users: Vec<Value> = overview.users.iter().map(views::user_summary).collect();
    let events: Vec<Value> = overview
        .events
        .iter()
        .map(|(e, name)| views::event(e, name.as_deref(), labels))
        .collect();
    Ok(page.render(
        "admin",
        json!({
            "users": users,
            "users_page": users_page,
            "users_pages": pages(overview.user_total, USERS_PER_PAGE),
            "user_total": overview.user_total,
            "events": events,
            "events_page": events_page,
            "events_pages": pages(overview.event_total, EVENTS_PER_PAGE),
            "chart": chart::hourly(&overview.hourly, chart_since),
        }),
    ))
}

/// One user's page, with a message when an action on it was refused.
async fn user_context(
    db: &Db,
    labels: &DeviceLabels,
    user_id: i64,
    alive: Alive,
    error: Option<&str>,
) -> Result<Value, AppError> {
    let detail = db
        .run(move |conn| admin::user_detail(conn, user_id, alive))
        .await?
        .ok_or(AppError::NotFound)?;
    let sessions = |rows: &[SessionRow]| -> Vec<Value> {
        rows.iter()
            .map(|s| views::session(s, None, labels))
            .collect()
    };
    Ok(json!({
        "user": views::user_summary(&admin::UserSummary {
            active_sessions: i64::try_from(detail.active.len()).unwrap_or(i64::MAX),
            user: detail.user,
        }),
        "methods": detail.methods,
        "sessions": sessions(&detail.active),
        "ended_sessions": sessions(&detail.ended),
        "events": detail
            .events
            .iter()
            .map(|e| views::event(e, None, labels))
            .collect::<Vec<_>>(),
        "error": error,
    }))
}

#[get("/admin/users/<id>")]
pub async fn user(console: Console<'_>, id: &str) -> Result<Template, AppError> {
    console.admitted()?;
    let Console {
        db,
        lifetimes,
        labels,
        page,
        fx,
        ..
    } = console;
    let context = user_context(db, labels, user_id(id)?, lifetimes.alive(fx.now), None).await?;
    Ok(page.render("admin_user", context))
}

type ActionResult = Result<Either<Redirect, (Status, Template)>, AppError>;

/// Everything an admin page or action needs: the admin (the guard refuses anyone else), the
/// database, the request's client, the page and the effects on the way out.
pub struct Console<'r> {
    admin: Admin,
    /// The admin's session authenticated within `sudo_ttl`.
    sudo: bool,
    /// `require_mfa_for_admins` is on and this admin has no second factor.
    second_factor_missing: bool,
    db: &'r Db,
    lifetimes: &'r Lifetimes,
    labels: &'r DeviceLabels,
    client: ClientInfo,
    page: Page,
    fx: Effects<'r>,
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for Console<'r> {
    type Error = ();

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, ()> {
        let admin = try_outcome!(req.guard::<Admin>().await);
        let sudo = try_outcome!(req.guard::<Sudo>().await)
            .or_ask("/admin")
            .is_ok();
        let fx = try_outcome!(req.guard::<Effects<'r>>().await);
        let (Some(db), Some(lifetimes), Some(labels), Some(config)) = (
            req.rocket().state::<Db>(),
            req.rocket().state::<Lifetimes>(),
            req.rocket().state::<DeviceLabels>(),
            req.rocket().state::<Config>(),
        ) else {
            return Outcome::Error((Status::InternalServerError, ()));
        };
        let second_factor_missing = if config.require_mfa_for_admins {
            let id = admin.0.user_id();
            let found = db
                .run(move |conn| -> Result<bool, DbError> {
                    match db::users::find(conn, id)? {
                        Some(user) => Ok(second_factors::is_on(conn, &user)?),
                        None => Ok(false),
                    }
                })
                .await;
            match found {
                Ok(on) => !on,
                Err(_) => return Outcome::Error((Status::ServiceUnavailable, ())),
            }
        } else {
            false
        };
        Outcome::Success(Console {
            admin,
            sudo,
            second_factor_missing,
            db,
            lifetimes,
            labels,
            client: crate::http::client_guard::of(req),
            page: Page::of(req),
            fx,
        })
    }
}

impl Console<'_> {
    /// Whether this admin may use the console: with `require_mfa_for_admins`, only once a
    /// second factor is on (else to `/security`).
    fn admitted(&self) -> Result<(), AppError> {
        if self.second_factor_missing {
            return Err(AppError::SecondFactorNeeded);
        }
        Ok(())
    }

    /// Runs an admin action on user `id` and answers the way every admin form does: 303 back to
    /// the user's page with a message, or the page again with 409 for the last-admin rule.
    async fn act<F, R>(self, id: &str, notice: Notice, action: F) -> ActionResult
    where
        F: FnOnce(&mut Tx<'_>, i64, i64, &Actor) -> Result<R, AdminError> + Send + 'static,
        R: Send + 'static,
    {
        let id = user_id(id)?;
        self.admitted()?;
        if !self.sudo {
            return Err(AppError::SudoNeeded(format!("/admin/users/{id}")));
        }
        let (admin_id, now, client) = (self.admin.0.user_id(), self.fx.now, self.client);
        let outcome = self
            .db
            .write(move |tx| {
                let name = db::users::find(tx, admin_id)
                    .map_err(DbError::from)?
                    .map_or_else(
                        || format!("admin #{admin_id}"),
                        |u| format!("admin {}", u.username),
                    );
                let actor = Actor { name, client };
                action(tx, now, id, &actor)
            })
            .await;
        match outcome {
            Ok(_) => {
                self.fx.notice(notice);
                Ok(Either::Left(Redirect::to(format!("/admin/users/{id}"))))
            }
            Err(AdminError::NotFound) => Err(AppError::NotFound),
            Err(AdminError::LastAdmin) => {
                let message = "This is the last active admin: make another admin first.";
                let context = user_context(
                    self.db,
                    self.labels,
                    id,
                    self.lifetimes.alive(now),
                    Some(message),
                )
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
        .act(id, Notice::SessionEnded, move |tx, now, id, actor| {
            admin::revoke_session(tx, now, id, &sid, actor)
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
        .act(id, Notice::RoleChanged, move |tx, now, id, actor| {
            admin::set_role(tx, now, id, role, actor)
        })
        .await
}

#[post("/admin/users/<id>/disable", data = "<_form>")]
pub async fn disable(console: Console<'_>, id: &str, _form: Checked<ButtonForm>) -> ActionResult {
    console
        .act(id, Notice::UserDisabled, move |tx, now, id, actor| {
            admin::set_disabled(tx, now, id, true, actor)
        })
        .await
}

#[post("/admin/users/<id>/enable", data = "<_form>")]
pub async fn enable(console: Console<'_>, id: &str, _form: Checked<ButtonForm>) -> ActionResult {
    console
        .act(id, Notice::UserEnabled, move |tx, now, id, actor| {
            admin::set_disabled(tx, now, id, false, actor)
        })
        .await
}

#[post("/admin/users/<id>/reset-mfa", data = "<_form>")]
pub async fn reset_mfa(console: Console<'_>, id: &str, _form: Checked<ButtonForm>) -> ActionResult {
    console
        .act(id, Notice::SecondFactorsReset, admin::reset_mfa)
        .await
}

#[post("/admin/users/<id>/send-reset", data = "<_form>")]
pub async fn send_reset(
    console: Console<'_>,
    id: &str,
    _form: Checked<ButtonForm>,
    secret: &State<ServerSecret>,
    policy: &State<EmailPolicy>,
) -> ActionResult {
    let (secret, policy) = (secret.inner().clone(), *policy.inner());
    console
        .act(id, Notice::ResetSent, move |tx, now, id, actor| {
            admin::send_reset(tx, &secret, policy, now, id, actor)
        })
        .await
}

/// Mounts this file's routes.
pub fn stage() -> rocket::fairing::AdHoc {
    rocket::fairing::AdHoc::on_ignite("admin console", |rocket| async {
        rocket.mount(
            "/",
            rocket::routes![
                console,
                user,
                revoke_session,
                revoke_all,
                set_role,
                disable,
                enable,
                reset_mfa,
                send_reset
            ],
        )
    })
}

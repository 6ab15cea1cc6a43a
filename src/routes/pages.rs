//! The landing page and the signed-in user's profile (with the password change form).

use rocket::form::FromForm;
use rocket::http::Status;
use rocket::response::Redirect;
use rocket::{Either, State, get, post, uri};
use rocket_dyn_templates::Template;
use serde_json::{Value, json};

use crate::accounts::{Accounts, PasswordChangeError};
use crate::auth::cookies::Notice;
use crate::auth::csrf::{Checked, CsrfForm};
use crate::auth::passwords::{MAX_PASSWORD_CHARS, MIN_PASSWORD_CHARS};
use crate::auth::{SignedIn, Viewer};
use crate::client::ClientInfo;
use crate::db::{self, Conn, Db, DbError};
use crate::error::AppError;
use crate::routes::effects::Effects;
use crate::views::{self, Page};

/// How many of an account's own security events its profile lists.
const PROFILE_EVENTS: i64 = 20;

#[get("/")]
pub fn index(viewer: Viewer, page: Page) -> Template {
    page.render("index", json!({ "signed_in": viewer.0.is_some() }))
}

/// Sessions ended by reuse detection that this session is the first sign-in after: the user
/// should hear which device was affected.
fn reuse_notices(conn: &mut Conn, user_id: i64, current_id: i64) -> Result<Vec<String>, DbError> {
    let mut devices = Vec::new();
    for ended in db::sessions::ended_for_user(conn, user_id, 20)? {
        let (Some(at), Some("refresh_token_reuse")) = (ended.ended_at, ended.end_reason.as_deref())
        else {
            continue;
        };
        if db::sessions::first_started_after(conn, user_id, at)? == Some(current_id) {
            devices.push(crate::device::label(&ended.last_user_agent));
        }
    }
    Ok(devices)
}

/// Everything the profile page shows, with the password form's message if any.
async fn profile_context(
    user: &SignedIn,
    db: &Db,
    password_error: Option<String>,
) -> Result<Value, AppError> {
    let (user_id, sid) = (user.user_id(), user.sid().to_owned());
    let (account, session, events, reused) = db
        .run(move |conn| {
            let account = db::users::find(conn, user_id)?;
            let session = db::sessions::find_by_public_id(conn, &sid)?;
            let events = db::events::latest_for_user(conn, user_id, PROFILE_EVENTS)?;
            let reused = match &session {
                Some(s) => reuse_notices(conn, user_id, s.id)?,
                None => Vec::new(),
            };
            Ok::<_, DbError>((account, session, events, reused))
        })
        .await?;
    let account = account.ok_or(AppError::NotFound)?;
    let events: Vec<_> = events.iter().map(|e| views::event(e, None)).collect();
    Ok(json!({
        "username": account.username,
        "role": account.role,
        "created_at": account.created_at,
        "session": session.map(|s| views::session(&s, Some(user.sid()))),
        "access_expires_at": user.0.exp,
        "events": events,
        "reused_devices": reused,
        "password_error": password_error,
        "min_password": MIN_PASSWORD_CHARS,
        "max_password": MAX_PASSWORD_CHARS,
    }))
}

#[get("/profile")]
pub async fn profile(user: SignedIn, page: Page, db: &State<Db>) -> Result<Template, AppError> {
    Ok(page.render("profile", profile_context(&user, db, None).await?))
}

#[derive(FromForm)]
pub struct PasswordForm {
    current_password: String,
    new_password: String,
    csrf_token: String,
}

impl CsrfForm for PasswordForm {
    fn csrf_token(&self) -> &str {
        &self.csrf_token
    }
}

#[post("/password", data = "<form>")]
pub async fn change_password(
    user: SignedIn,
    form: Checked<PasswordForm>,
    client: ClientInfo,
    accounts: Accounts<'_>,
    page: Page,
    fx: Effects<'_>,
) -> Result<Either<Redirect, (Status, Template)>, AppError> {
    let form = form.0;
    let outcome = accounts
        .change_password(
            fx.now,
            user.user_id(),
            user.sid(),
            &form.current_password,
            &form.new_password,
            client,
        )
        .await;
    let message = match outcome {
        Ok(ended) => {
            fx.ended(ended);
            fx.notice(Notice::PasswordChanged);
            return Ok(Either::Left(Redirect::to(uri!("/profile"))));
        }
        Err(PasswordChangeError::WrongCurrent) => "The current password is not right.".to_owned(),
        Err(PasswordChangeError::Weak(why)) => format!("New password: {why}"),
        Err(PasswordChangeError::Busy) => return Err(AppError::Busy),
        Err(PasswordChangeError::Db(e)) => return Err(AppError::Db(e)),
    };
    let context = profile_context(&user, accounts.db, Some(message)).await?;
    Ok(Either::Right((
        Status::UnprocessableEntity,
        page.render("profile", context),
    )))
}

//! A user's own sessions: list them, end one, end all the others.

use rocket::response::Redirect;
use rocket::{State, get, post, uri};
use rocket_dyn_templates::Template;
use serde_json::json;

use crate::core::client::ClientInfo;
use crate::core::sessions::{self as session, Ending, Lifetimes};
use crate::db::{Db, DbError};
use crate::http::cookies::Notice;
use crate::http::csrf::Checked;
use crate::http::device_labels::DeviceLabels;
use crate::http::effects::Effects;
use crate::http::error::AppError;
use crate::http::forms::ButtonForm;
use crate::http::guards::{SignedIn, Sudo};
use crate::http::page::{self as views, Page};

#[get("/sessions")]
pub async fn list(
    user: SignedIn,
    page: Page,
    db: &State<Db>,
    lifetimes: &State<Lifetimes>,
    labels: &State<DeviceLabels>,
    fx: Effects<'_>,
) -> Result<Template, AppError> {
    let (user_id, alive) = (user.user_id(), lifetimes.alive(fx.now));
    let rows = db
        .run(move |conn| session::alive_of_user(conn, user_id, alive))
        .await?;
    if !rows.iter().any(|s| s.public_id == user.sid()) {
        return Err(AppError::SessionEnded);
    }
    let sessions: Vec<_> = rows
        .iter()
        .map(|s| views::session(s, Some(user.sid()), labels))
        .collect();
    Ok(page.render("sessions", json!({ "sessions": sessions })))
}

#[post("/sessions/<sid>/revoke", data = "<_form>")]
pub async fn revoke(
    user: SignedIn,
    sid: &str,
    _form: Checked<ButtonForm>,
    client: ClientInfo,
    db: &State<Db>,
    fx: Effects<'_>,
) -> Result<Redirect, AppError> {
    let ended = session::revoke_own(db, user.user_id(), sid.to_owned(), fx.now, client).await?;
    if !ended {
        return Err(AppError::NotFound);
    }
    if sid == user.sid() {
        fx.signed_out();
        return Ok(Redirect::to(uri!("/login")));
    }
    fx.notice(Notice::SessionEnded);
    Ok(Redirect::to(uri!("/sessions")))
}

#[post("/sessions/revoke-others", data = "<_form>")]
pub async fn revoke_others(
    sudo: Sudo,
    _form: Checked<ButtonForm>,
    client: ClientInfo,
    db: &State<Db>,
    fx: Effects<'_>,
) -> Result<Redirect, AppError> {
    let user = sudo.or_ask("/sessions")?;
    let (user_id, now, keep) = (user.user_id(), fx.now, user.sid().to_owned());
    db.write(move |tx| {
        let ending = Ending::revoked(now, &client, Some("signed out everywhere else"));
        session::end_all_except(tx, user_id, Some(&keep), &ending).map_err(DbError::from)
    })
    .await?;
    fx.notice(Notice::OtherSessionsEnded);
    Ok(Redirect::to(uri!("/sessions")))
}

/// Mounts this file's routes.
pub fn stage() -> rocket::fairing::AdHoc {
    rocket::fairing::AdHoc::on_ignite("session list", |rocket| async {
        rocket.mount("/", rocket::routes![list, revoke, revoke_others])
    })
}

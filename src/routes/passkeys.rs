//! Passkeys in the browser: registering and deleting them on `/security`, and passwordless
//! sign-in. The ceremonies are JSON exchanges with `static/passkeys.js`, whose requests carry
//! the page's CSRF token in `X-CSRF-Token`.

use rocket::response::Redirect;
use rocket::serde::json::Json;
use rocket::{State, post, uri};
use serde::Deserialize;
use serde_json::{Value, json};
use webauthn_rs::prelude::{PublicKeyCredential, RegisterPublicKeyCredential};

use crate::core::client::ClientInfo;
use crate::core::passkeys::{self, Challenge, Passkeys};
use crate::core::sign_in::Accounts;
use crate::db::{self, Db, DbError};
use crate::http::cookies::{ClientDevice, Notice};
use crate::http::csrf::{BrowserCookie, Checked, CsrfHeader};
use crate::http::desk::Desk;
use crate::http::effects::Effects;
use crate::http::error::{ApiError, AppError};
use crate::http::forms::ButtonForm;
use crate::http::guards::Sudo;
use crate::http::redirects::local_path;

type JsonAnswer = Result<Json<Value>, ApiError>;
type ChallengeAnswer = Result<Json<Challenge>, ApiError>;

#[post("/security/passkeys/register/start")]
pub async fn register_start(
    sudo: Sudo,
    _csrf: CsrfHeader,
    passkeys: &State<Passkeys>,
    db: &State<Db>,
    fx: Effects<'_>,
) -> Result<ChallengeAnswer, AppError> {
    let user = sudo.or_ask("/security")?;
    let (passkeys, user_id, now) = (passkeys.inner().clone(), user.user_id(), fx.now);
    let sid = user.sid().to_owned();
    let answer = db
        .write(move |tx| -> Result<_, DbError> {
            let Some(account) = db::users::find(tx, user_id)? else {
                return Ok(Err(passkeys::PasskeyError::SessionEnded));
            };
            Ok(passkeys.register_start(tx, &account, &sid, now))
        })
        .await?;
    Ok(answer.map(Json).map_err(ApiError::from))
}

#[derive(Deserialize)]
pub struct Registration {
    ceremony: String,
    name: String,
    credential: RegisterPublicKeyCredential,
}

#[post("/security/passkeys/register/finish", data = "<body>")]
pub async fn register_finish(
    sudo: Sudo,
    _csrf: CsrfHeader,
    body: Json<Registration>,
    client: ClientInfo,
    passkeys: &State<Passkeys>,
    db: &State<Db>,
    fx: Effects<'_>,
) -> Result<JsonAnswer, AppError> {
    let user = sudo.or_ask("/security")?;
    let (passkeys, owner, now, body) = (
        passkeys.inner().clone(),
        user.owner(client),
        fx.now,
        body.into_inner(),
    );
    let answer = db
        .write(move |tx| -> Result<_, DbError> {
            Ok(passkeys.register_finish(
                tx,
                &owner,
                &body.ceremony,
                &body.name,
                &body.credential,
                now,
            ))
        })
        .await?;
    if answer.is_ok() {
        fx.notice(Notice::PasskeyAdded);
    }
    Ok(answer
        .map(|()| Json(json!({ "next": "/security" })))
        .map_err(ApiError::from))
}

#[post("/security/passkeys/<id>/delete", data = "<_form>")]
pub async fn delete(
    sudo: Sudo,
    id: i64,
    _form: Checked<ButtonForm>,
    client: ClientInfo,
    db: &State<Db>,
    fx: Effects<'_>,
) -> Result<Redirect, AppError> {
    let user = sudo.or_ask("/security")?;
    let (owner, now) = (user.owner(client), fx.now);
    let deleted = db
        .write(move |tx| passkeys::delete(tx, &owner, id, now).map_err(DbError::from))
        .await?;
    if !deleted {
        return Err(AppError::NotFound);
    }
    fx.notice(Notice::PasskeyRemoved);
    Ok(Redirect::to(uri!("/security")))
}

#[post("/login/passkey/start")]
pub async fn login_start(
    browser: BrowserCookie,
    client: ClientInfo,
    accounts: Accounts<'_>,
    passkeys: &State<Passkeys>,
    fx: Effects<'_>,
) -> Result<ChallengeAnswer, AppError> {
    let (passkeys, throttle, now) = (passkeys.inner().clone(), accounts.throttle, fx.now);
    let answer = accounts
        .db
        .write(move |tx| -> Result<_, DbError> {
            Ok(passkeys.login_start(tx, &throttle, &client, &browser.0, now))
        })
        .await?;
    Ok(answer.map(Json).map_err(ApiError::from))
}

#[derive(Deserialize)]
pub struct Assertion {
    ceremony: String,
    credential: PublicKeyCredential,
    /// Where the page was going to send the browser once signed in.
    #[serde(default)]
    next: Option<String>,
}

#[post("/login/passkey/finish", data = "<body>")]
pub async fn login_finish(
    browser: BrowserCookie,
    body: Json<Assertion>,
    caller: ClientDevice,
    accounts: Accounts<'_>,
    passkeys: &State<Passkeys>,
    desk: Desk<'_>,
    fx: Effects<'_>,
) -> JsonAnswer {
    let body = body.into_inner();
    let signed_in = accounts
        .passkey_login(
            passkeys,
            fx.now,
            (body.ceremony, browser.0),
            body.credential,
            caller.device_token,
            caller.client,
        )
        .await?;
    desk.forget_pending();
    desk.sign_in(&accounts, fx.now, signed_in);
    let next = body
        .next
        .as_deref()
        .and_then(local_path)
        .map_or_else(|| "/profile".to_owned(), |o| o.to_string());
    Ok(Json(json!({ "next": next })))
}

/// Mounts this file's routes.
pub fn stage() -> rocket::fairing::AdHoc {
    rocket::fairing::AdHoc::on_ignite("passkeys", |rocket| async {
        rocket.mount(
            "/",
            rocket::routes![
                register_start,
                register_finish,
                delete,
                login_start,
                login_finish
            ],
        )
    })
}

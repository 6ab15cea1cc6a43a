//! `/sudo`: a signed-in session authenticates again before a sensitive action (its password,
//! plus a code when the account has an authenticator app, or a passkey), and goes back to the
//! page it came from.

use rocket::form::FromForm;
use rocket::http::{CookieJar, Status};
use rocket::request::{FromRequest, Outcome};
use rocket::response::Redirect;
use rocket::serde::json::Json;
use rocket::{Either, Request, State, get, post};
use rocket_dyn_templates::Template;
use serde::Deserialize;
use serde_json::{Value, json};
use webauthn_rs::prelude::PublicKeyCredential;

use crate::auth::tokens::TokenService;
use crate::core::accounts::{CheckError, OwnPasswordError};
use crate::core::client::ClientInfo;
use crate::core::passkeys::{Challenge, Passkeys};
use crate::core::sign_in::Accounts;
use crate::core::sudo::{Reauthentication, SudoError};
use crate::db::{self, Db, DbError, sessions::SessionRow};
use crate::http::cookies::{ClientDevice, CookiePolicy, Notice};
use crate::http::csrf::{Checked, CsrfForm, CsrfHeader};
use crate::http::effects::Effects;
use crate::http::error::{ApiError, AppError, RetryAfter};
use crate::http::guards::SignedIn;
use crate::http::page::{self, Page};
use crate::http::redirects::local_path;

/// Where to go back to: a local path, else the profile.
fn back_to(next: Option<&str>) -> String {
    next.and_then(local_path)
        .map_or_else(|| "/profile".to_owned(), |o| o.to_string())
}

/// What `/sudo` offers an account: a code field (authenticator app), a passkey, or both.
#[derive(Debug, Clone, Copy, serde::Serialize)]
struct Offers {
    code: bool,
    passkey: bool,
}

async fn offers(db: &Db, passkeys: &Passkeys, user_id: i64) -> Result<Offers, AppError> {
    let (totp, passkey_count) = db
        .run(move |conn| -> Result<_, DbError> {
            let totp = db::users::find(conn, user_id)?.and_then(|u| u.totp_enabled_at);
            Ok((totp.is_some(), db::passkeys::count_of_user(conn, user_id)?))
        })
        .await?;
    Ok(Offers {
        code: totp,
        passkey: passkeys.enabled() && passkey_count > 0,
    })
}

fn sudo_form(page: &Page, next: &str, offers: Offers, error: Option<&str>) -> Template {
    page.render(
        "sudo",
        json!({ "next": next, "offers": offers, "error": error }),
    )
}

#[get("/sudo?<next>")]
pub async fn sudo_page(
    user: SignedIn,
    next: Option<&str>,
    page: Page,
    db: &State<Db>,
    passkeys: &State<Passkeys>,
) -> Result<Template, AppError> {
    let offers = offers(db, passkeys, user.user_id()).await?;
    Ok(sudo_form(&page, &back_to(next), offers, None))
}

#[derive(FromForm)]
pub struct SudoForm {
    password: String,
    #[field(default = String::new())]
    code: String,
    next: Option<String>,
}

impl CsrfForm for SudoForm {}

/// What `/sudo` needs beside the rules: the passkeys it may offer, and what gives this
/// browser's session a new access token once it has authenticated again (its `auth_time`
/// moved; the refresh token stays).
pub struct SudoDesk<'r> {
    passkeys: &'r Passkeys,
    tokens: &'r TokenService,
    policy: &'r CookiePolicy,
    jar: &'r CookieJar<'r>,
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for SudoDesk<'r> {
    type Error = ();

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, ()> {
        let rocket = req.rocket();
        let (Some(passkeys), Some(tokens), Some(policy)) = (
            rocket.state::<Passkeys>(),
            rocket.state::<TokenService>(),
            rocket.state::<CookiePolicy>(),
        ) else {
            return Outcome::Error((Status::InternalServerError, ()));
        };
        Outcome::Success(SudoDesk {
            passkeys,
            tokens,
            policy,
            jar: req.cookies(),
        })
    }
}

impl SudoDesk<'_> {
    fn access(&self, accounts: &Accounts<'_>, user: &SignedIn, session: &SessionRow, now: i64) {
        let claims = accounts
            .lifetimes
            .access_claims(self.tokens, session, &user.0.role, now);
        self.policy.set_access(self.jar, self.tokens.sign(&claims));
    }
}

#[post("/sudo", data = "<form>")]
pub async fn sudo(
    user: SignedIn,
    form: Checked<SudoForm>,
    caller: ClientDevice,
    accounts: Accounts<'_>,
    desk: SudoDesk<'_>,
    page: Page,
    fx: Effects<'_>,
) -> Result<Either<Redirect, RetryAfter<(Status, Template)>>, AppError> {
    let form = form.0;
    let next = back_to(form.next.as_deref());
    let asked = Reauthentication {
        user_id: user.user_id(),
        sid: user.sid(),
        password: &form.password,
        code: &form.code,
    };
    let outcome = accounts
        .reauthenticate(fx.now, asked, caller.device_token, caller.client)
        .await;
    let (status, retry_after, message) = match outcome {
        Ok(session) => {
            desk.access(&accounts, &user, &session, fx.now);
            fx.notice(Notice::SudoGranted);
            return Ok(Either::Left(Redirect::to(next)));
        }
        Err(SudoError::Password(OwnPasswordError::Wrong)) => (
            Status::Unauthorized,
            None,
            "The password is not right.".to_owned(),
        ),
        Err(SudoError::WrongCode) => (
            Status::Unauthorized,
            None,
            "The code is not right, or was used before.".to_owned(),
        ),
        Err(SudoError::PasskeyNeeded) => (
            Status::Unauthorized,
            None,
            "This account's second factor is a passkey: use it below.".to_owned(),
        ),
        Err(
            SudoError::Password(OwnPasswordError::Throttled { retry_after })
            | SudoError::CodesThrottled { retry_after },
        ) => (
            Status::TooManyRequests,
            Some(retry_after),
            format!(
                "Too many wrong passwords or codes. Try again in {}.",
                page::minutes(retry_after)
            ),
        ),
        Err(SudoError::SessionEnded) => return Err(AppError::SessionEnded),
        Err(SudoError::Password(OwnPasswordError::Check(CheckError::Hashing(e)))) => {
            return Err(e.into());
        }
        Err(SudoError::Password(OwnPasswordError::Check(CheckError::Db(e))) | SudoError::Db(e)) => {
            return Err(AppError::Db(e));
        }
    };
    let offers = offers(accounts.db, desk.passkeys, user.user_id()).await?;
    Ok(Either::Right(RetryAfter(
        retry_after,
        (status, sudo_form(&page, &next, offers, Some(&message))),
    )))
}

#[post("/sudo/passkey/start")]
pub async fn passkey_start(
    user: SignedIn,
    _csrf: CsrfHeader,
    passkeys: &State<Passkeys>,
    db: &State<Db>,
    fx: Effects<'_>,
) -> Result<Json<Challenge>, ApiError> {
    let (passkeys, user_id, now) = (passkeys.inner().clone(), user.user_id(), fx.now);
    let sid = user.sid().to_owned();
    let challenge = db
        .write(move |tx| -> Result<_, DbError> { Ok(passkeys.sudo_start(tx, user_id, &sid, now)) })
        .await??;
    Ok(Json(challenge))
}

#[derive(Deserialize)]
pub struct SudoAssertion {
    ceremony: String,
    credential: PublicKeyCredential,
    #[serde(default)]
    next: Option<String>,
}

#[post("/sudo/passkey/finish", data = "<body>")]
pub async fn passkey_finish(
    user: SignedIn,
    _csrf: CsrfHeader,
    body: Json<SudoAssertion>,
    client: ClientInfo,
    accounts: Accounts<'_>,
    desk: SudoDesk<'_>,
    fx: Effects<'_>,
) -> Result<Json<Value>, ApiError> {
    let body = body.into_inner();
    let session = accounts
        .passkey_sudo(
            desk.passkeys,
            fx.now,
            user.sid().to_owned(),
            body.ceremony,
            body.credential,
            client,
        )
        .await?;
    desk.access(&accounts, &user, &session, fx.now);
    fx.notice(Notice::SudoGranted);
    Ok(Json(json!({ "next": back_to(body.next.as_deref()) })))
}

/// Mounts this file's routes.
pub fn stage() -> rocket::fairing::AdHoc {
    rocket::fairing::AdHoc::on_ignite("sudo", |rocket| async {
        rocket.mount(
            "/",
            rocket::routes![sudo_page, sudo, passkey_start, passkey_finish],
        )
    })
}

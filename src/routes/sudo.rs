//! `/sudo`: a signed-in session authenticates again before a sensitive action, and goes back to
//! the page it came from.

use rocket::form::FromForm;
use rocket::http::{CookieJar, Status};
use rocket::response::Redirect;
use rocket::{Either, State, get, post};
use rocket_dyn_templates::Template;
use serde_json::json;

use crate::auth::tokens::TokenService;
use crate::core::accounts::{Accounts, CheckError};
use crate::core::second_factors;
use crate::core::sudo::{Reauthentication, SudoError};
use crate::db::{self, Db, DbError};
use crate::http::cookies::{ClientDevice, CookiePolicy, Notice};
use crate::http::csrf::{Checked, CsrfForm};
use crate::http::effects::Effects;
use crate::http::error::{AppError, RetryAfter};
use crate::http::guards::SignedIn;
use crate::http::page::{self, Page};
use crate::routes::account::local_path;

/// Where to go back to: a local path, else the profile.
fn back_to(next: Option<&str>) -> String {
    next.and_then(local_path)
        .map_or_else(|| "/profile".to_owned(), |o| o.to_string())
}

/// Whether the account asks for a code as well as the password.
async fn asks_code(db: &Db, user_id: i64) -> Result<bool, AppError> {
    let user = db
        .run(move |conn| db::users::find(conn, user_id).map_err(DbError::from))
        .await?;
    Ok(user.as_ref().is_some_and(second_factors::is_on))
}

fn sudo_form(page: &Page, next: &str, asks_code: bool, error: Option<&str>) -> Template {
    page.render(
        "sudo",
        json!({ "next": next, "asks_code": asks_code, "error": error }),
    )
}

#[get("/sudo?<next>")]
pub async fn sudo_page(
    user: SignedIn,
    next: Option<&str>,
    page: Page,
    db: &State<Db>,
) -> Result<Template, AppError> {
    let asks_code = asks_code(db, user.user_id()).await?;
    Ok(sudo_form(&page, &back_to(next), asks_code, None))
}

#[derive(FromForm)]
pub struct SudoForm {
    password: String,
    #[field(default = String::new())]
    code: String,
    next: Option<String>,
}

impl CsrfForm for SudoForm {}

/// What answering `/sudo` needs besides the form.
pub struct Reissue<'r> {
    tokens: &'r State<TokenService>,
    policy: &'r State<CookiePolicy>,
    jar: &'r CookieJar<'r>,
}

#[rocket::async_trait]
impl<'r> rocket::request::FromRequest<'r> for Reissue<'r> {
    type Error = ();

    async fn from_request(req: &'r rocket::Request<'_>) -> rocket::request::Outcome<Self, ()> {
        use rocket::request::Outcome;
        let (Outcome::Success(tokens), Outcome::Success(policy)) = (
            req.guard::<&State<TokenService>>().await,
            req.guard::<&State<CookiePolicy>>().await,
        ) else {
            return Outcome::Error((Status::InternalServerError, ()));
        };
        Outcome::Success(Reissue {
            tokens,
            policy,
            jar: req.cookies(),
        })
    }
}

#[post("/sudo", data = "<form>")]
pub async fn sudo(
    user: SignedIn,
    form: Checked<SudoForm>,
    caller: ClientDevice,
    accounts: Accounts<'_>,
    reissue: Reissue<'_>,
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
            // The new `auth_time` travels in a new access token; the refresh token stays.
            let claims =
                accounts
                    .lifetimes
                    .access_claims(reissue.tokens, &session, &user.0.role, fx.now);
            reissue
                .policy
                .set_access(reissue.jar, reissue.tokens.sign(&claims));
            fx.notice(Notice::SudoGranted);
            return Ok(Either::Left(Redirect::to(next)));
        }
        Err(SudoError::WrongPassword) => (
            Status::Unauthorized,
            None,
            "The password is not right.".to_owned(),
        ),
        Err(SudoError::WrongCode) => (
            Status::Unauthorized,
            None,
            "The code is not right, or was used before.".to_owned(),
        ),
        Err(SudoError::Throttled { retry_after }) => (
            Status::TooManyRequests,
            Some(retry_after),
            format!(
                "Too many wrong passwords or codes. Try again in {}.",
                page::minutes(retry_after)
            ),
        ),
        Err(SudoError::SessionEnded) => return Err(AppError::SessionEnded),
        Err(SudoError::Check(CheckError::Hashing(e))) => return Err(e.into()),
        Err(SudoError::Check(CheckError::Db(e))) => return Err(AppError::Db(e)),
    };
    let asks_code = asks_code(accounts.db, user.user_id()).await?;
    Ok(Either::Right(RetryAfter(
        retry_after,
        (status, sudo_form(&page, &next, asks_code, Some(&message))),
    )))
}

/// Mounts this file's routes.
pub fn stage() -> rocket::fairing::AdHoc {
    rocket::fairing::AdHoc::on_ignite("sudo", |rocket| async {
        rocket.mount("/", rocket::routes![sudo_page, sudo])
    })
}

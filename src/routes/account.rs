//! Signing in, signing up and signing out.

use rocket::form::FromForm;
use rocket::http::Method;
use rocket::http::Status;
use rocket::response::Redirect;
use rocket::response::content::RawHtml;
use rocket::{Either, Request, State, catch, get, post, uri};
use rocket_dyn_templates::{Metadata, Template};

use crate::core::accounts::{
    LoginAttempt, LoginError, LoginOutcome, NewAccount, SignupError, SignupErrors,
};
use crate::core::client::ClientInfo;
use crate::core::events::EventKind;
use crate::core::pending_login::{self, SecondStepError};
use crate::core::sessions::{self as session, EndReason, Ending};
use crate::core::sign_in::Accounts;
use crate::db::{Db, DbError};
use crate::http::cookies::{ClientDevice, Notice};
use crate::http::csrf::{Checked, CsrfForm};
use crate::http::desk::Desk;
use crate::http::effects::Effects;
use crate::http::error::{AppError, RetryAfter};
use crate::http::forms::ButtonForm;
use crate::http::guards::{SignedIn, Viewer};
use crate::http::page::FixedPages;
use crate::http::redirects::{after_login, local_path};

type PageResult = Result<Either<Redirect, (Status, Template)>, AppError>;
type LoginResult = Result<Either<Redirect, RetryAfter<(Status, Template)>>, AppError>;

#[get("/login?<next>")]
pub fn login_page(
    viewer: Viewer,
    next: Option<&str>,
    desk: Desk<'_>,
    fixed: &State<FixedPages>,
    templates: Metadata<'_>,
) -> Either<Redirect, Either<Template, RawHtml<String>>> {
    if viewer.0.is_some() {
        return Either::Left(after_login(next));
    }
    if next.is_some() {
        return Either::Right(Either::Left(desk.login_form("", next, None)));
    }
    let token = desk.browser_csrf();
    let context = || desk.login_context("", None, None);
    Either::Right(
        desk.page
            .render_fixed(fixed, &templates, "login", Some(token), context),
    )
}

#[derive(FromForm)]
pub struct LoginForm {
    username: String,
    password: String,
    remember: bool,
    next: Option<String>,
}

impl CsrfForm for LoginForm {
    const BEFORE_LOGIN: bool = true;
}

#[post("/login", data = "<form>")]
pub async fn login(
    form: Checked<LoginForm>,
    caller: ClientDevice,
    accounts: Accounts<'_>,
    desk: Desk<'_>,
) -> LoginResult {
    let form = form.0;
    let now = desk.clock.now();
    let attempt = LoginAttempt {
        username: &form.username,
        password: &form.password,
        remember: form.remember,
        next: form.next.as_deref().and_then(|n| local_path(n).map(|_| n)),
    };
    let outcome = accounts
        .login(now, attempt, caller.device_token, caller.client)
        .await;
    let (status, message, retry_after) = match outcome {
        Ok(LoginOutcome::SignedIn(signed_in)) => {
            desk.sign_in(&accounts, now, *signed_in);
            return Ok(Either::Left(after_login(form.next.as_deref())));
        }
        Ok(LoginOutcome::SecondStep(token)) => {
            desk.policy.set_pending(desk.jar, token);
            return Ok(Either::Left(Redirect::to(uri!("/login/verify"))));
        }
        Err(LoginError::InvalidCredentials) => (
            Status::Unauthorized,
            "The username or password is not right.".to_owned(),
            None,
        ),
        Err(LoginError::Throttled { retry_after }) => (
            Status::TooManyRequests,
            throttled_message(retry_after),
            Some(retry_after),
        ),
        Err(LoginError::Disabled) => return Ok(Either::Right(desk.disabled())),
        Err(LoginError::Hashing(e)) => return Err(e.into()),
        Err(LoginError::Db(e)) => return Err(AppError::Db(e)),
    };
    let template = desk.login_form(&form.username, form.next.as_deref(), Some(&message));
    Ok(Either::Right(RetryAfter(retry_after, (status, template))))
}

fn throttled_message(retry_after: i64) -> String {
    format!(
        "Too many failed sign-ins. Try again in {}.",
        crate::http::page::minutes(retry_after)
    )
}

/// The second step of a login: a page asking for the code, while the pending cookie is good.
#[get("/login/verify")]
pub async fn verify_page(
    viewer: Viewer,
    desk: Desk<'_>,
    db: &State<Db>,
) -> Result<Either<Redirect, Template>, AppError> {
    if viewer.0.is_some() {
        return Ok(Either::Left(after_login(None)));
    }
    let Some(token) = desk.policy.pending_token(desk.jar) else {
        return Ok(Either::Left(Redirect::to(uri!("/login"))));
    };
    let now = desk.clock.now();
    let waiting = db
        .run(move |conn| pending_login::waiting(conn, &token, now).map_err(DbError::from))
        .await?;
    let Some(pending) = waiting else {
        desk.expired_pending();
        return Ok(Either::Left(Redirect::to(uri!("/login"))));
    };
    Ok(Either::Right(
        desk.verify_form(pending.next.as_deref(), None),
    ))
}

#[derive(FromForm)]
pub struct VerifyForm {
    code: String,
}

impl CsrfForm for VerifyForm {
    const BEFORE_LOGIN: bool = true;
}

#[post("/login/verify", data = "<form>")]
pub async fn verify(
    form: Checked<VerifyForm>,
    caller: ClientDevice,
    accounts: Accounts<'_>,
    desk: Desk<'_>,
) -> LoginResult {
    let Some(token) = desk.policy.pending_token(desk.jar) else {
        return Ok(Either::Left(Redirect::to(uri!("/login"))));
    };
    let now = desk.clock.now();
    let outcome = accounts
        .second_step(
            now,
            &token,
            &form.0.code,
            caller.device_token,
            caller.client,
        )
        .await;
    let (status, message, retry_after) = match outcome {
        Ok(finished) => {
            desk.policy.clear_pending(desk.jar);
            desk.sign_in(&accounts, now, finished.signed_in);
            return Ok(Either::Left(after_login(finished.next.as_deref())));
        }
        Err(SecondStepError::Expired | SecondStepError::WrongCode { ended: true }) => {
            desk.expired_pending();
            return Ok(Either::Left(Redirect::to(uri!("/login"))));
        }
        Err(SecondStepError::WrongCode { ended: false }) => (
            Status::Unauthorized,
            "That code is not right, or was used before.".to_owned(),
            None,
        ),
        Err(SecondStepError::Throttled { retry_after }) => (
            Status::TooManyRequests,
            throttled_message(retry_after),
            Some(retry_after),
        ),
        Err(SecondStepError::Disabled) => {
            desk.policy.clear_pending(desk.jar);
            return Ok(Either::Right(desk.disabled()));
        }
        Err(SecondStepError::Db(e)) => return Err(AppError::Db(e)),
    };
    let template = desk.verify_form(None, Some(&message));
    Ok(Either::Right(RetryAfter(retry_after, (status, template))))
}

#[get("/signup")]
pub fn signup_page(viewer: Viewer, desk: Desk<'_>) -> Result<Either<Redirect, Template>, AppError> {
    if !desk.config.signup {
        return Err(AppError::NotFound);
    }
    if viewer.0.is_some() {
        return Ok(Either::Left(Redirect::to(uri!("/profile"))));
    }
    Ok(Either::Right(
        desk.signup_form(("", ""), &SignupErrors::default()),
    ))
}

#[derive(FromForm)]
pub struct SignupForm {
    username: String,
    password: String,
    password_confirm: String,
    #[field(default = String::new())]
    email: String,
}

impl CsrfForm for SignupForm {
    const BEFORE_LOGIN: bool = true;
}

#[post("/signup", data = "<form>")]
pub async fn signup(
    form: Checked<SignupForm>,
    client: ClientInfo,
    accounts: Accounts<'_>,
    desk: Desk<'_>,
) -> PageResult {
    if !desk.config.signup {
        return Err(AppError::NotFound);
    }
    let form = form.0;
    let now = desk.clock.now();
    let account = NewAccount {
        username: &form.username,
        password: &form.password,
        password_confirm: &form.password_confirm,
        email: &form.email,
    };
    match accounts.signup(now, account, client).await {
        Ok(signed_in) => {
            desk.sign_in(&accounts, now, signed_in);
            desk.policy.set_notice(desk.jar, Notice::Welcome);
            Ok(Either::Left(Redirect::to(uri!("/profile"))))
        }
        Err(SignupError::Invalid(errors)) => {
            let template = desk.signup_form((&form.username, &form.email), &errors);
            Ok(Either::Right((Status::UnprocessableEntity, template)))
        }
        Err(SignupError::Throttled { retry_after }) => {
            let errors = SignupErrors {
                username: Some(format!(
                    "Too many accounts were made from your address. Try again in {}.",
                    crate::http::page::minutes(retry_after)
                )),
                ..SignupErrors::default()
            };
            let template = desk.signup_form((&form.username, &form.email), &errors);
            Ok(Either::Right((Status::TooManyRequests, template)))
        }
        Err(SignupError::Hashing(e)) => Err(e.into()),
        Err(SignupError::Db(e)) => Err(AppError::Db(e)),
    }
}

#[post("/logout", data = "<_form>")]
pub async fn logout(
    user: SignedIn,
    _form: Checked<ButtonForm>,
    client: ClientInfo,
    db: &State<Db>,
    fx: Effects<'_>,
) -> Result<Redirect, AppError> {
    let (user_id, now, sid) = (user.user_id(), fx.now, user.sid().to_owned());
    db.write(move |tx| {
        let ending = Ending {
            now,
            reason: EndReason::Logout,
            event: EventKind::Logout,
            client: &client,
            detail: None,
        };
        session::end_one(tx, user_id, &sid, &ending).map_err(DbError::from)
    })
    .await?;
    fx.signed_out();
    Ok(Redirect::to(uri!("/login")))
}

/// Anonymous on a signed-in page: to the login form, coming back here afterwards.
#[catch(401)]
fn to_login(req: &Request<'_>) -> Redirect {
    if req.method() != Method::Get {
        return Redirect::to(uri!("/login"));
    }
    let next = req.uri().to_string();
    Redirect::to(uri!(login_page(next = Some(next))))
}

/// Mounts this file's routes, and the catcher that sends anonymous visitors of signed-in pages
/// to the login form.
pub fn stage() -> rocket::fairing::AdHoc {
    rocket::fairing::AdHoc::on_ignite("account pages", |rocket| async {
        rocket
            .mount(
                "/",
                rocket::routes![
                    login_page,
                    login,
                    verify_page,
                    verify,
                    signup_page,
                    signup,
                    logout
                ],
            )
            .register("/", rocket::catchers![to_login])
    })
}

//! Signing in, signing up and signing out.

use rocket::form::FromForm;
use rocket::http::uri::Origin;
use rocket::http::{CookieJar, Status};
use rocket::request::{FromRequest, Outcome};
use rocket::response::Redirect;
use rocket::response::content::RawHtml;
use rocket::{Either, Request, State, get, post, uri};
use rocket_dyn_templates::{Metadata, Template};
use serde_json::{Value, json};

use crate::auth::tokens::TokenService;
use crate::clock::SharedClock;
use crate::config::Config;
use crate::core::accounts::{
    Accounts, LoginAttempt, LoginError, LoginOutcome, NewAccount, SignedInSession, SignupError,
    SignupErrors,
};
use crate::core::events::EventKind;
use crate::core::passkeys::Passkeys;
use crate::core::passwords::{MAX_PASSWORD_CHARS, MIN_PASSWORD_CHARS};
use crate::core::pending_login::{self, SecondStepError};
use crate::core::sessions::{self as session, EndReason, Ending};
use crate::db::{Db, DbError};
use crate::http::client_info::ClientInfo;
use crate::http::cookies::{ClientDevice, CookiePolicy, Notice};
use crate::http::csrf::{self, Checked, CsrfForm};
use crate::http::effects::Effects;
use crate::http::error::{AppError, RetryAfter};
use crate::http::guards::{SignedIn, Viewer};
use crate::http::page::{FixedPages, Page};

type PageResult = Result<Either<Redirect, (Status, Template)>, AppError>;
type LoginResult = Result<Either<Redirect, RetryAfter<(Status, Template)>>, AppError>;

/// `next` if it is a path on this site (not `//host`, `/\host` or anything a browser would read
/// as another origin), else `None`.
pub fn local_path(next: &str) -> Option<Origin<'static>> {
    let mut chars = next.chars();
    let local = chars.next() == Some('/')
        && !matches!(chars.next(), Some('/' | '\\'))
        && next.len() <= 2048
        && !next
            .chars()
            .any(|c| c == '\\' || c.is_control() || c.is_whitespace());
    if !local {
        return None;
    }
    Origin::parse_owned(next.to_owned()).ok()
}

fn after_login(next: Option<&str>) -> Redirect {
    Redirect::to(
        next.and_then(local_path)
            .map_or_else(|| "/profile".to_owned(), |o| o.to_string()),
    )
}

/// The sign-in desk: renders the pre-login forms and hands out session cookies.
pub struct Desk<'r> {
    pub(crate) page: Page,
    pub(crate) jar: &'r CookieJar<'r>,
    pub(crate) policy: &'r CookiePolicy,
    tokens: &'r TokenService,
    config: &'r Config,
    pub(crate) clock: &'r SharedClock,
    /// Whether the forms offer a passkey.
    passkeys_on: bool,
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for Desk<'r> {
    type Error = ();

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, ()> {
        let rocket = req.rocket();
        let (Some(policy), Some(tokens), Some(config), Some(clock)) = (
            rocket.state::<CookiePolicy>(),
            rocket.state::<TokenService>(),
            rocket.state::<Config>(),
            rocket.state::<SharedClock>(),
        ) else {
            return Outcome::Error((Status::InternalServerError, ()));
        };
        Outcome::Success(Desk {
            page: Page::of(req),
            jar: req.cookies(),
            policy,
            tokens,
            config,
            clock,
            passkeys_on: rocket.state::<Passkeys>().is_some_and(Passkeys::enabled),
        })
    }
}

impl Desk<'_> {
    /// The CSRF token for forms shown before login, bound to this browser's CSRF cookie.
    pub(crate) fn browser_csrf(&self) -> String {
        let cookie = csrf::browser_cookie(self.jar, self.policy);
        csrf::token(
            &self.tokens.keys().derived_secret,
            &csrf::Binding::Browser(&cookie),
        )
    }

    fn login_form(&self, username: &str, next: Option<&str>, error: Option<&str>) -> Template {
        let mut context = self.login_context(username, next, error);
        context["csrf_token"] = json!(self.browser_csrf());
        self.page.render("login", context)
    }

    /// The login page's context but for its CSRF token.
    fn login_context(&self, username: &str, next: Option<&str>, error: Option<&str>) -> Value {
        json!({
            "username": username,
            "next": next.and_then(local_path).map(|o| o.to_string()),
            "error": error,
            "signup_open": self.config.signup,
            "passkeys_on": self.passkeys_on,
        })
    }

    fn signup_form(&self, (username, email): (&str, &str), errors: &SignupErrors) -> Template {
        self.page.render(
            "signup",
            json!({
                "csrf_token": self.browser_csrf(),
                "username": username,
                "email": email,
                "errors": errors,
                "min_password": MIN_PASSWORD_CHARS,
                "max_password": MAX_PASSWORD_CHARS,
            }),
        )
    }

    /// The second step's form; `next` is where a passkey used here leads.
    fn verify_form(&self, next: Option<&str>, error: Option<&str>) -> Template {
        self.page.render(
            "login_verify",
            json!({
                "csrf_token": self.browser_csrf(),
                "next": next.and_then(local_path).map(|o| o.to_string()),
                "error": error,
                "passkeys_on": self.passkeys_on,
            }),
        )
    }

    /// A passkey signed this browser in: a half-done login it had is moot.
    pub(crate) fn forget_pending(&self) {
        if self.policy.pending_token(self.jar).is_some() {
            self.policy.clear_pending(self.jar);
        }
    }

    /// Leaves a one-time message for the next page.
    pub(crate) fn notice(&self, notice: Notice) {
        self.policy.set_notice(self.jar, notice);
    }

    /// The half-done login is gone: clear its cookie and say so on the login form.
    fn expired_pending(&self) {
        self.policy.clear_pending(self.jar);
        self.policy.set_notice(self.jar, Notice::SignInExpired);
    }

    /// The right password (and code) of a disabled account.
    fn disabled(&self) -> RetryAfter<(Status, Template)> {
        let page = self.page.render(
            "error",
            json!({
                "status": 403,
                "reason": "Account disabled",
                "message": "This account is disabled. Ask an administrator to enable it.",
            }),
        );
        RetryAfter(None, (Status::Forbidden, page))
    }

    /// Sets the cookies of a freshly started session.
    pub(crate) fn sign_in(&self, accounts: &Accounts<'_>, now: i64, signed_in: SignedInSession) {
        let session = &signed_in.started.session;
        let claims =
            accounts
                .lifetimes
                .access_claims(self.tokens, session, &signed_in.user.role, now);
        self.policy.set_session(
            self.jar,
            self.tokens.sign(&claims),
            signed_in.started.refresh_token,
            session.remember,
        );
        self.policy.set_device(self.jar, signed_in.device_token);
    }
}

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

/// A form with nothing but its CSRF token (sign out, and other one-button actions).
#[derive(FromForm)]
pub struct ButtonForm {
    /// Checked by [`Checked`]; a form needs a field.
    #[field(name = "csrf_token")]
    _csrf_token: String,
}

impl CsrfForm for ButtonForm {}

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

/// Mounts this file's routes.
pub fn stage() -> rocket::fairing::AdHoc {
    rocket::fairing::AdHoc::on_ignite("account pages", |rocket| async {
        rocket.mount(
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
    })
}

#[cfg(test)]
mod tests {
    use super::local_path;

    #[test]
    fn only_local_paths_are_followed() {
        assert!(local_path("/profile").is_some());
        assert!(local_path("/sessions?page=2").is_some());
        for hostile in [
            "//evil.example",
            "/\\evil.example",
            "https://evil.example",
            "evil.example",
            "/\t/evil.example",
            "/ok\\..\\x",
            "",
        ] {
            assert!(local_path(hostile).is_none(), "{hostile:?}");
        }
    }
}

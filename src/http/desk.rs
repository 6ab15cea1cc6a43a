//! The sign-in desk: the forms shown before login (login, second step, sign-up) and the
//! cookies a sign-in hands out or takes back.

use rocket::Request;
use rocket::http::{CookieJar, Status};
use rocket::request::{FromRequest, Outcome};
use rocket_dyn_templates::Template;
use serde_json::{Value, json};

use crate::auth::tokens::TokenService;
use crate::clock::SharedClock;
use crate::config::Config;
use crate::core::accounts::SignupErrors;
use crate::core::passkeys::Passkeys;
use crate::core::passwords::{MAX_PASSWORD_CHARS, MIN_PASSWORD_CHARS};
use crate::core::sign_in::{Accounts, SignedInSession};
use crate::http::cookies::{CookiePolicy, Notice};
use crate::http::csrf;
use crate::http::error::RetryAfter;
use crate::http::page::Page;
use crate::http::redirects::local_path;

/// The sign-in desk: renders the pre-login forms and hands out session cookies.
pub struct Desk<'r> {
    pub(crate) page: Page,
    pub(crate) jar: &'r CookieJar<'r>,
    pub(crate) policy: &'r CookiePolicy,
    pub(crate) tokens: &'r TokenService,
    pub(crate) config: &'r Config,
    pub(crate) clock: &'r SharedClock,
    /// Whether the forms offer a passkey.
    pub(crate) passkeys_on: bool,
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

    pub(crate) fn login_form(
        &self,
        username: &str,
        next: Option<&str>,
        error: Option<&str>,
    ) -> Template {
        let mut context = self.login_context(username, next, error);
        context["csrf_token"] = json!(self.browser_csrf());
        self.page.render("login", context)
    }

    /// The login page's context but for its CSRF token.
    pub(crate) fn login_context(
        &self,
        username: &str,
        next: Option<&str>,
        error: Option<&str>,
    ) -> Value {
        json!({
            "username": username,
            "next": next.and_then(local_path).map(|o| o.to_string()),
            "error": error,
            "signup_open": self.config.signup,
            "passkeys_on": self.passkeys_on,
        })
    }

    pub(crate) fn signup_form(
        &self,
        (username, email): (&str, &str),
        errors: &SignupErrors,
    ) -> Template {
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
    pub(crate) fn verify_form(&self, next: Option<&str>, error: Option<&str>) -> Template {
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
    pub(crate) fn expired_pending(&self) {
        self.policy.clear_pending(self.jar);
        self.policy.set_notice(self.jar, Notice::SignInExpired);
    }

    /// The right password (and code) of a disabled account.
    pub(crate) fn disabled(&self) -> RetryAfter<(Status, Template)> {
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

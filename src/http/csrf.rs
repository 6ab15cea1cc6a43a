//! CSRF protection for every state-changing form: a token bound to the session (or, before
//! login, to the CSRF cookie), and refusal of POSTs that say they come from another site.

use rocket::Request;
use rocket::data::{self, Data, FromData};
use rocket::form::{Contextual, Form, FromForm};
use rocket::http::{CookieJar, Status};
use rocket::request::{FromRequest, Outcome};

use super::cookies::CookiePolicy;
use super::silent_refresh::AuthState;
use crate::auth::tokens::TokenService;
use crate::crypto;
use crate::http::refusal::ErrorNote;

/// What a CSRF token is bound to.
pub enum Binding<'a> {
    /// A signed-in session, by public id.
    Session(&'a str),
    /// A browser before login, by its CSRF cookie.
    Browser(&'a str),
}

/// The token for a binding: a MAC under the server's derived secret.
pub fn token(secret: &[u8], binding: &Binding<'_>) -> String {
    let (kind, value): (&[u8], &str) = match binding {
        Binding::Session(sid) => (b"session\0", sid),
        Binding::Browser(cookie) => (b"browser\0", cookie),
    };
    crypto::b64url(&crypto::hmac_sha256(
        secret,
        &[b"doorman/csrf/v1\0", kind, value.as_bytes()],
    ))
}

pub fn verify(secret: &[u8], binding: &Binding<'_>, presented: &str) -> bool {
    crypto::constant_time_eq(token(secret, binding).as_bytes(), presented.as_bytes())
}

/// The browser's CSRF cookie value, set now if it has none.
pub fn browser_cookie(jar: &CookieJar<'_>, policy: &CookiePolicy) -> String {
    if let Some(existing) = jar
        .get_pending(policy.csrf)
        .filter(|c| !c.value().is_empty())
    {
        return existing.value().to_owned();
    }
    let value = crypto::random_token::<32>();
    policy.set_csrf(jar, value.clone());
    value
}

const EXPIRED: &str =
    "This form has expired or was sent from another site. Go back, reload the page and try again.";

/// Whether `presented` is the token of this request's session (or, `before_login`, of its
/// browser's CSRF cookie); `None` when the app's state is missing.
fn presented_token_valid(req: &Request<'_>, presented: &str, before_login: bool) -> Option<bool> {
    let tokens = req.rocket().state::<TokenService>()?;
    let policy = req.rocket().state::<CookiePolicy>()?;
    let secret = &tokens.keys().derived_secret;
    Some(
        !presented.is_empty()
            && if before_login {
                req.cookies()
                    .get(policy.csrf)
                    .is_some_and(|c| verify(secret, &Binding::Browser(c.value()), presented))
            } else {
                match req.local_cache(|| AuthState::NotChecked) {
                    AuthState::SignedIn(claims) => {
                        verify(secret, &Binding::Session(&claims.sid), presented)
                    }
                    _ => false,
                }
            },
    )
}

/// A request from doorman's own script (the passkey ceremonies): the page's CSRF token in the
/// header `X-CSRF-Token`, bound as a form's would be (to the session when signed in, else to
/// the browser's CSRF cookie), and not from another site. Anything else is 403.
pub struct CsrfHeader;

#[rocket::async_trait]
impl<'r> FromRequest<'r> for CsrfHeader {
    type Error = ();

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, ()> {
        let presented = req.headers().get_one("X-CSRF-Token").unwrap_or("");
        let signed_in = matches!(
            req.local_cache(|| AuthState::NotChecked),
            AuthState::SignedIn(_)
        );
        match presented_token_valid(req, presented, !signed_in) {
            Some(true) if !is_cross_site(req) => Outcome::Success(CsrfHeader),
            None => Outcome::Error((Status::InternalServerError, ())),
            _ => {
                req.local_cache(|| ErrorNote(EXPIRED));
                Outcome::Error((Status::Forbidden, ()))
            }
        }
    }
}

/// A request of doorman's script checked as [`CsrfHeader`] is, with the browser's CSRF cookie:
/// for what a browser starts before login and must finish itself (a passkey sign-in). Without
/// the cookie, 403: no page of doorman was loaded in this browser.
pub struct BrowserCookie(pub String);

#[rocket::async_trait]
impl<'r> FromRequest<'r> for BrowserCookie {
    type Error = ();

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, ()> {
        if let Outcome::Error(e) = req.guard::<CsrfHeader>().await {
            return Outcome::Error(e);
        }
        let Some(policy) = req.rocket().state::<CookiePolicy>() else {
            return Outcome::Error((Status::InternalServerError, ()));
        };
        match req.cookies().get(policy.csrf) {
            Some(cookie) if !cookie.value().is_empty() => {
                Outcome::Success(BrowserCookie(cookie.value().to_owned()))
            }
            _ => {
                req.local_cache(|| ErrorNote(EXPIRED));
                Outcome::Error((Status::Forbidden, ()))
            }
        }
    }
}

/// A form that carries a CSRF token in its field `csrf_token`.
pub trait CsrfForm {
    /// Forms shown before login are bound to the CSRF cookie; all others to the session.
    const BEFORE_LOGIN: bool = false;
}

/// A form whose CSRF token and origin have been checked.
pub struct Checked<T>(pub T);

fn refuse<'r, T: FromData<'r>>(
    req: &'r Request<'_>,
    note: &'static str,
) -> data::Outcome<'r, T, ()> {
    req.local_cache(|| ErrorNote(note));
    data::Outcome::Error((Status::Forbidden, ()))
}

/// True when the browser says the request comes from another site.
fn is_cross_site(req: &Request<'_>) -> bool {
    let site = req.headers().get_one("Sec-Fetch-Site");
    if site.is_some_and(|site| !matches!(site, "same-origin" | "none")) {
        return true;
    }
    let Some(origin) = req.headers().get_one("Origin") else {
        return false;
    };
    let host = req.headers().get_one("Host").unwrap_or("");
    let origin_host = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"));
    origin_host.is_none_or(|h| !h.eq_ignore_ascii_case(host))
}

#[rocket::async_trait]
impl<'r, T: FromForm<'r> + CsrfForm + Send> FromData<'r> for Checked<T> {
    type Error = ();

    /// The origin and the token are judged before anything else about the form: a form without
    /// a valid token is 403 whatever else is wrong with it (or its content type). Only a body
    /// over the size limit is refused first (413), whatever it holds.
    async fn from_data(req: &'r Request<'_>, data: Data<'r>) -> data::Outcome<'r, Self> {
        if is_cross_site(req) {
            return refuse(req, "Forms can only be sent from doorman's own pages.");
        }
        let form = match Form::<Contextual<'r, T>>::from_data(req, data).await {
            data::Outcome::Success(form) => form.into_inner(),
            data::Outcome::Error((status, _)) if status == Status::PayloadTooLarge => {
                return data::Outcome::Error((status, ()));
            }
            _ => return refuse(req, EXPIRED),
        };
        // A multipart body over the limit is found while its fields are read.
        let too_large = form
            .context
            .errors()
            .any(|e| e.status() == Status::PayloadTooLarge);
        if too_large {
            return data::Outcome::Error((Status::PayloadTooLarge, ()));
        }
        let presented = form.context.field_value("csrf_token").unwrap_or("");
        let Some(valid) = presented_token_valid(req, presented, T::BEFORE_LOGIN) else {
            return data::Outcome::Error((Status::InternalServerError, ()));
        };
        if !valid {
            return refuse(req, EXPIRED);
        }
        let status = form.context.status();
        match form.value {
            Some(value) => data::Outcome::Success(Checked(value)),
            None => data::Outcome::Error((status, ())),
        }
    }
}

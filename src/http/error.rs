//! Errors of the web layer, turned into an HTML page or a JSON body in this one place.

use rocket::http::{Header, Status};
use rocket::request::Request;
use rocket::response::{self, Responder};
use rocket::serde::json::Json;
use serde_json::json;

use crate::core::passkeys::{MAX_NAME_CHARS, PasskeyError};
use crate::core::passwords::HashError;
use crate::db::DbError;
use crate::http::area::Area;
use crate::http::cookies::{CookiePolicy, Notice};
use crate::http::page::Page;
use crate::http::refusal::ErrorNote;

/// Why a request could not be served.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Db(#[from] DbError),
    /// Every password-hashing slot stayed busy: the server is overloaded with logins.
    #[error("password hashing queue full")]
    Busy,
    #[error("not found")]
    NotFound,
    /// Input that passed parsing but makes no sense (422, with the sentence).
    #[error("{0}")]
    Invalid(&'static str),
    /// A template that failed to render (a bug; 500).
    #[error("template `{0}` failed to render")]
    Render(&'static str),
    /// Password hashing failed (a bug or a dying process; 500).
    #[error("password hashing failed")]
    HashingFailed,
    /// The caller's session has ended, as its row says (before the revocation set of this
    /// instance knows): signed out at once.
    #[error("the session has ended")]
    SessionEnded,
    /// A sensitive action from a session that has not authenticated within `sudo_ttl`: to
    /// `/sudo`, coming back to this page.
    #[error("sudo mode needed for {0}")]
    SudoNeeded(String),
    /// An admin without a second factor while `require_mfa_for_admins` is on: to `/security`.
    #[error("a second factor is needed")]
    SecondFactorNeeded,
    /// A limit other than the sign-in throttle (429, with the sentence and `Retry-After`).
    #[error("{why}")]
    Throttled { retry_after: i64, why: &'static str },
}

// Two variants: an overloaded server (503) is not a failure (500).
impl From<HashError> for AppError {
    fn from(e: HashError) -> Self {
        match e {
            HashError::Busy => AppError::Busy,
            HashError::Failed => AppError::HashingFailed,
        }
    }
}

// Through `DbError`, which tells an outage from a bad query.
impl From<diesel::result::Error> for AppError {
    fn from(e: diesel::result::Error) -> Self {
        AppError::Db(DbError::from(e))
    }
}

impl AppError {
    /// What operators should hear of it (never user input or secrets).
    fn log(&self) {
        match self {
            AppError::Db(e) => rocket::error!("{e}"),
            AppError::Busy => rocket::warn!("password hashing queue full"),
            AppError::Render(name) => rocket::error!("template `{name}` failed to render"),
            AppError::HashingFailed => rocket::error!("password hashing failed"),
            AppError::NotFound
            | AppError::Invalid(_)
            | AppError::SessionEnded
            | AppError::SudoNeeded(_)
            | AppError::SecondFactorNeeded
            | AppError::Throttled { .. } => {}
        }
    }

    fn status(&self) -> Status {
        match self {
            AppError::Db(DbError::Unavailable(_)) | AppError::Busy => Status::ServiceUnavailable,
            AppError::Db(DbError::Query(_)) | AppError::Render(_) | AppError::HashingFailed => {
                Status::InternalServerError
            }
            AppError::NotFound => Status::NotFound,
            AppError::Invalid(_) => Status::UnprocessableEntity,
            AppError::SessionEnded => Status::Unauthorized,
            AppError::SudoNeeded(_) | AppError::SecondFactorNeeded => Status::SeeOther,
            AppError::Throttled { .. } => Status::TooManyRequests,
        }
    }
}

/// The sentence and the machine-readable code shown for a status.
pub fn describe(status: Status) -> (&'static str, &'static str) {
    match status.code {
        400 => ("The request could not be understood.", "invalid_input"),
        401 => ("Sign in to continue.", "missing_token"),
        403 => ("You do not have access to this page.", "insufficient_role"),
        404 => ("There is nothing at this address.", "not_found"),
        413 => ("What was sent is too large.", "invalid_input"),
        422 => ("The form was incomplete or malformed.", "invalid_input"),
        429 => (
            "Too many failed sign-ins. Try again later.",
            "too_many_attempts",
        ),
        503 => (
            "doorman cannot reach its database or is overloaded right now. Try again in a moment.",
            "unavailable",
        ),
        _ => ("Something went wrong on our side.", "internal_error"),
    }
}

/// An error answer of the JSON API: `{"error": sentence, "code": code}`, with
/// `WWW-Authenticate: Bearer` on 401s (RFC 6750) and `Retry-After` on 429s.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: Status,
    pub code: &'static str,
    pub message: String,
    pub retry_after: Option<i64>,
    /// More fields of the body (`mfa_token`).
    pub fields: Vec<(&'static str, String)>,
}

/// The API error a guard refused a request with, for the catcher to answer.
#[derive(Debug, Clone, Default)]
pub struct ApiErrorNote(pub Option<ApiError>);

impl ApiError {
    pub fn new(status: Status, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            retry_after: None,
            fields: Vec::new(),
        }
    }

    /// Adds a field to the body.
    #[must_use]
    pub fn with_field(mut self, name: &'static str, value: String) -> ApiError {
        self.fields.push((name, value));
        self
    }

    pub fn unauthorized(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(Status::Unauthorized, code, message)
    }

    pub fn invalid_input(message: impl Into<String>) -> ApiError {
        ApiError::new(Status::UnprocessableEntity, "invalid_input", message)
    }

    /// Leaves this error for the catcher and hands back the status for a guard's outcome.
    pub fn note(self, req: &Request<'_>) -> Status {
        let status = self.status;
        req.local_cache(|| ApiErrorNote(Some(self)));
        status
    }
}

impl From<AppError> for ApiError {
    fn from(e: AppError) -> Self {
        let status = e.status();
        let (sentence, code) = describe(status);
        e.log();
        if matches!(e, AppError::SessionEnded) {
            return ApiError::unauthorized("session_revoked", "This session has ended.");
        }
        ApiError::new(status, code, sentence)
    }
}

impl From<PasskeyError> for ApiError {
    fn from(e: PasskeyError) -> Self {
        match e {
            PasskeyError::Off => ApiError::new(
                Status::NotFound,
                "passkeys_off",
                "Passkeys are off: doorman's public_url has no host name.",
            ),
            PasskeyError::Expired => ApiError::new(
                Status::BadRequest,
                "expired",
                "That passkey request has expired. Try again.",
            ),
            PasskeyError::Refused => {
                ApiError::unauthorized("invalid_credentials", "The passkey was not accepted.")
            }
            PasskeyError::Duplicate => ApiError::new(
                Status::Conflict,
                "duplicate",
                "This passkey is registered already.",
            ),
            PasskeyError::BadName => ApiError::invalid_input(format!(
                "Give the passkey a name of at most {MAX_NAME_CHARS} characters."
            )),
            PasskeyError::Disabled => ApiError::new(
                Status::Forbidden,
                "account_disabled",
                "This account is disabled.",
            ),
            PasskeyError::SessionEnded => AppError::SessionEnded.into(),
            PasskeyError::Throttled { retry_after } => ApiError {
                retry_after: Some(retry_after),
                ..ApiError::new(
                    Status::TooManyRequests,
                    "too_many_attempts",
                    "Too many passkey sign-ins were started from your address. Try again later.",
                )
            },
            PasskeyError::Db(e) => e.into(),
        }
    }
}

impl From<DbError> for ApiError {
    fn from(e: DbError) -> Self {
        AppError::Db(e).into()
    }
}

impl<'r> Responder<'r, 'static> for ApiError {
    fn respond_to(self, req: &'r Request<'_>) -> response::Result<'static> {
        let mut body = json!({ "error": self.message, "code": self.code });
        for (name, value) in self.fields {
            body[name] = json!(value);
        }
        let mut response = Json(body).respond_to(req)?;
        response.set_status(self.status);
        if self.status == Status::Unauthorized {
            // RFC 6750 §3: an error code only when a token was presented and refused.
            let challenge = match self.code {
                "missing_token" | "invalid_credentials" | "mfa_required" => {
                    r#"Bearer realm="doorman""#.to_owned()
                }
                _ => format!(
                    r#"Bearer realm="doorman", error="invalid_token", error_description="{}""#,
                    self.message.replace('"', "'")
                ),
            };
            response.set_header(Header::new("WWW-Authenticate", challenge));
        }
        if let Some(seconds) = self.retry_after {
            response.set_header(Header::new("Retry-After", seconds.to_string()));
        }
        Ok(response)
    }
}

/// The response for an error status: JSON under `/api`, an HTML page elsewhere.
pub fn error_response(req: &Request<'_>, status: Status) -> response::Result<'static> {
    let note = req.local_cache(|| ErrorNote("")).0;
    let (sentence, code) = describe(status);
    let message = if note.is_empty() { sentence } else { note };
    if Area::of(req) == Area::Api {
        let noted = req.local_cache(ApiErrorNote::default).0.clone();
        let error = noted
            .filter(|e| e.status == status)
            .unwrap_or_else(|| ApiError::new(status, code, message));
        return error.respond_to(req);
    }
    let mut response = {
        Page::of(req)
            .render(
                "error",
                json!({ "status": status.code, "reason": status.reason().unwrap_or("Error"), "message": message }),
            )
            .respond_to(req)?
    };
    response.set_status(status);
    if status == Status::ServiceUnavailable {
        response.set_header(Header::new("Retry-After", "5"));
    }
    Ok(response)
}

/// A response with `Retry-After` in seconds when there is one (429 answers).
pub struct RetryAfter<R>(pub Option<i64>, pub R);

impl<'r, R: Responder<'r, 'static>> Responder<'r, 'static> for RetryAfter<R> {
    fn respond_to(self, req: &'r Request<'_>) -> response::Result<'static> {
        let mut response = self.1.respond_to(req)?;
        if let Some(seconds) = self.0 {
            response.set_header(Header::new("Retry-After", seconds.to_string()));
        }
        Ok(response)
    }
}

impl<'r> Responder<'r, 'static> for AppError {
    fn respond_to(self, req: &'r Request<'_>) -> response::Result<'static> {
        self.log();
        match &self {
            AppError::Invalid(why) => {
                req.local_cache(|| ErrorNote(why));
            }
            AppError::SessionEnded => {
                if let Some(policy) = req.rocket().state::<CookiePolicy>() {
                    policy.clear_session(req.cookies());
                }
                return rocket::response::Redirect::to("/login").respond_to(req);
            }
            AppError::SudoNeeded(page) => {
                let next = rocket::http::RawStr::new(page).percent_encode();
                return rocket::response::Redirect::to(format!("/sudo?next={next}"))
                    .respond_to(req);
            }
            AppError::SecondFactorNeeded => {
                if let Some(policy) = req.rocket().state::<CookiePolicy>() {
                    policy.set_notice(req.cookies(), Notice::SecondFactorRequired);
                }
                return rocket::response::Redirect::to("/security").respond_to(req);
            }
            AppError::Throttled { retry_after, why } => {
                req.local_cache(|| ErrorNote(why));
                let mut response = error_response(req, self.status())?;
                response.set_header(Header::new("Retry-After", retry_after.to_string()));
                return Ok(response);
            }
            _ => {}
        }
        error_response(req, self.status())
    }
}

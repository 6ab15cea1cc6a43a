//! The account's email address, and the pages the mailed links open: confirming an address,
//! asking for and using a password-reset link, and "this wasn't me" for a new device. A link
//! opens a page (a GET never changes anything); its button does the change.

use rocket::form::FromForm;
use rocket::http::Status;
use rocket::request::{FromRequest, Outcome};
use rocket::response::Redirect;
use rocket::{Either, Request, State, get, post, uri};
use rocket_dyn_templates::Template;
use serde_json::json;

use crate::auth::keys::ServerSecret;
use crate::core::client::ClientInfo;
use crate::core::email::{self, AddressChange, AddressError, EmailPolicy, LinkKind};
use crate::core::passwords::{self, MAX_PASSWORD_CHARS, MIN_PASSWORD_CHARS, PasswordHasher};
use crate::core::throttle::ThrottlePolicy;
use crate::db::{self, Db, DbError};
use crate::http::cookies::Notice;
use crate::http::csrf::{Checked, CsrfForm};
use crate::http::desk::Desk;
use crate::http::effects::Effects;
use crate::http::error::{AppError, RetryAfter};
use crate::http::guards::{Sudo, Viewer};

type Answer = Result<Either<Redirect, (Status, Template)>, AppError>;

/// The database with what mailed links are made and limited with.
pub struct Mailroom<'r> {
    db: &'r Db,
    secret: &'r ServerSecret,
    policy: EmailPolicy,
    throttle: ThrottlePolicy,
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for Mailroom<'r> {
    type Error = ();

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, ()> {
        let rocket = req.rocket();
        match (
            rocket.state::<Db>(),
            rocket.state::<ServerSecret>(),
            rocket.state::<EmailPolicy>(),
            rocket.state::<ThrottlePolicy>(),
        ) {
            (Some(db), Some(secret), Some(policy), Some(throttle)) => Outcome::Success(Mailroom {
                db,
                secret,
                policy: *policy,
                throttle: *throttle,
            }),
            _ => Outcome::Error((Status::InternalServerError, ())),
        }
    }
}

/// Whether a mailed link is still good.
async fn waiting(db: &Db, kind: LinkKind, token: &str, now: i64) -> Result<bool, AppError> {
    let presented = token.to_owned();
    Ok(db
        .run(move |conn| email::link_waiting(conn, kind, &presented, now).map_err(DbError::from))
        .await?)
}

/// The page a link that is expired, used or made up opens.
fn dead_link(desk: &Desk<'_>) -> (Status, Template) {
    let page = desk.page.render(
        "error",
        json!({
            "status": 400,
            "reason": "Link expired",
            "message": "This link has expired or was used already. Links from doorman's mail work once, for a limited time.",
        }),
    );
    (Status::BadRequest, page)
}

#[derive(FromForm)]
pub struct AddressForm {
    email: String,
}

impl CsrfForm for AddressForm {}

/// Sets, changes or (left empty) removes the account's address.
#[post("/security/email", data = "<form>")]
pub async fn set_address(
    sudo: Sudo,
    form: Checked<AddressForm>,
    client: ClientInfo,
    mailroom: Mailroom<'_>,
    fx: Effects<'_>,
) -> Result<Redirect, AppError> {
    let user = sudo.or_ask("/security")?;
    let (user_id, sid, now, text) = (user.user_id(), user.sid().to_owned(), fx.now, form.0.email);
    let (secret, policy, throttle) = (mailroom.secret.clone(), mailroom.policy, mailroom.throttle);
    let removed = text.trim().is_empty();
    let outcome = mailroom
        .db
        .write(move |tx| -> Result<_, DbError> {
            let Some(account) = db::users::find(tx, user_id)? else {
                return Ok(Err(AddressError::Invalid("This account is gone.")));
            };
            let session_id = db::sessions::find_by_public_id(tx, &sid)?.map(|s| s.id);
            let change = AddressChange {
                user: &account,
                session_id,
                client: &client,
                limits: Some(throttle),
            };
            Ok(email::set_address(
                tx, &secret, policy, &change, &text, now,
            )?)
        })
        .await?;
    match outcome {
        Ok(()) => {
            fx.notice(if removed {
                Notice::AddressRemoved
            } else {
                Notice::AddressSaved
            });
            Ok(Redirect::to(uri!("/security")))
        }
        Err(AddressError::Throttled { retry_after }) => Err(AppError::Throttled {
            retry_after,
            why: AddressError::Throttled { retry_after }.message(),
        }),
        Err(refused) => Err(AppError::Invalid(refused.message())),
    }
}

/// The verification link: following it confirms the address (the one link that acts on a
/// GET: it proves only that its reader gets the address's mail, which is the point).
#[get("/email/verify?<token>")]
pub async fn verify(
    token: &str,
    client: ClientInfo,
    viewer: Viewer,
    db: &State<Db>,
    desk: Desk<'_>,
) -> Result<(Status, Template), AppError> {
    let (now, presented) = (desk.clock.now(), token.to_owned());
    let verified = db
        .write(move |tx| email::verify(tx, &presented, &client, now).map_err(DbError::from))
        .await?;
    if !verified {
        return Ok(dead_link(&desk));
    }
    let page = desk
        .page
        .render("email_verified", json!({ "signed_in": viewer.0.is_some() }));
    Ok((Status::Ok, page))
}

#[derive(FromForm)]
pub struct TokenForm {
    /// The link's token, when the form carries it rather than the query.
    token: Option<String>,
}

impl CsrfForm for TokenForm {
    const BEFORE_LOGIN: bool = true;
}

/// The token of a link's form: the query's (the link itself) or the form's field.
fn link_token(query: Option<&str>, field: Option<String>) -> String {
    query.map(str::to_owned).or(field).unwrap_or_default()
}

#[get("/password/forgot")]
pub fn forgot_page(desk: Desk<'_>) -> Template {
    desk.page.render(
        "password_forgot",
        json!({ "csrf_token": desk.browser_csrf() }),
    )
}

#[derive(FromForm)]
pub struct ForgotForm {
    login: String,
}

impl CsrfForm for ForgotForm {
    const BEFORE_LOGIN: bool = true;
}

/// The same answer, after the same work, whatever `login` names.
#[post("/password/forgot", data = "<form>")]
pub async fn forgot(
    form: Checked<ForgotForm>,
    client: ClientInfo,
    mailroom: Mailroom<'_>,
    desk: Desk<'_>,
) -> Result<RetryAfter<(Status, Template)>, AppError> {
    let (now, login) = (desk.clock.now(), form.0.login);
    let (secret, policy, throttle) = (mailroom.secret.clone(), mailroom.policy, mailroom.throttle);
    let outcome = mailroom
        .db
        .write(move |tx| {
            email::request_reset(tx, &secret, policy, &throttle, &login, &client, now)
                .map_err(DbError::from)
        })
        .await?;
    let (status, retry_after) = match outcome {
        Ok(()) => (Status::Ok, None),
        Err(wait) => (Status::TooManyRequests, Some(wait)),
    };
    let page = desk.page.render(
        "password_forgot",
        json!({
            "csrf_token": desk.browser_csrf(),
            "sent": retry_after.is_none(),
            "throttled": retry_after.map(crate::http::page::minutes),
        }),
    );
    Ok(RetryAfter(retry_after, (status, page)))
}

fn reset_form(desk: &Desk<'_>, token: &str, error: Option<&str>) -> Template {
    desk.page.render(
        "password_reset",
        json!({
            "csrf_token": desk.browser_csrf(),
            "token": token,
            "error": error,
            "min_password": MIN_PASSWORD_CHARS,
            "max_password": MAX_PASSWORD_CHARS,
        }),
    )
}

#[get("/password/reset?<token>")]
pub async fn reset_page(
    token: &str,
    db: &State<Db>,
    desk: Desk<'_>,
) -> Result<(Status, Template), AppError> {
    if !waiting(db, LinkKind::ResetPassword, token, desk.clock.now()).await? {
        return Ok(dead_link(&desk));
    }
    Ok((Status::Ok, reset_form(&desk, token, None)))
}

#[derive(FromForm)]
pub struct ResetForm {
    token: Option<String>,
    new_password: String,
}

impl CsrfForm for ResetForm {
    const BEFORE_LOGIN: bool = true;
}

#[post("/password/reset?<token>", data = "<form>")]
pub async fn reset(
    token: Option<&str>,
    form: Checked<ResetForm>,
    client: ClientInfo,
    db: &State<Db>,
    hasher: &State<PasswordHasher>,
    desk: Desk<'_>,
) -> Answer {
    let ResetForm {
        token: field,
        new_password,
    } = form.0;
    let token = link_token(token, field);
    let now = desk.clock.now();
    if let Err(why) = passwords::check_new_password(&new_password) {
        let page = reset_form(&desk, &token, Some(&format!("New password: {why}")));
        return Ok(Either::Right((Status::UnprocessableEntity, page)));
    }
    if !waiting(db, LinkKind::ResetPassword, &token, now).await? {
        return Ok(Either::Right(dead_link(&desk)));
    }
    let hash = hasher.hash(new_password).await?;
    let reset = db
        .write(move |tx| {
            email::reset_password(tx, &token, &hash, &client, now).map_err(DbError::from)
        })
        .await?;
    if !reset {
        return Ok(Either::Right(dead_link(&desk)));
    }
    desk.policy.clear_session(desk.jar);
    desk.notice(Notice::PasswordReset);
    Ok(Either::Left(Redirect::to(uri!("/login"))))
}

#[get("/sessions/<sid>/report?<token>")]
pub async fn report_page(
    sid: &str,
    token: &str,
    db: &State<Db>,
    desk: Desk<'_>,
) -> Result<(Status, Template), AppError> {
    let (now, reported, presented) = (desk.clock.now(), sid.to_owned(), token.to_owned());
    let waiting = db
        .run(move |conn| {
            email::report_waiting(conn, &reported, &presented, now).map_err(DbError::from)
        })
        .await?;
    if !waiting {
        return Ok(dead_link(&desk));
    }
    let page = desk.page.render(
        "session_report",
        json!({ "csrf_token": desk.browser_csrf(), "token": token, "sid": sid }),
    );
    Ok((Status::Ok, page))
}

#[post("/sessions/<sid>/report?<token>", data = "<form>")]
pub async fn report(
    sid: &str,
    token: Option<&str>,
    form: Checked<TokenForm>,
    client: ClientInfo,
    db: &State<Db>,
    desk: Desk<'_>,
) -> Answer {
    let (now, reported) = (desk.clock.now(), sid.to_owned());
    let token = link_token(token, form.0.token);
    let ended = db
        .write(move |tx| email::report(tx, &reported, &token, &client, now).map_err(DbError::from))
        .await?;
    if !ended {
        return Ok(Either::Right(dead_link(&desk)));
    }
    desk.notice(Notice::SessionReported);
    Ok(Either::Left(Redirect::to(uri!("/password/forgot"))))
}

/// Mounts this file's routes.
pub fn stage() -> rocket::fairing::AdHoc {
    rocket::fairing::AdHoc::on_ignite("email", |rocket| async {
        rocket.mount(
            "/",
            rocket::routes![
                set_address,
                verify,
                forgot_page,
                forgot,
                reset_page,
                reset,
                report_page,
                report
            ],
        )
    })
}

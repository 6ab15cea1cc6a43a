//! `/security`: the account's ways to sign in, and setting up or removing the authenticator app
//! and its recovery codes. Every change needs sudo mode.

use rocket::form::FromForm;
use rocket::http::Status;
use rocket::response::Redirect;
use rocket::{Either, State, get, post, uri};
use rocket_dyn_templates::Template;
use serde_json::json;

use crate::auth::keys::ServerSecret;
use crate::core::client::ClientInfo;
use crate::core::methods;
use crate::core::passkeys::{MAX_NAME_CHARS, Passkeys};
use crate::core::second_factors::{self, Confirmed, Enrolment};
use crate::db::{self, Db, DbError, users::UserRow};
use crate::http::cookies::Notice;
use crate::http::csrf::{Checked, CsrfForm};
use crate::http::effects::Effects;
use crate::http::error::AppError;
use crate::http::forms::ButtonForm;
use crate::http::guards::{SignedIn, Sudo};
use crate::http::page::Page;
use crate::http::qr;

const PAGE: &str = "/security";

type Answer = Result<Either<Redirect, (Status, Template)>, AppError>;

/// The signed-in user's row; a user deleted meanwhile is a session that ended.
async fn account(db: &Db, user_id: i64) -> Result<UserRow, AppError> {
    db.run(move |conn| db::users::find(conn, user_id).map_err(DbError::from))
        .await?
        .ok_or(AppError::SessionEnded)
}

#[get("/security")]
pub async fn security(
    user: SignedIn,
    page: Page,
    db: &State<Db>,
    passkeys: &State<Passkeys>,
) -> Result<Template, AppError> {
    let account = account(db, user.user_id()).await?;
    let methods = db
        .run(move |conn| methods::of(conn, &account).map_err(DbError::from))
        .await?;
    Ok(page.render(
        "security",
        json!({
            "methods": methods,
            "passkeys_on": passkeys.enabled(),
            "max_name": MAX_NAME_CHARS,
        }),
    ))
}

fn enrolment_page(page: &Page, enrolment: &Enrolment, error: Option<&str>) -> Template {
    // Groups of four, as apps show and accept them.
    let grouped: Vec<&str> = enrolment
        .secret
        .as_bytes()
        .chunks(4)
        .filter_map(|c| std::str::from_utf8(c).ok())
        .collect();
    page.render(
        "totp_enrol",
        json!({
            "secret": grouped.join(" "),
            "uri": enrolment.uri,
            "qr_svg": qr::svg(&enrolment.uri),
            "error": error,
        }),
    )
}

fn codes_page(page: &Page, codes: &[String], first: bool) -> Template {
    page.render("recovery_codes", json!({ "codes": codes, "first": first }))
}

#[post("/security/totp", data = "<_form>")]
pub async fn start_totp(
    sudo: Sudo,
    _form: Checked<ButtonForm>,
    page: Page,
    db: &State<Db>,
    secret: &State<ServerSecret>,
) -> Result<Template, AppError> {
    let user = sudo.or_ask(PAGE)?;
    let account = account(db, user.user_id()).await?;
    let secret = secret.inner().clone();
    let enrolment = db
        .write(move |tx| {
            second_factors::start_enrolment(tx, &secret, &account).map_err(DbError::from)
        })
        .await?;
    Ok(enrolment_page(&page, &enrolment, None))
}

#[derive(FromForm)]
pub struct CodeForm {
    code: String,
}

impl CsrfForm for CodeForm {}

#[post("/security/totp/confirm", data = "<form>")]
pub async fn confirm_totp(
    sudo: Sudo,
    form: Checked<CodeForm>,
    client: ClientInfo,
    page: Page,
    db: &State<Db>,
    secret: &State<ServerSecret>,
    fx: Effects<'_>,
) -> Answer {
    let user = sudo.or_ask(PAGE)?;
    let account = account(db, user.user_id()).await?;
    let (secret, owner, now, code) = (
        secret.inner().clone(),
        user.owner(client),
        fx.now,
        form.0.code,
    );
    let confirmed = db
        .write(move |tx| {
            second_factors::confirm_enrolment(tx, &secret, &account, &owner, &code, now)
                .map_err(DbError::from)
        })
        .await?;
    Ok(match confirmed {
        Confirmed::On(codes) => Either::Right((Status::Ok, codes_page(&page, &codes, true))),
        Confirmed::WrongCode(enrolment) => Either::Right((
            Status::UnprocessableEntity,
            enrolment_page(
                &page,
                &enrolment,
                Some("That code is not right. Check the time on your phone and try the next one."),
            ),
        )),
        Confirmed::NotStarted => Either::Left(Redirect::to(uri!("/security"))),
    })
}

#[post("/security/totp/disable", data = "<_form>")]
pub async fn disable_totp(
    sudo: Sudo,
    _form: Checked<ButtonForm>,
    client: ClientInfo,
    db: &State<Db>,
    fx: Effects<'_>,
) -> Result<Redirect, AppError> {
    let user = sudo.or_ask(PAGE)?;
    let (owner, now) = (user.owner(client), fx.now);
    let was_on = db
        .write(move |tx| second_factors::disable(tx, &owner, now).map_err(DbError::from))
        .await?;
    if was_on {
        fx.notice(Notice::AuthenticatorOff);
    }
    Ok(Redirect::to(uri!("/security")))
}

#[post("/security/recovery-codes", data = "<_form>")]
pub async fn new_recovery_codes(
    sudo: Sudo,
    _form: Checked<ButtonForm>,
    client: ClientInfo,
    page: Page,
    db: &State<Db>,
    secret: &State<ServerSecret>,
    fx: Effects<'_>,
) -> Answer {
    let user = sudo.or_ask(PAGE)?;
    let (owner, now, secret) = (user.owner(client), fx.now, secret.inner().clone());
    let codes = db
        .write(move |tx| {
            second_factors::regenerate_recovery_codes(tx, &secret, &owner, now)
                .map_err(DbError::from)
        })
        .await?;
    Ok(match codes {
        Some(codes) => Either::Right((Status::Ok, codes_page(&page, &codes, false))),
        None => Either::Left(Redirect::to(uri!("/security"))),
    })
}

/// Mounts this file's routes.
pub fn stage() -> rocket::fairing::AdHoc {
    rocket::fairing::AdHoc::on_ignite("security settings", |rocket| async {
        rocket.mount(
            "/",
            rocket::routes![
                security,
                start_totp,
                confirm_totp,
                disable_totp,
                new_recovery_codes
            ],
        )
    })
}

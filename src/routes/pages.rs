//! The landing page and the signed-in user's profile (with the password change form).

use rocket::form::FromForm;
use rocket::http::Status;
use rocket::request::{FromRequest, Outcome};
use rocket::response::Redirect;
use rocket::response::content::RawHtml;
use rocket::{Either, Request, State, get, post, uri};
use rocket_dyn_templates::{Metadata, Template};
use serde_json::{Value, json};

use crate::core::accounts::{CheckError, OwnPasswordError, PasswordChangeError};
use crate::core::passwords::{MAX_PASSWORD_CHARS, MIN_PASSWORD_CHARS};
use crate::core::sign_in::Accounts;
use crate::db::Db;
use crate::http::cookies::{ClientDevice, Notice};
use crate::http::csrf::{Checked, CsrfForm};
use crate::http::effects::Effects;
use crate::http::error::{AppError, RetryAfter};
use crate::http::guards::{SignedIn, Sudo, Viewer};
use crate::http::page::{FixedPages, Page};
use crate::http::profile_cache::{ProfileCache, ProfileParts};

#[get("/")]
pub fn index(
    viewer: Viewer,
    page: Page,
    fixed: &State<FixedPages>,
    templates: Metadata<'_>,
) -> Either<Template, RawHtml<String>> {
    let signed_in = viewer.0.is_some();
    let context = || json!({ "signed_in": signed_in });
    page.render_fixed(fixed, &templates, "index", None, context)
}

/// What the profile page is made from: its cached parts, the database behind them, and the
/// templates that render them.
pub struct ProfileSource<'r> {
    cache: &'r ProfileCache,
    db: &'r Db,
    templates: Metadata<'r>,
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for ProfileSource<'r> {
    type Error = ();

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, ()> {
        let rocket = req.rocket();
        let (Some(cache), Some(db), Outcome::Success(templates)) = (
            rocket.state::<ProfileCache>(),
            rocket.state::<Db>(),
            Metadata::from_request(req).await,
        ) else {
            return Outcome::Error((Status::InternalServerError, ()));
        };
        Outcome::Success(ProfileSource {
            cache,
            db,
            templates,
        })
    }
}

impl ProfileSource<'_> {
    /// Everything the profile page shows, with the password form's message if any.
    async fn context(
        &self,
        user: &SignedIn,
        password_error: Option<String>,
    ) -> Result<Value, AppError> {
        let parts = self.cache.parts(self.db, &self.templates, &user.0).await?;
        Ok(context_of(&parts, password_error))
    }

    /// The page as a plain view shows it: rendered once per access token, then reused.
    async fn plain(
        &self,
        user: &SignedIn,
        page: &Page,
    ) -> Result<Either<Template, RawHtml<String>>, AppError> {
        let parts = self.cache.parts(self.db, &self.templates, &user.0).await?;
        if page.nav.flash.is_some() {
            return Ok(Either::Left(
                page.render("profile", context_of(&parts, None)),
            ));
        }
        if let Some(html) = parts.page.get() {
            return Ok(Either::Right(RawHtml(html.clone())));
        }
        let html = page
            .render_html(&self.templates, "profile", context_of(&parts, None))
            .ok_or(AppError::Render("profile"))?;
        Ok(Either::Right(RawHtml(
            parts.page.get_or_init(|| html).clone(),
        )))
    }
}

fn context_of(parts: &ProfileParts, password_error: Option<String>) -> Value {
    json!({
        "account_html": parts.account,
        "events_html": parts.events,
        "password_error": password_error,
        "min_password": MIN_PASSWORD_CHARS,
        "max_password": MAX_PASSWORD_CHARS,
    })
}

#[get("/profile")]
pub async fn profile(
    user: SignedIn,
    page: Page,
    source: ProfileSource<'_>,
) -> Result<Either<Template, RawHtml<String>>, AppError> {
    source.plain(&user, &page).await
}

#[derive(FromForm)]
pub struct PasswordForm {
    current_password: String,
    new_password: String,
}

impl CsrfForm for PasswordForm {}

#[post("/password", data = "<form>")]
pub async fn change_password(
    sudo: Sudo,
    form: Checked<PasswordForm>,
    caller: ClientDevice,
    accounts: Accounts<'_>,
    page: Page,
    source: ProfileSource<'_>,
    fx: Effects<'_>,
) -> Result<Either<Redirect, RetryAfter<(Status, Template)>>, AppError> {
    let user = sudo.or_ask("/profile")?;
    let form = form.0;
    let outcome = accounts
        .change_password(
            fx.now,
            user.user_id(),
            user.sid(),
            (&form.current_password, &form.new_password),
            caller.device_token,
            caller.client,
        )
        .await;
    let invalid = |message: String| (Status::UnprocessableEntity, None, message);
    let (status, retry_after, message) = match outcome {
        Ok(device_token) => {
            fx.known_device(device_token);
            fx.notice(Notice::PasswordChanged);
            return Ok(Either::Left(Redirect::to(uri!("/profile"))));
        }
        Err(PasswordChangeError::Current(OwnPasswordError::Wrong)) => {
            invalid("The current password is not right.".to_owned())
        }
        Err(PasswordChangeError::Weak(why)) => invalid(format!("New password: {why}")),
        Err(PasswordChangeError::Current(OwnPasswordError::Throttled { retry_after })) => (
            Status::TooManyRequests,
            Some(retry_after),
            format!(
                "Too many wrong passwords. Try again in {}.",
                crate::http::page::minutes(retry_after)
            ),
        ),
        Err(
            PasswordChangeError::Hashing(e)
            | PasswordChangeError::Current(OwnPasswordError::Check(CheckError::Hashing(e))),
        ) => return Err(e.into()),
        Err(
            PasswordChangeError::Db(e)
            | PasswordChangeError::Current(OwnPasswordError::Check(CheckError::Db(e))),
        ) => return Err(AppError::Db(e)),
    };
    let context = source.context(&user, Some(message)).await?;
    Ok(Either::Right(RetryAfter(
        retry_after,
        (status, page.render("profile", context)),
    )))
}

/// Mounts this file's routes.
pub fn stage() -> rocket::fairing::AdHoc {
    rocket::fairing::AdHoc::on_ignite("home and profile", |rocket| async {
        rocket.mount("/", rocket::routes![index, profile, change_password])
    })
}

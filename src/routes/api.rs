//! The JSON API: the browser flow's rules behind bearer tokens, for apps, scripts and services.

use rocket::data::{self, Data, FromData};
use rocket::http::Status;
use rocket::serde::json::Json;
use rocket::{Request, State, delete, get, post};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::auth::tokens::TokenService;
use crate::core::accounts::{LoginAttempt, LoginError, LoginOutcome};
use crate::core::admin;
use crate::core::client::ClientInfo;
use crate::core::pending_login::SecondStepError;
use crate::core::rotation_rules::{self, LogoutOutcome, RefreshError};
use crate::core::rotation_runner::Rotator;
use crate::core::sessions::{self as session, Lifetimes};
use crate::core::sign_in::{Accounts, SignedInSession};
use crate::db::{self, DbError, sessions::SessionRow, users::UserRow};
use crate::http::bearer::{Bearer, BearerAdmin};
use crate::http::device_labels::DeviceLabels;
use crate::http::effects::Effects;
use crate::http::error::{ApiError, AppError};

type ApiResult<T> = Result<T, ApiError>;

/// A JSON body: the wrong content type, malformed JSON or missing fields get a JSON 4xx.
pub struct ApiJson<T>(pub T);

#[rocket::async_trait]
impl<'r, T: DeserializeOwned> FromData<'r> for ApiJson<T> {
    type Error = ();

    async fn from_data(req: &'r Request<'_>, data: Data<'r>) -> data::Outcome<'r, Self> {
        if !req.content_type().is_some_and(|ct| ct.is_json()) {
            let error = ApiError::new(
                Status::UnsupportedMediaType,
                "invalid_input",
                "Send a JSON body with Content-Type: application/json.",
            );
            return data::Outcome::Error((error.note(req), ()));
        }
        match Json::<T>::from_data(req, data).await {
            data::Outcome::Success(json) => data::Outcome::Success(ApiJson(json.into_inner())),
            data::Outcome::Error((status, e)) => {
                let error = if status == Status::PayloadTooLarge {
                    ApiError::new(status, "invalid_input", "The body is too large.")
                } else {
                    ApiError::invalid_input(format!("The JSON body is not what was expected: {e}"))
                };
                data::Outcome::Error((error.note(req), ()))
            }
            data::Outcome::Forward(f) => data::Outcome::Forward(f),
        }
    }
}

/// Issuance of token pairs: what login and refresh answer.
struct Pair<'a> {
    tokens: &'a TokenService,
    lifetimes: &'a Lifetimes,
}

impl Pair<'_> {
    fn answer(&self, session: &SessionRow, role: &str, refresh_token: String, now: i64) -> Value {
        let claims = self
            .lifetimes
            .access_claims(self.tokens, session, role, now);
        json!({
            "access_token": self.tokens.sign(&claims),
            "refresh_token": refresh_token,
            "token_type": "Bearer",
            "expires_in": claims.exp - now,
        })
    }
}

fn rfc3339(seconds: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(seconds)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

/// A user as the API shows them (`/api/me`, `/api/admin/users`).
fn user_json(user: &UserRow) -> Value {
    json!({
        "id": user.id,
        "username": user.username,
        "role": user.role,
        "disabled": user.disabled,
        "created_at": rfc3339(user.created_at),
        "last_login_at": user.last_login_at.map(rfc3339),
    })
}

fn session_json(row: &SessionRow, current_sid: &str, labels: &DeviceLabels) -> Value {
    json!({
        "sid": row.public_id,
        "amr": row.amr.split(' ').collect::<Vec<_>>(),
        "device": labels.label(&row.last_user_agent),
        "ip": row.last_ip,
        "created_at": rfc3339(row.created_at),
        "last_seen_at": rfc3339(row.last_used_at),
        "current": row.public_id == current_sid,
    })
}

#[derive(Deserialize)]
pub struct Credentials {
    username: String,
    password: String,
    /// The known-device token a previous login of this account answered: attempts with it are
    /// throttled per device, so failures from elsewhere never lock this app out.
    #[serde(default)]
    device_token: Option<String>,
}

#[post("/auth/login", data = "<body>")]
pub async fn login(
    body: ApiJson<Credentials>,
    client: ClientInfo,
    accounts: Accounts<'_>,
    tokens: &State<TokenService>,
    fx: Effects<'_>,
) -> ApiResult<Json<Value>> {
    let Credentials {
        username,
        password,
        device_token,
    } = body.0;
    let now = fx.now;
    let attempt = LoginAttempt {
        username: &username,
        password: &password,
        remember: false,
        next: None,
    };
    match accounts.login(now, attempt, device_token, client).await {
        Ok(LoginOutcome::SignedIn(signed_in)) => {
            Ok(Json(pair_of(&accounts, tokens, *signed_in, now)))
        }
        Ok(LoginOutcome::SecondStep(mfa_token)) => Err(ApiError::unauthorized(
            "mfa_required",
            "This account has a second factor: send a code with the mfa_token to /api/auth/mfa.",
        )
        .with_field("mfa_token", mfa_token)),
        Err(LoginError::InvalidCredentials) => Err(ApiError::unauthorized(
            "invalid_credentials",
            "The username or password is not right.",
        )),
        Err(LoginError::Disabled) => Err(disabled()),
        Err(LoginError::Throttled { retry_after }) => Err(throttled(retry_after)),
        Err(LoginError::Hashing(e)) => Err(AppError::from(e).into()),
        Err(LoginError::Db(e)) => Err(e.into()),
    }
}

/// The answer of a finished login: a token pair and the device token to send next time.
fn pair_of(
    accounts: &Accounts<'_>,
    tokens: &TokenService,
    signed_in: SignedInSession,
    now: i64,
) -> Value {
    let pair = Pair {
        tokens,
        lifetimes: &accounts.lifetimes,
    };
    let mut answer = pair.answer(
        &signed_in.started.session,
        &signed_in.user.role,
        signed_in.started.refresh_token,
        now,
    );
    answer["device_token"] = Value::String(signed_in.device_token);
    answer
}

fn disabled() -> ApiError {
    ApiError::new(
        Status::Forbidden,
        "account_disabled",
        "This account is disabled.",
    )
}

fn throttled(retry_after: i64) -> ApiError {
    ApiError {
        retry_after: Some(retry_after),
        ..ApiError::new(
            Status::TooManyRequests,
            "too_many_attempts",
            "Too many failed sign-ins; wait before trying again.",
        )
    }
}

#[derive(Deserialize)]
pub struct SecondStep {
    mfa_token: String,
    code: String,
    #[serde(default)]
    device_token: Option<String>,
}

/// The second step of a login that answered `mfa_required`.
#[post("/auth/mfa", data = "<body>")]
pub async fn mfa(
    body: ApiJson<SecondStep>,
    client: ClientInfo,
    accounts: Accounts<'_>,
    tokens: &State<TokenService>,
    fx: Effects<'_>,
) -> ApiResult<Json<Value>> {
    let SecondStep {
        mfa_token,
        code,
        device_token,
    } = body.0;
    let now = fx.now;
    match accounts
        .second_step(now, &mfa_token, &code, device_token, client)
        .await
    {
        Ok(finished) => Ok(Json(pair_of(&accounts, tokens, finished.signed_in, now))),
        Err(SecondStepError::Expired) => Err(ApiError::unauthorized(
            "invalid_token",
            "This mfa_token has expired or was used; sign in again.",
        )),
        Err(SecondStepError::WrongCode { .. }) => Err(ApiError::unauthorized(
            "invalid_credentials",
            "The code is not right.",
        )),
        Err(SecondStepError::Disabled) => Err(disabled()),
        Err(SecondStepError::Throttled { retry_after }) => Err(throttled(retry_after)),
        Err(SecondStepError::Db(e)) => Err(e.into()),
    }
}

#[derive(Deserialize)]
pub struct RefreshBody {
    refresh_token: String,
}

#[post("/auth/refresh", data = "<body>")]
pub async fn refresh(
    body: ApiJson<RefreshBody>,
    client: ClientInfo,
    accounts: Accounts<'_>,
    tokens: &State<TokenService>,
    rotator: &State<Rotator>,
    fx: Effects<'_>,
) -> ApiResult<Json<Value>> {
    let (now, lifetimes, presented) = (fx.now, accounts.lifetimes, body.0.refresh_token);
    let outcome = rotator.rotate(now, presented, client).await;
    match outcome {
        Ok(rotated) => {
            let pair = Pair {
                tokens,
                lifetimes: &lifetimes,
            };
            Ok(Json(pair.answer(
                &rotated.session,
                &rotated.role,
                rotated.refresh_token,
                now,
            )))
        }
        Err(RefreshError::Reused) => Err(reuse_detected()),
        Err(RefreshError::Unknown) => Err(ApiError::unauthorized(
            "invalid_token",
            "The refresh token is not valid.",
        )),
        Err(RefreshError::SessionEnded) => Err(ApiError::unauthorized(
            "session_revoked",
            "This session has ended; sign in again.",
        )),
        Err(RefreshError::Expired) => Err(ApiError::unauthorized(
            "token_expired",
            "The session has expired; sign in again.",
        )),
        Err(RefreshError::Db(e)) => Err(e.into()),
    }
}

#[post("/auth/logout", data = "<body>")]
pub async fn logout(
    body: ApiJson<RefreshBody>,
    client: ClientInfo,
    accounts: Accounts<'_>,
    fx: Effects<'_>,
) -> ApiResult<Status> {
    let (now, lifetimes, presented) = (fx.now, accounts.lifetimes, body.0.refresh_token);
    let ended = accounts
        .db
        .write(move |tx| {
            rotation_rules::end_by_refresh_token(tx, now, &lifetimes, &presented, &client)
                .map_err(DbError::from)
        })
        .await?;
    match ended {
        Some(LogoutOutcome::LoggedOut) => Ok(Status::NoContent),
        Some(LogoutOutcome::Reused) => Err(reuse_detected()),
        None => Err(ApiError::unauthorized(
            "invalid_token",
            "The refresh token is not valid.",
        )),
    }
}

fn reuse_detected() -> ApiError {
    ApiError::unauthorized(
        "reuse_detected",
        "This refresh token was already used: the session is ended as possibly stolen.",
    )
}

#[get("/me")]
pub async fn me(
    caller: Bearer,
    accounts: Accounts<'_>,
    labels: &State<DeviceLabels>,
) -> ApiResult<Json<Value>> {
    let (user_id, sid) = (caller.user_id(), caller.sid().to_owned());
    let (user, session) = accounts
        .db
        .run(move |conn| {
            let user = db::users::find(conn, user_id)?;
            let session = db::sessions::find_by_public_id(conn, &sid)?;
            Ok::<_, DbError>((user, session))
        })
        .await?;
    // The row says more than the revocation set, which other instances learn of only at their
    // next poll.
    let session = session.filter(|s| s.ended_at.is_none());
    let (Some(user), Some(session)) = (user, session) else {
        return Err(ApiError::unauthorized(
            "session_revoked",
            "This session has ended.",
        ));
    };
    let mut session = session_json(&session, caller.sid(), labels);
    if let Value::Object(map) = &mut session {
        map.remove("current");
    }
    Ok(Json(
        json!({ "user": user_json(&user), "session": session }),
    ))
}

#[get("/sessions")]
pub async fn sessions(
    caller: Bearer,
    accounts: Accounts<'_>,
    labels: &State<DeviceLabels>,
    fx: Effects<'_>,
) -> ApiResult<Json<Value>> {
    let (user_id, alive) = (caller.user_id(), accounts.lifetimes.alive(fx.now));
    let rows = accounts
        .db
        .run(move |conn| session::alive_of_user(conn, user_id, alive))
        .await?;
    if !rows.iter().any(|s| s.public_id == caller.sid()) {
        return Err(ApiError::unauthorized(
            "session_revoked",
            "This session has ended.",
        ));
    }
    let sessions: Vec<Value> = rows
        .iter()
        .map(|s| session_json(s, caller.sid(), labels))
        .collect();
    Ok(Json(json!({ "sessions": sessions })))
}

#[delete("/sessions/<sid>")]
pub async fn end_session(
    caller: Bearer,
    sid: &str,
    client: ClientInfo,
    accounts: Accounts<'_>,
    fx: Effects<'_>,
) -> ApiResult<Status> {
    let ended = session::revoke_own(
        accounts.db,
        caller.user_id(),
        sid.to_owned(),
        fx.now,
        client,
    )
    .await?;
    if !ended {
        return Err(ApiError::new(
            Status::NotFound,
            "not_found",
            "No such session of yours.",
        ));
    }
    Ok(Status::NoContent)
}

#[get("/admin/users")]
pub async fn admin_users(
    _admin: BearerAdmin,
    accounts: Accounts<'_>,
    fx: Effects<'_>,
) -> ApiResult<Json<Value>> {
    let alive = accounts.lifetimes.alive(fx.now);
    let summaries = accounts
        .db
        .run(move |conn| admin::all_users(conn, alive))
        .await?;
    let users: Vec<Value> = summaries
        .iter()
        .map(|s| {
            let mut user = user_json(&s.user);
            user["active_sessions"] = s.active_sessions.into();
            user
        })
        .collect();
    Ok(Json(json!({ "users": users })))
}

/// Mounts the JSON API under `/api`, where every error is JSON.
pub fn stage() -> rocket::fairing::AdHoc {
    rocket::fairing::AdHoc::on_ignite("JSON API", |rocket| async {
        rocket.mount(
            "/api",
            rocket::routes![
                login,
                mfa,
                refresh,
                logout,
                me,
                sessions,
                end_session,
                admin_users
            ],
        )
    })
}

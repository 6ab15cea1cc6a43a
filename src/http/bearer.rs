//! Guards of the JSON API: access tokens from `Authorization: Bearer` only (cookies never
//! authenticate `/api`, so there is nothing for CSRF to forge). Refusals carry their API error code.

use std::sync::Arc;

use rocket::Request;
use rocket::http::Status;
use rocket::outcome::try_outcome;
use rocket::request::{FromRequest, Outcome};

use crate::auth::revocation::Revocations;
use crate::auth::tokens::{AccessClaims, TokenError, TokenService};
use crate::clock::SharedClock;
use crate::http::error::ApiError;

/// A caller with a valid bearer access token.
#[derive(Debug, Clone)]
pub struct Bearer(pub Arc<AccessClaims>);

impl Bearer {
    pub fn user_id(&self) -> i64 {
        self.0.user_id().unwrap_or_default()
    }

    pub fn sid(&self) -> &str {
        &self.0.sid
    }
}

fn authenticate(req: &Request<'_>) -> Result<Arc<AccessClaims>, ApiError> {
    let rocket = req.rocket();
    let (Some(tokens), Some(clock), Some(revocations)) = (
        rocket.state::<TokenService>(),
        rocket.state::<SharedClock>(),
        rocket.state::<Revocations>(),
    ) else {
        return Err(ApiError::new(
            Status::InternalServerError,
            "internal_error",
            "not ready",
        ));
    };
    let Some(header) = req.headers().get_one("Authorization") else {
        return Err(ApiError::unauthorized(
            "missing_token",
            "Send an access token: Authorization: Bearer <token>.",
        ));
    };
    let token = header
        .split_once(' ')
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .ok_or_else(|| {
            ApiError::unauthorized(
                "invalid_token",
                "The Authorization header is not a bearer token.",
            )
        })?;
    let claims = tokens.verify(token, clock.now()).map_err(|e| match e {
        TokenError::Expired => {
            ApiError::unauthorized("token_expired", "The access token has expired; refresh it.")
        }
        TokenError::Malformed | TokenError::Invalid => {
            ApiError::unauthorized("invalid_token", "The access token is not valid.")
        }
    })?;
    if revocations.allows(&claims) {
        Ok(claims)
    } else if revocations.has_ended(&claims) {
        Err(ApiError::unauthorized(
            "session_revoked",
            "This session has ended; sign in again.",
        ))
    } else {
        Err(ApiError::unauthorized(
            "token_expired",
            "The account changed; refresh the access token.",
        ))
    }
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for Bearer {
    type Error = ();

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, ()> {
        match authenticate(req) {
            Ok(claims) => Outcome::Success(Bearer(claims)),
            Err(error) => Outcome::Error((error.note(req), ())),
        }
    }
}

/// A bearer caller with the `admin` role; others get 403 `insufficient_role`.
#[derive(Debug, Clone)]
pub struct BearerAdmin(pub Bearer);

#[rocket::async_trait]
impl<'r> FromRequest<'r> for BearerAdmin {
    type Error = ();

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, ()> {
        let bearer = try_outcome!(req.guard::<Bearer>().await);
        if bearer.0.is_admin() {
            return Outcome::Success(BearerAdmin(bearer));
        }
        let error = ApiError::new(
            Status::Forbidden,
            "insufficient_role",
            "This needs the admin role.",
        );
        Outcome::Error((error.note(req), ()))
    }
}

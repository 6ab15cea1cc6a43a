//! Request guards: who may enter (reading what the silent-refresh fairing decided, never the
//! database), and the account rules with what they need from managed state.

use std::sync::Arc;

use rocket::Request;
use rocket::http::Status;
use rocket::request::{FromRequest, Outcome};

use super::silent_refresh::AuthState;
use crate::auth::keys::ServerSecret;
use crate::auth::tokens::AccessClaims;
use crate::core::accounts::Accounts;
use crate::core::passwords::PasswordHasher;
use crate::core::sessions::Lifetimes;
use crate::core::throttle::ThrottlePolicy;
use crate::db::Db;

/// A signed-in user. Anonymous requests fail with 401, which the HTML catcher turns into a
/// redirect to `/login?next=…`.
#[derive(Debug, Clone)]
pub struct SignedIn(pub Arc<AccessClaims>);

impl SignedIn {
    pub fn user_id(&self) -> i64 {
        self.0.user_id().unwrap_or_default()
    }

    pub fn sid(&self) -> &str {
        &self.0.sid
    }

    pub fn is_admin(&self) -> bool {
        self.0.is_admin()
    }
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for SignedIn {
    type Error = ();

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, ()> {
        match AuthState::of(req) {
            AuthState::SignedIn(claims) => Outcome::Success(SignedIn(claims.clone())),
            AuthState::Unavailable => Outcome::Error((Status::ServiceUnavailable, ())),
            AuthState::Anonymous | AuthState::NotChecked => {
                Outcome::Error((Status::Unauthorized, ()))
            }
        }
    }
}

/// A signed-in user with the `admin` role; others get 403.
#[derive(Debug, Clone)]
pub struct Admin(pub SignedIn);

#[rocket::async_trait]
impl<'r> FromRequest<'r> for Admin {
    type Error = ();

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, ()> {
        match SignedIn::from_request(req).await {
            Outcome::Success(user) if user.is_admin() => Outcome::Success(Admin(user)),
            Outcome::Success(_) => Outcome::Error((Status::Forbidden, ())),
            Outcome::Error(e) => Outcome::Error(e),
            Outcome::Forward(f) => Outcome::Forward(f),
        }
    }
}

/// Anyone: the signed-in user when there is one.
#[derive(Debug, Clone)]
pub struct Viewer(pub Option<SignedIn>);

#[rocket::async_trait]
impl<'r> FromRequest<'r> for Viewer {
    type Error = ();

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, ()> {
        match AuthState::of(req) {
            AuthState::SignedIn(claims) => Outcome::Success(Viewer(Some(SignedIn(claims.clone())))),
            _ => Outcome::Success(Viewer(None)),
        }
    }
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for Accounts<'r> {
    type Error = ();

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, ()> {
        let rocket = req.rocket();
        match (
            rocket.state::<Db>(),
            rocket.state::<PasswordHasher>(),
            rocket.state::<Lifetimes>(),
            rocket.state::<ThrottlePolicy>(),
            rocket.state::<ServerSecret>(),
        ) {
            (Some(db), Some(hasher), Some(lifetimes), Some(throttle), Some(secret)) => {
                Outcome::Success(Accounts {
                    db,
                    hasher,
                    lifetimes: *lifetimes,
                    throttle: *throttle,
                    secret,
                })
            }
            _ => Outcome::Error((Status::InternalServerError, ())),
        }
    }
}

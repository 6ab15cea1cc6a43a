//! Request guards: who may enter (reading what the silent-refresh fairing decided, never the
//! database), and the account rules with what they need from managed state.

use std::sync::Arc;

use rocket::Request;
use rocket::http::Status;
use rocket::outcome::try_outcome;
use rocket::request::{FromRequest, Outcome};

use super::silent_refresh::AuthState;
use crate::auth::keys::ServerSecret;
use crate::auth::tokens::AccessClaims;
use crate::clock::SharedClock;
use crate::config::Config;
use crate::core::client::ClientInfo;
use crate::core::email::EmailPolicy;
use crate::core::owner::Owner;
use crate::core::passwords::PasswordHasher;
use crate::core::sessions::Lifetimes;
use crate::core::sign_in::Accounts;
use crate::core::throttle::ThrottlePolicy;
use crate::db::Db;
use crate::http::error::AppError;

/// A signed-in user. Anonymous requests fail with 401, which the HTML catcher turns into a
/// redirect to `/login?next=…`.
#[derive(Debug, Clone)]
pub struct SignedIn(pub Arc<AccessClaims>);

impl SignedIn {
    /// The account's owner acting through this session, for the events a change of its ways to
    /// sign in records.
    pub fn owner(&self, client: ClientInfo) -> Owner {
        Owner {
            user_id: self.user_id(),
            sid: self.sid().to_owned(),
            client,
        }
    }

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
        let user = try_outcome!(req.guard::<SignedIn>().await);
        if user.is_admin() {
            Outcome::Success(Admin(user))
        } else {
            Outcome::Error((Status::Forbidden, ()))
        }
    }
}

/// A signed-in user about to do a sensitive action, which needs an authentication within
/// `sudo_ttl` (read from the access token's `auth_time`: no database read).
#[derive(Debug, Clone)]
pub struct Sudo {
    user: SignedIn,
    fresh: bool,
}

impl Sudo {
    /// The user when the session authenticated recently enough; otherwise the answer that
    /// sends the browser to `/sudo` and back to `page`, changing nothing.
    pub fn or_ask(self, page: &str) -> Result<SignedIn, AppError> {
        if self.fresh {
            Ok(self.user)
        } else {
            Err(AppError::SudoNeeded(page.to_owned()))
        }
    }
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for Sudo {
    type Error = ();

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, ()> {
        let user = try_outcome!(req.guard::<SignedIn>().await);
        let rocket = req.rocket();
        let (Some(config), Some(clock)) = (rocket.state::<Config>(), rocket.state::<SharedClock>())
        else {
            return Outcome::Error((Status::InternalServerError, ()));
        };
        let fresh = user
            .0
            .authenticated_within(clock.now(), config.sudo_ttl.as_i64());
        Outcome::Success(Sudo { user, fresh })
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
            rocket.state::<EmailPolicy>(),
        ) {
            (
                Some(db),
                Some(hasher),
                Some(lifetimes),
                Some(throttle),
                Some(secret),
                Some(email),
            ) => Outcome::Success(Accounts {
                db,
                hasher,
                lifetimes: *lifetimes,
                throttle: *throttle,
                secret,
                email: *email,
            }),
            _ => Outcome::Error((Status::InternalServerError, ())),
        }
    }
}

//! The silent-refresh fairing: decides once per request who is signed in, rotating the refresh
//! token when the access token is missing, expired or invalid, and hands the result to the
//! guards through request-local state.

use std::sync::Arc;

use rocket::fairing::{Fairing, Info, Kind};
use rocket::http::Cookie;
use rocket::{Data, Request, Response};

use super::cookies::CookiePolicy;
use crate::auth::revocation::Revocations;
use crate::auth::tokens::{AccessClaims, TokenService};
use crate::clock::SharedClock;
use crate::core::rotation_rules::RefreshError;
use crate::core::rotation_runner::Rotator;
use crate::core::sessions::Lifetimes;
use crate::http::area::Area;

/// Who the request is from, decided by the fairing.
#[derive(Debug, Clone)]
pub enum AuthState {
    /// The fairing did not look (static files, `/api`).
    NotChecked,
    Anonymous,
    SignedIn(Arc<AccessClaims>),
    /// A refresh was needed but the database could not answer; cookies are left as they were.
    Unavailable,
}

impl AuthState {
    pub fn of<'a>(req: &'a Request<'_>) -> &'a AuthState {
        req.local_cache(|| AuthState::NotChecked)
    }
}

pub struct SilentRefresh;

/// The cookies the fairing set for this request. Rocket drops a request's cookie changes when a
/// catcher answers (a 404, a 403 after a refresh), so they are put back on the response: a
/// client must never miss the token its rotation committed.
struct FairingCookies(Vec<Cookie<'static>>);

#[rocket::async_trait]
impl Fairing for SilentRefresh {
    fn info(&self) -> Info {
        Info {
            name: "silent refresh",
            kind: Kind::Request | Kind::Response,
        }
    }

    async fn on_request(&self, req: &mut Request<'_>, _: &mut Data<'_>) {
        // The API, static files and keys never read cookies or touch the database here.
        if Area::of(req) != Area::Pages {
            return;
        }
        let (state, cookies) = authenticate(req).await;
        for cookie in &cookies {
            req.cookies().add(cookie.clone());
        }
        req.local_cache(|| state);
        req.local_cache(|| FairingCookies(cookies));
    }

    async fn on_response<'r>(&self, req: &'r Request<'_>, res: &mut Response<'r>) {
        let FairingCookies(cookies) = req.local_cache(|| FairingCookies(Vec::new()));
        for cookie in cookies {
            let prefix = format!("{}=", cookie.name());
            let sent = res
                .headers()
                .get("Set-Cookie")
                .any(|v| v.starts_with(&prefix));
            if !sent {
                res.adjoin_header(cookie.clone());
            }
        }
    }
}

/// Decides who the request is from, and which cookies to set or remove for it.
async fn authenticate(req: &Request<'_>) -> (AuthState, Vec<Cookie<'static>>) {
    let rocket = req.rocket();
    let (
        Some(tokens),
        Some(policy),
        Some(clock),
        Some(rotator),
        Some(lifetimes),
        Some(revocations),
    ) = (
        rocket.state::<TokenService>(),
        rocket.state::<CookiePolicy>(),
        rocket.state::<SharedClock>(),
        rocket.state::<Rotator>(),
        rocket.state::<Lifetimes>(),
        rocket.state::<Revocations>(),
    )
    else {
        return (AuthState::Anonymous, Vec::new());
    };
    let jar = req.cookies();
    let now = clock.now();
    let access = jar.get(policy.access).map(rocket::http::Cookie::value);
    let verified = access.and_then(|jwt| tokens.verify(jwt, now).ok());
    if let Some(claims) = verified.filter(|c| revocations.allows(c)) {
        return (AuthState::SignedIn(claims), Vec::new());
    }
    let Some(presented) = jar.get(policy.refresh).map(|c| c.value().to_owned()) else {
        let clear = access.map(|_| policy.removal(policy.access));
        return (AuthState::Anonymous, clear.into_iter().collect());
    };
    let client = crate::http::client_guard::of(req);
    let outcome = rotator.rotate(now, presented, client).await;
    match outcome {
        Ok(rotated) => {
            let session = &rotated.session;
            let claims = lifetimes.access_claims(tokens, session, &rotated.role, now);
            let cookies = policy.session(
                tokens.sign(&claims),
                rotated.refresh_token,
                session.remember,
            );
            (AuthState::SignedIn(Arc::new(claims)), cookies.into())
        }
        Err(RefreshError::Db(_)) => (AuthState::Unavailable, Vec::new()),
        Err(_) => {
            let clear = vec![
                policy.removal(policy.access),
                policy.removal(policy.refresh),
            ];
            (AuthState::Anonymous, clear)
        }
    }
}

//! What a state-changing handler does on its way out: update the in-memory revocation set, set
//! a one-time message, clear this browser's cookies when its own session ended.

use rocket::Request;
use rocket::http::{CookieJar, Status};
use rocket::request::{FromRequest, Outcome};

use crate::admin::SessionChanges;
use crate::auth::cookies::{CookiePolicy, Notice};
use crate::auth::revocation::Revocations;
use crate::clock::SharedClock;

pub struct Effects<'r> {
    jar: &'r CookieJar<'r>,
    policy: &'r CookiePolicy,
    revocations: &'r Revocations,
    /// The time the request is handled at, from the app's clock.
    pub now: i64,
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for Effects<'r> {
    type Error = ();

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, ()> {
        let rocket = req.rocket();
        let (Some(policy), Some(revocations), Some(clock)) = (
            rocket.state::<CookiePolicy>(),
            rocket.state::<Revocations>(),
            rocket.state::<SharedClock>(),
        ) else {
            return Outcome::Error((Status::InternalServerError, ()));
        };
        Outcome::Success(Effects {
            jar: req.cookies(),
            policy,
            revocations,
            now: clock.now(),
        })
    }
}

impl Effects<'_> {
    /// Refuses the access tokens of these sessions on this instance from now on.
    pub fn ended(&self, sids: Vec<String>) {
        self.revocations.revoke(sids, self.now);
    }

    pub fn apply(&self, changes: SessionChanges) {
        self.revocations.revoke(changes.ended, self.now);
        self.revocations.renew(changes.renewed, self.now);
    }

    pub fn notice(&self, notice: Notice) {
        self.policy.set_notice(self.jar, notice);
    }

    /// This browser's own session ended: clear its cookies.
    pub fn signed_out(&self) {
        self.policy.clear_session(self.jar);
        self.notice(Notice::SignedOut);
    }
}

//! What a state-changing handler does on its way out: set a one-time message, renew the
//! known-device cookie, clear this browser's cookies when its own session ended. (What a write changed in memory, such as the
//! sessions it ended, is applied by the database layer after the commit.)

use rocket::Request;
use rocket::http::{CookieJar, Status};
use rocket::request::{FromRequest, Outcome};

use crate::clock::SharedClock;
use crate::http::cookies::{CookiePolicy, Notice};

pub struct Effects<'r> {
    jar: &'r CookieJar<'r>,
    policy: &'r CookiePolicy,
    /// The time the request is handled at, from the app's clock.
    pub now: i64,
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for Effects<'r> {
    type Error = ();

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, ()> {
        let rocket = req.rocket();
        let (Some(policy), Some(clock)) = (
            rocket.state::<CookiePolicy>(),
            rocket.state::<SharedClock>(),
        ) else {
            return Outcome::Error((Status::InternalServerError, ()));
        };
        Outcome::Success(Effects {
            jar: req.cookies(),
            policy,
            now: clock.now(),
        })
    }
}

impl Effects<'_> {
    pub fn notice(&self, notice: Notice) {
        self.policy.set_notice(self.jar, notice);
    }

    /// This browser is a known device of its account under `token` (a new one after a change
    /// that outdated the old).
    pub fn known_device(&self, token: String) {
        self.policy.set_device(self.jar, token);
    }

    /// This browser's own session ended: clear its cookies.
    pub fn signed_out(&self) {
        self.policy.clear_session(self.jar);
        self.notice(Notice::SignedOut);
    }
}

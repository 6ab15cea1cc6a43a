//! The [`ClientInfo`] of a request (`core::client`), as a request guard.

use std::convert::Infallible;

use rocket::Request;
use rocket::request::{FromRequest, Outcome};

use crate::core::client::ClientInfo;

/// The address Rocket reports (the `ip_header` behind a trusted proxy) and the User-Agent.
pub fn of(req: &Request<'_>) -> ClientInfo {
    ClientInfo::new(
        req.client_ip(),
        req.headers().get_one("User-Agent").unwrap_or(""),
    )
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for ClientInfo {
    type Error = Infallible;

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, Infallible> {
        Outcome::Success(of(req))
    }
}

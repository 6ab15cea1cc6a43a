//! Who is on the other end of a request, as far as doorman records it.

use std::convert::Infallible;

use rocket::Request;
use rocket::request::{FromRequest, Outcome};

/// Longest User-Agent kept; longer ones are cut (at a character boundary).
const MAX_USER_AGENT_CHARS: usize = 512;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientInfo {
    /// The socket's peer address, or the configured `ip_header` behind a trusted proxy.
    pub ip: String,
    pub user_agent: String,
}

impl ClientInfo {
    pub fn of(req: &Request<'_>) -> ClientInfo {
        let ip = req
            .client_ip()
            .map_or_else(|| "unknown".to_owned(), |ip| ip.to_string());
        let user_agent = req
            .headers()
            .get_one("User-Agent")
            .unwrap_or("")
            .chars()
            .filter(|c| !c.is_control())
            .take(MAX_USER_AGENT_CHARS)
            .collect();
        ClientInfo { ip, user_agent }
    }
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for ClientInfo {
    type Error = Infallible;

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, Infallible> {
        Outcome::Success(ClientInfo::of(req))
    }
}

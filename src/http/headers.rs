//! Security headers on every response, and `no-store` wherever a response is personal.

use rocket::fairing::{Fairing, Info, Kind};
use rocket::http::Header;
use rocket::shield::{Frame, NoSniff, Referrer, Shield};
use rocket::{Request, Response};

use super::area::Area;
use crate::http::silent_refresh::AuthState;

const CSP: &str = "default-src 'self'; frame-ancestors 'none'; object-src 'none'; \
                   base-uri 'none'; form-action 'self'";

/// Rocket's Shield with the policies the spec asks for (`nosniff`, `same-origin` referrers, no
/// framing).
pub fn shield() -> Shield {
    Shield::default()
        .enable(NoSniff::Enable)
        .enable(Referrer::SameOrigin)
        .enable(Frame::Deny)
}

/// Adds what Shield does not: the Content-Security-Policy and `Cache-Control: no-store`.
pub struct SecurityHeaders;

#[rocket::async_trait]
impl Fairing for SecurityHeaders {
    fn info(&self) -> Info {
        Info {
            name: "security headers",
            kind: Kind::Response,
        }
    }

    async fn on_response<'r>(&self, req: &'r Request<'_>, res: &mut Response<'r>) {
        res.set_header(Header::new("Content-Security-Policy", CSP));
        let personal = matches!(AuthState::of(req), AuthState::SignedIn(_))
            || Area::of(req) == Area::Api
            || res.headers().contains("Set-Cookie");
        if personal {
            res.set_header(Header::new("Cache-Control", "no-store"));
        }
    }
}

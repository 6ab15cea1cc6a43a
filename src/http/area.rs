//! Which part of doorman a request is for, decided from its decoded path segments: the rules
//! that follow (silent refresh, `no-store`, JSON or HTML errors) never depend on how the path is
//! spelled (`//api/me` and `/%61pi/me` are the API, as Rocket routes them).

use rocket::Request;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Area {
    /// `/api/…`: bearer tokens, JSON errors, never cookies.
    Api,
    /// `/static/…` and `/.well-known/…`: never read cookies or touch the database.
    Public,
    /// Everything else: the HTML pages.
    Pages,
}

impl Area {
    pub fn of(req: &Request<'_>) -> Area {
        match req.uri().path().segments().next() {
            Some("api") => Area::Api,
            Some("static" | ".well-known") => Area::Public,
            _ => Area::Pages,
        }
    }
}

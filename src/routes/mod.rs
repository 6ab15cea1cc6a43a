//! Thin HTTP handlers: parse, call the domain, render.

pub mod account;
pub mod admin;
pub mod api;
pub mod catchers;
pub mod effects;
pub mod health;
pub mod jwks;
pub mod pages;
pub mod sessions;

use rocket::{Route, routes};

pub fn html() -> Vec<Route> {
    routes![
        pages::index,
        pages::profile,
        pages::change_password,
        account::login_page,
        account::login,
        account::signup_page,
        account::signup,
        account::logout,
        sessions::list,
        sessions::revoke,
        sessions::revoke_others,
        health::healthz,
        jwks::jwks,
        crate::web::observe::metrics,
        admin::console,
        admin::user,
        admin::revoke_session,
        admin::revoke_all,
        admin::set_role,
        admin::disable,
        admin::enable,
    ]
}

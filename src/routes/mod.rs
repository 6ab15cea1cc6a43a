//! Thin HTTP handlers: parse, call the domain, render.

pub mod account;
pub mod catchers;
pub mod health;
pub mod pages;

use rocket::{Route, routes};

pub fn html() -> Vec<Route> {
    routes![
        pages::index,
        pages::profile,
        account::login_page,
        account::login,
        account::signup_page,
        account::signup,
        account::logout,
        health::healthz,
    ]
}

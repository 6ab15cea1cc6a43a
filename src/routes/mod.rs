//! Thin HTTP handlers, one file per area: parse, call the rules, render. Each file ends in a
//! `stage()` that mounts its routes, which the app attaches (`lib.rs`).

pub mod account;
pub mod admin;
pub mod api;
pub mod catchers;
pub mod email;
pub mod health;
pub mod jwks;
pub mod metrics;
pub mod pages;
pub mod passkeys;
pub mod security;
pub mod sessions;
pub mod sudo;

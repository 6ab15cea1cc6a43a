//! The rules, as plain functions over a connection (or a write transaction) and a clock, with no
//! Rocket types: accounts and passwords, throttling and known devices, sessions and their
//! rotation, admin actions, security events.

pub mod account_changes;
pub mod accounts;
pub mod admin;
pub mod client;
pub mod email;
pub mod events;
pub mod known_device;
pub mod methods;
pub mod owner;
pub mod passkeys;
pub mod passwords;
pub mod pending_login;
pub mod rotation_rules;
pub mod rotation_runner;
pub mod second_factors;
pub mod sessions;
pub mod sign_in;
pub mod sudo;
pub mod throttle;
pub mod users;

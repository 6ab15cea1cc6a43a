//! Authentication: tokens, passwords, sessions and their rotation, cookies, CSRF, and the guards
//! and fairing that wire them into Rocket.

pub mod bearer;
pub mod cookies;
pub mod csrf;
pub mod fairing;
pub mod guards;
pub mod keys;
pub mod known_device;
pub mod passwords;
pub mod refresh;
pub mod revocation;
pub mod session;
pub mod throttle;
pub mod tokens;

pub use guards::{Admin, SignedIn, Viewer};

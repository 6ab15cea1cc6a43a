//! Everything between Rocket and the rules: cookies (where each is written), CSRF, request
//! guards and the bearer guard, the silent-refresh fairing, security headers, the request log
//! and metrics, page context and templates, errors answered as pages or JSON.

pub mod area;
pub mod bearer;
pub mod chart;
pub mod client_guard;
pub mod cookies;
pub mod csrf;
pub mod desk;
pub mod device_labels;
pub mod effects;
pub mod error;
pub mod forms;
pub mod guards;
pub mod headers;
pub mod observe;
pub mod page;
pub mod profile_cache;
pub mod qr;
pub mod redirects;
pub mod refusal;
pub mod retention;
pub mod silent_refresh;
pub mod templates;

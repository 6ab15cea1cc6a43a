//! HTTP concerns that are not authentication: security headers and templates.

pub mod area;
pub mod chart;
pub mod headers;
pub mod observe;
pub mod templates;

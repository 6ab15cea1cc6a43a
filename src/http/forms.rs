//! Forms shared by many pages.

use rocket::form::FromForm;

use crate::http::csrf::CsrfForm;

/// A form with nothing but its CSRF token (sign out, and other one-button actions).
#[derive(FromForm)]
pub struct ButtonForm {
    /// Checked by [`Checked`]; a form needs a field.
    #[field(name = "csrf_token")]
    _csrf_token: String,
}

impl CsrfForm for ButtonForm {}

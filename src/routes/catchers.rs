//! What the browser sees when a guard or Rocket refuses a request.

use rocket::http::Status;
use rocket::response::{self, Responder};
use rocket::{Request, catch, catchers};

use crate::http::error::error_response;

struct ErrorPage(Status);

impl<'r> Responder<'r, 'static> for ErrorPage {
    fn respond_to(self, req: &'r Request<'_>) -> response::Result<'static> {
        error_response(req, self.0)
    }
}

#[catch(default)]
fn error_page(status: Status, _req: &Request<'_>) -> ErrorPage {
    ErrorPage(status)
}

/// Under `/api` every error is JSON, 401s included (no redirect to a login form).
#[catch(401)]
fn api_unauthorized(req: &Request<'_>) -> ErrorPage {
    error_page(Status::Unauthorized, req)
}

/// Registers the error pages: HTML everywhere (the login redirect is the account pages'), JSON
/// under `/api`.
pub fn stage() -> rocket::fairing::AdHoc {
    rocket::fairing::AdHoc::on_ignite("error pages", |rocket| async {
        rocket
            .register("/", catchers![error_page])
            .register("/api", catchers![api_unauthorized, error_page])
    })
}

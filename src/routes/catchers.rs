//! What the browser sees when a guard or Rocket refuses a request.

use rocket::http::{Method, Status};
use rocket::response::{self, Redirect, Responder};
use rocket::{Request, catch, catchers, uri};

use crate::http::error::error_response;

/// Anonymous on a signed-in page: to the login form, coming back here afterwards.
#[catch(401)]
fn to_login(req: &Request<'_>) -> Redirect {
    if req.method() != Method::Get {
        return Redirect::to(uri!("/login"));
    }
    let next = req.uri().to_string();
    Redirect::to(uri!(crate::routes::account::login_page(next = Some(next))))
}

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

/// Registers the error pages: HTML (with the login redirect) everywhere, JSON under `/api`.
pub fn stage() -> rocket::fairing::AdHoc {
    rocket::fairing::AdHoc::on_ignite("error pages", |rocket| async {
        rocket
            .register("/", catchers![to_login, error_page])
            .register("/api", catchers![api_unauthorized, error_page])
    })
}

//! The floor: a bare Rocket 0.5 app whose one route's request guard verifies the same kind of
//! HS256 access-token cookie with jsonwebtoken and answers a small HTML page. No database, no
//! templates, no logging: what any signed-in page costs at least on this machine, so doorman's
//! pages are compared with it rather than with each other.

use std::path::Path;

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use rocket::http::Status;
use rocket::request::{FromRequest, Outcome};
use rocket::response::content::RawHtml;
use rocket::{Request, State, get, routes};
use serde::Deserialize;

const ACCESS: &str = "__Host-doorman_access";

struct Verifier {
    key: DecodingKey,
    validation: Validation,
}

#[derive(Deserialize)]
struct Claims {
    sub: String,
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for Claims {
    type Error = ();

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, ()> {
        let verifier = req.guard::<&State<Verifier>>().await.unwrap();
        let token = req.cookies().get(ACCESS).map(|c| c.value().to_owned());
        match token.and_then(|t| {
            jsonwebtoken::decode::<Claims>(&t, &verifier.key, &verifier.validation).ok()
        }) {
            Some(data) => Outcome::Success(data.claims),
            None => Outcome::Error((Status::Unauthorized, ())),
        }
    }
}

#[get("/page")]
fn page(claims: Claims) -> RawHtml<String> {
    RawHtml(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>floor</title>\
         </head><body><p>Signed in as user {}.</p></body></html>",
        claims.sub
    ))
}

#[get("/healthz")]
fn healthz() -> &'static str {
    "ok"
}

/// Serves the floor on 127.0.0.1:`port`, verifying with the HS256 secret in `secret_file`
/// (doorman's generated `jwt-secret`), until the process is killed.
pub fn serve(port: u16, secret_file: &Path) {
    let text = std::fs::read_to_string(secret_file).expect("the secret file");
    let secret = doorman::crypto::b64_decode_any(text.trim()).expect("a base64 secret");
    let mut validation = Validation::new(Algorithm::HS256);
    validation.set_issuer(&["doorman"]);
    validation.set_audience(&["doorman"]);
    validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
    validation.validate_nbf = true;
    let verifier = Verifier {
        key: DecodingKey::from_secret(&secret),
        validation,
    };
    let figment = rocket::Config::figment()
        .merge(("address", "127.0.0.1"))
        .merge(("port", port))
        .merge(("log_level", "off"))
        .merge(("cli_colors", false));
    let app = rocket::custom(figment)
        .manage(verifier)
        .mount("/", routes![page, healthz]);
    let _ = rocket::execute(app.launch());
}

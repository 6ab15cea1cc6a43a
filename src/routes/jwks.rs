//! The public keys other services verify doorman's access tokens with.

use rocket::serde::json::Json;
use rocket::{State, get};
use serde_json::{Value, json};

use crate::auth::tokens::TokenService;

/// The current and previous public keys as a JWK set (`{"keys": []}` for HS256, whose secret is
/// never published).
#[get("/.well-known/jwks.json")]
pub fn jwks(tokens: &State<TokenService>) -> Json<Value> {
    Json(json!({ "keys": tokens.keys().public_jwks }))
}

/// Mounts this file's routes.
pub fn stage() -> rocket::fairing::AdHoc {
    rocket::fairing::AdHoc::on_ignite("published keys", |rocket| async {
        rocket.mount("/", rocket::routes![jwks])
    })
}

//! Liveness for load balancers: 200 when the database answers, 503 when it does not.

use rocket::http::Status;
use rocket::serde::json::{Json, Value, json};
use rocket::{State, get};

use crate::db::{self, Db, DbError};

#[get("/healthz")]
pub async fn healthz(db: &State<Db>) -> (Status, Json<Value>) {
    let answer = db.run(|conn| db::ping(conn).map_err(DbError::from)).await;
    match answer {
        Ok(()) => (Status::Ok, Json(json!({ "status": "ok" }))),
        Err(e) => {
            rocket::warn!("health check: {e}");
            (
                Status::ServiceUnavailable,
                Json(json!({ "status": "unavailable" })),
            )
        }
    }
}

/// Mounts this file's routes.
pub fn stage() -> rocket::fairing::AdHoc {
    rocket::fairing::AdHoc::on_ignite("health check", |rocket| async {
        rocket.mount("/", rocket::routes![healthz])
    })
}

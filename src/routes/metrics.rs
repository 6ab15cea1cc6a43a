//! `/metrics`: Prometheus text for operators.

use std::fmt::Write as _;

use rocket::fairing::AdHoc;
use rocket::{State, get, routes};

use crate::config::Config;
use crate::db::{self, Db, DbError};
use crate::http::error::AppError;
use crate::http::observe::Metrics;
use crate::mail::sender::Outbox;

/// Prometheus text: this instance's request statistics and the security event totals (shared by
/// all instances on the database). Only for `metrics_from` addresses; 404 for everyone else.
#[get("/metrics")]
pub async fn metrics(
    req_ip: Option<std::net::IpAddr>,
    config: &State<Config>,
    metrics: &State<Metrics>,
    outbox: &State<Outbox>,
    db: &State<Db>,
) -> Result<String, AppError> {
    let allowed = req_ip.is_some_and(|ip| config.metrics_from.iter().any(|net| net.contains(&ip)));
    if !allowed {
        return Err(AppError::NotFound);
    }
    let (events, rotations, pending_mail) = db
        .run(|conn| {
            let events = db::events::count_by_kind(conn)?;
            let rotations = db::refresh_tokens::count_rotations(conn)?;
            let pending_mail = db::outbox::pending(conn)?;
            Ok::<_, DbError>((events, rotations, pending_mail))
        })
        .await?;
    let mut out = String::new();
    out.push_str(
        "# HELP doorman_security_events Security events recorded, by kind (all instances).\n",
    );
    out.push_str("# TYPE doorman_security_events gauge\n");
    for kind in crate::core::events::EventKind::ALL {
        let count = events
            .iter()
            .find(|(k, _)| k == kind.as_str())
            .map_or(0, |e| e.1);
        let _ = writeln!(
            out,
            "doorman_security_events{{kind=\"{}\"}} {count}",
            kind.as_str()
        );
    }
    out.push_str("# HELP doorman_refresh_rotations Refresh-token rotations (all instances).\n");
    out.push_str("# TYPE doorman_refresh_rotations gauge\n");
    let _ = writeln!(out, "doorman_refresh_rotations {rotations}");
    outbox.render_metrics(&mut out, pending_mail);
    metrics.render(&mut out);
    Ok(out)
}

pub fn stage() -> AdHoc {
    AdHoc::on_ignite("metrics route", |rocket| async {
        rocket.mount("/", routes![metrics])
    })
}

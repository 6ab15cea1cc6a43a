//! doorman: sign-in for web apps with JWT access cookies and rotating refresh tokens.
//!
//! [`rocket`] builds the app from its configuration; tests call [`build`] with their own figment
//! and clock.

pub mod accounts;
pub mod admin;
pub mod auth;
pub mod cli;
pub mod client;
pub mod clock;
pub mod config;
pub mod crypto;
pub mod db;
pub mod device;
pub mod error;
pub mod events;
mod fsutil;
pub mod keygen;
pub mod profile;
pub mod routes;
pub mod sync;
pub mod views;
pub mod web;

use std::sync::Arc;

use rocket::fairing::AdHoc;
use rocket::figment::Figment;
use rocket::fs::{FileServer, relative};
use rocket::{Build, Rocket};

use crate::auth::cookies::CookiePolicy;
use crate::auth::fairing::SilentRefresh;
use crate::auth::keys::{ServerSecret, SigningKeys};
use crate::auth::passwords::PasswordHasher;
use crate::auth::revocation::Revocations;
use crate::auth::session::Lifetimes;
use crate::auth::throttle::ThrottlePolicy;
use crate::auth::tokens::TokenService;
use crate::clock::{SharedClock, SystemClock};
use crate::config::Config;
use crate::db::Db;
use crate::device::DeviceLabels;

/// The app as `doorman serve` runs it: `Rocket.toml` and `DOORMAN_*` settings, the system clock.
pub fn rocket() -> Rocket<Build> {
    build(config::figment(), Arc::new(SystemClock))
}

/// The app from the given settings and clock.
pub fn build(figment: Figment, clock: SharedClock) -> Rocket<Build> {
    // Templates are found from any working directory unless `template_dir` says otherwise.
    let figment = figment.join(("template_dir", relative!("templates")));
    // The body limits of the shipped Rocket.toml, also where another file leaves them out.
    let figment = ["form", "data-form", "json"]
        .into_iter()
        .fold(figment, |f, kind| {
            f.join((format!("limits.{kind}"), "16 KiB"))
        });
    rocket::custom(figment)
        .attach(AdHoc::try_on_ignite("doorman", move |rocket| async move {
            // Opening the database and hashing the first admin's password block: keep them off
            // the async workers.
            let figment = rocket.figment().clone();
            let started = rocket::tokio::task::spawn_blocking(move || start(&figment, clock))
                .await
                .unwrap_or_else(|e| Err(format!("start-up failed: {e}")));
            match started {
                Ok(state) => Ok(state.manage(rocket)),
                Err(why) => {
                    rocket::error!("{why}");
                    eprintln!("doorman: {why}");
                    Err(rocket)
                }
            }
        }))
        .attach(web::templates::fairing())
        .attach(web::headers::shield())
        .attach(web::headers::SecurityHeaders)
        .attach(web::observe::Observe::new())
        .attach(SilentRefresh)
        .attach(auth::revocation::poller())
        .mount("/", routes::html())
        .mount("/api", routes::api::routes())
        .mount("/static", FileServer::from(relative!("static")))
        .register("/", routes::catchers::html())
        .register("/api", routes::catchers::api())
}

/// Everything an instance keeps in managed state.
struct AppState {
    config: Config,
    db: Db,
    tokens: TokenService,
    hasher: PasswordHasher,
    clock: SharedClock,
    revocations: Revocations,
    labels: DeviceLabels,
    secret: ServerSecret,
}

impl AppState {
    fn manage(self, rocket: Rocket<Build>) -> Rocket<Build> {
        rocket
            .manage(Lifetimes::from(&self.config))
            .manage(CookiePolicy::from(&self.config))
            .manage(ThrottlePolicy::from(&self.config))
            .manage(web::observe::Metrics::default())
            .manage(profile::ProfileCache::new(self.labels.clone()))
            .manage(self.labels)
            .manage(views::FixedPages::default())
            .manage(self.revocations)
            .manage(self.secret)
            .manage(self.db)
            .manage(self.tokens)
            .manage(self.hasher)
            .manage(self.clock)
            .manage(self.config)
    }
}

/// Reads the settings, opens and migrates the database, loads the keys and creates the first
/// admin. Any failure stops the start with a message.
fn start(figment: &Figment, clock: SharedClock) -> Result<AppState, String> {
    let config = Config::from_figment(figment).map_err(|e| e.to_string())?;
    let pool = db::PoolSettings {
        size: config.database_pool_size,
        timeout: std::time::Duration::from_secs(config.database_timeout.0),
    };
    let db = Db::open_with(&config.database_url, pool).map_err(|e| e.to_string())?;
    let keys = SigningKeys::load(&config).map_err(|e| format!("configuration error: {e}"))?;
    let secret = ServerSecret::load(&config).map_err(|e| format!("configuration error: {e}"))?;
    let admin_password = config
        .admin_password
        .as_ref()
        .map(|p| p.expose().to_owned());
    let mut conn = db.conn().map_err(|e| e.to_string())?;
    let generated =
        accounts::ensure_admin(&mut conn, clock.now(), config.bcrypt_cost, admin_password)?;
    if let Some(password) = generated {
        // Printed once, whatever the log level: there is no other way to learn it.
        println!("doorman: created user `admin` with password: {password}");
    }
    events::prune(&mut conn, clock.now(), config.events_retention.as_i64())
        .map_err(|e| e.to_string())?;
    let revocations = Revocations::default();
    let (known, at) = (revocations.clone(), clock.clone());
    db.on_commit(move |changed| known.learn(changed, at.now()));
    let (now, access_ttl) = (clock.now(), config.access_ttl.as_i64());
    let changes =
        auth::revocation::load_changes(&mut conn, now, access_ttl).map_err(|e| e.to_string())?;
    revocations.apply(changes, now, access_ttl);
    let hasher = PasswordHasher::new(config.bcrypt_cost);
    let tokens = TokenService::new(keys, config.issuer.clone(), config.audience.clone());
    Ok(AppState {
        config,
        db,
        tokens,
        hasher,
        clock,
        revocations,
        secret,
        labels: DeviceLabels::default(),
    })
}

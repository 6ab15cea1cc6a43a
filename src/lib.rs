//! doorman: sign-in for web apps with JWT access cookies and rotating refresh tokens.
//!
//! [`rocket`] builds the app from its configuration; tests call [`build`] with their own figment
//! and clock.

pub mod auth;
pub mod cli;
pub mod clock;
pub mod config;
pub mod core;
pub mod crypto;
pub mod db;
mod fsutil;
pub mod http;
pub mod mail;
pub mod routes;
mod start_error;
pub mod sync;

use std::sync::Arc;

use rocket::fairing::AdHoc;
use rocket::figment::Figment;
use rocket::fs::{FileServer, relative};
use rocket::{Build, Rocket};

use crate::auth::keys::{ServerSecret, SigningKeys};
use crate::auth::revocation::Revocations;
use crate::auth::tokens::TokenService;
use crate::clock::{SharedClock, SystemClock};
use crate::config::Config;
use crate::core::passwords::PasswordHasher;
use crate::core::sessions::Lifetimes;
use crate::core::throttle::ThrottlePolicy;
use crate::db::{Db, DbError};
use crate::http::cookies::CookiePolicy;
use crate::http::device_labels::DeviceLabels;
use crate::http::silent_refresh::SilentRefresh;
pub use crate::start_error::StartError;

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
                .unwrap_or_else(|e| Err(StartError::Task(e.to_string())));
            match started {
                Ok(state) => Ok(state.manage(rocket)),
                Err(why) => {
                    rocket::error!("{why}");
                    eprintln!("doorman: {why}");
                    Err(rocket)
                }
            }
        }))
        .attach(http::templates::fairing())
        .attach(http::headers::shield())
        .attach(http::headers::SecurityHeaders)
        .attach(http::observe::Observe::new())
        .attach(SilentRefresh)
        .attach(auth::revocation::poller())
        .attach(http::retention::pruner())
        .attach(mail::sender::sender())
        .attach(routes::pages::stage())
        .attach(routes::account::stage())
        .attach(routes::sessions::stage())
        .attach(routes::security::stage())
        .attach(routes::sudo::stage())
        .attach(routes::passkeys::stage())
        .attach(routes::email::stage())
        .attach(routes::admin::stage())
        .attach(routes::api::stage())
        .attach(routes::health::stage())
        .attach(routes::jwks::stage())
        .attach(routes::metrics::stage())
        .attach(routes::catchers::stage())
        .mount("/static", FileServer::from(relative!("static")))
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
    rotator: core::rotation_runner::Rotator,
    outbox: mail::sender::Outbox,
}

impl AppState {
    fn manage(self, rocket: Rocket<Build>) -> Rocket<Build> {
        rocket
            .manage(Lifetimes::from(&self.config))
            .manage(core::passkeys::Passkeys::new(&self.config.public_url))
            .manage(CookiePolicy::from(&self.config))
            .manage(core::email::EmailPolicy::from(&self.config))
            .manage(self.outbox)
            .manage(ThrottlePolicy::from(&self.config))
            .manage(http::observe::Metrics::default())
            .manage(http::profile_cache::ProfileCache::new(self.labels.clone()))
            .manage(self.labels)
            .manage(http::page::FixedPages::default())
            .manage(self.revocations)
            .manage(self.secret)
            .manage(self.rotator)
            .manage(self.db)
            .manage(self.tokens)
            .manage(self.hasher)
            .manage(self.clock)
            .manage(self.config)
    }
}

/// Reads the settings, opens and migrates the database, loads the keys and creates the first
/// admin. Any failure stops the start with a message.
fn start(figment: &Figment, clock: SharedClock) -> Result<AppState, StartError> {
    let config = Config::from_figment(figment)?;
    let pool = db::PoolSettings {
        size: config.database_pool_size,
        timeout: std::time::Duration::from_secs(config.database_timeout.0),
    };
    let db = Db::open_with(&config.database_url, pool)?;
    let keys = SigningKeys::load(&config)?;
    let secret = ServerSecret::load(&config)?;
    let admin_password = config
        .admin_password
        .as_ref()
        .map(|p| p.expose().to_owned());
    let mut conn = db.conn()?;
    let generated =
        core::users::ensure_admin(&mut conn, clock.now(), config.bcrypt_cost, admin_password)?;
    if let Some(password) = generated {
        // Printed once, whatever the log level: there is no other way to learn it.
        println!("doorman: created user `admin` with password: {password}");
    }
    core::events::prune(&mut conn, clock.now(), config.events_retention.as_i64())
        .map_err(DbError::from)?;
    core::second_factors::seal_stored_secrets(&mut conn, &secret).map_err(DbError::from)?;
    if config.smtp.is_none() {
        let outbox = mail::transport::outbox_dir(&config.data_dir);
        println!(
            "doorman: no smtp_url set: mail is written to {} as .eml files",
            outbox.display()
        );
    }
    let revocations = Revocations::default();
    let outbox = mail::sender::Outbox::default();
    let (known, at, mail) = (revocations.clone(), clock.clone(), outbox.clone());
    db.on_commit(move |changed| {
        known.learn(changed, at.now());
        if changed.mail {
            mail.wake();
        }
    });
    let (now, access_ttl) = (clock.now(), config.access_ttl.as_i64());
    let changes = auth::revocation::load_changes(&mut conn, now, access_ttl)?;
    revocations.apply(changes, now, access_ttl);
    let hasher = PasswordHasher::new(config.bcrypt_cost);
    let tokens = TokenService::new(keys, config.issuer.clone(), config.audience.clone());
    let rotator =
        core::rotation_runner::Rotator::new(db.clone(), Lifetimes::from(&config), secret.clone())?;
    Ok(AppState {
        config,
        db,
        tokens,
        hasher,
        clock,
        revocations,
        secret,
        rotator,
        labels: DeviceLabels::default(),
        outbox,
    })
}

//! Typed settings, read from Rocket's figment (`Rocket.toml` profiles) with `DOORMAN_<KEY>`
//! environment overrides, and kept in managed state.

use std::fmt;
use std::path::PathBuf;

use rocket::figment::providers::{Env, Serialized};
use rocket::figment::{Figment, Profile};
use serde::{Deserialize, Serialize};

mod duration;
mod raw;
mod smtp;

pub use duration::{Secs, parse_duration};
pub use smtp::SmtpSettings;

/// Signing algorithms doorman can be configured with; anything else is refused at start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum JwtAlgorithm {
    HS256,
    RS256,
    ES256,
    EdDSA,
}

impl JwtAlgorithm {
    pub fn is_symmetric(self) -> bool {
        self == Self::HS256
    }
}

/// Checked settings of one doorman instance.
#[derive(Debug, Clone)]
#[allow(clippy::struct_excessive_bools)] // settings that are on/off switches
pub struct Config {
    pub data_dir: PathBuf,
    pub database_url: String,
    pub database_pool_size: u32,
    /// How long a request waits for a database connection before it is answered 503.
    pub database_timeout: Secs,
    pub access_ttl: Secs,
    pub refresh_ttl: Secs,
    pub session_max_age: Secs,
    pub reuse_grace: Secs,
    pub jwt_algorithm: JwtAlgorithm,
    /// `None`: the generated HS256 secret in `data_dir`.
    pub jwt_key_file: Option<PathBuf>,
    pub jwt_previous_keys: Vec<PathBuf>,
    pub issuer: String,
    pub audience: String,
    pub cookie_secure: bool,
    pub bcrypt_cost: u32,
    pub signup: bool,
    pub login_max_failures: u32,
    pub login_window: Secs,
    pub revocation_poll: Secs,
    /// Client networks allowed to read `/metrics`; empty: `/metrics` is off (404).
    pub metrics_from: Vec<ipnet::IpNet>,
    /// One JSON line per request on standard output.
    pub log_requests: bool,
    /// `None`: the generated secret in `data_dir`.
    pub refresh_secret_file: Option<PathBuf>,
    pub signup_max_per_window: u32,
    pub events_retention: Secs,
    /// How long after an authentication a session may do sensitive actions without asking again.
    pub sudo_ttl: Secs,
    /// Admins must turn on a second factor before they can use `/admin`.
    pub require_mfa_for_admins: bool,
    /// Where browsers reach doorman: the base of links in mail, and the WebAuthn origin (its
    /// host is the relying-party id).
    pub public_url: webauthn_rs::prelude::Url,
    /// `smtp_url` (`smtp://[user:password@]host:port` or `smtps://…`), parsed; `None`: mail
    /// goes to `<data_dir>/outbox/` as `.eml` files.
    pub smtp: Option<SmtpSettings>,
    pub mail_from: lettre::message::Mailbox,
    /// Lifetime of password-reset, email-verification and session-report links.
    pub reset_ttl: Secs,
    /// Mail the account when it signs in from a browser it has not used before.
    pub new_device_notice: bool,
    /// The first admin's password (`DOORMAN_ADMIN_PASSWORD`); random when not set.
    pub admin_password: Option<Secret>,
}

/// A setting that must never be printed: its `Debug` shows only that it is set.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(…)")
    }
}

/// A setting that stops the start, with the key it belongs to.
#[derive(Debug, thiserror::Error)]
#[error("configuration error: {0}")]
pub struct ConfigError(pub String);

fn invalid(key: &str, why: impl fmt::Display) -> ConfigError {
    ConfigError(format!("`{key}`: {why}"))
}

/// Rocket's figment plus `DOORMAN_<KEY>` overrides: what `doorman` reads when it starts.
pub fn figment() -> Figment {
    rocket::Config::figment().merge(Env::prefixed("DOORMAN_").global())
}

/// Settings for tests and tools: Rocket's defaults with the given doorman values, no files read.
pub fn figment_with<T: Serialize>(values: T) -> Figment {
    Figment::from(rocket::Config::debug_default()).merge(Serialized::from(values, Profile::Global))
}

impl Config {
    pub fn from_figment(figment: &Figment) -> Result<Config, ConfigError> {
        let raw: raw::RawConfig = figment.extract().map_err(|e| {
            let key = e.path.join(".");
            let mut message = e.kind.to_string();
            if key.is_empty() {
                ConfigError(message)
            } else {
                message = format!("`{key}`: {message}");
                ConfigError(message)
            }
        })?;
        raw.check()
    }

    /// HS256 secret file: configured, or generated in the data directory.
    pub fn jwt_key_path(&self) -> PathBuf {
        self.jwt_key_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join("jwt-secret"))
    }

    /// The refresh secret file: configured, or generated in the data directory.
    pub fn refresh_secret_path(&self) -> PathBuf {
        self.refresh_secret_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join("refresh-secret"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_admin_password_is_a_setting_that_is_never_printed() {
        let config = Config::from_figment(&figment_with(
            serde_json::json!({"admin_password": "a long admin password"}),
        ))
        .unwrap();
        assert_eq!(
            config.admin_password.as_ref().map(Secret::expose),
            Some("a long admin password")
        );
        assert!(!format!("{config:?}").contains("a long admin password"));
    }

    #[test]
    fn bad_values_name_their_key() {
        let err = Config::from_figment(&figment_with(serde_json::json!({"access_ttl": "soon"})))
            .unwrap_err()
            .to_string();
        assert!(err.contains("access_ttl"), "{err}");
        let err = Config::from_figment(&figment_with(serde_json::json!({"bcrypt_cost": 2})))
            .unwrap_err()
            .to_string();
        assert!(err.contains("bcrypt_cost"), "{err}");
        let err = Config::from_figment(&figment_with(serde_json::json!({"jwt_algorithm": "none"})))
            .unwrap_err()
            .to_string();
        assert!(err.contains("jwt_algorithm"), "{err}");
    }

    #[test]
    fn defaults_follow_the_spec() {
        let config = Config::from_figment(&figment_with(serde_json::json!({}))).unwrap();
        assert_eq!(config.access_ttl, Secs(900));
        assert_eq!(config.refresh_ttl, Secs(604_800));
        assert_eq!(config.session_max_age, Secs(2_592_000));
        assert_eq!(config.reuse_grace, Secs(10));
        assert_eq!(config.database_url, "data/doorman.sqlite3");
        assert!(config.cookie_secure && config.signup);
        assert_eq!(config.bcrypt_cost, 12);
    }
}

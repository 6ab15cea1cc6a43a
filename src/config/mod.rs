//! Typed settings, read from Rocket's figment (`Rocket.toml` profiles) with `DOORMAN_<KEY>`
//! environment overrides, and kept in managed state.

use std::fmt;
use std::path::PathBuf;

use rocket::figment::providers::{Env, Serialized};
use rocket::figment::{Figment, Profile};
use serde::{Deserialize, Deserializer, Serialize};

mod smtp;

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

/// A duration in whole seconds, written as a number of seconds or as `90s`, `15m`, `12h`, `7d`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(into = "u64")]
pub struct Secs(pub u64);

impl Secs {
    pub fn as_i64(self) -> i64 {
        i64::try_from(self.0).unwrap_or(i64::MAX)
    }
}

impl From<Secs> for u64 {
    fn from(s: Secs) -> u64 {
        s.0
    }
}

impl fmt::Display for Secs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}s", self.0)
    }
}

/// Parses `"900"`, `"90s"`, `"15m"`, `"12h"` or `"7d"`.
pub fn parse_duration(text: &str) -> Result<Secs, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let value: u64 = digits
        .parse()
        .map_err(|_| format!("`{text}` is not a duration (use seconds or e.g. 90s, 15m, 7d)"))?;
    let factor = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("`{text}` has an unknown unit (use s, m, h or d)")),
    };
    value
        .checked_mul(factor)
        .map(Secs)
        .ok_or_else(|| format!("`{text}` is too long"))
}

impl<'de> Deserialize<'de> for Secs {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(u64),
            Text(String),
        }
        match Raw::deserialize(deserializer)? {
            Raw::Number(n) => Ok(Secs(n)),
            Raw::Text(t) => parse_duration(&t).map_err(serde::de::Error::custom),
        }
    }
}

/// The settings as written; `Config::from_figment` checks them and fills in derived defaults.
#[derive(Debug, Deserialize)]
#[allow(clippy::struct_excessive_bools)] // settings that are on/off switches
struct RawConfig {
    #[serde(default = "defaults::data_dir")]
    data_dir: PathBuf,
    database_url: Option<String>,
    #[serde(default = "defaults::database_pool_size")]
    database_pool_size: u32,
    #[serde(default = "defaults::database_timeout")]
    database_timeout: Secs,
    #[serde(default = "defaults::access_ttl")]
    access_ttl: Secs,
    #[serde(default = "defaults::refresh_ttl")]
    refresh_ttl: Secs,
    #[serde(default = "defaults::session_max_age")]
    session_max_age: Secs,
    #[serde(default = "defaults::reuse_grace")]
    reuse_grace: Secs,
    #[serde(default = "defaults::jwt_algorithm")]
    jwt_algorithm: JwtAlgorithm,
    jwt_key_file: Option<PathBuf>,
    #[serde(default)]
    jwt_previous_keys: Vec<PathBuf>,
    #[serde(default = "defaults::doorman")]
    issuer: String,
    #[serde(default = "defaults::doorman")]
    audience: String,
    #[serde(default = "defaults::yes")]
    cookie_secure: bool,
    #[serde(default = "defaults::bcrypt_cost")]
    bcrypt_cost: u32,
    #[serde(default = "defaults::yes")]
    signup: bool,
    #[serde(default = "defaults::login_max_failures")]
    login_max_failures: u32,
    #[serde(default = "defaults::login_window")]
    login_window: Secs,
    #[serde(default = "defaults::revocation_poll")]
    revocation_poll: Secs,
    #[serde(default)]
    metrics_from: Vec<ipnet::IpNet>,
    #[serde(default = "defaults::yes")]
    log_requests: bool,
    refresh_secret_file: Option<PathBuf>,
    #[serde(default = "defaults::signup_max_per_window")]
    signup_max_per_window: u32,
    #[serde(default = "defaults::events_retention")]
    events_retention: Secs,
    #[serde(default = "defaults::sudo_ttl")]
    sudo_ttl: Secs,
    #[serde(default)]
    require_mfa_for_admins: bool,
    #[serde(default = "defaults::public_url")]
    public_url: String,
    smtp_url: Option<Secret>,
    #[serde(default = "defaults::mail_from")]
    mail_from: String,
    #[serde(default = "defaults::reset_ttl")]
    reset_ttl: Secs,
    #[serde(default = "defaults::yes")]
    new_device_notice: bool,
    admin_password: Option<Secret>,
}

mod defaults {
    use super::{JwtAlgorithm, Secs};
    use std::path::PathBuf;

    pub fn data_dir() -> PathBuf {
        PathBuf::from("data")
    }
    pub fn database_pool_size() -> u32 {
        8
    }
    pub fn database_timeout() -> Secs {
        Secs(5)
    }
    pub fn access_ttl() -> Secs {
        Secs(15 * 60)
    }
    pub fn refresh_ttl() -> Secs {
        Secs(7 * 86_400)
    }
    pub fn session_max_age() -> Secs {
        Secs(30 * 86_400)
    }
    pub fn reuse_grace() -> Secs {
        Secs(10)
    }
    pub fn jwt_algorithm() -> JwtAlgorithm {
        JwtAlgorithm::HS256
    }
    pub fn doorman() -> String {
        "doorman".into()
    }
    pub fn yes() -> bool {
        true
    }
    pub fn bcrypt_cost() -> u32 {
        12
    }
    pub fn login_max_failures() -> u32 {
        5
    }
    pub fn login_window() -> Secs {
        Secs(15 * 60)
    }
    pub fn revocation_poll() -> Secs {
        Secs(2)
    }
    pub fn signup_max_per_window() -> u32 {
        10
    }
    pub fn events_retention() -> Secs {
        Secs(90 * 86_400)
    }
    pub fn sudo_ttl() -> Secs {
        Secs(10 * 60)
    }
    pub fn public_url() -> String {
        "http://127.0.0.1:8000".into()
    }
    pub fn mail_from() -> String {
        "doorman@localhost".into()
    }
    pub fn reset_ttl() -> Secs {
        Secs(30 * 60)
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
#[derive(Debug)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "configuration error: {}", self.0)
    }
}

impl std::error::Error for ConfigError {}

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
        let raw: RawConfig = figment.extract().map_err(|e| {
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

fn public_url(text: &str) -> Result<webauthn_rs::prelude::Url, ConfigError> {
    webauthn_rs::prelude::Url::parse(text)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
        .ok_or_else(|| {
            invalid(
                "public_url",
                "must be an http:// or https:// URL with a host",
            )
        })
}

impl RawConfig {
    /// `smtp_url`, parsed.
    fn smtp(&self) -> Result<Option<SmtpSettings>, ConfigError> {
        self.smtp_url
            .as_ref()
            .map(|url| SmtpSettings::parse(url.expose()).map_err(|why| invalid("smtp_url", why)))
            .transpose()
    }

    /// The sender's address.
    fn mail_from(&self) -> Result<lettre::message::Mailbox, ConfigError> {
        self.mail_from
            .parse()
            .map_err(|_| invalid("mail_from", "must be an email address"))
    }

    fn check_durations(&self) -> Result<(), ConfigError> {
        for (key, value) in [
            ("access_ttl", self.access_ttl),
            ("refresh_ttl", self.refresh_ttl),
            ("session_max_age", self.session_max_age),
            ("login_window", self.login_window),
            ("revocation_poll", self.revocation_poll),
            ("events_retention", self.events_retention),
            ("sudo_ttl", self.sudo_ttl),
            ("reset_ttl", self.reset_ttl),
        ] {
            if value.0 == 0 {
                return Err(invalid(key, "must be longer than 0 seconds"));
            }
            if value.0 > 10 * 365 * 86_400 {
                return Err(invalid(key, "must be at most 10 years"));
            }
        }
        Ok(())
    }

    fn check(self) -> Result<Config, ConfigError> {
        self.check_durations()?;
        if !(1..=256).contains(&self.database_pool_size) {
            return Err(invalid("database_pool_size", "must be between 1 and 256"));
        }
        if !(1..=60).contains(&self.database_timeout.0) {
            return Err(invalid(
                "database_timeout",
                "must be between 1 and 60 seconds",
            ));
        }
        if self.reuse_grace > Secs(300) {
            return Err(invalid("reuse_grace", "must be at most 5 minutes"));
        }
        if self.access_ttl > self.session_max_age {
            return Err(invalid(
                "access_ttl",
                "must not be longer than `session_max_age`",
            ));
        }
        if !(4..=31).contains(&self.bcrypt_cost) {
            return Err(invalid("bcrypt_cost", "must be between 4 and 31"));
        }
        if self.login_max_failures == 0 {
            return Err(invalid("login_max_failures", "must be at least 1"));
        }
        if self.signup_max_per_window == 0 {
            return Err(invalid("signup_max_per_window", "must be at least 1"));
        }
        if self.issuer.trim().is_empty() {
            return Err(invalid("issuer", "must not be empty"));
        }
        if self.audience.trim().is_empty() {
            return Err(invalid("audience", "must not be empty"));
        }
        if self.jwt_key_file.is_none() && !self.jwt_algorithm.is_symmetric() {
            return Err(invalid(
                "jwt_key_file",
                "a PEM private key file is required for asymmetric algorithms",
            ));
        }
        let public_url = public_url(&self.public_url)?;
        let smtp = self.smtp()?;
        let mail_from = self.mail_from()?;
        let database_url = match self.database_url {
            Some(url) => {
                crate::db::DatabaseUrl::parse(&url).map_err(|why| invalid("database_url", why))?;
                url
            }
            None => self
                .data_dir
                .join("doorman.sqlite3")
                .to_string_lossy()
                .into_owned(),
        };
        Ok(Config {
            data_dir: self.data_dir,
            database_url,
            database_pool_size: self.database_pool_size,
            database_timeout: self.database_timeout,
            access_ttl: self.access_ttl,
            refresh_ttl: self.refresh_ttl,
            session_max_age: self.session_max_age,
            reuse_grace: self.reuse_grace,
            jwt_algorithm: self.jwt_algorithm,
            jwt_key_file: self.jwt_key_file,
            jwt_previous_keys: self.jwt_previous_keys,
            issuer: self.issuer,
            audience: self.audience,
            cookie_secure: self.cookie_secure,
            bcrypt_cost: self.bcrypt_cost,
            signup: self.signup,
            login_max_failures: self.login_max_failures,
            login_window: self.login_window,
            revocation_poll: self.revocation_poll,
            metrics_from: self.metrics_from,
            log_requests: self.log_requests,
            refresh_secret_file: self.refresh_secret_file,
            signup_max_per_window: self.signup_max_per_window,
            events_retention: self.events_retention,
            sudo_ttl: self.sudo_ttl,
            require_mfa_for_admins: self.require_mfa_for_admins,
            public_url,
            smtp,
            mail_from,
            reset_ttl: self.reset_ttl,
            new_device_notice: self.new_device_notice,
            admin_password: self.admin_password,
        })
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
    fn durations_accept_seconds_and_units() {
        assert_eq!(parse_duration("900"), Ok(Secs(900)));
        assert_eq!(parse_duration("90s"), Ok(Secs(90)));
        assert_eq!(parse_duration("15m"), Ok(Secs(900)));
        assert_eq!(parse_duration("2h"), Ok(Secs(7200)));
        assert_eq!(parse_duration("7d"), Ok(Secs(604_800)));
        assert!(parse_duration("15x").is_err());
        assert!(parse_duration("m").is_err());
        assert!(parse_duration("-5").is_err());
        assert!(parse_duration("99999999999999999999d").is_err());
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

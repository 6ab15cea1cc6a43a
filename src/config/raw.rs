//! The settings as written, and the one step that checks them into a [`Config`], naming the
//! key of anything wrong.

use std::path::PathBuf;

use serde::Deserialize;

use super::{Config, ConfigError, JwtAlgorithm, Secret, Secs, SmtpSettings, invalid};

/// The settings as written; `Config::from_figment` checks them and fills in derived defaults.
#[derive(Debug, Deserialize)]
#[allow(clippy::struct_excessive_bools)] // settings that are on/off switches
pub(super) struct RawConfig {
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

    pub(super) fn check(self) -> Result<Config, ConfigError> {
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

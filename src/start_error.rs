//! Why an instance could not start: reported once, with the setting to look at, and the start
//! stops with a non-zero exit.

use std::fmt;

use crate::auth::keys::KeyError;
use crate::config::ConfigError;
use crate::core::users::FirstAdminError;
use crate::db::DbError;

#[derive(Debug)]
pub enum StartError {
    Config(ConfigError),
    Db(DbError),
    Keys(KeyError),
    FirstAdmin(FirstAdminError),
    /// The start-up task itself failed (it panicked: a bug).
    Task(String),
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::Config(e) => write!(f, "{e}"),
            StartError::Db(e) => write!(f, "{e}"),
            StartError::Keys(e) => write!(f, "configuration error: {e}"),
            StartError::FirstAdmin(e) => write!(f, "creating the first admin: {e}"),
            StartError::Task(why) => write!(f, "start-up failed: {why}"),
        }
    }
}

impl std::error::Error for StartError {}

impl From<ConfigError> for StartError {
    fn from(e: ConfigError) -> Self {
        StartError::Config(e)
    }
}

impl From<DbError> for StartError {
    fn from(e: DbError) -> Self {
        StartError::Db(e)
    }
}

impl From<diesel::result::Error> for StartError {
    fn from(e: diesel::result::Error) -> Self {
        StartError::Db(e.into())
    }
}

impl From<KeyError> for StartError {
    fn from(e: KeyError) -> Self {
        StartError::Keys(e)
    }
}

impl From<FirstAdminError> for StartError {
    fn from(e: FirstAdminError) -> Self {
        StartError::FirstAdmin(e)
    }
}

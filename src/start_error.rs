//! Why an instance could not start: reported once, with the setting to look at, and the start
//! stops with a non-zero exit.

use crate::auth::keys::KeyError;
use crate::config::ConfigError;
use crate::core::users::FirstAdminError;
use crate::db::DbError;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{0}")]
    Config(#[from] ConfigError),
    #[error("{0}")]
    Db(#[from] DbError),
    #[error("configuration error: {0}")]
    Keys(#[from] KeyError),
    #[error("creating the first admin: {0}")]
    FirstAdmin(#[from] FirstAdminError),
    /// The start-up task itself failed (it panicked: a bug).
    #[error("start-up failed: {0}")]
    Task(String),
}

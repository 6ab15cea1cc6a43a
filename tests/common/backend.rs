//! Which database the tests run against: SQLite files by default, or a fresh PostgreSQL
//! database per test when `DOORMAN_TEST_POSTGRES_URL` names a server (e.g.
//! `postgres://postgres@127.0.0.1:25432/postgres`), as `.ci/run` sets it.

use std::path::Path;

use diesel::prelude::*;
use diesel::sql_query;

pub const POSTGRES_ENV: &str = "DOORMAN_TEST_POSTGRES_URL";

pub fn postgres_server() -> Option<String> {
    std::env::var(POSTGRES_ENV)
        .ok()
        .filter(|url| !url.is_empty())
}

/// A database of its own for one test: a file in `dir`, or a new PostgreSQL database.
pub fn database_url(dir: &Path) -> String {
    let Some(server) = postgres_server() else {
        return dir.join("doorman.sqlite3").to_string_lossy().into_owned();
    };
    let name = format!(
        "doorman_test_{}",
        doorman::crypto::b64url(&doorman::crypto::random_bytes::<9>())
            .to_lowercase()
            .replace(['-', '_'], "x")
    );
    let mut admin = diesel::pg::PgConnection::establish(&server)
        .unwrap_or_else(|e| panic!("{POSTGRES_ENV}: cannot connect: {e}"));
    sql_query(format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .expect("a test database");
    let (base, _) = server
        .rsplit_once('/')
        .expect("a URL ending in a database name");
    format!("{base}/{name}")
}

/// The PostgreSQL server for a PostgreSQL-only test, or `None` after saying it is skipped (never
/// under CI, which always provides one).
pub fn postgres_or_skip(test: &str) -> Option<String> {
    let server = postgres_server();
    if server.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must run the PostgreSQL tests"
        );
        eprintln!("skipped {test}: PostgreSQL runs need {POSTGRES_ENV} (see README)");
    }
    server
}

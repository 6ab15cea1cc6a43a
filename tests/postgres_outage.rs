//! PostgreSQL going away and coming back under a running instance. In a test binary of its own:
//! stopping the server must not pull the database from under other tests (cargo runs test
//! binaries one after another). Ignored unless run with `--include-ignored`, as `.ci/run` does.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::too_many_lines)]

mod common;

use std::thread;
use std::time::{Duration, Instant};

use common::*;
use serde_json::json;

/// Starts PostgreSQL again when dropped, whatever happened in between.
struct Outage {
    ctl: String,
}

impl Outage {
    fn begin(ctl: &str) -> Outage {
        let status = std::process::Command::new(ctl)
            .arg("stop")
            .status()
            .unwrap();
        assert!(status.success(), "stopping PostgreSQL");
        Outage {
            ctl: ctl.to_owned(),
        }
    }
}

impl Drop for Outage {
    fn drop(&mut self) {
        let _ = std::process::Command::new(&self.ctl).arg("start").status();
    }
}

#[test]
#[ignore = "needs PostgreSQL: set DOORMAN_TEST_POSTGRES_URL and DOORMAN_TEST_POSTGRES_CTL, run with --include-ignored"]
fn requests_answer_503_while_the_database_is_down_and_recover() {
    if backend::postgres_or_skip("requests_answer_503_while_the_database_is_down_and_recover")
        .is_none()
    {
        return;
    }
    let Some(ctl) = std::env::var("DOORMAN_TEST_POSTGRES_CTL").ok() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must be able to stop PostgreSQL"
        );
        eprintln!("skipped the outage test: DOORMAN_TEST_POSTGRES_CTL is not set");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let clock = doorman::clock::ManualClock::starting_now();
    let server = http::Server::start(app(&dir, json!({ "database_timeout": 2 }), &clock));
    {
        let hash = doorman::core::passwords::hash_blocking(PASSWORD, 4).unwrap();
        let mut conn = server.db.conn().unwrap();
        doorman::core::users::create_user(
            &mut conn,
            clock.now_secs(),
            "alice",
            &hash,
            doorman::auth::roles::Role::User,
        )
        .unwrap();
    }
    let agent = http::agent();
    let session = http::login(&agent, &server.base, "alice", ACCESS);
    // One refresh first: the instance's own connection for rotations is open when the server
    // goes away, and must not fail the first refresh after it is back.
    clock.advance(ACCESS_TTL + 6);
    let refreshed = agent
        .get(format!("{}/profile", server.base))
        .header("Cookie", session.cookie_header(ACCESS, REFRESH))
        .call()
        .unwrap();
    assert_eq!(refreshed.status().as_u16(), 200);
    let cookies = format!(
        "{ACCESS}={}; {REFRESH}={}",
        http::set_cookie(&refreshed, ACCESS).unwrap(),
        http::set_cookie(&refreshed, REFRESH).unwrap()
    );
    let status = |path: &str| {
        agent
            .get(format!("{}{path}", server.base))
            .header("Cookie", &cookies)
            .call()
            .unwrap()
            .status()
            .as_u16()
    };

    let outage = Outage::begin(&ctl);
    let started = Instant::now();
    assert_eq!(status("/healthz"), 503);
    assert_eq!(status("/sessions"), 503, "a clear 503, not a panic");
    assert_eq!(
        status("/"),
        200,
        "pages that need no database still serve the signed-in user"
    );
    let api = agent
        .post(format!("{}/api/auth/login", server.base))
        .header("Content-Type", "application/json")
        .send(json!({ "username": "alice", "password": PASSWORD }).to_string())
        .unwrap();
    assert_eq!(api.status().as_u16(), 503);
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "no hang past the pool timeout"
    );
    drop(outage);

    let deadline = Instant::now() + Duration::from_secs(30);
    while status("/healthz") != 200 {
        assert!(Instant::now() < deadline, "doorman did not recover");
        thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(status("/profile"), 200, "the same cookies work again");
    clock.advance(ACCESS_TTL + 6);
    let response = agent
        .get(format!("{}/profile", server.base))
        .header("Cookie", &cookies)
        .call()
        .unwrap();
    assert_eq!(
        response.status().as_u16(),
        200,
        "the refresh token survived"
    );
    assert!(http::set_cookie(&response, REFRESH).is_some());
}

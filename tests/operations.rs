//! What operators rely on: `/metrics` only for configured addresses, and logs of a whole run that
//! never contain a password, token or cookie.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::too_many_lines)]

mod common;

use common::process::Instance;
use common::*;
use doorman::auth::roles::Role;
use rocket::http::Status;
use serde_json::{Value, json};

fn scrape(app: &TestApp, from: &str) -> (Status, String) {
    let response = app
        .client
        .get("/metrics")
        .remote(from.parse().unwrap())
        .dispatch();
    (
        response.status(),
        response.into_string().unwrap_or_default(),
    )
}

#[test]
fn metrics_are_off_unless_an_address_range_allows_them() {
    let app = TestApp::new();
    assert_eq!(scrape(&app, "127.0.0.1:4000").0, Status::NotFound);

    let app = TestApp::with(json!({ "metrics_from": ["127.0.0.0/8", "::1/128"] }));
    app.create_user("alice", Role::User);
    let mut browser = app.browser();
    browser.login("alice", "wrong password!", false);
    browser.login("alice", PASSWORD, false);
    app.clock.advance(ACCESS_TTL + 6);
    browser.get("/profile");
    assert_eq!(
        scrape(&app, "10.1.2.3:4000").0,
        Status::NotFound,
        "outside the range"
    );
    let (status, text) = scrape(&app, "127.0.0.1:4000");
    assert_eq!(status, Status::Ok);
    for line in [
        r#"doorman_security_events{kind="login_succeeded"} 1"#,
        r#"doorman_security_events{kind="login_failed"} 1"#,
        r#"doorman_security_events{kind="refresh_token_reuse"} 0"#,
        "doorman_refresh_rotations 1",
        r#"doorman_http_request_duration_seconds_count{route="/profile"} 1"#,
        r#"doorman_http_unavailable_total{route="/login"} 0"#,
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "{line} missing from:\n{text}"
        );
    }
    assert!(!text.contains("alice"), "no user names in metrics");
}

#[test]
fn a_full_run_logs_requests_and_events_but_no_secret() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("doorman.log");
    let database_url = backend::database_url(dir.path());
    let server = Instance::start_logging(dir.path(), &database_url, &[], Some(&log));
    let agent = http::agent();

    // Browser sign-in (password, CSRF token and cookies), a silent refresh, API login, refresh,
    // a call, a failed login and a logout.
    let browser = http::login(&agent, &server.base, "admin", ACCESS);
    let refreshed = agent
        .get(format!("{}/profile", server.base))
        .header("Cookie", format!("{REFRESH}={}", browser.refresh))
        .call()
        .unwrap();
    let new_refresh = http::set_cookie(&refreshed, REFRESH).unwrap();
    let mut login = agent
        .post(format!("{}/api/auth/login", server.base))
        .header("Content-Type", "application/json")
        .send(json!({ "username": "admin", "password": PASSWORD }).to_string())
        .unwrap();
    let pair: Value = serde_json::from_str(&login.body_mut().read_to_string().unwrap()).unwrap();
    let (access, refresh) = (
        pair["access_token"].as_str().unwrap(),
        pair["refresh_token"].as_str().unwrap(),
    );
    let mut renewed = agent
        .post(format!("{}/api/auth/refresh", server.base))
        .header("Content-Type", "application/json")
        .send(json!({ "refresh_token": refresh }).to_string())
        .unwrap();
    let renewed: Value =
        serde_json::from_str(&renewed.body_mut().read_to_string().unwrap()).unwrap();
    agent
        .get(format!("{}/api/me", server.base))
        .header("Authorization", format!("Bearer {access}"))
        .call()
        .unwrap();
    let wrong = "wrong-password-that-must-not-be-logged";
    agent
        .post(format!("{}/api/auth/login", server.base))
        .header("Content-Type", "application/json")
        .send(json!({ "username": "admin", "password": wrong }).to_string())
        .unwrap();
    agent
        .post(format!("{}/api/auth/logout", server.base))
        .header("Content-Type", "application/json")
        .send(json!({ "refresh_token": renewed["refresh_token"] }).to_string())
        .unwrap();
    // A graceful stop writes the request lines still waiting in the batch.
    assert!(server.terminate().success());

    let text = std::fs::read_to_string(&log).unwrap();
    let secrets = [
        PASSWORD,
        wrong,
        &browser.access,
        &browser.refresh,
        &new_refresh,
        access,
        refresh,
        renewed["access_token"].as_str().unwrap(),
        renewed["refresh_token"].as_str().unwrap(),
    ];
    for secret in secrets {
        assert!(!text.contains(secret), "a secret reached the log");
    }
    assert!(
        !text.contains(REFRESH) && !text.contains(ACCESS),
        "cookie names with values reached the log"
    );
    let requests = text
        .lines()
        .filter(|l| l.starts_with("{\"") && l.contains("\"request_id\""))
        .count();
    let events = text
        .lines()
        .filter(|l| l.contains("\"security_event\""))
        .count();
    assert!(requests >= 8, "one line per request:\n{text}");
    assert!(events >= 4, "one line per security event:\n{text}");
}

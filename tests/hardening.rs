//! The password doors and edges an attacker's review found weak, one test per finding, through
//! Rocket's local client (the simultaneous-request cases are in `limits_concurrency.rs`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::too_many_lines)]

mod common;

use common::*;
use diesel::prelude::*;
use doorman::auth::roles::Role;
use doorman::db::schema;
use rocket::http::{Header, Status};
use serde_json::{Value, json};

const WRONG: &str = "not the password at all";

fn api_login(app: &TestApp, body: Value) -> (Status, Value) {
    api_post(app, "/api/auth/login", body)
}

fn bearer_get(app: &TestApp, path: &str, token: &str) -> (Status, Value, Option<String>) {
    let response = app
        .client
        .get(path.to_owned())
        .header(Header::new("Authorization", format!("Bearer {token}")))
        .dispatch();
    let status = response.status();
    let cache = response
        .headers()
        .get_one("Cache-Control")
        .map(str::to_owned);
    let body =
        serde_json::from_str(&response.into_string().unwrap_or_default()).unwrap_or(Value::Null);
    (status, body, cache)
}

/// The throttled-event rows: how many, and how many attempts they count.
fn throttled_rows(app: &TestApp) -> (usize, i64) {
    use schema::security_events::dsl::*;
    let rows: Vec<i64> = security_events
        .filter(kind.eq("login_throttled"))
        .select(repeats)
        .load(&mut *app.conn())
        .unwrap();
    (rows.len(), rows.iter().sum())
}

#[test]
fn an_attacker_cannot_lock_a_known_browser_out() {
    let app = TestApp::new();
    app.create_user("alice", Role::User);
    let mut alice = app.browser();
    let first = alice.login("alice", PASSWORD, false);
    let device = first.cookie(DEVICE).expect("a device cookie");
    assert_eq!(device.http_only(), Some(true));
    assert_eq!(device.secure(), Some(true));
    assert_eq!(device.max_age().unwrap().whole_days(), 365);
    let csrf = alice.session_csrf();
    alice.post("/logout", &[("csrf_token", &csrf)]);
    assert!(
        alice.cookie(DEVICE).is_some(),
        "the device cookie outlives the session"
    );

    // 50 wrong passwords from somewhere else: 5 are checked, the rest refused.
    let mut attacker = app.browser();
    let statuses: Vec<Status> = (0..50)
        .map(|_| attacker.login("alice", WRONG, false).status)
        .collect();
    assert!(statuses[..5].iter().all(|s| *s == Status::Unauthorized));
    assert!(statuses[5..].iter().all(|s| *s == Status::TooManyRequests));
    assert_eq!(app.events_of_kind("login_failed"), 5);
    // Refused attempts share one event row a minute, with their count.
    assert_eq!(throttled_rows(&app), (1, 45));

    // Alice's browser signs in at once; a fresh client is still refused, right password or not.
    assert_eq!(
        alice.login("alice", PASSWORD, false).status,
        Status::SeeOther
    );
    assert_eq!(
        app.browser().login("alice", PASSWORD, false).status,
        Status::TooManyRequests
    );

    // The known browser has a limit of its own.
    let csrf = alice.session_csrf();
    alice.post("/logout", &[("csrf_token", &csrf)]);
    for _ in 0..5 {
        assert_eq!(
            alice.login("alice", WRONG, false).status,
            Status::Unauthorized
        );
    }
    assert_eq!(
        alice.login("alice", PASSWORD, false).status,
        Status::TooManyRequests
    );

    // A device cookie alone signs nobody in, and one of another account does not get past the
    // address's lockout.
    let mut thief = app.browser();
    thief
        .cookies
        .insert(DEVICE.into(), device.value().to_owned());
    assert_eq!(thief.get("/profile").status, Status::SeeOther);
    app.create_user("bob", Role::User);
    assert_eq!(
        thief.login("bob", PASSWORD, false).status,
        Status::TooManyRequests
    );
}

#[test]
fn the_api_knows_devices_through_a_token_in_the_body() {
    let app = TestApp::new();
    app.create_user("alice", Role::User);
    let (status, body) = api_login(&app, json!({"username": "alice", "password": PASSWORD}));
    assert_eq!(status, Status::Ok);
    let device = body["device_token"].as_str().unwrap().to_owned();
    for _ in 0..10 {
        api_login(&app, json!({"username": "alice", "password": WRONG}));
    }
    let (status, body) = api_login(&app, json!({"username": "alice", "password": PASSWORD}));
    assert_eq!(status, Status::TooManyRequests, "{body}");
    assert_eq!(body["code"], "too_many_attempts");
    let (status, _) = api_login(
        &app,
        json!({"username": "alice", "password": PASSWORD, "device_token": device}),
    );
    assert_eq!(status, Status::Ok);
    let (status, _) = api_login(
        &app,
        json!({"username": "alice", "password": PASSWORD, "device_token": "forged.1.x"}),
    );
    assert_eq!(status, Status::TooManyRequests);
}

#[test]
fn a_wrong_current_password_is_a_failed_login() {
    let app = TestApp::new();
    app.create_user("alice", Role::User);
    let mut thief = app.browser();
    thief.login("alice", PASSWORD, false);
    // A stolen session without the browser's device cookie.
    thief.cookies.remove(DEVICE);
    let csrf = thief.session_csrf();
    let change = |browser: &mut Browser<'_>, current: &str| {
        browser.post(
            "/password",
            &[
                ("current_password", current),
                ("new_password", "a brand new password"),
                ("csrf_token", &csrf),
            ],
        )
    };
    for _ in 0..5 {
        assert_eq!(
            change(&mut thief, WRONG).status,
            Status::UnprocessableEntity
        );
    }
    assert_eq!(app.events_of_kind("login_failed"), 5);
    let refused = change(&mut thief, PASSWORD);
    assert_eq!(refused.status, Status::TooManyRequests);
    assert!(refused.header("Retry-After").is_some());
    assert_eq!(app.events_of_kind("password_changed"), 0);
    // The account's lockout holds for logins from elsewhere too.
    assert_eq!(
        app.browser().login("alice", PASSWORD, false).status,
        Status::TooManyRequests
    );
}

#[test]
fn sign_ups_are_limited_per_address() {
    let app = TestApp::with(json!({ "signup_max_per_window": 2 }));
    app.create_user("taken", Role::User);
    let signup = |name: &str| {
        let mut browser = app.browser();
        let token = browser.get("/signup").csrf_token();
        browser
            .post(
                "/signup",
                &[
                    ("username", name),
                    ("password", PASSWORD),
                    ("password_confirm", PASSWORD),
                    ("csrf_token", &token),
                ],
            )
            .status
    };
    assert_eq!(
        signup("taken"),
        Status::UnprocessableEntity,
        "no account made"
    );
    assert_eq!(signup("ann"), Status::SeeOther);
    assert_eq!(signup("bea"), Status::SeeOther);
    assert_eq!(signup("cid"), Status::TooManyRequests);
    assert_eq!(app.count("users"), 4);
    app.clock.advance(15 * 60 + 1);
    assert_eq!(signup("cid"), Status::SeeOther);
}

#[test]
fn hashes_follow_the_configured_cost_at_the_next_login() {
    let app = TestApp::with(json!({ "bcrypt_cost": 5 }));
    let id = app.create_user("alice", Role::User);
    let stored = |app: &TestApp| {
        doorman::db::users::find(&mut app.conn(), id)
            .unwrap()
            .unwrap()
            .password_hash
    };
    assert!(stored(&app).starts_with("$2b$04$"));
    assert_eq!(
        app.browser().login("alice", PASSWORD, false).status,
        Status::SeeOther
    );
    assert!(stored(&app).starts_with("$2b$05$"), "{}", stored(&app));
    assert_eq!(
        app.browser().login("alice", PASSWORD, false).status,
        Status::SeeOther
    );
}

#[test]
fn routes_that_read_the_session_row_see_an_ended_session_at_once() {
    let app = TestApp::new();
    app.create_user("alice", Role::User);
    let (_, body) = api_login(&app, json!({"username": "alice", "password": PASSWORD}));
    let access = body["access_token"].as_str().unwrap().to_owned();
    let mut browser = app.browser();
    browser.login("alice", PASSWORD, false);
    assert_eq!(bearer_get(&app, "/api/me", &access).0, Status::Ok);
    // Ended by another instance: this one's revocation set does not know it yet.
    let now = app.clock.now_secs();
    diesel::update(schema::sessions::table)
        .set((
            schema::sessions::ended_at.eq(now),
            schema::sessions::end_reason.eq("revoked"),
        ))
        .execute(&mut *app.conn())
        .unwrap();
    for path in ["/api/me", "/api/sessions"] {
        let (status, body, _) = bearer_get(&app, path, &access);
        assert_eq!(status, Status::Unauthorized, "{path}");
        assert_eq!(body["code"], "session_revoked", "{path}");
    }
    let page = browser.get("/sessions");
    assert_eq!(page.status, Status::SeeOther);
    assert!(page.location.unwrap().starts_with("/login"));
    assert!(browser.cookie(ACCESS).is_none(), "cookies cleared");
}

#[test]
fn an_api_logout_with_a_used_token_is_judged_as_reuse_first() {
    let app = TestApp::new();
    app.create_user("alice", Role::User);
    let post = |path: &str, body: Value| api_post(&app, path, body);
    let pair = |body: &Value| body["refresh_token"].as_str().unwrap().to_owned();
    // Within the grace a racing request may log out with the token just rotated.
    let (_, first) = api_login(&app, json!({"username": "alice", "password": PASSWORD}));
    post("/api/auth/refresh", json!({"refresh_token": pair(&first)}));
    let (status, _) = post("/api/auth/logout", json!({"refresh_token": pair(&first)}));
    assert_eq!(status, Status::NoContent);
    assert_eq!(app.events_of_kind("refresh_token_reuse"), 0);

    // After the grace, the used token is theft: the session is revoked as such.
    let (_, second) = api_login(&app, json!({"username": "alice", "password": PASSWORD}));
    post("/api/auth/refresh", json!({"refresh_token": pair(&second)}));
    app.clock.advance(REUSE_GRACE + 1);
    let (status, body) = post("/api/auth/logout", json!({"refresh_token": pair(&second)}));
    assert_eq!(status, Status::Unauthorized);
    assert_eq!(body["code"], "reuse_detected");
    assert_eq!(app.events_of_kind("refresh_token_reuse"), 1);
    let reasons: Vec<Option<String>> = app.sessions().into_iter().map(|s| s.1).collect();
    assert_eq!(
        reasons,
        [Some("logout".into()), Some("refresh_token_reuse".into())]
    );
}

#[test]
fn rules_follow_the_route_not_the_spelling_of_the_path() {
    let app = TestApp::new();
    app.create_user("alice", Role::User);
    let (_, body) = api_login(&app, json!({"username": "alice", "password": PASSWORD}));
    let access = body["access_token"].as_str().unwrap().to_owned();
    for path in ["//api/me", "/%61pi/me", "/api//me"] {
        let (status, _, cache) = bearer_get(&app, path, &access);
        assert_eq!(status, Status::Ok, "{path}");
        assert_eq!(cache.as_deref(), Some("no-store"), "{path}");
    }
    // A missing token on a strangely spelled API path is a JSON 401, not a login redirect.
    let response = app.client.get("//api/me").dispatch();
    assert_eq!(response.status(), Status::Unauthorized);

    // Static files never rotate a refresh cookie, however they are named.
    let mut browser = app.browser();
    browser.login("alice", PASSWORD, false);
    browser.cookies.remove(ACCESS);
    let refresh = browser.cookie(REFRESH).unwrap();
    for path in [
        "//static/style.css",
        "/%73tatic/style.css",
        "/.well-known//jwks.json",
    ] {
        let page = browser.get(path);
        assert!(
            page.set_cookies.is_empty(),
            "{path}: {:?}",
            page.set_cookies
        );
        assert_eq!(browser.cookie(REFRESH).unwrap(), refresh, "{path}");
    }
}

#[test]
fn old_security_events_are_deleted_at_start() {
    let app = TestApp::new();
    app.create_user("alice", Role::User);
    app.browser().login("alice", WRONG, false);
    app.clock.advance(90 * 86_400 + 1);
    app.browser().login("alice", WRONG, false);
    assert_eq!(app.events_of_kind("login_failed"), 2);
    let app = app.restart(json!({}));
    assert_eq!(app.events_of_kind("login_failed"), 1, "the old one is gone");
}

#[test]
fn database_files_and_secrets_are_private_in_an_open_folder() {
    use std::os::unix::fs::PermissionsExt;
    if backend::postgres_server().is_some() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("open");
    std::fs::create_dir(&data).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    // A database file an older version left readable by everyone.
    let database = data.join("doorman.sqlite3");
    std::fs::write(&database, b"").unwrap();
    std::fs::set_permissions(&database, std::fs::Permissions::from_mode(0o644)).unwrap();
    let app = TestApp::in_dir(dir, json!({ "data_dir": data, "database_url": database }));
    app.create_user("alice", Role::User);
    app.browser().login("alice", PASSWORD, false);
    let mode = |name: &str| {
        std::fs::metadata(data.join(name))
            .unwrap_or_else(|e| panic!("{name}: {e}"))
            .permissions()
            .mode()
            & 0o777
    };
    for name in [
        "doorman.sqlite3",
        "doorman.sqlite3-wal",
        "doorman.sqlite3-shm",
        "jwt-secret",
        "refresh-secret",
    ] {
        assert_eq!(mode(name), 0o600, "{name}");
    }
}

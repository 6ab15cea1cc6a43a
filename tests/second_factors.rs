//! Second factors and sudo mode through Rocket's local client: the authenticator app's
//! enrolment, replay and drift rules, recovery codes, the two-step login (pages and API), sudo
//! expiry, and the admin reset.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::too_many_lines)]

mod common;

use common::*;
use doorman::auth::roles::Role;
use rocket::http::Status;
use serde_json::{Value, json};

fn between<'a>(body: &'a str, start: &str, end: &str) -> &'a str {
    let from = body
        .find(start)
        .unwrap_or_else(|| panic!("{start} in {body}"))
        + start.len();
    let to = body[from..].find(end).unwrap() + from;
    &body[from..to]
}

/// The recovery codes a page shows, each in its own `<code>` element.
fn codes_on(page: &Page) -> Vec<String> {
    let list = between(&page.body, "<ul class=\"codes\">", "</ul>");
    list.split("<code>")
        .skip(1)
        .map(|c| c[..c.find("</code>").unwrap()].to_owned())
        .collect()
}

/// Signs `name` in and turns the authenticator app on; returns its key and recovery codes.
/// The clock moves past the confirming code's step, so the next code is fresh.
fn enrol(app: &TestApp, browser: &mut Browser<'_>, name: &str) -> (String, Vec<String>) {
    assert_eq!(
        browser.login(name, PASSWORD, false).status,
        Status::SeeOther
    );
    let page = browser.post_signed("/security/totp", &[]);
    assert_eq!(page.status, Status::Ok, "{}", page.body);
    let key = between(&page.body, "<code class=\"secret\">", "</code>").replace(' ', "");
    assert!(page.body.contains("<svg"), "a QR code, inline");
    assert!(page.body.contains(&format!(
        "otpauth://totp/doorman:{name}?secret={key}&issuer=doorman"
    )));
    let code = totp_code(&key, app.clock.now_secs());
    let page = browser.post_signed("/security/totp/confirm", &[("code", &code)]);
    assert_eq!(page.status, Status::Ok, "{}", page.body);
    let codes = codes_on(&page);
    assert_eq!(codes.len(), 10);
    app.clock.advance(30);
    (key, codes)
}

/// Password first: the answer must be the second step, with no session cookie.
fn password_step(browser: &mut Browser<'_>, name: &str) {
    let page = browser.login(name, PASSWORD, false);
    assert_eq!(page.status, Status::SeeOther);
    assert_eq!(page.location.as_deref(), Some("/login/verify"));
    assert!(page.cookie(PENDING).is_some());
    assert!(page.cookie(ACCESS).is_none() && page.cookie(REFRESH).is_none());
    assert!(browser.cookie(ACCESS).is_none());
}

fn verify(browser: &mut Browser<'_>, code: &str) -> Page {
    let token = browser.get("/login/verify").csrf_token();
    browser.post("/login/verify", &[("csrf_token", &token), ("code", code)])
}

#[test]
fn enrolment_then_two_step_login() {
    let app = TestApp::new();
    app.create_user("alice", Role::User);
    let mut browser = app.browser();
    assert_eq!(
        browser.login("alice", PASSWORD, false).status,
        Status::SeeOther
    );
    let page = browser.get("/security");
    assert_eq!(page.status, Status::Ok);
    assert!(page.body.contains("Set up an authenticator app"));

    let page = browser.post_signed("/security/totp", &[]);
    let shown = between(&page.body, "<code class=\"secret\">", "</code>").to_owned();
    let key = shown.replace(' ', "");
    let wrong = browser.post_signed("/security/totp/confirm", &[("code", "000000")]);
    assert_eq!(wrong.status, Status::UnprocessableEntity);
    assert!(wrong.body.contains(&shown), "the same key to try again");
    assert!(
        browser
            .get("/security")
            .body
            .contains("Set up an authenticator app"),
        "nothing on"
    );

    let code = totp_code(&key, app.clock.now_secs());
    let page = browser.post_signed("/security/totp/confirm", &[("code", &code)]);
    assert_eq!(codes_on(&page).len(), 10);
    assert_eq!(app.events_of_kind("mfa_enabled"), 1);
    let page = browser.get("/security");
    assert!(page.body.contains("10 left"), "{}", page.body);
    assert!(
        !page.body.contains("<ul class=\"codes\">"),
        "recovery codes are shown once"
    );

    let mut other = app.browser();
    password_step(&mut other, "alice");
    let form = other.get("/login/verify");
    assert_eq!(form.status, Status::Ok);
    let wrong = verify(&mut other, "123456");
    assert_eq!(wrong.status, Status::Unauthorized);
    assert_eq!(app.events_of_kind("mfa_failed"), 1);
    app.clock.advance(30);
    let page = verify(&mut other, &totp_code(&key, app.clock.now_secs()));
    assert_eq!(page.status, Status::SeeOther);
    assert_eq!(page.location.as_deref(), Some("/profile"));
    assert!(other.cookie(PENDING).is_none());
    let claims = access_claims(&other);
    assert_eq!(claims["amr"], json!(["pwd", "otp", "mfa"]));
    assert_eq!(claims["auth_time"], json!(app.clock.now_secs()));
    assert_eq!(other.get("/profile").status, Status::Ok);
    let sessions = other.get("/sessions").body;
    assert!(
        sessions.contains("signed in with password + one-time code"),
        "{sessions}"
    );
    assert!(
        sessions.contains("signed in with password ·"),
        "the first session: password alone"
    );
}

#[test]
fn a_code_is_good_once_with_one_step_of_drift() {
    let app = TestApp::new();
    app.create_user("alice", Role::User);
    let (key, _) = enrol(&app, &mut app.browser(), "alice");
    // Clear of the step the enrolment spent.
    app.clock.advance(30);
    let now = app.clock.now_secs();

    // One step behind (a slow phone) is accepted, once.
    let mut browser = app.browser();
    password_step(&mut browser, "alice");
    let late = totp_code(&key, now - 30);
    assert_eq!(verify(&mut browser, &late).status, Status::SeeOther);

    let mut again = app.browser();
    password_step(&mut again, "alice");
    assert_eq!(
        verify(&mut again, &late).status,
        Status::Unauthorized,
        "a replay"
    );
    // Two steps ahead is too far; one ahead is fine.
    assert_eq!(
        verify(&mut again, &totp_code(&key, now + 60)).status,
        Status::Unauthorized
    );
    assert_eq!(
        verify(&mut again, &totp_code(&key, now + 30)).status,
        Status::SeeOther
    );
}

#[test]
fn recovery_codes_work_once_and_can_be_renewed() {
    let app = TestApp::new();
    app.create_user("alice", Role::User);
    let mut first = app.browser();
    let (_, codes) = enrol(&app, &mut first, "alice");

    let mut browser = app.browser();
    password_step(&mut browser, "alice");
    let typed = codes[0].to_uppercase();
    assert_eq!(verify(&mut browser, &typed).status, Status::SeeOther);
    assert_eq!(app.events_of_kind("recovery_code_used"), 1);
    assert!(browser.get("/security").body.contains("9 left"));

    let mut thief = app.browser();
    password_step(&mut thief, "alice");
    assert_eq!(verify(&mut thief, &codes[0]).status, Status::Unauthorized);

    let page = first.post_signed("/security/recovery-codes", &[]);
    let renewed = codes_on(&page);
    assert_eq!(renewed.len(), 10);
    assert_eq!(app.events_of_kind("recovery_codes_regenerated"), 1);
    // A new set is a change of the second factors: the half-done login started before it ended.
    let ended = thief.get("/login/verify");
    assert_eq!(ended.location.as_deref(), Some("/login"));
    password_step(&mut thief, "alice");
    assert_eq!(
        verify(&mut thief, &codes[1]).status,
        Status::Unauthorized,
        "old set void"
    );
    assert_eq!(verify(&mut thief, &renewed[1]).status, Status::SeeOther);
}

#[test]
fn a_half_done_login_ends_after_five_minutes_or_five_wrong_codes() {
    let app = TestApp::with(json!({ "login_max_failures": 50 }));
    app.create_user("alice", Role::User);
    let (key, _) = enrol(&app, &mut app.browser(), "alice");

    let mut slow = app.browser();
    password_step(&mut slow, "alice");
    let token = slow.get("/login/verify").csrf_token();
    app.clock.advance(301);
    let code = totp_code(&key, app.clock.now_secs());
    let page = slow.post("/login/verify", &[("csrf_token", &token), ("code", &code)]);
    assert_eq!(page.status, Status::SeeOther);
    assert_eq!(page.location.as_deref(), Some("/login"));
    assert!(slow.cookie(ACCESS).is_none());
    assert!(slow.get("/login").body.contains("That sign-in has expired"));
    assert_eq!(
        slow.get("/login/verify").location.as_deref(),
        Some("/login")
    );

    let mut guesser = app.browser();
    password_step(&mut guesser, "alice");
    for _ in 0..4 {
        assert_eq!(verify(&mut guesser, "000000").status, Status::Unauthorized);
    }
    let fifth = verify(&mut guesser, "000000");
    assert_eq!(
        fifth.location.as_deref(),
        Some("/login"),
        "the fifth wrong code ends it"
    );
    let token = guesser.get("/login").csrf_token();
    let page = guesser.post(
        "/login/verify",
        &[
            ("csrf_token", &token),
            ("code", &totp_code(&key, app.clock.now_secs())),
        ],
    );
    assert_eq!(page.location.as_deref(), Some("/login"));
    assert!(guesser.cookie(ACCESS).is_none());
}

#[test]
fn wrong_codes_count_as_failed_logins_of_the_account() {
    let app = TestApp::new();
    app.create_user("alice", Role::User);
    let (key, _) = enrol(&app, &mut app.browser(), "alice");
    let mut guesser = app.browser();
    password_step(&mut guesser, "alice");
    for _ in 0..4 {
        assert_eq!(verify(&mut guesser, "000000").status, Status::Unauthorized);
    }
    // A fifth failure, this time of the password, fills the account's window.
    let mut other = app.browser();
    assert_eq!(
        other.login("alice", "wrong password!!", false).status,
        Status::Unauthorized
    );
    let mut late = app.browser();
    let page = late.login("alice", PASSWORD, false);
    assert_eq!(
        page.status,
        Status::TooManyRequests,
        "even the right password"
    );
    assert!(page.header("Retry-After").is_some());
    password_step_refused(&mut guesser, &totp_code(&key, app.clock.now_secs()));
}

fn password_step_refused(browser: &mut Browser<'_>, code: &str) {
    let page = verify(browser, code);
    assert_eq!(page.status, Status::TooManyRequests, "{}", page.body);
    assert!(browser.cookie(ACCESS).is_none());
}

#[test]
fn sudo_expires_and_is_granted_again_at_sudo() {
    let app = TestApp::new();
    app.create_user("alice", Role::User);
    let mut browser = app.browser();
    browser.login("alice", PASSWORD, false);
    app.clock.advance(601);
    let page = browser.post_signed(
        "/password",
        &[
            ("current_password", PASSWORD),
            ("new_password", "a brand new password"),
        ],
    );
    assert_eq!(page.status, Status::SeeOther);
    assert_eq!(page.location.as_deref(), Some("/sudo?next=%2Fprofile"));
    assert_eq!(app.events_of_kind("password_changed"), 0, "nothing changed");
    for path in [
        "/security/totp",
        "/sessions/revoke-others",
        "/security/recovery-codes",
    ] {
        let page = browser.post_signed(path, &[]);
        assert!(
            page.location
                .as_deref()
                .is_some_and(|l| l.starts_with("/sudo?next=")),
            "{path}"
        );
    }

    let form = browser.get("/sudo?next=/profile");
    assert_eq!(form.status, Status::Ok);
    assert!(
        !form.body.contains("name=\"code\""),
        "no second factor, no code field"
    );
    let token = form.csrf_token();
    let wrong = browser.post(
        "/sudo",
        &[
            ("csrf_token", &token),
            ("password", "not the password"),
            ("next", "/profile"),
        ],
    );
    assert_eq!(wrong.status, Status::Unauthorized);
    let page = browser.post(
        "/sudo",
        &[
            ("csrf_token", &token),
            ("password", PASSWORD),
            ("next", "/profile"),
        ],
    );
    assert_eq!(page.status, Status::SeeOther);
    assert_eq!(page.location.as_deref(), Some("/profile"));
    assert_eq!(app.events_of_kind("sudo_granted"), 1);
    assert_eq!(
        access_claims(&browser)["auth_time"],
        json!(app.clock.now_secs())
    );
    let page = browser.post_signed(
        "/password",
        &[
            ("current_password", PASSWORD),
            ("new_password", "a brand new password"),
        ],
    );
    assert_eq!(page.location.as_deref(), Some("/profile"));
    assert_eq!(app.events_of_kind("password_changed"), 1);

    // Sudo mode outlives an access token: the refreshed one keeps the session's auth_time.
    app.clock.advance(120);
    assert_eq!(browser.get("/profile").status, Status::Ok);
    assert_eq!(
        access_claims(&browser)["auth_time"],
        json!(app.clock.now_secs() - 120)
    );
    // An outside page is never where /sudo sends the browser.
    let token = browser.get("/sudo?next=//evil.example").csrf_token();
    let page = browser.post(
        "/sudo",
        &[
            ("csrf_token", &token),
            ("password", "a brand new password"),
            ("next", "//evil.example"),
        ],
    );
    assert_eq!(page.location.as_deref(), Some("/profile"));
}

#[test]
fn sudo_asks_for_the_second_factor_too() {
    let app = TestApp::new();
    app.create_user("alice", Role::User);
    let mut browser = app.browser();
    let (key, _) = enrol(&app, &mut browser, "alice");
    app.clock.advance(601);
    let form = browser.get("/sudo?next=/security");
    assert!(form.body.contains("name=\"code\""));
    let token = form.csrf_token();
    let page = browser.post(
        "/sudo",
        &[
            ("csrf_token", &token),
            ("password", PASSWORD),
            ("code", "000000"),
            ("next", "/security"),
        ],
    );
    assert_eq!(page.status, Status::Unauthorized);
    let code = totp_code(&key, app.clock.now_secs());
    let page = browser.post(
        "/sudo",
        &[
            ("csrf_token", &token),
            ("password", PASSWORD),
            ("code", &code),
            ("next", "/security"),
        ],
    );
    assert_eq!(page.location.as_deref(), Some("/security"));
    let page = browser.post_signed("/security/totp/disable", &[]);
    assert_eq!(page.location.as_deref(), Some("/security"));
    assert_eq!(app.events_of_kind("mfa_disabled"), 1);
    let mut next = app.browser();
    assert_eq!(
        next.login("alice", PASSWORD, false).location.as_deref(),
        Some("/profile")
    );
}

#[test]
fn admins_reset_second_factors_in_sudo_mode() {
    let app = TestApp::new();
    app.create_user("root", Role::Admin);
    let alice = app.create_user("alice", Role::User);
    let mut alice_browser = app.browser();
    enrol(&app, &mut alice_browser, "alice");
    let mut admin = app.browser();
    admin.login("root", PASSWORD, false);
    let page = admin.get(&format!("/admin/users/{alice}"));
    assert!(page.body.contains("Reset second factors"), "{}", page.body);

    app.clock.advance(601);
    let path = format!("/admin/users/{alice}/reset-mfa");
    let page = admin.post_signed(&path, &[]);
    assert_eq!(
        page.location.as_deref(),
        Some(format!("/sudo?next=%2Fadmin%2Fusers%2F{alice}").as_str())
    );
    assert_eq!(app.events_of_kind("mfa_reset"), 0);
    let token = admin.get("/sudo").csrf_token();
    let page = admin.post(
        "/sudo",
        &[
            ("csrf_token", &token),
            ("password", PASSWORD),
            ("next", &format!("/admin/users/{alice}")),
        ],
    );
    assert_eq!(page.location, Some(format!("/admin/users/{alice}")));
    let page = admin.post_signed(&path, &[]);
    assert_eq!(page.location, Some(format!("/admin/users/{alice}")));
    assert_eq!(app.events_of_kind("mfa_reset"), 1);
    assert_eq!(
        alice_browser.get("/profile").status,
        Status::SeeOther,
        "the user's sessions ended"
    );
    let mut again = app.browser();
    assert_eq!(
        again.login("alice", PASSWORD, false).location.as_deref(),
        Some("/profile")
    );
}

#[test]
fn admins_without_a_second_factor_are_sent_to_security_when_required() {
    let app = TestApp::with(json!({ "require_mfa_for_admins": true }));
    app.create_user("root", Role::Admin);
    let mut admin = app.browser();
    admin.login("root", PASSWORD, false);
    let page = admin.get("/admin");
    assert_eq!(page.status, Status::SeeOther);
    assert_eq!(page.location.as_deref(), Some("/security"));
    assert!(
        admin
            .get("/security")
            .body
            .contains("Turn on a second factor")
    );
    app.clock.advance(1);
    let mut enrolled = app.browser();
    enrol(&app, &mut enrolled, "root");
    let mut admin = app.browser();
    password_step(&mut admin, "root");
    let key_page = admin.get("/login/verify");
    assert_eq!(key_page.status, Status::Ok);
}

#[test]
fn the_api_signs_in_with_password_then_code() {
    let app = TestApp::new();
    app.create_user("alice", Role::User);
    let (key, codes) = enrol(&app, &mut app.browser(), "alice");
    let credentials = json!({ "username": "alice", "password": PASSWORD });
    let (status, body) = api_post(&app, "/api/auth/login", credentials.clone());
    assert_eq!(status, Status::Unauthorized);
    assert_eq!(body["code"], json!("mfa_required"));
    assert!(body.get("access_token").is_none());
    let mfa_token = body["mfa_token"].as_str().unwrap().to_owned();

    let (status, body) = api_post(
        &app,
        "/api/auth/mfa",
        json!({ "mfa_token": mfa_token, "code": "000000" }),
    );
    assert_eq!(status, Status::Unauthorized);
    assert_eq!(body["code"], json!("invalid_credentials"));
    let code = totp_code(&key, app.clock.now_secs());
    let (status, body) = api_post(
        &app,
        "/api/auth/mfa",
        json!({ "mfa_token": mfa_token, "code": code }),
    );
    assert_eq!(status, Status::Ok, "{body}");
    let access = body["access_token"].as_str().unwrap();
    let claims = jsonwebtoken::dangerous::insecure_decode::<Value>(access)
        .unwrap()
        .claims;
    assert_eq!(claims["amr"], json!(["pwd", "otp", "mfa"]));
    let sessions = app
        .client
        .get("/api/sessions")
        .header(rocket::http::Header::new(
            "Authorization",
            format!("Bearer {access}"),
        ))
        .dispatch()
        .into_json::<Value>()
        .unwrap();
    let current = sessions["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["current"] == json!(true))
        .unwrap()
        .clone();
    assert_eq!(current["amr"], json!(["pwd", "otp", "mfa"]));

    // The mfa_token was single use.
    let (status, body) = api_post(
        &app,
        "/api/auth/mfa",
        json!({ "mfa_token": mfa_token, "code": codes[0] }),
    );
    assert_eq!(status, Status::Unauthorized);
    assert_eq!(body["code"], json!("invalid_token"));
    let (_, body) = api_post(&app, "/api/auth/login", credentials);
    let mfa_token = body["mfa_token"].as_str().unwrap();
    let (status, _) = api_post(
        &app,
        "/api/auth/mfa",
        json!({ "mfa_token": mfa_token, "code": codes[0] }),
    );
    assert_eq!(
        status,
        Status::Ok,
        "a recovery code works through the API too"
    );
}

//! Passkey routes through the local client: what holds without an authenticator (sudo, CSRF,
//! single-use ceremonies, refusals as 4xx JSON, passkeys off on an IP address). The ceremonies
//! themselves run in a real browser with a virtual authenticator (`tests/browser.rs`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::too_many_lines)]

mod common;

use common::*;
use diesel::ExpressionMethods;
use doorman::auth::roles::Role;
use rocket::http::{ContentType, Status};
use serde_json::{Value, json};

fn on() -> TestApp {
    TestApp::with(json!({ "public_url": "http://localhost:8000" }))
}

/// A JSON POST from doorman's script: the page's CSRF token in `X-CSRF-Token`.
fn script_post(browser: &mut Browser<'_>, path: &str, csrf: &str, body: &Value) -> Page {
    browser.post_raw_with(
        path,
        ContentType::JSON,
        &body.to_string(),
        &[("X-CSRF-Token", csrf)],
    )
}

fn json_of(page: &Page) -> Value {
    serde_json::from_str(&page.body).unwrap_or(Value::Null)
}

#[test]
fn registration_needs_sudo_and_the_page_token() {
    let app = on();
    app.create_user("alice", Role::User);
    let mut browser = app.browser();
    browser.login("alice", PASSWORD, false);
    let csrf = browser.session_csrf();

    let page = script_post(
        &mut browser,
        "/security/passkeys/register/start",
        "forged",
        &json!({}),
    );
    assert_eq!(page.status, Status::Forbidden);
    let page = script_post(
        &mut browser,
        "/security/passkeys/register/start",
        &csrf,
        &json!({}),
    );
    assert_eq!(page.status, Status::Ok, "{}", page.body);
    let options = json_of(&page);
    let selection = &options["options"]["publicKey"]["authenticatorSelection"];
    assert_eq!(selection["residentKey"], json!("required"), "{options}");
    assert_eq!(selection["userVerification"], json!("required"));
    assert_eq!(
        options["options"]["publicKey"]["rp"]["id"],
        json!("localhost")
    );
    assert!(options["options"]["publicKey"]["user"]["id"].is_string());

    // An answer that is not a passkey's is refused (JSON, 4xx); the ceremony is spent.
    let ceremony = options["ceremony"].as_str().unwrap();
    let forged = json!({
        "ceremony": ceremony,
        "name": "Mine",
        "credential": {
            "id": "AAAA", "rawId": "AAAA", "type": "public-key",
            "response": { "attestationObject": "AAAA", "clientDataJSON": "AAAA" },
            "extensions": {}
        }
    });
    let page = script_post(
        &mut browser,
        "/security/passkeys/register/finish",
        &csrf,
        &forged,
    );
    assert_eq!(page.status, Status::Unauthorized, "{}", page.body);
    assert_eq!(json_of(&page)["code"], json!("invalid_credentials"));
    let page = script_post(
        &mut browser,
        "/security/passkeys/register/finish",
        &csrf,
        &forged,
    );
    assert_eq!(page.status, Status::BadRequest);
    assert_eq!(json_of(&page)["code"], json!("expired"));
    let page = script_post(
        &mut browser,
        "/security/passkeys/register/finish",
        &csrf,
        &json!({"x": 1}),
    );
    assert!(
        page.status.code >= 400 && page.status.code < 500,
        "{}",
        page.status
    );
    assert_eq!(app.events_of_kind("passkey_added"), 0);

    app.clock.advance(601);
    let page = script_post(
        &mut browser,
        "/security/passkeys/register/start",
        &csrf,
        &json!({}),
    );
    assert_eq!(page.status, Status::SeeOther);
    assert_eq!(page.location.as_deref(), Some("/sudo?next=%2Fsecurity"));
}

#[test]
fn passwordless_sign_in_starts_with_the_browser_token_and_refuses_forgeries() {
    let app = on();
    app.create_user("alice", Role::User);
    let mut browser = app.browser();
    let form = browser.get("/login");
    assert!(form.body.contains("Sign in with a passkey"));
    assert!(form.body.contains("/static/passkeys.js"));
    let csrf = form.csrf_token();

    let page = script_post(&mut browser, "/login/passkey/start", "forged", &json!({}));
    assert_eq!(page.status, Status::Forbidden);
    let page = browser.post_raw_with(
        "/login/passkey/start",
        ContentType::JSON,
        "{}",
        &[
            ("X-CSRF-Token", csrf.as_str()),
            ("Sec-Fetch-Site", "cross-site"),
        ],
    );
    assert_eq!(page.status, Status::Forbidden, "another site's request");
    let page = script_post(&mut browser, "/login/passkey/start", &csrf, &json!({}));
    assert_eq!(page.status, Status::Ok);
    let started = json_of(&page);
    assert!(
        started["options"].get("mediation").is_none(),
        "a button, not autofill"
    );
    assert_eq!(
        started["options"]["publicKey"]["userVerification"],
        json!("required")
    );

    let forged = forged_assertion(&started["ceremony"]);
    let page = script_post(&mut browser, "/login/passkey/finish", &csrf, &forged);
    assert_eq!(page.status, Status::Unauthorized, "{}", page.body);
    assert!(browser.cookie(ACCESS).is_none());
    let page = script_post(&mut browser, "/login/passkey/finish", &csrf, &forged);
    assert_eq!(json_of(&page)["code"], json!("expired"), "single use");
    assert_eq!(app.events_of_kind("login_succeeded"), 0);
}

#[test]
fn passkeys_are_off_on_an_ip_address() {
    let app = TestApp::new();
    app.create_user("alice", Role::User);
    let mut browser = app.browser();
    let form = browser.get("/login");
    assert!(!form.body.contains("Sign in with a passkey"));
    assert!(
        !form.body.contains("<script"),
        "no script where there is no passkey"
    );
    let csrf = form.csrf_token();
    let page = script_post(&mut browser, "/login/passkey/start", &csrf, &json!({}));
    assert_eq!(page.status, Status::NotFound);
    assert_eq!(json_of(&page)["code"], json!("passkeys_off"));
    browser.login("alice", PASSWORD, false);
    assert!(browser.get("/security").body.contains("Passkeys are off"));
}

#[test]
fn a_passkey_on_the_account_makes_the_password_half_a_login() {
    let app = on();
    let alice = app.create_user("alice", Role::User);
    // A stored passkey row, as registration leaves one (its contents do not matter here).
    diesel::RunQueryDsl::execute(
        diesel::insert_into(doorman::db::schema::passkeys::table).values((
            doorman::db::schema::passkeys::user_id.eq(alice),
            doorman::db::schema::passkeys::credential_id.eq(vec![1u8, 2, 3]),
            doorman::db::schema::passkeys::name.eq("Phone"),
            doorman::db::schema::passkeys::credential.eq("{}"),
            doorman::db::schema::passkeys::created_at.eq(app.clock.now_secs()),
        )),
        &mut *app.conn(),
    )
    .unwrap();
    let mut browser = app.browser();
    let page = browser.login("alice", PASSWORD, false);
    assert_eq!(page.location.as_deref(), Some("/login/verify"));
    assert!(browser.cookie(ACCESS).is_none());
    let verify = browser.get("/login/verify");
    assert!(verify.body.contains("Use a passkey instead"));

    // Signed in another way (the test's own session), /sudo will not take the password alone.
    let mut other = app.browser();
    let refresh = {
        let db = app.db().clone();
        let now = app.clock.now_secs();
        common::write(&db, move |tx| {
            let user = doorman::db::users::find(tx, alice)?.unwrap();
            let lifetimes = doorman::core::sessions::Lifetimes {
                access_ttl: ACCESS_TTL,
                refresh_ttl: REFRESH_TTL,
                session_max_age: SESSION_MAX_AGE,
                reuse_grace: REUSE_GRACE,
            };
            let client = doorman::core::client::ClientInfo {
                ip: "127.0.0.1".into(),
                user_agent: "test".into(),
            };
            let started = doorman::core::sessions::start(
                tx,
                now,
                &lifetimes,
                &user,
                false,
                &client,
                doorman::core::sessions::SignInMethod::Passkey { synced: true },
            )?;
            Ok(started.refresh_token)
        })
    };
    other.cookies.insert(REFRESH.into(), refresh);
    assert_eq!(other.get("/profile").status, Status::Ok);
    let claims = jsonwebtoken::dangerous::insecure_decode::<Value>(other.cookie(ACCESS).unwrap())
        .unwrap()
        .claims;
    assert_eq!(claims["amr"], json!(["swk", "mfa"]));
    let form = other.get("/sudo?next=/security");
    assert!(form.body.contains("Confirm with a passkey"));
    assert!(
        !form.body.contains("name=\"password\""),
        "the password alone is not offered"
    );
    let token = form.csrf_token();
    let page = other.post(
        "/sudo",
        &[
            ("csrf_token", &token),
            ("password", PASSWORD),
            ("next", "/security"),
        ],
    );
    assert_eq!(page.status, Status::Unauthorized);
    assert_eq!(app.events_of_kind("sudo_granted"), 0);
}

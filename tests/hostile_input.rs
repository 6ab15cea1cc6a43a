//! Generated hostile input at every parser on the edge — cookies, JWTs, form and JSON bodies,
//! path segments, User-Agents, oversized headers: never a panic, never a 5xx, and no account,
//! session or token changes.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::too_many_lines)]

mod common;

use common::*;
use doorman::auth::roles::Role;
use proptest::prelude::*;
use rocket::http::{ContentType, Cookie, Header, Status};
use serde_json::json;

fn app() -> TestApp {
    let app = TestApp::new();
    app.create_user("alice", Role::User);
    app.create_user("root", Role::Admin);
    app
}

/// What hostile input must never change (failed logins are recorded, by design).
fn state(app: &TestApp) -> [i64; 3] {
    ["users", "sessions", "refresh_tokens"].map(|t| app.count(t))
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[\\x00-\\x7f]{0,64}",
        "[A-Za-z0-9_.~-]{1,300}".prop_map(|s| s.repeat(4)),
        Just("eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0.".to_owned()),
        Just("%00%ff%c0%af..%2f..%2f".to_owned()),
        Just("\u{202e}\u{0}\r\n".to_owned()),
    ]
}

fn bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..512),
        text().prop_map(String::into_bytes),
        text().prop_map(|t| format!(
            "username={t}&password={t}&csrf_token={t}&remember={t}&next={t}"
        )
        .into_bytes()),
    ]
}

fn assert_sane(status: Status, what: &str) {
    assert!(status.code < 500, "{what}: {status}");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn cookies_and_tokens(access in text(), refresh in text(), csrf in text(), bearer in text(), agent in text()) {
        let app = app();
        let before = state(&app);
        for path in ["/", "/profile", "/sessions", "/admin", "/login"] {
            let mut req = app.client.get(path);
            for (name, value) in [(ACCESS, &access), (REFRESH, &refresh), (CSRF, &csrf)] {
                req = req.cookie(Cookie::new(name, value.clone()));
            }
            let response = req.header(Header::new("User-Agent", agent.clone())).dispatch();
            assert_sane(response.status(), path);
        }
        for path in ["/api/me", "/api/sessions", "/api/admin/users"] {
            let response = app
                .client
                .get(path)
                .header(Header::new("Authorization", format!("Bearer {bearer}")))
                .dispatch();
            prop_assert_eq!(response.status(), Status::Unauthorized);
        }
        prop_assert_eq!(state(&app), before);
    }

    #[test]
    fn form_and_json_bodies(body in bytes(), json_text in text()) {
        let app = app();
        let before = state(&app);
        for path in [
            "/login", "/signup", "/logout", "/password", "/sessions/revoke-others", "/admin/users/2/role",
            "/login/verify", "/sudo", "/password/forgot", "/password/reset", "/security/email",
            "/security/totp/confirm", "/security/passkeys/1/delete",
        ] {
            let response = app.client.post(path).header(ContentType::Form).body(&body).dispatch();
            assert_sane(response.status(), path);
        }
        for path in ["/api/auth/login", "/api/auth/refresh", "/api/auth/logout", "/api/auth/mfa"] {
            for payload in [body.clone(), json_text.clone().into_bytes(), json!({ "username": json_text, "password": json_text, "refresh_token": json_text, "mfa_token": json_text, "code": json_text }).to_string().into_bytes()] {
                let response = app.client.post(path).header(ContentType::JSON).body(payload).dispatch();
                let status = response.status();
                assert_sane(status, path);
                let content_type = response.content_type();
                prop_assert!(content_type.as_ref().is_some_and(|ct| ct.is_json()), "{} answered {:?}", path, content_type);
            }
        }
        prop_assert_eq!(state(&app), before);
    }

    #[test]
    fn path_segments(segment in text()) {
        let app = app();
        let before = state(&app);
        let encoded = urlencode(&segment);
        for path in [
            format!("/admin/users/{encoded}"),
            format!("/api/sessions/{encoded}"),
            format!("/static/{encoded}"),
            format!("/login?next={encoded}"),
            format!("/{encoded}"),
            format!("/admin?users={encoded}&events={encoded}"),
            format!("/email/verify?token={encoded}"),
            format!("/password/reset?token={encoded}"),
            format!("/sessions/{encoded}/report?token={encoded}"),
            format!("/sudo?next={encoded}"),
        ] {
            let response = app.client.get(path.clone()).dispatch();
            assert_sane(response.status(), &path);
        }
        let response = app.client.delete(format!("/api/sessions/{encoded}")).dispatch();
        let refused = [Status::Unauthorized, Status::NotFound].contains(&response.status());
        prop_assert!(refused, "DELETE {}: {}", encoded, response.status());
        prop_assert_eq!(state(&app), before);
    }
}

#[test]
fn extreme_headers_are_refused_or_ignored() {
    let app = app();
    let before = state(&app);
    let huge = "x".repeat(1 << 20);
    for (name, value) in [
        ("Cookie", format!("{ACCESS}={huge}")),
        ("User-Agent", huge.clone()),
        ("Authorization", format!("Bearer {huge}")),
        ("Origin", huge.clone()),
    ] {
        for path in ["/profile", "/api/me", "/login"] {
            let response = app
                .client
                .get(path)
                .header(Header::new(name, value.clone()))
                .dispatch();
            assert_sane(response.status(), path);
        }
    }
    let mut browser = app.browser();
    browser.user_agent = "\u{0}".repeat(10_000);
    assert_eq!(
        browser.login("alice", PASSWORD, false).status,
        Status::SeeOther
    );
    assert!(browser.get("/sessions").status.code < 500);
    assert_eq!(app.count("users"), before[0]);
}

//! Sessions per device, immediate revocation, password change, throttling, the admin console and
//! security events, through Rocket's local client.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::too_many_lines)]

mod common;

use common::*;
use doorman::auth::roles::Role;
use rocket::http::Status;
use serde_json::json;

const IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 \
                      (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1";

fn sid_of(browser: &Browser<'_>) -> String {
    let access = browser.cookie(ACCESS).unwrap();
    let claims = jsonwebtoken::dangerous::insecure_decode::<serde_json::Value>(&access)
        .unwrap()
        .claims;
    claims["sid"].as_str().unwrap().to_owned()
}

#[test]
fn sessions_list_each_device_readably() {
    let app = TestApp::new();
    app.create_user("alice", Role::User);
    let mut laptop = app.browser();
    laptop.login("alice", PASSWORD, false);
    let mut phone = app.browser();
    phone.user_agent = IPHONE.into();
    phone.login("alice", PASSWORD, false);

    let page = laptop.get("/sessions");
    assert_eq!(page.status, Status::Ok);
    assert!(page.body.contains("Firefox 133 on Linux"), "{}", page.body);
    assert!(page.body.contains("Safari on iPhone"));
    assert_eq!(page.body.matches("This device").count(), 1);
    assert!(
        page.body
            .contains(&format!("/sessions/{}/revoke", sid_of(&phone)))
    );
    assert!(
        !page.body.contains("/sessions/1/revoke"),
        "public ids, never row numbers"
    );
}

#[test]
fn a_revoked_device_is_refused_on_its_very_next_request() {
    let app = TestApp::new();
    app.create_user("alice", Role::User);
    let mut laptop = app.browser();
    laptop.login("alice", PASSWORD, false);
    let mut phone = app.browser();
    phone.login("alice", PASSWORD, false);
    assert_eq!(phone.get("/profile").status, Status::Ok);

    let page = laptop.post_signed(&format!("/sessions/{}/revoke", sid_of(&phone)), &[]);
    assert_eq!(page.status, Status::SeeOther);
    assert_eq!(page.location.as_deref(), Some("/sessions"));
    assert!(
        laptop
            .get("/sessions")
            .body
            .contains("That session has ended")
    );

    // The phone's access token has not expired, yet it is refused at once, and so is its refresh.
    let page = phone.get("/profile");
    assert_eq!(page.status, Status::SeeOther);
    assert!(phone.cookie(REFRESH).is_none());
    assert_eq!(laptop.get("/profile").status, Status::Ok);
    assert_eq!(app.events_of_kind("session_revoked"), 1);
}

#[test]
fn another_users_session_is_not_found_and_untouched() {
    let app = TestApp::new();
    app.create_user("alice", Role::User);
    app.create_user("bob", Role::User);
    let mut alice = app.browser();
    alice.login("alice", PASSWORD, false);
    let mut bob = app.browser();
    bob.login("bob", PASSWORD, false);
    let page = alice.post_signed(&format!("/sessions/{}/revoke", sid_of(&bob)), &[]);
    assert_eq!(page.status, Status::NotFound);
    let page = alice.post_signed("/sessions/not-a-session/revoke", &[]);
    assert_eq!(page.status, Status::NotFound);
    assert_eq!(bob.get("/profile").status, Status::Ok);
    assert!(app.sessions().iter().all(|(_, ended)| ended.is_none()));
}

#[test]
fn signing_out_everywhere_else_keeps_this_device() {
    let app = TestApp::new();
    app.create_user("alice", Role::User);
    let mut browsers: Vec<_> = (0..3).map(|_| app.browser()).collect();
    for b in &mut browsers {
        b.login("alice", PASSWORD, false);
    }
    let page = browsers[0].post_signed("/sessions/revoke-others", &[]);
    assert_eq!(page.status, Status::SeeOther);
    assert_eq!(browsers[0].get("/profile").status, Status::Ok);
    assert_eq!(browsers[1].get("/profile").status, Status::SeeOther);
    assert_eq!(browsers[2].get("/profile").status, Status::SeeOther);
    let ended: Vec<_> = app.sessions().into_iter().filter_map(|s| s.1).collect();
    assert_eq!(ended, ["revoked", "revoked"]);
}

#[test]
fn revoking_this_device_signs_it_out() {
    let app = TestApp::new();
    app.create_user("alice", Role::User);
    let mut browser = app.browser();
    browser.login("alice", PASSWORD, false);
    let sid = sid_of(&browser);
    let page = browser.post_signed(&format!("/sessions/{sid}/revoke"), &[]);
    assert_eq!(page.location.as_deref(), Some("/login"));
    assert!(browser.cookie(ACCESS).is_none());
}

#[test]
fn changing_the_password_ends_the_other_sessions() {
    let app = TestApp::new();
    app.create_user("alice", Role::User);
    let mut mine = app.browser();
    mine.login("alice", PASSWORD, false);
    let mut other = app.browser();
    other.login("alice", PASSWORD, false);

    let wrong = mine.post_signed(
        "/password",
        &[
            ("current_password", "not it at all"),
            ("new_password", "a brand new passphrase"),
        ],
    );
    assert_eq!(wrong.status, Status::UnprocessableEntity);
    assert!(wrong.body.contains("The current password is not right."));
    let weak = mine.post_signed(
        "/password",
        &[("current_password", PASSWORD), ("new_password", "short")],
    );
    assert_eq!(weak.status, Status::UnprocessableEntity);
    assert!(weak.body.contains("at least 12 characters"));
    assert_eq!(
        other.get("/profile").status,
        Status::Ok,
        "refusals change nothing"
    );

    let page = mine.post_signed(
        "/password",
        &[
            ("current_password", PASSWORD),
            ("new_password", "a brand new passphrase"),
        ],
    );
    assert_eq!(page.status, Status::SeeOther);
    assert_eq!(page.location.as_deref(), Some("/profile"));
    let profile = mine.get("/profile");
    assert_eq!(profile.status, Status::Ok);
    assert!(profile.body.contains("Your password has changed"));
    assert!(profile.body.contains("password_changed"));
    assert_eq!(other.get("/profile").status, Status::SeeOther);
    assert_eq!(app.events_of_kind("password_changed"), 1);

    assert_eq!(
        app.browser().login("alice", PASSWORD, false).status,
        Status::Unauthorized
    );
    assert_eq!(
        app.browser()
            .login("alice", "a brand new passphrase", false)
            .status,
        Status::SeeOther
    );
}

#[test]
fn logins_are_throttled_per_account() {
    let app = TestApp::with(json!({ "login_max_failures": 3, "login_window": "10m" }));
    app.create_user("alice", Role::User);
    let mut browser = app.browser();
    for _ in 0..3 {
        assert_eq!(
            browser.login("alice", "wrong password!", false).status,
            Status::Unauthorized
        );
    }
    let page = browser.login("alice", PASSWORD, false);
    assert_eq!(
        page.status,
        Status::TooManyRequests,
        "even the right password"
    );
    let retry: i64 = page.header("Retry-After").unwrap().parse().unwrap();
    assert!((1..=600).contains(&retry), "{retry}");
    assert!(page.body.contains("Too many failed sign-ins"));
    assert!(page.cookie(ACCESS).is_none());
    assert_eq!(app.events_of_kind("login_failed"), 3);
    assert_eq!(app.events_of_kind("login_throttled"), 1);

    // The lockout is in the database: a restart does not lift it.
    let app = app.restart(json!({ "login_max_failures": 3, "login_window": "10m" }));
    assert_eq!(
        app.browser().login("alice", PASSWORD, false).status,
        Status::TooManyRequests
    );

    app.clock.advance(retry);
    assert_eq!(
        app.browser().login("alice", PASSWORD, false).status,
        Status::SeeOther
    );
}

#[test]
fn logins_are_throttled_per_address() {
    let app = TestApp::with(json!({ "login_max_failures": 3 }));
    app.create_user("alice", Role::User);
    let mut browser = app.browser();
    for name in ["ann", "ben", "cat"] {
        assert_eq!(
            browser.login(name, "wrong password!", false).status,
            Status::Unauthorized
        );
    }
    assert_eq!(
        browser.login("alice", PASSWORD, false).status,
        Status::TooManyRequests
    );
}

#[test]
fn a_forged_client_address_header_does_not_dodge_throttling() {
    let app = TestApp::with(json!({ "login_max_failures": 2 }));
    app.create_user("alice", Role::User);
    let mut browser = app.browser();
    for (i, name) in ["ann", "ben", "cat"].iter().enumerate() {
        let token = browser.get("/login").csrf_token();
        let ip = format!("10.0.0.{i}");
        let page = browser.post_with(
            "/login",
            &[
                ("username", name),
                ("password", "wrong password!"),
                ("csrf_token", &token),
            ],
            &[("X-Real-IP", &ip), ("X-Forwarded-For", &ip)],
        );
        let expected = if i < 2 {
            Status::Unauthorized
        } else {
            Status::TooManyRequests
        };
        assert_eq!(page.status, expected, "attempt {i}");
    }
}

fn admin_app() -> (TestApp, i64) {
    let app = TestApp::new();
    app.create_user("root", Role::Admin);
    let alice = app.create_user("alice", Role::User);
    (app, alice)
}

#[test]
fn admin_pages_and_actions_are_for_admins_only() {
    let (app, alice) = admin_app();
    let mut user = app.browser();
    user.login("alice", PASSWORD, false);
    let mut anonymous = app.browser();
    let posts = [
        format!("/admin/users/{alice}/revoke-all"),
        format!("/admin/users/{alice}/role"),
        format!("/admin/users/{alice}/disable"),
        format!("/admin/users/{alice}/enable"),
        format!("/admin/users/{alice}/sessions/{}/revoke", sid_of(&user)),
    ];
    for path in ["/admin".to_owned(), format!("/admin/users/{alice}")] {
        assert_eq!(user.get(&path).status, Status::Forbidden, "{path}");
        let page = anonymous.get(&path);
        assert_eq!(page.status, Status::SeeOther, "{path}");
        assert!(page.location.unwrap().starts_with("/login?next="));
    }
    for path in &posts {
        let page = user.post_signed(path, &[("role", "admin")]);
        assert_eq!(page.status, Status::Forbidden, "{path}");
        let page = anonymous.post(path, &[("csrf_token", "x"), ("role", "admin")]);
        assert_eq!(page.status, Status::SeeOther, "{path}");
    }
    assert_eq!(
        user.get("/profile").status,
        Status::Ok,
        "nothing happened to alice"
    );
    assert!(user.get("/profile").body.contains("<dd>user</dd>"));
}

#[test]
fn admins_see_users_events_and_the_picture() {
    let (app, alice) = admin_app();
    let mut admin = app.browser();
    admin.login("root", PASSWORD, false);
    app.browser().login("alice", "wrong password!", false);
    let page = admin.get("/admin");
    assert_eq!(page.status, Status::Ok);
    assert!(page.body.contains(&format!("/admin/users/{alice}")));
    assert!(page.body.contains("<svg class=\"chart\""));
    assert!(
        page.body.contains("Failed sign-ins: <strong>1</strong>"),
        "the numbers in text too"
    );
    assert!(page.body.contains("login_failed"));
    let detail = admin.get(&format!("/admin/users/{alice}"));
    assert_eq!(detail.status, Status::Ok);
    assert!(detail.body.contains("Failed sign-in attempt"));
    assert_eq!(admin.get("/admin/users/999999").status, Status::NotFound);
    assert_eq!(
        admin.get("/admin/users/not-a-number").status,
        Status::NotFound
    );
    assert_eq!(admin.get("/admin?users=-3&events=abc").status, Status::Ok);
}

#[test]
fn admins_end_sessions_one_or_all() {
    let (app, alice) = admin_app();
    let mut admin = app.browser();
    admin.login("root", PASSWORD, false);
    let mut first = app.browser();
    first.login("alice", PASSWORD, false);
    let mut second = app.browser();
    second.login("alice", PASSWORD, false);

    let page = admin.post_signed(
        &format!("/admin/users/{alice}/sessions/{}/revoke", sid_of(&first)),
        &[],
    );
    assert_eq!(page.status, Status::SeeOther);
    assert_eq!(page.location, Some(format!("/admin/users/{alice}")));
    assert_eq!(first.get("/profile").status, Status::SeeOther);
    assert_eq!(second.get("/profile").status, Status::Ok);
    let own = sid_of(&admin);
    let page = admin.post_signed(&format!("/admin/users/{alice}/sessions/{own}/revoke"), &[]);
    assert_eq!(
        page.status,
        Status::NotFound,
        "the admin's own session is not alice's"
    );

    admin.post_signed(&format!("/admin/users/{alice}/revoke-all"), &[]);
    assert_eq!(second.get("/profile").status, Status::SeeOther);
    assert_eq!(admin.get("/profile").status, Status::Ok);
    let events = admin.get(&format!("/admin/users/{alice}")).body;
    assert!(events.contains("by admin root"));
}

#[test]
fn disabling_ends_sessions_and_refuses_logins_until_enabled() {
    let (app, alice) = admin_app();
    let mut admin = app.browser();
    admin.login("root", PASSWORD, false);
    let mut user = app.browser();
    user.login("alice", PASSWORD, false);

    assert_eq!(
        admin
            .post_signed(&format!("/admin/users/{alice}/disable"), &[])
            .status,
        Status::SeeOther
    );
    assert_eq!(user.get("/profile").status, Status::SeeOther);
    assert_eq!(
        app.browser().login("alice", PASSWORD, false).status,
        Status::Forbidden
    );
    assert!(admin.get("/admin").body.contains("disabled"));

    assert_eq!(
        admin
            .post_signed(&format!("/admin/users/{alice}/enable"), &[])
            .status,
        Status::SeeOther
    );
    assert_eq!(
        app.browser().login("alice", PASSWORD, false).status,
        Status::SeeOther
    );
    assert_eq!(app.events_of_kind("user_disabled"), 1);
    assert_eq!(app.events_of_kind("user_enabled"), 1);
}

#[test]
fn a_role_change_applies_at_once() {
    let (app, alice) = admin_app();
    let mut admin = app.browser();
    admin.login("root", PASSWORD, false);
    let mut user = app.browser();
    user.login("alice", PASSWORD, false);
    assert_eq!(user.get("/admin").status, Status::Forbidden);

    let page = admin.post_signed(&format!("/admin/users/{alice}/role"), &[("role", "admin")]);
    assert_eq!(page.status, Status::SeeOther);
    assert_eq!(
        user.get("/admin").status,
        Status::Ok,
        "no need to wait for the access token to expire"
    );

    admin.post_signed(&format!("/admin/users/{alice}/role"), &[("role", "user")]);
    assert_eq!(user.get("/admin").status, Status::Forbidden);
    assert_eq!(app.events_of_kind("role_changed"), 2);
    let page = admin.post_signed(
        &format!("/admin/users/{alice}/role"),
        &[("role", "superuser")],
    );
    assert_eq!(page.status, Status::UnprocessableEntity);
}

#[test]
fn the_last_active_admin_can_be_neither_demoted_nor_disabled() {
    let (app, _) = admin_app();
    let mut admin = app.browser();
    admin.login("root", PASSWORD, false);
    let root = 2; // the bootstrap admin is 1 and counts while it is active: disable it first.
    let page = admin.post_signed("/admin/users/1/disable", &[]);
    assert_eq!(page.status, Status::SeeOther);
    let page = admin.post_signed(&format!("/admin/users/{root}/disable"), &[]);
    assert_eq!(page.status, Status::Conflict);
    assert!(page.body.contains("last active admin"));
    let page = admin.post_signed(&format!("/admin/users/{root}/role"), &[("role", "user")]);
    assert_eq!(page.status, Status::Conflict);
    assert_eq!(admin.get("/admin").status, Status::Ok, "still an admin");
    // With a second active admin, the first may step down.
    admin.post_signed("/admin/users/1/enable", &[]);
    let page = admin.post_signed(&format!("/admin/users/{root}/role"), &[("role", "user")]);
    assert_eq!(page.status, Status::SeeOther);
    assert_eq!(admin.get("/admin").status, Status::Forbidden);
}

#[test]
fn reuse_detection_is_explained_at_the_next_sign_in() {
    let app = TestApp::new();
    app.create_user("alice", Role::User);
    let mut phone = app.browser();
    phone.user_agent = IPHONE.into();
    phone.login("alice", PASSWORD, false);
    let stolen = phone.cookie(REFRESH).unwrap();
    app.clock.advance(ACCESS_TTL + 6);
    phone.get("/profile");
    app.clock.advance(REUSE_GRACE + 1);
    let mut thief = app.browser();
    thief.cookies.insert(REFRESH.into(), stolen);
    thief.get("/profile");

    let mut laptop = app.browser();
    laptop.login("alice", PASSWORD, false);
    let profile = laptop.get("/profile");
    assert!(
        profile
            .body
            .contains("Your session on <strong>Safari on iPhone</strong> was ended"),
        "{}",
        profile.body
    );
    assert!(profile.body.contains("refresh_token_reuse"));
    let mut later = app.browser();
    later.login("alice", PASSWORD, false);
    assert!(
        !later.get("/profile").body.contains("was ended because"),
        "only at the next sign-in"
    );
}

#[test]
fn pages_render_with_many_sessions_and_users() {
    let app = TestApp::new();
    app.create_user("root", Role::Admin);
    app.create_user("alice", Role::User);
    let mut browser = app.browser();
    let page = browser.get("/sessions");
    assert_eq!(page.status, Status::SeeOther, "0 sessions: not signed in");
    browser.login("alice", PASSWORD, false);
    assert_eq!(browser.get("/sessions").status, Status::Ok);
    for _ in 0..49 {
        app.browser().login("alice", PASSWORD, false);
    }
    let page = browser.get("/sessions");
    assert_eq!(page.status, Status::Ok);
    assert_eq!(page.body.matches("<li class=\"session").count(), 50);
    assert_eq!(browser.get("/profile").status, Status::Ok);

    for i in 0..197 {
        app.create_user(&format!("user{i:03}"), Role::User);
    }
    let mut admin = app.browser();
    admin.login("root", PASSWORD, false);
    let page = admin.get("/admin");
    assert_eq!(page.status, Status::Ok);
    assert!(page.body.contains("Page 1 of 4"));
    assert!(
        admin
            .get("/admin?users=4&events=2")
            .body
            .contains("Page 4 of 4")
    );
}

//! Sign-in, sign-up, sign-out, CSRF, redirects, cookies and headers through Rocket's local client.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::too_many_lines)]

mod common;

use common::*;
use doorman::auth::roles::Role;
use rocket::http::{SameSite, Status};
use serde_json::json;

#[test]
fn login_sets_hardened_cookies_and_redirects_to_profile() {
    let app = TestApp::new();
    app.create_user("alice", Role::User);
    let mut browser = app.browser();
    let page = browser.login("alice", PASSWORD, false);
    assert_eq!(page.status, Status::SeeOther);
    assert_eq!(page.location.as_deref(), Some("/profile"));
    for name in [ACCESS, REFRESH] {
        let cookie = page.cookie(name).unwrap_or_else(|| panic!("{name} set"));
        assert_eq!(cookie.http_only(), Some(true), "{name}");
        assert_eq!(cookie.secure(), Some(true), "{name}");
        assert_eq!(cookie.same_site(), Some(SameSite::Lax), "{name}");
        assert_eq!(cookie.path(), Some("/"), "{name}");
        assert_eq!(cookie.domain(), None, "{name}");
    }
    assert_eq!(
        page.cookie(REFRESH).unwrap().max_age(),
        None,
        "browser-session cookie"
    );
    assert_eq!(page.header("Cache-Control"), Some("no-store"));

    let profile = browser.get("/profile");
    assert_eq!(profile.status, Status::Ok);
    assert!(profile.body.contains("alice"));
    assert!(profile.body.contains("login_succeeded"));
}

#[test]
fn the_profile_shows_a_new_event_at_once() {
    let app = TestApp::new();
    app.create_user("alice", Role::User);
    let mut browser = app.browser();
    browser.login("alice", PASSWORD, false);
    let first = browser.get("/profile");
    assert!(!first.body.contains("login_failed"));
    assert_eq!(
        browser.get("/profile").body,
        first.body,
        "the same page for the same token"
    );

    // Someone else tries alice's account with a wrong password.
    let mut stranger = app.browser();
    assert_eq!(
        stranger.login("alice", "wrong password!!", false).status,
        Status::Unauthorized
    );
    let second = browser.get("/profile");
    assert!(second.body.contains("login_failed"), "{}", second.body);
}

#[test]
fn remember_me_makes_the_refresh_cookie_outlive_the_browser() {
    let app = TestApp::new();
    app.create_user("alice", Role::User);
    let mut browser = app.browser();
    let page = browser.login("alice", PASSWORD, true);
    let max_age = page.cookie(REFRESH).unwrap().max_age().expect("Max-Age");
    assert_eq!(max_age.whole_seconds(), REFRESH_TTL);

    // A rotation keeps the kind of lifetime the cookie had.
    app.clock.advance(ACCESS_TTL + 10);
    let page = browser.get("/profile");
    assert_eq!(page.status, Status::Ok);
    let max_age = page
        .cookie(REFRESH)
        .unwrap()
        .max_age()
        .expect("Max-Age kept");
    assert_eq!(max_age.whole_seconds(), REFRESH_TTL);
}

#[test]
fn insecure_cookie_mode_drops_prefix_and_secure_flag() {
    let app = TestApp::with(json!({ "cookie_secure": false }));
    app.create_user("alice", Role::User);
    let mut browser = app.browser();
    let page = browser.login("alice", PASSWORD, false);
    assert_eq!(page.status, Status::SeeOther);
    for name in ["doorman_access", "doorman_refresh"] {
        let cookie = page.cookie(name).unwrap_or_else(|| panic!("{name} set"));
        assert_ne!(cookie.secure(), Some(true), "{name}");
        assert_eq!(cookie.http_only(), Some(true), "{name}");
    }
    assert!(page.cookie(ACCESS).is_none());
    assert_eq!(browser.get("/profile").status, Status::Ok);
}

#[test]
fn unknown_user_and_wrong_password_get_the_same_answer() {
    let app = TestApp::new();
    app.create_user("alice", Role::User);
    let mut browser = app.browser();
    let wrong = browser.login("alice", "not the password at all", false);
    let unknown = browser.login("nobody", "not the password at all", false);
    assert_eq!(wrong.status, Status::Unauthorized);
    assert_eq!(unknown.status, Status::Unauthorized);
    assert_eq!(
        wrong.body.replace("alice", "NAME"),
        unknown.body.replace("nobody", "NAME"),
        "same page, but for the username kept in the form"
    );
    assert!(wrong.body.contains("value=\"alice\""), "username kept");
    assert!(wrong.cookie(ACCESS).is_none() && unknown.cookie(ACCESS).is_none());
    assert_eq!(app.events_of_kind("login_failed"), 2);
}

#[test]
fn disabled_account_gets_403_only_with_the_right_password() {
    use diesel::prelude::*;
    use doorman::db::schema::users;
    let app = TestApp::new();
    let id = app.create_user("alice", Role::User);
    diesel::update(users::table.find(id))
        .set(users::disabled.eq(true))
        .execute(&mut *app.conn())
        .unwrap();
    let mut browser = app.browser();
    let right = browser.login("alice", PASSWORD, false);
    assert_eq!(right.status, Status::Forbidden);
    assert!(right.body.contains("disabled"));
    assert!(right.cookie(ACCESS).is_none());
    assert_eq!(
        browser.login("alice", "wrong password here", false).status,
        Status::Unauthorized
    );
}

#[test]
fn login_requires_a_csrf_token_bound_to_the_browser() {
    let app = TestApp::new();
    app.create_user("alice", Role::User);
    let mut browser = app.browser();
    browser.get("/login");
    // Missing, empty or malformed: 403 before anything else about the form is judged.
    let missing = browser.post("/login", &[("username", "alice"), ("password", PASSWORD)]);
    assert_eq!(
        missing.status,
        Status::Forbidden,
        "a form without the field"
    );
    let empty = browser.post(
        "/login",
        &[
            ("username", "alice"),
            ("password", PASSWORD),
            ("csrf_token", ""),
        ],
    );
    assert_eq!(empty.status, Status::Forbidden, "an empty token");
    assert_eq!(
        browser.post("/login", &[]).status,
        Status::Forbidden,
        "an empty form"
    );
    let json = browser.post_raw("/login", rocket::http::ContentType::JSON, "{}");
    assert_eq!(json.status, Status::Forbidden, "another content type");
    let multipart = browser.post_raw(
        "/login",
        rocket::http::ContentType::new("multipart", "form-data").with_params(("boundary", "X")),
        "--X\r\nContent-Disposition: form-data; name=\"username\"\r\n\r\nalice\r\n--X--\r\n",
    );
    assert_eq!(
        multipart.status,
        Status::Forbidden,
        "multipart without a token"
    );
    // With a valid token, a malformed rest of the form is 422.
    let token = browser.get("/login").csrf_token();
    let incomplete = browser.post("/login", &[("username", "alice"), ("csrf_token", &token)]);
    assert_eq!(incomplete.status, Status::UnprocessableEntity);
    let forged = browser.post(
        "/login",
        &[
            ("username", "alice"),
            ("password", PASSWORD),
            ("csrf_token", "forged"),
        ],
    );
    assert_eq!(forged.status, Status::Forbidden);

    // A token from another browser is bound to that browser's cookie.
    let mut other = app.browser();
    let foreign = other.get("/login").csrf_token();
    let page = browser.post(
        "/login",
        &[
            ("username", "alice"),
            ("password", PASSWORD),
            ("csrf_token", &foreign),
        ],
    );
    assert_eq!(page.status, Status::Forbidden);
    assert_eq!(app.count("sessions"), 0);
}

#[test]
fn cross_site_posts_are_refused_even_with_a_valid_token() {
    let app = TestApp::new();
    app.create_user("alice", Role::User);
    let mut browser = app.browser();
    let token = browser.get("/login").csrf_token();
    let fields = [
        ("username", "alice"),
        ("password", PASSWORD),
        ("csrf_token", token.as_str()),
    ];
    let page = browser.post_with("/login", &fields, &[("Sec-Fetch-Site", "cross-site")]);
    assert_eq!(page.status, Status::Forbidden);
    let page = browser.post_with(
        "/login",
        &fields,
        &[
            ("Origin", "https://evil.example"),
            ("Host", "doorman.example"),
        ],
    );
    assert_eq!(page.status, Status::Forbidden);
    let page = browser.post_with(
        "/login",
        &fields,
        &[
            ("Origin", "https://doorman.example"),
            ("Host", "doorman.example"),
            ("Sec-Fetch-Site", "same-origin"),
        ],
    );
    assert_eq!(page.status, Status::SeeOther);

    // Signed in, a cross-site sign-out is refused and the session stays.
    let csrf = browser.session_csrf();
    let page = browser.post_with(
        "/logout",
        &[("csrf_token", &csrf)],
        &[("Sec-Fetch-Site", "cross-site")],
    );
    assert_eq!(page.status, Status::Forbidden);
    assert_eq!(browser.get("/profile").status, Status::Ok);
}

#[test]
fn session_forms_refuse_tokens_of_other_sessions() {
    let app = TestApp::new();
    app.create_user("alice", Role::User);
    let mut first = app.browser();
    first.login("alice", PASSWORD, false);
    let mut second = app.browser();
    second.login("alice", PASSWORD, false);
    let foreign = second.session_csrf();
    let page = first.post("/logout", &[("csrf_token", &foreign)]);
    assert_eq!(page.status, Status::Forbidden);
    assert_eq!(first.get("/profile").status, Status::Ok);
    let own = first.session_csrf();
    assert_eq!(
        first.post("/logout", &[("csrf_token", &own)]).status,
        Status::SeeOther
    );
}

#[test]
fn anonymous_users_are_sent_to_login_and_back() {
    let app = TestApp::new();
    app.create_user("alice", Role::User);
    let mut browser = app.browser();
    let page = browser.get("/profile?tab=events");
    assert_eq!(page.status, Status::SeeOther);
    assert_eq!(
        page.location.as_deref(),
        Some("/login?next=%2Fprofile%3Ftab%3Devents")
    );

    let form = browser.get("/login?next=%2Fprofile%3Ftab%3Devents");
    assert_eq!(
        hidden_value(&form.body, "next").as_deref(),
        Some("/profile?tab=events")
    );
    let token = form.csrf_token();
    let page = browser.post(
        "/login",
        &[
            ("username", "alice"),
            ("password", PASSWORD),
            ("csrf_token", &token),
            ("next", "/profile?tab=events"),
        ],
    );
    assert_eq!(page.location.as_deref(), Some("/profile?tab=events"));
}

#[test]
fn next_never_leaves_the_site() {
    let app = TestApp::new();
    app.create_user("alice", Role::User);
    for hostile in [
        "//evil.example/x",
        "https://evil.example/",
        "/\\evil.example",
        "javascript:alert(1)",
        "/\t/evil.example",
    ] {
        let mut browser = app.browser();
        let token = browser.get("/login").csrf_token();
        let page = browser.post(
            "/login",
            &[
                ("username", "alice"),
                ("password", PASSWORD),
                ("csrf_token", &token),
                ("next", hostile),
            ],
        );
        assert_eq!(page.status, Status::SeeOther, "{hostile}");
        assert_eq!(page.location.as_deref(), Some("/profile"), "{hostile}");
        let form = browser.get(&format!("/login?next={}", urlencode(hostile)));
        assert_eq!(form.status, Status::SeeOther, "signed in: straight on");
        assert_eq!(form.location.as_deref(), Some("/profile"), "{hostile}");
    }
}

#[test]
fn signup_creates_a_user_and_signs_in() {
    let app = TestApp::new();
    let mut browser = app.browser();
    let token = browser.get("/signup").csrf_token();
    let page = browser.post(
        "/signup",
        &[
            ("username", "Bob.Smith"),
            ("password", PASSWORD),
            ("password_confirm", PASSWORD),
            ("csrf_token", &token),
        ],
    );
    assert_eq!(page.status, Status::SeeOther);
    assert_eq!(page.location.as_deref(), Some("/profile"));
    let profile = browser.get("/profile");
    assert!(profile.body.contains("Bob.Smith"));
    assert!(profile.body.contains("your account is ready"));

    // Names are unique regardless of case.
    let mut other = app.browser();
    let token = other.get("/signup").csrf_token();
    let page = other.post(
        "/signup",
        &[
            ("username", "bob.smith"),
            ("password", PASSWORD),
            ("password_confirm", PASSWORD),
            ("csrf_token", &token),
        ],
    );
    assert_eq!(page.status, Status::UnprocessableEntity);
    assert!(page.body.contains("This username is taken."));
}

#[test]
fn signup_explains_each_bad_field() {
    let app = TestApp::new();
    let mut browser = app.browser();
    let token = browser.get("/signup").csrf_token();
    let page = browser.post(
        "/signup",
        &[
            ("username", "a b"),
            ("password", "short"),
            ("password_confirm", "short"),
            ("csrf_token", &token),
        ],
    );
    assert_eq!(page.status, Status::UnprocessableEntity);
    assert!(page.body.contains("Use only letters"));
    assert!(page.body.contains("at least 12 characters"));
    let long = "ü".repeat(300);
    let page = browser.post(
        "/signup",
        &[
            ("username", "carol"),
            ("password", &long),
            ("password_confirm", &long),
            ("csrf_token", &token),
        ],
    );
    assert_eq!(page.status, Status::UnprocessableEntity);
    assert!(page.body.contains("at most 256 characters"));
    let page = browser.post(
        "/signup",
        &[
            ("username", "carol"),
            ("password", PASSWORD),
            ("password_confirm", "something else entirely"),
            ("csrf_token", &token),
        ],
    );
    assert!(page.body.contains("The two passwords differ."));
    assert_eq!(app.count("users"), 1, "only the admin");
}

#[test]
fn long_unicode_passwords_count_in_full() {
    let app = TestApp::new();
    let mut browser = app.browser();
    let password = format!("{}A", "пароль".repeat(10)); // 121 bytes
    let token = browser.get("/signup").csrf_token();
    browser.post(
        "/signup",
        &[
            ("username", "dmitri"),
            ("password", &password),
            ("password_confirm", &password),
            ("csrf_token", &token),
        ],
    );
    let mut other = app.browser();
    let differs_after_72 = format!("{}B", "пароль".repeat(10));
    assert_eq!(
        other.login("dmitri", &differs_after_72, false).status,
        Status::Unauthorized
    );
    assert_eq!(
        other.login("dmitri", &password, false).status,
        Status::SeeOther
    );
}

#[test]
fn signup_can_be_closed() {
    let app = TestApp::with(json!({ "signup": false }));
    let mut browser = app.browser();
    assert_eq!(browser.get("/signup").status, Status::NotFound);
    let token = browser.get("/login").csrf_token();
    let page = browser.post(
        "/signup",
        &[
            ("username", "mallory"),
            ("password", PASSWORD),
            ("password_confirm", PASSWORD),
            ("csrf_token", &token),
        ],
    );
    assert_eq!(page.status, Status::NotFound);
    assert_eq!(app.count("users"), 1);
}

#[test]
fn logout_ends_the_session_and_clears_cookies() {
    let app = TestApp::new();
    app.create_user("alice", Role::User);
    let mut browser = app.browser();
    browser.login("alice", PASSWORD, false);
    let refresh = browser.cookie(REFRESH).unwrap();
    let csrf = browser.session_csrf();
    let page = browser.post("/logout", &[("csrf_token", &csrf)]);
    assert_eq!(page.status, Status::SeeOther);
    assert_eq!(page.location.as_deref(), Some("/login"));
    assert!(browser.cookie(ACCESS).is_none() && browser.cookie(REFRESH).is_none());
    let removal = page.cookie(REFRESH).unwrap();
    assert_eq!(
        removal.secure(),
        Some(true),
        "__Host- removals must be Secure too"
    );
    assert!(browser.get("/login").body.contains("You have signed out."));
    assert_eq!(app.sessions()[0].1.as_deref(), Some("logout"));
    assert_eq!(app.events_of_kind("logout"), 1);

    // The old refresh token is dead.
    browser.cookies.insert(REFRESH.into(), refresh);
    assert_eq!(browser.get("/profile").status, Status::SeeOther);
}

#[test]
fn every_login_starts_a_new_session() {
    let app = TestApp::new();
    app.create_user("alice", Role::User);
    let mut browser = app.browser();
    browser.login("alice", PASSWORD, false);
    let first = browser.cookie(REFRESH);
    browser.cookies.remove(ACCESS);
    browser.cookies.remove(REFRESH);
    browser.login("alice", PASSWORD, false);
    assert_ne!(browser.cookie(REFRESH), first);
    assert_eq!(app.sessions().len(), 2);
}

#[test]
fn pages_send_security_headers() {
    let app = TestApp::new();
    app.create_user("alice", Role::User);
    let mut browser = app.browser();
    for path in ["/", "/login", "/signup", "/nowhere"] {
        let page = browser.get(path);
        let csp = page.header("Content-Security-Policy").unwrap_or_default();
        for directive in [
            "default-src 'self'",
            "frame-ancestors 'none'",
            "object-src 'none'",
            "base-uri 'none'",
        ] {
            assert!(csp.contains(directive), "{path}: {csp}");
        }
        assert_eq!(
            page.header("X-Content-Type-Options"),
            Some("nosniff"),
            "{path}"
        );
        assert_eq!(
            page.header("Referrer-Policy"),
            Some("same-origin"),
            "{path}"
        );
    }
    browser.login("alice", PASSWORD, false);
    for path in ["/", "/profile", "/nowhere"] {
        assert_eq!(
            browser.get(path).header("Cache-Control"),
            Some("no-store"),
            "{path}"
        );
    }
    let css = browser.get("/static/style.css");
    assert_eq!(css.status, Status::Ok);
    assert!(css.set_cookies.is_empty());
}

#[rocket::get("/admin-only")]
fn admin_only(admin: doorman::http::guards::Admin) -> String {
    format!("hello admin {}", admin.0.user_id())
}

#[test]
fn admin_guard_lets_only_admins_in() {
    let dir = tempfile::tempdir().unwrap();
    let clock = doorman::clock::ManualClock::starting_now();
    let database_url = backend::database_url(dir.path());
    let rocket =
        app_on(&dir, &database_url, json!({}), &clock).mount("/", rocket::routes![admin_only]);
    let client = rocket::local::blocking::Client::untracked(rocket).unwrap();
    let app = TestApp {
        client,
        clock,
        dir,
        database_url,
    };
    app.create_user("root", Role::Admin);
    app.create_user("alice", Role::User);

    let mut anonymous = app.browser();
    let page = anonymous.get("/admin-only");
    assert_eq!(page.status, Status::SeeOther);
    assert_eq!(page.location.as_deref(), Some("/login?next=%2Fadmin-only"));

    let mut user = app.browser();
    user.login("alice", PASSWORD, false);
    let page = user.get("/admin-only");
    assert_eq!(page.status, Status::Forbidden);
    assert!(page.body.contains("You do not have access"));

    let mut admin = app.browser();
    admin.login("root", PASSWORD, false);
    let page = admin.get("/admin-only");
    assert_eq!(page.status, Status::Ok);
    assert!(page.body.starts_with("hello admin"));
}

#[test]
fn healthz_reports_the_database() {
    let app = TestApp::new();
    let response = app.client.get("/healthz").dispatch();
    assert_eq!(response.status(), Status::Ok);
    assert_eq!(
        response.into_string().as_deref(),
        Some(r#"{"status":"ok"}"#)
    );
}

#[test]
fn a_bad_setting_stops_the_start_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let clock = doorman::clock::ManualClock::starting_now();
    for (key, value) in [
        ("access_ttl", json!("soon")),
        ("bcrypt_cost", json!(99)),
        ("refresh_ttl", json!("7x")),
    ] {
        let rocket = app(&dir, json!({ key: value }), &clock);
        let err = rocket::local::blocking::Client::untracked(rocket).err();
        assert!(
            err.is_some_and(|e| e.kind().to_string().contains("fairing")),
            "{key} = {value} must stop the start"
        );
    }
}

#[test]
fn a_short_configured_secret_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("short-secret");
    std::fs::write(&key, doorman::crypto::b64(&[7u8; 16])).unwrap();
    let clock = doorman::clock::ManualClock::starting_now();
    let rocket = app(&dir, json!({ "jwt_key_file": key }), &clock);
    let err = rocket::local::blocking::Client::untracked(rocket).err();
    assert!(err.is_some_and(|e| e.kind().to_string().contains("fairing")));
}

#[test]
fn a_database_that_cannot_be_opened_stops_the_start_without_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let clock = doorman::clock::ManualClock::starting_now();
    let url = if backend::postgres_server().is_some() {
        // Nothing listens on port 1.
        "postgres://postgres@127.0.0.1:1/none".to_owned()
    } else {
        let file = dir.path().join("garbage.sqlite3");
        std::fs::write(&file, b"this is not a database").unwrap();
        file.to_string_lossy().into_owned()
    };
    let rocket = app_on(&dir, &url, json!({ "database_timeout": 1 }), &clock);
    let err = rocket::local::blocking::Client::untracked(rocket).err();
    assert!(err.is_some_and(|e| e.kind().to_string().contains("fairing")));
}

#[test]
fn first_start_keeps_its_secrets_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("fresh");
    let clock = doorman::clock::ManualClock::starting_now();
    let client =
        rocket::local::blocking::Client::untracked(app(&dir, json!({ "data_dir": data }), &clock))
            .unwrap();
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&data.join("jwt-secret")), 0o600);
    assert_eq!(mode(&data), 0o700);
    let secret = std::fs::read_to_string(data.join("jwt-secret")).unwrap();
    assert_eq!(doorman::crypto::b64_decode_any(&secret).unwrap().len(), 32);
    drop(client);
}

/// Two visitors' copies of a page rendered once: equal but for each one's CSRF token, with no
/// slot left unfilled.
fn same_page_but_for_the_token(a: &Page, b: &Page) {
    assert_eq!(
        a.body.replace(&a.csrf_token(), "T"),
        b.body.replace(&b.csrf_token(), "T"),
        "the same page but for the token"
    );
    assert!(!a.body.contains("@@"), "no slot left in the page");
}

/// The home page is rendered once per kind of visitor: each signed-in browser gets its own
/// session's token in the sign-out form, and only admins the admin link.
#[test]
fn signed_in_pages_rendered_once_carry_each_sessions_own_token() {
    let app = TestApp::new();
    app.create_user("alice", Role::User);
    app.create_user("bob", Role::User);
    app.create_user("carol", Role::Admin);
    let signed_in = |name: &str| {
        let mut browser = app.browser();
        assert_eq!(
            browser.login(name, PASSWORD, false).status,
            Status::SeeOther
        );
        browser
    };
    let (mut alice, mut bob, mut carol) =
        (signed_in("alice"), signed_in("bob"), signed_in("carol"));
    let (a, b, c) = (alice.get("/"), bob.get("/"), carol.get("/"));
    assert_eq!(a.csrf_token(), alice.session_csrf());
    assert_eq!(b.csrf_token(), bob.session_csrf());
    assert_eq!(c.csrf_token(), carol.session_csrf());
    assert_ne!(a.csrf_token(), b.csrf_token());
    same_page_but_for_the_token(&a, &b);
    assert!(!a.body.contains("/admin") && c.body.contains("/admin"));
    assert!(!a.body.contains("Sign in") && app.browser().get("/").body.contains("Sign in"));
    let csrf = alice.session_csrf();
    assert_eq!(
        alice.post("/logout", &[("csrf_token", &csrf)]).status,
        Status::SeeOther,
        "the token on the page rendered once works"
    );
}

#[test]
fn pages_rendered_once_carry_each_browsers_own_token() {
    let app = TestApp::new();
    app.create_user("alice", Role::User);
    let (mut first, mut second) = (app.browser(), app.browser());
    let (a, b) = (first.get("/login"), second.get("/login"));
    assert_ne!(a.csrf_token(), b.csrf_token());
    same_page_but_for_the_token(&a, &b);
    assert!(a.header("Content-Type").unwrap().starts_with("text/html"));
    // Each token works for its own browser only.
    let token = b.csrf_token();
    let crossed = first.post(
        "/login",
        &[
            ("username", "alice"),
            ("password", PASSWORD),
            ("csrf_token", &token),
        ],
    );
    assert_eq!(crossed.status, Status::Forbidden);
    assert_eq!(
        first.login("alice", PASSWORD, false).status,
        Status::SeeOther
    );
    // A one-time message is never served from the page rendered once.
    let csrf = first.session_csrf();
    first.post("/logout", &[("csrf_token", &csrf)]);
    let after = first.get("/login");
    assert!(after.body.contains("notice"), "{}", after.body);
    assert!(!first.get("/login").body.contains("notice"));
    assert!(app.browser().get("/").body.contains("Sign in"));
}

//! Silent refresh, rotation, reuse detection, lifetimes, restarts and forged tokens, through
//! Rocket's local client with a manual clock.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::too_many_lines)]

mod common;

use common::*;
use doorman::auth::roles::Role;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rocket::http::Status;
use serde_json::{Value, json};

fn signed_in(app: &TestApp, remember: bool) -> Browser<'_> {
    app.create_user("alice", Role::User);
    let mut browser = app.browser();
    assert_eq!(
        browser.login("alice", PASSWORD, remember).status,
        Status::SeeOther
    );
    browser
}

fn only_session(app: &TestApp) -> String {
    let sessions = app.sessions();
    assert_eq!(sessions.len(), 1);
    sessions[0].0.clone()
}

#[test]
fn expired_access_token_is_refreshed_silently() {
    let app = TestApp::new();
    let mut browser = signed_in(&app, false);
    let (access, refresh) = (browser.cookie(ACCESS), browser.cookie(REFRESH));

    app.clock.advance(ACCESS_TTL + 6);
    let page = browser.get("/profile");
    assert_eq!(page.status, Status::Ok, "no redirect, no extra round trip");
    assert!(page.body.contains("alice"));
    assert_ne!(browser.cookie(ACCESS), access, "new access token");
    assert_ne!(browser.cookie(REFRESH), refresh, "rotated refresh token");
    assert_eq!(page.header("Cache-Control"), Some("no-store"));
    assert_eq!(app.live_tokens(&only_session(&app)), 1);

    // The new access token serves on its own, without another rotation.
    let tokens_before = app.count("refresh_tokens");
    assert_eq!(browser.get("/profile").status, Status::Ok);
    assert_eq!(app.count("refresh_tokens"), tokens_before);
}

#[test]
fn a_token_verified_before_still_expires() {
    let app = TestApp::new();
    let mut browser = signed_in(&app, false);
    let access = browser.cookie(ACCESS);
    for _ in 0..2 {
        assert_eq!(browser.get("/profile").status, Status::Ok);
    }
    assert_eq!(browser.cookie(ACCESS), access, "verified, not renewed");

    app.clock.advance(ACCESS_TTL + 6);
    assert_eq!(browser.get("/profile").status, Status::Ok);
    assert_ne!(
        browser.cookie(ACCESS),
        access,
        "the remembered token expired all the same"
    );
}

#[test]
fn missing_access_cookie_is_refreshed_too() {
    let app = TestApp::new();
    let mut browser = signed_in(&app, false);
    browser.cookies.remove(ACCESS);
    assert_eq!(browser.get("/profile").status, Status::Ok);
    assert!(browser.cookie(ACCESS).is_some());
}

#[test]
fn racing_tabs_within_the_grace_get_the_same_successor() {
    let app = TestApp::new();
    let mut browser = signed_in(&app, false);
    let old = browser.cookie(REFRESH).unwrap();
    app.clock.advance(ACCESS_TTL + 6);
    browser.cookies.remove(ACCESS);

    let mut answers = Vec::new();
    for _ in 0..3 {
        let mut tab = app.browser();
        tab.cookies.insert(REFRESH.into(), old.clone());
        let page = tab.get("/profile");
        assert_eq!(page.status, Status::Ok);
        answers.push(tab.cookie(REFRESH).unwrap());
        app.clock.advance(2);
    }
    assert!(
        answers.iter().all(|a| *a == answers[0]),
        "one successor: {answers:?}"
    );
    assert_ne!(answers[0], old);
    let sid = only_session(&app);
    assert_eq!(app.live_tokens(&sid), 1, "no branching");
    assert_eq!(app.sessions()[0].1, None, "nothing revoked");
    assert_eq!(app.events_of_kind("refresh_token_reuse"), 0);
}

#[test]
fn reuse_after_the_grace_revokes_the_whole_family() {
    let app = TestApp::new();
    let mut browser = signed_in(&app, false);
    let stolen = browser.cookie(REFRESH).unwrap();
    app.clock.advance(ACCESS_TTL + 6);
    assert_eq!(browser.get("/profile").status, Status::Ok);
    let current = browser.cookie(REFRESH).unwrap();

    app.clock.advance(REUSE_GRACE + 1);
    let mut thief = app.browser();
    thief.cookies.insert(REFRESH.into(), stolen);
    let page = thief.get("/profile");
    assert_eq!(page.status, Status::SeeOther, "the thief gets nothing");
    assert!(thief.cookie(REFRESH).is_none(), "cookies cleared");
    assert_eq!(app.sessions()[0].1.as_deref(), Some("refresh_token_reuse"));
    assert_eq!(app.events_of_kind("refresh_token_reuse"), 1);

    // The legitimate holder of the live token is signed out as well, once its access expires.
    app.clock.advance(ACCESS_TTL + 6);
    assert_eq!(browser.cookie(REFRESH).as_deref(), Some(current.as_str()));
    assert_eq!(browser.get("/profile").status, Status::SeeOther);
}

#[test]
fn an_older_ancestor_is_reuse_at_once() {
    let app = TestApp::new();
    let mut browser = signed_in(&app, false);
    let first = browser.cookie(REFRESH).unwrap();
    app.clock.advance(ACCESS_TTL + 6);
    browser.get("/profile");
    app.clock.advance(ACCESS_TTL + 6);
    browser.get("/profile");
    // `first` is now two rotations old; even within seconds of the last use it is theft.
    let mut thief = app.browser();
    thief.cookies.insert(REFRESH.into(), first);
    assert_eq!(thief.get("/profile").status, Status::SeeOther);
    assert_eq!(app.sessions()[0].1.as_deref(), Some("refresh_token_reuse"));
}

#[test]
fn inactivity_ends_the_session() {
    let app = TestApp::new();
    let mut browser = signed_in(&app, true);
    app.clock.advance(REFRESH_TTL + 1);
    let page = browser.get("/profile");
    assert_eq!(page.status, Status::SeeOther);
    assert!(browser.cookie(REFRESH).is_none());
    assert_eq!(app.sessions()[0].1.as_deref(), Some("inactive"));
}

#[test]
fn use_keeps_a_session_alive_until_its_absolute_end() {
    let app = TestApp::new();
    let mut browser = signed_in(&app, true);
    let step = REFRESH_TTL - 60;
    let mut elapsed = 0;
    while elapsed + step < SESSION_MAX_AGE {
        app.clock.advance(step);
        elapsed += step;
        assert_eq!(browser.get("/profile").status, Status::Ok, "at {elapsed}s");
    }
    app.clock.advance(SESSION_MAX_AGE - elapsed);
    assert_eq!(browser.get("/profile").status, Status::SeeOther);
    assert_eq!(app.sessions()[0].1.as_deref(), Some("expired"));
}

#[test]
fn access_tokens_never_outlive_their_session() {
    let app =
        TestApp::with(json!({ "access_ttl": 600, "session_max_age": 900, "refresh_ttl": 900 }));
    let mut browser = signed_in(&app, false);
    app.clock.advance(606);
    assert_eq!(browser.get("/profile").status, Status::Ok);
    let access = browser.cookie(ACCESS).unwrap();
    let claims: Value = jsonwebtoken::dangerous::insecure_decode::<Value>(&access)
        .unwrap()
        .claims;
    let session_end = claims["iat"].as_i64().unwrap() - 606 + 900;
    assert_eq!(claims["exp"].as_i64().unwrap(), session_end);
}

#[test]
fn a_restart_keeps_everyone_signed_in() {
    let app = TestApp::new();
    app.create_user("alice", Role::User);
    let cookies = {
        let mut browser = app.browser();
        browser.login("alice", PASSWORD, true);
        browser.cookies.clone()
    };
    let app = app.restart(json!({}));
    let mut browser = app.browser();
    browser.cookies = cookies;
    assert_eq!(
        browser.get("/profile").status,
        Status::Ok,
        "access token still verifies"
    );
    app.clock.advance(ACCESS_TTL + 6);
    assert_eq!(
        browser.get("/profile").status,
        Status::Ok,
        "refresh still rotates"
    );
    assert_eq!(app.count("users"), 2, "no second admin on restart");
}

/// A token signed with the instance's own secret, from hand-written header and claims.
struct Forger {
    secret: Vec<u8>,
    kid: String,
    claims: Value,
}

impl Forger {
    fn new(app: &TestApp, browser: &Browser<'_>) -> Forger {
        let text = std::fs::read_to_string(app.dir.path().join("jwt-secret")).unwrap();
        let secret = doorman::crypto::b64_decode_any(&text).unwrap();
        let access = browser.cookie(ACCESS).unwrap();
        let kid = jsonwebtoken::decode_header(&access).unwrap().kid.unwrap();
        let claims = jsonwebtoken::dangerous::insecure_decode::<Value>(&access)
            .unwrap()
            .claims;
        Forger {
            secret,
            kid,
            claims,
        }
    }

    fn header(&self) -> Header {
        let mut header = Header::new(Algorithm::HS256);
        header.typ = Some("at+jwt".into());
        header.kid = Some(self.kid.clone());
        header
    }

    fn sign(header: &Header, claims: &Value, secret: &[u8]) -> String {
        jsonwebtoken::encode(header, claims, &EncodingKey::from_secret(secret)).unwrap()
    }

    fn with_claims(&self, change: impl FnOnce(&mut serde_json::Map<String, Value>)) -> String {
        let mut claims = self.claims.clone();
        change(claims.as_object_mut().unwrap());
        Self::sign(&self.header(), &claims, &self.secret)
    }

    fn with_header(&self, change: impl FnOnce(&mut Header)) -> String {
        let mut header = self.header();
        change(&mut header);
        Self::sign(&header, &self.claims, &self.secret)
    }
}

fn b64(json: &Value) -> String {
    doorman::crypto::b64url(json.to_string().as_bytes())
}

#[test]
fn forged_access_tokens_count_as_no_token() {
    let app = TestApp::new();
    let browser = signed_in(&app, false);
    let forger = Forger::new(&app, &browser);
    let genuine = browser.cookie(ACCESS).unwrap();
    let now = app.clock.now_secs();
    let mut parts = genuine.split('.');
    let (header_part, _, signature) = (
        parts.next().unwrap(),
        parts.next().unwrap(),
        parts.next().unwrap(),
    );

    let mut admin_claims = forger.claims.clone();
    admin_claims["role"] = json!("admin");
    let alg_none_header = json!({"alg": "none", "typ": "at+jwt", "kid": forger.kid});
    let mut forged: Vec<(&str, String)> = vec![
        (
            "alg none",
            format!("{}.{}.", b64(&alg_none_header), b64(&forger.claims)),
        ),
        (
            "alg NONE",
            format!(
                "{}.{}.",
                b64(&json!({"alg": "NONE", "typ": "at+jwt"})),
                b64(&forger.claims)
            ),
        ),
        (
            "tampered payload",
            format!("{header_part}.{}.{signature}", b64(&admin_claims)),
        ),
        (
            "wrong key",
            Forger::sign(&forger.header(), &forger.claims, &[9u8; 32]),
        ),
        (
            "wrong iss",
            forger.with_claims(|c| {
                c.insert("iss".into(), json!("someone-else"));
            }),
        ),
        (
            "wrong aud",
            forger.with_claims(|c| {
                c.insert("aud".into(), json!("another-app"));
            }),
        ),
        (
            "aud list",
            forger.with_claims(|c| {
                c.insert("aud".into(), json!(["doorman", "x"]));
            }),
        ),
        (
            "future nbf",
            forger.with_claims(|c| {
                c.insert("nbf".into(), json!(now + 3600));
            }),
        ),
        (
            "exp as string",
            forger.with_claims(|c| {
                c.insert("exp".into(), json!((now + 60).to_string()));
            }),
        ),
        (
            "expired",
            forger.with_claims(|c| {
                c.insert("exp".into(), json!(now - 60));
            }),
        ),
        (
            "typ JWT",
            forger.with_header(|h| h.typ = Some("JWT".into())),
        ),
        ("no typ", forger.with_header(|h| h.typ = None)),
        (
            "unknown kid",
            forger.with_header(|h| h.kid = Some("../../etc/passwd".into())),
        ),
        ("no kid", forger.with_header(|h| h.kid = None)),
        (
            "jku header",
            forger.with_header(|h| h.jku = Some("https://evil.example/jwks".into())),
        ),
        ("HS512", forger.with_header(|h| h.alg = Algorithm::HS512)),
        ("junk", "junk".into()),
        ("three junk parts", "a.b.c".into()),
        ("empty", String::new()),
        ("oversized", "x".repeat(8000)),
    ];
    for claim in [
        "iss", "aud", "sub", "sid", "role", "iat", "nbf", "exp", "jti",
    ] {
        forged.push((
            "missing claim",
            forger.with_claims(|c| {
                c.remove(claim);
            }),
        ));
    }

    // The control: the forger's genuine-looking token works, so the refusals below mean something.
    let mut control = app.browser();
    control
        .cookies
        .insert(ACCESS.into(), forger.with_claims(|_| {}));
    assert_eq!(control.get("/profile").status, Status::Ok);

    for (what, token) in forged {
        let mut attacker = app.browser();
        attacker.cookies.insert(ACCESS.into(), token);
        let page = attacker.get("/profile");
        assert_eq!(page.status, Status::SeeOther, "{what} must be anonymous");
        assert!(
            attacker.cookie(ACCESS).is_none(),
            "{what}: the bad cookie is cleared"
        );
    }
}

#[test]
fn a_forged_access_cookie_beside_a_valid_refresh_cookie_is_replaced() {
    let app = TestApp::new();
    app.create_user("root", Role::Admin);
    let mut browser = signed_in(&app, false);
    let forger = Forger::new(&app, &browser);
    let tampered = {
        let genuine = browser.cookie(ACCESS).unwrap();
        let mut admin_claims = forger.claims.clone();
        admin_claims["role"] = json!("admin");
        let parts: Vec<&str> = genuine.split('.').collect();
        format!("{}.{}.{}", parts[0], b64(&admin_claims), parts[2])
    };
    browser.cookies.insert(ACCESS.into(), tampered);
    let page = browser.get("/profile");
    assert_eq!(page.status, Status::Ok, "refreshed from the refresh cookie");
    let claims: Value =
        jsonwebtoken::dangerous::insecure_decode::<Value>(&browser.cookie(ACCESS).unwrap())
            .unwrap()
            .claims;
    assert_eq!(
        claims["role"],
        json!("user"),
        "the forged claims were not granted"
    );
}

#[test]
fn junk_cookies_and_bodies_get_4xx_and_change_nothing() {
    let app = TestApp::new();
    let mut browser = signed_in(&app, false);
    let before = ["users", "sessions", "refresh_tokens", "security_events"].map(|t| app.count(t));

    let mut junk = app.browser();
    junk.cookies.insert(ACCESS.into(), "%%%\u{1}".into());
    junk.cookies.insert(REFRESH.into(), "x".repeat(5000));
    junk.cookies.insert(CSRF.into(), "\"quoted\"".into());
    assert_eq!(junk.get("/profile").status, Status::SeeOther);
    assert_eq!(junk.get("/").status, Status::Ok);

    let mut anonymous = app.browser();
    let token = anonymous.get("/login").csrf_token();
    let huge = "a".repeat(64 * 1024);
    let page = anonymous.post(
        "/login",
        &[
            ("username", "alice"),
            ("password", &huge),
            ("csrf_token", &token),
        ],
    );
    assert_eq!(page.status, Status::PayloadTooLarge);
    // Every content type has the limit: a large multipart body is refused before any hashing.
    let body = format!(
        "--X\r\nContent-Disposition: form-data; name=\"password\"\r\n\r\n{}\r\n--X--\r\n",
        "a".repeat(1024 * 1024)
    );
    let multipart =
        rocket::http::ContentType::new("multipart", "form-data").with_params(("boundary", "X"));
    let page = anonymous.post_raw("/login", multipart, &body);
    assert_eq!(page.status, Status::PayloadTooLarge);
    assert_eq!(app.events_of_kind("login_failed"), 0);

    let response = app
        .client
        .post("/login")
        .header(rocket::http::ContentType::Form)
        .body(&b"username=%FF%FE&password=\xff\xfe&csrf_token=x"[..])
        .dispatch();
    assert!(
        response.status().class().is_client_error(),
        "{}",
        response.status()
    );

    let response = app
        .client
        .post("/signup")
        .header(rocket::http::ContentType::JSON)
        .body("{\"username\": 1}")
        .dispatch();
    assert!(
        response.status().class().is_client_error(),
        "{}",
        response.status()
    );

    for path in [
        "/profile/%00",
        "/login?next=%FF",
        "/static/../Cargo.toml",
        "/%2e%2e/%2e%2e/etc/passwd",
    ] {
        for who in [&mut browser, &mut anonymous] {
            let status = who.get(path).status;
            assert!(status.code < 500, "{path}: {status}");
        }
    }
    let after = ["users", "sessions", "refresh_tokens", "security_events"].map(|t| app.count(t));
    assert_eq!(before, after);
}

#[test]
fn a_refresh_answered_by_an_error_page_still_delivers_its_cookies() {
    let app = TestApp::new();
    let mut browser = signed_in(&app, false);
    let before = browser.cookie(REFRESH);
    app.clock.advance(ACCESS_TTL + 6);
    let page = browser.get("/no-such-page");
    assert_eq!(page.status, Status::NotFound);
    assert!(
        page.cookie(REFRESH).is_some(),
        "the rotated token reaches the client"
    );
    assert_ne!(browser.cookie(REFRESH), before);

    // Long after the grace, the browser's token is the live one: no false theft alarm.
    app.clock.advance(REUSE_GRACE + ACCESS_TTL + 6);
    assert_eq!(browser.get("/profile").status, Status::Ok);
    assert_eq!(app.events_of_kind("refresh_token_reuse"), 0);
}

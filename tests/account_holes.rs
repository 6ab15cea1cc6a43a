//! The account layer after an attacker's review, one test per rule, through Rocket's local
//! client and the rules' own functions: wrong codes past a right password, hoarded device
//! tokens, half-done logins and reset links after account changes, mail limits, unverified
//! addresses, resets nobody can block, `amr` after `/sudo`, anonymous passkey starts, encrypted
//! authenticator secrets, ceremonies bound to their browser, IPv6 clients by their /64. The
//! same rules under simultaneous requests on two instances are in `limits_concurrency.rs`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::too_many_lines)]

mod common;

use std::net::SocketAddr;

use common::*;
use diesel::prelude::*;
use doorman::auth::keys::ServerSecret;
use doorman::auth::roles::Role;
use doorman::core::accounts::PasswordChange;
use doorman::core::client::ClientInfo;
use doorman::core::email::{self, AddressChange, EmailPolicy};
use doorman::core::owner::Owner;
use doorman::core::second_factors::{self, Confirmed};
use doorman::core::throttle::ThrottlePolicy;
use doorman::db::schema;
use rocket::http::{ContentType, Header, Status};
use serde_json::{Value, json};

const WRONG: &str = "not the password at all";
const POLICY: EmailPolicy = EmailPolicy {
    link_ttl: 1800,
    new_device_notice: true,
};
const THROTTLE: ThrottlePolicy = ThrottlePolicy {
    max_failures: 5,
    window: 900,
    max_signups: 10,
};

fn client(ip: &str) -> ClientInfo {
    ClientInfo {
        ip: ip.into(),
        user_agent: "test".into(),
    }
}

fn secret(app: &TestApp) -> ServerSecret {
    app.client
        .rocket()
        .state::<ServerSecret>()
        .cloned()
        .unwrap()
}

/// A JSON POST to the API from `ip`: the status and the body.
fn api_from(app: &TestApp, ip: &str, path: &str, body: Value) -> (Status, Value) {
    let remote: SocketAddr = if ip.contains(':') {
        format!("[{ip}]:4000")
    } else {
        format!("{ip}:4000")
    }
    .parse()
    .unwrap();
    let response = app
        .client
        .post(path.to_owned())
        .remote(remote)
        .header(ContentType::JSON)
        .body(body.to_string())
        .dispatch();
    let status = response.status();
    let body =
        serde_json::from_str(&response.into_string().unwrap_or_default()).unwrap_or(Value::Null);
    (status, body)
}

fn owner(user_id: i64) -> Owner {
    Owner {
        user_id,
        sid: String::new(),
        client: client("127.0.0.1"),
    }
}

/// Turns on the authenticator app of `user_id` as enrolment does; returns its base32 key. The
/// clock moves past the confirming code's step.
fn authenticator(app: &TestApp, user_id: i64) -> String {
    let (secret, now) = (secret(app), app.clock.now_secs());
    let server = secret.clone();
    let key = write(app.db(), move |tx| {
        let user = doorman::db::users::find(tx, user_id)?.unwrap();
        Ok(second_factors::start_enrolment(tx, &server, &user)?.secret)
    });
    let code = totp_code(&key, now);
    let confirmed = write(app.db(), move |tx| {
        let user = doorman::db::users::find(tx, user_id)?.unwrap();
        second_factors::confirm_enrolment(tx, &secret, &user, &owner(user_id), &code, now)
    });
    assert!(matches!(confirmed, Confirmed::On(_)));
    app.clock.advance(30);
    key
}

/// The password step through the API from `ip`: the `mfa_token`.
fn mfa_token(app: &TestApp, ip: &str) -> String {
    let (status, body) = api_from(
        app,
        ip,
        "/api/auth/login",
        json!({"username": "alice", "password": PASSWORD}),
    );
    assert_eq!(status, Status::Unauthorized, "{body}");
    body["mfa_token"].as_str().unwrap().to_owned()
}

fn second_step(app: &TestApp, ip: &str, token: &str, code: &str) -> Status {
    api_from(
        app,
        ip,
        "/api/auth/mfa",
        json!({"mfa_token": token, "code": code}),
    )
    .0
}

fn set_verified_address(app: &TestApp, user_id: i64, address: &str) {
    let (address, now) = (address.to_owned(), app.clock.now_secs());
    write(app.db(), move |tx| {
        diesel::update(schema::users::table.find(user_id))
            .set((
                schema::users::email.eq(&address),
                schema::users::email_key.eq(address.to_lowercase()),
                schema::users::email_verified_at.eq(now),
            ))
            .execute(&mut **tx)
            .map(drop)
    });
}

/// An app whose mail never leaves (its SMTP server refuses connections): the outbox keeps each
/// mail's nonce, so the test can make the link the mail would carry.
fn app_keeping_mail() -> TestApp {
    TestApp::with(json!({ "smtp_url": "smtp://127.0.0.1:9" }))
}

/// The token of the newest mail of `template` in the outbox.
fn newest_link(app: &TestApp, template: &str) -> String {
    newest_link_to(app, template, "%")
}

/// The token of the newest mail of `template` to a recipient like `to`.
fn newest_link_to(app: &TestApp, template: &str, to: &str) -> String {
    let context: String = schema::outbox::table
        .filter(schema::outbox::template.eq(template))
        .filter(schema::outbox::recipient.like(to))
        .order(schema::outbox::id.desc())
        .select(schema::outbox::context)
        .first(&mut *app.conn())
        .unwrap();
    let context: Value = serde_json::from_str(&context).unwrap();
    email::link_token(&secret(app), context["link"]["nonce"].as_str().unwrap()).unwrap()
}

fn mails(app: &TestApp, template: &str, to: &str) -> i64 {
    schema::outbox::table
        .filter(schema::outbox::template.eq(template))
        .filter(schema::outbox::recipient.eq(to))
        .count()
        .get_result(&mut *app.conn())
        .unwrap()
}

fn pending_logins(app: &TestApp) -> i64 {
    schema::pending_logins::table
        .count()
        .get_result(&mut *app.conn())
        .unwrap()
}

/// Rule 1: password logins interleaved with wrong codes, from several addresses, check at
/// most `login_max_failures` codes per account and window.
#[test]
fn a_right_password_never_forgives_wrong_codes() {
    let app = TestApp::new();
    let alice = app.create_user("alice", Role::User);
    let key = authenticator(&app, alice);
    let mut statuses = Vec::new();
    for i in 0..12 {
        let ip = format!("127.0.0.{}", 10 + i % 4);
        let token = mfa_token(&app, &ip);
        statuses.push(second_step(&app, &ip, &token, "000000"));
    }
    assert_eq!(app.events_of_kind("mfa_failed"), 5, "{statuses:?}");
    assert!(statuses[5..].iter().all(|s| *s == Status::TooManyRequests));
    // Past the limit the right code is refused too, before it is checked.
    let token = mfa_token(&app, "127.0.0.99");
    let code = totp_code(&key, app.clock.now_secs());
    assert_eq!(
        second_step(&app, "127.0.0.99", &token, &code),
        Status::TooManyRequests
    );
    // Once the window has passed, a right code finishes the login and forgives the codes.
    app.clock.advance(901);
    let token = mfa_token(&app, "127.0.0.99");
    let code = totp_code(&key, app.clock.now_secs());
    assert_eq!(second_step(&app, "127.0.0.99", &token, &code), Status::Ok);
}

fn device_tokens(app: &TestApp, n: usize) -> Vec<String> {
    (0..n)
        .map(|_| {
            let (status, body) = api_post(
                app,
                "/api/auth/login",
                json!({"username": "alice", "password": PASSWORD}),
            );
            assert_eq!(status, Status::Ok, "{body}");
            body["device_token"].as_str().unwrap().to_owned()
        })
        .collect()
}

fn wrong_with(app: &TestApp, device_token: Option<&str>) -> Status {
    let mut body = json!({"username": "alice", "password": WRONG});
    if let Some(token) = device_token {
        body["device_token"] = json!(token);
    }
    api_post(app, "/api/auth/login", body).0
}

/// Rule 2, first half: a password change (and each change like it) turns every device token
/// issued before it into an unknown client's.
#[test]
fn device_tokens_from_before_a_password_change_exempt_nothing() {
    let app = TestApp::new();
    let alice = app.create_user("alice", Role::User);
    let hoard = device_tokens(&app, 3);
    new_password(&app, alice);
    let statuses: Vec<Status> = hoard
        .iter()
        .flat_map(|token| (0..3).map(|_| wrong_with(&app, Some(token))))
        .collect();
    assert_eq!(app.events_of_kind("login_failed"), 5, "{statuses:?}");
    assert_eq!(statuses[5..], [Status::TooManyRequests; 4]);
}

/// The browser that changed the password stays a known device: it gets a token of the new
/// epoch, so its next sign-in is no new device.
#[test]
fn the_browser_that_changes_the_password_stays_known() {
    let app = TestApp::new();
    app.create_user("alice", Role::User);
    let mut browser = app.browser();
    assert_eq!(
        browser.login("alice", PASSWORD, false).status,
        Status::SeeOther
    );
    let before = browser.cookie(DEVICE).unwrap();
    let page = browser.post_signed(
        "/password",
        &[
            ("current_password", PASSWORD),
            ("new_password", "a brand new password"),
        ],
    );
    assert_eq!(page.status, Status::SeeOther, "{}", page.body);
    let after = browser.cookie(DEVICE).unwrap();
    assert_ne!(before, after);
    let new_devices = app.events_of_kind("new_device_login");
    browser.post_signed("/logout", &[]);
    assert_eq!(
        browser.login("alice", "a brand new password", false).status,
        Status::SeeOther
    );
    assert_eq!(app.events_of_kind("new_device_login"), new_devices);
}

/// Rule 2, second half: however many current device tokens one holds, the wrong passwords
/// checked per account and window stay below 3 × `login_max_failures`.
#[test]
fn many_device_tokens_stay_under_a_ceiling() {
    let app = TestApp::new();
    app.create_user("alice", Role::User);
    let hoard = device_tokens(&app, 12);
    for token in &hoard {
        for _ in 0..2 {
            wrong_with(&app, Some(token));
        }
    }
    for _ in 0..6 {
        wrong_with(&app, None);
    }
    let checked = app.events_of_kind("login_failed");
    assert!(checked < 15, "{checked} wrong passwords checked");
    assert_eq!(checked, 14, "9 from the devices, 5 from unknown clients");
}

fn new_password(app: &TestApp, user_id: i64) {
    let hash = doorman::core::passwords::hash_blocking(PASSWORD, 4).unwrap();
    let now = app.clock.now_secs();
    write(app.db(), move |tx| {
        let at = client("127.0.0.1");
        let change = PasswordChange {
            user_id,
            hash: &hash,
            keep: None,
            client: &at,
            detail: None,
        };
        change.apply(tx, now).map(drop)
    });
}

fn set_disabled(app: &TestApp, user_id: i64, disabled: bool) {
    let now = app.clock.now_secs();
    let actor = doorman::core::admin::Actor {
        name: "root".into(),
        client: client("127.0.0.1"),
    };
    app.db()
        .write_blocking(move |tx| {
            doorman::core::admin::set_disabled(tx, now, user_id, disabled, &actor)
                .map_err(|_| doorman::db::DbError::Unavailable("refused".into()))
        })
        .unwrap();
}

/// An account change; it hands back the authenticator app's new key when it made one.
type Change = Box<dyn Fn(&TestApp) -> Option<String>>;

/// Rule 3: a half-done login ends with a password change or reset, a new or no authenticator
/// app, and a disable; a right code cannot finish it afterwards.
#[test]
fn a_half_done_login_ends_with_account_changes() {
    let app = app_keeping_mail();
    let alice = app.create_user("alice", Role::User);
    app.create_user("root", Role::Admin);
    set_verified_address(&app, alice, "alice@example.test");
    let mut key = authenticator(&app, alice);
    let changes: Vec<(&str, Change)> = vec![
        (
            "password change",
            Box::new(move |app| {
                new_password(app, alice);
                None
            }),
        ),
        (
            "password reset",
            Box::new(move |app| {
                request_reset(app, "alice", "127.0.0.1").unwrap();
                assert!(reset_with(app, newest_link(app, "password_reset")));
                None
            }),
        ),
        (
            "disable",
            Box::new(move |app| {
                set_disabled(app, alice, true);
                set_disabled(app, alice, false);
                None
            }),
        ),
        (
            "new authenticator app",
            Box::new(move |app| {
                app.clock.advance(30);
                Some(authenticator(app, alice))
            }),
        ),
        (
            "authenticator app off",
            Box::new(move |app| {
                let now = app.clock.now_secs();
                write(app.db(), move |tx| {
                    second_factors::disable(tx, &owner(alice), now)
                });
                None
            }),
        ),
    ];
    for (name, change) in &changes {
        let token = mfa_token(&app, "127.0.0.1");
        assert_eq!(pending_logins(&app), 1, "{name}");
        let code = totp_code(&key, app.clock.now_secs());
        if let Some(new_key) = change(&app) {
            key = new_key;
        }
        assert_eq!(pending_logins(&app), 0, "{name}: the half-done login ended");
        let code = if *name == "new authenticator app" {
            totp_code(&key, app.clock.now_secs())
        } else {
            code
        };
        assert_eq!(
            second_step(&app, "127.0.0.1", &token, &code),
            Status::Unauthorized,
            "{name}"
        );
        app.clock.advance(30);
    }
}

fn request_reset(app: &TestApp, login: &str, ip: &str) -> Result<(), i64> {
    let (secret, now, login, ip) = (
        secret(app),
        app.clock.now_secs(),
        login.to_owned(),
        ip.to_owned(),
    );
    write(app.db(), move |tx| {
        email::request_reset(tx, &secret, POLICY, &THROTTLE, &login, &client(&ip), now)
    })
}

fn reset_with(app: &TestApp, token: String) -> bool {
    let hash = doorman::core::passwords::hash_blocking(PASSWORD, 4).unwrap();
    let now = app.clock.now_secs();
    write(app.db(), move |tx| {
        email::reset_password(tx, &token, &hash, &client("127.0.0.1"), now)
    })
}

fn change_address(app: &TestApp, user_id: i64, address: &str) -> Result<(), email::AddressError> {
    let (secret, now, address) = (secret(app), app.clock.now_secs(), address.to_owned());
    write(app.db(), move |tx| {
        let user = doorman::db::users::find(tx, user_id)?.unwrap();
        let at = client("127.0.0.1");
        let change = AddressChange {
            user: &user,
            session_id: None,
            client: &at,
            limits: Some(THROTTLE),
        };
        email::set_address(tx, &secret, POLICY, &change, &address, now)
    })
}

/// Rule 4: a reset link dies with an address change and a password change, and resets only
/// while the address it was mailed to is still the account's verified one.
#[test]
fn reset_links_die_with_address_and_password_changes() {
    let app = app_keeping_mail();
    let alice = app.create_user("alice", Role::User);
    set_verified_address(&app, alice, "alice@example.test");

    request_reset(&app, "alice", "127.0.0.1").unwrap();
    let token = newest_link(&app, "password_reset");
    change_address(&app, alice, "alice@elsewhere.test").unwrap();
    assert!(!reset_with(&app, token), "an address change");

    set_verified_address(&app, alice, "alice@example.test");
    request_reset(&app, "alice", "127.0.0.1").unwrap();
    let token = newest_link(&app, "password_reset");
    new_password(&app, alice);
    assert!(!reset_with(&app, token), "a password change");

    // The address the link went to lost its verification (set again by hand, unverified).
    request_reset(&app, "alice", "127.0.0.1").unwrap();
    let token = newest_link(&app, "password_reset");
    write(app.db(), move |tx| {
        diesel::update(schema::users::table.find(alice))
            .set(schema::users::email_verified_at.eq(None::<i64>))
            .execute(&mut **tx)
            .map(drop)
    });
    assert!(!reset_with(&app, token), "an unverified address");

    set_verified_address(&app, alice, "alice@example.test");
    request_reset(&app, "alice", "127.0.0.1").unwrap();
    assert!(reset_with(&app, newest_link(&app, "password_reset")));
}

/// Rule 5: address changes are limited per account (429 on the page, with its message), mails
/// per target address, and going back to an address whose link is still good mails nothing.
#[test]
fn mail_cannot_be_used_as_a_weapon() {
    let app = app_keeping_mail();
    app.create_user("alice", Role::User);
    let mut browser = app.browser();
    assert_eq!(
        browser.login("alice", PASSWORD, false).status,
        Status::SeeOther
    );
    let mut statuses = Vec::new();
    for i in 0..7 {
        let address = format!("victim{i}@example.test");
        let page = browser.post_signed("/security/email", &[("email", &address)]);
        if page.status == Status::TooManyRequests {
            assert!(page.header("Retry-After").is_some());
            assert!(
                page.body.contains("Too many address changes"),
                "{}",
                page.body
            );
        }
        statuses.push(page.status);
    }
    assert_eq!(statuses[..5], [Status::SeeOther; 5], "{statuses:?}");
    assert_eq!(statuses[5..], [Status::TooManyRequests; 2], "{statuses:?}");

    // Verification mails to one address, whoever asks: at most the limit.
    let target = "target@example.test";
    for i in 0..8 {
        let user = app.create_user(&format!("mallory{i}"), Role::User);
        let _ = change_address(&app, user, target);
    }
    assert_eq!(mails(&app, "verify_address", target), 5);

    // Back to an address whose link is still good: that link serves, no new mail.
    let bob = app.create_user("bob", Role::User);
    change_address(&app, bob, "bob@example.test").unwrap();
    change_address(&app, bob, "bob@elsewhere.test").unwrap();
    change_address(&app, bob, "bob@example.test").unwrap();
    assert_eq!(mails(&app, "verify_address", "bob@example.test"), 1);
    let link = newest_link_to(&app, "verify_address", "bob@example.test");
    let now = app.clock.now_secs();
    assert!(write(app.db(), move |tx| email::verify(
        tx,
        &link,
        &client("127.0.0.1"),
        now
    )));
}

/// Rule 6: an address another account claimed but never verified stops nobody, and verifying
/// it clears the other claims; a verified one is taken.
#[test]
fn unverified_addresses_do_not_squat() {
    let app = app_keeping_mail();
    let mallory = app.create_user("mallory", Role::User);
    change_address(&app, mallory, "Alice@Example.test").unwrap();

    let mut browser = app.browser();
    let token = browser.get("/signup").csrf_token();
    let page = browser.post(
        "/signup",
        &[
            ("csrf_token", &token),
            ("username", "alice"),
            ("password", PASSWORD),
            ("password_confirm", PASSWORD),
            ("email", "alice@example.test"),
        ],
    );
    assert_eq!(page.status, Status::SeeOther, "{}", page.body);
    let link = newest_link(&app, "verify_address");
    let now = app.clock.now_secs();
    assert!(write(app.db(), move |tx| email::verify(
        tx,
        &link,
        &client("127.0.0.1"),
        now
    )));
    let claim: Option<String> = schema::users::table
        .find(mallory)
        .select(schema::users::email)
        .first(&mut *app.conn())
        .unwrap();
    assert_eq!(claim, None, "the unverified claim is gone");

    let carol = app.create_user("carol", Role::User);
    assert_eq!(
        change_address(&app, carol, "ALICE@example.test"),
        Err(email::AddressError::Taken)
    );
}

/// Rule 7: reset mails are capped per account however it is named, and past the cap the answer
/// stays the same (no 429 for anyone but an address over its own limit).
#[test]
fn nobody_can_block_another_users_reset() {
    let app = app_keeping_mail();
    let alice = app.create_user("alice", Role::User);
    set_verified_address(&app, alice, "alice@example.test");
    for (i, login) in ["alice", "ALICE", "Alice@Example.test", "alice@example.test"]
        .iter()
        .cycle()
        .take(12)
        .enumerate()
    {
        assert_eq!(request_reset(&app, login, &format!("127.0.1.{i}")), Ok(()));
    }
    assert_eq!(mails(&app, "password_reset", "alice@example.test"), 5);
    // The owner, from an address of their own, still gets the same answer.
    assert_eq!(request_reset(&app, "alice", "127.0.2.1"), Ok(()));
    // One address past its own limit is the only one refused.
    for _ in 0..5 {
        assert_eq!(request_reset(&app, "nobody", "127.0.3.1"), Ok(()));
    }
    assert!(request_reset(&app, "alice", "127.0.3.1").is_err());
}

/// Rule 8: after `/sudo` the session's `amr` names that re-authentication.
#[test]
fn amr_tells_the_truth_after_sudo() {
    let app = TestApp::new();
    let alice = app.create_user("alice", Role::User);
    let key = authenticator(&app, alice);
    let mut browser = app.browser();
    assert_eq!(
        browser.login("alice", PASSWORD, false).location.as_deref(),
        Some("/login/verify")
    );
    let token = browser.get("/login/verify").csrf_token();
    let code = totp_code(&key, app.clock.now_secs());
    let page = browser.post("/login/verify", &[("csrf_token", &token), ("code", &code)]);
    assert_eq!(page.status, Status::SeeOther);
    assert_eq!(access_claims(&browser)["amr"], json!(["pwd", "otp", "mfa"]));

    let page = browser.post_signed("/security/totp/disable", &[]);
    assert_eq!(page.status, Status::SeeOther, "{}", page.body);
    app.clock.advance(11 * 60);
    let token = browser.get("/sudo?next=/security").csrf_token();
    let page = browser.post(
        "/sudo",
        &[
            ("csrf_token", &token),
            ("password", PASSWORD),
            ("next", "/security"),
        ],
    );
    assert_eq!(page.status, Status::SeeOther, "{}", page.body);
    assert_eq!(access_claims(&browser)["amr"], json!(["pwd"]));
}

fn passkey_start(app: &TestApp, browser: &mut Browser<'_>) -> (Status, Value, Option<String>) {
    let token = browser.get("/login").csrf_token();
    let cookie = browser.cookie(CSRF).unwrap();
    let response = app
        .client
        .post("/login/passkey/start")
        .header(ContentType::JSON)
        .header(Header::new("X-CSRF-Token", token))
        .cookie(rocket::http::Cookie::new(CSRF, cookie))
        .body("{}")
        .dispatch();
    let status = response.status();
    let retry = response.headers().get_one("Retry-After").map(str::to_owned);
    let body =
        serde_json::from_str(&response.into_string().unwrap_or_default()).unwrap_or(Value::Null);
    (status, body, retry)
}

/// Rule 9: anonymous passkey starts are limited per client address.
#[test]
fn anonymous_passkey_starts_are_bounded() {
    let app = TestApp::with(json!({ "public_url": "http://localhost:8000" }));
    let mut browser = app.browser();
    let statuses: Vec<Status> = (0..12)
        .map(|_| passkey_start(&app, &mut browser).0)
        .collect();
    assert_eq!(statuses[..10], [Status::Ok; 10], "{statuses:?}");
    assert_eq!(statuses[10..], [Status::TooManyRequests; 2], "{statuses:?}");
    let (status, body, retry) = passkey_start(&app, &mut browser);
    assert_eq!(status, Status::TooManyRequests);
    assert_eq!(body["code"], "too_many_attempts");
    assert!(retry.is_some());
    let ceremonies: i64 = schema::webauthn_ceremonies::table
        .count()
        .get_result(&mut *app.conn())
        .unwrap();
    assert_eq!(ceremonies, 10);
}

/// Rule 10: the authenticator secret is stored encrypted, and one stored as it was before is
/// encrypted at the next start.
#[test]
fn authenticator_secrets_are_encrypted_at_rest() {
    let app = TestApp::new();
    let alice = app.create_user("alice", Role::User);
    let key = authenticator(&app, alice);
    let raw = totp_rs::Secret::try_from_base32(&key).unwrap();
    let stored = |app: &TestApp| -> Vec<u8> {
        schema::users::table
            .find(alice)
            .select(schema::users::totp_secret)
            .first::<Option<Vec<u8>>>(&mut *app.conn())
            .unwrap()
            .unwrap()
    };
    let sealed = stored(&app);
    assert_eq!(sealed.len(), 1 + 12 + 20 + 16);
    assert!(
        !sealed.windows(20).any(|w| w == raw.as_bytes()),
        "the key is not in the row"
    );
    let token = mfa_token(&app, "127.0.0.1");
    let code = totp_code(&key, app.clock.now_secs());
    assert_eq!(second_step(&app, "127.0.0.1", &token, &code), Status::Ok);
    app.clock.advance(30);

    // A secret stored as it is (an older version) still works, and is encrypted at start.
    let plain = raw.as_bytes().to_vec();
    write(app.db(), move |tx| {
        diesel::update(schema::users::table.find(alice))
            .set(schema::users::totp_secret.eq(plain))
            .execute(&mut **tx)
            .map(drop)
    });
    let app = app.restart(json!({}));
    assert_eq!(stored(&app).len(), 1 + 12 + 20 + 16);
    let token = mfa_token(&app, "127.0.0.1");
    let code = totp_code(&key, app.clock.now_secs());
    assert_eq!(second_step(&app, "127.0.0.1", &token, &code), Status::Ok);
}

/// Rule 10: a passkey ceremony is finished only in the browser that started it.
#[test]
fn a_passkey_ceremony_is_bound_to_its_browser() {
    let app = TestApp::with(json!({ "public_url": "http://localhost:8000" }));
    let mut starter = app.browser();
    let (status, started, _) = passkey_start(&app, &mut starter);
    assert_eq!(status, Status::Ok);
    let answer = forged_assertion(&started["ceremony"]).to_string();
    let finish = |browser: &mut Browser<'_>| {
        let token = browser.get("/login").csrf_token();
        let cookie = browser.cookie(CSRF).unwrap();
        app.client
            .post("/login/passkey/finish")
            .header(ContentType::JSON)
            .header(Header::new("X-CSRF-Token", token))
            .cookie(rocket::http::Cookie::new(CSRF, cookie))
            .body(answer.clone())
            .dispatch()
            .status()
    };
    let mut other = app.browser();
    assert_eq!(finish(&mut other), Status::BadRequest, "another browser");
    // Its own browser finds it (and the made-up answer is refused).
    assert_eq!(finish(&mut starter), Status::Unauthorized);
}

/// Rule 10: IPv6 clients are throttled by their /64.
#[test]
fn ipv6_clients_are_throttled_by_their_64() {
    let app = TestApp::new();
    let statuses: Vec<Status> = (0..7)
        .map(|i| {
            // Another name each time, so only the address counter fills.
            api_from(
                &app,
                &format!("2001:db8:1:2::{:x}", 100 + i),
                "/api/auth/login",
                json!({"username": format!("user{i}"), "password": WRONG}),
            )
            .0
        })
        .collect();
    assert_eq!(statuses[..5], [Status::Unauthorized; 5], "{statuses:?}");
    assert_eq!(statuses[5..], [Status::TooManyRequests; 2], "{statuses:?}");
    // Another /64 is another client.
    let (status, _) = api_from(
        &app,
        "2001:db8:1:3::1",
        "/api/auth/login",
        json!({"username": "user9", "password": WRONG}),
    );
    assert_eq!(status, Status::Unauthorized);
}

/// A login's password is checked between two transactions: an account disabled (or given a
/// new password) in that time is not signed in with what was checked.
#[test]
fn an_account_disabled_while_its_password_is_checked_is_not_signed_in() {
    let dir = tempfile::tempdir().unwrap();
    let clock = doorman::clock::ManualClock::starting_now();
    let url = backend::database_url(dir.path());
    // Slow hashing, so the disable lands while the password is being checked.
    let server = http::Server::start(app_on(&dir, &url, json!({ "bcrypt_cost": 12 }), &clock));
    let hash = doorman::core::passwords::hash_blocking(PASSWORD, 12).unwrap();
    let alice = doorman::core::users::create_user(
        &mut server.db.conn().unwrap(),
        clock.now_secs(),
        "alice",
        &hash,
        Role::User,
    )
    .unwrap()
    .id;
    let base = server.base.clone();
    let login = std::thread::spawn(move || {
        http::agent()
            .post(format!("{base}/api/auth/login"))
            .header("Content-Type", "application/json")
            .send(json!({"username": "alice", "password": PASSWORD}).to_string())
            .unwrap()
            .status()
            .as_u16()
    });
    std::thread::sleep(std::time::Duration::from_millis(100));
    let actor = doorman::core::admin::Actor {
        name: "root".into(),
        client: client("127.0.0.1"),
    };
    let now = clock.now_secs();
    server
        .db
        .write_blocking(move |tx| {
            doorman::core::admin::set_disabled(tx, now, alice, true, &actor)
                .map_err(|_| doorman::db::DbError::Unavailable("refused".into()))
        })
        .unwrap();
    let status = login.join().unwrap();
    assert_ne!(status, 200, "no token pair for a disabled account");
    let open: i64 = schema::sessions::table
        .filter(schema::sessions::user_id.eq(alice))
        .filter(schema::sessions::ended_at.is_null())
        .count()
        .get_result(&mut *server.db.conn().unwrap())
        .unwrap();
    assert_eq!(open, 0);
}

//! Email through a real SMTP server (aiosmtpd delivering to a Maildir, on 127.0.0.1): address
//! verification, password reset, the new-device notice and its "this wasn't me" link, delivery
//! after the server comes back, the same answer for every `/password/forgot`, and the `.eml`
//! outbox without `smtp_url`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::too_many_lines)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use common::smtp::{self, SmtpServer};
use common::*;
use doorman::auth::roles::Role;
use rocket::http::Status;
use serde_json::json;

const WAIT: Duration = Duration::from_secs(20);

fn mail_app(server: &SmtpServer) -> TestApp {
    TestApp::with(json!({ "smtp_url": server.url(), "mail_from": "doorman@example.test" }))
}

/// Signs up through the form with an address.
fn signup(browser: &mut Browser<'_>, name: &str, email: &str) -> Page {
    let form = browser.get("/signup");
    browser.post(
        "/signup",
        &[
            ("csrf_token", &form.csrf_token()),
            ("username", name),
            ("password", PASSWORD),
            ("password_confirm", PASSWORD),
            ("email", email),
        ],
    )
}

/// Follows a mailed link as its reader would: opens the page, presses its button.
fn follow(browser: &mut Browser<'_>, link: &str, extra: &[(&str, &str)]) -> Page {
    let page = browser.get(link);
    assert_eq!(page.status, Status::Ok, "{link}: {}", page.body);
    let action = link.split('?').next().unwrap();
    // The form's own fields (a signed-in page has the sign-out form's token first).
    let form = &page.body[page.body.find(&format!("action=\"{action}\"")).unwrap()..];
    let token = hidden_value(form, "token").unwrap();
    let csrf = hidden_value(form, "csrf_token").unwrap();
    let mut fields = vec![("csrf_token", csrf), ("token", token)];
    fields.extend(extra.iter().map(|(k, v)| ((*k), (*v).to_owned())));
    let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    browser.post(action, &fields)
}

/// Gives `name` a verified address, as following the verification link would.
fn verified(app: &TestApp, server: &SmtpServer, name: &str, address: &str) {
    let mut browser = app.browser();
    browser.login(name, PASSWORD, false);
    let page = browser.post_signed("/security/email", &[("email", address)]);
    assert_eq!(page.location.as_deref(), Some("/security"), "{}", page.body);
    let mail = server.wait_for(WAIT, |m| m.contains(address) && m.contains("/email/verify"));
    let page = browser.get(&smtp::link(&mail, "/email/verify"));
    assert_eq!(page.status, Status::Ok);
}

/// doorman sending to a real SMTP server, and `alice` with a confirmed address; `None` (after
/// saying so) without aiosmtpd.
fn with_alice() -> Option<(tempfile::TempDir, SmtpServer, TestApp)> {
    if !smtp::available() {
        return None;
    }
    let maildir = tempfile::tempdir().unwrap();
    let server = SmtpServer::start(maildir.path());
    let app = mail_app(&server);
    app.create_user("alice", Role::User);
    verified(&app, &server, "alice", "alice@example.test");
    Some((maildir, server, app))
}

#[test]
fn a_new_address_is_verified_by_its_mailed_link() {
    if !smtp::available() {
        return;
    }
    let maildir = tempfile::tempdir().unwrap();
    let server = SmtpServer::start(maildir.path());
    let app = mail_app(&server);
    let mut browser = app.browser();
    let page = signup(&mut browser, "alice", "Alice@Example.test");
    assert_eq!(page.status, Status::SeeOther, "{}", page.body);
    let mail = server.wait_for(WAIT, |m| m.contains("Confirm your email address"));
    assert!(mail.contains("To: Alice@Example.test"), "{mail}");
    assert!(mail.contains("From: doorman@example.test"));
    assert!(mail.contains("text/plain") && mail.contains("text/html"));
    assert!(browser.get("/security").body.contains("not confirmed yet"));

    let link = smtp::link(&mail, "/email/verify");
    let page = browser.get(&link);
    assert_eq!(page.status, Status::Ok);
    assert!(page.body.contains("Your email address is confirmed"));
    assert!(
        browser
            .get("/security")
            .body
            .contains("Alice@Example.test · confirmed")
    );
    assert_eq!(app.events_of_kind("email_verified"), 1);
    assert_eq!(browser.get(&link).status, Status::BadRequest, "single use");

    // The same address, in other letters' case, is another account's.
    let mut other = app.browser();
    let page = signup(&mut other, "bob", "alice@example.TEST");
    assert_eq!(page.status, Status::UnprocessableEntity);
    assert!(page.body.contains("belongs to another account"));
    let mut bob = app.browser();
    assert_eq!(
        bob.login("bob", PASSWORD, false).status,
        Status::Unauthorized,
        "no account without its address"
    );

    // A change tells the old address.
    let page = browser.post_signed("/security/email", &[("email", "alice@new.test")]);
    assert_eq!(page.location.as_deref(), Some("/security"));
    server.wait_for(WAIT, |m| {
        m.contains("To: Alice@Example.test") && m.contains("Your email address was changed")
    });
    server.wait_for(WAIT, |m| m.contains("To: alice@new.test"));
}

#[test]
fn a_reset_link_sets_a_new_password_and_ends_every_session() {
    let Some((_maildir, server, app)) = with_alice() else {
        return;
    };
    let mut signed_in = app.browser();
    signed_in.login("alice", PASSWORD, true);
    // A second factor (a passkey) the reset must leave in force.
    {
        use diesel::prelude::*;
        use doorman::db::schema::passkeys;
        let alice = doorman::db::users::find_by_name(&mut app.conn(), "alice")
            .unwrap()
            .unwrap()
            .id;
        diesel::insert_into(passkeys::table)
            .values((
                passkeys::user_id.eq(alice),
                passkeys::credential_id.eq(vec![7u8]),
                passkeys::name.eq("Phone"),
                passkeys::credential.eq("{}"),
                passkeys::created_at.eq(app.clock.now_secs()),
            ))
            .execute(&mut *app.conn())
            .unwrap();
    }

    let mut forgetful = app.browser();
    let form = forgetful.get("/password/forgot");
    let page = forgetful.post(
        "/password/forgot",
        &[
            ("csrf_token", &form.csrf_token()),
            ("login", "ALICE@example.test"),
        ],
    );
    assert_eq!(page.status, Status::Ok);
    let mail = server.wait_for(WAIT, |m| m.contains("Reset your password"));
    let link = smtp::link(&mail, "/password/reset");
    let page = follow(&mut forgetful, &link, &[("new_password", "short")]);
    assert_eq!(
        page.status,
        Status::UnprocessableEntity,
        "the rules still apply"
    );
    // The form may also be sent to the link itself, the token in its query.
    let csrf = forgetful.get(&link).csrf_token();
    let page = forgetful.post(
        &link,
        &[
            ("csrf_token", &csrf),
            ("new_password", "a brand new password"),
        ],
    );
    assert_eq!(page.location.as_deref(), Some("/login"), "{}", page.body);
    assert_eq!(app.events_of_kind("password_reset"), 1);
    assert_eq!(
        signed_in.get("/profile").status,
        Status::SeeOther,
        "every session ended"
    );
    assert_eq!(
        forgetful.get(&link).status,
        Status::BadRequest,
        "single use"
    );
    let mut fresh = app.browser();
    assert_eq!(
        fresh.login("alice", PASSWORD, false).status,
        Status::Unauthorized
    );
    assert_eq!(
        fresh
            .login("alice", "a brand new password", false)
            .location
            .as_deref(),
        Some("/login/verify"),
        "the second factor stays"
    );
}

#[test]
fn a_new_device_is_told_of_and_the_link_ends_exactly_that_session() {
    let Some((_maildir, server, app)) = with_alice() else {
        return;
    };
    let mut laptop = app.browser();
    laptop.login("alice", PASSWORD, false);
    let mut thief = app.browser();
    thief.user_agent = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X)".into();
    thief.login("alice", PASSWORD, false);

    let mail = server.wait_for(WAIT, |m| m.contains("New sign-in") && m.contains("iPhone"));
    let profile = laptop.get("/profile").body;
    assert!(
        profile.contains("A new device signed in") && profile.contains("on iPhone"),
        "the account's other pages say so too: {profile}"
    );
    assert!(mail.contains("127.0.0.1"), "{mail}");
    // A browser that signed in before brings its device cookie: no second notice for it.
    let mut again = app.browser();
    again
        .cookies
        .insert(DEVICE.into(), laptop.cookie(DEVICE).unwrap());
    assert_eq!(
        again.login("alice", PASSWORD, false).status,
        Status::SeeOther
    );
    std::thread::sleep(Duration::from_millis(300));
    let notices = server
        .mails()
        .iter()
        .filter(|m| m.contains("New sign-in"))
        .count();

    let link = smtp::link(&mail, "/sessions/");
    let mut reader = app.browser();
    let page = follow(&mut reader, &link, &[]);
    assert_eq!(page.location.as_deref(), Some("/password/forgot"));
    assert_eq!(app.events_of_kind("session_reported"), 1);
    assert_eq!(
        thief.get("/profile").status,
        Status::SeeOther,
        "that session ended"
    );
    assert_eq!(
        laptop.get("/profile").status,
        Status::Ok,
        "and only that one"
    );
    assert_eq!(reader.get(&link).status, Status::BadRequest, "single use");
    assert_eq!(
        server
            .mails()
            .iter()
            .filter(|m| m.contains("New sign-in"))
            .count(),
        notices
    );
}

#[test]
fn a_login_succeeds_while_the_mail_server_is_down_and_the_mail_follows() {
    let Some((_maildir, mut server, app)) = with_alice() else {
        return;
    };
    server.stop();
    let mut phone = app.browser();
    phone.user_agent = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X)".into();
    let page = phone.login("alice", PASSWORD, false);
    assert_eq!(page.location.as_deref(), Some("/profile"));
    assert_eq!(phone.get("/profile").status, Status::Ok);
    std::thread::sleep(Duration::from_secs(1));
    server.resume();
    server.wait_for(Duration::from_secs(40), |m| {
        m.contains("New sign-in") && m.contains("iPhone")
    });
}

#[test]
fn forgot_answers_the_same_for_every_login() {
    if !smtp::available() {
        return;
    }
    let maildir = tempfile::tempdir().unwrap();
    let server = SmtpServer::start(maildir.path());
    let app = TestApp::with(json!({ "smtp_url": server.url(), "login_max_failures": 1000 }));
    app.create_user("alice", Role::User);
    verified(&app, &server, "alice", "alice@example.test");
    let mut browser = app.browser();
    let token = browser.get("/password/forgot").csrf_token();
    let mut ask = |login: &str| {
        let started = Instant::now();
        let page = browser.post(
            "/password/forgot",
            &[("csrf_token", &token), ("login", login)],
        );
        (page.status, page.body, started.elapsed())
    };
    let (mut known, mut unknown) = (Vec::new(), Vec::new());
    for _ in 0..15 {
        for (login, times) in [("alice", &mut known), ("nobody", &mut unknown)] {
            let (status, body, took) = ask(login);
            assert_eq!(status, Status::Ok);
            times.push((body, took));
        }
    }
    let (a, b) = (&known[0].0, &unknown[0].0);
    assert_eq!(a, b, "the same page");
    let median = |v: &mut Vec<(String, Duration)>| {
        let mut t: Vec<Duration> = v.iter().map(|x| x.1).collect();
        t.sort();
        t[t.len() / 2]
    };
    let (k, u) = (median(&mut known), median(&mut unknown));
    // Both do the same work but an insert or two: far under what a network shows.
    assert!(k.abs_diff(u) < Duration::from_millis(20), "{k:?} vs {u:?}");
    assert_eq!(ask("ALICE@EXAMPLE.TEST").0, Status::Ok);
}

#[test]
fn without_smtp_url_mail_is_written_as_eml_files() {
    let app = TestApp::new();
    let mut browser = app.browser();
    signup(&mut browser, "alice", "alice@example.test");
    let outbox = app.dir.path().join("outbox");
    let deadline = Instant::now() + WAIT;
    let eml = loop {
        let found = std::fs::read_dir(&outbox).ok().and_then(|mut d| {
            d.find_map(|e| {
                e.ok()
                    .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
            })
        });
        if let Some(entry) = found {
            break entry.path();
        }
        assert!(Instant::now() < deadline, "no .eml in {}", outbox.display());
        std::thread::sleep(Duration::from_millis(100));
    };
    let text = smtp::unfold(&std::fs::read_to_string(&eml).unwrap());
    assert!(text.contains("To: alice@example.test"), "{text}");
    assert!(text.contains("Subject: Confirm your email address"));
    assert!(text.contains("http://127.0.0.1:8000/email/verify?token="));
    assert_eq!(
        std::fs::metadata(&eml).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let page = browser.get(&smtp::link(&text, "/email/verify"));
    assert_eq!(page.status, Status::Ok);
}

/// The `.eml` files written so far, as text.
fn outbox(app: &TestApp) -> Vec<String> {
    std::fs::read_dir(app.dir.path().join("outbox"))
        .map(|d| {
            d.flatten()
                .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
                .filter_map(|e| std::fs::read_to_string(e.path()).ok())
                .map(|t| smtp::unfold(&t))
                .collect()
        })
        .unwrap_or_default()
}

fn wait_outbox(app: &TestApp, wanted: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(mail) = outbox(app).into_iter().find(|m| wanted(m)) {
            return mail;
        }
        assert!(Instant::now() < deadline, "no such mail: {:?}", outbox(app));
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn admins_see_addresses_and_send_reset_links() {
    let app = TestApp::new();
    app.create_user("root", Role::Admin);
    let alice = app.create_user("alice", Role::User);
    let mut user = app.browser();
    user.login("alice", PASSWORD, false);
    let page = user.post_signed("/security/email", &[("email", "alice@example.test")]);
    assert_eq!(page.location.as_deref(), Some("/security"));
    let bad = user.post_signed("/security/email", &[("email", "not an address")]);
    assert_eq!(bad.status, Status::UnprocessableEntity);
    let mail = wait_outbox(&app, |m| m.contains("Confirm your email address"));
    assert_eq!(
        user.get(&smtp::link(&mail, "/email/verify")).status,
        Status::Ok
    );

    let mut admin = app.browser();
    admin.login("root", PASSWORD, false);
    let page = admin.get(&format!("/admin/users/{alice}"));
    assert!(
        page.body.contains("alice@example.test (confirmed)"),
        "{}",
        page.body
    );
    let list = admin.get("/admin").body;
    assert!(
        list.contains("alice@example.test") && !list.contains("not confirmed"),
        "{list}"
    );
    let page = admin.post_signed(&format!("/admin/users/{alice}/send-reset"), &[]);
    assert_eq!(page.location, Some(format!("/admin/users/{alice}")));
    let mail = wait_outbox(&app, |m| m.contains("Reset your password"));
    assert!(mail.contains("To: alice@example.test"));
    assert_eq!(app.events_of_kind("password_reset_requested"), 1);
}

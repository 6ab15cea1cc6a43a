//! A real browser: headless Chromium driven through chromedriver. Signs in through the form,
//! stays signed in past the access token's lifetime, revokes a second browser's session and sees
//! it land on the login page; takes screenshots of every page at desktop and phone widths into
//! `target/screenshots/`. A second test turns on an authenticator app and signs in with its codes.
//!
//! Skipped (with a message) when Chromium or chromedriver is not installed; under CI (`CI` set)
//! their absence is a failure, since `.ci/run` installs them.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::too_many_lines)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::smtp;
use common::*;
use doorman::auth::roles::Role;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::json;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const DESKTOP: (u32, u32) = (1280, 900);
const PHONE: (u32, u32) = (375, 812);

struct Driver {
    child: Child,
    url: String,
}

impl Driver {
    fn start() -> Driver {
        let port = http::free_port();
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        while ureq::get(format!("{url}/status")).call().is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not come up");
            std::thread::sleep(Duration::from_millis(100));
        }
        Driver { child, url }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A browser with its own profile directory (its own cookies).
async fn browser(driver: &Driver, profile: &Path) -> Client {
    let args = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--hide-scrollbars",
    ]
    .map(String::from)
    .into_iter()
    .chain([format!("--user-data-dir={}", profile.display())])
    .collect::<Vec<_>>();
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({ "binary": CHROMIUM, "args": args }),
    );
    ClientBuilder::new(HttpConnector::new())
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .expect("a browser session")
}

async fn sign_in(client: &Client, base: &str, username: &str) {
    submit_password(client, base, username).await;
    arrive(client, "/profile").await;
}

/// Fills the login form and sends it.
async fn submit_password(client: &Client, base: &str, username: &str) {
    client.goto(&format!("{base}/login")).await.unwrap();
    client
        .find(Locator::Css("#username"))
        .await
        .unwrap()
        .send_keys(username)
        .await
        .unwrap();
    client
        .find(Locator::Css("#password"))
        .await
        .unwrap()
        .send_keys(PASSWORD)
        .await
        .unwrap();
    client
        .find(Locator::Css("form[action='/login'] button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

/// Types `text` into the field `css` and presses the button of its form.
async fn fill_and_send(client: &Client, css: &str, text: &str) {
    let field = client.find(Locator::Css(css)).await.unwrap();
    field.send_keys(text).await.unwrap();
    client
        .find(Locator::Css(&format!("form:has({css}) button")))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

async fn press(client: &Client, form_action: &str) {
    client
        .find(Locator::Css(&format!(
            "form[action='{form_action}'] button"
        )))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

async fn path(client: &Client) -> String {
    client.current_url().await.unwrap().path().to_owned()
}

/// Waits (bounded) for the navigation a click started to reach `expected`.
async fn arrive(client: &Client, expected: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let now_at = path(client).await;
        if now_at == expected {
            client
                .wait()
                .for_element(Locator::Css("footer"))
                .await
                .unwrap();
            return;
        }
        assert!(
            Instant::now() < deadline,
            "expected {expected}, still at {now_at}"
        );
        rocket::tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn text(client: &Client) -> String {
    match client.find(Locator::Css("body")).await {
        Ok(body) => body.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    }
}

/// Waits (bounded) until the page shows `needle`: a form's answer has arrived.
async fn shows(client: &Client, needle: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !text(client).await.contains(needle) {
        assert!(
            Instant::now() < deadline,
            "the page never showed {needle:?}"
        );
        rocket::tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("target"),
        PathBuf::from,
    );
    let dir = target.join("screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Screenshots of the page at `path`, at desktop and phone widths, the whole page tall.
async fn shoot(client: &Client, base: &str, path: &str, name: &str) {
    client.goto(&format!("{base}{path}")).await.unwrap();
    shoot_here(client, name).await;
}

/// Screenshots of the page the browser is on (the answer to a form, too).
async fn shoot_here(client: &Client, name: &str) {
    for (label, (width, height)) in [("desktop", DESKTOP), ("phone", PHONE)] {
        client.set_window_size(width, height).await.unwrap();
        let full = client
            .execute("return document.documentElement.scrollHeight", vec![])
            .await
            .ok()
            .and_then(|v| v.as_u64())
            .map_or(height, |h| {
                u32::try_from(h).unwrap_or(height).clamp(height, 4000)
            });
        client.set_window_size(width, full).await.unwrap();
        let png = client.screenshot().await.unwrap();
        std::fs::write(screenshot_dir().join(format!("{name}-{label}.png")), png).unwrap();
        let overflow = client
            .execute(
                "return document.documentElement.scrollWidth > document.documentElement.clientWidth",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(
            overflow,
            json!(false),
            "{name} fits {width}px without sideways scrolling"
        );
    }
    client.set_window_size(DESKTOP.0, DESKTOP.1).await.unwrap();
}

/// Whether Chromium and chromedriver are here; under CI they must be.
fn browsers_installed() -> bool {
    if Path::new(CHROMIUM).exists() && Path::new(CHROMEDRIVER).exists() {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "CI must install chromium and chromium-driver"
    );
    eprintln!("skipping the browser test: {CHROMIUM} or {CHROMEDRIVER} is not installed");
    false
}

/// What a browser test runs in: doorman on 127.0.0.1 with `alice` and `root`, chromedriver,
/// and a folder for the browsers' profiles.
struct Scene {
    dir: tempfile::TempDir,
    clock: doorman::clock::ManualClock,
    server: http::Server,
    driver: Driver,
    profiles: tempfile::TempDir,
    base: String,
}

impl Scene {
    /// `None` (after saying so) where Chromium is not installed.
    fn start() -> Option<Scene> {
        if !browsers_installed() {
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let clock = doorman::clock::ManualClock::starting_now();
        let server = server_with_users(&dir, &clock);
        let base = server.base.clone();
        Some(Scene {
            dir,
            clock,
            server,
            driver: Driver::start(),
            profiles: tempfile::tempdir().unwrap(),
            base,
        })
    }
}

/// doorman on 127.0.0.1 with the users `alice` and `root` (an admin).
fn server_with_users(dir: &tempfile::TempDir, clock: &doorman::clock::ManualClock) -> http::Server {
    let server = http::Server::start(app(dir, json!({}), clock));
    let hash = doorman::core::passwords::hash_blocking(PASSWORD, 4).unwrap();
    let mut conn = server.db.conn().unwrap();
    let now = clock.now_secs();
    doorman::core::users::create_user(&mut conn, now, "alice", &hash, Role::User).unwrap();
    doorman::core::users::create_user(&mut conn, now, "root", &hash, Role::Admin).unwrap();
    drop(conn);
    server
}

#[test]
fn a_person_signs_in_stays_in_and_revokes_another_browser() {
    let Some(Scene {
        dir: _dir,
        clock,
        server: _server,
        driver,
        profiles,
        base,
    }) = Scene::start()
    else {
        return;
    };

    rocket::execute(async move {
        let first = browser(&driver, &profiles.path().join("first")).await;
        let second = browser(&driver, &profiles.path().join("second")).await;
        first.set_window_size(DESKTOP.0, DESKTOP.1).await.unwrap();

        shoot(&first, &base, "/", "index").await;
        shoot(&first, &base, "/login", "login").await;
        shoot(&first, &base, "/signup", "signup").await;
        sign_in(&first, &base, "alice").await;

        // Past the access token's lifetime: the next page is still served signed in.
        clock.advance(ACCESS_TTL + 10);
        first.goto(&format!("{base}/sessions")).await.unwrap();
        assert_eq!(path(&first).await, "/sessions");
        assert!(text(&first).await.contains("Where you are signed in"));

        sign_in(&second, &base, "alice").await;
        first.refresh().await.unwrap();
        let rows = first.find_all(Locator::Css("li.session")).await.unwrap();
        assert_eq!(rows.len(), 2, "both browsers listed");
        shoot(&first, &base, "/sessions", "sessions").await;
        shoot(&first, &base, "/profile", "profile").await;

        // End the other browser's session from the first.
        first.goto(&format!("{base}/sessions")).await.unwrap();
        first
            .find(Locator::Css("li.session:not(.current) form button"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        shows(&first, "That session has ended").await;
        assert_eq!(path(&first).await, "/sessions");
        assert_eq!(
            first
                .find_all(Locator::Css("li.session"))
                .await
                .unwrap()
                .len(),
            1
        );

        second.goto(&format!("{base}/profile")).await.unwrap();
        assert_eq!(
            path(&second).await,
            "/login",
            "the revoked browser lands on the login page"
        );

        // Sign out through the navigation's button.
        first
            .find(Locator::Css("form[action='/logout'] button"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        shows(&first, "You have signed out.").await;
        assert_eq!(path(&first).await, "/login");
        first.goto(&format!("{base}/profile")).await.unwrap();
        assert_eq!(path(&first).await, "/login");

        // The admin's pages and an error page.
        sign_in(&second, &base, "root").await;
        shoot(&second, &base, "/admin", "admin").await;
        shoot(&second, &base, "/admin/users/2", "admin-user").await;
        shoot(&second, &base, "/no-such-page", "not-found").await;

        first.close().await.unwrap();
        second.close().await.unwrap();
    });
}

#[test]
fn a_person_turns_on_an_authenticator_app_and_signs_in_with_it() {
    let Some(Scene {
        dir: _dir,
        clock,
        server: _server,
        driver,
        profiles,
        base,
    }) = Scene::start()
    else {
        return;
    };

    rocket::execute(async move {
        let client = browser(&driver, &profiles.path().join("totp")).await;
        client.set_window_size(DESKTOP.0, DESKTOP.1).await.unwrap();
        sign_in(&client, &base, "alice").await;
        shoot(&client, &base, "/security", "security").await;

        press(&client, "/security/totp").await;
        shows(&client, "Scan this code with your app").await;
        let key = client
            .find(Locator::Css("code.secret"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert_eq!(
            client
                .find_all(Locator::Css("figure.qr svg"))
                .await
                .unwrap()
                .len(),
            1
        );
        shoot_here(&client, "totp-enrol").await;
        fill_and_send(&client, "#code", &totp_code(&key, clock.now_secs())).await;
        shows(&client, "Your authenticator app is on").await;
        let codes = client
            .find_all(Locator::Css("ul.codes code"))
            .await
            .unwrap();
        assert_eq!(codes.len(), 10);
        let recovery = codes[0].text().await.unwrap();
        shoot_here(&client, "recovery-codes").await;
        click_link(&client, "I have saved them").await;
        shows(&client, "10 left").await;

        // Signed out, the password alone leads to the second step.
        press(&client, "/logout").await;
        shows(&client, "You have signed out.").await;
        submit_password(&client, &base, "alice").await;
        arrive(&client, "/login/verify").await;
        shoot_here(&client, "login-verify").await;
        client.goto(&format!("{base}/login/verify")).await.unwrap();
        fill_and_send(&client, "#code", "000000").await;
        shows(&client, "That code is not right").await;
        clock.advance(30);
        fill_and_send(&client, "#code", &totp_code(&key, clock.now_secs())).await;
        arrive(&client, "/profile").await;
        client.goto(&format!("{base}/sessions")).await.unwrap();
        shows(&client, "password + one-time code").await;

        // A recovery code works once, typed in capitals.
        press(&client, "/logout").await;
        shows(&client, "You have signed out.").await;
        submit_password(&client, &base, "alice").await;
        arrive(&client, "/login/verify").await;
        fill_and_send(&client, "#code", &recovery.to_uppercase()).await;
        arrive(&client, "/profile").await;
        client.close().await.unwrap();
    });
}

/// A WebDriver extension command (the WebAuthn virtual authenticator ones): `POST` of `body` to
/// `/session/{id}/<path>`.
#[derive(Debug)]
struct Extension {
    path: &'static str,
    body: serde_json::Value,
}

impl fantoccini::wd::WebDriverCompatibleCommand for Extension {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/{}",
            session_id.unwrap_or(""),
            self.path
        ))
    }

    fn method_and_body(&self, _request_url: &url::Url) -> (::http::Method, Option<String>) {
        (::http::Method::POST, Some(self.body.to_string()))
    }
}

/// Gives the browser a virtual platform authenticator: CTAP2, resident keys, user
/// verification that always succeeds (a fingerprint that matches).
async fn add_virtual_authenticator(client: &Client) {
    client
        .issue_cmd(Extension {
            path: "webauthn/authenticator",
            body: json!({
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": true,
                "hasUserVerification": true,
                "isUserVerified": true,
            }),
        })
        .await
        .expect("a virtual authenticator");
}

async fn click_link(client: &Client, text: &str) {
    client
        .find(Locator::LinkText(text))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

async fn click(client: &Client, css: &str) {
    client
        .find(Locator::Css(css))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

#[test]
fn a_person_signs_in_with_a_passkey_and_removes_it() {
    if !browsers_installed() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let clock = doorman::clock::ManualClock::starting_now();
    // Browsers refuse an IP address as relying-party id: this one is reached as localhost.
    let port = http::free_port();
    let base = format!("http://localhost:{port}");
    let server = http::Server::start_on(port, app(&dir, json!({ "public_url": base }), &clock));
    let hash = doorman::core::passwords::hash_blocking(PASSWORD, 4).unwrap();
    doorman::core::users::create_user(
        &mut server.db.conn().unwrap(),
        clock.now_secs(),
        "alice",
        &hash,
        Role::User,
    )
    .unwrap();
    let driver = Driver::start();
    let profiles = tempfile::tempdir().unwrap();

    rocket::execute(async move {
        let client = browser(&driver, &profiles.path().join("passkey")).await;
        client.set_window_size(DESKTOP.0, DESKTOP.1).await.unwrap();
        add_virtual_authenticator(&client).await;

        sign_in(&client, &base, "alice").await;
        client.goto(&format!("{base}/security")).await.unwrap();
        client
            .find(Locator::Css("#passkey-name"))
            .await
            .unwrap()
            .send_keys("Work laptop")
            .await
            .unwrap();
        click(&client, "button[data-passkey=register]").await;
        shows(&client, "The passkey is added").await;
        assert!(text(&client).await.contains("Work laptop"));
        shoot_here(&client, "security-passkey").await;

        // Signed out, the passkey alone signs in: no password typed.
        press(&client, "/logout").await;
        shows(&client, "You have signed out.").await;
        shoot(&client, &base, "/login", "login-passkey").await;
        click(&client, "button[data-passkey=login]").await;
        arrive(&client, "/profile").await;
        client.goto(&format!("{base}/sessions")).await.unwrap();
        shows(&client, "signed in with passkey").await;

        // With a passkey on the account, the password alone leads to the second step, which
        // the passkey finishes.
        press(&client, "/logout").await;
        shows(&client, "You have signed out.").await;
        submit_password(&client, &base, "alice").await;
        arrive(&client, "/login/verify").await;
        click(&client, "button[data-passkey=login]").await;
        arrive(&client, "/profile").await;

        // Later, deleting it asks again; the passkey answers /sudo.
        clock.advance(601);
        client.goto(&format!("{base}/security")).await.unwrap();
        click(&client, "form[action$='/delete'] button").await;
        arrive(&client, "/sudo").await;
        shoot_here(&client, "sudo-passkey").await;
        click(&client, "button[data-passkey=sudo]").await;
        arrive(&client, "/security").await;
        shows(&client, "You can go on").await;
        click(&client, "form[action$='/delete'] button").await;
        shows(&client, "The passkey is removed").await;
        assert!(!text(&client).await.contains("Work laptop"));
        client.close().await.unwrap();
    });
}

/// The link to `path` in the newest `.eml` doorman wrote to `data_dir/outbox` (bounded wait).
fn mailed_link(data_dir: &Path, path: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let mails: Vec<String> = std::fs::read_dir(data_dir.join("outbox"))
            .map(|d| {
                d.flatten()
                    .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
                    .filter_map(|e| std::fs::read_to_string(e.path()).ok())
                    .collect()
            })
            .unwrap_or_default();
        let unfolded: Vec<String> = mails.iter().map(|m| smtp::unfold(m)).collect();
        if let Some(mail) = unfolded.iter().find(|m| m.contains(path)) {
            return smtp::link(mail, path);
        }
        assert!(Instant::now() < deadline, "no mail with a link to {path}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_person_resets_a_forgotten_password_by_mail() {
    let Some(Scene {
        dir,
        clock,
        server,
        driver,
        profiles,
        base,
    }) = Scene::start()
    else {
        return;
    };
    {
        use diesel::prelude::*;
        use doorman::db::schema::users;
        diesel::update(users::table.filter(users::username.eq("alice")))
            .set((
                users::email.eq("alice@example.test"),
                users::email_key.eq("alice@example.test"),
                users::email_verified_at.eq(clock.now_secs()),
            ))
            .execute(&mut *server.db.conn().unwrap())
            .unwrap();
    }
    let data_dir = dir.path().to_owned();

    rocket::execute(async move {
        let client = browser(&driver, &profiles.path().join("reset")).await;
        client.set_window_size(DESKTOP.0, DESKTOP.1).await.unwrap();
        client.goto(&format!("{base}/login")).await.unwrap();
        click_link(&client, "Forgot your password?").await;
        arrive(&client, "/password/forgot").await;
        shoot_here(&client, "password-forgot").await;
        fill_and_send(&client, "#login", "alice@example.test").await;
        shows(&client, "a link to choose a new password is on its way").await;

        let link = mailed_link(&data_dir, "/password/reset");
        client.goto(&format!("{base}{link}")).await.unwrap();
        shows(&client, "Choose a new password").await;
        shoot_here(&client, "password-reset").await;
        fill_and_send(&client, "#new_password", "a brand new password").await;
        arrive(&client, "/login").await;
        shows(&client, "Your password is set").await;
        client
            .find(Locator::Css("#username"))
            .await
            .unwrap()
            .send_keys("alice")
            .await
            .unwrap();
        fill_and_send(&client, "#password", "a brand new password").await;
        arrive(&client, "/profile").await;
        client.close().await.unwrap();
    });
}

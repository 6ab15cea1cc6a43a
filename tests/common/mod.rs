//! Shared test harness: an app on its own temporary database, a manual clock, and a small
//! cookie-keeping browser over Rocket's local client.
#![allow(dead_code)]

pub mod backend;
pub mod http;
pub mod process;
pub mod smtp;

use std::collections::BTreeMap;
use std::fmt::Write as _;

use diesel::prelude::*;
use doorman::auth::roles::Role;
use doorman::clock::{ManualClock, SharedClock};
use doorman::core::passwords;
use doorman::core::users;
use doorman::db::{Db, schema};
use rocket::figment::Figment;
use rocket::http::{ContentType, Cookie, Header, Status};
use rocket::local::blocking::{Client, LocalRequest, LocalResponse};
use rocket::{Build, Rocket};
use serde_json::{Value, json};
use tempfile::TempDir;

/// Runs `f` in one write transaction of `db`, as the app does (its effects applied after the
/// commit), and expects it to succeed.
pub fn write<T: Send + 'static>(
    db: &Db,
    f: impl FnOnce(&mut doorman::db::Tx<'_>) -> QueryResult<T> + Send + 'static,
) -> T {
    db.write_blocking(move |tx| f(tx).map_err(doorman::db::DbError::from))
        .expect("the write commits")
}

pub const PASSWORD: &str = "correct horse battery";
pub const ACCESS_TTL: i64 = 60;
pub const REFRESH_TTL: i64 = 3600;
pub const SESSION_MAX_AGE: i64 = 4 * 3600;
pub const REUSE_GRACE: i64 = 10;

/// The settings every test starts from; `overrides` win.
pub fn figment(dir: &TempDir, database_url: &str, overrides: Value) -> Figment {
    let mut settings = json!({
        "data_dir": dir.path(),
        "database_url": database_url,
        "bcrypt_cost": 4,
        "access_ttl": ACCESS_TTL,
        "refresh_ttl": REFRESH_TTL,
        "session_max_age": SESSION_MAX_AGE,
        "reuse_grace": REUSE_GRACE,
        "log_level": "off",
        "cli_colors": false,
    });
    if let (Value::Object(base), Value::Object(extra)) = (&mut settings, overrides) {
        base.extend(extra);
    }
    // Rocket.toml supplies the body limits and `ip_header = false`, as in production.
    rocket::Config::figment().merge(rocket::figment::providers::Serialized::globals(settings))
}

pub struct TestApp {
    pub client: Client,
    pub clock: ManualClock,
    pub dir: TempDir,
    pub database_url: String,
}

/// A JSON POST to the API: the status and the body (`Null` when it is not JSON).
pub fn api_post(app: &TestApp, path: &str, body: Value) -> (Status, Value) {
    let response = app
        .client
        .post(path.to_owned())
        .header(ContentType::JSON)
        .body(body.to_string())
        .dispatch();
    let status = response.status();
    (
        status,
        serde_json::from_str(&response.into_string().unwrap_or_default()).unwrap_or(Value::Null),
    )
}

impl TestApp {
    pub fn new() -> TestApp {
        TestApp::with(json!({}))
    }

    pub fn with(overrides: Value) -> TestApp {
        TestApp::in_dir(tempfile::tempdir().expect("temporary directory"), overrides)
    }

    /// An app whose data directory is `dir` (prepared by the test, e.g. with key files).
    pub fn in_dir(dir: TempDir, overrides: Value) -> TestApp {
        let clock = ManualClock::starting_now();
        let database_url = backend::database_url(dir.path());
        let client =
            Client::untracked(app_on(&dir, &database_url, overrides, &clock)).expect("app starts");
        TestApp {
            client,
            clock,
            dir,
            database_url,
        }
    }

    /// The same data directory, database and clock, served by a brand-new instance.
    pub fn restart(self, overrides: Value) -> TestApp {
        let TestApp {
            client,
            clock,
            dir,
            database_url,
        } = self;
        drop(client);
        let client = Client::untracked(app_on(&dir, &database_url, overrides, &clock))
            .expect("app restarts");
        TestApp {
            client,
            clock,
            dir,
            database_url,
        }
    }

    pub fn db(&self) -> &Db {
        self.client
            .rocket()
            .state::<Db>()
            .expect("database in managed state")
    }

    pub fn conn(&self) -> impl std::ops::DerefMut<Target = doorman::db::Conn> + '_ {
        self.db().conn().expect("a connection")
    }

    pub fn create_user(&self, name: &str, role: Role) -> i64 {
        let hash = passwords::hash_blocking(PASSWORD, 4).expect("hash");
        users::create_user(&mut self.conn(), self.clock.now_secs(), name, &hash, role)
            .expect("user created")
            .id
    }

    pub fn browser(&self) -> Browser<'_> {
        Browser {
            client: &self.client,
            cookies: BTreeMap::new(),
            user_agent: "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"
                .into(),
        }
    }

    pub fn count(&self, table: &str) -> i64 {
        let mut conn = self.conn();
        match table {
            "users" => schema::users::table.count().get_result(&mut *conn),
            "sessions" => schema::sessions::table.count().get_result(&mut *conn),
            "refresh_tokens" => schema::refresh_tokens::table.count().get_result(&mut *conn),
            "security_events" => schema::security_events::table
                .count()
                .get_result(&mut *conn),
            other => panic!("no table {other}"),
        }
        .expect("count")
    }

    pub fn events_of_kind(&self, kind: &str) -> i64 {
        doorman::db::events::count_kind(&mut self.conn(), kind).expect("count events")
    }

    /// Every session as (public id, ended reason).
    pub fn sessions(&self) -> Vec<(String, Option<String>)> {
        use schema::sessions::dsl::*;
        sessions
            .order(id)
            .select((public_id, end_reason))
            .load(&mut *self.conn())
            .expect("sessions")
    }

    pub fn live_tokens(&self, public: &str) -> i64 {
        let session = doorman::db::sessions::find_by_public_id(&mut self.conn(), public)
            .expect("query")
            .expect("session exists");
        doorman::db::refresh_tokens::count_live(&mut self.conn(), session.id).expect("count")
    }
}

/// The app on a database of its own (see [`backend`]).
pub fn app(dir: &TempDir, overrides: Value, clock: &ManualClock) -> Rocket<Build> {
    app_on(dir, &backend::database_url(dir.path()), overrides, clock)
}

pub fn app_on(
    dir: &TempDir,
    database_url: &str,
    overrides: Value,
    clock: &ManualClock,
) -> Rocket<Build> {
    let clock: SharedClock = std::sync::Arc::new(clock.clone());
    doorman::build(figment(dir, database_url, overrides), clock)
}

pub trait NowSecs {
    fn now_secs(&self) -> i64;
}

impl NowSecs for ManualClock {
    fn now_secs(&self) -> i64 {
        doorman::clock::Clock::now(self)
    }
}

/// A browser: keeps the cookies it is sent, removes the ones it is told to.
pub struct Browser<'c> {
    pub client: &'c Client,
    pub cookies: BTreeMap<String, String>,
    pub user_agent: String,
}

pub struct Page {
    pub status: Status,
    pub location: Option<String>,
    pub set_cookies: Vec<Cookie<'static>>,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Page {
    pub fn cookie(&self, name: &str) -> Option<&Cookie<'static>> {
        self.set_cookies.iter().find(|c| c.name() == name)
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The value of the first hidden `csrf_token` input.
    pub fn csrf_token(&self) -> String {
        hidden_value(&self.body, "csrf_token").expect("page has a CSRF token")
    }
}

pub fn hidden_value(body: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = body.find(&marker)? + marker.len();
    let end = body[start..].find('"')? + start;
    // Undo Tera's HTML escaping, as a browser would.
    let value = body[start..end]
        .replace("&#x2F;", "/")
        .replace("&#x27;", "'")
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&");
    Some(value)
}

impl<'c> Browser<'c> {
    fn prepare(&self, mut req: LocalRequest<'c>) -> LocalRequest<'c> {
        for (name, value) in &self.cookies {
            req = req.cookie(Cookie::new(name.clone(), value.clone()));
        }
        req.header(Header::new("User-Agent", self.user_agent.clone()))
    }

    fn absorb(&mut self, response: LocalResponse<'_>) -> Page {
        let set_cookies: Vec<Cookie<'static>> = response
            .headers()
            .get("Set-Cookie")
            .map(|v| Cookie::parse(v.to_owned()).expect("valid Set-Cookie"))
            .collect();
        for cookie in &set_cookies {
            let removed = cookie
                .max_age()
                .is_some_and(|age| age.is_zero() || age.is_negative());
            if removed {
                self.cookies.remove(cookie.name());
            } else {
                self.cookies
                    .insert(cookie.name().to_owned(), cookie.value().to_owned());
            }
        }
        let headers = response
            .headers()
            .iter()
            .map(|h| (h.name().to_string(), h.value().to_string()))
            .collect();
        Page {
            status: response.status(),
            location: response.headers().get_one("Location").map(str::to_owned),
            set_cookies,
            headers,
            body: response.into_string().unwrap_or_default(),
        }
    }

    pub fn get(&mut self, path: &str) -> Page {
        let req = self.prepare(self.client.get(path.to_owned()));
        let response = req.dispatch();
        self.absorb(response)
    }

    /// Posts a form (`fields` already URL-encoded pairs) with extra headers.
    pub fn post_with(
        &mut self,
        path: &str,
        fields: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> Page {
        let body = fields
            .iter()
            .map(|(k, v)| format!("{}={}", urlencode(k), urlencode(v)))
            .collect::<Vec<_>>()
            .join("&");
        let mut req = self
            .prepare(self.client.post(path.to_owned()))
            .header(ContentType::Form)
            .body(body);
        for (name, value) in headers {
            req = req.header(Header::new(name.to_string(), value.to_string()));
        }
        let response = req.dispatch();
        self.absorb(response)
    }

    /// A POST with a body of any content type, as a browser (cookies and all) would send it.
    pub fn post_raw(&mut self, path: &str, content_type: ContentType, body: &str) -> Page {
        self.post_raw_with(path, content_type, body, &[])
    }

    /// [`Browser::post_raw`] with extra headers.
    pub fn post_raw_with(
        &mut self,
        path: &str,
        content_type: ContentType,
        body: &str,
        headers: &[(&str, &str)],
    ) -> Page {
        let mut req = self
            .prepare(self.client.post(path.to_owned()))
            .header(content_type)
            .body(body);
        for (name, value) in headers {
            req = req.header(Header::new(name.to_string(), value.to_string()));
        }
        let response = req.dispatch();
        self.absorb(response)
    }

    pub fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        self.post_with(path, fields, &[])
    }

    /// Signs in through the form; returns the answer to the POST.
    pub fn login(&mut self, username: &str, password: &str, remember: bool) -> Page {
        let form = self.get("/login");
        let token = form.csrf_token();
        let mut fields = vec![
            ("username", username),
            ("password", password),
            ("csrf_token", token.as_str()),
        ];
        if remember {
            fields.push(("remember", "on"));
        }
        self.post("/login", &fields)
    }

    /// A form of the signed-in session posted with its CSRF token (fetched from a page).
    pub fn post_signed(&mut self, path: &str, extra: &[(&str, &str)]) -> Page {
        let token = self.session_csrf();
        let mut fields = vec![("csrf_token", token.as_str())];
        fields.extend_from_slice(extra);
        self.post(path, &fields)
    }

    /// The CSRF token of the signed-in session, read from a page's sign-out form.
    pub fn session_csrf(&mut self) -> String {
        self.get("/profile").csrf_token()
    }

    pub fn cookie(&self, name: &str) -> Option<String> {
        self.cookies.get(name).cloned()
    }
}

pub fn urlencode(text: &str) -> String {
    let mut out = String::new();
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(byte as char);
            }
            _ => {
                let _ = write!(out, "%{byte:02X}");
            }
        }
    }
    out
}

pub const ACCESS: &str = "__Host-doorman_access";
pub const REFRESH: &str = "__Host-doorman_refresh";
pub const CSRF: &str = "__Host-doorman_csrf";
pub const DEVICE: &str = "__Host-doorman_device";
pub const PENDING: &str = "__Host-doorman_pending";

/// The code an authenticator app with this base32 key (spaces allowed) shows at `at`.
pub fn totp_code(key: &str, at: i64) -> String {
    let secret = totp_rs::Secret::try_from_base32(key.replace(' ', "")).expect("a base32 key");
    totp_rs::Builder::new()
        .with_secret(secret.as_bytes().to_vec())
        .build()
        .expect("a TOTP")
        .generate(u64::try_from(at).expect("a time after 1970"))
        .to_string()
}

/// The claims of the access token a browser holds (not verified: the test reads them).
pub fn access_claims(browser: &Browser<'_>) -> Value {
    let access = browser.cookie(ACCESS).expect("an access cookie");
    jsonwebtoken::dangerous::insecure_decode::<Value>(&access)
        .expect("a JWT")
        .claims
}

/// A passkey sign-in answer for `ceremony` that no authenticator made: it parses, and is refused.
pub fn forged_assertion(ceremony: &Value) -> Value {
    json!({
        "ceremony": ceremony,
        "credential": {
            "id": "AAAA", "rawId": "AAAA", "type": "public-key",
            "response": {
                "authenticatorData": "AAAA", "clientDataJSON": "AAAA",
                "signature": "AAAA", "userHandle": "AAAA"
            },
            "extensions": {}
        }
    })
}

//! Real HTTP on 127.0.0.1: a blocking client and the sign-in steps a browser would take.

use std::thread;
use std::time::{Duration, Instant};

use rocket::Shutdown;

use super::{CSRF, PASSWORD, REFRESH, hidden_value};

pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .max_redirects(0)
        .http_status_as_error(false)
        .build()
        .into()
}

/// A port of 127.0.0.1 free now, for a server a test starts. Taken below the kernel's ephemeral
/// range (32768 and up by default): a port `bind(…:0)` hands out and the test releases could be
/// taken, before its server binds it, as the local port of another test's outgoing connection.
/// Each port is handed out once per process; processes start at different places.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    const FIRST: u32 = 26_000;
    const SPAN: u32 = 6_000;
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let start = std::process::id() % SPAN;
    for _ in 0..SPAN {
        let port = FIRST + (start + NEXT.fetch_add(1, Ordering::Relaxed)) % SPAN;
        let port = u16::try_from(port).expect("below 32768");
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port between {FIRST} and {}", FIRST + SPAN);
}

/// Waits (bounded) until `base` answers `/healthz`.
pub fn wait_until_up(base: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while ureq::get(format!("{base}/healthz")).call().is_err() {
        assert!(Instant::now() < deadline, "{base} did not come up");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The value a response sets for cookie `name` (not a removal).
pub fn set_cookie(response: &ureq::http::Response<ureq::Body>, name: &str) -> Option<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.strip_prefix(&format!("{name}=")))
        .map(|v| v.split(';').next().unwrap_or_default().to_owned())
        .find(|v| !v.is_empty())
}

/// The cookies a login sets: (access cookie name, value), (refresh name, value).
pub struct HttpSession {
    pub access: String,
    pub refresh: String,
}

impl HttpSession {
    pub fn cookie_header(&self, access_name: &str, refresh_name: &str) -> String {
        format!(
            "{access_name}={}; {refresh_name}={}",
            self.access, self.refresh
        )
    }
}

/// Signs in through the form at `base`, as a browser would.
pub fn login(agent: &ureq::Agent, base: &str, username: &str, access_name: &str) -> HttpSession {
    let mut form = agent.get(format!("{base}/login")).call().unwrap();
    let csrf_cookie = set_cookie(&form, CSRF).expect("CSRF cookie");
    let body = form.body_mut().read_to_string().unwrap();
    let token = hidden_value(&body, "csrf_token").unwrap();
    let response = agent
        .post(format!("{base}/login"))
        .header("Cookie", format!("{CSRF}={csrf_cookie}"))
        .send_form([
            ("username", username),
            ("password", PASSWORD),
            ("csrf_token", &token),
        ])
        .unwrap();
    assert_eq!(response.status(), 303, "login at {base}");
    HttpSession {
        access: set_cookie(&response, access_name).expect("access cookie"),
        refresh: set_cookie(&response, REFRESH).expect("refresh cookie"),
    }
}

/// Ends the session these cookies belong to through the `/sessions` page at `base` (its own
/// session is the only one listed), as a person would. Returns the status of the POST.
pub fn revoke_through_sessions_page(agent: &ureq::Agent, base: &str, cookies: &str) -> u16 {
    let mut page = agent
        .get(format!("{base}/sessions"))
        .header("Cookie", cookies)
        .call()
        .unwrap();
    let body = page.body_mut().read_to_string().unwrap();
    let token = hidden_value(&body, "csrf_token").unwrap();
    let sid = body
        .split("/sessions/")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .unwrap()
        .to_owned();
    agent
        .post(format!("{base}/sessions/{sid}/revoke"))
        .header("Cookie", cookies)
        .send_form([("csrf_token", token.as_str())])
        .unwrap()
        .status()
        .as_u16()
}

/// The app served in this process on a free port of 127.0.0.1; stopped when dropped.
pub struct Server {
    pub base: String,
    /// The server's own pool, for looking at what it stored.
    pub db: doorman::db::Db,
    /// The server secret it keys refresh successors, device tokens and recovery codes with.
    pub secret: doorman::auth::keys::ServerSecret,
    shutdown: Shutdown,
    thread: Option<thread::JoinHandle<()>>,
}

impl Server {
    pub fn start(app: rocket::Rocket<rocket::Build>) -> Server {
        Server::start_on(free_port(), app)
    }

    /// Served on `port` (one the test chose, e.g. to name it in `public_url`).
    pub fn start_on(port: u16, app: rocket::Rocket<rocket::Build>) -> Server {
        let figment = app
            .figment()
            .clone()
            .merge(("port", port))
            .merge(("address", "127.0.0.1"))
            .merge(("shutdown.ctrlc", false))
            .merge(("shutdown.grace", 1))
            .merge(("shutdown.mercy", 1));
        let rocket = rocket::execute(app.configure(figment).ignite()).expect("ignites");
        let shutdown = rocket.shutdown();
        let db = rocket
            .state::<doorman::db::Db>()
            .cloned()
            .expect("a database");
        let secret = rocket
            .state::<doorman::auth::keys::ServerSecret>()
            .cloned()
            .expect("a server secret");
        let thread = thread::spawn(move || {
            let _ = rocket::execute(rocket.launch());
        });
        let base = format!("http://127.0.0.1:{port}");
        wait_until_up(&base);
        Server {
            base,
            db,
            secret,
            shutdown,
            thread: Some(thread),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown.clone().notify();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

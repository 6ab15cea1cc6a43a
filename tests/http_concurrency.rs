//! Racing refreshes over real HTTP on 127.0.0.1: tabs that share one refresh cookie all stay
//! signed in, all get the same successor, and the family keeps exactly one live token.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use doorman::accounts::Role;
use rocket::Shutdown;
use serde_json::json;

struct Server {
    base: String,
    shutdown: Shutdown,
    thread: Option<thread::JoinHandle<()>>,
}

impl Server {
    fn start(app: rocket::Rocket<rocket::Build>) -> Server {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let figment = app
            .figment()
            .clone()
            .merge(("port", port))
            .merge(("address", "127.0.0.1"));
        let rocket = rocket::execute(app.configure(figment).ignite()).expect("ignites");
        let shutdown = rocket.shutdown();
        let thread = thread::spawn(move || {
            let _ = rocket::execute(rocket.launch());
        });
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        while ureq::get(format!("{base}/healthz")).call().is_err() {
            assert!(Instant::now() < deadline, "server did not come up");
            thread::sleep(Duration::from_millis(50));
        }
        Server {
            base,
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

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .max_redirects(0)
        .http_status_as_error(false)
        .build()
        .into()
}

fn set_cookie(response: &ureq::http::Response<ureq::Body>, name: &str) -> Option<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.strip_prefix(&format!("{name}=")))
        .map(|v| v.split(';').next().unwrap_or_default().to_owned())
        .find(|v| !v.is_empty())
}

#[test]
fn sixteen_racing_refreshes_share_one_successor() {
    let dir = tempfile::tempdir().unwrap();
    let clock = doorman::clock::ManualClock::starting_now();
    let settings = json!({ "shutdown": { "ctrlc": false, "grace": 1, "mercy": 1 }, "workers": 4 });
    let server = Server::start(app(&dir, settings, &clock));
    {
        let hash = doorman::auth::passwords::hash_blocking(PASSWORD, 4).unwrap();
        let db =
            doorman::db::Db::open(dir.path().join("doorman.sqlite3").to_str().unwrap()).unwrap();
        doorman::accounts::create_user(
            &mut db.conn().unwrap(),
            clock.now_secs(),
            "alice",
            &hash,
            Role::User,
        )
        .unwrap();
    }
    let agent = agent();

    // Sign in through the form, as a browser would.
    let mut form = agent.get(format!("{}/login", server.base)).call().unwrap();
    let csrf_cookie = set_cookie(&form, CSRF).expect("CSRF cookie");
    let body = form.body_mut().read_to_string().unwrap();
    let token = hidden_value(&body, "csrf_token").unwrap();
    let login = agent
        .post(format!("{}/login", server.base))
        .header("Cookie", format!("{CSRF}={csrf_cookie}"))
        .send_form([
            ("username", "alice"),
            ("password", PASSWORD),
            ("csrf_token", &token),
        ])
        .unwrap();
    assert_eq!(login.status(), 303);
    let old = set_cookie(&login, REFRESH).expect("refresh cookie");

    // The access token expires; 16 tabs come back at once with the same refresh cookie.
    clock.advance(ACCESS_TTL + 6);
    let barrier = Arc::new(Barrier::new(16));
    let tabs: Vec<_> = (0..16)
        .map(|_| {
            let (barrier, base, old, agent) = (
                barrier.clone(),
                server.base.clone(),
                old.clone(),
                agent.clone(),
            );
            thread::spawn(move || {
                barrier.wait();
                let mut response = agent
                    .get(format!("{base}/profile"))
                    .header("Cookie", format!("{REFRESH}={old}"))
                    .call()
                    .unwrap();
                let successor = set_cookie(&response, REFRESH);
                let body = response.body_mut().read_to_string().unwrap();
                (
                    response.status().as_u16(),
                    successor,
                    body.contains("alice"),
                )
            })
        })
        .collect();
    let answers: Vec<_> = tabs.into_iter().map(|t| t.join().unwrap()).collect();
    for (status, successor, signed_in) in &answers {
        assert_eq!(*status, 200);
        assert!(signed_in, "served signed in");
        assert_eq!(
            successor, &answers[0].1,
            "the same new refresh cookie for every tab"
        );
    }
    let successor = answers[0].1.clone().expect("a successor");
    assert_ne!(successor, old);

    let db = doorman::db::Db::open(dir.path().join("doorman.sqlite3").to_str().unwrap()).unwrap();
    let mut conn = db.conn().unwrap();
    let session = doorman::db::refresh_tokens::find_by_hash(
        &mut conn,
        &doorman::auth::session::token_hash(&successor),
    )
    .unwrap()
    .unwrap()
    .session_id;
    assert_eq!(
        doorman::db::refresh_tokens::count_live(&mut conn, session).unwrap(),
        1
    );

    // After the grace, the old token is theft: the family is revoked, the successor dies with it.
    clock.advance(REUSE_GRACE + 1);
    let reuse = agent
        .get(format!("{}/profile", server.base))
        .header("Cookie", format!("{REFRESH}={old}"))
        .call()
        .unwrap();
    assert_eq!(reuse.status(), 303);
    let after = agent
        .get(format!("{}/profile", server.base))
        .header("Cookie", format!("{REFRESH}={successor}"))
        .call()
        .unwrap();
    assert_eq!(after.status(), 303);
    let ended = doorman::db::sessions::find(&mut conn, session)
        .unwrap()
        .unwrap();
    assert_eq!(ended.end_reason.as_deref(), Some("refresh_token_reuse"));
}

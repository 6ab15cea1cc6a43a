//! Reliability over real HTTP: crashes (SIGKILL) in the middle of rotations, graceful shutdown on
//! SIGTERM, and write contention without `database is locked` or any 5xx.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::too_many_lines)]

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, RwLock};
use std::thread;
use std::time::{Duration, Instant};

use common::process::Instance;
use common::*;
use diesel::RunQueryDsl;
use serde_json::{Value, json};

/// A random wait between `low` and `high` milliseconds.
fn jitter(low: u64, high: u64) -> Duration {
    let [a, b] = doorman::crypto::random_bytes::<2>();
    Duration::from_millis(low + u64::from(u16::from_le_bytes([a, b])) % (high - low))
}

/// One client: refreshes in a loop with the refresh token it received last. When a response was
/// cut by a crash it simply tries again with what it has (the predecessor, within the grace).
fn refresher(
    base: Arc<RwLock<String>>,
    stop: Arc<AtomicBool>,
    mut token: String,
    ok: Arc<AtomicUsize>,
) -> thread::JoinHandle<(String, Vec<u16>)> {
    thread::spawn(move || {
        let agent = http::agent();
        let mut refused = Vec::new();
        while !stop.load(Ordering::Relaxed) {
            let url = format!("{}/", base.read().unwrap());
            match agent
                .get(url)
                .header("Cookie", format!("{REFRESH}={token}"))
                .call()
            {
                Ok(response) if response.status() == 200 => {
                    if let Some(next) = http::set_cookie(&response, REFRESH) {
                        token = next;
                        ok.fetch_add(1, Ordering::Relaxed);
                    }
                }
                Ok(response) => refused.push(response.status().as_u16()),
                Err(_) => thread::sleep(Duration::from_millis(20)), // the server is down
            }
        }
        (token, refused)
    })
}

#[test]
fn sessions_survive_repeated_crashes_mid_rotation() {
    let dir = tempfile::tempdir().unwrap();
    let database_url = backend::database_url(dir.path());
    let env = [("DOORMAN_ACCESS_TTL", "1h")];
    let mut server = Instance::start(dir.path(), &database_url, &env);
    let agent = http::agent();
    let base = Arc::new(RwLock::new(server.base.clone()));
    let tokens: Vec<String> = (0..8)
        .map(|_| http::login(&agent, &server.base, "admin", ACCESS).refresh)
        .collect();

    let (stop, ok) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicUsize::new(0)),
    );
    let clients: Vec<_> = tokens
        .into_iter()
        .map(|t| refresher(base.clone(), stop.clone(), t, ok.clone()))
        .collect();
    for crash in 0..5 {
        let before = ok.load(Ordering::Relaxed);
        let deadline = Instant::now() + Duration::from_secs(30);
        while ok.load(Ordering::Relaxed) < before + 20 {
            assert!(
                Instant::now() < deadline,
                "no progress before crash {crash}"
            );
            thread::sleep(Duration::from_millis(10));
        }
        thread::sleep(jitter(0, 300));
        server.crash();
        server = Instance::start(dir.path(), &database_url, &env);
        *base.write().unwrap() = server.base.clone();
    }
    thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    let finals: Vec<_> = clients.into_iter().map(|c| c.join().unwrap()).collect();

    // Every session goes on with the token its client holds, and nothing was taken for theft.
    for (token, refused) in &finals {
        assert!(refused.is_empty(), "refused: {refused:?}");
        let status = server.status(&agent, "/profile", &format!("{REFRESH}={token}"));
        assert_eq!(status, 200, "the session continues");
    }
    let db = doorman::db::Db::open(&database_url).unwrap();
    let mut conn = db.conn().unwrap();
    assert_eq!(
        doorman::db::events::count_kind(&mut conn, "refresh_token_reuse").unwrap(),
        0
    );
    for (token, _) in &finals {
        let hash = doorman::core::sessions::token_hash(token);
        let row = doorman::db::refresh_tokens::find_by_hash(&mut conn, &hash)
            .unwrap()
            .unwrap();
        let live = doorman::db::refresh_tokens::count_live(&mut conn, row.session_id).unwrap();
        assert_eq!(
            live, 1,
            "exactly one live token per session after the crashes"
        );
    }
    let ended: i64 = {
        use diesel::prelude::*;
        use doorman::db::schema::sessions::dsl::*;
        sessions
            .filter(ended_at.is_not_null())
            .count()
            .get_result(&mut *conn)
            .unwrap()
    };
    assert_eq!(ended, 0, "no session was revoked");
    if let doorman::db::Conn::Sqlite(sqlite) = &mut *conn {
        #[derive(diesel::QueryableByName)]
        struct Check {
            #[diesel(sql_type = diesel::sql_types::Text)]
            integrity_check: String,
        }
        let check: Vec<Check> = diesel::sql_query("PRAGMA integrity_check")
            .load(sqlite)
            .unwrap();
        assert_eq!(check[0].integrity_check, "ok");
    }
    assert!(ok.load(Ordering::Relaxed) > 100);
}

#[test]
fn sigterm_lets_in_flight_requests_finish() {
    let dir = tempfile::tempdir().unwrap();
    let database_url = backend::database_url(dir.path());
    // A slow login (bcrypt cost 12 in a debug build takes seconds) is in flight at SIGTERM.
    let server = Instance::start(dir.path(), &database_url, &[("DOORMAN_BCRYPT_COST", "12")]);
    let base = server.base.clone();
    let login = thread::spawn(move || {
        http::agent()
            .post(format!("{base}/api/auth/login"))
            .header("Content-Type", "application/json")
            .send(json!({ "username": "admin", "password": PASSWORD }).to_string())
            .map(|r| r.status().as_u16())
    });
    thread::sleep(Duration::from_millis(150));
    let base = server.base.clone();
    let status = server.terminate();
    assert!(status.success(), "a clean exit: {status:?}");
    assert_eq!(
        login.join().unwrap().unwrap(),
        200,
        "the in-flight login finished"
    );
    assert!(
        http::agent().get(format!("{base}/healthz")).call().is_err(),
        "new requests are refused"
    );
    let db = doorman::db::Db::open(&database_url).unwrap();
    let mut conn = db.conn().unwrap();
    assert_eq!(
        doorman::db::events::count_kind(&mut conn, "login_succeeded").unwrap(),
        1
    );
}

#[test]
fn write_contention_never_surfaces_as_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let clock = doorman::clock::ManualClock::starting_now();
    let server = http::Server::start(app(&dir, json!({}), &clock));
    let agent = http::agent();
    let login = |name: &str| -> (String, String) {
        let mut r = agent
            .post(format!("{}/api/auth/login", server.base))
            .header("Content-Type", "application/json")
            .send(json!({ "username": name, "password": PASSWORD }).to_string())
            .unwrap();
        let body: Value = serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap();
        (
            body["access_token"].as_str().unwrap().to_owned(),
            body["refresh_token"].as_str().unwrap().to_owned(),
        )
    };
    {
        let hash = doorman::core::passwords::hash_blocking(PASSWORD, 4).unwrap();
        let mut conn = server.db.conn().unwrap();
        for i in 0..8 {
            doorman::core::users::create_user(
                &mut conn,
                clock.now_secs(),
                &format!("user{i}"),
                &hash,
                doorman::auth::roles::Role::User,
            )
            .unwrap();
        }
        doorman::core::users::create_user(
            &mut conn,
            clock.now_secs(),
            "root",
            &hash,
            doorman::auth::roles::Role::Admin,
        )
        .unwrap();
    }
    let (admin_access, _) = login("root");
    let refresh_tokens: Vec<String> = (0..64)
        .map(|i| login(&format!("user{}", i % 8)).1)
        .collect();
    let user_sessions: Vec<String> = (0..8).map(|i| login(&format!("user{i}")).0).collect();

    // The admin's browser session, for the console's forms.
    let console = http::login(&agent, &server.base, "root", ACCESS);
    let console_cookies = console.cookie_header(ACCESS, REFRESH);
    let mut page = agent
        .get(format!("{}/admin", server.base))
        .header("Cookie", &console_cookies)
        .call()
        .unwrap();
    let csrf = hidden_value(&page.body_mut().read_to_string().unwrap(), "csrf_token").unwrap();

    let barrier = Arc::new(Barrier::new(64 + 16 + 8 + 8));
    let mut jobs: Vec<thread::JoinHandle<Vec<u16>>> = Vec::new();
    // Admin writes: role changes of every user, back and forth, through the console's form.
    for i in 0..8 {
        let (barrier, agent, base) = (barrier.clone(), agent.clone(), server.base.clone());
        let (cookies, csrf) = (console_cookies.clone(), csrf.clone());
        jobs.push(thread::spawn(move || {
            barrier.wait();
            let user_id = (i + 2).to_string(); // 1 is the bootstrap admin
            ["admin", "user"]
                .iter()
                .map(|role| {
                    agent
                        .post(format!("{base}/admin/users/{user_id}/role"))
                        .header("Cookie", &cookies)
                        .send_form([("csrf_token", csrf.as_str()), ("role", role)])
                        .unwrap()
                        .status()
                        .as_u16()
                })
                .collect()
        }));
    }
    for token in refresh_tokens {
        let (barrier, agent, base) = (barrier.clone(), agent.clone(), server.base.clone());
        jobs.push(thread::spawn(move || {
            barrier.wait();
            let mut token = token;
            let mut statuses = Vec::new();
            for _ in 0..5 {
                let r = agent
                    .get(format!("{base}/"))
                    .header("Cookie", format!("{REFRESH}={token}"))
                    .call()
                    .unwrap();
                statuses.push(r.status().as_u16());
                token = http::set_cookie(&r, REFRESH).unwrap_or(token);
            }
            statuses
        }));
    }
    for i in 0..16 {
        let (barrier, agent, base) = (barrier.clone(), agent.clone(), server.base.clone());
        jobs.push(thread::spawn(move || {
            barrier.wait();
            let r = agent
                .post(format!("{base}/api/auth/login"))
                .header("Content-Type", "application/json")
                .send(
                    json!({ "username": format!("user{}", i % 8), "password": PASSWORD })
                        .to_string(),
                )
                .unwrap();
            vec![r.status().as_u16()]
        }));
    }
    // Session writes beside them: each user ends another of their sessions, and the admin lists
    // the users.
    for access in user_sessions {
        let (barrier, agent, base, admin) = (
            barrier.clone(),
            agent.clone(),
            server.base.clone(),
            admin_access.clone(),
        );
        jobs.push(thread::spawn(move || {
            barrier.wait();
            let mut r = agent
                .get(format!("{base}/api/sessions"))
                .header("Authorization", format!("Bearer {access}"))
                .call()
                .unwrap();
            let body: Value =
                serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap();
            // A role change beside this renews the user's tokens: then the answer is a 401.
            let other = body["sessions"]
                .as_array()
                .and_then(|list| list.iter().find(|s| s["current"] == json!(false)).cloned());
            let mut statuses = vec![r.status().as_u16()];
            if let Some(other) = other {
                let r = agent
                    .delete(format!(
                        "{base}/api/sessions/{}",
                        other["sid"].as_str().unwrap()
                    ))
                    .header("Authorization", format!("Bearer {access}"))
                    .call()
                    .unwrap();
                statuses.push(r.status().as_u16());
            }
            let r = agent
                .get(format!("{base}/api/admin/users"))
                .header("Authorization", format!("Bearer {admin}"))
                .call()
                .unwrap();
            statuses.push(r.status().as_u16());
            statuses
        }));
    }
    let statuses: Vec<u16> = jobs.into_iter().flat_map(|j| j.join().unwrap()).collect();
    assert!(
        statuses.iter().all(|s| *s < 500),
        "no 5xx under contention: {statuses:?}"
    );
    assert!(
        statuses.iter().filter(|s| **s == 200).count() > 300,
        "{statuses:?}"
    );
}

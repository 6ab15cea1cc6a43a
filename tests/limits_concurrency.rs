//! Every limit under simultaneous requests, over real HTTP on 127.0.0.1 with two instances on
//! one database (SQLite file, or PostgreSQL under `.ci/run`): the login and password-change
//! throttles, the sign-up limit, and the last-admin rule.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::too_many_lines)]

mod common;

use std::sync::{Arc, Barrier};
use std::thread;

use common::*;
use doorman::auth::roles::Role;
use doorman::core::admin::{self, Actor, AdminError};
use doorman::core::client::ClientInfo;
use doorman::db::Db;
use serde_json::{Value, json};

const WRONG: &str = "not the password at all";
/// Slow enough that the simultaneous attempts overlap while their passwords are checked.
const COST: u32 = 8;

struct Cluster {
    _dir: tempfile::TempDir,
    clock: doorman::clock::ManualClock,
    servers: [http::Server; 2],
}

impl Cluster {
    fn start(settings: Value) -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let clock = doorman::clock::ManualClock::starting_now();
        let url = backend::database_url(dir.path());
        let mut settings = settings;
        settings["workers"] = json!(16);
        settings["bcrypt_cost"] = json!(COST);
        let a = http::Server::start(app_on(&dir, &url, settings.clone(), &clock));
        let b = http::Server::start(app_on(&dir, &url, settings, &clock));
        Cluster {
            _dir: dir,
            clock,
            servers: [a, b],
        }
    }

    fn create_user(&self, name: &str, role: Role) -> i64 {
        let hash = doorman::core::passwords::hash_blocking(PASSWORD, COST).unwrap();
        let db = &self.servers[0].db;
        doorman::core::users::create_user(
            &mut db.conn().unwrap(),
            self.clock.now_secs(),
            name,
            &hash,
            role,
        )
        .unwrap()
        .id
    }

    fn base(&self, i: usize) -> String {
        self.servers[i % 2].base.clone()
    }

    fn events(&self, kind: &str) -> i64 {
        doorman::db::events::count_kind(&mut self.servers[0].db.conn().unwrap(), kind).unwrap()
    }
}

/// Runs `n` requests at once (after every one is prepared) and returns their statuses.
fn at_once<P>(n: usize, prepare: P) -> Vec<u16>
where
    P: Fn(usize) -> Box<dyn FnOnce() -> u16 + Send>,
{
    let barrier = Arc::new(Barrier::new(n));
    let threads: Vec<_> = (0..n)
        .map(|i| {
            let request = prepare(i);
            let barrier = barrier.clone();
            thread::spawn(move || {
                barrier.wait();
                request()
            })
        })
        .collect();
    threads.into_iter().map(|t| t.join().unwrap()).collect()
}

fn count(statuses: &[u16], status: u16) -> usize {
    statuses.iter().filter(|s| **s == status).count()
}

#[test]
fn simultaneous_logins_check_at_most_the_limit_of_wrong_passwords() {
    let cluster = Cluster::start(json!({}));
    cluster.create_user("alice", Role::User);
    let agent = http::agent();
    // 13 wrong passwords and the right one last, all at once, on both instances.
    let statuses = at_once(14, |i| {
        let (agent, base) = (agent.clone(), cluster.base(i));
        let password = if i == 13 { PASSWORD } else { WRONG };
        Box::new(move || {
            agent
                .post(format!("{base}/api/auth/login"))
                .header("Content-Type", "application/json")
                .send(json!({"username": "alice", "password": password}).to_string())
                .unwrap()
                .status()
                .as_u16()
        })
    });
    assert!(count(&statuses, 401) <= 5, "{statuses:?}");
    assert_eq!(
        count(&statuses, 401) + count(&statuses, 200) + count(&statuses, 429),
        14,
        "{statuses:?}"
    );
    assert!(cluster.events("login_failed") <= 5);
}

#[test]
fn simultaneous_password_changes_check_at_most_the_limit() {
    let cluster = Cluster::start(json!({}));
    cluster.create_user("alice", Role::User);
    let agent = http::agent();
    // A stolen session (cookies, not the browser's device cookie) guesses at once.
    let session = http::login(&agent, &cluster.base(0), "alice", ACCESS);
    let cookies = session.cookie_header(ACCESS, REFRESH);
    let mut profile = agent
        .get(format!("{}/profile", cluster.base(0)))
        .header("Cookie", &cookies)
        .call()
        .unwrap();
    let token = hidden_value(&profile.body_mut().read_to_string().unwrap(), "csrf_token").unwrap();
    let statuses = at_once(12, |i| {
        let (agent, base, cookies, token) = (
            agent.clone(),
            cluster.base(i),
            cookies.clone(),
            token.clone(),
        );
        Box::new(move || {
            agent
                .post(format!("{base}/password"))
                .header("Cookie", &cookies)
                .send_form([
                    ("current_password", WRONG),
                    ("new_password", "a brand new password"),
                    ("csrf_token", &token),
                ])
                .unwrap()
                .status()
                .as_u16()
        })
    });
    assert!(count(&statuses, 422) <= 5, "{statuses:?}");
    assert_eq!(
        count(&statuses, 422) + count(&statuses, 429),
        12,
        "{statuses:?}"
    );
    assert!(cluster.events("login_failed") <= 5);
}

#[test]
fn simultaneous_sign_ups_make_at_most_the_limit() {
    let cluster = Cluster::start(json!({ "signup_max_per_window": 3 }));
    let agent = http::agent();
    let statuses = at_once(10, |i| {
        let (agent, base) = (agent.clone(), cluster.base(i));
        let mut form = agent.get(format!("{base}/signup")).call().unwrap();
        let cookie = http::set_cookie(&form, CSRF).unwrap();
        let token = hidden_value(&form.body_mut().read_to_string().unwrap(), "csrf_token").unwrap();
        Box::new(move || {
            agent
                .post(format!("{base}/signup"))
                .header("Cookie", format!("{CSRF}={cookie}"))
                .send_form([
                    ("username", format!("user{i}").as_str()),
                    ("password", PASSWORD),
                    ("password_confirm", PASSWORD),
                    ("csrf_token", &token),
                ])
                .unwrap()
                .status()
                .as_u16()
        })
    });
    assert_eq!(count(&statuses, 303), 3, "{statuses:?}");
    assert_eq!(count(&statuses, 429), 7, "{statuses:?}");
}

#[test]
fn two_admins_disabling_each_other_at_once_leave_an_admin() {
    let dir = tempfile::tempdir().unwrap();
    let url = backend::database_url(dir.path());
    // Two instances: two pools on one database.
    let (one, two) = (Db::open(&url).unwrap(), Db::open(&url).unwrap());
    let now = 1_800_000_000;
    let mut ids = Vec::new();
    for name in ["ann", "bea"] {
        let user = doorman::core::users::create_user(
            &mut one.conn().unwrap(),
            now,
            name,
            "x",
            Role::Admin,
        )
        .unwrap();
        ids.push(user.id);
    }
    let actor = || Actor {
        name: "a test".into(),
        client: ClientInfo {
            ip: "127.0.0.1".into(),
            user_agent: "test".into(),
        },
    };
    for round in 0..20 {
        for id in &ids {
            let (id, actor) = (*id, actor());
            one.write_blocking(move |tx| admin::set_disabled(tx, now, id, false, &actor))
                .unwrap();
        }
        let barrier = Arc::new(Barrier::new(2));
        let threads: Vec<_> = [(one.clone(), ids[1]), (two.clone(), ids[0])]
            .into_iter()
            .map(|(db, target)| {
                let (barrier, actor) = (barrier.clone(), actor());
                thread::spawn(move || {
                    barrier.wait();
                    db.write_blocking(move |tx| admin::set_disabled(tx, now, target, true, &actor))
                })
            })
            .collect();
        let results: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        let refused = results
            .iter()
            .filter(|r| matches!(r, Err(AdminError::LastAdmin)))
            .count();
        assert_eq!(refused, 1, "round {round}: {results:?}");
        let active =
            doorman::db::users::count_active_with_role(&mut one.conn().unwrap(), "admin").unwrap();
        assert_eq!(active, 1, "round {round}");
    }
}

/// Turns on the authenticator app of `user_id` as enrolment does; returns its base32 key and
/// recovery codes.
fn with_authenticator(cluster: &Cluster, user_id: i64) -> (String, Vec<String>) {
    use doorman::core::second_factors::{self, Confirmed};
    let db = cluster.servers[0].db.clone();
    let secret = cluster.servers[0].secret.clone();
    let now = cluster.clock.now_secs();
    let server = secret.clone();
    let key = common::write(&db, move |tx| {
        let user = doorman::db::users::find(tx, user_id)?.unwrap();
        Ok(second_factors::start_enrolment(tx, &server, &user)?.secret)
    });
    let code = totp_code(&key, now);
    let confirmed = common::write(&db, move |tx| {
        let user = doorman::db::users::find(tx, user_id)?.unwrap();
        let client = ClientInfo {
            ip: "127.0.0.1".into(),
            user_agent: "test".into(),
        };
        let actor = doorman::core::owner::Owner {
            user_id,
            sid: String::new(),
            client,
        };
        second_factors::confirm_enrolment(tx, &secret, &user, &actor, &code, now)
    });
    let Confirmed::On(codes) = confirmed else {
        panic!("enrolment confirmed");
    };
    // Past the step the confirmation spent.
    cluster.clock.advance(30);
    (key, codes)
}

/// Logs in through the API with the password alone: the `mfa_token` of the second step.
fn mfa_token(agent: &ureq::Agent, base: &str) -> String {
    let mut response = agent
        .post(format!("{base}/api/auth/login"))
        .header("Content-Type", "application/json")
        .send(json!({"username": "alice", "password": PASSWORD}).to_string())
        .unwrap();
    let body: Value = serde_json::from_str(&response.body_mut().read_to_string().unwrap()).unwrap();
    body["mfa_token"].as_str().unwrap().to_owned()
}

/// Sends every (`mfa_token`, code) pair to `/api/auth/mfa` at once, on both instances.
fn second_steps_at_once(cluster: &Cluster, steps: Vec<(String, String)>) -> Vec<u16> {
    let bodies = steps
        .into_iter()
        .map(|(token, code)| json!({"mfa_token": token, "code": code}))
        .collect();
    second_step_bodies_at_once(cluster, bodies)
}

/// Sends every body to `/api/auth/mfa` at once, on both instances.
fn second_step_bodies_at_once(cluster: &Cluster, bodies: Vec<Value>) -> Vec<u16> {
    let agent = http::agent();
    at_once(bodies.len(), |i| {
        let (agent, base, body) = (agent.clone(), cluster.base(i), bodies[i].to_string());
        Box::new(move || {
            agent
                .post(format!("{base}/api/auth/mfa"))
                .header("Content-Type", "application/json")
                .send(body)
                .unwrap()
                .status()
                .as_u16()
        })
    })
}

#[test]
fn a_code_and_a_half_done_login_are_good_once_under_simultaneous_requests() {
    let cluster = Cluster::start(json!({ "login_max_failures": 100 }));
    let alice = cluster.create_user("alice", Role::User);
    let (key, recovery) = with_authenticator(&cluster, alice);
    let agent = http::agent();

    // One authenticator code, sent at once by eight half-done logins on both instances.
    let code = totp_code(&key, cluster.clock.now_secs());
    let steps = (0..8)
        .map(|i| (mfa_token(&agent, &cluster.base(i)), code.clone()))
        .collect();
    let statuses = second_steps_at_once(&cluster, steps);
    assert_eq!(count(&statuses, 200), 1, "{statuses:?}");
    assert_eq!(count(&statuses, 401), 7, "{statuses:?}");

    // One recovery code, the same way.
    let steps = (0..8)
        .map(|i| (mfa_token(&agent, &cluster.base(i)), recovery[0].clone()))
        .collect();
    let statuses = second_steps_at_once(&cluster, steps);
    assert_eq!(count(&statuses, 200), 1, "{statuses:?}");
    assert_eq!(cluster.events("recovery_code_used"), 1);

    // One half-done login finished at once with eight different good codes: one session.
    let token = mfa_token(&agent, &cluster.base(0));
    let steps = recovery[1..9]
        .iter()
        .map(|code| (token.clone(), code.clone()))
        .collect();
    let sessions_before = cluster.events("login_succeeded");
    let statuses = second_steps_at_once(&cluster, steps);
    assert_eq!(count(&statuses, 200), 1, "{statuses:?}");
    assert_eq!(cluster.events("login_succeeded"), sessions_before + 1);
    // Only the winner's code is spent: the losers' stay good.
    let left = doorman::db::second_factors::recovery_codes_left(
        &mut cluster.servers[0].db.conn().unwrap(),
        alice,
    )
    .unwrap();
    assert_eq!(left, 8, "10, less the first race's code and this one's");
}

#[test]
fn a_passkey_ceremony_is_finished_at_most_once_under_simultaneous_requests() {
    let cluster = Cluster::start(json!({ "public_url": "http://localhost:8000" }));
    let agent = http::agent();
    let mut form = agent
        .get(format!("{}/login", cluster.base(0)))
        .call()
        .unwrap();
    let cookie = http::set_cookie(&form, CSRF).unwrap();
    let token = hidden_value(&form.body_mut().read_to_string().unwrap(), "csrf_token").unwrap();
    let mut started = agent
        .post(format!("{}/login/passkey/start", cluster.base(0)))
        .header("Cookie", format!("{CSRF}={cookie}"))
        .header("X-CSRF-Token", &token)
        .header("Content-Type", "application/json")
        .send("{}")
        .unwrap();
    let started: Value =
        serde_json::from_str(&started.body_mut().read_to_string().unwrap()).unwrap();
    let answer = forged_assertion(&started["ceremony"]).to_string();
    // The same answer eight times at once, on both instances: one takes the ceremony (and is
    // refused, the answer being no passkey's), the others find it gone.
    let statuses = at_once(8, |i| {
        let (agent, base, cookie, token, answer) = (
            agent.clone(),
            cluster.base(i),
            cookie.clone(),
            token.clone(),
            answer.clone(),
        );
        Box::new(move || {
            agent
                .post(format!("{base}/login/passkey/finish"))
                .header("Cookie", format!("{CSRF}={cookie}"))
                .header("X-CSRF-Token", &token)
                .header("Content-Type", "application/json")
                .send(answer)
                .unwrap()
                .status()
                .as_u16()
        })
    });
    assert_eq!(count(&statuses, 401), 1, "{statuses:?}");
    assert_eq!(count(&statuses, 400), 7, "{statuses:?}");
}

#[test]
fn a_reset_link_works_once_under_simultaneous_requests() {
    use doorman::core::email;
    let cluster = Cluster::start(json!({}));
    let alice = cluster.create_user("alice", Role::User);
    let (db, secret) = (
        cluster.servers[0].db.clone(),
        cluster.servers[0].secret.clone(),
    );
    let now = cluster.clock.now_secs();
    let policy = email::EmailPolicy {
        link_ttl: 1800,
        new_device_notice: true,
    };
    let nonce = common::write(&db, move |tx| {
        use diesel::prelude::*;
        let user = doorman::db::users::find(tx, alice)?.unwrap();
        let client = ClientInfo {
            ip: "127.0.0.1".into(),
            user_agent: "test".into(),
        };
        let change = email::AddressChange {
            user: &user,
            session_id: None,
            client: &client,
            limits: None,
        };
        email::set_address(tx, &secret, policy, &change, "alice@example.test", now)?.unwrap();
        diesel::update(doorman::db::schema::users::table.find(alice))
            .set(doorman::db::schema::users::email_verified_at.eq(now))
            .execute(&mut **tx)?;
        let throttle = doorman::core::throttle::ThrottlePolicy {
            max_failures: 5,
            window: 900,
            max_signups: 10,
        };
        email::request_reset(tx, &secret, policy, &throttle, "alice", &client, now)?.unwrap();
        let context: String = doorman::db::schema::outbox::table
            .filter(doorman::db::schema::outbox::template.eq("password_reset"))
            .select(doorman::db::schema::outbox::context)
            .first(&mut **tx)?;
        let context: Value = serde_json::from_str(&context).unwrap();
        Ok(context["link"]["nonce"].as_str().unwrap().to_owned())
    });
    let token = email::link_token(&cluster.servers[0].secret, &nonce).unwrap();

    let agent = http::agent();
    let mut form = agent
        .get(format!("{}/password/reset?token={token}", cluster.base(0)))
        .call()
        .unwrap();
    assert_eq!(form.status().as_u16(), 200);
    let cookie = http::set_cookie(&form, CSRF).unwrap();
    let csrf = hidden_value(&form.body_mut().read_to_string().unwrap(), "csrf_token").unwrap();
    let statuses = at_once(8, |i| {
        let (agent, base, cookie, csrf, token) = (
            agent.clone(),
            cluster.base(i),
            cookie.clone(),
            csrf.clone(),
            token.clone(),
        );
        Box::new(move || {
            agent
                .post(format!("{base}/password/reset"))
                .header("Cookie", format!("{CSRF}={cookie}"))
                .send_form([
                    ("csrf_token", csrf.as_str()),
                    ("token", token.as_str()),
                    ("new_password", format!("new password number {i}").as_str()),
                ])
                .unwrap()
                .status()
                .as_u16()
        })
    });
    assert_eq!(count(&statuses, 303), 1, "{statuses:?}");
    assert_eq!(count(&statuses, 400), 7, "{statuses:?}");
    assert_eq!(cluster.events("password_reset"), 1);
}

#[test]
fn simultaneous_reset_requests_mail_at_most_the_limit() {
    let cluster = Cluster::start(json!({}));
    let alice = cluster.create_user("alice", Role::User);
    let db = cluster.servers[0].db.clone();
    let now = cluster.clock.now_secs();
    common::write(&db, move |tx| {
        use diesel::prelude::*;
        diesel::update(doorman::db::schema::users::table.find(alice))
            .set((
                doorman::db::schema::users::email.eq("alice@example.test"),
                doorman::db::schema::users::email_key.eq("alice@example.test"),
                doorman::db::schema::users::email_verified_at.eq(now),
            ))
            .execute(&mut **tx)
            .map(drop)
    });
    let agent = http::agent();
    let mut form = agent
        .get(format!("{}/password/forgot", cluster.base(0)))
        .call()
        .unwrap();
    let cookie = http::set_cookie(&form, CSRF).unwrap();
    let csrf = hidden_value(&form.body_mut().read_to_string().unwrap(), "csrf_token").unwrap();
    let statuses = at_once(12, |i| {
        let (agent, base, cookie, csrf) =
            (agent.clone(), cluster.base(i), cookie.clone(), csrf.clone());
        Box::new(move || {
            agent
                .post(format!("{base}/password/forgot"))
                .header("Cookie", format!("{CSRF}={cookie}"))
                .send_form([("csrf_token", csrf.as_str()), ("login", "alice")])
                .unwrap()
                .status()
                .as_u16()
        })
    });
    assert_eq!(count(&statuses, 200), 5, "{statuses:?}");
    assert_eq!(count(&statuses, 429), 7, "{statuses:?}");
    assert_eq!(cluster.events("password_reset_requested"), 5);
}

/// Logs alice in through the API with `device_token` (if any): (status, body).
fn api_login(
    agent: &ureq::Agent,
    base: &str,
    password: &str,
    device_token: Option<&str>,
) -> (u16, Value) {
    let mut body = json!({"username": "alice", "password": password});
    if let Some(token) = device_token {
        body["device_token"] = json!(token);
    }
    let mut response = agent
        .post(format!("{base}/api/auth/login"))
        .header("Content-Type", "application/json")
        .send(body.to_string())
        .unwrap();
    let status = response.status().as_u16();
    let body =
        serde_json::from_str(&response.body_mut().read_to_string().unwrap()).unwrap_or(Value::Null);
    (status, body)
}

/// Device tokens of `n` sign-ins of alice (before any second factor).
fn device_tokens(cluster: &Cluster, n: usize) -> Vec<String> {
    let agent = http::agent();
    (0..n)
        .map(|i| {
            let (status, body) = api_login(&agent, &cluster.base(i), PASSWORD, None);
            assert_eq!(status, 200, "{body}");
            body["device_token"].as_str().unwrap().to_owned()
        })
        .collect()
}

#[test]
fn simultaneous_wrong_codes_of_known_devices_check_at_most_the_limit() {
    let cluster = Cluster::start(json!({}));
    let alice = cluster.create_user("alice", Role::User);
    // Known devices, so neither the account's nor the address's counter is what holds.
    let devices = device_tokens(&cluster, 8);
    with_authenticator(&cluster, alice);
    let agent = http::agent();
    let bodies: Vec<Value> = devices
        .iter()
        .enumerate()
        .map(|(i, device)| {
            let (status, body) = api_login(&agent, &cluster.base(i), PASSWORD, Some(device));
            assert_eq!(status, 401, "{body}");
            json!({"mfa_token": body["mfa_token"], "code": "000000", "device_token": device})
        })
        .collect();
    let statuses = second_step_bodies_at_once(&cluster, bodies);
    assert_eq!(count(&statuses, 401), 5, "{statuses:?}");
    assert_eq!(count(&statuses, 429), 3, "{statuses:?}");
    assert_eq!(cluster.events("mfa_failed"), 5);
}

#[test]
fn simultaneous_wrong_passwords_of_many_devices_stay_under_the_ceiling() {
    let cluster = Cluster::start(json!({}));
    cluster.create_user("alice", Role::User);
    let devices = device_tokens(&cluster, 12);
    let agent = http::agent();
    let statuses = at_once(24, |i| {
        let (agent, base, device) = (agent.clone(), cluster.base(i), devices[i / 2].clone());
        Box::new(move || api_login(&agent, &base, WRONG, Some(&device)).0)
    });
    // Two of three times login_max_failures, less one: with the account's own five, below 15.
    assert_eq!(count(&statuses, 401), 9, "{statuses:?}");
    assert_eq!(count(&statuses, 429), 15, "{statuses:?}");
    assert_eq!(cluster.events("login_failed"), 9);
}

#[test]
fn simultaneous_address_changes_mail_one_address_at_most_the_limit() {
    let cluster = Cluster::start(json!({}));
    let agent = http::agent();
    let sessions: Vec<(String, String)> = (0..8)
        .map(|i| {
            let name = format!("mallory{i}");
            cluster.create_user(&name, Role::User);
            let base = cluster.base(i);
            let session = http::login(&agent, &base, &name, ACCESS);
            let cookies = session.cookie_header(ACCESS, REFRESH);
            let mut page = agent
                .get(format!("{base}/security"))
                .header("Cookie", &cookies)
                .call()
                .unwrap();
            let token = hidden_value(&page.body_mut().read_to_string().unwrap(), "csrf_token");
            (cookies, token.unwrap())
        })
        .collect();
    let statuses = at_once(sessions.len(), |i| {
        let (agent, base) = (agent.clone(), cluster.base(i));
        let (cookies, token) = sessions[i].clone();
        Box::new(move || {
            agent
                .post(format!("{base}/security/email"))
                .header("Cookie", &cookies)
                .send_form([
                    ("csrf_token", token.as_str()),
                    ("email", "target@example.test"),
                ])
                .unwrap()
                .status()
                .as_u16()
        })
    });
    assert_eq!(count(&statuses, 303), 5, "{statuses:?}");
    assert_eq!(count(&statuses, 429), 3, "{statuses:?}");
    let mails: i64 = {
        use diesel::prelude::*;
        use doorman::db::schema::outbox;
        outbox::table
            .filter(outbox::template.eq("verify_address"))
            .filter(outbox::recipient.eq("target@example.test"))
            .count()
            .get_result(&mut *cluster.servers[0].db.conn().unwrap())
            .unwrap()
    };
    assert_eq!(mails, 5);
}

/// Runs `f(i)` for `n` values of `i` at once, each on one of the two instances' databases.
fn at_once_on_dbs<T: Send + 'static>(
    cluster: &Cluster,
    n: usize,
    f: impl Fn(usize, &Db) -> T + Send + Sync + 'static,
) -> Vec<T> {
    let f = Arc::new(f);
    let barrier = Arc::new(Barrier::new(n));
    let threads: Vec<_> = (0..n)
        .map(|i| {
            let (f, barrier, db) = (
                f.clone(),
                barrier.clone(),
                cluster.servers[i % 2].db.clone(),
            );
            thread::spawn(move || {
                barrier.wait();
                f(i, &db)
            })
        })
        .collect();
    threads.into_iter().map(|t| t.join().unwrap()).collect()
}

#[test]
fn simultaneous_reset_requests_from_everywhere_mail_one_account_at_most_the_cap() {
    use doorman::core::email;
    let cluster = Cluster::start(json!({}));
    let alice = cluster.create_user("alice", Role::User);
    let now = cluster.clock.now_secs();
    common::write(&cluster.servers[0].db, move |tx| {
        use diesel::prelude::*;
        use doorman::db::schema::users;
        diesel::update(users::table.find(alice))
            .set((
                users::email.eq("alice@example.test"),
                users::email_key.eq("alice@example.test"),
                users::email_verified_at.eq(now),
            ))
            .execute(&mut **tx)
            .map(drop)
    });
    let secret = cluster.servers[0].secret.clone();
    let answers = at_once_on_dbs(&cluster, 12, move |i, db| {
        let (secret, login) = (
            secret.clone(),
            ["alice", "ALICE", "Alice@Example.test"][i % 3],
        );
        common::write(db, move |tx| {
            let policy = email::EmailPolicy {
                link_ttl: 1800,
                new_device_notice: true,
            };
            let throttle = doorman::core::throttle::ThrottlePolicy {
                max_failures: 5,
                window: 900,
                max_signups: 10,
            };
            let client = ClientInfo {
                ip: format!("127.0.1.{i}"),
                user_agent: "test".into(),
            };
            email::request_reset(tx, &secret, policy, &throttle, login, &client, now)
        })
    });
    assert!(answers.iter().all(Result::is_ok), "{answers:?}");
    assert_eq!(cluster.events("password_reset_requested"), 5);
}

#[test]
fn two_accounts_verifying_one_address_at_once_leave_it_to_one() {
    let cluster = Cluster::start(json!({}));
    for round in 0..5 {
        let address = format!("shared{round}@example.test");
        let tokens: Vec<String> = ["alice", "mallory"]
            .iter()
            .map(|name| claim_address(&cluster, &format!("{name}{round}"), &address))
            .collect();
        let now = cluster.clock.now_secs();
        let verified = at_once_on_dbs(&cluster, 2, move |i, db| {
            let token = tokens[i].clone();
            common::write(db, move |tx| {
                let client = ClientInfo {
                    ip: "127.0.0.1".into(),
                    user_agent: "test".into(),
                };
                doorman::core::email::verify(tx, &token, &client, now)
            })
        });
        assert_eq!(verified.iter().filter(|v| **v).count(), 1, "round {round}");
        let holders: i64 = {
            use diesel::prelude::*;
            use doorman::db::schema::users;
            users::table
                .filter(users::email_key.eq(&address))
                .count()
                .get_result(&mut *cluster.servers[0].db.conn().unwrap())
                .unwrap()
        };
        assert_eq!(
            holders, 1,
            "round {round}: the loser's unverified claim is gone"
        );
    }
}

/// A new user `name` who set `address` (unverified); the token of the link mailed for it.
fn claim_address(cluster: &Cluster, name: &str, address: &str) -> String {
    use doorman::core::email;
    let user = cluster.create_user(name, Role::User);
    let (secret, now, address) = (
        cluster.servers[0].secret.clone(),
        cluster.clock.now_secs(),
        address.to_owned(),
    );
    let server = secret.clone();
    let nonce = common::write(&cluster.servers[0].db, move |tx| {
        use diesel::prelude::*;
        use doorman::db::schema::outbox;
        let account = doorman::db::users::find(tx, user)?.unwrap();
        let client = ClientInfo {
            ip: "127.0.0.1".into(),
            user_agent: "test".into(),
        };
        let change = email::AddressChange {
            user: &account,
            session_id: None,
            client: &client,
            limits: None,
        };
        let policy = email::EmailPolicy {
            link_ttl: 1800,
            new_device_notice: true,
        };
        email::set_address(tx, &server, policy, &change, &address, now)?.unwrap();
        // Read in the transaction that wrote it: once sent, the outbox keeps no nonce.
        let context: String = outbox::table
            .filter(outbox::template.eq("verify_address"))
            .order(outbox::id.desc())
            .select(outbox::context)
            .first(&mut **tx)?;
        let context: Value = serde_json::from_str(&context).unwrap();
        Ok(context["link"]["nonce"].as_str().unwrap().to_owned())
    });
    email::link_token(&secret, &nonce).unwrap()
}

#[test]
fn simultaneous_passkey_starts_from_one_address_stop_at_the_limit() {
    let cluster = Cluster::start(json!({ "public_url": "http://localhost:8000" }));
    let agent = http::agent();
    let mut form = agent
        .get(format!("{}/login", cluster.base(0)))
        .call()
        .unwrap();
    let cookie = http::set_cookie(&form, CSRF).unwrap();
    let token = hidden_value(&form.body_mut().read_to_string().unwrap(), "csrf_token").unwrap();
    let statuses = at_once(30, |i| {
        let (agent, base, cookie, token) = (
            agent.clone(),
            cluster.base(i),
            cookie.clone(),
            token.clone(),
        );
        Box::new(move || {
            agent
                .post(format!("{base}/login/passkey/start"))
                .header("Cookie", format!("{CSRF}={cookie}"))
                .header("X-CSRF-Token", &token)
                .header("Content-Type", "application/json")
                .send("{}")
                .unwrap()
                .status()
                .as_u16()
        })
    });
    assert_eq!(count(&statuses, 200), 10, "{statuses:?}");
    assert_eq!(count(&statuses, 429), 20, "{statuses:?}");
}

//! Racing refreshes over real HTTP on 127.0.0.1: tabs that share one refresh cookie all stay
//! signed in, all get the same successor, and the family keeps exactly one live token.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::too_many_lines)]

mod common;

use std::sync::{Arc, Barrier};
use std::thread;

use common::*;
use doorman::auth::roles::Role;
use serde_json::json;

#[test]
fn sixteen_racing_refreshes_share_one_successor() {
    let dir = tempfile::tempdir().unwrap();
    let clock = doorman::clock::ManualClock::starting_now();
    let settings = json!({ "workers": 4 });
    let server = http::Server::start(app(&dir, settings, &clock));
    {
        let hash = doorman::core::passwords::hash_blocking(PASSWORD, 4).unwrap();
        let db = &server.db;
        doorman::core::users::create_user(
            &mut db.conn().unwrap(),
            clock.now_secs(),
            "alice",
            &hash,
            Role::User,
        )
        .unwrap();
    }
    // Sign in through the form, as a browser would.
    let agent = http::agent();
    let old = http::login(&agent, &server.base, "alice", ACCESS).refresh;

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
                let successor = http::set_cookie(&response, REFRESH);
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

    let db = &server.db;
    let mut conn = db.conn().unwrap();
    let session = doorman::db::refresh_tokens::find_by_hash(
        &mut conn,
        &doorman::core::sessions::token_hash(&successor),
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

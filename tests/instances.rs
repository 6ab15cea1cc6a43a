//! Two doorman processes on one SQLite file: a revocation, or a security event, on one reaches
//! the other within `revocation_poll`, while both verify access tokens (and serve a profile page
//! already seen) without the database.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::too_many_lines)]

mod common;

use std::time::{Duration, Instant};

use common::process::Instance;
use common::*;

const POLL_SECONDS: u64 = 1;

/// Two instances on one database, polling every `POLL_SECONDS`; the folder lives as long as the
/// returned guard.
fn two_instances() -> (tempfile::TempDir, Instance, Instance) {
    let dir = tempfile::tempdir().unwrap();
    let database_url = backend::database_url(dir.path());
    let poll = POLL_SECONDS.to_string();
    let env = [("DOORMAN_REVOCATION_POLL", poll.as_str())];
    let a = Instance::start(dir.path(), &database_url, &env);
    let b = Instance::start(dir.path(), &database_url, &env);
    (dir, a, b)
}

#[test]
fn a_revocation_on_one_instance_reaches_the_other_within_the_poll() {
    let (_dir, a, b) = two_instances();
    let agent = http::agent();

    let session = http::login(&agent, &a.base, "admin", ACCESS);
    assert_eq!(a.profile_status(&agent, &session.access), 200);
    assert_eq!(
        b.profile_status(&agent, &session.access),
        200,
        "B verifies A's token"
    );

    // End the session on B, through its sessions page.
    let cookies = session.cookie_header(ACCESS, REFRESH);
    assert_eq!(
        http::revoke_through_sessions_page(&agent, &b.base, &cookies),
        303
    );
    let revoked_at = Instant::now();
    assert_eq!(
        b.profile_status(&agent, &session.access),
        303,
        "refused at once on B"
    );

    // A learns of it from the database within the poll (bounded wait, generous for a busy CI).
    let deadline = revoked_at + Duration::from_secs(POLL_SECONDS * 5 + 5);
    while a.profile_status(&agent, &session.access) == 200 {
        assert!(
            Instant::now() < deadline,
            "A never learned of the revocation"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let seen_after = revoked_at.elapsed();
    eprintln!("revocation reached the other instance after {seen_after:?} (poll {POLL_SECONDS}s)");
    assert_eq!(a.profile_status(&agent, &session.access), 303);
}

#[test]
fn an_event_on_one_instance_reaches_the_others_profile_page_within_the_poll() {
    let (_dir, a, b) = two_instances();
    let agent = http::agent();

    let session = http::login(&agent, &a.base, "admin", ACCESS);
    let before = a.profile(&agent, &session.access);
    assert!(before.contains("login_succeeded"));
    assert!(!before.contains("login_failed"), "no failure yet");

    // A wrong password for the same account, on B.
    let status = agent
        .post(format!("{}/api/auth/login", b.base))
        .header("Content-Type", "application/json")
        .send(r#"{"username": "admin", "password": "not the password at all"}"#)
        .unwrap()
        .status();
    assert_eq!(status, 401);
    let failed_at = Instant::now();

    let deadline = failed_at + Duration::from_secs(POLL_SECONDS * 5 + 5);
    while !a.profile(&agent, &session.access).contains("login_failed") {
        assert!(
            Instant::now() < deadline,
            "A kept showing a profile without B's event"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!(
        "B's event showed on A after {:?} (poll {POLL_SECONDS}s)",
        failed_at.elapsed()
    );
}

//! The rotation rules as plain functions over a connection and a clock, without HTTP.

#![allow(clippy::unwrap_used)]

mod common;

use doorman::accounts::{self, Role};
use doorman::auth::refresh::{self, RefreshError};
use doorman::auth::session::{self, Lifetimes};
use doorman::client::ClientInfo;
use doorman::db::{self, Conn, Db};

const LIFETIMES: Lifetimes = Lifetimes {
    access_ttl: 60,
    refresh_ttl: 3600,
    session_max_age: 7200,
    reuse_grace: 10,
};
const T0: i64 = 1_800_000_000;

fn client() -> ClientInfo {
    ClientInfo {
        ip: "127.0.0.1".into(),
        user_agent: "rules test".into(),
    }
}

fn setup() -> (tempfile::TempDir, Db, session::Started) {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(&common::backend::database_url(dir.path())).unwrap();
    let mut conn = db.conn().unwrap();
    let user =
        accounts::create_user(&mut conn, T0, "alice", "not-a-real-hash", Role::User).unwrap();
    let started = session::start(&mut conn, T0, &LIFETIMES, &user, false, &client()).unwrap();
    drop(conn);
    (dir, db, started)
}

fn rotate(conn: &mut Conn, now: i64, token: &str) -> Result<String, RefreshError> {
    refresh::rotate(conn, now, &LIFETIMES, token, &client()).map(|r| r.refresh_token)
}

fn live(conn: &mut Conn, started: &session::Started) -> i64 {
    db::refresh_tokens::count_live(conn, started.session.id).unwrap()
}

fn end_reason(conn: &mut Conn, started: &session::Started) -> Option<String> {
    db::sessions::find(conn, started.session.id)
        .unwrap()
        .unwrap()
        .end_reason
}

#[test]
fn each_rotation_replaces_the_live_token() {
    let (_dir, db, started) = setup();
    let conn = &mut *db.conn().unwrap();
    let mut token = started.refresh_token.clone();
    for step in 1..=5 {
        let next = rotate(conn, T0 + step * 100, &token).unwrap();
        assert_ne!(next, token);
        assert_eq!(next.len(), 43, "256 bits, URL-safe");
        assert_eq!(live(conn, &started), 1);
        token = next;
    }
}

#[test]
fn the_predecessor_within_the_grace_gets_the_same_successor_without_writes() {
    let (_dir, db, started) = setup();
    let conn = &mut *db.conn().unwrap();
    let first = rotate(conn, T0 + 100, &started.refresh_token).unwrap();
    let tokens = db::refresh_tokens::count_live(conn, started.session.id).unwrap();
    for delay in [0, 5, 10] {
        assert_eq!(
            rotate(conn, T0 + 100 + delay, &started.refresh_token).unwrap(),
            first
        );
    }
    assert_eq!(
        db::refresh_tokens::count_live(conn, started.session.id).unwrap(),
        tokens
    );
    assert_eq!(end_reason(conn, &started), None);
}

#[test]
fn the_predecessor_after_the_grace_revokes_the_family() {
    let (_dir, db, started) = setup();
    let conn = &mut *db.conn().unwrap();
    let live_token = rotate(conn, T0 + 100, &started.refresh_token).unwrap();
    let err = rotate(conn, T0 + 111, &started.refresh_token).unwrap_err();
    assert!(matches!(err, RefreshError::Reused { .. }), "{err:?}");
    assert_eq!(
        end_reason(conn, &started).as_deref(),
        Some("refresh_token_reuse")
    );
    assert!(matches!(
        rotate(conn, T0 + 112, &live_token),
        Err(RefreshError::SessionEnded)
    ));
    assert_eq!(
        db::events::count_kind(conn, "refresh_token_reuse").unwrap(),
        1
    );
}

#[test]
fn the_predecessor_is_reuse_once_its_successor_was_rotated_too() {
    let (_dir, db, started) = setup();
    let conn = &mut *db.conn().unwrap();
    let second = rotate(conn, T0 + 100, &started.refresh_token).unwrap();
    rotate(conn, T0 + 101, &second).unwrap();
    assert!(matches!(
        rotate(conn, T0 + 102, &started.refresh_token),
        Err(RefreshError::Reused { .. })
    ));
}

#[test]
fn unknown_tokens_change_nothing() {
    let (_dir, db, started) = setup();
    let conn = &mut *db.conn().unwrap();
    for junk in [
        "",
        "x",
        &"y".repeat(500),
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    ] {
        assert!(matches!(
            rotate(conn, T0 + 1, junk),
            Err(RefreshError::Unknown)
        ));
    }
    assert_eq!(end_reason(conn, &started), None);
    assert_eq!(live(conn, &started), 1);
}

#[test]
fn lifetimes_end_sessions() {
    let (_dir, db, started) = setup();
    let conn = &mut *db.conn().unwrap();
    assert!(matches!(
        rotate(conn, T0 + LIFETIMES.refresh_ttl, &started.refresh_token),
        Err(RefreshError::Expired)
    ));
    assert_eq!(end_reason(conn, &started).as_deref(), Some("inactive"));

    let (_dir, db, started) = setup();
    let conn = &mut *db.conn().unwrap();
    let mut token = started.refresh_token.clone();
    let mut now = T0;
    while now + 3000 < T0 + LIFETIMES.session_max_age {
        now += 3000;
        token = rotate(conn, now, &token).unwrap();
    }
    assert!(matches!(
        rotate(conn, T0 + LIFETIMES.session_max_age, &token),
        Err(RefreshError::Expired)
    ));
    assert_eq!(end_reason(conn, &started).as_deref(), Some("expired"));
}

#[test]
fn only_hashes_are_stored() {
    let (_dir, db, started) = setup();
    let conn = &mut *db.conn().unwrap();
    let next = rotate(conn, T0 + 100, &started.refresh_token).unwrap();
    for token in [&started.refresh_token, &next] {
        let row = db::refresh_tokens::find_by_hash(conn, &session::token_hash(token))
            .unwrap()
            .unwrap();
        assert_ne!(row.token_hash, token.as_bytes());
        assert_eq!(row.token_hash.len(), 32);
    }
}

#[test]
fn a_full_database_is_an_outage_and_changes_nothing() {
    use diesel::connection::SimpleConnection;
    if common::backend::postgres_server().is_some() {
        return; // SQLite's page limit is the simulated full disk here.
    }
    let (_dir, db, started) = setup();
    let conn = &mut *db.conn().unwrap();
    let db::Conn::Sqlite(sqlite) = conn else {
        unreachable!()
    };
    // Cap the file at its current size: the next page it needs cannot be had.
    sqlite
        .batch_execute("PRAGMA max_page_count = 1; PRAGMA cache_size = 0;")
        .unwrap();
    let mut big = started.refresh_token.clone();
    let mut outcome = Ok(String::new());
    for _ in 0..200 {
        outcome = rotate(conn, T0 + 100, &big);
        match &outcome {
            Ok(next) => big = next.clone(),
            Err(_) => break,
        }
    }
    assert!(
        matches!(outcome, Err(RefreshError::Db(db::DbError::Unavailable(_)))),
        "{outcome:?}"
    );
    let db::Conn::Sqlite(sqlite) = conn else {
        unreachable!()
    };
    sqlite
        .batch_execute("PRAGMA max_page_count = 1073741823;")
        .unwrap();
    assert!(
        rotate(conn, T0 + 101, &big).is_ok(),
        "writes succeed again without a restart"
    );
    assert_eq!(live(conn, &started), 1);
}

//! The rotation rules as plain functions over a connection and a clock, without HTTP.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::too_many_lines)]

mod common;

use diesel::RunQueryDsl;
use doorman::auth::keys::ServerSecret;
use doorman::core::rotation::{self as refresh, RefreshError};
use doorman::core::sessions::{self as session, Lifetimes, SignInMethod};
use doorman::core::users::{self, Role};
use doorman::db::{self, Conn, Db, DbError};
use doorman::http::client_info::ClientInfo;

const LIFETIMES: Lifetimes = Lifetimes {
    access_ttl: 60,
    refresh_ttl: 3600,
    session_max_age: 7200,
    reuse_grace: 10,
};
const T0: i64 = 1_800_000_000;

fn secret() -> ServerSecret {
    ServerSecret::from_bytes(&[9; 32])
}

fn client() -> ClientInfo {
    ClientInfo {
        ip: "127.0.0.1".into(),
        user_agent: "rules test".into(),
    }
}

fn setup() -> (tempfile::TempDir, Db, session::Started) {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(&common::backend::database_url(dir.path())).unwrap();
    let started = common::write(&db, |tx| {
        let user = users::create_user(tx, T0, "alice", "not-a-real-hash", Role::User)?;
        session::start(
            tx,
            T0,
            &LIFETIMES,
            &user,
            false,
            &client(),
            SignInMethod::Password,
        )
    });
    (dir, db, started)
}

/// One rotation in a write transaction of its own, as the app runs it.
fn rotate(db: &Db, now: i64, token: &str) -> Result<String, RefreshError> {
    let token = token.to_owned();
    db.write_blocking(move |tx| {
        refresh::rotate(tx, now, &LIFETIMES, &secret(), &token, &client()).map_err(DbError::from)
    })
    .map_err(RefreshError::Db)?
    .map(|r| r.refresh_token)
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
        let next = rotate(&db, T0 + step * 100, &token).unwrap();
        assert_ne!(next, token);
        assert_eq!(next.len(), 54, "issue time and 256 bits, URL-safe");
        assert_eq!(live(conn, &started), 1);
        token = next;
    }
}

#[test]
fn the_predecessor_within_the_grace_gets_the_same_successor_without_writes() {
    let (_dir, db, started) = setup();
    let conn = &mut *db.conn().unwrap();
    let first = rotate(&db, T0 + 100, &started.refresh_token).unwrap();
    let tokens = db::refresh_tokens::count_live(conn, started.session.id).unwrap();
    for delay in [0, 5, 10] {
        assert_eq!(
            rotate(&db, T0 + 100 + delay, &started.refresh_token).unwrap(),
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
    let live_token = rotate(&db, T0 + 100, &started.refresh_token).unwrap();
    let err = rotate(&db, T0 + 111, &started.refresh_token).unwrap_err();
    assert!(matches!(err, RefreshError::Reused), "{err:?}");
    assert_eq!(
        end_reason(conn, &started).as_deref(),
        Some("refresh_token_reuse")
    );
    assert!(matches!(
        rotate(&db, T0 + 112, &live_token),
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
    let second = rotate(&db, T0 + 100, &started.refresh_token).unwrap();
    rotate(&db, T0 + 101, &second).unwrap();
    assert!(matches!(
        rotate(&db, T0 + 102, &started.refresh_token),
        Err(RefreshError::Reused)
    ));
}

/// The writes of a rotation take only a live token, and otherwise write nothing; PostgreSQL,
/// which also runs them outside a transaction, also only in an open session (SQLite runs them
/// only after reading the session under the write lock).
#[test]
fn the_rotation_writes_take_only_a_live_token_of_an_open_session() {
    let (_dir, db, started) = setup();
    let conn = &mut *db.conn().unwrap();
    let token_id = |conn: &mut Conn, token: &str| {
        db::refresh_tokens::find_by_hash(conn, &session::token_hash(token))
            .unwrap()
            .unwrap()
            .id
    };
    let write = |token_id: i64, now: i64| {
        let row = db::sessions::find(&mut db.conn().unwrap(), started.session.id)
            .unwrap()
            .unwrap();
        common::write(&db, move |tx| {
            let replacement = db::refresh_tokens::Replacement {
                token_id,
                session: &row,
                successor_hash: &[7; 32],
                now,
                ip: "127.0.0.1",
                user_agent: "test",
            };
            db::refresh_tokens::rotate(tx, &replacement)
        })
    };
    let first = token_id(conn, &started.refresh_token);
    let live_token = rotate(&db, T0 + 100, &started.refresh_token).unwrap();
    let rotations = db::refresh_tokens::count_rotations(conn).unwrap();

    assert!(!write(first, T0 + 200), "a used token");
    if db.is_postgres() {
        let (live_id, session_id) = (token_id(conn, &live_token), started.session.id);
        assert!(common::write(&db, move |tx| {
            db::sessions::end(tx, session_id, T0 + 300, "logout")
        }));
        assert!(!write(live_id, T0 + 400), "a token of an ended session");
    }
    assert_eq!(
        db::refresh_tokens::count_rotations(conn).unwrap(),
        rotations
    );
    assert_eq!(live(conn, &started), 1);
    let row = db::sessions::find(conn, started.session.id)
        .unwrap()
        .unwrap();
    assert_eq!(
        row.last_used_at,
        T0 + 100,
        "the session's use is not recorded"
    );
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
            rotate(&db, T0 + 1, junk),
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
        rotate(&db, T0 + LIFETIMES.refresh_ttl, &started.refresh_token),
        Err(RefreshError::Expired)
    ));
    assert_eq!(end_reason(conn, &started).as_deref(), Some("inactive"));

    let (_dir, db, started) = setup();
    let conn = &mut *db.conn().unwrap();
    let mut token = started.refresh_token.clone();
    let mut now = T0;
    while now + 3000 < T0 + LIFETIMES.session_max_age {
        now += 3000;
        token = rotate(&db, now, &token).unwrap();
    }
    assert!(matches!(
        rotate(&db, T0 + LIFETIMES.session_max_age, &token),
        Err(RefreshError::Expired)
    ));
    assert_eq!(end_reason(conn, &started).as_deref(), Some("expired"));
}

#[test]
fn only_hashes_are_stored() {
    let (_dir, db, started) = setup();
    let conn = &mut *db.conn().unwrap();
    let next = rotate(&db, T0 + 100, &started.refresh_token).unwrap();
    for token in [&started.refresh_token, &next] {
        let row = db::refresh_tokens::find_by_hash(conn, &session::token_hash(token))
            .unwrap()
            .unwrap();
        assert_ne!(row.token_hash, token.as_bytes());
        assert_eq!(row.token_hash.len(), 40, "issue time and SHA-256");
    }
}

/// Tokens handed out before tokens carried their issue time are stored under their bare hash:
/// they rotate, get their grace and are recognised when reused as before.
#[test]
fn tokens_without_an_issue_time_keep_working() {
    let (_dir, db, started) = setup();
    let conn = &mut *db.conn().unwrap();
    let old_style = doorman::crypto::random_token::<32>();
    {
        use diesel::{ExpressionMethods, QueryDsl};
        use doorman::db::schema::refresh_tokens::dsl;
        diesel::update(dsl::refresh_tokens.filter(dsl::session_id.eq(started.session.id)))
            .set(dsl::token_hash.eq(session::token_hash(&old_style)))
            .execute(conn)
            .unwrap();
    }
    assert_eq!(session::token_hash(&old_style).len(), 32);
    let next = rotate(&db, T0 + 100, &old_style).unwrap();
    assert_eq!(next.len(), 54, "its successor has an issue time");
    assert_eq!(rotate(&db, T0 + 101, &old_style).unwrap(), next);
    rotate(&db, T0 + 102, &next).unwrap();
    assert!(matches!(
        rotate(&db, T0 + 103, &old_style),
        Err(RefreshError::Reused)
    ));
}

#[test]
fn a_full_database_is_an_outage_and_changes_nothing() {
    use diesel::connection::SimpleConnection;
    if common::backend::postgres_server().is_some() {
        return; // SQLite's page limit is the simulated full disk here.
    }
    let (_dir, db, started) = setup();
    // Cap the file at its current size on the connection that writes: the next page it needs
    // cannot be had.
    let pragma = |sql: &'static str| {
        db.write_blocking(move |tx| tx.batch_execute(sql).map_err(DbError::from))
            .unwrap();
    };
    pragma("PRAGMA max_page_count = 1; PRAGMA cache_size = 0;");
    let mut big = started.refresh_token.clone();
    let mut outcome = Ok(String::new());
    for _ in 0..200 {
        outcome = rotate(&db, T0 + 100, &big);
        match &outcome {
            Ok(next) => big = next.clone(),
            Err(_) => break,
        }
    }
    assert!(
        matches!(outcome, Err(RefreshError::Db(db::DbError::Unavailable(_)))),
        "{outcome:?}"
    );
    pragma("PRAGMA max_page_count = 1073741823;");
    assert!(
        rotate(&db, T0 + 101, &big).is_ok(),
        "writes succeed again without a restart"
    );
    assert_eq!(live(&mut db.conn().unwrap(), &started), 1);
}

/// What someone with a copy of the database and an old refresh token can compute: the HMAC chain
/// under the session's stored key alone, with the issue time of the token that replaced it.
fn chain_from_database(conn: &mut Conn, started: &session::Started, token: &str) -> String {
    let mut row = db::sessions::find(conn, started.session.id)
        .unwrap()
        .unwrap();
    row.key_version = 0;
    let parent = db::refresh_tokens::find_by_hash(conn, &session::token_hash(token))
        .unwrap()
        .unwrap();
    let child = db::refresh_tokens::find_child(conn, parent.id)
        .unwrap()
        .unwrap();
    let issued = session::Issued::of_key(&child.token_hash);
    session::successor_token(&secret(), &row, token, issued)
}

#[test]
fn a_database_copy_and_an_old_token_never_yield_the_live_token() {
    let (_dir, db, started) = setup();
    let conn = &mut *db.conn().unwrap();
    let live_token = rotate(&db, T0 + 100, &started.refresh_token).unwrap();
    let forged = chain_from_database(conn, &started, &started.refresh_token);
    assert_ne!(forged, live_token);
    assert!(matches!(
        rotate(&db, T0 + 200, &forged),
        Err(RefreshError::Unknown)
    ));
    // The live token still works: the forgery changed nothing.
    rotate(&db, T0 + 201, &live_token).unwrap();
}

#[test]
fn sessions_from_before_the_server_secret_keep_working_and_move_to_it() {
    let (_dir, db, started) = setup();
    let conn = &mut *db.conn().unwrap();
    diesel::sql_query("UPDATE sessions SET key_version = 0")
        .execute(conn)
        .unwrap();
    let next = rotate(&db, T0 + 100, &started.refresh_token).unwrap();
    let old_style = chain_from_database(conn, &started, &started.refresh_token);
    assert_ne!(
        next, old_style,
        "the first rotation already uses the secret"
    );
    let row = db::sessions::find(conn, started.session.id)
        .unwrap()
        .unwrap();
    assert_eq!(row.key_version, session::KEY_VERSION);
    // A racing tab with the old token gets the same successor; the chain goes on.
    assert_eq!(rotate(&db, T0 + 101, &started.refresh_token).unwrap(), next);
    let after = rotate(&db, T0 + 200, &next).unwrap();
    assert_ne!(after, chain_from_database(conn, &started, &next));
    assert_eq!(live(conn, &started), 1);
}

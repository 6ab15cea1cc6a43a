//! The rotation rules as plain functions over a connection and a clock, without HTTP.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::too_many_lines)]

mod common;

use diesel::RunQueryDsl;
use doorman::auth::keys::ServerSecret;
use doorman::auth::roles::Role;
use doorman::core::client::ClientInfo;
use doorman::core::rotation_rules::{self as refresh, RefreshError};
use doorman::core::sessions::{self as session, Lifetimes, SignInMethod};
use doorman::core::users;
use doorman::db::{self, Conn, Db, DbError};

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
    let started = sessions_of(&db, "alice", 1).remove(0);
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
            let replacement = db::rotation_writes::Replacement {
                token_id,
                session: &row,
                successor_hash: &[7; 32],
                now,
                ip: "127.0.0.1",
                user_agent: "test",
            };
            db::rotation_writes::rotate(tx, &replacement)
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

/// Starts `n` sessions of a new user `name`.
fn sessions_of(db: &Db, name: &'static str, n: usize) -> Vec<session::Started> {
    common::write(db, move |tx| {
        let user = users::create_user(tx, T0, name, "not-a-real-hash", Role::User)?;
        (0..n)
            .map(|_| {
                session::start(
                    tx,
                    T0,
                    &LIFETIMES,
                    &user,
                    false,
                    &client(),
                    SignInMethod::Password,
                )
            })
            .collect()
    })
}

/// A PostgreSQL database (and its URL) with four sessions of one user, or `None` (skipped)
/// without one.
fn batch_setup(test: &str) -> Option<(tempfile::TempDir, String, Db, [session::Started; 4])> {
    common::backend::postgres_or_skip(test)?;
    let dir = tempfile::tempdir().unwrap();
    let url = common::backend::database_url(dir.path());
    let db = Db::open(&url).unwrap();
    let sessions = sessions_of(&db, "bob", 4).try_into().ok()?;
    Some((dir, url, db, sessions))
}

fn end_session(db: &Db, started: &session::Started, at: i64) {
    let row = started.session.clone();
    common::write(db, move |tx| {
        session::end(tx, &row, at, session::EndReason::Revoked)
    });
}

/// What a batch answered for one token, in short.
fn answered(answer: Option<&Result<refresh::Rotated, RefreshError>>) -> &'static str {
    match answer {
        None => "locked path",
        Some(Ok(_)) => "rotated",
        Some(Err(RefreshError::Unknown)) => "unknown",
        Some(Err(_)) => "refused",
    }
}

fn batch(
    db: &Db,
    now: i64,
    tokens: &[&str],
    who: &ClientInfo,
) -> Vec<Option<Result<refresh::Rotated, RefreshError>>> {
    let mut conn = db.conn().unwrap();
    let Conn::Postgresql(pg) = &mut *conn else {
        unreachable!("batches are PostgreSQL's")
    };
    let asks: Vec<refresh::Ask<'_>> = tokens
        .iter()
        .map(|presented| refresh::Ask {
            now,
            presented,
            client: who,
        })
        .collect();
    refresh::rotate_unlocked(pg, &LIFETIMES, &secret(), &asks).unwrap()
}

#[test]
#[ignore = "needs PostgreSQL: set DOORMAN_TEST_POSTGRES_URL and run with --include-ignored"]
fn a_batch_rotates_each_live_token_once_and_leaves_the_rest_to_the_locked_path() {
    let Some((_dir, _, db, sessions)) =
        batch_setup("a_batch_rotates_each_live_token_once_and_leaves_the_rest_to_the_locked_path")
    else {
        return;
    };
    let [first, used, ended, fourth] = sessions;
    let conn = &mut *db.conn().unwrap();
    let used_successor = rotate(&db, T0 + 50, &used.refresh_token).unwrap();
    end_session(&db, &ended, T0 + 60);
    let from = ClientInfo {
        ip: "192.0.2.7".into(),
        user_agent: "batch test".into(),
    };
    let too_long = "x".repeat(200);
    let tokens = [
        first.refresh_token.as_str(),
        first.refresh_token.as_str(),
        used.refresh_token.as_str(),
        ended.refresh_token.as_str(),
        "not-a-token-doorman-issued-xxxxxxxxxxxxxxxx",
        &too_long,
        fourth.refresh_token.as_str(),
    ];
    let answers = batch(&db, T0 + 100, &tokens, &from);
    assert_eq!(
        answers
            .iter()
            .map(Option::as_ref)
            .map(answered)
            .collect::<Vec<_>>(),
        [
            "rotated",
            "locked path",
            "locked path",
            "locked path",
            "unknown",
            "unknown",
            "rotated"
        ],
        "a token asked twice is rotated once; used tokens and ended sessions go on to the \
         locked path"
    );
    let Some(Ok(rotated)) = &answers[0] else {
        unreachable!()
    };
    let successor = rotated.refresh_token.clone();
    for started in [&first, &fourth, &used] {
        assert_eq!(live(conn, started), 1, "one live token per session");
    }
    let touched = db::sessions::find(conn, first.session.id).unwrap().unwrap();
    assert_eq!(
        (
            touched.last_used_at,
            touched.last_ip.as_str(),
            touched.last_user_agent.as_str()
        ),
        (T0 + 100, "192.0.2.7", "batch test")
    );
    assert_eq!(
        db::refresh_tokens::find_by_hash(conn, &session::token_hash(&used_successor))
            .unwrap()
            .unwrap()
            .used_at,
        None,
        "the session whose used token was asked is untouched"
    );

    // The locked path agrees with what the batch wrote: the racing predecessor gets the
    // batch's successor, and the successor rotates on, in a batch too.
    assert_eq!(
        rotate(&db, T0 + 101, &first.refresh_token).unwrap(),
        successor
    );
    let next = batch(&db, T0 + 102, &[&successor], &from);
    assert_eq!(answered(next[0].as_ref()), "rotated");
    assert_eq!(live(conn, &first), 1);
    assert!(matches!(
        rotate(&db, T0 + 200, &first.refresh_token),
        Err(RefreshError::Reused)
    ));
}

#[test]
#[ignore = "needs PostgreSQL: set DOORMAN_TEST_POSTGRES_URL and run with --include-ignored"]
fn a_batch_writes_only_tokens_still_live_in_sessions_still_open() {
    let Some((_dir, _, db, sessions)) =
        batch_setup("a_batch_writes_only_tokens_still_live_in_sessions_still_open")
    else {
        return;
    };
    let [first, second, third, _] = sessions;
    let mut conn = db.conn().unwrap();
    let token_of = |conn: &mut Conn, started: &session::Started| {
        db::refresh_tokens::find_by_hash(conn, &session::token_hash(&started.refresh_token))
            .unwrap()
            .unwrap()
            .id
    };
    let ids = [&first, &second, &third].map(|s| token_of(&mut conn, s));
    // Between a batch's read and its write: the first token was rotated by another request,
    // the second's session ended.
    rotate(&db, T0 + 10, &first.refresh_token).unwrap();
    end_session(&db, &second, T0 + 10);
    let hashes = [[1u8; 40], [2; 40], [3; 40]];
    let replacements: Vec<db::rotation_writes::Replacement<'_>> = [&first, &second, &third]
        .iter()
        .zip(ids)
        .zip(&hashes)
        .map(
            |((started, token_id), hash)| db::rotation_writes::Replacement {
                token_id,
                session: &started.session,
                successor_hash: hash,
                now: T0 + 20,
                ip: "192.0.2.8",
                user_agent: "stale read",
            },
        )
        .collect();
    let Conn::Postgresql(pg) = &mut *conn else {
        unreachable!("batches are PostgreSQL's")
    };
    assert_eq!(
        db::rotation_writes::rotate_many(pg, &replacements).unwrap(),
        [ids[2]]
    );
    for (hash, written) in hashes.iter().zip([false, false, true]) {
        assert_eq!(
            db::refresh_tokens::find_by_hash(&mut conn, hash)
                .unwrap()
                .is_some(),
            written
        );
    }
    for (started, touched) in [(&first, false), (&second, false), (&third, true)] {
        let row = db::sessions::find(&mut conn, started.session.id)
            .unwrap()
            .unwrap();
        assert_eq!(row.last_ip == "192.0.2.8", touched);
        assert_eq!(live(&mut conn, started), 1);
    }
}

/// Waits until `n` backends of `watch`'s database wait for a lock.
fn wait_for_lock_waiters(watch: &mut diesel::pg::PgConnection, n: i64) {
    use diesel::sql_types::BigInt;
    #[derive(diesel::QueryableByName)]
    struct Waiting {
        #[diesel(sql_type = BigInt)]
        count: i64,
    }
    let started = std::time::Instant::now();
    loop {
        let waiting: Waiting = diesel::sql_query(
            "SELECT count(*) AS count FROM pg_stat_activity \
             WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
        .get_result(watch)
        .unwrap();
        if waiting.count >= n {
            return;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "{n} lock waiters expected"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
#[ignore = "needs PostgreSQL: set DOORMAN_TEST_POSTGRES_URL and run with --include-ignored"]
fn a_batch_that_fails_leaves_each_rotation_to_the_locked_path() {
    use diesel::Connection as _;
    use diesel::connection::SimpleConnection as _;
    use doorman::core::rotation_runner::Rotator;

    let Some((_dir, url, db, [a, b, c, _])) =
        batch_setup("a_batch_that_fails_leaves_each_rotation_to_the_locked_path")
    else {
        return;
    };
    assert!(
        a.session.id < b.session.id,
        "a batch locks a's session first"
    );
    let connect = || diesel::pg::PgConnection::establish(&url).unwrap();
    let (mut holds_b, mut holds_c, mut watch) = (connect(), connect(), connect());
    let lock = |id: i64| format!("SELECT 1 FROM sessions WHERE id = {id} FOR UPDATE");
    holds_b
        .batch_execute(&format!("BEGIN; {}", lock(b.session.id)))
        .unwrap();
    holds_c
        .batch_execute(&format!("BEGIN; {}", lock(c.session.id)))
        .unwrap();

    let runtime = rocket::tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let rotator = std::sync::Arc::new(Rotator::new(db.clone(), LIFETIMES, secret()).unwrap());
    let spawn = |started: &session::Started| {
        let (rotator, token) = (rotator.clone(), started.refresh_token.clone());
        runtime.spawn(async move { rotator.rotate(T0 + 10, token, client()).await })
    };
    // The batch thread waits on c's session; a's and b's rotations queue behind it and make the
    // next batch together.
    let for_c = spawn(&c);
    wait_for_lock_waiters(&mut watch, 1);
    let (for_a, for_b) = (spawn(&a), spawn(&b));
    std::thread::sleep(std::time::Duration::from_millis(300));
    holds_c.batch_execute("COMMIT").unwrap();
    // That batch locks a's session, then waits for b's. Taking a's lock too closes a circle:
    // PostgreSQL ends the batch's statement (it waited first, so it finds the deadlock).
    wait_for_lock_waiters(&mut watch, 1);
    assert!(!for_a.is_finished(), "a and b were served in one batch");
    holds_b
        .batch_execute(&lock(a.session.id))
        .expect("the batch, not this transaction, is the deadlock's victim");
    holds_b.batch_execute("COMMIT").unwrap();

    let answers = runtime.block_on(async {
        [
            for_a.await.unwrap(),
            for_b.await.unwrap(),
            for_c.await.unwrap(),
        ]
    });
    let mut conn = db.conn().unwrap();
    for (answer, started) in answers.iter().zip([&a, &b, &c]) {
        let rotated = answer.as_ref().expect("rotated on the locked path");
        assert_ne!(rotated.refresh_token, started.refresh_token);
        assert_eq!(live(&mut conn, started), 1);
    }
    assert_eq!(db::refresh_tokens::count_rotations(&mut conn).unwrap(), 3);
}

//! Property test: random sequences of rotations, racing rotations, reuse, revocation, password
//! changes and clock jumps, checked step by step against a simple model of the session rules.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::too_many_lines)]

mod common;

use doorman::auth::keys::ServerSecret;
use doorman::auth::roles::Role;
use doorman::core::client::ClientInfo;
use doorman::core::events::EventKind;
use doorman::core::rotation_rules::RefreshError;
use doorman::core::rotation_runner::Rotator;
use doorman::core::sessions::{self as session, EndReason, Ending, Lifetimes, SignInMethod};
use doorman::core::users;
use doorman::db::{self, Db};
use proptest::prelude::*;

const LIFETIMES: Lifetimes = Lifetimes {
    access_ttl: 60,
    refresh_ttl: 600,
    session_max_age: 3000,
    reuse_grace: 10,
};
const T0: i64 = 1_800_000_000;

#[derive(Debug, Clone)]
enum Op {
    /// Present the live token.
    Rotate,
    /// Present the live token's immediate predecessor (a racing tab, or a thief).
    Predecessor,
    /// Present an older ancestor.
    Ancestor(usize),
    /// Present a token doorman never issued.
    Junk,
    Revoke,
    PasswordChange,
    Wait(i64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => Just(Op::Rotate),
        3 => Just(Op::Predecessor),
        1 => (0usize..8).prop_map(Op::Ancestor),
        1 => Just(Op::Junk),
        1 => Just(Op::Revoke),
        1 => Just(Op::PasswordChange),
        4 => prop_oneof![
            Just(1i64),
            Just(LIFETIMES.reuse_grace),
            Just(LIFETIMES.reuse_grace + 1),
            Just(LIFETIMES.refresh_ttl - 1),
            Just(LIFETIMES.refresh_ttl),
            Just(LIFETIMES.session_max_age),
        ]
        .prop_map(Op::Wait),
    ]
}

/// What the rules say should happen, and what the model remembers.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
enum Expect {
    NewToken,
    SameLiveToken,
    Unknown,
    Ended,
    Expired,
    Reused,
}

struct Model {
    live: String,
    live_since: i64,
    /// The immediate predecessor and when it was used.
    predecessor: Option<(String, i64)>,
    ancestors: Vec<String>,
    ended: bool,
    expires_at: i64,
    reuses: i64,
}

impl Model {
    /// The outcome of presenting `token` at `now`, by the rules, in their order.
    fn expect(&self, token: &str, now: i64) -> Expect {
        let known = token == self.live
            || self.predecessor.as_ref().is_some_and(|(p, _)| p == token)
            || self.ancestors.iter().any(|a| a == token);
        if !known {
            return Expect::Unknown;
        }
        if self.ended {
            return Expect::Ended;
        }
        if now >= self.expires_at {
            return Expect::Expired;
        }
        if token == self.live {
            return if now >= self.live_since + LIFETIMES.refresh_ttl {
                Expect::Expired
            } else {
                Expect::NewToken
            };
        }
        match &self.predecessor {
            Some((p, used_at)) if p == token && now - used_at <= LIFETIMES.reuse_grace => {
                Expect::SameLiveToken
            }
            _ => Expect::Reused,
        }
    }
}

fn secret() -> ServerSecret {
    ServerSecret::from_bytes(&[9; 32])
}

fn client() -> ClientInfo {
    ClientInfo {
        ip: "127.0.0.1".into(),
        user_agent: "model".into(),
    }
}

fn run(db: &Db, ops: &[Op]) {
    let runtime = rocket::tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let rotator = Rotator::new(db.clone(), LIFETIMES, secret()).unwrap();
    let (user, started) = common::write(db, |tx| {
        let user = users::create_user(tx, T0, "alice", "not-a-hash", Role::User)?;
        let started = session::start(
            tx,
            T0,
            &LIFETIMES,
            &user,
            false,
            &client(),
            SignInMethod::Password,
        )?;
        Ok((user, started))
    });
    let conn = &mut *db.conn().unwrap();
    let session_id = started.session.id;
    let mut model = Model {
        live: started.refresh_token,
        live_since: T0,
        predecessor: None,
        ancestors: Vec::new(),
        ended: false,
        expires_at: T0 + LIFETIMES.session_max_age,
        reuses: 0,
    };
    let mut now = T0;
    for op in ops {
        let presented = match op {
            Op::Wait(seconds) => {
                now += seconds;
                continue;
            }
            Op::Revoke | Op::PasswordChange => {
                let reason = if matches!(op, Op::Revoke) {
                    EndReason::Revoked
                } else {
                    EndReason::PasswordChanged
                };
                let user_id = user.id;
                common::write(db, move |tx| {
                    let ending = Ending {
                        now,
                        reason,
                        event: EventKind::SessionRevoked,
                        client: &client(),
                        detail: None,
                    };
                    session::end_all_except(tx, user_id, None, &ending)
                });
                model.ended = true;
                continue;
            }
            Op::Rotate => model.live.clone(),
            Op::Predecessor => match &model.predecessor {
                Some((p, _)) => p.clone(),
                None => continue,
            },
            Op::Ancestor(i) => match model.ancestors.get(*i) {
                Some(a) => a.clone(),
                None => continue,
            },
            Op::Junk => "not-a-token-doorman-issued-xxxxxxxxxxxxxxxx".to_owned(),
        };
        let expected = model.expect(&presented, now);
        // As the app rotates: a batch on PostgreSQL, then maybe a write transaction.
        let outcome = runtime.block_on(rotator.rotate(now, presented, client()));
        match (expected, &outcome) {
            (Expect::NewToken, Ok(rotated)) => {
                assert_ne!(rotated.refresh_token, model.live);
                if let Some((old, _)) = model.predecessor.take() {
                    model.ancestors.push(old);
                }
                model.predecessor = Some((
                    std::mem::replace(&mut model.live, rotated.refresh_token.clone()),
                    now,
                ));
                model.live_since = now;
            }
            (Expect::SameLiveToken, Ok(rotated)) => {
                assert_eq!(rotated.refresh_token, model.live, "no branching");
            }
            (Expect::Unknown, Err(RefreshError::Unknown))
            | (Expect::Ended, Err(RefreshError::SessionEnded)) => {}
            (Expect::Expired, Err(RefreshError::Expired)) => model.ended = true,
            (Expect::Reused, Err(RefreshError::Reused)) => {
                model.ended = true;
                model.reuses += 1;
            }
            (expected, outcome) => panic!(
                "after {op:?} at +{}s: expected {expected:?}, got {outcome:?}",
                now - T0
            ),
        }
        // Invariants, after every step.
        assert!(
            db::refresh_tokens::count_live(conn, session_id).unwrap() <= 1,
            "at most one live token"
        );
        let row = db::sessions::find(conn, session_id).unwrap().unwrap();
        assert_eq!(
            row.ended_at.is_some(),
            model.ended,
            "ended exactly when the model says"
        );
        assert_eq!(
            db::events::count_kind(conn, "refresh_token_reuse").unwrap(),
            model.reuses,
            "one event per reuse"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: if common::backend::postgres_server().is_some() { 24 } else { 96 },
        ..ProptestConfig::default()
    })]

    #[test]
    fn rotation_follows_the_rules(ops in proptest::collection::vec(op(), 1..40)) {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&common::backend::database_url(dir.path())).unwrap();
        run(&db, &ops);
    }
}

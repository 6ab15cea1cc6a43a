//! Where refresh tokens are rotated, by the rules of [`rotation`]. On SQLite each rotation is a
//! write transaction on the writer thread, which commits waiting writes together itself. On
//! PostgreSQL rotations queue for one thread per instance that serves them in batches
//! ([`rotation_rules::rotate_unlocked`]: one read and one call for the whole batch, where a rotation
//! alone cost a read and a call); what a batch leaves undecided (anything but a plain rotation)
//! goes on to the locked path, a transaction of its own. One thread, not several: rotations
//! that arrive while a batch is served make the next batch larger, and PostgreSQL's cost per
//! rotation falls with the batch's size (docs/performance.md).

use rocket::tokio::sync::oneshot;

use super::client::ClientInfo;
use super::rotation_rules::{self, Ask, RefreshError, Rotated};
use super::sessions::Lifetimes;
use crate::auth::keys::ServerSecret;
use crate::db::batches::Batches;
use crate::db::{Conn, Db, DbError};

/// Most rotations in one batch.
const MAX_BATCH: usize = 64;

/// What a batch made of one rotation.
#[allow(clippy::large_enum_variant)] // moved once, through a channel: a box would cost more
enum Outcome {
    Decided(Result<Rotated, RefreshError>),
    /// Left to the locked path, with what it needs.
    Undecided {
        presented: String,
        client: ClientInfo,
    },
}

/// A rotation waiting for its batch.
struct Queued {
    now: i64,
    presented: String,
    client: ClientInfo,
    reply: oneshot::Sender<Outcome>,
}

/// Rotates refresh tokens for the whole process (kept in managed state).
pub struct Rotator {
    db: Db,
    lifetimes: Lifetimes,
    secret: ServerSecret,
    /// PostgreSQL's batches; SQLite has its writer.
    batches: Option<Batches<Queued>>,
}

impl Rotator {
    pub fn new(db: Db, lifetimes: Lifetimes, secret: ServerSecret) -> Result<Rotator, DbError> {
        let batches = if db.is_postgres() {
            let secret = secret.clone();
            Some(Batches::start(
                &db,
                "doorman-rotations",
                MAX_BATCH,
                move |conn, batch| serve(conn, &lifetimes, &secret, batch),
            )?)
        } else {
            None
        };
        Ok(Rotator {
            db,
            lifetimes,
            secret,
            batches,
        })
    }

    /// Rotates `presented` at `now` ([`rotation_rules::rotate`] tells the rules), for `client`.
    pub async fn rotate(
        &self,
        now: i64,
        presented: String,
        client: ClientInfo,
    ) -> Result<Rotated, RefreshError> {
        let (presented, client) = match &self.batches {
            Some(batches) => match batched(batches, now, presented, client).await {
                Outcome::Decided(answer) => return answer,
                Outcome::Undecided { presented, client } => (presented, client),
            },
            None => (presented, client),
        };
        let (lifetimes, secret) = (self.lifetimes, self.secret.clone());
        self.db
            .write(move |tx| {
                rotation_rules::rotate(tx, now, &lifetimes, &secret, &presented, &client)
                    .map_err(DbError::from)
            })
            .await?
    }
}

/// Queues a rotation for its batch and waits for what the batch made of it.
async fn batched(
    batches: &Batches<Queued>,
    now: i64,
    presented: String,
    client: ClientInfo,
) -> Outcome {
    let (reply, answer) = oneshot::channel();
    let queued = Queued {
        now,
        presented,
        client,
        reply,
    };
    if batches.send(queued).is_err() {
        return unavailable("the rotation thread has stopped");
    }
    answer
        .await
        .unwrap_or_else(|_| unavailable("the rotation was dropped"))
}

fn unavailable(why: &str) -> Outcome {
    Outcome::Decided(Err(RefreshError::Db(DbError::Unavailable(why.into()))))
}

/// Serves one batch on PostgreSQL and answers each of its rotations. When the batch's queries
/// fail (say PostgreSQL chose it as the victim of a deadlock with an admin's change to many
/// sessions), its rotations go to the locked path one by one; when the database is out of
/// reach, each hears so (and the connection, having found its server gone, is closed).
fn serve(
    conn: Result<&mut Conn, DbError>,
    lifetimes: &Lifetimes,
    secret: &ServerSecret,
    batch: Vec<Queued>,
) {
    let asks: Vec<Ask<'_>> = batch
        .iter()
        .map(|q| Ask {
            now: q.now,
            presented: &q.presented,
            client: &q.client,
        })
        .collect();
    let answers = match conn {
        Ok(Conn::Postgresql(pg)) => {
            rotation_rules::rotate_unlocked(pg, lifetimes, secret, &asks).map_err(DbError::from)
        }
        Ok(Conn::Sqlite(_)) => Err(DbError::Unavailable(
            "batched rotations are PostgreSQL's".into(),
        )),
        Err(e) => Err(e),
    };
    let mut answers = match answers {
        Ok(answers) => answers.into_iter(),
        Err(DbError::Query(e)) => {
            rocket::warn!("a batch of rotations failed ({e}); each goes on alone");
            Vec::new().into_iter()
        }
        Err(DbError::Unavailable(why)) => {
            for q in batch {
                let _ = q.reply.send(unavailable(&why));
            }
            return;
        }
    };
    for q in batch {
        let outcome = match answers.next().flatten() {
            Some(answer) => Outcome::Decided(answer),
            None => Outcome::Undecided {
                presented: q.presented,
                client: q.client,
            },
        };
        let _ = q.reply.send(outcome);
    }
}

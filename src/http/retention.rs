//! Security events past `events_retention` are deleted every [`PRUNE_EVERY`] seconds while
//! the server runs (and once at every start, by `lib.rs`), so nobody can grow the table for
//! good.

use std::time::Duration;

use rocket::fairing::AdHoc;
use rocket::tokio::time::sleep;

use crate::clock::SharedClock;
use crate::config::Config;
use crate::core::events;
use crate::db::{Db, DbError};

/// How often old security events are deleted, in seconds.
const PRUNE_EVERY: u64 = 600;

pub fn pruner() -> AdHoc {
    AdHoc::on_liftoff("security-event retention", |rocket| {
        Box::pin(async move {
            let (Some(config), Some(db), Some(clock)) = (
                rocket.state::<Config>(),
                rocket.state::<Db>(),
                rocket.state::<SharedClock>(),
            ) else {
                return;
            };
            let (db, clock) = (db.clone(), clock.clone());
            let retention = config.events_retention.as_i64();
            let shutdown = rocket.shutdown();
            rocket::tokio::spawn(async move {
                loop {
                    rocket::tokio::select! {
                        () = shutdown.clone() => break,
                        () = sleep(Duration::from_secs(PRUNE_EVERY)) => {}
                    }
                    let now = clock.now();
                    let pruned = db
                        .write(move |conn| {
                            events::prune(conn, now, retention).map_err(DbError::from)
                        })
                        .await;
                    if let Err(e) = pruned {
                        rocket::warn!("pruning security events: {e}");
                    }
                }
            });
        })
    })
}

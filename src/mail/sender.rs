//! The sender: delivers the outbox after each commit that wrote to it and every few seconds
//! (mail another instance queued, retries), one mail at a time. A mail is claimed for
//! [`LEASE`] before it is sent, so two instances never send it at once; one that fails is
//! tried again with growing pauses. It runs off the request path: a slow or absent SMTP
//! server never delays a login.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rocket::fairing::AdHoc;
use rocket::tokio::sync::Notify;
use rocket::tokio::time::sleep;

use super::letters::Letters;
use super::transport::Transport;
use crate::auth::keys::ServerSecret;
use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::db::{self, Db, DbError, outbox::MailRow};
use crate::http::device_labels::DeviceLabels;

/// How often the outbox is looked at without being woken.
const POLL: Duration = Duration::from_secs(5);

/// How long a claimed mail is left to its sender before another instance may try it.
const LEASE: i64 = 60;

/// Attempts before a mail is given up (about a day and a half of pauses).
const MAX_ATTEMPTS: i32 = 40;

/// The pause after `attempts` failed attempts: 5 s, doubling to an hour.
fn backoff(attempts: i32) -> i64 {
    5_i64
        .saturating_mul(1 << (attempts - 1).clamp(0, 10))
        .min(3600)
}

/// Wakes the sender and counts what it did: kept in managed state.
#[derive(Clone, Default)]
pub struct Outbox {
    wake: Arc<Notify>,
    stats: Arc<Stats>,
}

#[derive(Default)]
struct Stats {
    sent: AtomicU64,
    failed: AtomicU64,
}

impl Outbox {
    /// Mail was committed: deliver it now rather than at the next poll.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Prometheus lines: mail sent and failed attempts by this instance.
    pub fn render_metrics(&self, out: &mut String, pending: i64) {
        use std::fmt::Write as _;
        let _ = writeln!(
            out,
            "# HELP doorman_mail_sent Mail delivered by this instance.\n# TYPE doorman_mail_sent counter\ndoorman_mail_sent {}",
            self.stats.sent.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP doorman_mail_failures Failed delivery attempts by this instance (each is retried).\n# TYPE doorman_mail_failures counter\ndoorman_mail_failures {}",
            self.stats.failed.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP doorman_mail_pending Mail not delivered yet (all instances).\n# TYPE doorman_mail_pending gauge\ndoorman_mail_pending {pending}"
        );
    }
}

/// Starts the sender when the server lifts off; it stops with the server.
pub fn sender() -> AdHoc {
    AdHoc::on_liftoff("mail sender", |rocket| {
        Box::pin(async move {
            let (Some(config), Some(db), Some(outbox), Some(secret), Some(labels)) = (
                rocket.state::<Config>(),
                rocket.state::<Db>(),
                rocket.state::<Outbox>(),
                rocket.state::<ServerSecret>(),
                rocket.state::<DeviceLabels>(),
            ) else {
                return;
            };
            let template_dir: PathBuf = rocket
                .figment()
                .extract_inner("template_dir")
                .unwrap_or_else(|_| PathBuf::from("templates"));
            let letters = Letters::load(
                &template_dir,
                config.public_url.clone(),
                config.mail_from.clone(),
                secret.clone(),
                labels.clone(),
            );
            let (letters, transport) = match (letters, Transport::new(config)) {
                (Ok(letters), Ok(transport)) => (Arc::new(letters), Arc::new(transport)),
                (Err(why), _) | (_, Err(why)) => {
                    rocket::error!("mail cannot be sent: {why}");
                    return;
                }
            };
            let (db, outbox, shutdown) = (db.clone(), outbox.clone(), rocket.shutdown());
            rocket::tokio::spawn(async move {
                loop {
                    let (db, letters, transport, stats) = (
                        db.clone(),
                        letters.clone(),
                        transport.clone(),
                        outbox.stats.clone(),
                    );
                    let drained = rocket::tokio::task::spawn_blocking(move || {
                        drain(&db, &letters, &transport, &stats);
                    });
                    if let Err(e) = drained.await {
                        rocket::error!("mail sender: {e}");
                    }
                    rocket::tokio::select! {
                        () = shutdown.clone() => break,
                        () = outbox.wake.notified() => {}
                        () = sleep(POLL) => {}
                    }
                }
            });
        })
    })
}

/// Sends every mail due now, one at a time.
fn drain(db: &Db, letters: &Letters, transport: &Transport, stats: &Stats) {
    loop {
        let now = SystemClock.now();
        // A read first: the poll finds nothing most of the time, and needs no write for that.
        let due = db
            .conn()
            .and_then(|mut conn| db::outbox::next_due(&mut conn, now).map_err(DbError::from));
        let due = match due {
            Ok(Some(mail)) => mail,
            Ok(None) => return,
            Err(e) => {
                rocket::warn!("mail sender: {e}");
                return;
            }
        };
        // The claim holds only if nobody claimed the mail since it was read.
        let claimed = db.write_blocking(move |tx| {
            db::outbox::claim(tx, &due, now + LEASE)
                .map(|claimed| claimed.then_some(due))
                .map_err(DbError::from)
        });
        let mail = match claimed {
            Ok(Some(mail)) => mail,
            // Another instance took it: look again.
            Ok(None) => continue,
            Err(e) => {
                rocket::warn!("mail sender: {e}");
                return;
            }
        };
        let delivered = letters
            .compose(&mail)
            .and_then(|message| transport.deliver(&file_name(&mail), &message));
        record(db, &mail, delivered, stats);
    }
}

fn file_name(mail: &MailRow) -> String {
    format!("{}-{:06}", mail.created_at, mail.id)
}

fn record(db: &Db, mail: &MailRow, delivered: Result<(), String>, stats: &Stats) {
    let (id, attempts, now) = (mail.id, mail.attempts + 1, SystemClock.now());
    let written = match delivered {
        Ok(()) => {
            stats.sent.fetch_add(1, Ordering::Relaxed);
            db.write_blocking(move |tx| db::outbox::sent(tx, id, now).map_err(DbError::from))
        }
        Err(why) => {
            stats.failed.fetch_add(1, Ordering::Relaxed);
            let next = if attempts >= MAX_ATTEMPTS {
                rocket::error!("mail {id} given up after {attempts} attempts: {why}");
                i64::MAX
            } else {
                rocket::warn!("mail {id} not sent (attempt {attempts}), retried later: {why}");
                now + backoff(attempts)
            };
            db.write_blocking(move |tx| {
                db::outbox::failed(tx, id, next, &why).map_err(DbError::from)
            })
        }
    };
    if let Err(e) = written {
        rocket::warn!("mail sender: {e}");
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn pauses_grow_to_an_hour() {
        assert_eq!(super::backoff(1), 5);
        assert_eq!(super::backoff(2), 10);
        assert_eq!(super::backoff(20), 3600);
    }
}

//! `g`: two doorman instances on one PostgreSQL, started the way CI starts its cluster
//! (`.ci/postgres`: Debian's packages, a throwaway data folder), with `synchronous_commit = off`
//! for the bench database (the match for SQLite's `synchronous = NORMAL`). The two servers and
//! PostgreSQL share the cores, as several instances do; the load generator stays where it is.
//! Their JSON refresh takes turns with the SQLite instance's at the same load, for the ratio.
//! Without PostgreSQL at hand the rows are left out, with a line saying so.

use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use diesel::Connection as _;
use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;

use super::wire::Connection;
use super::{
    ACCESS, Launch, Row, Server, Step, api_login, free_port, get, pinned_command, row, run_for,
    this_build,
};

const DATABASE: &str = "doorman_bench";

/// A PostgreSQL cluster for the bench, stopped when dropped.
pub struct Cluster {
    data: tempfile::TempDir,
    port: u16,
}

fn script() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(".ci/postgres")
}

impl Cluster {
    pub fn start() -> Option<Cluster> {
        let data = tempfile::tempdir().ok()?;
        let port = free_port();
        let started = pinned_command(&script(), false)
            .arg("start")
            .env("DOORMAN_TEST_PGDATA", data.path())
            .env("DOORMAN_TEST_PGPORT", port.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !started {
            eprintln!(
                "g: skipped (no PostgreSQL: Debian's postgresql package and root are needed)"
            );
            return None;
        }
        let cluster = Cluster { data, port };
        cluster.database(DATABASE)?;
        Some(cluster)
    }

    /// Creates database `name` (`synchronous_commit = off`) and gives its URL.
    pub fn database(&self, name: &str) -> Option<String> {
        let mut admin = PgConnection::establish(&self.url("postgres")).ok()?;
        for statement in [
            format!("DROP DATABASE IF EXISTS {name}"),
            format!("CREATE DATABASE {name}"),
            format!("ALTER DATABASE {name} SET synchronous_commit = off"),
        ] {
            admin.batch_execute(&statement).ok()?;
        }
        Some(self.url(name))
    }

    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new(script())
            .arg("stop")
            .env("DOORMAN_TEST_PGDATA", self.data.path())
            .env("DOORMAN_TEST_PGPORT", self.port.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// Two instances of `program` sharing one data folder (so one signing key and server secret)
/// and the database at `url`.
pub fn instances(url: &str, dir: &std::path::Path, program: &std::path::Path) -> [Server; 2] {
    let launch = |log| Launch {
        program,
        bcrypt_cost: 4,
        database_url: Some(url),
        pinned: false,
        log,
    };
    // The first creates the schema and the admin; the second starts on them.
    let first = Server::launch(dir, &launch("doorman-1.log"));
    let second = Server::launch(dir, &launch("doorman-2.log"));
    [first, second]
}

/// This build's pair, on the bench database.
pub fn this_builds(cluster: &Cluster, dir: &std::path::Path) -> [Server; 2] {
    instances(&cluster.url(DATABASE), dir, this_build())
}

/// The `g` rows of the pair alone: the signed-in page and silent refresh, spread over both
/// instances (JSON refresh takes turns with SQLite, in `main`).
pub fn rows(pair: &[Server; 2], n: usize, duration: Duration, silent: Vec<Step>) -> Vec<Row> {
    let both = [&pair[0], &pair[1]];
    let (access, _) = api_login(&pair[0].base, "admin");
    let cookie = format!("{ACCESS}={access}");
    let pages = (0..n)
        .map(|_| get("/profile", Some(cookie.clone())))
        .collect();
    vec![
        row(
            "g. PostgreSQL, 2 instances: GET /profile (signed in)",
            run_for(&both, pages, duration),
        ),
        row(
            "g. PostgreSQL, 2 instances: silent refresh",
            run_for(&both, silent, duration),
        ),
    ]
}

/// How long a session ended on the first instance takes to be refused by the second, while
/// `load` keeps both busy: the second's profile page is cached for the token (no database read),
/// so only its revocation set can turn it away.
pub fn revocation_reach(pair: &[Server; 2], rounds: usize, load: Vec<Step>) -> Vec<Duration> {
    let both = [&pair[0], &pair[1]];
    thread::scope(|scope| {
        let busy = scope.spawn(|| run_for(&both, load, Duration::from_secs(rounds as u64 * 3)));
        let mut reached = Vec::new();
        for _ in 0..rounds {
            let (access, _) = api_login(&pair[0].base, "admin");
            let cookie = format!("{ACCESS}={access}");
            let mut second = Connection::new(&pair[1].base);
            let warm = second.get("/profile", Some(&cookie));
            if !warm.is_ok_and(|r| r.status == 200) {
                continue;
            }
            let mut first = Connection::new(&pair[0].base);
            let me = first.bearer("GET", "/api/me", &access).ok();
            let sid = me
                .and_then(|r| serde_json::from_slice::<serde_json::Value>(&r.body).ok())
                .and_then(|v| Some(v["session"]["sid"].as_str()?.to_owned()));
            let Some(sid) = sid else { continue };
            let ended_at = Instant::now();
            let ended = first.bearer("DELETE", &format!("/api/sessions/{sid}"), &access);
            if !ended.is_ok_and(|r| r.status == 204) {
                continue;
            }
            while second
                .get("/profile", Some(&cookie))
                .is_ok_and(|r| r.status == 200)
                && ended_at.elapsed() < Duration::from_secs(30)
            {
                thread::sleep(Duration::from_millis(5));
            }
            reached.push(ended_at.elapsed());
        }
        let _ = busy.join();
        reached
    })
}

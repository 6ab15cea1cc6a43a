//! `doorman user …` run as a subprocess against a temporary database.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::too_many_lines)]

mod common;

use std::io::Write;
use std::process::{Command, Output, Stdio};

struct Cli {
    dir: tempfile::TempDir,
    database_url: String,
}

impl Cli {
    fn new() -> Cli {
        let dir = tempfile::tempdir().unwrap();
        let database_url = common::backend::database_url(dir.path());
        Cli { dir, database_url }
    }

    fn run(&self, args: &[&str], stdin: &str) -> Output {
        let mut child = Command::new(env!("CARGO_BIN_EXE_doorman"))
            .args(args)
            .current_dir(self.dir.path())
            .env("DOORMAN_DATA_DIR", self.dir.path())
            .env("DOORMAN_DATABASE_URL", &self.database_url)
            .env("DOORMAN_BCRYPT_COST", "4")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // A command that stops early (a usage error) never reads its input: the pipe may be
        // closed before the write, which is no failure of the test.
        let written = child.stdin.take().unwrap().write_all(stdin.as_bytes());
        if let Err(e) = written {
            assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "{e}");
        }
        child.wait_with_output().unwrap()
    }

    fn ok(&self, args: &[&str], stdin: &str) -> String {
        let out = self.run(args, stdin);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn fails(&self, args: &[&str], stdin: &str, code: i32) -> String {
        let out = self.run(args, stdin);
        assert_eq!(out.status.code(), Some(code), "{args:?}");
        String::from_utf8(out.stderr).unwrap()
    }

    fn password_hash(&self, name: &str) -> String {
        let db = doorman::db::Db::open(&self.database_url).unwrap();
        doorman::db::users::find_by_name(&mut db.conn().unwrap(), name)
            .unwrap()
            .unwrap()
            .password_hash
    }
}

#[test]
fn users_are_managed_from_the_command_line() {
    let cli = Cli::new();
    assert!(
        cli.ok(&["user", "add", "root", "--admin"], "root password here\n")
            .contains("created user `root` (admin)")
    );
    assert!(
        cli.ok(&["user", "add", "alice"], "correct horse battery\n")
            .contains("(user)")
    );
    let hash = cli.password_hash("alice");
    assert!(doorman::core::passwords::verify_blocking(
        "correct horse battery",
        &hash
    ));

    let list = cli.ok(&["user", "list"], "");
    assert!(
        list.contains("root") && list.contains("alice") && list.contains("never"),
        "{list}"
    );

    assert!(
        cli.ok(&["user", "passwd", "ALICE"], "a different passphrase\r\n")
            .contains("changed the password")
    );
    let hash = cli.password_hash("alice");
    assert!(doorman::core::passwords::verify_blocking(
        "a different passphrase",
        &hash
    ));

    assert!(
        cli.ok(&["user", "role", "alice", "admin"], "")
            .contains("now admin")
    );
    assert!(
        cli.ok(&["user", "disable", "alice"], "")
            .contains("disabled `alice`")
    );
    assert!(cli.ok(&["user", "list"], "").contains("disabled"));
    assert!(
        cli.ok(&["user", "enable", "alice"], "")
            .contains("enabled `alice`")
    );
}

#[test]
fn command_line_errors_are_clear() {
    let cli = Cli::new();
    cli.ok(&["user", "add", "root", "--admin"], "root password here\n");
    assert!(
        cli.fails(&["user", "add", "Root"], "another password\n", 1)
            .contains("already exists")
    );
    assert!(
        cli.fails(&["user", "add", "bob"], "short\n", 1)
            .contains("at least 12 characters")
    );
    assert!(
        cli.fails(&["user", "add", "no way"], "a fine password\n", 1)
            .contains("username")
    );
    assert!(
        cli.fails(&["user", "passwd", "ghost"], "a fine password\n", 1)
            .contains("no user named `ghost`")
    );
    assert!(
        cli.fails(&["user", "role", "root", "user"], "", 1)
            .contains("no active admin")
    );
    assert!(
        cli.fails(&["user", "disable", "root"], "", 1)
            .contains("no active admin")
    );
    assert!(
        cli.fails(&["user", "role", "root", "king"], "", 2)
            .contains("usage")
    );
    assert!(cli.fails(&["user"], "", 2).contains("usage"));
    assert!(cli.fails(&["frobnicate"], "", 2).contains("usage"));
}

#[test]
fn an_unknown_database_scheme_stops_the_start_and_creates_nothing() {
    for url in [
        "postgress://u@localhost/db",
        ":memory:",
        "mysql://localhost/db",
    ] {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_doorman"))
            .current_dir(dir.path())
            .env("DOORMAN_DATA_DIR", dir.path().join("data"))
            .env("DOORMAN_DATABASE_URL", url)
            .env("ROCKET_PORT", "0")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(!out.status.success(), "{url}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("`database_url`"), "{url}: {stderr}");
        let created: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert!(created.is_empty(), "{url}: {created:?}");
    }
}

#[test]
fn second_factors_are_reset_from_the_command_line() {
    use doorman::core::owner::Owner;
    use doorman::core::second_factors::{self, Confirmed};
    let cli = Cli::new();
    cli.ok(&["user", "add", "alice"], "correct horse battery\n");
    let db = doorman::db::Db::open(&cli.database_url).unwrap();
    let now: i64 = 1_800_000_000;
    let confirmed = common::write(&db, move |tx| {
        let user = doorman::db::users::find_by_name(tx, "alice")?.unwrap();
        let server = doorman::auth::keys::ServerSecret::from_bytes(&[1; 32]);
        let key = second_factors::start_enrolment(tx, &server, &user)?.secret;
        let secret = totp_rs::Secret::try_from_base32(&key).unwrap();
        let code = totp_rs::Builder::new()
            .with_secret(secret.as_bytes().to_vec())
            .build()
            .unwrap()
            .generate(now.unsigned_abs())
            .to_string();
        let client = doorman::core::client::ClientInfo {
            ip: "local".into(),
            user_agent: "test".into(),
        };
        let actor = Owner {
            user_id: user.id,
            sid: String::new(),
            client,
        };
        second_factors::confirm_enrolment(tx, &server, &user, &actor, &code, now)
    });
    assert!(matches!(confirmed, Confirmed::On(_)));

    assert!(
        cli.ok(&["user", "mfa-reset", "alice"], "")
            .contains("removed the second factors of `alice`")
    );
    let mut conn = db.conn().unwrap();
    let user = doorman::db::users::find_by_name(&mut conn, "alice")
        .unwrap()
        .unwrap();
    assert!(!second_factors::is_on(&mut conn, &user).unwrap());
    assert_eq!(
        doorman::db::second_factors::recovery_codes_left(&mut conn, user.id).unwrap(),
        0
    );
    assert_eq!(
        doorman::db::events::count_kind(&mut conn, "mfa_reset").unwrap(),
        1
    );
    assert!(
        cli.fails(&["user", "mfa-reset", "nobody"], "", 1)
            .contains("no user named")
    );
}

#[test]
fn an_address_is_set_from_the_command_line() {
    let cli = Cli::new();
    cli.ok(&["user", "add", "alice"], "correct horse battery\n");
    assert!(
        cli.ok(&["user", "email", "alice", "alice@example.test"], "")
            .contains("a verification mail is queued")
    );
    assert!(
        cli.fails(&["user", "email", "alice", "nope"], "", 1)
            .contains("not an email address")
    );
    let db = doorman::db::Db::open(&cli.database_url).unwrap();
    let mut conn = db.conn().unwrap();
    let user = doorman::db::users::find_by_name(&mut conn, "alice")
        .unwrap()
        .unwrap();
    assert_eq!(user.email.as_deref(), Some("alice@example.test"));
    assert!(user.email_verified_at.is_none());
    assert_eq!(doorman::db::outbox::pending(&mut conn).unwrap(), 1);
}

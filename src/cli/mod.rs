//! `doorman user …`: account administration from the command line, against the configured
//! database, with the same rules as the admin console.

use std::fmt::Write as _;
use std::io::{BufRead, IsTerminal};
use std::process::ExitCode;

use diesel::result::{DatabaseErrorKind, Error as DieselError};

use crate::auth::roles::Role;
use crate::clock::{Clock, SystemClock};
use crate::config::{self, Config, JwtAlgorithm};
use crate::core::accounts::PasswordChange;
use crate::core::admin::{self, Actor, AdminError};
use crate::core::client::ClientInfo;
use crate::core::passwords;
use crate::core::users;
use crate::db::{self, Db, DbError, users::UserRow};

pub mod keygen;

pub const USAGE: &str = "usage:
  doorman [serve]                        run the server
  doorman user add <name> [--admin]      create a user (password from standard input)
  doorman user passwd <name>             set a user's password (ends their sessions)
  doorman user role <name> <admin|user>  change a user's role
  doorman user disable <name>            disable an account and end its sessions
  doorman user enable <name>             enable an account again
  doorman user mfa-reset <name>          remove a user's second factors (ends their sessions)
  doorman user email <name> <address>    set a user's email address (a verification mail is sent)
  doorman user list                      list users
  doorman keys generate --algorithm <HS256|RS256|ES256|EdDSA> --out <dir>
                                         write a new signing key (private 0600)";

/// A failure to report: the message, and the exit code (2 for usage errors).
struct Failure(String, u8);

fn fail(message: impl Into<String>) -> Failure {
    Failure(message.into(), 1)
}

fn usage() -> Failure {
    Failure(USAGE.into(), 2)
}

/// Runs `doorman user <args>`.
pub fn user(args: &[String]) -> ExitCode {
    report(run(args))
}

/// Runs `doorman keys generate --algorithm <alg> --out <dir>`.
pub fn keys(args: &[String]) -> ExitCode {
    report(generate_key(args))
}

fn generate_key(args: &[String]) -> Result<String, Failure> {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (algorithm, out) = match args.as_slice() {
        ["generate", "--algorithm", alg, "--out", out]
        | ["generate", "--out", out, "--algorithm", alg] => (*alg, *out),
        _ => return Err(usage()),
    };
    let algorithm: JwtAlgorithm =
        serde_json::from_value(serde_json::Value::String(algorithm.to_owned())).map_err(|_| {
            fail(format!(
                "unknown algorithm `{algorithm}` (HS256, RS256, ES256 or EdDSA)"
            ))
        })?;
    let generated = keygen::generate(algorithm, std::path::Path::new(out)).map_err(fail)?;
    let mut message = format!(
        "wrote {} (private, mode 0600)\nuse it with: DOORMAN_JWT_ALGORITHM={algorithm:?} DOORMAN_JWT_KEY_FILE={}",
        generated.private.display(),
        generated.private.display()
    );
    if let Some(public) = generated.public {
        let _ = write!(
            message,
            "\nwrote {} (public: for other services, and for jwt_previous_keys after the next rotation)",
            public.display()
        );
    }
    Ok(message)
}

fn report(result: Result<String, Failure>) -> ExitCode {
    match result {
        Ok(message) => {
            println!("{message}");
            ExitCode::SUCCESS
        }
        Err(Failure(message, code)) => {
            eprintln!("doorman: {message}");
            ExitCode::from(code)
        }
    }
}

fn run(args: &[String]) -> Result<String, Failure> {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let config = Config::from_figment(&config::figment()).map_err(|e| fail(e.to_string()))?;
    let db = Db::open(&config.database_url).map_err(|e| fail(e.to_string()))?;
    let now = SystemClock.now();
    let actor = Actor {
        name: "the command line".into(),
        client: ClientInfo {
            ip: "local".into(),
            user_agent: "doorman command line".into(),
        },
    };
    match args.as_slice() {
        ["add", name, rest @ ..] => {
            let role = match rest {
                [] => Role::User,
                ["--admin"] => Role::Admin,
                _ => return Err(usage()),
            };
            users::check_username(name).map_err(|why| fail(format!("username `{name}`: {why}")))?;
            let hash = new_password_hash(&config)?;
            let name = (*name).to_owned();
            let created = db.write_blocking(move |tx| {
                users::create_user(tx, now, &name, &hash, role).map_err(DbError::from)
            });
            match created {
                Ok(user) => Ok(format!(
                    "created user `{}` ({})",
                    user.username,
                    role.as_str()
                )),
                Err(DbError::Query(DieselError::DatabaseError(
                    DatabaseErrorKind::UniqueViolation,
                    _,
                ))) => Err(fail(format!("a user named `{}` already exists", args[1]))),
                Err(e) => Err(fail(e.to_string())),
            }
        }
        ["passwd", name] => {
            let user = find(&db, name)?;
            let hash = new_password_hash(&config)?;
            let ended = db
                .write_blocking(move |tx| {
                    let change = PasswordChange {
                        user_id: user.id,
                        hash: &hash,
                        keep: None,
                        client: &actor.client,
                        detail: Some("by the command line"),
                    };
                    change.apply(tx, now).map_err(DbError::from)
                })
                .map_err(|e| fail(e.to_string()))?;
            Ok(format!(
                "changed the password of `{}`; {} session(s) ended",
                user.username,
                ended.len()
            ))
        }
        ["role", name, role] => {
            let role = Role::parse(role).ok_or_else(usage)?;
            let user = find(&db, name)?;
            db.write_blocking(move |tx| admin::set_role(tx, now, user.id, role, &actor))
                .map_err(admin_failure)?;
            Ok(format!("`{}` is now {}", user.username, role.as_str()))
        }
        [verb @ ("disable" | "enable"), name] => {
            let user = find(&db, name)?;
            let disabled = *verb == "disable";
            let id = user.id;
            let ended = db
                .write_blocking(move |tx| admin::set_disabled(tx, now, id, disabled, &actor))
                .map_err(admin_failure)?;
            Ok(if disabled {
                format!("disabled `{}`; {ended} session(s) ended", user.username)
            } else {
                format!("enabled `{}`", user.username)
            })
        }
        ["mfa-reset", name] => {
            let user = find(&db, name)?;
            let id = user.id;
            db.write_blocking(move |tx| admin::reset_mfa(tx, now, id, &actor))
                .map_err(admin_failure)?;
            Ok(format!(
                "removed the second factors of `{}`; its sessions ended",
                user.username
            ))
        }
        ["email", name, address] => set_email(&config, &db, name, address, now),
        ["list"] => list(&db),
        _ => Err(usage()),
    }
}

/// `doorman user email <name> <address>`: sets the address (unverified) and queues its
/// verification mail, which the server sends; `""` removes it.
fn set_email(
    config: &Config,
    db: &Db,
    name: &str,
    address: &str,
    now: i64,
) -> Result<String, Failure> {
    let user = find(db, name)?;
    let secret = crate::auth::keys::ServerSecret::load(config).map_err(|e| fail(e.to_string()))?;
    let policy = crate::core::email::EmailPolicy::from(config);
    let (text, username) = (address.to_owned(), user.username.clone());
    let outcome = db
        .write_blocking(move |tx| -> Result<_, DbError> {
            let client = ClientInfo {
                ip: "local".into(),
                user_agent: "doorman command line".into(),
            };
            let change = crate::core::email::AddressChange {
                user: &user,
                session_id: None,
                client: &client,
                limits: None,
            };
            Ok(crate::core::email::set_address(
                tx, &secret, policy, &change, &text, now,
            )?)
        })
        .map_err(|e| fail(e.to_string()))?;
    match outcome {
        Ok(()) if address.trim().is_empty() => Ok(format!("removed the address of `{username}`")),
        Ok(()) => Ok(format!(
            "set the address of `{username}`; a verification mail is queued"
        )),
        Err(refused) => Err(fail(refused.message())),
    }
}

/// `doorman user list`: one line per user.
fn list(db: &Db) -> Result<String, Failure> {
    let mut conn = db.conn().map_err(|e| fail(e.to_string()))?;
    let users = db::users::all(&mut conn).map_err(|e| fail(e.to_string()))?;
    let mut out = format!(
        "{:<32}  {:<5}  {:<8}  last sign-in",
        "name", "role", "status"
    );
    for u in users {
        let status = if u.disabled { "disabled" } else { "active" };
        let last = u
            .last_login_at
            .map_or_else(|| "never".to_owned(), crate::http::page::timestamp);
        let _ = write!(
            out,
            "\n{:<32}  {:<5}  {:<8}  {last}",
            u.username, u.role, status
        );
    }
    Ok(out)
}

fn find(db: &Db, name: &str) -> Result<UserRow, Failure> {
    let mut conn = db.conn().map_err(|e| fail(e.to_string()))?;
    db::users::find_by_name(&mut conn, name)
        .map_err(|e| fail(e.to_string()))?
        .ok_or_else(|| fail(format!("no user named `{name}`")))
}

fn admin_failure(e: AdminError) -> Failure {
    match e {
        AdminError::NotFound => fail("no such user"),
        AdminError::LastAdmin => fail("that would leave no active admin; make another admin first"),
        AdminError::Db(e) => fail(e.to_string()),
    }
}

/// Reads a new password (the first line of standard input, or twice at a terminal prompt),
/// checks it and hashes it.
fn new_password_hash(config: &Config) -> Result<String, Failure> {
    let password = if std::io::stdin().is_terminal() {
        let first =
            rpassword::prompt_password("New password: ").map_err(|e| fail(e.to_string()))?;
        let again = rpassword::prompt_password("Again: ").map_err(|e| fail(e.to_string()))?;
        if first != again {
            return Err(fail("the two passwords differ"));
        }
        first
    } else {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| fail(format!("reading the password: {e}")))?;
        line.trim_end_matches(['\n', '\r']).to_owned()
    };
    passwords::check_new_password(&password).map_err(|why| fail(format!("password: {why}")))?;
    passwords::hash_blocking(&password, config.bcrypt_cost).map_err(|e| fail(e.to_string()))
}

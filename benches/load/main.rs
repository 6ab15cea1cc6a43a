//! The load benchmark: `cargo bench --bench load` (or `bench/run.sh`).
//!
//! Starts the release `doorman` on a temporary SQLite database, drives it over HTTP on 127.0.0.1
//! from this process (one keep-alive connection per worker thread, see `wire`), and prints a table with
//! requests/s, p50 and p99 latency, the server's CPU time per second and its peak RSS.
//! `BENCH_SECONDS` (default 5) sets each run's length, `BENCH_CONNECTIONS` (default 16) the
//! workers, `BENCH_PG_CONNECTIONS` (default 64) those of the PostgreSQL scenario `g`.
//!
//! The pages are measured beside a floor (`floor`): a bare Rocket app that verifies the same
//! access-token cookie, served by this same program started again with `--floor`. On a machine
//! with two or more cores, every server is pinned to core 0 and the load generator to core 1
//! (`taskset`), so the server's own cost is what the rates show.
//!
//! `BENCH_BASELINE=<path of another doorman binary>` (an older build) also runs the refresh
//! scenarios b and c on that binary, and g's JSON refresh on a pair of it (a database of its
//! own in the same cluster), taking turns with this build a second at a time, and prints this
//! build's rates against it.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::too_many_lines,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss
)]

mod floor;
mod postgres;
mod wire;

use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use wire::Connection;

const PASSWORD: &str = "benchmark password";
const REFRESH: &str = "__Host-doorman_refresh";
const ACCESS: &str = "__Host-doorman_access";
const SILENT: &str = "b. silent refresh (GET /, rotation each)";
const JSON_REFRESH: &str = "c. POST /api/auth/refresh";

fn seconds() -> Duration {
    Duration::from_secs(
        std::env::var("BENCH_SECONDS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(5),
    )
}

fn connections() -> usize {
    std::env::var("BENCH_CONNECTIONS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(16)
}

/// The connections of `g`: several instances are for many clients, and 64 is the load the
/// PostgreSQL target was set at.
fn pg_connections() -> usize {
    std::env::var("BENCH_PG_CONNECTIONS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(64)
}

struct Server {
    child: Child,
    base: String,
    dir: std::path::PathBuf,
}

/// Whether servers and load generator get a core each: two or more cores and `taskset` at hand.
/// Decided once, before this process pins itself (which narrows what it sees).
fn pinning() -> bool {
    static PINNING: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *PINNING.get_or_init(|| {
        cores() >= 2
            && Command::new("taskset")
                .arg("-V")
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
    })
}

fn cores() -> usize {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| thread::available_parallelism().map_or(1, usize::from))
}

/// A server's command line: on core 0 when pinning.
fn server_command(program: &std::path::Path) -> Command {
    pinned_command(program, pinning())
}

/// A command on core 0 (`pinned`), or on every core: a child of this process would otherwise
/// inherit the load generator's core.
fn pinned_command(program: &std::path::Path, pinned: bool) -> Command {
    if !pinning() {
        return Command::new(program);
    }
    let cores = if pinned {
        "0".to_owned()
    } else {
        format!("0-{}", cores() - 1)
    };
    let mut command = Command::new("taskset");
    command.args(["-c", &cores]).arg(program);
    command
}

/// The doorman binary this benchmark was built with.
fn this_build() -> &'static std::path::Path {
    std::path::Path::new(env!("CARGO_BIN_EXE_doorman"))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Where and how a doorman server runs, beyond its data folder.
struct Launch<'a> {
    /// The doorman binary: this build's, or a baseline's.
    program: &'a std::path::Path,
    bcrypt_cost: u32,
    /// `None`: the SQLite file in the data folder.
    database_url: Option<&'a str>,
    /// On core 0 (when pinning), or on whatever core is free.
    pinned: bool,
    /// The request log's file name in the data folder.
    log: &'a str,
}

impl Server {
    fn start(dir: &std::path::Path, bcrypt_cost: u32) -> Server {
        Server::start_program(dir, this_build(), bcrypt_cost)
    }

    fn start_program(dir: &std::path::Path, program: &std::path::Path, bcrypt_cost: u32) -> Server {
        Server::launch(
            dir,
            &Launch {
                program,
                bcrypt_cost,
                database_url: None,
                pinned: pinning(),
                log: "doorman.log",
            },
        )
    }

    fn launch(dir: &std::path::Path, launch: &Launch<'_>) -> Server {
        let port = free_port();
        let mut command = pinned_command(launch.program, launch.pinned);
        if let Some(url) = launch.database_url {
            command.env("DOORMAN_DATABASE_URL", url);
        }
        let bcrypt_cost = launch.bcrypt_cost;
        let child = command
            .current_dir(dir)
            .env("DOORMAN_DATA_DIR", dir)
            .env("DOORMAN_BCRYPT_COST", bcrypt_cost.to_string())
            .env("DOORMAN_ADMIN_PASSWORD", PASSWORD)
            .env("DOORMAN_ACCESS_TTL", "1h")
            .env("DOORMAN_LOGIN_MAX_FAILURES", "1000000")
            .env("ROCKET_ADDRESS", "127.0.0.1")
            .env("ROCKET_PORT", port.to_string())
            .env("ROCKET_LOG_LEVEL", "off")
            // Request log lines go to a file, as they would to a log collector.
            .stdout(std::fs::File::create(dir.join(launch.log)).unwrap())
            .stderr(Stdio::null())
            .spawn()
            .expect("doorman starts");
        Server::up(child, port, dir)
    }

    /// The floor beside the doorman serving `doorman_dir`, verifying with its signing secret.
    fn floor(doorman_dir: &std::path::Path) -> Server {
        let port = free_port();
        let child = server_command(&std::env::current_exe().unwrap())
            .arg("--floor")
            .arg(port.to_string())
            .arg(doorman_dir.join("jwt-secret"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the floor starts");
        Server::up(child, port, doorman_dir)
    }

    fn up(child: Child, port: u16, dir: &std::path::Path) -> Server {
        let base = format!("127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(60);
        while Connection::new(&base).get("/healthz", None).is_err() {
            assert!(Instant::now() < deadline, "the server did not start");
            thread::sleep(Duration::from_millis(50));
        }
        Server {
            child,
            base,
            dir: dir.to_owned(),
        }
    }

    /// User and system CPU seconds the server has used.
    fn cpu(&self) -> f64 {
        let stat =
            std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap_or_default();
        let fields: Vec<&str> = stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .split_whitespace()
            .collect();
        let ticks: f64 = fields.get(11..13).map_or(0.0, |f| {
            f.iter().filter_map(|v| v.parse::<f64>().ok()).sum()
        });
        ticks / 100.0
    }

    /// Peak resident memory in MiB.
    fn peak_rss(&self) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
    }

    fn database_url(&self) -> String {
        self.dir
            .join("doorman.sqlite3")
            .to_string_lossy()
            .into_owned()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn api_login(base: &str, username: &str) -> (String, String) {
    let body = json!({ "username": username, "password": PASSWORD }).to_string();
    let reply = Connection::new(base)
        .post_json("/api/auth/login", &body)
        .unwrap();
    let body: Value = serde_json::from_slice(&reply.body).unwrap();
    (
        body["access_token"].as_str().expect("logged in").to_owned(),
        body["refresh_token"].as_str().unwrap().to_owned(),
    )
}

/// One request of a worker: true when it was answered as expected.
type Step = Box<dyn FnMut(&mut Connection) -> bool + Send>;

struct Row {
    name: String,
    requests: usize,
    errors: usize,
    rate: f64,
    p50: f64,
    p99: f64,
    cpu: f64,
}

/// Whether a scenario runs: all, or those whose name starts with a letter in `BENCH_ONLY`
/// (e.g. `BENCH_ONLY=bf`).
fn wanted(name: &str) -> bool {
    std::env::var("BENCH_ONLY").map_or(true, |only| only.chars().any(|c| name.starts_with(c)))
}

/// Runs `workers` for the benchmark's duration, each on its own connection.
/// What one stretch of load measured.
#[derive(Default)]
struct Sample {
    latencies: Vec<Duration>,
    errors: usize,
    elapsed: f64,
    cpu: f64,
}

impl Sample {
    fn add(&mut self, other: Sample) {
        self.latencies.extend(other.latencies);
        self.errors += other.errors;
        self.elapsed += other.elapsed;
        self.cpu += other.cpu;
    }
}

/// Runs `workers` for `duration`, each on its own connection, to the servers in turn.
fn run_for(servers: &[&Server], workers: Vec<Step>, duration: Duration) -> Sample {
    let stop = Arc::new(AtomicBool::new(false));
    let cpu = || servers.iter().map(|s| s.cpu()).sum::<f64>();
    let cpu_before = cpu();
    let started = Instant::now();
    let handles: Vec<_> = workers
        .into_iter()
        .enumerate()
        .map(|(i, mut step)| {
            let (stop, base) = (stop.clone(), servers[i % servers.len()].base.clone());
            thread::spawn(move || {
                let mut connection = Connection::new(&base);
                let (mut latencies, mut errors) = (Vec::new(), 0usize);
                while !stop.load(Ordering::Relaxed) {
                    let t = Instant::now();
                    if !step(&mut connection) {
                        errors += 1;
                    }
                    latencies.push(t.elapsed());
                }
                (latencies, errors)
            })
        })
        .collect();
    thread::sleep(duration);
    stop.store(true, Ordering::Relaxed);
    let mut sample = Sample::default();
    for handle in handles {
        let (latencies, errors) = handle.join().unwrap();
        sample.latencies.extend(latencies);
        sample.errors += errors;
    }
    sample.elapsed = started.elapsed().as_secs_f64();
    sample.cpu = cpu() - cpu_before;
    sample
}

fn row(name: &str, mut sample: Sample) -> Row {
    sample.latencies.sort();
    let at = |q: f64| {
        sample
            .latencies
            .get(((sample.latencies.len() as f64 - 1.0) * q) as usize)
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    let row = Row {
        name: name.to_owned(),
        requests: sample.latencies.len(),
        errors: sample.errors,
        rate: sample.latencies.len() as f64 / sample.elapsed,
        p50: at(0.5),
        p99: at(0.99),
        cpu: sample.cpu / sample.elapsed,
    };
    eprintln!(
        "{}: {:.0}/s, p99 {:.2} ms, {} errors",
        row.name, row.rate, row.p99, row.errors
    );
    row
}

/// Runs `workers` for the benchmark's duration.
fn load(server: &Server, name: &str, workers: Vec<Step>) -> Row {
    row(name, run_for(&[server], workers, seconds()))
}

/// A scenario of an interleaved run: its name, the servers it loads (workers spread over
/// them), and its workers.
type Scenario<'a> = (&'a str, &'a [&'a Server], &'a dyn Fn() -> Vec<Step>);

/// Scenarios to be compared with each other: they take turns, one second each, for the
/// benchmark's duration apiece, so a drift in the machine's speed (other tenants, clock
/// scaling) touches all of them alike.
fn interleaved(scenarios: &[Scenario<'_>]) -> Vec<Row> {
    let mut samples: Vec<Sample> = scenarios.iter().map(|_| Sample::default()).collect();
    for _ in 0..seconds().as_secs().max(1) {
        for ((_, servers, workers), sample) in scenarios.iter().zip(&mut samples) {
            sample.add(run_for(servers, workers(), Duration::from_secs(1)));
        }
    }
    scenarios
        .iter()
        .zip(samples)
        .map(|((name, _, _), sample)| row(name, sample))
        .collect()
}

fn get(path: &'static str, cookie: Option<String>) -> Step {
    Box::new(move |connection| {
        connection
            .get(path, cookie.as_deref())
            .is_ok_and(|r| r.status == 200)
    })
}

/// A browser whose access cookie is always missing: every request is a silent refresh.
fn silent_refresh(refresh: String) -> Step {
    let mut cookie = format!("{REFRESH}={refresh}");
    Box::new(move |connection| {
        let next = connection
            .get("/", Some(&cookie))
            .ok()
            .filter(|r| r.status == 200)
            .and_then(|r| r.cookie(REFRESH));
        match next {
            Some(next) => {
                cookie = format!("{REFRESH}={next}");
                true
            }
            None => false,
        }
    })
}

fn api_refresh(refresh: String) -> Step {
    let mut current = refresh;
    Box::new(move |connection| {
        let body = json!({ "refresh_token": current }).to_string();
        let next = connection
            .post_json("/api/auth/refresh", &body)
            .ok()
            .filter(|r| r.status == 200)
            .and_then(|r| serde_json::from_slice::<Value>(&r.body).ok())
            .and_then(|body| Some(body["refresh_token"].as_str()?.to_owned()));
        match next {
            Some(next) => {
                current = next;
                true
            }
            None => false,
        }
    })
}

fn api_logins() -> Step {
    let body = json!({ "username": "admin", "password": PASSWORD }).to_string();
    Box::new(move |connection| {
        connection
            .post_json("/api/auth/login", &body)
            .is_ok_and(|r| r.status == 200)
    })
}

/// Adds `count` ended-looking but active sessions of `admin`, with a token each, straight into
/// the database (as years of use would).
fn seed_sessions(server: &Server, count: i64, tag: &str) {
    use diesel::RunQueryDsl;
    let db = doorman::db::Db::open(&server.database_url()).unwrap();
    let mut conn = db.conn().unwrap();
    diesel::sql_query(format!(
        "INSERT INTO sessions (public_id, user_id, successor_key, remember, created_at, last_used_at, \
         expires_at, first_ip, first_user_agent, last_ip, last_user_agent) \
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {count}) \
         SELECT 'seed-{tag}-' || i, 1, randomblob(32), 0, 0, 0, 4102444800, '127.0.0.1', 'seed', '127.0.0.1', 'seed' FROM n"
    ))
    .execute(&mut *conn)
    .unwrap();
    diesel::sql_query(format!(
        "INSERT INTO refresh_tokens (session_id, token_hash, created_at) \
         SELECT id, randomblob(32), 0 FROM sessions WHERE public_id LIKE 'seed-{tag}-%'"
    ))
    .execute(&mut *conn)
    .unwrap();
}

fn print(rows: &[Row], peak: f64) {
    println!("\n| scenario | requests/s | p50 ms | p99 ms | errors | server CPU (cores) |");
    println!("|---|---:|---:|---:|---:|---:|");
    for r in rows {
        println!(
            "| {} | {:.0} | {:.2} | {:.2} | {} of {} | {:.2} |",
            r.name, r.rate, r.p50, r.p99, r.errors, r.requests, r.cpu
        );
    }
    println!("\npeak server RSS: {peak:.1} MiB");
}

/// Runs a scenario when [`wanted`], building its workers only then.
fn scenario(rows: &mut Vec<Row>, server: &Server, name: &str, workers: impl FnOnce() -> Vec<Step>) {
    if wanted(name) {
        rows.push(load(server, name, workers()));
    }
}

/// Ratios of interleaved pairs: each baseline row followed by this build's.
fn against_baseline(ratios: &mut Vec<(String, f64)>, measured: &[Row]) {
    for pair in measured.chunks(2) {
        ratios.push((
            format!("{}: this build against the baseline", pair[1].name),
            pair[1].rate / pair[0].rate,
        ));
    }
}

fn refreshers(server: &Server, n: usize, make: fn(String) -> Step) -> Vec<Step> {
    (0..n)
        .map(|_| make(api_login(&server.base, "admin").1))
        .collect()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let [_, flag, port, secret] = args.as_slice()
        && flag == "--floor"
    {
        floor::serve(port.parse().expect("a port"), std::path::Path::new(secret));
        return;
    }
    let (cores, pinned) = (cores(), pinning());
    if pinned {
        let me = std::process::id().to_string();
        Command::new("taskset")
            .args(["-cp", "1", &me])
            .stdout(Stdio::null())
            .status()
            .expect("taskset pins the load generator");
    }
    let n = connections();
    println!(
        "doorman load benchmark: {n} connections ({} for g), {:?} per run, {} cores, {}",
        pg_connections(),
        seconds(),
        cores,
        if pinned {
            "servers on core 0, load generator on core 1"
        } else {
            "not pinned (one core, or no taskset)"
        }
    );
    let mut rows = Vec::new();
    let mut ratios: Vec<(String, f64)> = Vec::new();
    let mut peak: f64 = 0.0;

    // a–c and f on a server with cheap bcrypt, so setting up sessions is quick.
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), 4);
    let (access, _) = api_login(&server.base, "admin");
    let signed_in = format!("{ACCESS}={access}");
    if wanted("a") {
        let pages = |path: &'static str, cookie: Option<String>| {
            move || -> Vec<Step> { (0..n).map(|_| get(path, cookie.clone())).collect() }
        };
        let (login, anonymous) = (pages("/login", None), pages("/", None));
        let guarded = pages("/", Some(signed_in.clone()));
        let profile = pages("/profile", Some(signed_in.clone()));
        let floor = Server::floor(dir.path());
        let floor_page = pages("/page", Some(signed_in.clone()));
        let measured = interleaved(&[
            (
                "floor. bare Rocket, same JWT cookie",
                &[&floor],
                &floor_page,
            ),
            ("a. GET /login (anonymous)", &[&server], &login),
            ("a'. GET / (anonymous)", &[&server], &anonymous),
            (
                "a'. GET / (signed in: the guard's own cost)",
                &[&server],
                &guarded,
            ),
            ("a. GET /profile (signed in)", &[&server], &profile),
        ]);
        let base = measured[0].rate;
        for row in &measured[1..] {
            ratios.push((format!("{}: against the floor", row.name), row.rate / base));
        }
        rows.extend(measured);
    }
    let baseline = std::env::var_os("BENCH_BASELINE").map(std::path::PathBuf::from);
    match &baseline {
        Some(baseline) if wanted("b") || wanted("c") => {
            let old_dir = tempfile::tempdir().unwrap();
            let old = Server::start_program(old_dir.path(), baseline, 4);
            let (old, server) = ([&old], [&server]);
            let silent = |server: &Server| refreshers(server, n, silent_refresh);
            let json = |server: &Server| refreshers(server, n, api_refresh);
            let (old_silent, new_silent) = (|| silent(old[0]), || silent(server[0]));
            let (old_json, new_json) = (|| json(old[0]), || json(server[0]));
            let mut pairs: Vec<[Scenario<'_>; 2]> = Vec::new();
            if wanted("b") {
                pairs.push([
                    ("b. silent refresh, baseline binary", &old, &old_silent),
                    (SILENT, &server, &new_silent),
                ]);
            }
            if wanted("c") {
                pairs.push([
                    (
                        "c. POST /api/auth/refresh, baseline binary",
                        &old,
                        &old_json,
                    ),
                    (JSON_REFRESH, &server, &new_json),
                ]);
            }
            let measured = interleaved(&pairs.concat());
            against_baseline(&mut ratios, &measured);
            rows.extend(measured);
        }
        _ => {
            scenario(&mut rows, &server, SILENT, || {
                refreshers(&server, n, silent_refresh)
            });
            scenario(&mut rows, &server, JSON_REFRESH, || {
                refreshers(&server, n, api_refresh)
            });
        }
    }
    if wanted("f") {
        seed_sessions(&server, 1_000, "thousand");
        scenario(
            &mut rows,
            &server,
            "f. silent refresh, +1 thousand sessions",
            || refreshers(&server, n, silent_refresh),
        );
        seed_sessions(&server, 999_000, "million");
        scenario(
            &mut rows,
            &server,
            "f. silent refresh, +1 million sessions",
            || refreshers(&server, n, silent_refresh),
        );
    }

    // g: two instances on PostgreSQL; their JSON refresh takes turns with the SQLite instance's
    // at the same load.
    let mut reach = Vec::new();
    if wanted("g")
        && let Some(cluster) = postgres::Cluster::start()
    {
        let m = pg_connections();
        let dir = tempfile::tempdir().unwrap();
        let pair = postgres::this_builds(&cluster, dir.path());
        rows.extend(postgres::rows(
            &pair,
            m,
            seconds(),
            refreshers(&pair[0], m, silent_refresh),
        ));
        let (sqlite, both) = ([&server], [&pair[0], &pair[1]]);
        let sqlite_json = || refreshers(sqlite[0], m, api_refresh);
        let pg_json = || refreshers(both[0], m, api_refresh);
        let measured = interleaved(&[
            (
                "g. 1 SQLite instance, same load: POST /api/auth/refresh",
                &sqlite,
                &sqlite_json,
            ),
            (
                "g. PostgreSQL, 2 instances: POST /api/auth/refresh",
                &both,
                &pg_json,
            ),
        ]);
        ratios.push((
            "g. JSON refresh, 2 PostgreSQL instances, against 1 SQLite instance (turns)".into(),
            measured[1].rate / measured[0].rate,
        ));
        rows.extend(measured);
        if let Some(baseline) = &baseline
            && let Some(url) = cluster.database("doorman_bench_baseline")
        {
            let old_dir = tempfile::tempdir().unwrap();
            let old = postgres::instances(&url, old_dir.path(), baseline);
            let old = [&old[0], &old[1]];
            let old_json = || refreshers(old[0], m, api_refresh);
            let measured = interleaved(&[
                (
                    "g. PostgreSQL, 2 instances: POST /api/auth/refresh, baseline binary",
                    &old,
                    &old_json,
                ),
                (
                    "g. PostgreSQL, 2 instances: POST /api/auth/refresh, this build (turns)",
                    &both,
                    &pg_json,
                ),
            ]);
            against_baseline(&mut ratios, &measured);
            rows.extend(measured);
        }
        reach = postgres::revocation_reach(&pair, 5, refreshers(&pair[0], m, api_refresh));
    }
    peak = peak.max(server.peak_rss());
    drop(server);

    // d–e at real bcrypt costs.
    for cost in [12, 10] {
        let needed = wanted("d") || (cost == 12 && wanted("e"));
        if !needed {
            continue;
        }
        let dir = tempfile::tempdir().unwrap();
        let server = Server::start(dir.path(), cost);
        scenario(
            &mut rows,
            &server,
            &format!("d. POST /api/auth/login, bcrypt cost {cost}"),
            || (0..n).map(|_| api_logins()).collect(),
        );
        if cost == 12 && wanted("e") {
            let (access, _) = api_login(&server.base, "admin");
            let cookie = format!("{ACCESS}={access}");
            let profile = || -> Vec<Step> {
                (0..n)
                    .map(|_| get("/profile", Some(cookie.clone())))
                    .collect()
            };
            let alone = load(&server, "e. GET /profile alone", profile());
            // The logins are measured too: what the pages gain, hashing loses.
            let storm = thread::scope(|scope| {
                let logins = (0..32).map(|_| api_logins()).collect();
                let server = &server;
                let storm = scope
                    .spawn(move || run_for(&[server], logins, seconds() + Duration::from_secs(1)));
                thread::sleep(Duration::from_secs(1));
                let during = load(
                    server,
                    "e. GET /profile during 32 concurrent logins",
                    profile(),
                );
                (during, storm.join().unwrap())
            });
            let (during, logins) = (
                storm.0,
                row("e. the 32 concurrent logins meanwhile", storm.1),
            );
            rows.push(alone);
            rows.push(during);
            rows.push(logins);
        }
        peak = peak.max(server.peak_rss());
    }
    print(&rows, peak);
    if !ratios.is_empty() {
        println!("\nratios (same run, interleaved):");
        for (name, ratio) in &ratios {
            println!("  {ratio:>5.2}  {name}");
        }
    }
    if !reach.is_empty() {
        reach.sort();
        let ms = |d: &Duration| d.as_secs_f64() * 1000.0;
        println!(
            "\ng. a session ended on one PostgreSQL instance is refused by the other after \
             {:.0} ms (median of {}), {:.0} ms at most, under JSON refresh load on both",
            ms(&reach[reach.len() / 2]),
            reach.len(),
            ms(&reach[reach.len() - 1]),
        );
    }
    std::io::stdout().flush().unwrap();
}

//! A SQLite database on a filesystem that fills up: writes answer 503 (HTML and JSON), signed-in
//! pages with valid access tokens keep working, and everything recovers without a restart when
//! space comes back. Needs root to mount a small tmpfs (CI runs as root); says so and is skipped
//! otherwise.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::too_many_lines)]

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use doorman::auth::roles::Role;
use rocket::http::{ContentType, Status};
use serde_json::json;

/// A 2 MiB tmpfs, unmounted when dropped.
struct SmallDisk(PathBuf);

impl SmallDisk {
    fn mount(at: &Path) -> Option<SmallDisk> {
        std::fs::create_dir_all(at).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=2m", "tmpfs"])
            .arg(at)
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| SmallDisk(at.to_owned()))
    }

    /// Writes a file until the disk is full.
    fn fill(&self) -> PathBuf {
        let path = self.0.join("filler");
        let mut file = std::fs::File::create(&path).unwrap();
        let block = vec![0u8; 4096];
        while file
            .write_all(&block)
            .and_then(|()| file.sync_data())
            .is_ok()
        {}
        path
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_full_disk_means_503_for_writes_and_recovery_without_restart() {
    if backend::postgres_server().is_some() {
        return; // this is about the SQLite file; PostgreSQL outages are in tests/postgres.rs
    }
    let dir = tempfile::tempdir().unwrap();
    let Some(disk) = SmallDisk::mount(&dir.path().join("disk")) else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI runs as root and can mount a tmpfs"
        );
        eprintln!("skipped the full-disk test: mounting a tmpfs needs root");
        return;
    };
    let data = disk.0.clone();
    let app = TestApp::with(json!({
        "data_dir": data,
        "database_url": data.join("doorman.sqlite3"),
    }));
    app.create_user("alice", Role::User);
    let mut signed_in = app.browser();
    assert_eq!(
        signed_in.login("alice", PASSWORD, false).status,
        Status::SeeOther
    );

    let filler = disk.fill();
    // Logins write a session each: once the file cannot grow they answer 503.
    let mut statuses = Vec::new();
    for _ in 0..300 {
        let status = app.browser().login("alice", PASSWORD, false).status;
        statuses.push(status);
        if status == Status::ServiceUnavailable {
            break;
        }
    }
    assert_eq!(
        statuses.last(),
        Some(&Status::ServiceUnavailable),
        "{statuses:?}"
    );
    assert!(
        statuses
            .iter()
            .all(|s| *s == Status::SeeOther || *s == Status::ServiceUnavailable)
    );
    let api = app
        .client
        .post("/api/auth/login")
        .header(ContentType::JSON)
        .body(json!({ "username": "alice", "password": PASSWORD }).to_string())
        .dispatch();
    assert_eq!(api.status(), Status::ServiceUnavailable);
    assert!(
        api.into_string()
            .unwrap()
            .contains("\"code\":\"unavailable\"")
    );
    assert_eq!(
        signed_in.get("/").status,
        Status::Ok,
        "a valid access token needs no write"
    );
    assert!(signed_in.get("/").body.contains("Your profile"));

    std::fs::remove_file(filler).unwrap();
    assert_eq!(
        app.browser().login("alice", PASSWORD, false).status,
        Status::SeeOther,
        "recovered"
    );
    assert_eq!(signed_in.get("/profile").status, Status::Ok);
}

//! A real SMTP server for the mail tests: aiosmtpd (Debian's `python3-aiosmtpd`) delivering
//! to a Maildir, started and stopped by the tests on 127.0.0.1.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const PYTHON: &str = "/usr/bin/python3";

pub struct SmtpServer {
    pub port: u16,
    maildir: PathBuf,
    child: Option<Child>,
}

/// Whether aiosmtpd is installed; under CI it must be (`.ci/run` installs it).
pub fn available() -> bool {
    let found = Command::new(PYTHON)
        .args(["-c", "import aiosmtpd"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must install python3-aiosmtpd"
        );
        eprintln!("skipping a mail test: Debian's python3-aiosmtpd is not installed");
    }
    found
}

impl SmtpServer {
    pub fn start(maildir: &Path) -> SmtpServer {
        for sub in ["tmp", "new", "cur"] {
            std::fs::create_dir_all(maildir.join(sub)).expect("a Maildir");
        }
        let mut server = SmtpServer {
            port: super::http::free_port(),
            maildir: maildir.to_owned(),
            child: None,
        };
        server.resume();
        server
    }

    /// `smtp_url` for doorman.
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Stops the server (mail sent now fails and is retried).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port.
    pub fn resume(&mut self) {
        let child = Command::new(PYTHON)
            .args(["-m", "aiosmtpd", "-n", "-l"])
            .arg(format!("127.0.0.1:{}", self.port))
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(&self.maildir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("aiosmtpd starts");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(15);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "aiosmtpd did not come up");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Every message delivered so far, as text (quoted-printable soft breaks undone).
    pub fn mails(&self) -> Vec<String> {
        let mut mails = Vec::new();
        for sub in ["new", "cur"] {
            let Ok(entries) = std::fs::read_dir(self.maildir.join(sub)) else {
                continue;
            };
            for entry in entries.flatten() {
                if let Ok(text) = std::fs::read_to_string(entry.path()) {
                    mails.push(unfold(&text));
                }
            }
        }
        mails
    }

    /// Waits (bounded) for a delivered mail that `wanted` accepts.
    pub fn wait_for(&self, timeout: Duration, wanted: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(mail) = self.mails().into_iter().find(|m| wanted(m)) {
                return mail;
            }
            assert!(
                Instant::now() < deadline,
                "no such mail arrived: {:?}",
                self.mails()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A mail's text with quoted-printable soft line breaks and `=3D` undone, so links read whole.
pub fn unfold(text: &str) -> String {
    text.replace("=\r\n", "")
        .replace("=\n", "")
        .replace("=3D", "=")
}

/// The path and query of the first link in `mail` to `path` on doorman.
pub fn link(mail: &str, path: &str) -> String {
    let start = mail
        .find(path)
        .unwrap_or_else(|| panic!("a link to {path} in {mail}"));
    let rest = &mail[start..];
    let end = rest
        .find(|c: char| c.is_whitespace() || c == '"' || c == '<')
        .unwrap_or(rest.len());
    rest[..end].to_owned()
}

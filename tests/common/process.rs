//! `doorman serve` as a separate process on a free port of 127.0.0.1; killed when dropped.

use std::process::{Child, Command, Stdio};

use super::{ACCESS, PASSWORD, http};

pub struct Instance {
    child: Child,
    pub base: String,
}

impl Instance {
    /// Starts an instance on `database_url`, with `DOORMAN_*` settings from `env`.
    pub fn start(data_dir: &std::path::Path, database_url: &str, env: &[(&str, &str)]) -> Instance {
        Instance::start_logging(data_dir, database_url, env, None)
    }

    /// As [`Instance::start`], writing standard output and error (at Rocket's normal log level)
    /// to `log` when given.
    pub fn start_logging(
        data_dir: &std::path::Path,
        database_url: &str,
        env: &[(&str, &str)],
        log: Option<&std::path::Path>,
    ) -> Instance {
        let port = http::free_port();
        let mut command = Command::new(env!("CARGO_BIN_EXE_doorman"));
        command
            .arg("serve")
            .current_dir(data_dir)
            .env("DOORMAN_DATA_DIR", data_dir)
            .env("DOORMAN_DATABASE_URL", database_url)
            .env("DOORMAN_BCRYPT_COST", "4")
            .env("DOORMAN_ADMIN_PASSWORD", PASSWORD)
            .env("ROCKET_ADDRESS", "127.0.0.1")
            .env("ROCKET_PORT", port.to_string())
            .env(
                "ROCKET_LOG_LEVEL",
                if log.is_some() { "normal" } else { "off" },
            )
            .env("ROCKET_CLI_COLORS", "false");
        match log {
            Some(path) => {
                let file = std::fs::File::create(path).expect("a log file");
                command
                    .stdout(file.try_clone().expect("a log file"))
                    .stderr(file);
            }
            None => {
                command.stdout(Stdio::null()).stderr(Stdio::null());
            }
        }
        for (key, value) in env {
            command.env(key, value);
        }
        let child = command.spawn().expect("doorman starts");
        let base = format!("http://127.0.0.1:{port}");
        http::wait_until_up(&base);
        Instance { child, base }
    }

    /// The status of `GET path` with these cookies.
    pub fn status(&self, agent: &ureq::Agent, path: &str, cookies: &str) -> u16 {
        agent
            .get(format!("{}{path}", self.base))
            .header("Cookie", cookies)
            .call()
            .expect("an answer")
            .status()
            .as_u16()
    }

    /// The body of `/profile` for this access token.
    pub fn profile(&self, agent: &ureq::Agent, access: &str) -> String {
        agent
            .get(format!("{}/profile", self.base))
            .header("Cookie", format!("{ACCESS}={access}"))
            .call()
            .expect("an answer")
            .body_mut()
            .read_to_string()
            .expect("a page")
    }

    pub fn profile_status(&self, agent: &ureq::Agent, access: &str) -> u16 {
        self.status(agent, "/profile", &format!("{ACCESS}={access}"))
    }

    /// Kills the process at once (SIGKILL), as a crash or an OOM killer would.
    pub fn crash(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Asks the process to stop (SIGTERM) and waits for it to exit.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        self.child.wait().expect("doorman exits")
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

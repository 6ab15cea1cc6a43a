//! Where mail goes: an SMTP server (lettre: `smtp://` upgrades with STARTTLS when the server
//! offers it, `smtps://` is TLS from the start), or without `smtp_url` one `.eml` file per mail
//! in `<data_dir>/outbox/`.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{Message, SmtpTransport, Transport as _};

use crate::config::{Config, SmtpSettings};

/// How long one SMTP conversation may take before the mail is retried later.
const SMTP_TIMEOUT: Duration = Duration::from_secs(10);

/// An SMTP transport for these settings.
fn smtp_transport(settings: &SmtpSettings) -> Result<SmtpTransport, String> {
    let tls = TlsParameters::new(settings.host.clone()).map_err(|e| e.to_string())?;
    let mut builder = SmtpTransport::builder_dangerous(settings.host.as_str())
        .port(settings.port)
        .timeout(Some(SMTP_TIMEOUT))
        .tls(if settings.wrapped {
            Tls::Wrapper(tls)
        } else {
            Tls::Opportunistic(tls)
        });
    if let Some((user, password)) = &settings.credentials {
        builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
    }
    Ok(builder.build())
}

pub enum Transport {
    Smtp(SmtpTransport),
    Files(PathBuf),
}

impl Transport {
    pub fn new(config: &Config) -> Result<Transport, String> {
        match &config.smtp {
            Some(settings) => smtp_transport(settings).map(Transport::Smtp),
            None => Ok(Transport::Files(outbox_dir(&config.data_dir))),
        }
    }

    /// Delivers one mail; the error says why not, for the log and the retry.
    pub fn deliver(&self, name: &str, message: &Message) -> Result<(), String> {
        match self {
            Transport::Smtp(smtp) => smtp.send(message).map(drop).map_err(|e| e.to_string()),
            Transport::Files(dir) => write_eml(dir, name, &message.formatted())
                .map_err(|e| format!("writing to {}: {e}", dir.display())),
        }
    }
}

/// Where mail is written without `smtp_url`.
pub fn outbox_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("outbox")
}

/// Writes the whole message (RFC 5322) to `<dir>/<name>.eml`, readable by the owner only, in
/// one rename so a reader never sees half a file.
fn write_eml(dir: &Path, name: &str, message: &[u8]) -> std::io::Result<()> {
    crate::fsutil::create_private_dir(dir)?;
    let partial = dir.join(format!(".{name}.partial"));
    let mut file = crate::fsutil::create_private_file(&partial)?;
    file.write_all(message)?;
    file.sync_all()?;
    std::fs::rename(&partial, dir.join(format!("{name}.eml")))
}

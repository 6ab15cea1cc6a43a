//! Where mail goes: an SMTP server (lettre: `smtp://` upgrades with STARTTLS when the server
//! offers it, `smtps://` is TLS from the start), or without `smtp_url` one `.eml` file per mail
//! in `<data_dir>/outbox/`.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{Message, SmtpTransport, Transport as _};

use crate::config::Config;

/// How long one SMTP conversation may take before the mail is retried later.
const SMTP_TIMEOUT: Duration = Duration::from_secs(10);

/// `smtp_url`, checked.
#[derive(Debug)]
pub struct SmtpSettings {
    host: String,
    port: u16,
    /// `smtps://`: TLS from the first byte; `smtp://`: STARTTLS when offered.
    wrapped: bool,
    credentials: Option<(String, String)>,
}

impl SmtpSettings {
    pub fn parse(url: &str) -> Result<SmtpSettings, &'static str> {
        const SHAPE: &str = "must look like smtp://[user:password@]host:port or smtps://…";
        let url = url::Url::parse(url).map_err(|_| SHAPE)?;
        let wrapped = match url.scheme() {
            "smtp" => false,
            "smtps" => true,
            _ => return Err(SHAPE),
        };
        let host = url.host_str().filter(|h| !h.is_empty()).ok_or(SHAPE)?;
        let port = url.port().unwrap_or(if wrapped { 465 } else { 25 });
        let decode = |text: &str| {
            percent_encoding::percent_decode_str(text)
                .decode_utf8()
                .map(std::borrow::Cow::into_owned)
                .map_err(|_| SHAPE)
        };
        let credentials = if url.username().is_empty() {
            None
        } else {
            Some((
                decode(url.username())?,
                decode(url.password().unwrap_or(""))?,
            ))
        };
        Ok(SmtpSettings {
            host: host.trim_matches(['[', ']']).to_owned(),
            port,
            wrapped,
            credentials,
        })
    }

    fn transport(&self) -> Result<SmtpTransport, String> {
        let tls = TlsParameters::new(self.host.clone()).map_err(|e| e.to_string())?;
        let mut builder = SmtpTransport::builder_dangerous(self.host.as_str())
            .port(self.port)
            .timeout(Some(SMTP_TIMEOUT))
            .tls(if self.wrapped {
                Tls::Wrapper(tls)
            } else {
                Tls::Opportunistic(tls)
            });
        if let Some((user, password)) = &self.credentials {
            builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
        }
        Ok(builder.build())
    }
}

pub enum Transport {
    Smtp(SmtpTransport),
    Files(PathBuf),
}

impl Transport {
    pub fn new(config: &Config) -> Result<Transport, String> {
        match &config.smtp_url {
            Some(url) => SmtpSettings::parse(url.expose())
                .map_err(str::to_owned)
                .and_then(|settings| settings.transport())
                .map(Transport::Smtp),
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

#[cfg(test)]
mod tests {
    use super::SmtpSettings;

    #[test]
    fn smtp_urls() {
        let s = SmtpSettings::parse("smtp://mailer:p%40ss@mail.example:2525").unwrap();
        assert_eq!(
            (s.host.as_str(), s.port, s.wrapped),
            ("mail.example", 2525, false)
        );
        assert_eq!(
            s.credentials,
            Some(("mailer".to_owned(), "p@ss".to_owned()))
        );
        let s = SmtpSettings::parse("smtps://mail.example").unwrap();
        assert_eq!((s.port, s.wrapped, s.credentials), (465, true, None));
        for bad in ["http://mail.example", "smtp://", "mail.example:25", ""] {
            assert!(SmtpSettings::parse(bad).is_err(), "{bad:?}");
        }
    }
}

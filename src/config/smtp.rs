//! `smtp_url`, parsed once at start: where mail goes and how (the mail sender reads it).

use std::fmt;

/// `smtp://[user:password@]host:port` (STARTTLS when offered) or `smtps://…` (TLS from the
/// first byte), checked.
#[derive(Clone, PartialEq, Eq)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    /// `smtps://`: TLS from the first byte; `smtp://`: STARTTLS when offered.
    pub wrapped: bool,
    /// User and password, percent-decoded.
    pub credentials: Option<(String, String)>,
}

impl fmt::Debug for SmtpSettings {
    /// Never the credentials.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpSettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("wrapped", &self.wrapped)
            .field("credentials", &self.credentials.as_ref().map(|_| "…"))
            .finish()
    }
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
        assert!(!format!("{s:?}").contains("p@ss"));
        let s = SmtpSettings::parse("smtps://mail.example").unwrap();
        assert_eq!((s.port, s.wrapped, s.credentials), (465, true, None));
        for bad in ["http://mail.example", "smtp://", "mail.example:25", ""] {
            assert!(SmtpSettings::parse(bad).is_err(), "{bad:?}");
        }
    }
}

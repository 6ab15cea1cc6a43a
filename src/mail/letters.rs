//! The mails' text: each letter is a plain-text and an HTML template under
//! `templates/mail/` (`<letter>_text.txt.tera`, `<letter>_html.html.tera`), rendered when the
//! mail is sent, with its link made then from the nonce the outbox kept
//! (`crate::core::email::link_token`) on `public_url`. They are named as the page engine names
//! them (`mail/<letter>_html`), since it loads the same folder.

use std::path::Path;

use lettre::Message;
use lettre::message::{Mailbox, MultiPart};
use rocket_dyn_templates::tera::{Context, Tera};
use serde_json::Value;

use crate::auth::keys::ServerSecret;
use crate::core::email::{Letter, link_token};
use crate::db::outbox::MailRow;
use crate::http::device_labels::DeviceLabels;

pub struct Letters {
    tera: Tera,
    public_url: url::Url,
    from: Mailbox,
    secret: ServerSecret,
    labels: DeviceLabels,
}

impl Letters {
    /// Loads `<template_dir>/mail/*.tera`; every letter must have both parts.
    pub fn load(
        template_dir: &Path,
        public_url: url::Url,
        from: Mailbox,
        secret: ServerSecret,
        labels: DeviceLabels,
    ) -> Result<Letters, String> {
        let dir = template_dir.join("mail");
        let entries = std::fs::read_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let mut files = Vec::new();
        for entry in entries {
            let path = entry.map_err(|e| e.to_string())?.path();
            let file = path
                .file_name()
                .and_then(|f| f.to_str())
                .unwrap_or_default();
            let Some(stem) = file.strip_suffix(".tera").and_then(|f| f.split('.').next()) else {
                continue;
            };
            let name = format!("mail/{stem}");
            files.push((path, Some(name)));
        }
        let mut tera = Tera::default();
        tera.autoescape_on(vec!["_html", "/_layout"]);
        tera.add_template_files(files).map_err(|e| e.to_string())?;
        for letter in Letter::ALL {
            for part in ["text", "html"] {
                let name = format!("mail/{}_{part}", letter.name());
                if !tera.get_template_names().any(|n| n == name) {
                    return Err(format!("mail template `{name}` is missing"));
                }
            }
        }
        Ok(Letters {
            tera,
            public_url,
            from,
            secret,
            labels,
        })
    }

    /// The message for an outbox row.
    pub fn compose(&self, mail: &MailRow) -> Result<Message, String> {
        let letter = Letter::parse(&mail.template)
            .ok_or_else(|| format!("unknown letter `{}`", mail.template))?;
        let mut context: Value = serde_json::from_str(&mail.context).map_err(|e| e.to_string())?;
        if let Some(link) = context.get("link").cloned() {
            let (Some(path), Some(nonce)) = (link["path"].as_str(), link["nonce"].as_str()) else {
                return Err("a link without its path or nonce".into());
            };
            let token = link_token(&self.secret, nonce).ok_or("a malformed link nonce")?;
            let mut url = self.public_url.join(path).map_err(|e| e.to_string())?;
            url.query_pairs_mut().append_pair("token", &token);
            context["url"] = Value::String(url.to_string());
        }
        if let Some(agent) = context.get("user_agent").and_then(Value::as_str) {
            context["device"] = Value::String(self.labels.label(agent));
        }
        if let Some(at) = context.get("at").and_then(Value::as_i64) {
            context["when"] = Value::String(crate::http::page::timestamp(at));
        }
        context["site"] = Value::String(self.public_url.to_string());
        let context = Context::from_value(context).map_err(|e| e.to_string())?;
        let render = |part: &str| {
            let name = format!("mail/{}_{part}", letter.name());
            self.tera
                .render(&name, &context)
                .map_err(|e| format!("rendering {name}: {e}"))
        };
        let to: Mailbox = mail
            .recipient
            .parse()
            .map_err(|_| "the recipient is not an address".to_owned())?;
        Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(letter.subject())
            .multipart(MultiPart::alternative_plain_html(
                render("text")?,
                render("html")?,
            ))
            .map_err(|e| e.to_string())
    }
}

//! What every page's template gets: the navigation for the viewer, the CSRF token of the
//! session, and the one-time message of a post/redirect/get.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, RwLock};

use rocket::Either;
use rocket::Request;
use rocket::request::{FromRequest, Outcome};
use rocket::response::content::RawHtml;
use rocket_dyn_templates::{Metadata, Template};
use serde::Serialize;
use serde_json::{Value, json};

use crate::auth::tokens::TokenService;
use crate::core::sessions::EndReason;
use crate::http::cookies::CookiePolicy;
use crate::http::csrf;
use crate::http::device_labels::DeviceLabels;
use crate::http::silent_refresh::AuthState;

#[derive(Debug, Clone, Serialize)]
pub struct Nav {
    pub signed_in: bool,
    pub is_admin: bool,
    /// The session's CSRF token, for the sign-out button and every signed-in form.
    pub csrf_token: Option<String>,
    pub flash: Option<Flash>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Flash {
    pub kind: String,
    pub message: String,
}

/// The common part of a page, gathered from the request.
pub struct Page {
    pub nav: Nav,
}

impl Page {
    pub fn of(req: &Request<'_>) -> Page {
        let claims = match AuthState::of(req) {
            AuthState::SignedIn(claims) => Some(claims),
            _ => None,
        };
        let csrf_token = claims
            .zip(req.rocket().state::<TokenService>())
            .map(|(c, tokens)| {
                csrf::token(
                    &tokens.keys().derived_secret,
                    &csrf::Binding::Session(&c.sid),
                )
            });
        let flash = req
            .rocket()
            .state::<CookiePolicy>()
            .and_then(|policy| policy.take_notice(req.cookies()))
            .map(|notice| Flash {
                kind: notice.kind().to_owned(),
                message: notice.message().to_owned(),
            });
        Page {
            nav: Nav {
                signed_in: claims.is_some(),
                is_admin: claims.is_some_and(|c| c.is_admin()),
                csrf_token,
                flash,
            },
        }
    }

    /// Renders `name` with `context` (a JSON object) plus `nav`.
    pub fn render(&self, name: &'static str, mut context: Value) -> Template {
        if let Value::Object(map) = &mut context {
            map.insert("nav".into(), json!(self.nav));
        }
        Template::render(name, context)
    }

    /// `name` with `context` plus `nav`, rendered to HTML now: for pages kept once rendered.
    pub fn render_html(
        &self,
        templates: &Metadata<'_>,
        name: &'static str,
        context: Value,
    ) -> Option<String> {
        render_html(templates, name, &self.nav, context)
    }

    /// Like [`Page::render`], for a page whose `context` is the same for every visitor of a
    /// kind (anonymous, signed in, admin) but for its CSRF token: a visitor with no message
    /// waiting gets the page rendered once per process and kind, with this visitor's token put
    /// in its slots: `token` for an anonymous visitor's form, the session's (in `nav`) for a
    /// signed-in one's. The context is built only when the page is rendered.
    pub fn render_fixed(
        &self,
        fixed: &FixedPages,
        templates: &Metadata<'_>,
        name: &'static str,
        token: Option<String>,
        context: impl FnOnce() -> Value,
    ) -> Either<Template, RawHtml<String>> {
        let with_token = |token: Option<&str>| {
            let mut context = context();
            if let Some(token) = token {
                context["csrf_token"] = json!(token);
            }
            context
        };
        // A signed-in page with a form token of its own would have two different slots.
        if self.nav.flash.is_some() || (self.nav.signed_in && token.is_some()) {
            return Either::Left(self.render(name, with_token(token.as_deref())));
        }
        let (visitor_token, kind) = if self.nav.signed_in {
            (
                self.nav.csrf_token.as_deref(),
                Kind::SignedIn(self.nav.is_admin),
            )
        } else {
            (token.as_deref(), Kind::Anonymous)
        };
        let page = if let Some(page) = fixed.get(name, kind) {
            page
        } else {
            let mut nav = self.nav.clone();
            if nav.signed_in {
                nav.csrf_token = nav.csrf_token.map(|_| CSRF_SLOT.to_owned());
            }
            let once = with_token(token.as_ref().map(|_| CSRF_SLOT));
            let Some(html) = render_html(templates, name, &nav, once.clone()) else {
                let mut context = once;
                if let Some(token) = &token {
                    context["csrf_token"] = json!(token);
                }
                return Either::Left(self.render(name, context));
            };
            fixed.insert(name, kind, &html)
        };
        Either::Right(RawHtml(page.fill(visitor_token)))
    }
}

fn render_html(
    templates: &Metadata<'_>,
    name: &'static str,
    nav: &Nav,
    mut context: Value,
) -> Option<String> {
    context["nav"] = json!(nav);
    templates.render(name, &context).map(|(_, html)| html)
}

/// Stands for the CSRF token in a page rendered once; URL-safe base64 tokens never contain `@`,
/// and HTML escaping leaves it as it is.
const CSRF_SLOT: &str = "@@doorman-csrf-token@@";

/// Who a page rendered once is for: the navigation differs between them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    Anonymous,
    /// Signed in; an admin or not.
    SignedIn(bool),
}

/// Pages rendered once ([`Page::render_fixed`]), kept until the process ends (a template edited
/// while a debug build runs shows on these pages after a restart).
#[derive(Default)]
pub struct FixedPages {
    pages: RwLock<HashMap<(&'static str, Kind), Arc<FixedPage>>>,
}

/// A page rendered once, cut at its CSRF slots so a visitor's copy is a few copies and no
/// search.
pub struct FixedPage {
    /// The page's text between its slots: one part for a page without any.
    parts: Vec<String>,
}

impl FixedPage {
    fn fill(&self, token: Option<&str>) -> String {
        let token = token.unwrap_or(CSRF_SLOT);
        let length = self.parts.iter().map(String::len).sum::<usize>()
            + token.len() * (self.parts.len() - 1);
        let mut page = String::with_capacity(length);
        for (i, part) in self.parts.iter().enumerate() {
            if i > 0 {
                page.push_str(token);
            }
            page.push_str(part);
        }
        page
    }
}

impl FixedPages {
    fn get(&self, name: &'static str, kind: Kind) -> Option<Arc<FixedPage>> {
        crate::sync::read(&self.pages).get(&(name, kind)).cloned()
    }

    fn insert(&self, name: &'static str, kind: Kind, html: &str) -> Arc<FixedPage> {
        let parts = html.split(CSRF_SLOT).map(str::to_owned).collect();
        let page = Arc::new(FixedPage { parts });
        crate::sync::write(&self.pages).insert((name, kind), page.clone());
        page
    }
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for Page {
    type Error = Infallible;

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, Infallible> {
        Outcome::Success(Page::of(req))
    }
}

/// A wait in words: "45 seconds", "1 minute", "15 minutes".
pub fn minutes(seconds: i64) -> String {
    match seconds {
        ..=1 => "1 second".into(),
        2..=59 => format!("{seconds} seconds"),
        60 => "1 minute".into(),
        _ => format!("{} minutes", (seconds + 59) / 60),
    }
}

/// A user as the admin pages show them.
pub fn user_summary(summary: &crate::core::admin::UserSummary) -> Value {
    let u = &summary.user;
    json!({
        "id": u.id,
        "username": u.username,
        "role": u.role,
        "created_at": u.created_at,
        "last_login_at": u.last_login_at,
        "active_sessions": summary.active_sessions,
        "disabled": u.disabled,
        "email": u.email,
        "email_verified": u.email_verified_at.is_some(),
    })
}

/// A session as the templates show it.
pub fn session(
    row: &crate::db::sessions::SessionRow,
    current_sid: Option<&str>,
    labels: &DeviceLabels,
) -> Value {
    json!({
        "sid": row.public_id,
        "device": labels.label(&row.last_user_agent),
        "ip": row.last_ip,
        "created_at": row.created_at,
        "last_used_at": row.last_used_at,
        "current": current_sid == Some(row.public_id.as_str()),
        "signed_in_with": crate::core::sessions::describe_amr(&row.amr),
        "ended_at": row.ended_at,
        "end_reason": row.end_reason.as_deref().map(|r| EndReason::parse(r).map_or("ended", EndReason::describe)),
    })
}

/// A security event as the templates show it.
pub fn event(
    row: &crate::db::events::EventRow,
    username: Option<&str>,
    labels: &DeviceLabels,
) -> Value {
    let kind = crate::core::events::EventKind::parse(&row.kind);
    json!({
        "at": row.created_at,
        "kind": row.kind,
        "description": kind.map_or("Unknown event", crate::core::events::EventKind::describe),
        "detail": row.detail,
        "repeats": row.repeats,
        "ip": row.ip,
        "device": labels.label(&row.user_agent),
        "username": username,
        "user_id": row.user_id,
    })
}

/// Unix seconds as `2026-12-02 14:05 UTC`, as pages and the command line show times.
pub fn timestamp(seconds: i64) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute] UTC");
    time::OffsetDateTime::from_unix_timestamp(seconds)
        .ok()
        .and_then(|t| t.format(format).ok())
        .unwrap_or_else(|| seconds.to_string())
}

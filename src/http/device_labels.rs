//! Readable device names ("Firefox 133 on Linux", "Safari on iPhone") from User-Agent strings.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use woothee::parser::Parser;

/// The parser and the labels already worked out, kept in managed state (one per app): pages
/// list the same few User-Agents again and again, and parsing one runs a dozen regular
/// expressions. Clones share both.
#[derive(Clone, Default)]
pub struct DeviceLabels {
    parser: Arc<Parser>,
    known: Arc<Mutex<HashMap<String, String>>>,
}

/// Most labels remembered; the cache starts over when full.
const CACHE_SIZE: usize = 1024;

impl DeviceLabels {
    /// The browser and operating system a User-Agent names. Phone browsers go without a
    /// version: theirs follows the operating system's.
    pub fn label(&self, user_agent: &str) -> String {
        if let Some(known) = crate::sync::lock(&self.known).get(user_agent).cloned() {
            return known;
        }
        let label = parse(&self.parser, user_agent);
        let mut known = crate::sync::lock(&self.known);
        if known.len() >= CACHE_SIZE {
            known.clear();
        }
        known.insert(user_agent.to_owned(), label.clone());
        label
    }
}

fn parse(parser: &Parser, user_agent: &str) -> String {
    if user_agent.trim().is_empty() {
        return "Unknown device".into();
    }
    let Some(ua) = parser.parse(user_agent) else {
        return "Unknown browser".into();
    };
    let known = |s: &str| !s.is_empty() && s != woothee::woothee::VALUE_UNKNOWN;
    let major = ua.version.split('.').next().unwrap_or_default();
    let browser = match (known(ua.name), known(major), ua.category) {
        (false, _, _) => "Unknown browser".to_owned(),
        (true, true, "pc") => format!("{} {major}", ua.name),
        (true, _, _) => ua.name.to_owned(),
    };
    if known(ua.os) {
        format!("{browser} on {}", ua.os)
    } else {
        browser
    }
}

#[cfg(test)]
mod tests {
    use super::DeviceLabels;

    #[test]
    fn common_devices_read_naturally() {
        let labels = DeviceLabels::default();
        let label = |ua: &str| labels.label(ua);
        assert_eq!(
            label("Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"),
            "Firefox 133 on Linux"
        );
        assert_eq!(
            label(
                "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 \
                 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
            ),
            "Safari on iPhone"
        );
        assert_eq!(
            label(
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) \
                 Chrome/131.0.0.0 Safari/537.36"
            ),
            "Chrome 131 on Windows 10"
        );
        assert_eq!(label(""), "Unknown device");
        assert_eq!(label("curl/8.5.0"), "HTTP Library");
        assert_eq!(label("\u{1}\u{2} junk"), "Unknown browser");
    }
}

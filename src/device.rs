//! Readable device names ("Firefox 133 on Linux", "Safari on iPhone") from User-Agent strings.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use woothee::parser::Parser;

fn parser() -> &'static Parser {
    static PARSER: OnceLock<Parser> = OnceLock::new();
    PARSER.get_or_init(Parser::new)
}

/// Labels already worked out: pages list the same few User-Agents again and again, and parsing
/// one runs a dozen regular expressions.
fn cache() -> &'static Mutex<HashMap<String, String>> {
    static CACHE: OnceLock<Mutex<HashMap<String, String>>> = OnceLock::new();
    CACHE.get_or_init(Mutex::default)
}

/// Most labels remembered; the cache starts over when full.
const CACHE_SIZE: usize = 1024;

/// The browser and operating system a User-Agent names. Phone browsers go without a version:
/// theirs follows the operating system's.
pub fn label(user_agent: &str) -> String {
    if let Some(known) = crate::sync::lock(cache()).get(user_agent).cloned() {
        return known;
    }
    let label = parse(user_agent);
    let mut cache = crate::sync::lock(cache());
    if cache.len() >= CACHE_SIZE {
        cache.clear();
    }
    cache.insert(user_agent.to_owned(), label.clone());
    label
}

fn parse(user_agent: &str) -> String {
    if user_agent.trim().is_empty() {
        return "Unknown device".into();
    }
    let Some(ua) = parser().parse(user_agent) else {
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
    use super::label;

    #[test]
    fn common_devices_read_naturally() {
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

//! Where a browser may be sent back to: only paths of this site.

use rocket::http::uri::Origin;
use rocket::response::Redirect;

/// `next` if it is a path on this site (not `//host`, `/\host` or anything a browser would read
/// as another origin), else `None`.
pub fn local_path(next: &str) -> Option<Origin<'static>> {
    let mut chars = next.chars();
    let local = chars.next() == Some('/')
        && !matches!(chars.next(), Some('/' | '\\'))
        && next.len() <= 2048
        && !next
            .chars()
            .any(|c| c == '\\' || c.is_control() || c.is_whitespace());
    if !local {
        return None;
    }
    Origin::parse_owned(next.to_owned()).ok()
}

/// After a sign-in: to `next` when it is a local path, else `/profile`.
pub fn after_login(next: Option<&str>) -> Redirect {
    Redirect::to(
        next.and_then(local_path)
            .map_or_else(|| "/profile".to_owned(), |o| o.to_string()),
    )
}

#[cfg(test)]
mod tests {
    use super::local_path;

    #[test]
    fn only_local_paths_are_followed() {
        assert!(local_path("/profile").is_some());
        assert!(local_path("/sessions?page=2").is_some());
        for hostile in [
            "//evil.example",
            "/\\evil.example",
            "https://evil.example",
            "evil.example",
            "/\t/evil.example",
            "/ok\\..\\x",
            "",
        ] {
            assert!(local_path(hostile).is_none(), "{hostile:?}");
        }
    }
}

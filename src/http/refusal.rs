//! What a guard that refused a request leaves for the error page.

/// A message for the error page, kept in the request's local cache.
#[derive(Debug, Clone, Copy)]
pub struct ErrorNote(pub &'static str);

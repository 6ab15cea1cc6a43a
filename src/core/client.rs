//! Who is on the other end of a request, as far as doorman records it (events, sessions).

/// Longest User-Agent kept; longer ones are cut (at a character boundary).
const MAX_USER_AGENT_CHARS: usize = 512;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientInfo {
    /// The socket's peer address, or the configured `ip_header` behind a trusted proxy.
    pub ip: String,
    pub user_agent: String,
}

impl ClientInfo {
    /// The client at `ip` (when known) sending `user_agent`, kept short and free of control
    /// characters.
    pub fn new(ip: Option<std::net::IpAddr>, user_agent: &str) -> ClientInfo {
        ClientInfo {
            ip: ip.map_or_else(|| "unknown".to_owned(), |ip| ip.to_string()),
            user_agent: user_agent
                .chars()
                .filter(|c| !c.is_control())
                .take(MAX_USER_AGENT_CHARS)
                .collect(),
        }
    }
}

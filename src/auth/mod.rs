//! Tokens and what stands behind them: signing keys and the server secret (keys), access tokens
//! signed and verified (tokens), the roles they carry (roles), and the sessions known to be
//! revoked (revocation).

pub mod keys;
pub mod revocation;
pub mod roles;
pub mod tokens;

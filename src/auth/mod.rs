//! Tokens and what stands behind them: signing keys and the server secret (keys), access tokens
//! signed and verified (tokens), and the sessions known to be revoked (revocation).

pub mod keys;
pub mod revocation;
pub mod tokens;

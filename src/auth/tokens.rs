//! Access tokens: what they claim, how they are signed, and the strict checks that verify them.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use jsonwebtoken::{Header, Validation};
use serde::{Deserialize, Serialize};

use super::keys::SigningKeys;
use crate::crypto;
use crate::db::sessions::SessionRow;

/// The JOSE `typ` of doorman access tokens (RFC 9068), so no other JWT passes for one.
pub const ACCESS_TOKEN_TYP: &str = "at+jwt";

/// Clock skew tolerated on `exp`, `nbf` and `iat`, in seconds.
pub const LEEWAY: i64 = 5;

/// Longest token accepted; real ones are about 400 bytes.
pub const MAX_TOKEN_LEN: usize = 4096;

/// Every claim is required: a token missing one does not deserialize.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    pub iss: String,
    pub aud: String,
    pub sub: String,
    pub sid: String,
    pub role: String,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
    pub jti: String,
    /// When the session last authenticated (its login or its last `/sudo`).
    pub auth_time: i64,
    /// How it signed in (RFC 8176).
    pub amr: Vec<String>,
}

impl AccessClaims {
    /// Whether the token carries the admin role.
    pub fn is_admin(&self) -> bool {
        crate::auth::roles::Role::parse(&self.role) == Some(crate::auth::roles::Role::Admin)
    }

    /// Whether the session authenticated within `ttl` seconds of `now` (sudo mode).
    pub fn authenticated_within(&self, now: i64, ttl: i64) -> bool {
        now <= self.auth_time.saturating_add(ttl)
    }

    /// The user id in `sub`.
    pub fn user_id(&self) -> Option<i64> {
        self.sub.parse().ok()
    }
}

/// Why a token was refused. Callers treat every kind alike (as no token); the kind is for logs
/// and for the JSON API's `token_expired`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenError {
    Malformed,
    Expired,
    Invalid,
}

/// How many verified tokens are remembered (about 3 MB at most); past this, afresh.
const MAX_VERIFIED: usize = 4096;

/// Signs and verifies access tokens for one issuer and audience.
pub struct TokenService {
    keys: SigningKeys,
    issuer: String,
    audience: String,
    validation: Validation,
    /// Tokens whose signature and claims passed, by their exact text: the same cookie on the
    /// next page costs a lookup instead of two JSON parses and a signature check. The time
    /// rules are checked on every use; the keys never change while the process runs.
    verified: RwLock<HashMap<String, Arc<AccessClaims>>>,
}

impl TokenService {
    pub fn new(keys: SigningKeys, issuer: String, audience: String) -> TokenService {
        let mut validation = Validation::new(keys.algorithm);
        validation.set_issuer(&[&issuer]);
        validation.set_audience(&[&audience]);
        validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
        // Time is checked below against the injected clock, with our own leeway.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        TokenService {
            keys,
            issuer,
            audience,
            validation,
            verified: RwLock::default(),
        }
    }

    pub fn keys(&self) -> &SigningKeys {
        &self.keys
    }

    /// The claims of an access token of `session`, whose user has `role`, valid from `now`
    /// until `exp`.
    pub fn issue(&self, session: &SessionRow, role: &str, now: i64, exp: i64) -> AccessClaims {
        AccessClaims {
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            sub: session.user_id.to_string(),
            sid: session.public_id.clone(),
            role: role.to_owned(),
            iat: now,
            nbf: now,
            exp,
            jti: crypto::random_token::<16>(),
            auth_time: session.auth_time,
            amr: session.amr.split(' ').map(str::to_owned).collect(),
        }
    }

    pub fn sign(&self, claims: &AccessClaims) -> String {
        let mut header = Header::new(self.keys.algorithm);
        header.typ = Some(ACCESS_TOKEN_TYP.to_owned());
        header.kid = Some(self.keys.current_kid.clone());
        // Serializing plain strings and integers with a loaded key cannot fail.
        #[allow(clippy::expect_used)]
        jsonwebtoken::encode(&header, claims, self.keys.encoding_key())
            .expect("signing an access token")
    }

    /// Verifies a token at time `now`. Only the configured algorithm and the listed keys (by
    /// `kid`) can make a token valid; headers that point elsewhere for a key are refused.
    pub fn verify(&self, token: &str, now: i64) -> Result<Arc<AccessClaims>, TokenError> {
        if token.is_empty() || token.len() > MAX_TOKEN_LEN {
            return Err(TokenError::Malformed);
        }
        let known = crate::sync::read(&self.verified).get(token).cloned();
        let claims = if let Some(claims) = known {
            claims
        } else {
            let claims = Arc::new(self.check_signed(token)?);
            let mut verified = crate::sync::write(&self.verified);
            if verified.len() >= MAX_VERIFIED {
                verified.clear();
            }
            verified.insert(token.to_owned(), claims.clone());
            claims
        };
        if claims.nbf > now + LEEWAY || claims.iat > now + LEEWAY {
            return Err(TokenError::Invalid);
        }
        if claims.exp + LEEWAY < now {
            return Err(TokenError::Expired);
        }
        Ok(claims)
    }

    /// The claims of a token with a valid signature, header and claim set, whatever the time.
    fn check_signed(&self, token: &str) -> Result<AccessClaims, TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Malformed)?;
        if header.alg != self.keys.algorithm
            || header.typ.as_deref() != Some(ACCESS_TOKEN_TYP)
            || header.jku.is_some()
            || header.jwk.is_some()
            || header.x5u.is_some()
            || header.x5c.is_some()
            || header.crit.is_some()
        {
            return Err(TokenError::Invalid);
        }
        let key = header
            .kid
            .as_deref()
            .and_then(|kid| self.keys.verifying_key(kid))
            .ok_or(TokenError::Invalid)?;
        let claims = jsonwebtoken::decode::<AccessClaims>(token, key, &self.validation)
            .map_err(|_| TokenError::Invalid)?
            .claims;
        if claims.user_id().is_none() {
            return Err(TokenError::Invalid);
        }
        Ok(claims)
    }
}

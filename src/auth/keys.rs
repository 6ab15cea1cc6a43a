//! Signing keys: loaded (or, for the default HS256 secret, generated) once at start and kept in
//! managed state. Every key has a `kid`, its RFC 7638 thumbprint.

use std::collections::HashMap;
use std::fmt;
use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use jsonwebtoken::jwk::{Jwk, PublicKeyUse, ThumbprintHash};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};

use crate::config::{Config, JwtAlgorithm};
use crate::crypto;

/// Smallest HS256 secret accepted, in bytes.
pub const MIN_SECRET_BYTES: usize = 32;

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct KeyError(pub String);

/// The server secret of `refresh_secret_file`, never stored in the database: mixed into every
/// refresh-token successor (so a copy of the database and an old refresh token never yield the
/// live one), the key of known-device tokens, of recovery-code hashes and of mailed links. Every instance of a deployment reads the same
/// file.
#[derive(Clone)]
pub struct ServerSecret {
    successor: [u8; 32],
    device: [u8; 32],
    recovery: [u8; 32],
    email: [u8; 32],
    totp: [u8; 32],
}

impl ServerSecret {
    /// Loads the configured file, or the generated one (made on first start, mode 0600).
    pub fn load(config: &Config) -> Result<ServerSecret, KeyError> {
        let path = config.refresh_secret_path();
        let material = if config.refresh_secret_file.is_none() {
            load_or_generate_secret(&path)?
        } else {
            fs::read(&path).map_err(|e| key_error(&path, &e))?
        };
        Ok(ServerSecret::from_bytes(&decode_secret(&path, &material)?))
    }

    /// The secret from its bytes (tests, tools).
    pub fn from_bytes(secret: &[u8]) -> ServerSecret {
        ServerSecret {
            successor: crypto::hmac_sha256(secret, &[b"doorman/refresh-successor-key/v1"]),
            device: crypto::hmac_sha256(secret, &[b"doorman/known-device/v1"]),
            recovery: crypto::hmac_sha256(secret, &[b"doorman/recovery-code/v1"]),
            email: crypto::hmac_sha256(secret, &[b"doorman/email-link/v1"]),
            totp: crypto::hmac_sha256(secret, &[b"doorman/totp-secret/v1"]),
        }
    }

    /// The key that derives a session's successors from its stored key.
    pub fn successor_key(&self, session_key: &[u8]) -> [u8; 32] {
        crypto::hmac_sha256(&self.successor, &[session_key])
    }

    pub fn device_key(&self) -> &[u8; 32] {
        &self.device
    }

    pub fn recovery_key(&self) -> &[u8; 32] {
        &self.recovery
    }

    /// The key mailed links' tokens are made with.
    pub fn email_key(&self) -> &[u8; 32] {
        &self.email
    }

    /// The key authenticator-app secrets are encrypted with in the database.
    pub fn totp_key(&self) -> &[u8; 32] {
        &self.totp
    }
}

/// The key that signs new tokens and every key that may still verify one.
pub struct SigningKeys {
    pub algorithm: Algorithm,
    pub current_kid: String,
    encoding: EncodingKey,
    verifying: HashMap<String, DecodingKey>,
    /// Public keys to publish (empty for HS256).
    pub public_jwks: Vec<Jwk>,
    /// A server secret derived from the signing key, for MACs that are not tokens (CSRF).
    pub derived_secret: [u8; 32],
}

impl SigningKeys {
    pub fn encoding_key(&self) -> &EncodingKey {
        &self.encoding
    }

    /// The key with this `kid`, if it is the current or a listed previous key.
    pub fn verifying_key(&self, kid: &str) -> Option<&DecodingKey> {
        self.verifying.get(kid)
    }

    /// Loads the configured keys, generating the default HS256 secret on first start.
    pub fn load(config: &Config) -> Result<SigningKeys, KeyError> {
        let algorithm = match config.jwt_algorithm {
            JwtAlgorithm::HS256 => Algorithm::HS256,
            JwtAlgorithm::RS256 => Algorithm::RS256,
            JwtAlgorithm::ES256 => Algorithm::ES256,
            JwtAlgorithm::EdDSA => Algorithm::EdDSA,
        };
        let path = config.jwt_key_path();
        let material = if config.jwt_key_file.is_none() {
            load_or_generate_secret(&path)?
        } else {
            fs::read(&path).map_err(|e| key_error(&path, &e))?
        };

        let (encoding, jwk) = if algorithm == Algorithm::HS256 {
            let secret = decode_secret(&path, &material)?;
            let encoding = EncodingKey::from_secret(&secret);
            let jwk =
                Jwk::from_encoding_key(&encoding, algorithm).map_err(|e| key_error(&path, &e))?;
            (encoding, jwk)
        } else {
            let encoding = match algorithm {
                Algorithm::RS256 => EncodingKey::from_rsa_pem(&material),
                Algorithm::ES256 => EncodingKey::from_ec_pem(&material),
                _ => EncodingKey::from_ed_pem(&material),
            }
            .map_err(|e| {
                key_error(
                    &path,
                    &format!("not a PKCS#8 PEM private key for {algorithm:?} ({e})"),
                )
            })?;
            let jwk =
                Jwk::from_encoding_key(&encoding, algorithm).map_err(|e| key_error(&path, &e))?;
            (encoding, jwk)
        };

        let mut keys = SigningKeys {
            algorithm,
            current_kid: String::new(),
            encoding,
            verifying: HashMap::new(),
            public_jwks: Vec::new(),
            derived_secret: crypto::hmac_sha256(&material, &[b"doorman/derived-secret/v1"]),
        };
        keys.current_kid = keys.add_verifying(&path, &jwk)?;
        for previous in &config.jwt_previous_keys {
            let jwk = previous_key(previous, algorithm)?;
            keys.add_verifying(previous, &jwk)?;
        }
        Ok(keys)
    }

    /// Registers a verification key by thumbprint and, when public, for publication.
    fn add_verifying(&mut self, path: &Path, jwk: &Jwk) -> Result<String, KeyError> {
        let kid = jwk
            .thumbprint(ThumbprintHash::SHA256)
            .map_err(|e| key_error(path, &e))?;
        let decoding = DecodingKey::from_jwk(jwk).map_err(|e| key_error(path, &e))?;
        if self.algorithm != Algorithm::HS256 {
            let mut public = jwk.clone();
            public.common.key_id = Some(kid.clone());
            public.common.public_key_use = Some(PublicKeyUse::Signature);
            self.public_jwks.push(public);
        }
        self.verifying.insert(kid.clone(), decoding);
        Ok(kid)
    }
}

fn previous_key(path: &Path, algorithm: Algorithm) -> Result<Jwk, KeyError> {
    let material = fs::read(path).map_err(|e| key_error(path, &e))?;
    let decoding = match algorithm {
        Algorithm::HS256 => Ok(DecodingKey::from_secret(&decode_secret(path, &material)?)),
        Algorithm::RS256 => DecodingKey::from_rsa_pem(&material),
        Algorithm::ES256 => DecodingKey::from_ec_pem(&material),
        _ => DecodingKey::from_ed_pem(&material),
    }
    .map_err(|e| key_error(path, &format!("not a key for {algorithm:?} ({e})")))?;
    Jwk::from_decoding_key(&decoding, Some(algorithm)).map_err(|e| key_error(path, &e))
}

fn key_error(path: &Path, why: &dyn fmt::Display) -> KeyError {
    KeyError(format!("signing key `{}`: {why}", path.display()))
}

/// An HS256 secret file holds base64 (standard or URL-safe, padding optional).
fn decode_secret(path: &Path, material: &[u8]) -> Result<Vec<u8>, KeyError> {
    let text = std::str::from_utf8(material)
        .map_err(|_| key_error(path, &"the secret must be base64 text"))?;
    let secret = crypto::b64_decode_any(text)
        .ok_or_else(|| key_error(path, &"the secret must be base64 text"))?;
    if secret.len() < MIN_SECRET_BYTES {
        return Err(key_error(
            path,
            &format!(
                "the secret is {} bytes; at least {MIN_SECRET_BYTES} are required",
                secret.len()
            ),
        ));
    }
    Ok(secret)
}

/// Reads the generated secret, or makes one (32 bytes from the OS CSPRNG, file mode 0600).
fn load_or_generate_secret(path: &Path) -> Result<Vec<u8>, KeyError> {
    match fs::read(path) {
        Ok(material) => return Ok(material),
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(key_error(path, &e)),
        Err(_) => {}
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        crate::fsutil::create_private_dir(dir).map_err(|e| key_error(dir, &e))?;
    }
    let encoded = crypto::b64(&crypto::random_bytes::<MIN_SECRET_BYTES>());
    let mut file = match fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(file) => file,
        // Another instance starting beside this one wrote it first.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return fs::read(path).map_err(|e| key_error(path, &e));
        }
        Err(e) => return Err(key_error(path, &e)),
    };
    file.write_all(encoded.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| key_error(path, &e))?;
    Ok(encoded.into_bytes())
}

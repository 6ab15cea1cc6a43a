//! `doorman keys generate`: new signing keys, written with safe permissions.

use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use ed25519_dalek::pkcs8::{EncodePrivateKey as _, EncodePublicKey as _};
use p256::pkcs8::LineEnding;

use crate::config::JwtAlgorithm;
use crate::crypto;

/// The files of a generated key.
#[derive(Debug)]
pub struct Generated {
    /// What `jwt_key_file` should name (mode 0600).
    pub private: PathBuf,
    /// What other services and `jwt_previous_keys` use (absent for HS256, whose secret is both).
    pub public: Option<PathBuf>,
}

/// The private and public PEM (or the base64 secret for HS256) of a fresh key.
fn material(algorithm: JwtAlgorithm) -> Result<(String, Option<String>), String> {
    let failed = |e: &dyn std::fmt::Display| format!("key generation failed: {e}");
    match algorithm {
        JwtAlgorithm::HS256 => Ok((crypto::b64(&crypto::random_bytes::<32>()), None)),
        JwtAlgorithm::ES256 => {
            let key = loop {
                // A random scalar is valid unless it is zero or not below the group order.
                if let Ok(key) = p256::SecretKey::from_slice(&crypto::random_bytes::<32>()) {
                    break key;
                }
            };
            let private = key.to_pkcs8_pem(LineEnding::LF).map_err(|e| failed(&e))?;
            let public = key
                .public_key()
                .to_public_key_pem(LineEnding::LF)
                .map_err(|e| failed(&e))?;
            Ok((private.to_string(), Some(public)))
        }
        JwtAlgorithm::EdDSA => {
            let key = ed25519_dalek::SigningKey::from_bytes(&crypto::random_bytes::<32>());
            // PKCS#8 v1 (the seed alone), the form every JWT library reads.
            let seed = ed25519_dalek::pkcs8::KeypairBytes {
                secret_key: key.to_bytes(),
                public_key: None,
            };
            let private = seed.to_pkcs8_pem(LineEnding::LF).map_err(|e| failed(&e))?;
            let public = key
                .verifying_key()
                .to_public_key_pem(LineEnding::LF)
                .map_err(|e| failed(&e))?;
            Ok((private.to_string(), Some(public)))
        }
        JwtAlgorithm::RS256 => {
            let key = rsa::RsaPrivateKey::new(&mut rand::rng(), 2048).map_err(|e| failed(&e))?;
            let private = key.to_pkcs8_pem(LineEnding::LF).map_err(|e| failed(&e))?;
            let public = rsa::RsaPublicKey::from(&key)
                .to_public_key_pem(LineEnding::LF)
                .map_err(|e| failed(&e))?;
            Ok((private.to_string(), Some(public)))
        }
    }
}

fn write_new(path: &Path, contents: &str, mode: u32) -> Result<(), String> {
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(|e| format!("`{}`: {e}", path.display()))?;
    file.write_all(contents.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| format!("`{}`: {e}", path.display()))
}

/// Generates a key for `algorithm` into `dir` (created 0700 if missing). Never overwrites.
pub fn generate(algorithm: JwtAlgorithm, dir: &Path) -> Result<Generated, String> {
    crate::fsutil::create_private_dir(dir).map_err(|e| format!("`{}`: {e}", dir.display()))?;
    let (private, public) = material(algorithm)?;
    let stem = format!(
        "jwt-{}-{}",
        format!("{algorithm:?}").to_lowercase(),
        &crypto::random_token::<6>()
    );
    let private_path = if algorithm.is_symmetric() {
        dir.join(format!("{stem}.secret"))
    } else {
        dir.join(format!("{stem}.key.pem"))
    };
    write_new(&private_path, &private, 0o600)?;
    let public_path = match public {
        Some(public) => {
            let path = dir.join(format!("{stem}.pub.pem"));
            write_new(&path, &public, 0o644)?;
            Some(path)
        }
        None => None,
    };
    Ok(Generated {
        private: private_path,
        public: public_path,
    })
}

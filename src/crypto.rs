//! Small, audited building blocks: randomness, hashing, MACs and encodings.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

/// `N` bytes from a CSPRNG: rand's thread-local ChaCha12, seeded from the operating system and
/// reseeded from it every 64 KiB, so a page that needs a fresh token (an anonymous `/login`)
/// costs no system call.
///
/// # Panics
/// When the OS has no randomness to give for a (re)seed, which leaves nothing safe to do.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    use rand::Rng as _;
    let mut bytes = [0u8; N];
    rand::rng().fill_bytes(&mut bytes);
    bytes
}

/// Length of what [`seal`] adds to its plaintext: the nonce and the tag.
pub const SEAL_OVERHEAD: usize = 12 + 16;

/// Encrypts and authenticates `plain` under `key` (AES-256-GCM, a random 96-bit nonce), bound
/// to `context` (authenticated, not stored): nonce ‖ ciphertext ‖ tag.
pub fn seal(key: &[u8; 32], context: &[u8], plain: &[u8]) -> Vec<u8> {
    use aes_gcm::aead::{Aead, KeyInit as _, Payload};
    let cipher = aes_gcm::Aes256Gcm::new(key.into());
    let nonce = random_bytes::<12>();
    let payload = Payload {
        msg: plain,
        aad: context,
    };
    // Encryption fails only for messages of gigabytes.
    #[allow(clippy::expect_used)]
    let sealed = cipher
        .encrypt(&nonce.into(), payload)
        .expect("AES-GCM encrypts short messages");
    [nonce.as_slice(), &sealed].concat()
}

/// The plaintext of what [`seal`] made under `key` and `context`; `None` if it was altered,
/// made under another key or for another context.
pub fn open(key: &[u8; 32], context: &[u8], sealed: &[u8]) -> Option<Vec<u8>> {
    use aes_gcm::aead::{Aead, KeyInit as _, Payload};
    let (nonce, body) = sealed.split_at_checked(12)?;
    let nonce: [u8; 12] = nonce.try_into().ok()?;
    let cipher = aes_gcm::Aes256Gcm::new(key.into());
    cipher
        .decrypt(
            &nonce.into(),
            Payload {
                msg: body,
                aad: context,
            },
        )
        .ok()
}

/// A random URL-safe string carrying `N` bytes of entropy.
pub fn random_token<const N: usize>() -> String {
    b64url(&random_bytes::<N>())
}

pub fn b64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

pub fn b64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// Decodes URL-safe base64 without padding, as [`b64url`] writes it.
pub fn b64url_decode(text: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(text).ok()
}

/// Decodes standard or URL-safe base64, with or without padding.
pub fn b64_decode_any(text: &str) -> Option<Vec<u8>> {
    let text = text.trim().trim_end_matches('=');
    let normalized: String = text
        .chars()
        .map(|c| match c {
            '+' => '-',
            '/' => '_',
            c => c,
        })
        .collect();
    b64url_decode(&normalized)
}

pub fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

pub fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    // HMAC accepts keys of any length, so this cannot fail.
    #[allow(clippy::expect_used)]
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length");
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_variants_decode_alike() {
        let bytes = random_bytes::<33>();
        let standard = b64(&bytes);
        assert_eq!(b64_decode_any(&standard).as_deref(), Some(&bytes[..]));
        assert_eq!(b64_decode_any(&b64url(&bytes)).as_deref(), Some(&bytes[..]));
        assert_eq!(b64_decode_any("not base64!"), None);
    }

    #[test]
    fn random_tokens_differ() {
        assert_ne!(random_token::<32>(), random_token::<32>());
        assert_eq!(random_token::<32>().len(), 43);
    }
}
